// GPU registration (built when CUDA is on). Box values live on the device:
// a check kernel reduces them to one status word, which is copied back and
// waited for before the main launch, so a bad box gives the same TF error as
// on the CPU. That costs one tiny kernel, a 4-byte copy and a stream sync.
#include <cuda_runtime_api.h>

#include "cc/tf/grad_image_kernel.h"
#include "cc/tf/op_names.h"
#include "cuda/grad_image.h"
#include "tensorflow/core/framework/register_types.h"
#include "tensorflow/core/util/determinism.h"
#include "xla/stream_executor/stream.h"
#include "xla/stream_executor/stream_executor.h"

namespace crop_and_resize_grad {

// A tag type: the op library never touches Eigen's GPU device itself.
struct GPUDevice {};

namespace {

absl::Status CudaStatus(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return absl::OkStatus();
  return absl::InternalError(
      absl::StrCat(what, " failed: ", cudaGetErrorString(err)));
}

// TF's stream for this op, with our (static) CUDA runtime pointed at the
// stream's device: the runtime keeps its own current device per thread.
absl::Status SetDeviceAndGetStream(tensorflow::OpKernelContext* ctx,
                                   cudaStream_t* stream) {
  stream_executor::Stream* se_stream = ctx->op_device_context()->stream();
  const int ordinal = se_stream->parent()->device_ordinal();
  if (ordinal >= 0) {
    TF_RETURN_IF_ERROR(CudaStatus(cudaSetDevice(ordinal), "cudaSetDevice"));
  }
  *stream =
      static_cast<cudaStream_t>(se_stream->platform_specific_handle().stream);
  return absl::OkStatus();
}

// Runs the device-side box check and returns its verdict as a TF status.
absl::Status CheckBoxesOnDevice(tensorflow::OpKernelContext* ctx,
                                const GradImageArgs& args,
                                cudaStream_t stream) {
  if (args.num_boxes == 0) return absl::OkStatus();
  tensorflow::Tensor status;
  TF_RETURN_IF_ERROR(ctx->allocate_temp(tensorflow::DT_INT32,
                                        tensorflow::TensorShape({1}), &status));
  int32_t* device_status = status.flat<int32_t>().data();
  TF_RETURN_IF_ERROR(CudaStatus(
      cuda::LaunchCheckBoxValues(args.boxes, args.box_ind, args.num_boxes,
                                 args.batch, device_status, stream),
      "box check launch"));
  int32_t host_status = 0;
  TF_RETURN_IF_ERROR(CudaStatus(
      cudaMemcpyAsync(&host_status, device_status, sizeof(host_status),
                      cudaMemcpyDeviceToHost, stream),
      "box check copy"));
  TF_RETURN_IF_ERROR(
      CudaStatus(cudaStreamSynchronize(stream), "box check sync"));
  switch (host_status) {
    case cuda::kBoxesOk:
      return absl::OkStatus();
    case cuda::kBoxIndexOutOfRange:
      return OutOfRange(BoxIndexOutOfRangeMessage(args.batch));
    default:
      return InvalidArgument(NonFiniteBoxesMessage());
  }
}

}  // namespace

template <typename T>
struct GradImageFunctor<GPUDevice, T> {
  absl::Status CheckBoxes(tensorflow::OpKernelContext* ctx,
                          const GradImageArgs& args) {
    cudaStream_t stream = nullptr;
    TF_RETURN_IF_ERROR(SetDeviceAndGetStream(ctx, &stream));
    return CheckBoxesOnDevice(ctx, args, stream);
  }

  void operator()(tensorflow::OpKernelContext* ctx, const GradImageArgs& args,
                  bool deterministic, tensorflow::Tensor* output) {
    using Storage = typename StorageOf<T>::type;
    cudaStream_t stream = nullptr;
    OP_REQUIRES_OK(ctx, SetDeviceAndGetStream(ctx, &stream));
    if (output->NumElements() == 0) return;
    deterministic = deterministic || tensorflow::OpDeterminismRequired();
    const cuda::DType dtype = cuda::DTypeOf<Storage>::value;
    const size_t scratch_bytes =
        cuda::GradImageScratchBytes(args, dtype, deterministic);
    tensorflow::Tensor scratch;
    void* scratch_data = nullptr;
    if (scratch_bytes > 0) {
      OP_REQUIRES_OK(
          ctx, ctx->allocate_temp(tensorflow::DT_INT8,
                                  tensorflow::TensorShape(
                                      {static_cast<int64_t>(scratch_bytes)}),
                                  &scratch));
      scratch_data = scratch.flat<int8_t>().data();
    }
    OP_REQUIRES_OK(ctx, CudaStatus(cuda::LaunchCropAndResizeGradImage(
                                       args, dtype, deterministic,
                                       StoragePointer<T>(output), scratch_data,
                                       scratch_bytes, stream),
                                   "crop_and_resize_grad launch"));
  }
};

#define CRG_REGISTER_GPU(T)                                   \
  REGISTER_KERNEL_BUILDER(Name(kGradImageOpName)              \
                              .Device(tensorflow::DEVICE_GPU) \
                              .TypeConstraint<T>("T")         \
                              .HostMemory("image_size"),      \
                          CropAndResizeGradImageOp<GPUDevice, T>);

CRG_REGISTER_GPU(Eigen::half);
CRG_REGISTER_GPU(Eigen::bfloat16);
CRG_REGISTER_GPU(float);
CRG_REGISTER_GPU(double);

#undef CRG_REGISTER_GPU

}  // namespace crop_and_resize_grad
