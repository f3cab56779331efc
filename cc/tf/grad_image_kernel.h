// The image-gradient OpKernel of the CPU registration (validation up front,
// output allocation, then a device functor that runs the TF-free kernel),
// and the helpers the asynchronous GPU kernel (grad_image_kernel_gpu.cc)
// shares with it: attributes, shape checks, storage types.
#ifndef CROP_AND_RESIZE_GRAD_CC_TF_GRAD_IMAGE_KERNEL_H_
#define CROP_AND_RESIZE_GRAD_CC_TF_GRAD_IMAGE_KERNEL_H_

#include <string>
#include <type_traits>

#include "absl/status/status.h"
#include "cc/core/cpu/grad_image.h"
#include "cc/tf/status.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/framework/tensor_shape.h"

namespace crop_and_resize_grad {

// The TF-free storage type behind each TF dtype.
template <typename T>
struct StorageOf {
  using type = T;
};
template <>
struct StorageOf<Eigen::half> {
  using type = Half;
};
template <>
struct StorageOf<Eigen::bfloat16> {
  using type = BFloat16;
};
static_assert(sizeof(Eigen::half) == sizeof(Half), "half layout");
static_assert(sizeof(Eigen::bfloat16) == sizeof(BFloat16), "bfloat16 layout");

template <typename T>
typename StorageOf<T>::type* StoragePointer(tensorflow::Tensor* t) {
  return reinterpret_cast<typename StorageOf<T>::type*>(t->flat<T>().data());
}

// The per-device half of the op. CheckBoxes validates the box values on the
// host before the output is allocated; operator() then fills the allocated
// output.
template <typename Device, typename T>
struct GradImageFunctor {
  absl::Status CheckBoxes(tensorflow::OpKernelContext* ctx,
                          const GradImageArgs& args);
  void operator()(tensorflow::OpKernelContext* ctx, const GradImageArgs& args,
                  bool deterministic, tensorflow::Tensor* output);
};

// Reads the op's four inputs, checks their shapes and image_size (host
// memory) with the shared core check, and fills `args` (sizes, data pointers
// and `method`) and `output_shape`. Box values are not checked here.
inline absl::Status CheckAndReadGradImageInputs(
    tensorflow::OpKernelContext* ctx, Method method, GradImageArgs* args,
    tensorflow::TensorShape* output_shape) {
  const tensorflow::Tensor& grads = ctx->input(0);
  const tensorflow::Tensor& boxes = ctx->input(1);
  const tensorflow::Tensor& box_ind = ctx->input(2);
  const tensorflow::Tensor& image_size = ctx->input(3);
  int64_t size[4] = {0, 0, 0, 0};
  if (image_size.dims() == 1 && image_size.NumElements() == 4) {
    const auto values = image_size.vec<int32_t>();
    for (int i = 0; i < 4; ++i) size[i] = values(i);
  }
  TF_RETURN_IF_ERROR(ToStatus(
      CheckGradImageShapes(ShapeOf(grads), ShapeOf(boxes), ShapeOf(box_ind),
                           ShapeOf(image_size), size, args)));
  args->method = method;
  args->grads = grads.flat<float>().data();
  args->boxes = boxes.flat<float>().data();
  args->box_ind = box_ind.flat<int32_t>().data();
  return tensorflow::TensorShape::BuildTensorShape(
      {args->batch, args->height, args->width, args->depth}, output_shape);
}

// The op's attributes, shared by the CPU and GPU kernels.
inline absl::Status ReadGradImageAttrs(tensorflow::OpKernelConstruction* ctx,
                                       Method* method, bool* deterministic) {
  std::string name;
  TF_RETURN_IF_ERROR(ctx->GetAttr("method", &name));
  if (name != "bilinear" && name != "nearest") {
    return InvalidArgument("method must be 'bilinear' or 'nearest', got '",
                           name, "'");
  }
  *method = name == "bilinear" ? Method::kBilinear : Method::kNearest;
  return ctx->GetAttr("deterministic", deterministic);
}

template <typename Device, typename T>
class CropAndResizeGradImageOp : public tensorflow::OpKernel {
 public:
  explicit CropAndResizeGradImageOp(tensorflow::OpKernelConstruction* ctx)
      : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ReadGradImageAttrs(ctx, &method_, &deterministic_));
  }

  void Compute(tensorflow::OpKernelContext* ctx) override {
    GradImageArgs args;
    tensorflow::TensorShape output_shape;
    OP_REQUIRES_OK(
        ctx, CheckAndReadGradImageInputs(ctx, method_, &args, &output_shape));

    GradImageFunctor<Device, T> functor;
    OP_REQUIRES_OK(ctx, functor.CheckBoxes(ctx, args));
    tensorflow::Tensor* output = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, output_shape, &output));
    functor(ctx, args, deterministic_, output);
  }

 private:
  Method method_ = Method::kBilinear;
  bool deterministic_ = false;
};

}  // namespace crop_and_resize_grad

#endif  // CROP_AND_RESIZE_GRAD_CC_TF_GRAD_IMAGE_KERNEL_H_
