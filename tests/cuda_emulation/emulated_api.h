// The launcher API of cuda/ as compiled for one emulated architecture.
//
// Each emulated_kernels.cc object compiles the real kernel source under its
// own namespace (so the sm_80 and sm_90 builds, and the CPU kernel's copy of
// the shared headers, never clash) and exposes the launchers through this
// plain table.
#ifndef CRG_TESTS_CUDA_EMULATION_EMULATED_API_H_
#define CRG_TESTS_CUDA_EMULATION_EMULATED_API_H_

#include <stddef.h>
#include <stdint.h>

#include "tests/cuda_emulation/cuda_shim.h"

namespace crg_emu {

// Same fields as crop_and_resize_grad::GradImageArgs; method 0 = bilinear,
// 1 = nearest.
struct EmuArgs {
  const float* grads = nullptr;
  const float* boxes = nullptr;
  const int32_t* box_ind = nullptr;
  int64_t num_boxes = 0;
  int64_t crop_height = 0;
  int64_t crop_width = 0;
  int64_t batch = 0;
  int64_t height = 0;
  int64_t width = 0;
  int64_t depth = 0;
  int method = 0;
};

// The same fields as the project's argument type Args (GradImageArgs or
// GradBoxesArgs of a renamed copy; both derive from CropArgs).
template <typename Args>
Args ToProjectArgs(const EmuArgs& a) {
  Args args;
  args.grads = a.grads;
  args.boxes = a.boxes;
  args.box_ind = a.box_ind;
  args.num_boxes = a.num_boxes;
  args.crop_height = a.crop_height;
  args.crop_width = a.crop_width;
  args.batch = a.batch;
  args.height = a.height;
  args.width = a.width;
  args.depth = a.depth;
  args.method = static_cast<decltype(args.method)>(a.method);
  return args;
}

// Output dtype, in the order of cuda::DType.
enum EmuDType { kEmuHalf = 0, kEmuBFloat16 = 1, kEmuFloat = 2, kEmuDouble = 3 };

struct EmulatedApi {
  const char* name;
  int arch;  // the emulated __CUDA_ARCH__
  size_t (*scratch_bytes)(const EmuArgs& args, int dtype, bool deterministic);
  cudaError_t (*launch)(const EmuArgs& args, int dtype, bool deterministic,
                        void* output, void* scratch, size_t scratch_bytes,
                        cudaStream_t stream);
  cudaError_t (*check_boxes)(const float* boxes, const int32_t* box_ind,
                             int64_t num_boxes, int64_t batch,
                             int32_t* device_status, cudaStream_t stream);
  cudaError_t (*check_image)();  // cuda::CheckKernelImage
};

const EmulatedApi& EmulatedSm80();
const EmulatedApi& EmulatedSm90();

// The boxes-gradient launcher (cuda/grad_boxes.cu), same build scheme. The
// EmuArgs fields mean what GradBoxesArgs's do; `image` is of `dtype`.
struct EmulatedBoxesApi {
  const char* name;
  int arch;
  cudaError_t (*launch)(const EmuArgs& args, int dtype, const void* image,
                        float* output, cudaStream_t stream);
};

const EmulatedBoxesApi& EmulatedBoxesSm80();
const EmulatedBoxesApi& EmulatedBoxesSm90();

}  // namespace crg_emu

#endif  // CRG_TESTS_CUDA_EMULATION_EMULATED_API_H_
