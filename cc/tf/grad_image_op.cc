// Registration of the op and its shape function. Kernels live beside it in
// cc/tf.
#include "cc/tf/op_names.h"
#include "cc/tf/shape_fns.h"
#include "tensorflow/core/framework/common_shape_fns.h"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/shape_inference.h"

namespace crop_and_resize_grad {

using ::tensorflow::shape_inference::DimensionHandle;
using ::tensorflow::shape_inference::InferenceContext;
using ::tensorflow::shape_inference::ShapeHandle;

namespace {

absl::Status GradImageShape(InferenceContext* c) {
  ShapeHandle grads, image_size;
  DimensionHandle num_boxes, unused;
  TF_RETURN_IF_ERROR(CheckCropInputShapes(c, 0, 1, &grads, &num_boxes));
  TF_RETURN_IF_ERROR(c->WithRank(c->input(3), 1, &image_size));
  TF_RETURN_IF_ERROR(c->WithValue(c->Dim(image_size, 0), 4, &unused));

  // Static [B, H, W, D] when image_size is a constant.
  ShapeHandle output;
  TF_RETURN_IF_ERROR(c->MakeShapeFromShapeTensor(3, &output));
  TF_RETURN_IF_ERROR(c->WithRank(output, 4, &output));
  DimensionHandle depth;
  TF_RETURN_IF_ERROR(c->Merge(c->Dim(output, 3), c->Dim(grads, 3), &depth));
  TF_RETURN_IF_ERROR(c->ReplaceDim(output, 3, depth, &output));
  c->set_output(0, output);
  return absl::OkStatus();
}

}  // namespace

REGISTER_OP(kGradImageOpName)
    .Input("grads: float")
    .Input("boxes: float")
    .Input("box_ind: int32")
    .Input("image_size: int32")
    .Output("output: T")
    .Attr("T: {half, bfloat16, float, double}")
    .Attr("method: {'bilinear', 'nearest'} = 'bilinear'")
    .Attr("deterministic: bool = false")
    .SetShapeFn(GradImageShape)
    .Doc(R"doc(
Gradient of crop_and_resize with respect to the image: an exact,
race-free replacement for CropAndResizeGradImage.

grads: [num_boxes, crop_height, crop_width, depth] upstream gradient.
boxes: [num_boxes, 4] normalized [y1, x1, y2, x2]; must be finite.
box_ind: [num_boxes] image index of each box, in [0, batch).
image_size: [4] = [batch, height, width, depth] of the image.
output: [batch, height, width, depth] gradient with respect to the image.
method: sampling method of the forward crop_and_resize.
deterministic: request the bitwise-reproducible GPU algorithm (also used
  under op determinism). The CPU kernel is always deterministic and exact to
  float32 (double) summation. On the GPU, each contribution is rounded to a
  multiple of q = 2^(floor(log2 max|grads|) + ceil(log2(N*ch*cw)) - 60), so
  an element with C contributions is off by at most C*q/2 from the exact sum,
  then rounded once to T: float32 and float64 add half an ulp of T, half
  and bfloat16 half an ulp of float32 plus half an ulp of T. The bound is
  absolute, relative to the largest gradient, not to the element (full
  statement: docs/semantics.md, "Precision per dtype").
)doc");

}  // namespace crop_and_resize_grad
