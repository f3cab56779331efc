// Input checks shared by every front end (the TF ops and the pybind11
// module), so that each bad input gets one message wherever it comes from.
// TF-free: the front ends map ErrorCode to their own error types.
#ifndef CROP_AND_RESIZE_GRAD_CC_CORE_CHECKS_H_
#define CROP_AND_RESIZE_GRAD_CC_CORE_CHECKS_H_

#include <stdint.h>

#include <string>

#include "cc/core/grad_boxes_args.h"
#include "cc/core/grad_image_args.h"

namespace crop_and_resize_grad {

enum class ErrorCode { kOk, kInvalidArgument, kOutOfRange };

struct CheckResult {
  ErrorCode code = ErrorCode::kOk;
  std::string message;
  bool ok() const { return code == ErrorCode::kOk; }
};

// A tensor shape as the front end sees it: the rank and the first kMaxDims
// dimensions (the checks never need more than the rank of a larger one).
struct Shape {
  static constexpr int kMaxDims = 8;
  int rank = 0;
  int64_t dims[kMaxDims] = {};
  int64_t dim(int i) const { return dims[i]; }
};

// Formats a shape as "[2, 3]" for messages.
std::string ShapeString(const Shape& shape);

// Checks the shapes of the image-gradient inputs and the values of
// image_size ([batch, height, width, depth], given as `image_size_shape` and
// its values). On success fills the sizes in `args` (not the data pointers
// nor the method). The output's element count must fit in int64.
CheckResult CheckGradImageShapes(const Shape& grads, const Shape& boxes,
                                 const Shape& box_ind,
                                 const Shape& image_size_shape,
                                 const int64_t* image_size_values,
                                 GradImageArgs* args);

// Checks the shapes of the boxes-gradient inputs (grads, image, boxes,
// box_ind) with the image gradient's rules and messages, plus: image 4-D
// with positive height and width, and the same depth as grads. On success
// fills the sizes in `args` (not the data pointers nor the method).
CheckResult CheckGradBoxesShapes(const Shape& grads, const Shape& image,
                                 const Shape& boxes, const Shape& box_ind,
                                 GradBoxesArgs* args);

// Checks the values of boxes and box_ind: every coordinate finite and every
// index in [0, batch). Shapes must have been checked. Reports the first bad
// box by index and value.
CheckResult CheckBoxValues(const float* boxes, const int32_t* box_ind,
                           int64_t num_boxes, int64_t batch);

// The message of an out-of-range box_ind found by a device-side check, which
// knows only that some index is bad.
std::string BoxIndexOutOfRangeMessage(int64_t batch);
// Likewise for a non-finite box coordinate.
std::string NonFiniteBoxesMessage();

}  // namespace crop_and_resize_grad

#endif  // CROP_AND_RESIZE_GRAD_CC_CORE_CHECKS_H_
