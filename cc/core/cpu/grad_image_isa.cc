// One instruction-set copy of the CPU kernel. CMake compiles this file once
// per ISA with -DCRG_ISA_NAMESPACE=isa_<name> and that ISA's -m flags.
#include "cc/core/cpu/grad_image_impl.h"

namespace crop_and_resize_grad {
namespace CRG_ISA_NAMESPACE {

template void GradImage<float>(const GradImageArgs&, float*,
                               const ParallelRunner&);
template void GradImage<double>(const GradImageArgs&, double*,
                                const ParallelRunner&);
template void GradImage<Half>(const GradImageArgs&, Half*,
                              const ParallelRunner&);
template void GradImage<BFloat16>(const GradImageArgs&, BFloat16*,
                                  const ParallelRunner&);

}  // namespace CRG_ISA_NAMESPACE
}  // namespace crop_and_resize_grad
