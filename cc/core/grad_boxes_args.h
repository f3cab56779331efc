// Device-neutral arguments of the boxes-gradient kernels (CPU and CUDA).
#ifndef CROP_AND_RESIZE_GRAD_CC_CORE_GRAD_BOXES_ARGS_H_
#define CROP_AND_RESIZE_GRAD_CC_CORE_GRAD_BOXES_ARGS_H_

#include <stdint.h>

#include "cc/core/sampling.h"

namespace crop_and_resize_grad {

// Shapes: grads [num_boxes, crop_height, crop_width, depth], image
// [batch, height, width, depth] (its element type is the kernel's template
// parameter), boxes [num_boxes, 4], box_ind [num_boxes], output
// [num_boxes, 4] float32. All arrays are dense and row-major; host pointers
// for the CPU kernel, device pointers for the CUDA kernel.
struct GradBoxesArgs {
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
  // Accepted for parity with TF; both methods use the bilinear formula.
  Method method = Method::kBilinear;
};

}  // namespace crop_and_resize_grad

#endif  // CROP_AND_RESIZE_GRAD_CC_CORE_GRAD_BOXES_ARGS_H_
