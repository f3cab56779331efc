// Shape-function pieces shared by the op registrations.
#ifndef CROP_AND_RESIZE_GRAD_CC_TF_SHAPE_FNS_H_
#define CROP_AND_RESIZE_GRAD_CC_TF_SHAPE_FNS_H_

#include "tensorflow/core/framework/shape_inference.h"

namespace crop_and_resize_grad {

// Checks the ranks of grads [N, ch, cw, D] (input `grads_input`), boxes
// [N, 4] and box_ind [N] (the inputs `boxes_input` and `boxes_input + 1`),
// and that N agrees; returns grads' shape and N.
inline absl::Status CheckCropInputShapes(
    ::tensorflow::shape_inference::InferenceContext* c, int grads_input,
    int boxes_input, ::tensorflow::shape_inference::ShapeHandle* grads,
    ::tensorflow::shape_inference::DimensionHandle* num_boxes) {
  ::tensorflow::shape_inference::ShapeHandle boxes, box_ind;
  ::tensorflow::shape_inference::DimensionHandle unused;
  TF_RETURN_IF_ERROR(c->WithRank(c->input(grads_input), 4, grads));
  TF_RETURN_IF_ERROR(c->WithRank(c->input(boxes_input), 2, &boxes));
  TF_RETURN_IF_ERROR(c->WithRank(c->input(boxes_input + 1), 1, &box_ind));
  TF_RETURN_IF_ERROR(c->WithValue(c->Dim(boxes, 1), 4, &unused));
  TF_RETURN_IF_ERROR(c->Merge(c->Dim(*grads, 0), c->Dim(boxes, 0), num_boxes));
  return c->Merge(*num_boxes, c->Dim(box_ind, 0), num_boxes);
}

}  // namespace crop_and_resize_grad

#endif  // CROP_AND_RESIZE_GRAD_CC_TF_SHAPE_FNS_H_
