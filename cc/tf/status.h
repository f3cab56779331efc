// TF glue helpers: core check results as TF statuses, tensor shapes as core
// shapes.
#ifndef CROP_AND_RESIZE_GRAD_CC_TF_STATUS_H_
#define CROP_AND_RESIZE_GRAD_CC_TF_STATUS_H_

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "cc/core/checks.h"
#include "tensorflow/core/framework/tensor.h"

namespace crop_and_resize_grad {

// absl::StrCat-style error builders (TF's errors:: helpers are deprecated).
template <typename... Args>
absl::Status InvalidArgument(const Args&... args) {
  return absl::InvalidArgumentError(absl::StrCat(args...));
}
template <typename... Args>
absl::Status OutOfRange(const Args&... args) {
  return absl::OutOfRangeError(absl::StrCat(args...));
}

inline absl::Status ToStatus(const CheckResult& check) {
  switch (check.code) {
    case ErrorCode::kOk:
      return absl::OkStatus();
    case ErrorCode::kOutOfRange:
      return OutOfRange(check.message);
    case ErrorCode::kInvalidArgument:
      break;
  }
  return InvalidArgument(check.message);
}

// The core's view of a tensor's shape.
inline Shape ShapeOf(const tensorflow::Tensor& t) {
  Shape s;
  s.rank = t.dims();
  for (int i = 0; i < t.dims() && i < Shape::kMaxDims; ++i) {
    s.dims[i] = t.dim_size(i);
  }
  return s;
}

}  // namespace crop_and_resize_grad

#endif  // CROP_AND_RESIZE_GRAD_CC_TF_STATUS_H_
