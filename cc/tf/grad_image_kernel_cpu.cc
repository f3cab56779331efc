// CPU registration: box values are checked on the host, then the TF-free
// kernel runs on TF's intra-op thread pool.
#include <algorithm>
#include <atomic>

#include "absl/synchronization/blocking_counter.h"
#include "cc/tf/grad_image_kernel.h"
#include "cc/tf/op_names.h"
#include "tensorflow/core/framework/device_base.h"
#include "tensorflow/core/framework/register_types.h"

namespace crop_and_resize_grad {

using CPUDevice = Eigen::ThreadPoolDevice;

namespace {

// Units differ in cost (bands over dense rows hold more samples), so threads
// take them one at a time from a shared counter; the calling thread works too.
void RunDynamically(const tensorflow::DeviceBase::CpuWorkerThreads& workers,
                    int64_t num_units,
                    const std::function<void(int64_t, int64_t)>& work) {
  const int64_t helpers = std::min<int64_t>(workers.num_threads, num_units) - 1;
  std::atomic<int64_t> next{0};
  auto loop = [&] {
    for (int64_t u; (u = next.fetch_add(1)) < num_units;) work(u, u + 1);
  };
  if (helpers <= 0) {
    loop();
    return;
  }
  absl::BlockingCounter done(static_cast<int>(helpers));
  for (int64_t t = 0; t < helpers; ++t) {
    workers.workers->Schedule([&] {
      loop();
      done.DecrementCount();
    });
  }
  loop();
  done.Wait();
}

}  // namespace

template <typename T>
struct GradImageFunctor<CPUDevice, T> {
  absl::Status CheckBoxes(tensorflow::OpKernelContext* /*ctx*/,
                          const GradImageArgs& args) {
    return ToStatus(
        CheckBoxValues(args.boxes, args.box_ind, args.num_boxes, args.batch));
  }

  void operator()(tensorflow::OpKernelContext* ctx, const GradImageArgs& args,
                  bool /*deterministic: the CPU kernel always is*/,
                  tensorflow::Tensor* output) {
    if (output->NumElements() == 0) return;
    const auto* workers = ctx->device()->tensorflow_cpu_worker_threads();
    ParallelRunner runner;
    runner.num_threads = workers->num_threads;
    runner.parallel_for =
        [workers](int64_t num_units,
                  const std::function<void(int64_t, int64_t)>& work) {
          RunDynamically(*workers, num_units, work);
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
