// Compiles the real boxes-gradient kernel source (cuda/grad_boxes.cu,
// rewritten by rewrite_launches.py) for one emulated architecture, as
// emulated_kernels.cc does for cuda/grad_image.cu: a translation unit of its
// own, so the two sources' internal names never meet. Built with
// CRG_EMU_ARCH, CRG_EMU_NAMESPACE, CRG_EMU_BOXES_API, CRG_EMU_NAME and
// CRG_EMU_BOXES_SOURCE defined.
#define CRG_EMU_DEVICE_CODE 1
#include "tests/cuda_emulation/cuda_shim.h"
#include "tests/cuda_emulation/emulated_api.h"

#define crop_and_resize_grad CRG_EMU_NAMESPACE
#include CRG_EMU_BOXES_SOURCE

namespace {

namespace project = CRG_EMU_NAMESPACE;

cudaError_t EmuLaunchBoxes(const crg_emu::EmuArgs& a, int dtype,
                           const void* image, float* output,
                           cudaStream_t stream) {
  return project::cuda::LaunchCropAndResizeGradBoxes(
      crg_emu::ToProjectArgs<project::GradBoxesArgs>(a),
      static_cast<project::cuda::DType>(dtype), image, output, stream);
}

}  // namespace

#undef crop_and_resize_grad

const crg_emu::EmulatedBoxesApi& crg_emu::CRG_EMU_BOXES_API() {
  static const EmulatedBoxesApi api = {CRG_EMU_NAME, CRG_EMU_ARCH,
                                       EmuLaunchBoxes};
  return api;
}
