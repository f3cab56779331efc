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
  project::GradBoxesArgs args;
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
  args.method = static_cast<project::Method>(a.method);
  return project::cuda::LaunchCropAndResizeGradBoxes(
      args, static_cast<project::cuda::DType>(dtype), image, output, stream);
}

}  // namespace

#undef crop_and_resize_grad

const crg_emu::EmulatedBoxesApi& crg_emu::CRG_EMU_BOXES_API() {
  static const EmulatedBoxesApi api = {CRG_EMU_NAME, CRG_EMU_ARCH,
                                       EmuLaunchBoxes};
  return api;
}
