// GPU registration of the boxes gradient (built when CUDA is on), as an
// AsyncOpKernel: the asynchronous device-side box check of cc/tf/gpu_util.h
// (RunAfterDeviceBoxCheck) gates the launch without blocking, then one kernel
// (cuda/grad_boxes.h) writes the [N, 4] output. The kernel has no atomics and
// sums in the CPU kernel's fixed order, so the op is deterministic with or
// without op determinism.
#include <cuda_runtime_api.h>

#include "cc/tf/gpu_util.h"
#include "cc/tf/grad_boxes_kernel.h"
#include "cc/tf/op_names.h"
#include "cuda/grad_boxes.h"
#include "tensorflow/core/framework/register_types.h"

namespace crop_and_resize_grad {

namespace {

template <typename T>
class CropAndResizeGradBoxesGpuOp : public tensorflow::AsyncOpKernel {
 public:
  explicit CropAndResizeGradBoxesGpuOp(tensorflow::OpKernelConstruction* ctx)
      : AsyncOpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ReadGradBoxesMethod(ctx, &method_));
  }

  void ComputeAsync(tensorflow::OpKernelContext* ctx,
                    DoneCallback done) override {
    GradBoxesArgs args;
    OP_REQUIRES_OK_ASYNC(ctx, GradBoxesInputArgs(ctx, method_, &args), done);
    // Runs after the box check passed, possibly on another thread; the
    // inputs stay alive until done().
    auto compute = [ctx, args]() {
      const absl::Status status = Launch(ctx, args);
      if (!status.ok()) ctx->CtxFailureWithWarning(__FILE__, __LINE__, status);
    };
    RunAfterDeviceBoxCheck(ctx, args.boxes, args.box_ind, args.num_boxes,
                           args.batch, std::move(compute), std::move(done));
  }

 private:
  // Allocates the output and enqueues the kernel (no OP_REQUIRES: this runs
  // inside an asynchronous kernel, on TF's event-manager thread).
  static absl::Status Launch(tensorflow::OpKernelContext* ctx,
                             const GradBoxesArgs& args) {
    using Storage = typename StorageOf<T>::type;
    tensorflow::Tensor* output = nullptr;
    TF_RETURN_IF_ERROR(ctx->allocate_output(0, ctx->input(2).shape(), &output));
    if (args.num_boxes == 0) return absl::OkStatus();
    cudaStream_t stream = nullptr;
    TF_RETURN_IF_ERROR(SetDeviceAndGetStream(ctx, &stream));
    return CudaStatus(cuda::LaunchCropAndResizeGradBoxesTyped<Storage>(
                          args, ConstStoragePointer<T>(ctx->input(1)),
                          output->flat<float>().data(), stream),
                      "crop_and_resize_grad_boxes launch");
  }

  Method method_ = Method::kBilinear;
};

}  // namespace

#define CRG_REGISTER_GPU(T)                                   \
  REGISTER_KERNEL_BUILDER(Name(kGradBoxesOpName)              \
                              .Device(tensorflow::DEVICE_GPU) \
                              .TypeConstraint<T>("T"),        \
                          CropAndResizeGradBoxesGpuOp<T>);

CRG_FOR_EACH_FLOAT_TYPE(CRG_REGISTER_GPU);

#undef CRG_REGISTER_GPU

}  // namespace crop_and_resize_grad
