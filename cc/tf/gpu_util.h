// GPU glue shared by the GPU OpKernels (built when CUDA is on): the stream
// and device, a CUDA error as a TF status, the once-per-device check that
// this build can run on the device at all, and the asynchronous box check
// that gates a launch without blocking.
#ifndef CROP_AND_RESIZE_GRAD_CC_TF_GPU_UTIL_H_
#define CROP_AND_RESIZE_GRAD_CC_TF_GPU_UTIL_H_

#include <cuda_runtime_api.h>
#include <stdint.h>

#include <functional>

#include "absl/status/status.h"
#include "tensorflow/core/framework/op_kernel.h"

namespace crop_and_resize_grad {

// InternalError "<what> failed: <CUDA's message>", or OK.
absl::Status CudaStatus(cudaError_t err, const char* what);

// TF's stream for this op, with our statically linked CUDA runtime pointed at
// the stream's device (the runtime keeps its own current device per thread).
// On the first call for a device, also checks that the driver can run this
// build's CUDA runtime and that the build has code for the device's compute
// capability (CheckDeviceSupported); the verdict is cached per device.
absl::Status SetDeviceAndGetStream(tensorflow::OpKernelContext* ctx,
                                   cudaStream_t* stream);

// FailedPrecondition when the driver is older than this build's CUDA runtime
// needs (another major version; an older minor version is fine) or when the
// build has neither SASS nor PTX the device can run; names the versions and
// the fix (docs/gpu.md). Cached per device ordinal.
absl::Status CheckDeviceSupported(int ordinal);

// Runs the device-side check of box values (finite boxes, box_ind in
// [0, batch)) without blocking: enqueues the check kernel and an
// asynchronous copy of its status into pinned host memory on the op's
// stream, and returns at once. When the stream gets there, on TF's
// event-manager thread, either sets the same error as the CPU kernel
// (OutOfRange for an index, InvalidArgument for a non-finite box), or calls
// `compute`, which allocates and enqueues the op's work (reporting errors via
// ctx->CtxFailure*, without calling done); then calls
// `done`. With no boxes, `compute` runs at once. Every path calls `done`
// exactly once. `boxes` and `box_ind` are device pointers that stay valid
// until `done` (the op's inputs).
void RunAfterDeviceBoxCheck(tensorflow::OpKernelContext* ctx,
                            const float* boxes, const int32_t* box_ind,
                            int64_t num_boxes, int64_t batch,
                            std::function<void()> compute,
                            tensorflow::AsyncOpKernel::DoneCallback done);

}  // namespace crop_and_resize_grad

#endif  // CROP_AND_RESIZE_GRAD_CC_TF_GPU_UTIL_H_
