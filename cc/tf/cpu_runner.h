// The CPU kernels' ParallelRunner on TF's intra-op thread pool.
#ifndef CROP_AND_RESIZE_GRAD_CC_TF_CPU_RUNNER_H_
#define CROP_AND_RESIZE_GRAD_CC_TF_CPU_RUNNER_H_

#include <algorithm>
#include <atomic>
#include <functional>
#include <memory>

#include "absl/synchronization/mutex.h"
#include "cc/core/cpu/grad_image.h"
#include "tensorflow/core/framework/device_base.h"
#include "tensorflow/core/framework/op_kernel.h"

namespace crop_and_resize_grad {

// Units differ in cost (bands over dense rows hold more samples), so threads
// take them one at a time from a shared counter; the calling thread works too.
//
// The call returns once every unit is done, without waiting for helpers that
// have not started yet: a pool thread can take hundreds of microseconds to
// wake (measured up to 3 ms on a loaded 2-vCPU VM), and a short loop (the
// kernel's set-up passes) is often finished by the caller alone. So the
// counters live in shared state that a late helper may still read, and a
// helper that finds no unit left returns without touching `work`.
struct DynamicLoopState {
  std::atomic<int64_t> next{0};
  absl::Mutex mu;
  int running ABSL_GUARDED_BY(mu) = 0;  // Helpers inside the loop.
};

inline void RunDynamically(
    const tensorflow::DeviceBase::CpuWorkerThreads& workers, int64_t num_units,
    const std::function<void(int64_t, int64_t)>& work) {
  const int64_t helpers = std::min<int64_t>(workers.num_threads, num_units) - 1;
  if (helpers <= 0) {
    for (int64_t u = 0; u < num_units; ++u) work(u, u + 1);
    return;
  }
  auto state = std::make_shared<DynamicLoopState>();
  const auto* work_ptr = &work;
  for (int64_t t = 0; t < helpers; ++t) {
    workers.workers->Schedule([state, work_ptr, num_units] {
      {
        absl::MutexLock lock(&state->mu);
        ++state->running;
      }
      // Registered before claiming: a helper that gets a unit is counted
      // before the caller can see the units run out.
      for (int64_t u; (u = state->next.fetch_add(1)) < num_units;) {
        (*work_ptr)(u, u + 1);
      }
      absl::MutexLock lock(&state->mu);
      --state->running;
    });
  }
  for (int64_t u; (u = state->next.fetch_add(1)) < num_units;) work(u, u + 1);
  // Every unit is claimed; wait for the helpers still running one.
  DynamicLoopState* s = state.get();
  absl::MutexLock lock(
      &s->mu, absl::Condition(
                  +[](DynamicLoopState* st) ABSL_EXCLUSIVE_LOCKS_REQUIRED(
                       st->mu) { return st->running == 0; },
                  s));
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
