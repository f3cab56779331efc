// Registered op names, and the dtypes the kernels are registered for.
// Names are namespaced with '>' so that they cannot clash with
// TensorFlow's builtin ops.
#ifndef CROP_AND_RESIZE_GRAD_CC_TF_OP_NAMES_H_
#define CROP_AND_RESIZE_GRAD_CC_TF_OP_NAMES_H_

namespace crop_and_resize_grad {

inline constexpr char kGradImageOpName[] =
    "CropAndResizeGrad>CropAndResizeGradImage";
inline constexpr char kGradBoxesOpName[] =
    "CropAndResizeGrad>CropAndResizeGradBoxes";

}  // namespace crop_and_resize_grad

// Expands m(T) for every dtype T the ops take as their image (or output) type.
#define CRG_FOR_EACH_FLOAT_TYPE(m) \
  m(Eigen::half);                  \
  m(Eigen::bfloat16);              \
  m(float);                        \
  m(double)

#endif  // CROP_AND_RESIZE_GRAD_CC_TF_OP_NAMES_H_
