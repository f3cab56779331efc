// The "kernel" section: the CPU kernel against a float64 reference and,
// bitwise, the serial emulation of TF's loop; and the ISA selection.
#include "tests/cpp/test_util.h"

namespace crg_test {

void TestKernel(const std::vector<Problem>& problems) {
  for (const Problem& p : problems) {
    for (Method m : {Method::kBilinear, Method::kNearest}) {
      const Reference64 ref = ComputeReference64(p, m);
      CheckProblem<float>(p, m, ref);
      CheckProblem<double>(p, m, ref);
      CheckProblem<Half>(p, m, ref);
      CheckProblem<BFloat16>(p, m, ref);
    }
  }
  // Spot checks of the fixed problems that must give exact zeros.
  for (const Problem& p : problems) {
    if (p.num_boxes != 0 && p.name != "wholly_outside") continue;
    for (Method m : {Method::kBilinear, Method::kNearest}) {
      const std::vector<float> out =
          RunKernel<float>(p, m, crg::SerialRunner());
      bool zeros = true;
      for (float v : out) zeros = zeros && BitsOf(v) == 0;
      EXPECT(zeros, p.name << ": expected +0 everywhere");
    }
  }
  // depth 0 (and batch 0): nothing may be written at all.
  for (const Problem& p : problems) {
    if (p.OutputSize() != 0) continue;
    float sentinel = 42.0f;
    crg::CropAndResizeGradImageCpu<float>(p.Args(Method::kBilinear), &sentinel,
                                          ThreadRunner(4));
    EXPECT(sentinel == 42.0f, p.name << ": wrote into an empty output");
  }
}

// Sizes above 2^24, where float32(size - 1) rounds up to size: the sample
// at the far border has its taps clamped to size - 1 (cc/core/sampling.h,
// ClampTap). Without the clamp the second contribution is written one past
// the output (which ASan reports: the buffer has the exact size) and the
// output sums to 1. Rows and columns, both methods, float and double.
template <typename T>
void CheckHugeAxis(int64_t size, bool along_height, Method method) {
  Problem p;
  p.name =
      std::string(along_height ? "height " : "width ") + std::to_string(size);
  p.num_boxes = 1;
  p.crop_height = along_height ? 2 : 1;
  p.crop_width = along_height ? 1 : 2;
  p.height = along_height ? size : 1;
  p.width = along_height ? 1 : size;
  p.grads = {1.0f, 1.0f};
  p.boxes = {0.0f, 0.0f, 1.0f, 1.0f};
  p.box_ind = {0};
  std::unique_ptr<T[]> out(new T[size]);
  crg::CropAndResizeGradImageCpu<T>(p.Args(method), out.get(),
                                    crg::SerialRunner());
  double sum = 0.0;
  for (int64_t i = 0; i < size; ++i) sum += static_cast<double>(out[i]);
  EXPECT(sum == 2.0, p.name << ": output sums to " << sum);
  EXPECT(static_cast<double>(out[0]) == 1.0 &&
             static_cast<double>(out[size - 1]) == 1.0,
         p.name << ": first/last " << static_cast<double>(out[0]) << " "
                << static_cast<double>(out[size - 1]));
}

void TestHugeSizes() {
  for (Method m : {Method::kBilinear, Method::kNearest}) {
    for (bool along_height : {true, false}) {
      CheckHugeAxis<float>(16777220, along_height, m);
      CheckHugeAxis<float>(33554436, along_height, m);
      CheckHugeAxis<double>(16777220, along_height, m);
    }
  }
}

// Two hand-computed values: a box whose single sample lands between pixels.
void TestHandComputed() {
  Problem p;
  p.name = "hand";
  p.num_boxes = 1;
  p.batch = 1;
  p.height = 3;
  p.width = 5;
  p.depth = 1;
  p.grads = {8.0f};
  // Centre at y = 0.5 * (0.25 + 0.5) * 2 = 0.75, x = 0.5 * (0 + 0.5) * 4 = 1.
  p.boxes = {0.25f, 0.0f, 0.5f, 0.5f};
  p.box_ind = {0};
  const std::vector<double> out =
      RunKernel<double>(p, Method::kBilinear, crg::SerialRunner());
  EXPECT(out[0 * 5 + 1] == 2.0, "top pixel gets 0.25 * 8: " << out[1]);
  EXPECT(out[1 * 5 + 1] == 6.0, "bottom pixel gets 0.75 * 8: " << out[6]);
  double total = 0;
  for (double v : out) total += v;
  EXPECT(total == 8.0, "nothing else written: total " << total);
  const std::vector<double> nearest =
      RunKernel<double>(p, Method::kNearest, crg::SerialRunner());
  EXPECT(nearest[1 * 5 + 1] == 8.0, "nearest rounds 0.75 up");
  // Nearest rounds halves away from zero: y = 0.5 -> row 1.
  p.boxes = {0.25f, 0.0f, 0.25f, 0.5f};
  const std::vector<double> half =
      RunKernel<double>(p, Method::kNearest, crg::SerialRunner());
  EXPECT(half[1 * 5 + 1] == 8.0, "nearest rounds 0.5 to 1: " << half[6]);
}

// ---------------------------------------------------------------------------

bool CpuHas(const std::string& isa) {
#if CRG_TEST_X86
  if (isa == "avx2") {
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c");
  }
  if (isa == "avx512") {
    return CpuHas("avx2") && __builtin_cpu_supports("avx512f") &&
           __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl");
  }
#endif
  return isa == "baseline";
}

void TestIsaSelection() {
  const char* requested = getenv("CRG_CPU_ISA");
  const std::string isa = crg::CpuIsaName();
  printf("  cpu isa: %s (CRG_CPU_ISA=%s)\n", isa.c_str(),
         requested ? requested : "<unset>");
  if (requested == nullptr) return;
  const std::string want = requested;
#if CRG_HAVE_X86_ISAS
  if (CpuHas(want)) {
    EXPECT(isa == want,
           "CRG_CPU_ISA=" << want << " but the kernel runs " << isa);
  } else {
    printf("  note: this CPU lacks %s; running %s instead\n", want.c_str(),
           isa.c_str());
  }
#else
  EXPECT(isa == "baseline", "no ISA copies in this build, got " << isa);
#endif
}

}  // namespace crg_test
