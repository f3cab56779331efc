// CPU registration: box values are checked on the host, then the TF-free
// kernel runs on TF's intra-op thread pool.
#include "cc/kernels/crop_and_resize_grad_image_kernel.h"

#include "cc/ops/op_names.h"
#include "tensorflow/core/framework/register_types.h"
#include "tensorflow/core/util/work_sharder.h"

namespace crop_and_resize_grad {

using CPUDevice = Eigen::ThreadPoolDevice;

template <typename T>
struct GradImageFunctor<CPUDevice, T> {
  void operator()(tensorflow::OpKernelContext* ctx, const GradImageArgs& args,
                  bool /*deterministic: the CPU kernel always is*/,
                  tensorflow::Tensor* output) {
    OP_REQUIRES_OK(ctx, ToStatus(CheckBoxValues(args.boxes, args.box_ind,
                                                args.num_boxes, args.batch)));
    if (output->NumElements() == 0) return;
    const auto* workers = ctx->device()->tensorflow_cpu_worker_threads();
    ParallelRunner runner;
    runner.num_threads = workers->num_threads;
    runner.parallel_for =
        [workers](int64_t num_units, int64_t cost_per_unit,
                  const std::function<void(int64_t, int64_t)>& work) {
          tensorflow::Shard(workers->num_threads, workers->workers, num_units,
                            cost_per_unit, work);
        };
    CropAndResizeGradImageCpu(args, StoragePointer<T>(output), runner);
  }
};

#define CRG_REGISTER_CPU(T)                                   \
  REGISTER_KERNEL_BUILDER(Name(kGradImageOpName)              \
                              .Device(tensorflow::DEVICE_CPU) \
                              .TypeConstraint<T>("T"),        \
                          CropAndResizeGradImageOp<CPUDevice, T>);

CRG_REGISTER_CPU(Eigen::half);
CRG_REGISTER_CPU(Eigen::bfloat16);
CRG_REGISTER_CPU(float);
CRG_REGISTER_CPU(double);

#undef CRG_REGISTER_CPU

}  // namespace crop_and_resize_grad
