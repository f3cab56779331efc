// GPU registration (built when CUDA is on), as an AsyncOpKernel. Box values
// live on the device: a check kernel reduces them to one status word, copied
// asynchronously into pinned host memory; TF's event manager then runs the
// rest (fail with the CPU's error, or allocate the output and launch) once
// the stream gets there. No call blocks the executor thread or synchronizes
// the stream (cc/tf/gpu_util.h, RunAfterDeviceBoxCheck).
#include <cuda_runtime_api.h>

#include "cc/tf/gpu_util.h"
#include "cc/tf/grad_image_kernel.h"
#include "cc/tf/op_names.h"
#include "cuda/grad_image.h"
#include "tensorflow/core/framework/register_types.h"
#include "tensorflow/core/util/determinism.h"

namespace crop_and_resize_grad {

namespace {

template <typename T>
class CropAndResizeGradImageGpuOp : public tensorflow::AsyncOpKernel {
 public:
  explicit CropAndResizeGradImageGpuOp(tensorflow::OpKernelConstruction* ctx)
      : AsyncOpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ReadGradImageAttrs(ctx, &method_, &deterministic_));
  }

  void ComputeAsync(tensorflow::OpKernelContext* ctx,
                    DoneCallback done) override {
    GradImageArgs args;
    tensorflow::TensorShape output_shape;
    OP_REQUIRES_OK_ASYNC(
        ctx, CheckAndReadGradImageInputs(ctx, method_, &args, &output_shape),
        done);
    const bool deterministic =
        deterministic_ || tensorflow::OpDeterminismRequired();
    // Runs after the box check passed, possibly on another thread; the
    // inputs stay alive until done().
    auto compute = [ctx, args, output_shape, deterministic]() {
      const absl::Status status =
          Launch(ctx, args, output_shape, deterministic);
      if (!status.ok()) ctx->CtxFailureWithWarning(__FILE__, __LINE__, status);
    };
    RunAfterDeviceBoxCheck(ctx, args.boxes, args.box_ind, args.num_boxes,
                           args.batch, std::move(compute), std::move(done));
  }

 private:
  // Allocates the output and enqueues the kernels (no OP_REQUIRES: this runs
  // inside an asynchronous kernel, on TF's event-manager thread).
  static absl::Status Launch(tensorflow::OpKernelContext* ctx,
                             const GradImageArgs& args,
                             const tensorflow::TensorShape& output_shape,
                             bool deterministic) {
    using Storage = typename StorageOf<T>::type;
    tensorflow::Tensor* output = nullptr;
    TF_RETURN_IF_ERROR(ctx->allocate_output(0, output_shape, &output));
    if (output->NumElements() == 0) return absl::OkStatus();
    cudaStream_t stream = nullptr;
    TF_RETURN_IF_ERROR(SetDeviceAndGetStream(ctx, &stream));
    const cuda::DType dtype = cuda::DTypeOf<Storage>::value;
    const size_t scratch_bytes =
        cuda::GradImageScratchBytes(args, dtype, deterministic);
    tensorflow::Tensor scratch;
    void* scratch_data = nullptr;
    if (scratch_bytes > 0) {
      TF_RETURN_IF_ERROR(ctx->allocate_temp(
          tensorflow::DT_INT8,
          tensorflow::TensorShape({static_cast<int64_t>(scratch_bytes)}),
          &scratch));
      scratch_data = scratch.flat<int8_t>().data();
    }
    return CudaStatus(cuda::LaunchCropAndResizeGradImage(
                          args, dtype, deterministic, StoragePointer<T>(output),
                          scratch_data, scratch_bytes, stream),
                      "crop_and_resize_grad launch");
  }

  Method method_ = Method::kBilinear;
  bool deterministic_ = false;
};

}  // namespace

#define CRG_REGISTER_GPU(T)                                   \
  REGISTER_KERNEL_BUILDER(Name(kGradImageOpName)              \
                              .Device(tensorflow::DEVICE_GPU) \
                              .TypeConstraint<T>("T")         \
                              .HostMemory("image_size"),      \
                          CropAndResizeGradImageGpuOp<T>);

CRG_FOR_EACH_FLOAT_TYPE(CRG_REGISTER_GPU);

#undef CRG_REGISTER_GPU

}  // namespace crop_and_resize_grad
