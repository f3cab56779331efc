// Boxes-gradient CPU kernel entry point: the instruction-set copy chosen for
// the image gradient (CpuIsaName(), capped by CRG_CPU_ISA).
#include "cc/core/cpu/grad_boxes.h"

#include <string.h>

namespace crop_and_resize_grad {

#define CRG_DECLARE_ISA_KERNEL(ns)                                         \
  namespace ns {                                                           \
  template <typename T>                                                    \
  void GradBoxes(const GradBoxesArgs& args, const T* image, float* output, \
                 const ParallelRunner& runner);                            \
  }
CRG_DECLARE_ISA_KERNEL(isa_baseline)
#if CRG_HAVE_X86_ISAS
CRG_DECLARE_ISA_KERNEL(isa_avx2)
CRG_DECLARE_ISA_KERNEL(isa_avx512)
#endif
#undef CRG_DECLARE_ISA_KERNEL

template <typename T>
void CropAndResizeGradBoxesCpu(const GradBoxesArgs& args, const T* image,
                               float* output, const ParallelRunner& runner) {
#if CRG_HAVE_X86_ISAS
  static const char* const isa = CpuIsaName();
  if (strcmp(isa, "avx512") == 0) {
    return isa_avx512::GradBoxes<T>(args, image, output, runner);
  }
  if (strcmp(isa, "avx2") == 0) {
    return isa_avx2::GradBoxes<T>(args, image, output, runner);
  }
#endif
  isa_baseline::GradBoxes<T>(args, image, output, runner);
}

template void CropAndResizeGradBoxesCpu<float>(const GradBoxesArgs&,
                                               const float*, float*,
                                               const ParallelRunner&);
template void CropAndResizeGradBoxesCpu<double>(const GradBoxesArgs&,
                                                const double*, float*,
                                                const ParallelRunner&);
template void CropAndResizeGradBoxesCpu<Half>(const GradBoxesArgs&, const Half*,
                                              float*, const ParallelRunner&);
template void CropAndResizeGradBoxesCpu<BFloat16>(const GradBoxesArgs&,
                                                  const BFloat16*, float*,
                                                  const ParallelRunner&);

}  // namespace crop_and_resize_grad
