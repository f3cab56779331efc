// The CPU kernels' ParallelRunner on TF's intra-op thread pool.
#ifndef CROP_AND_RESIZE_GRAD_CC_TF_CPU_RUNNER_H_
#define CROP_AND_RESIZE_GRAD_CC_TF_CPU_RUNNER_H_

#include <algorithm>
#include <atomic>
#include <functional>

#include "absl/synchronization/blocking_counter.h"
#include "cc/core/cpu/grad_image.h"
#include "tensorflow/core/framework/device_base.h"
#include "tensorflow/core/framework/op_kernel.h"

namespace crop_and_resize_grad {

// Units differ in cost (bands over dense rows hold more samples), so threads
// take them one at a time from a shared counter; the calling thread works too.
inline void RunDynamically(
    const tensorflow::DeviceBase::CpuWorkerThreads& workers, int64_t num_units,
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

// A runner over the op's intra-op thread pool.
inline ParallelRunner TfCpuRunner(tensorflow::OpKernelContext* ctx) {
  const auto* workers = ctx->device()->tensorflow_cpu_worker_threads();
  ParallelRunner runner;
  runner.num_threads = workers->num_threads;
  runner.parallel_for = [workers](
                            int64_t num_units,
                            const std::function<void(int64_t, int64_t)>& work) {
    RunDynamically(*workers, num_units, work);
  };
  return runner;
}

}  // namespace crop_and_resize_grad

#endif  // CROP_AND_RESIZE_GRAD_CC_TF_CPU_RUNNER_H_
