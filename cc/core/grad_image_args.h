// Device-neutral arguments of the kernels (CPU and CUDA): CropArgs, the
// inputs every gradient kernel reads, and the image gradient's GradImageArgs.
#ifndef CROP_AND_RESIZE_GRAD_CC_CORE_GRAD_IMAGE_ARGS_H_
#define CROP_AND_RESIZE_GRAD_CC_CORE_GRAD_IMAGE_ARGS_H_

#include <stdint.h>

#include "cc/core/sampling.h"

namespace crop_and_resize_grad {

// Shapes: grads [num_boxes, crop_height, crop_width, depth], boxes
// [num_boxes, 4], box_ind [num_boxes]; the image is [batch, height, width,
// depth]. All arrays are dense and row-major; the pointers are host pointers
// for the CPU kernels and device pointers for the CUDA kernels.
struct CropArgs {
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
  Method method = Method::kBilinear;
};

// The image gradient: output [batch, height, width, depth].
struct GradImageArgs : CropArgs {};

}  // namespace crop_and_resize_grad

#endif  // CROP_AND_RESIZE_GRAD_CC_CORE_GRAD_IMAGE_ARGS_H_
