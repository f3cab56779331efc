// CPU kernel entry points: box checks and the choice of instruction set.
#include "cc/crop_and_resize_grad_cpu.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <string>

#include "cc/crop_and_resize_grad_cpu_isa.h"

namespace crop_and_resize_grad {

ParallelRunner SerialRunner() {
  ParallelRunner runner;
  runner.parallel_for = [](int64_t num_units,
                           const std::function<void(int64_t, int64_t)>& work) {
    if (num_units > 0) work(0, num_units);
  };
  return runner;
}

CheckResult CheckBoxValues(const float* boxes, const int32_t* box_ind,
                           int64_t num_boxes, int64_t batch) {
  for (int64_t n = 0; n < num_boxes; ++n) {
    for (int k = 0; k < 4; ++k) {
      if (!isfinite(boxes[n * 4 + k])) {
        return {ErrorCode::kInvalidArgument,
                "boxes must be finite, but boxes[" + std::to_string(n) + ", " +
                    std::to_string(k) + "] is " +
                    std::to_string(boxes[n * 4 + k])};
      }
    }
    const int64_t b = box_ind[n];
    if (b < 0 || b >= batch) {
      return {ErrorCode::kOutOfRange,
              "box_index has values outside [0, batch_size): box_ind[" +
                  std::to_string(n) + "] = " + std::to_string(b) +
                  " with batch_size " + std::to_string(batch)};
    }
  }
  return {};
}

namespace {

enum class Isa { kBaseline, kAvx2, kAvx512 };

// The widest instruction set this CPU has, capped by CRG_CPU_ISA
// (baseline, avx2 or avx512) when set. All give bitwise identical results.
Isa DetectIsa() {
  Isa best = Isa::kBaseline;
#if CRG_HAVE_X86_ISAS
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c")) {
    best = Isa::kAvx2;
    if (__builtin_cpu_supports("avx512f") &&
        __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl")) {
      best = Isa::kAvx512;
    }
  }
#endif
  const char* cap = getenv("CRG_CPU_ISA");
  if (cap != nullptr) {
    if (strcmp(cap, "baseline") == 0) return Isa::kBaseline;
    if (strcmp(cap, "avx2") == 0 && best == Isa::kAvx512) return Isa::kAvx2;
  }
  return best;
}

Isa SelectedIsa() {
  static const Isa isa = DetectIsa();
  return isa;
}

}  // namespace

const char* CpuIsaName() {
  switch (SelectedIsa()) {
    case Isa::kAvx512:
      return "avx512";
    case Isa::kAvx2:
      return "avx2";
    case Isa::kBaseline:
      break;
  }
  return "baseline";
}

template <typename T>
void CropAndResizeGradImageCpu(const GradImageArgs& args, T* output,
                               const ParallelRunner& runner) {
  switch (SelectedIsa()) {
#if CRG_HAVE_X86_ISAS
    case Isa::kAvx512:
      return isa_avx512::GradImage<T>(args, output, runner);
    case Isa::kAvx2:
      return isa_avx2::GradImage<T>(args, output, runner);
#endif
    default:
      return isa_baseline::GradImage<T>(args, output, runner);
  }
}

template void CropAndResizeGradImageCpu<float>(const GradImageArgs&, float*,
                                               const ParallelRunner&);
template void CropAndResizeGradImageCpu<double>(const GradImageArgs&, double*,
                                                const ParallelRunner&);
template void CropAndResizeGradImageCpu<Half>(const GradImageArgs&, Half*,
                                              const ParallelRunner&);
template void CropAndResizeGradImageCpu<BFloat16>(const GradImageArgs&,
                                                  BFloat16*,
                                                  const ParallelRunner&);

}  // namespace crop_and_resize_grad
