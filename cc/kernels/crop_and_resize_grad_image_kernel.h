// The OpKernel shared by the CPU and GPU registrations: validation up front,
// output allocation, then a device functor that runs the TF-free kernel.
#ifndef CROP_AND_RESIZE_GRAD_CC_KERNELS_CROP_AND_RESIZE_GRAD_IMAGE_KERNEL_H_
#define CROP_AND_RESIZE_GRAD_CC_KERNELS_CROP_AND_RESIZE_GRAD_IMAGE_KERNEL_H_

#include <string>
#include <type_traits>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "cc/crop_and_resize_grad_cpu.h"
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

// The per-device half of the op. CheckBoxes validates the box values (on the
// host for CPU, with a device-side check on GPU) before the output is
// allocated; operator() then fills the allocated output.
template <typename Device, typename T>
struct GradImageFunctor {
  absl::Status CheckBoxes(tensorflow::OpKernelContext* ctx,
                          const GradImageArgs& args);
  void operator()(tensorflow::OpKernelContext* ctx, const GradImageArgs& args,
                  bool deterministic, tensorflow::Tensor* output);
};

// Shape and size checks that need no tensor values besides image_size
// (host memory). On success fills `args` (without data pointers) and
// `output_shape`.
// absl::StrCat-style error builders (TF's errors:: helpers are deprecated).
template <typename... Args>
absl::Status InvalidArgument(const Args&... args) {
  return absl::InvalidArgumentError(absl::StrCat(args...));
}
template <typename... Args>
absl::Status OutOfRange(const Args&... args) {
  return absl::OutOfRangeError(absl::StrCat(args...));
}

inline absl::Status ValidateGradImageInputs(
    const tensorflow::Tensor& grads, const tensorflow::Tensor& boxes,
    const tensorflow::Tensor& box_ind, const tensorflow::Tensor& image_size,
    GradImageArgs* args, tensorflow::TensorShape* output_shape) {
  if (grads.dims() != 4) {
    return InvalidArgument("grads image must be 4-D, got shape ",
                           grads.shape().DebugString());
  }
  if (grads.dim_size(1) <= 0 || grads.dim_size(2) <= 0) {
    return InvalidArgument("grads crop dimensions must be positive, got shape ",
                           grads.shape().DebugString());
  }
  if (boxes.dims() != 2 || boxes.dim_size(1) != 4) {
    return InvalidArgument("boxes must be 2-D [num_boxes, 4], got shape ",
                           boxes.shape().DebugString());
  }
  if (box_ind.dims() != 1) {
    return InvalidArgument("box_ind must be 1-D [num_boxes], got shape ",
                           box_ind.shape().DebugString());
  }
  const int64_t num_boxes = boxes.dim_size(0);
  if (box_ind.dim_size(0) != num_boxes) {
    return InvalidArgument("box_ind has ", box_ind.dim_size(0),
                           " elements but boxes has ", num_boxes, " rows");
  }
  if (grads.dim_size(0) != num_boxes) {
    return InvalidArgument(
        "boxes and grads have incompatible shape: grads has ",
        grads.dim_size(0), " boxes, boxes has ", num_boxes);
  }
  if (image_size.dims() != 1 || image_size.NumElements() != 4) {
    return InvalidArgument(
        "image_size must be 1-D with 4 elements [batch, height, width, depth], "
        "got shape ",
        image_size.shape().DebugString());
  }
  const auto size = image_size.vec<int32_t>();
  const int64_t batch = size(0), height = size(1), width = size(2),
                depth = size(3);
  if (height <= 0 || width <= 0) {
    return InvalidArgument("image height and width must be positive, got ",
                           height, " x ", width);
  }
  if (batch < 0 || depth < 0) {
    return InvalidArgument(
        "image batch size and depth must be non-negative, got batch ", batch,
        " and depth ", depth);
  }
  if (depth != grads.dim_size(3)) {
    return InvalidArgument("image_size and grads are incompatible: depth ",
                           depth, " in image_size but ", grads.dim_size(3),
                           " in grads");
  }
  // Fails cleanly when the element count overflows int64.
  TF_RETURN_IF_ERROR(tensorflow::TensorShape::BuildTensorShape(
      {batch, height, width, depth}, output_shape));

  args->num_boxes = num_boxes;
  args->crop_height = grads.dim_size(1);
  args->crop_width = grads.dim_size(2);
  args->batch = batch;
  args->height = height;
  args->width = width;
  args->depth = depth;
  return absl::OkStatus();
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

template <typename Device, typename T>
class CropAndResizeGradImageOp : public tensorflow::OpKernel {
 public:
  explicit CropAndResizeGradImageOp(tensorflow::OpKernelConstruction* ctx)
      : OpKernel(ctx) {
    std::string method;
    OP_REQUIRES_OK(ctx, ctx->GetAttr("method", &method));
    OP_REQUIRES(ctx, method == "bilinear" || method == "nearest",
                InvalidArgument("method must be 'bilinear' or 'nearest', got '",
                                method, "'"));
    method_ = method == "bilinear" ? Method::kBilinear : Method::kNearest;
    OP_REQUIRES_OK(ctx, ctx->GetAttr("deterministic", &deterministic_));
  }

  void Compute(tensorflow::OpKernelContext* ctx) override {
    const tensorflow::Tensor& grads = ctx->input(0);
    const tensorflow::Tensor& boxes = ctx->input(1);
    const tensorflow::Tensor& box_ind = ctx->input(2);
    const tensorflow::Tensor& image_size = ctx->input(3);

    GradImageArgs args;
    tensorflow::TensorShape output_shape;
    OP_REQUIRES_OK(
        ctx, ValidateGradImageInputs(grads, boxes, box_ind, image_size, &args,
                                     &output_shape));
    args.method = method_;
    args.grads = grads.flat<float>().data();
    args.boxes = boxes.flat<float>().data();
    args.box_ind = box_ind.flat<int32_t>().data();

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

#endif  // CROP_AND_RESIZE_GRAD_CC_KERNELS_CROP_AND_RESIZE_GRAD_IMAGE_KERNEL_H_
