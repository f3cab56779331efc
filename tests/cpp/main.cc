// The C++ tests of the TF-free CPU kernels (cc/core), without TensorFlow
// and without a test framework. One binary; each section lives in its own
// *_test.cc file and shares tests/cpp/test_util.h.
//
// Sections (run all by default, or pick one with --only NAME):
//   checks       CheckBoxValues on NaN / Inf / out-of-range box_ind, and
//                CheckGradImageShapes on every bad shape.
//   conversions  FloatToHalfBits / FloatToBFloat16Bits against independent
//                reference conversions: every float bit pattern with
//                --exhaustive, a structured sample otherwise.
//   kernel       CropAndResizeGradImageCpu<T> for float, double, Half and
//                BFloat16, both methods, on the edge cases of
//                docs/semantics.md, against (a) a float64 reference with
//                per-element error bounds and (b) a serial emulation of TF's
//                loop in the kernel's accumulator type, which it must match
//                bitwise.
//   threads      std::thread runners (4..16 threads, dynamic scheduling) on
//                heavily overlapping boxes: bitwise equal to SerialRunner().
//   memory       the kernel's heap temporaries (counted by this binary's
//                operator new) against their documented bound.
// --hash-only prints only the checksum of all kernel outputs (used to compare
// the ISA copies across processes: CRG_CPU_ISA is read once per process).
//
// Every run prints "CRG_HASH isa=<isa> hash=<hex>" over the kernel outputs of
// the fixed "kernel" problems. Exit status 0 iff every check passed.
#include "tests/cpp/test_util.h"

using namespace crg_test;  // NOLINT: the test harness

int main(int argc, char** argv) {
  bool exhaustive = false;
  bool hash_only = false;
  std::string only;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--exhaustive") {
      exhaustive = true;
    } else if (a == "--no-exhaustive") {
      exhaustive = false;
    } else if (a == "--hash-only") {
      hash_only = true;
    } else if (a == "--only" && i + 1 < argc) {
      only = argv[++i];
    } else {
      fprintf(stderr,
              "usage: %s [--exhaustive] [--only checks|conversions|kernel|"
              "threads|memory] [--hash-only]\n",
              argv[0]);
      return 2;
    }
  }
  if (exhaustive && kSanitized) {
    printf("note: --exhaustive ignored in a sanitizer build (sampled only)\n");
    exhaustive = false;
  }
  const std::vector<Problem> problems = KernelProblems();
  if (hash_only) {
    printf("CRG_HASH isa=%s hash=%016llx\n", crg::CpuIsaName(),
           static_cast<unsigned long long>(KernelHash(problems)));
    return 0;
  }
  struct Section {
    const char* name;
    std::function<void()> run;
  };
  const Section sections[] = {
      {"checks",
       [] {
         TestCheckBoxValues();
         TestCheckGradImageShapes();
       }},
      {"conversions", [&] { TestConversions(exhaustive); }},
      {"kernel",
       [&] {
         TestIsaSelection();
         TestHandComputed();
         TestHugeSizes();
         TestKernel(problems);
       }},
      {"threads", [] { TestThreads(); }},
      {"memory", [] { TestMemory(); }},
  };
  bool known = only.empty();
  for (const Section& s : sections) {
    if (!only.empty() && only != s.name) continue;
    known = true;
    const int64_t failures_before = g_failures;
    const double t0 = Seconds();
    printf("[%s]\n", s.name);
    fflush(stdout);
    s.run();
    printf("[%s] %s in %.2f s\n", s.name,
           g_failures == failures_before ? "ok" : "FAILED", Seconds() - t0);
    fflush(stdout);
  }
  if (!known) {
    fprintf(stderr, "unknown section '%s'\n", only.c_str());
    return 2;
  }
  if (only.empty() || only == "kernel") {
    printf("CRG_HASH isa=%s hash=%016llx\n", crg::CpuIsaName(),
           static_cast<unsigned long long>(KernelHash(problems)));
  }
  printf("%lld checks, %lld failures%s\n", static_cast<long long>(g_checks),
         static_cast<long long>(g_failures), kSanitized ? " (sanitized)" : "");
  return g_failures == 0 ? 0 : 1;
}
