// TF-free CPU kernel for the gradient of crop_and_resize with respect to the
// boxes. Used by the TF OpKernel and by the pybind11 module.
#ifndef CROP_AND_RESIZE_GRAD_CC_CORE_CPU_GRAD_BOXES_H_
#define CROP_AND_RESIZE_GRAD_CC_CORE_CPU_GRAD_BOXES_H_

#include "cc/core/cpu/grad_image.h"  // ParallelRunner
#include "cc/core/float16.h"
#include "cc/core/grad_boxes_args.h"

namespace crop_and_resize_grad {

// Writes the boxes gradient, float32 [num_boxes, 4], into `output` (need not
// be initialized). `image` is [batch, height, width, depth] of T (float,
// double, Half or BFloat16). Requires CheckGradBoxesShapes and CheckBoxValues
// (cc/core/checks.h) to have passed.
//
// Each box's four sums are formed in float64 in the fixed order of
// cc/core/grad_boxes_math.h and rounded once, so the result is bitwise the
// same for any runner and equal to the CUDA kernel's. Work units are ranges
// of boxes; each box owns its four outputs, so it is race-free.
template <typename T>
void CropAndResizeGradBoxesCpu(const GradBoxesArgs& args, const T* image,
                               float* output, const ParallelRunner& runner);

}  // namespace crop_and_resize_grad

#endif  // CROP_AND_RESIZE_GRAD_CC_CORE_CPU_GRAD_BOXES_H_
