// Registered op names. Namespaced with '>' so that they cannot clash with
// TensorFlow's builtin ops.
#ifndef CROP_AND_RESIZE_GRAD_CC_TF_OP_NAMES_H_
#define CROP_AND_RESIZE_GRAD_CC_TF_OP_NAMES_H_

namespace crop_and_resize_grad {

inline constexpr char kGradImageOpName[] =
    "CropAndResizeGrad>CropAndResizeGradImage";
inline constexpr char kGradBoxesOpName[] =
    "CropAndResizeGrad>CropAndResizeGradBoxes";

}  // namespace crop_and_resize_grad

#endif  // CROP_AND_RESIZE_GRAD_CC_TF_OP_NAMES_H_
