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

template <typename Device, typename T>
class CropAndResizeGradBoxesOp : public tensorflow::OpKernel {
 public:
  explicit CropAndResizeGradBoxesOp(tensorflow::OpKernelConstruction* ctx)
      : OpKernel(ctx) {
    std::string method;
    OP_REQUIRES_OK(ctx, ctx->GetAttr("method", &method));
    OP_REQUIRES(ctx, method == "bilinear" || method == "nearest",
                InvalidArgument("method must be 'bilinear' or 'nearest', got '",
                                method, "'"));
    method_ = method == "bilinear" ? Method::kBilinear : Method::kNearest;
  }

  void Compute(tensorflow::OpKernelContext* ctx) override {
    const tensorflow::Tensor& grads = ctx->input(0);
    const tensorflow::Tensor& image = ctx->input(1);
    const tensorflow::Tensor& boxes = ctx->input(2);
    const tensorflow::Tensor& box_ind = ctx->input(3);

    GradBoxesArgs args;
    OP_REQUIRES_OK(ctx, ToStatus(CheckGradBoxesShapes(
                            ShapeOf(grads), ShapeOf(image), ShapeOf(boxes),
                            ShapeOf(box_ind), &args)));
    args.method = method_;
    args.grads = grads.flat<float>().data();
    args.boxes = boxes.flat<float>().data();
    args.box_ind = box_ind.flat<int32_t>().data();

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
