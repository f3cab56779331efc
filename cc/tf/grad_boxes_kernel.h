// The boxes-gradient OpKernel shared by the CPU and GPU registrations:
// validation up front, output allocation, then a device functor that runs the
// TF-free kernel.
#ifndef CROP_AND_RESIZE_GRAD_CC_TF_GRAD_BOXES_KERNEL_H_
#define CROP_AND_RESIZE_GRAD_CC_TF_GRAD_BOXES_KERNEL_H_

#include <string>

#include "absl/status/status.h"
#include "cc/core/checks.h"
#include "cc/core/grad_boxes_args.h"
#include "cc/tf/grad_image_kernel.h"  // StorageOf, StoragePointer
#include "cc/tf/status.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/framework/tensor_shape.h"

namespace crop_and_resize_grad {

template <typename T>
const typename StorageOf<T>::type* ConstStoragePointer(
    const tensorflow::Tensor& t) {
  return reinterpret_cast<const typename StorageOf<T>::type*>(
      t.flat<T>().data());
}

// The per-device half of the op. CheckBoxes validates the box values (on the
// host for CPU, on the device for GPU) before the output is allocated;
// operator() then fills the allocated [num_boxes, 4] output.
template <typename Device, typename T>
struct GradBoxesFunctor {
  absl::Status CheckBoxes(tensorflow::OpKernelContext* ctx,
                          const GradBoxesArgs& args);
  void operator()(tensorflow::OpKernelContext* ctx, const GradBoxesArgs& args,
                  const tensorflow::Tensor& image, tensorflow::Tensor* output);
};

// The `method` attr.
inline absl::Status ReadGradBoxesMethod(tensorflow::OpKernelConstruction* ctx,
                                        Method* method) {
  std::string name;
  TF_RETURN_IF_ERROR(ctx->GetAttr("method", &name));
  if (name != "bilinear" && name != "nearest") {
    return InvalidArgument("method must be 'bilinear' or 'nearest', got '",
                           name, "'");
  }
  *method = name == "bilinear" ? Method::kBilinear : Method::kNearest;
  return absl::OkStatus();
}

// Checks the shapes (inputs grads, image, boxes, box_ind) with the shared
// core check and fills `args`, data pointers included.
inline absl::Status GradBoxesInputArgs(tensorflow::OpKernelContext* ctx,
                                       Method method, GradBoxesArgs* args) {
  const tensorflow::Tensor& grads = ctx->input(0);
  const tensorflow::Tensor& image = ctx->input(1);
  const tensorflow::Tensor& boxes = ctx->input(2);
  const tensorflow::Tensor& box_ind = ctx->input(3);
  TF_RETURN_IF_ERROR(ToStatus(CheckGradBoxesShapes(
      ShapeOf(grads), ShapeOf(image), ShapeOf(boxes), ShapeOf(box_ind), args)));
  args->method = method;
  args->grads = grads.flat<float>().data();
  args->boxes = boxes.flat<float>().data();
  args->box_ind = box_ind.flat<int32_t>().data();
  return absl::OkStatus();
}

template <typename Device, typename T>
class CropAndResizeGradBoxesOp : public tensorflow::OpKernel {
 public:
  explicit CropAndResizeGradBoxesOp(tensorflow::OpKernelConstruction* ctx)
      : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ReadGradBoxesMethod(ctx, &method_));
  }

  void Compute(tensorflow::OpKernelContext* ctx) override {
    const tensorflow::Tensor& image = ctx->input(1);
    const tensorflow::Tensor& boxes = ctx->input(2);
    GradBoxesArgs args;
    OP_REQUIRES_OK(ctx, GradBoxesInputArgs(ctx, method_, &args));

    GradBoxesFunctor<Device, T> functor;
    OP_REQUIRES_OK(ctx, functor.CheckBoxes(ctx, args));
    tensorflow::Tensor* output = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, boxes.shape(), &output));
    functor(ctx, args, image, output);
  }

 private:
  Method method_ = Method::kBilinear;
};

}  // namespace crop_and_resize_grad

#endif  // CROP_AND_RESIZE_GRAD_CC_TF_GRAD_BOXES_KERNEL_H_
