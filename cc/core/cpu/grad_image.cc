// CPU kernel entry point: the choice of instruction set.
#include "cc/core/cpu/grad_image.h"

#include <stdlib.h>
#include <string.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "cc/core/cpu/grad_image_isa.h"

namespace crop_and_resize_grad {

ParallelRunner SerialRunner() {
  ParallelRunner runner;
  runner.parallel_for = [](int64_t num_units,
                           const std::function<void(int64_t, int64_t)>& work) {
    if (num_units > 0) work(0, num_units);
  };
  return runner;
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

namespace {

// A large output is usually freshly mapped memory (allocations this big come
// straight from mmap), and the kernel then spends as long in page faults as in
// writing it: fpn-p2's 498 MB output takes 121,000 faults. Asking for
// transparent huge pages over the output's whole 2 MiB pages cuts that to a
// few hundred (2-2.4x faster on fpn-p2, measured). It changes only how the
// pages are backed, never the bits; where THP is off or the call fails,
// nothing changes.
void AdviseHugePages(void* output, int64_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  constexpr int64_t kMinBytes = int64_t{64} << 20;
  constexpr uintptr_t kHuge = uintptr_t{2} << 20;
  if (bytes < kMinBytes) return;
  const uintptr_t begin =
      (reinterpret_cast<uintptr_t>(output) + kHuge - 1) & ~(kHuge - 1);
  const uintptr_t end =
      (reinterpret_cast<uintptr_t>(output) + bytes) & ~(kHuge - 1);
  if (end > begin) {
    madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
  }
#else
  (void)output;
  (void)bytes;
#endif
}

}  // namespace

template <typename T>
void CropAndResizeGradImageCpu(const GradImageArgs& args, T* output,
                               const ParallelRunner& runner) {
  AdviseHugePages(output, args.batch * args.height * args.width * args.depth *
                              static_cast<int64_t>(sizeof(T)));
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
