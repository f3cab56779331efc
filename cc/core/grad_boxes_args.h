// Device-neutral arguments of the boxes-gradient kernels (CPU and CUDA).
#ifndef CROP_AND_RESIZE_GRAD_CC_CORE_GRAD_BOXES_ARGS_H_
#define CROP_AND_RESIZE_GRAD_CC_CORE_GRAD_BOXES_ARGS_H_

#include <stdint.h>

#include "cc/core/grad_image_args.h"

namespace crop_and_resize_grad {

// The boxes gradient: CropArgs plus the image (its element type is the
// kernel's template parameter, so it is passed beside these); output
// [num_boxes, 4] float32. Both methods use the bilinear formula; `method` is
// accepted for parity with TF.
struct GradBoxesArgs : CropArgs {};

}  // namespace crop_and_resize_grad

#endif  // CROP_AND_RESIZE_GRAD_CC_CORE_GRAD_BOXES_ARGS_H_
