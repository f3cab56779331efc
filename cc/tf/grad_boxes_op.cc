// Registration of the boxes-gradient op and its shape function. Kernels live
// beside it in cc/tf.
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

absl::Status GradBoxesShape(InferenceContext* c) {
  ShapeHandle grads, image;
  DimensionHandle num_boxes, unused;
  TF_RETURN_IF_ERROR(CheckCropInputShapes(c, 0, 2, &grads, &num_boxes));
  TF_RETURN_IF_ERROR(c->WithRank(c->input(1), 4, &image));
  TF_RETURN_IF_ERROR(c->Merge(c->Dim(image, 3), c->Dim(grads, 3), &unused));
  c->set_output(0, c->Matrix(num_boxes, 4));
  return absl::OkStatus();
}

}  // namespace

REGISTER_OP(kGradBoxesOpName)
    .Input("grads: float")
    .Input("image: T")
    .Input("boxes: float")
    .Input("box_ind: int32")
    .Output("output: float")
    .Attr("T: {half, bfloat16, float, double}")
    .Attr("method: {'bilinear', 'nearest'} = 'bilinear'")
    .SetShapeFn(GradBoxesShape)
    .Doc(R"doc(
Gradient of crop_and_resize with respect to the boxes: a deterministic,
validated replacement for CropAndResizeGradBoxes. Sums in float64 in a fixed
order, the same on every device, and rounds once to float32.

grads: [num_boxes, crop_height, crop_width, depth] upstream gradient.
image: [batch, height, width, depth] the forward op's input image.
boxes: [num_boxes, 4] normalized [y1, x1, y2, x2]; must be finite.
box_ind: [num_boxes] image index of each box, in [0, batch).
output: [num_boxes, 4] gradient with respect to the boxes.
method: sampling method of the forward crop_and_resize. Both use the bilinear
  formula (as TF does): the derivative of a nearest sample's position is zero
  almost everywhere.
)doc");

}  // namespace crop_and_resize_grad
