// The "threads" section: threaded runners bitwise equal to the serial one.
#include "tests/cpp/test_util.h"

namespace crg_test {

// ---------------------------------------------------------------------------
// Threads: heavily overlapping boxes, bitwise equal to the serial runner.

template <typename T>
void CheckThreadsBitwise(const Problem& p, Method method) {
  const std::string what =
      p.name + " " + MethodName(method) + " " + TypeName<T>();
  const std::vector<T> serial = RunKernel<T>(p, method, crg::SerialRunner());
  for (int threads : {4, 8, 16}) {
    for (int64_t chunk : {int64_t{1}, int64_t{3}}) {
      ExpectBitwiseEqual(RunKernel<T>(p, method, ThreadRunner(threads, chunk)),
                         serial,
                         what + " " + std::to_string(threads) + " threads, " +
                             "chunk " + std::to_string(chunk));
    }
  }
}

void TestThreads() {
  // 20,000 (sanitized: 3,000) boxes [0,0,1,1] on one 8x8 image, grads 1:
  // every pixel gets exactly num_boxes (TF's racy kernel loses updates).
  {
    const int64_t n = kSanitized ? 3000 : 20000;
    Problem p =
        MakeProblem("unit_boxes_race", n, 8, 8, 1, 8, 8, 1, BoxKind::kUnit, 7);
    std::fill(p.grads.begin(), p.grads.end(), 1.0f);
    for (Method m : {Method::kBilinear, Method::kNearest}) {
      for (int threads : {4, 8}) {
        const std::vector<double> d =
            RunKernel<double>(p, m, ThreadRunner(threads));
        const std::vector<float> f =
            RunKernel<float>(p, m, ThreadRunner(threads));
        bool exact = true;
        for (size_t i = 0; i < d.size(); ++i) {
          exact = exact && d[i] == static_cast<double>(n) &&
                  f[i] == static_cast<float>(n);
        }
        EXPECT(exact, p.name << " " << MethodName(m) << " " << threads
                             << " threads: every pixel must be " << n);
      }
    }
  }
  std::vector<Problem> ps;
  ps.push_back(MakeProblem("overlap_1img", kSanitized ? 200 : 1500, 7, 7, 1, 24,
                           24, 37, BoxKind::kNearFull, 11));
  ps.push_back(MakeProblem("overlap_2img_mixed", kSanitized ? 200 : 800, 7, 7,
                           2, 16, 20, 16, BoxKind::kMixed, 12));
  // Few rows, deep: many threads make the kernel split the depth into blocks.
  ps.push_back(MakeProblem("overlap_deep", kSanitized ? 40 : 200, 5, 9, 1, 4,
                           64, 300, BoxKind::kNearFull, 13));
  for (const Problem& p : ps) {
    for (Method m : {Method::kBilinear, Method::kNearest}) {
      CheckThreadsBitwise<float>(p, m);
      CheckThreadsBitwise<double>(p, m);
      CheckThreadsBitwise<Half>(p, m);
      CheckThreadsBitwise<BFloat16>(p, m);
    }
  }
  // Several kernel calls at once from different threads (the op runs
  // concurrently in TF): each equals its serial result.
  {
    const Problem& p = ps[0];
    const std::vector<float> expected =
        RunKernel<float>(p, Method::kBilinear, crg::SerialRunner());
    std::vector<std::vector<float>> results(4);
    std::vector<std::thread> callers;
    for (int t = 0; t < 4; ++t) {
      callers.emplace_back([&, t] {
        const int64_t size = p.OutputSize();
        results[t].resize(size);
        crg::CropAndResizeGradImageCpu<float>(
            p.Args(Method::kBilinear), results[t].data(), ThreadRunner(2 + t));
      });
    }
    for (std::thread& c : callers) c.join();
    for (int t = 0; t < 4; ++t) {
      ExpectBitwiseEqual(results[t], expected,
                         "concurrent call " + std::to_string(t));
    }
  }
}

}  // namespace crg_test
