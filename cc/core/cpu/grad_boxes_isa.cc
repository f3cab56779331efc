// One instruction-set copy of the boxes-gradient CPU kernel. CMake compiles
// this file once per ISA with -DCRG_ISA_NAMESPACE=isa_<name> and that ISA's
// -m flags (as grad_image_isa.cc).
#include "cc/core/cpu/grad_boxes_impl.h"

namespace crop_and_resize_grad {
namespace CRG_ISA_NAMESPACE {

template void GradBoxes<float>(const GradBoxesArgs&, const float*, float*,
                               const ParallelRunner&);
template void GradBoxes<double>(const GradBoxesArgs&, const double*, float*,
                                const ParallelRunner&);
template void GradBoxes<Half>(const GradBoxesArgs&, const Half*, float*,
                              const ParallelRunner&);
template void GradBoxes<BFloat16>(const GradBoxesArgs&, const BFloat16*, float*,
                                  const ParallelRunner&);

}  // namespace CRG_ISA_NAMESPACE
}  // namespace crop_and_resize_grad
