// CUDA kernels for the gradient of crop_and_resize with respect to the image,
// behind a plain launcher API: raw device pointers and a cudaStream_t, no
// TensorFlow headers. Used by the TF GPU OpKernel and by the pybind11 module.
//
// Every launcher only enqueues work on `stream` (memsets and kernels); none
// synchronizes. A returned error is the first one from enqueueing.
#ifndef CROP_AND_RESIZE_GRAD_CUDA_GRAD_IMAGE_H_
#define CROP_AND_RESIZE_GRAD_CUDA_GRAD_IMAGE_H_

#include <cuda_runtime_api.h>
#include <stddef.h>
#include <stdint.h>

#include "cc/core/float16.h"
#include "cc/core/grad_image_args.h"

namespace crop_and_resize_grad {
namespace cuda {

// Output element type.
enum class DType { kHalf, kBFloat16, kFloat, kDouble };

template <typename T>
struct DTypeOf;
template <>
struct DTypeOf<Half> {
  static constexpr DType value = DType::kHalf;
};
template <>
struct DTypeOf<BFloat16> {
  static constexpr DType value = DType::kBFloat16;
};
template <>
struct DTypeOf<float> {
  static constexpr DType value = DType::kFloat;
};
template <>
struct DTypeOf<double> {
  static constexpr DType value = DType::kDouble;
};

// Bytes of device scratch that LaunchCropAndResizeGradImage needs (0 when it
// needs none). Atomic mode: a float32 accumulator for half and bfloat16
// output. Deterministic mode: an int64 fixed-point accumulator (except for
// double output, which is accumulated in place), 2 bits per output element of
// non-finite flags, and a 256-byte header.
size_t GradImageScratchBytes(const GradImageArgs& args, DType dtype,
                             bool deterministic);

// Writes the image gradient into `output` ([batch, height, width, depth] of
// `dtype`, device memory; need not be initialized). The pointers in `args`
// are device pointers. `scratch` must be 16-byte aligned (cudaMalloc and TF
// allocations are) and hold GradImageScratchBytes(...) bytes; it is
// overwritten. Launches nothing for an empty output, and only zeroes the
// output when there are no samples.
//
// Requires the values of boxes and box_ind to have been validated
// (LaunchCheckBoxValues or CheckBoxValues). Non-finite boxes are harmless
// (their samples fall outside the image); a box whose box_ind is outside
// [0, batch) is skipped rather than written out of bounds.
//
// deterministic = false: float atomics; the summation order varies run to
// run. deterministic = true: int64 fixed-point atomics; bitwise reproducible,
// with the error bound documented in cuda/README.md.
//
// Returns cudaErrorInvalidValue for negative sizes, null pointers where data
// is needed, an unknown method or dtype, or too small / misaligned scratch;
// cudaErrorMisalignedAddress, before enqueueing anything, for an output not
// aligned to its element size or grads, boxes or box_ind not aligned to 4
// bytes. Both launchers clear this thread's stale CUDA error on entry, so a
// returned error is their own.
cudaError_t LaunchCropAndResizeGradImage(const GradImageArgs& args, DType dtype,
                                         bool deterministic, void* output,
                                         void* scratch, size_t scratch_bytes,
                                         cudaStream_t stream);

// Typed form; explicitly instantiated for Half, BFloat16, float and double.
template <typename T>
cudaError_t LaunchCropAndResizeGradImageTyped(const GradImageArgs& args,
                                              bool deterministic, T* output,
                                              void* scratch,
                                              size_t scratch_bytes,
                                              cudaStream_t stream);

// Status codes written by LaunchCheckBoxValues.
enum BoxCheckStatus : int32_t {
  kBoxesOk = 0,
  kBoxesNonFinite = 1,      // Some box coordinate is NaN or infinite.
  kBoxIndexOutOfRange = 2,  // Some box_ind is outside [0, batch).
};

// Device-side validation of box values. Zeroes *device_status (an int32 in
// device memory) and then writes the largest applicable BoxCheckStatus into
// it: kBoxIndexOutOfRange wins over kBoxesNonFinite when both occur. The
// caller copies it back (e.g. cudaMemcpyAsync + stream sync) and raises
// OutOfRange / InvalidArgument. boxes is [num_boxes, 4], box_ind [num_boxes].
// cudaErrorMisalignedAddress for a pointer not aligned to 4 bytes.
cudaError_t LaunchCheckBoxValues(const float* boxes, const int32_t* box_ind,
                                 int64_t num_boxes, int64_t batch,
                                 int32_t* device_status, cudaStream_t stream);

// Whether this build has code the current device can run: cudaSuccess, or
// cudaErrorNoKernelImageForDevice (or cudaErrorInvalidDeviceFunction) when
// the binary holds neither SASS for the device's architecture nor PTX it can
// JIT. Asks the runtime about one of the kernels; launches nothing.
cudaError_t CheckKernelImage();

}  // namespace cuda
}  // namespace crop_and_resize_grad

#endif  // CROP_AND_RESIZE_GRAD_CUDA_GRAD_IMAGE_H_
