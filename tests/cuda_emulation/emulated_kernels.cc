// Compiles the real CUDA kernel source (rewritten by rewrite_launches.py, see
// CMakeLists.txt) for one emulated architecture. Built once per architecture
// with CRG_EMU_ARCH (the emulated __CUDA_ARCH__), CRG_EMU_NAMESPACE (the
// namespace the project's code is renamed to) and CRG_EMU_API (the name of
// the accessor function) defined.
#define CRG_EMU_DEVICE_CODE 1
#include "tests/cuda_emulation/cuda_shim.h"
#include "tests/cuda_emulation/emulated_api.h"

// The project's namespace, renamed for this copy.
#define crop_and_resize_grad CRG_EMU_NAMESPACE
#include CRG_EMU_KERNEL_SOURCE

namespace {

namespace project = CRG_EMU_NAMESPACE;

project::GradImageArgs Convert(const crg_emu::EmuArgs& a) {
  return crg_emu::ToProjectArgs<project::GradImageArgs>(a);
}

size_t EmuScratchBytes(const crg_emu::EmuArgs& a, int dtype, bool det) {
  return project::cuda::GradImageScratchBytes(
      Convert(a), static_cast<project::cuda::DType>(dtype), det);
}

cudaError_t EmuLaunch(const crg_emu::EmuArgs& a, int dtype, bool det, void* out,
                      void* scratch, size_t scratch_bytes,
                      cudaStream_t stream) {
  return project::cuda::LaunchCropAndResizeGradImage(
      Convert(a), static_cast<project::cuda::DType>(dtype), det, out, scratch,
      scratch_bytes, stream);
}

}  // namespace

#undef crop_and_resize_grad

const crg_emu::EmulatedApi& crg_emu::CRG_EMU_API() {
  static const EmulatedApi api = {CRG_EMU_NAME,
                                  CRG_EMU_ARCH,
                                  EmuScratchBytes,
                                  EmuLaunch,
                                  CRG_EMU_NAMESPACE::cuda::LaunchCheckBoxValues,
                                  CRG_EMU_NAMESPACE::cuda::CheckKernelImage};
  return api;
}
