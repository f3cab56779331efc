// The CPU kernel is compiled once per instruction set, each copy in its own
// namespace; grad_image.cc picks one at run time.
#ifndef CROP_AND_RESIZE_GRAD_CC_CORE_CPU_GRAD_IMAGE_ISA_H_
#define CROP_AND_RESIZE_GRAD_CC_CORE_CPU_GRAD_IMAGE_ISA_H_

#include "cc/core/cpu/grad_image.h"

#define CRG_DECLARE_ISA_KERNEL(ns)                     \
  namespace ns {                                       \
  template <typename T>                                \
  void GradImage(const GradImageArgs& args, T* output, \
                 const ParallelRunner& runner);        \
  }

namespace crop_and_resize_grad {
CRG_DECLARE_ISA_KERNEL(isa_baseline)
#if CRG_HAVE_X86_ISAS
CRG_DECLARE_ISA_KERNEL(isa_avx2)
CRG_DECLARE_ISA_KERNEL(isa_avx512)
#endif
}  // namespace crop_and_resize_grad

#undef CRG_DECLARE_ISA_KERNEL

#endif  // CROP_AND_RESIZE_GRAD_CC_CORE_CPU_GRAD_IMAGE_ISA_H_
