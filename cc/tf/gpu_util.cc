// See gpu_util.h.
#include "cc/tf/gpu_util.h"

#include <mutex>
#include <unordered_map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "cc/core/checks.h"
#include "cc/tf/status.h"
#include "cuda/grad_image.h"
#include "tensorflow/core/common_runtime/device/device_event_mgr.h"
#include "tensorflow/core/framework/allocator.h"
#include "tensorflow/core/framework/device_base.h"
#include "xla/stream_executor/stream.h"
#include "xla/stream_executor/stream_executor.h"

namespace crop_and_resize_grad {

namespace {

std::string CudaVersionString(int v) {
  return absl::StrCat(v / 1000, ".", (v % 1000) / 10);
}

absl::Status CheckDeviceSupportedUncached(int ordinal) {
  int driver = 0, runtime = 0;
  (void)cudaDriverGetVersion(&driver);
  (void)cudaRuntimeGetVersion(&runtime);
  const std::string fix = absl::StrCat(
      "Update the NVIDIA driver (the CUDA ", runtime / 1000, " runtime needs r",
      runtime / 1000 >= 13 ? "580" : "525",
      " or newer), or rebuild crop_and_resize_grad with a CUDA 12 toolkit, "
      "which runs on r525+ drivers (see docs/gpu.md).");
  if (driver == 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "crop_and_resize_grad: no CUDA driver found; this build uses the CUDA ",
        CudaVersionString(runtime), " runtime. ", fix));
  }
  // Minor-version compatibility: any driver of the runtime's major version
  // (or newer) runs it.
  if (driver / 1000 < runtime / 1000) {
    return absl::FailedPreconditionError(
        absl::StrCat("crop_and_resize_grad was built with the CUDA ",
                     CudaVersionString(runtime),
                     " runtime, but the installed driver "
                     "supports only CUDA ",
                     CudaVersionString(driver), ". ", fix));
  }
  cudaError_t err = cudaSetDevice(ordinal);
  if (err == cudaErrorInsufficientDriver) {
    return absl::FailedPreconditionError(absl::StrCat(
        "crop_and_resize_grad: the CUDA ", CudaVersionString(runtime),
        " runtime cannot run on the installed driver (CUDA ",
        CudaVersionString(driver), "): ", cudaGetErrorString(err), ". ", fix));
  }
  TF_RETURN_IF_ERROR(CudaStatus(err, "cudaSetDevice"));
  err = cuda::CheckKernelImage();
  if (err == cudaSuccess) return absl::OkStatus();
  int major = 0, minor = 0;
  (void)cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor,
                               ordinal);
  (void)cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor,
                               ordinal);
  (void)cudaGetLastError();
  if (err == cudaErrorNoKernelImageForDevice ||
      err == cudaErrorInvalidDeviceFunction) {
    return absl::FailedPreconditionError(absl::StrCat(
        "crop_and_resize_grad has no GPU code for this device (compute "
        "capability ",
        major, ".", minor, "): it was built with the CUDA ",
        CudaVersionString(runtime),
        " toolkit for the architectures in crop_and_resize_grad.build_info(). "
        "Rebuild with CMAKE_CUDA_ARCHITECTURES including ",
        major, minor,
        (major < 7 || (major == 7 && minor < 5))
            ? " and a CUDA 12 toolkit (CUDA 13 has no sm_60/sm_70)"
            : "",
        " (see docs/gpu.md)."));
  }
  return CudaStatus(err, "checking the GPU code for the device");
}

}  // namespace

absl::Status CudaStatus(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return absl::OkStatus();
  return absl::InternalError(
      absl::StrCat(what, " failed: ", cudaGetErrorString(err)));
}

absl::Status CheckDeviceSupported(int ordinal) {
  static std::mutex mu;
  static auto* verdicts = new std::unordered_map<int, absl::Status>();
  std::lock_guard<std::mutex> lock(mu);
  auto it = verdicts->find(ordinal);
  if (it == verdicts->end()) {
    it =
        verdicts->emplace(ordinal, CheckDeviceSupportedUncached(ordinal)).first;
  }
  return it->second;
}

absl::Status SetDeviceAndGetStream(tensorflow::OpKernelContext* ctx,
                                   cudaStream_t* stream) {
  stream_executor::Stream* se_stream = ctx->op_device_context()->stream();
  const int ordinal = se_stream->parent()->device_ordinal();
  if (ordinal >= 0) {
    TF_RETURN_IF_ERROR(CheckDeviceSupported(ordinal));
    TF_RETURN_IF_ERROR(CudaStatus(cudaSetDevice(ordinal), "cudaSetDevice"));
  }
  *stream =
      static_cast<cudaStream_t>(se_stream->platform_specific_handle().stream);
  return absl::OkStatus();
}

void RunAfterDeviceBoxCheck(tensorflow::OpKernelContext* ctx,
                            const float* boxes, const int32_t* box_ind,
                            int64_t num_boxes, int64_t batch,
                            std::function<void()> compute,
                            tensorflow::AsyncOpKernel::DoneCallback done) {
  if (num_boxes == 0) {
    compute();
    done();
    return;
  }
  cudaStream_t stream = nullptr;
  OP_REQUIRES_OK_ASYNC(ctx, SetDeviceAndGetStream(ctx, &stream), done);
  tensorflow::Tensor device_status;
  OP_REQUIRES_OK_ASYNC(
      ctx,
      ctx->allocate_temp(tensorflow::DT_INT32, tensorflow::TensorShape({1}),
                         &device_status),
      done);
  // Pinned host memory, so the copy below is truly asynchronous.
  tensorflow::AllocatorAttributes pinned;
  pinned.set_on_host(true);
  pinned.set_gpu_compatible(true);
  tensorflow::Tensor host_status;
  OP_REQUIRES_OK_ASYNC(
      ctx,
      ctx->allocate_temp(tensorflow::DT_INT32, tensorflow::TensorShape({1}),
                         &host_status, pinned),
      done);
  int32_t* device_word = device_status.flat<int32_t>().data();
  OP_REQUIRES_OK_ASYNC(
      ctx,
      CudaStatus(cuda::LaunchCheckBoxValues(boxes, box_ind, num_boxes, batch,
                                            device_word, stream),
                 "box check launch"),
      done);
  OP_REQUIRES_OK_ASYNC(
      ctx,
      CudaStatus(
          cudaMemcpyAsync(host_status.flat<int32_t>().data(), device_word,
                          sizeof(int32_t), cudaMemcpyDeviceToHost, stream),
          "box check copy"),
      done);
  const auto* info = ctx->device()->tensorflow_accelerator_device_info();
  OP_REQUIRES_ASYNC(ctx, info != nullptr && info->event_mgr != nullptr,
                    absl::InternalError("no GPU event manager for the op"),
                    done);
  // The tensors travel with the callback: the device word until the copy
  // has run, the host word until it is read.
  auto check = [ctx, batch, host_status, device_status,
                compute = std::move(compute), done = std::move(done)]() {
    const int32_t status = host_status.flat<int32_t>().data()[0];
    if (status == cuda::kBoxIndexOutOfRange) {
      ctx->CtxFailureWithWarning(__FILE__, __LINE__,
                                 OutOfRange(BoxIndexOutOfRangeMessage(batch)));
    } else if (status != cuda::kBoxesOk) {
      ctx->CtxFailureWithWarning(__FILE__, __LINE__,
                                 InvalidArgument(NonFiniteBoxesMessage()));
    } else {
      compute();
    }
    done();
  };
  info->event_mgr->ThenExecute(ctx->op_device_context()->stream(),
                               std::move(check));
}

}  // namespace crop_and_resize_grad
