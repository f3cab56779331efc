#include "cc/core/checks.h"

#include <math.h>

#include <string>

namespace crop_and_resize_grad {
namespace {

CheckResult Invalid(std::string message) {
  return {ErrorCode::kInvalidArgument, std::move(message)};
}

}  // namespace

std::string ShapeString(const Shape& shape) {
  std::string s = "[";
  for (int i = 0; i < shape.rank && i < Shape::kMaxDims; ++i) {
    if (i > 0) s += ", ";
    s += std::to_string(shape.dims[i]);
  }
  if (shape.rank > Shape::kMaxDims) s += ", ...";
  return s + "]";
}

namespace {

// The checks both gradients share: grads, boxes and box_ind, and N.
CheckResult CheckCropShapes(const Shape& grads, const Shape& boxes,
                            const Shape& box_ind) {
  if (grads.rank != 4) {
    return Invalid(
        "grads must be 4-D [num_boxes, crop_height, crop_width, depth], got "
        "shape " +
        ShapeString(grads));
  }
  if (grads.dim(1) <= 0 || grads.dim(2) <= 0) {
    return Invalid("grads crop dimensions must be positive, got shape " +
                   ShapeString(grads));
  }
  if (boxes.rank != 2 || boxes.dim(1) != 4) {
    return Invalid("boxes must be 2-D [num_boxes, 4], got shape " +
                   ShapeString(boxes));
  }
  if (box_ind.rank != 1) {
    return Invalid("box_ind must be 1-D [num_boxes], got shape " +
                   ShapeString(box_ind));
  }
  const int64_t num_boxes = boxes.dim(0);
  if (box_ind.dim(0) != num_boxes) {
    return Invalid("box_ind has " + std::to_string(box_ind.dim(0)) +
                   " elements but boxes has " + std::to_string(num_boxes) +
                   " rows");
  }
  if (grads.dim(0) != num_boxes) {
    return Invalid("grads has " + std::to_string(grads.dim(0)) +
                   " boxes but boxes has " + std::to_string(num_boxes) +
                   " rows");
  }
  return {};
}

}  // namespace

CheckResult CheckGradImageShapes(const Shape& grads, const Shape& boxes,
                                 const Shape& box_ind,
                                 const Shape& image_size_shape,
                                 const int64_t* image_size_values,
                                 GradImageArgs* args) {
  CheckResult common = CheckCropShapes(grads, boxes, box_ind);
  if (!common.ok()) return common;
  const int64_t num_boxes = boxes.dim(0);
  if (image_size_shape.rank != 1 || image_size_shape.dim(0) != 4) {
    return Invalid(
        "image_size must be 1-D with 4 elements [batch, height, width, "
        "depth], got shape " +
        ShapeString(image_size_shape));
  }
  const int64_t* v = image_size_values;
  for (int i = 0; i < 4; ++i) {
    // The TF op takes int32; other front ends must not pass more.
    if (v[i] < INT32_MIN || v[i] > INT32_MAX) {
      return Invalid("image_size[" + std::to_string(i) +
                     "] = " + std::to_string(v[i]) + " does not fit in int32");
    }
  }
  const int64_t batch = v[0], height = v[1], width = v[2], depth = v[3];
  if (height <= 0 || width <= 0) {
    return Invalid("image_size height and width must be positive, got " +
                   std::to_string(height) + " x " + std::to_string(width));
  }
  if (batch < 0 || depth < 0) {
    return Invalid(
        "image_size batch and depth must be non-negative, got batch " +
        std::to_string(batch) + " and depth " + std::to_string(depth));
  }
  if (depth != grads.dim(3)) {
    return Invalid("image_size and grads are incompatible: depth " +
                   std::to_string(depth) + " in image_size but " +
                   std::to_string(grads.dim(3)) + " in grads");
  }
  int64_t elements = 1;
  for (int i = 0; i < 4; ++i) {
    if (__builtin_mul_overflow(elements, v[i], &elements)) {
      return Invalid("image_size [" + std::to_string(batch) + ", " +
                     std::to_string(height) + ", " + std::to_string(width) +
                     ", " + std::to_string(depth) +
                     "] has more elements than a tensor can index");
    }
  }
  args->num_boxes = num_boxes;
  args->crop_height = grads.dim(1);
  args->crop_width = grads.dim(2);
  args->batch = batch;
  args->height = height;
  args->width = width;
  args->depth = depth;
  return {};
}

CheckResult CheckGradBoxesShapes(const Shape& grads, const Shape& image,
                                 const Shape& boxes, const Shape& box_ind,
                                 GradBoxesArgs* args) {
  CheckResult common = CheckCropShapes(grads, boxes, box_ind);
  if (!common.ok()) return common;
  if (image.rank != 4) {
    return Invalid(
        "image must be 4-D [batch, height, width, depth], got shape " +
        ShapeString(image));
  }
  if (image.dim(1) <= 0 || image.dim(2) <= 0) {
    return Invalid("image height and width must be positive, got shape " +
                   ShapeString(image));
  }
  if (image.dim(3) != grads.dim(3)) {
    return Invalid("image and grads are incompatible: depth " +
                   std::to_string(image.dim(3)) + " in image but " +
                   std::to_string(grads.dim(3)) + " in grads");
  }
  args->num_boxes = boxes.dim(0);
  args->crop_height = grads.dim(1);
  args->crop_width = grads.dim(2);
  args->batch = image.dim(0);
  args->height = image.dim(1);
  args->width = image.dim(2);
  args->depth = image.dim(3);
  return {};
}

std::string BoxIndexOutOfRangeMessage(int64_t batch) {
  return "box_ind has values outside [0, batch_size), with batch_size " +
         std::to_string(batch);
}

std::string NonFiniteBoxesMessage() {
  return "boxes must be finite, but some are NaN or Inf";
}

CheckResult CheckBoxValues(const float* boxes, const int32_t* box_ind,
                           int64_t num_boxes, int64_t batch) {
  for (int64_t n = 0; n < num_boxes; ++n) {
    for (int k = 0; k < 4; ++k) {
      if (!isfinite(boxes[n * 4 + k])) {
        return Invalid("boxes must be finite, but boxes[" + std::to_string(n) +
                       ", " + std::to_string(k) + "] is " +
                       std::to_string(boxes[n * 4 + k]));
      }
    }
    const int64_t b = box_ind[n];
    if (b < 0 || b >= batch) {
      return {ErrorCode::kOutOfRange,
              "box_ind has values outside [0, batch_size): box_ind[" +
                  std::to_string(n) + "] = " + std::to_string(b) +
                  " with batch_size " + std::to_string(batch)};
    }
  }
  return {};
}

}  // namespace crop_and_resize_grad
