// Tests of the TF-free boxes-gradient CPU kernel (cc/core/cpu/grad_boxes.h)
// and its shape check, without TensorFlow and without a test framework.
//
//   order      the kernel against a scalar emulation of the documented fixed
//              order (term i to partial sum i % 256, then the pairwise tree):
//              bitwise, for every image type, crop sizes 1 and more, depths
//              1 to 300, flipped and outside boxes, 1 to 8 threads;
//   accuracy   against a long double sum of the same terms: within one
//              float32 rounding plus the float64 summation bound;
//   special    the tap clamp above 2^24 rows, subnormal inputs read as zero,
//              no boxes, depth 0;
//   checks     CheckGradBoxesShapes on every bad shape.
// Exit status 0 iff every check passed.
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <atomic>
#include <functional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cc/core/checks.h"
#include "cc/core/cpu/grad_boxes.h"
#include "cc/core/grad_boxes_math.h"

namespace crg = crop_and_resize_grad;

namespace {

int64_t g_checks = 0;
int64_t g_failures = 0;

#define EXPECT(cond, msg)                                          \
  do {                                                             \
    ++g_checks;                                                    \
    if (!(cond)) {                                                 \
      std::ostringstream os_;                                      \
      os_.precision(17);                                           \
      os_ << msg;                                                  \
      if (++g_failures <= 30) {                                    \
        fprintf(stderr, "%s:%d: FAILED: %s\n", __FILE__, __LINE__, \
                os_.str().c_str());                                \
      }                                                            \
    }                                                              \
  } while (0)

crg::ParallelRunner ThreadRunner(int num_threads) {
  crg::ParallelRunner runner;
  runner.num_threads = num_threads;
  runner.parallel_for = [num_threads](
                            int64_t num_units,
                            const std::function<void(int64_t, int64_t)>& work) {
    std::atomic<int64_t> next{0};
    auto loop = [&] {
      for (int64_t u; (u = next.fetch_add(1)) < num_units;) work(u, u + 1);
    };
    std::vector<std::thread> pool;
    for (int t = 1; t < num_threads; ++t) pool.emplace_back(loop);
    loop();
    for (auto& t : pool) t.join();
  };
  return runner;
}

struct Problem {
  int64_t batch, height, width, depth, num_boxes, ch, cw;
  std::vector<float> grads, boxes, image;
  std::vector<int32_t> box_ind;
  crg::GradBoxesArgs Args() const {
    crg::GradBoxesArgs a;
    a.grads = grads.data();
    a.boxes = boxes.data();
    a.box_ind = box_ind.data();
    a.num_boxes = num_boxes;
    a.crop_height = ch;
    a.crop_width = cw;
    a.batch = batch;
    a.height = height;
    a.width = width;
    a.depth = depth;
    return a;
  }
};

Problem MakeProblem(std::mt19937_64& rng, int64_t batch, int64_t height,
                    int64_t width, int64_t depth, int64_t num_boxes, int64_t ch,
                    int64_t cw) {
  Problem p{batch, height, width, depth, num_boxes, ch, cw, {}, {}, {}, {}};
  std::normal_distribution<float> normal;
  std::uniform_real_distribution<float> u(-0.3f, 1.3f);
  p.grads.resize(num_boxes * ch * cw * depth);
  for (float& g : p.grads) g = normal(rng);
  p.image.resize(batch * height * width * depth);
  for (float& v : p.image) v = normal(rng);
  for (int64_t n = 0; n < num_boxes; ++n) {
    float b[4] = {u(rng), u(rng), u(rng), u(rng)};
    switch (n % 5) {
      case 0:  // the whole image
        b[0] = b[1] = 0.0f;
        b[2] = b[3] = 1.0f;
        break;
      case 1:  // a grid box: many integer coordinates
        b[0] = 0.25f;
        b[1] = 0.5f;
        b[2] = 0.75f;
        b[3] = 1.0f;
        break;
      default:  // random, possibly flipped or partly outside
        break;
    }
    p.boxes.insert(p.boxes.end(), b, b + 4);
    p.box_ind.push_back(static_cast<int32_t>(rng() % batch));
  }
  return p;
}

// The image in type T (values rounded from the float ones).
template <typename T>
std::vector<T> ImageAs(const std::vector<float>& image);
template <>
std::vector<float> ImageAs<float>(const std::vector<float>& image) {
  return image;
}
template <>
std::vector<double> ImageAs<double>(const std::vector<float>& image) {
  std::vector<double> out(image.size());
  for (size_t i = 0; i < image.size(); ++i) out[i] = image[i] * (1.0 + 1e-9);
  return out;
}
template <>
std::vector<crg::Half> ImageAs<crg::Half>(const std::vector<float>& image) {
  std::vector<crg::Half> out(image.size());
  for (size_t i = 0; i < image.size(); ++i) {
    out[i].bits = crg::FloatToHalfBits(image[i]);
  }
  return out;
}
template <>
std::vector<crg::BFloat16> ImageAs<crg::BFloat16>(
    const std::vector<float>& image) {
  std::vector<crg::BFloat16> out(image.size());
  for (size_t i = 0; i < image.size(); ++i) {
    out[i].bits = crg::FloatToBFloat16Bits(image[i]);
  }
  return out;
}

// The terms of box n, in term order, each as the four coordinates' terms
// (zeros for samples outside: the caller skips them via `valid`).
template <typename T>
void ForEachTerm(const Problem& p, const T* image, int64_t n,
                 const std::function<void(int64_t i, const double* t)>& f) {
  const float* box = p.boxes.data() + n * 4;
  const float y1 = crg::FlushSubnormal(box[0]),
              x1 = crg::FlushSubnormal(box[1]);
  const float y2 = crg::FlushSubnormal(box[2]),
              x2 = crg::FlushSubnormal(box[3]);
  const int64_t b = p.box_ind[n];
  for (int64_t y = 0; y < p.ch; ++y) {
    const crg::AxisSample sy =
        crg::MakeAxisSample(y1, y2, p.height, p.ch, y, crg::Method::kBilinear);
    for (int64_t x = 0; x < p.cw; ++x) {
      const crg::AxisSample sx =
          crg::MakeAxisSample(x1, x2, p.width, p.cw, x, crg::Method::kBilinear);
      if (!sy.valid || !sx.valid) continue;
      const int64_t top = sy.taps.lo;
      const int64_t bottom = sy.taps.hi;
      const int64_t left = sx.taps.lo;
      const int64_t right = sx.taps.hi;
      for (int64_t d = 0; d < p.depth; ++d) {
        auto at = [&](int64_t row, int64_t col) {
          return crg::ImageValue(
              image[((b * p.height + row) * p.width + col) * p.depth + d]);
        };
        const int64_t i = (y * p.cw + x) * p.depth + d;
        const crg::Slopes s =
            crg::MakeSlopes(at(top, left), at(top, right), at(bottom, left),
                            at(bottom, right), sy.taps.frac, sx.taps.frac);
        const crg::BoxTerms t = crg::MakeBoxTerms(
            s, crg::ImageValue(p.grads[n * p.ch * p.cw * p.depth + i]),
            crg::MakeEdgeWeights(p.height, p.ch, y),
            crg::MakeEdgeWeights(p.width, p.cw, x));
        f(i, t.v);
      }
    }
  }
}

// Scalar emulation of the documented order.
template <typename T>
std::vector<float> EmulateOrder(const Problem& p, const T* image) {
  std::vector<float> out(p.num_boxes * 4);
  for (int64_t n = 0; n < p.num_boxes; ++n) {
    double s[4][crg::kBoxesLanes] = {};
    ForEachTerm<T>(p, image, n, [&](int64_t i, const double* t) {
      for (int k = 0; k < 4; ++k) s[k][i % crg::kBoxesLanes] += t[k];
    });
    for (int k = 0; k < 4; ++k) {
      out[n * 4 + k] = static_cast<float>(crg::ReduceLanes(s[k]));
    }
  }
  return out;
}

bool SameBits(float a, float b) { return memcmp(&a, &b, sizeof(a)) == 0; }

template <typename T>
void CheckProblem(const Problem& p, const char* type) {
  const std::vector<T> image = ImageAs<T>(p.image);
  const crg::GradBoxesArgs args = p.Args();
  const std::vector<float> expected = EmulateOrder<T>(p, image.data());
  for (int threads : {1, 3, 8}) {
    std::vector<float> out(p.num_boxes * 4, -7.0f);
    crg::CropAndResizeGradBoxesCpu(
        args, image.data(), out.data(),
        threads == 1 ? crg::SerialRunner() : ThreadRunner(threads));
    for (int64_t j = 0; j < p.num_boxes * 4; ++j) {
      EXPECT(SameBits(out[j], expected[j]),
             type << " D=" << p.depth << " crop " << p.ch << "x" << p.cw
                  << " threads " << threads << " output " << j << ": " << out[j]
                  << " vs emulated " << expected[j]);
    }
    if (threads != 1) continue;
    // Accuracy: long double sums of the same float64 terms.
    for (int64_t n = 0; n < p.num_boxes; ++n) {
      long double exact[4] = {}, magnitude[4] = {};
      int64_t count = 0;
      ForEachTerm<T>(p, image.data(), n, [&](int64_t, const double* t) {
        ++count;
        for (int k = 0; k < 4; ++k) {
          exact[k] += t[k];
          magnitude[k] += fabsl(t[k]);
        }
      });
      for (int k = 0; k < 4; ++k) {
        // One float32 rounding plus the float64 summation error.
        const double bound =
            fabsl(exact[k]) * 0x1p-24 +
            static_cast<double>(magnitude[k]) *
                (static_cast<double>(count) / crg::kBoxesLanes + 9) * 0x1p-53 +
            1e-300;
        EXPECT(fabsl(out[n * 4 + k] - exact[k]) <= bound,
               type << " box " << n << " coord " << k << ": " << out[n * 4 + k]
                    << " vs " << static_cast<double>(exact[k]));
      }
    }
  }
}

void TestOrderAndAccuracy() {
  std::mt19937_64 rng(1234);
  const int64_t shapes[][7] = {
      // batch, height, width, depth, boxes, ch, cw
      {2, 9, 11, 3, 12, 4, 5},     {1, 7, 9, 300, 6, 1, 1},
      {2, 30, 40, 17, 10, 7, 1},   {1, 5, 5, 1, 9, 1, 3},
      {3, 16, 12, 256, 5, 3, 3},   {1, 1, 1, 5, 4, 3, 2},
      {2, 12, 10, 257, 4, 2, 2},   {1, 40, 30, 64, 40, 7, 7},
      {2, 20, 20, 2, 200, 14, 14},
  };
  for (const auto& s : shapes) {
    const Problem p =
        MakeProblem(rng, s[0], s[1], s[2], s[3], s[4], s[5], s[6]);
    CheckProblem<float>(p, "float");
    CheckProblem<double>(p, "double");
    CheckProblem<crg::Half>(p, "half");
    CheckProblem<crg::BFloat16>(p, "bfloat16");
  }
}

void TestSpecial() {
  // Tap clamp: height 16,777,220 (float32(H - 1) rounds up to H). The last
  // sample sits at row H with ly = 0 and must read row H - 1.
  {
    const int64_t height = 16777220;
    std::vector<float> image(height, 0.0f);
    image[height - 1] = 3.0f;
    image[height - 2] = 1.0f;
    const std::vector<float> grads = {1.0f, 1.0f};
    const std::vector<float> boxes = {0.0f, 0.0f, 1.0f, 1.0f};
    const std::vector<int32_t> box_ind = {0};
    crg::GradBoxesArgs a;
    a.grads = grads.data();
    a.boxes = boxes.data();
    a.box_ind = box_ind.data();
    a.num_boxes = 1;
    a.crop_height = 2;
    a.crop_width = 1;
    a.batch = 1;
    a.height = height;
    a.width = 1;
    a.depth = 1;
    float out[4];
    crg::CropAndResizeGradBoxesCpu(a, image.data(), out, crg::SerialRunner());
    // Both samples are at integer rows (0 and the clamped H - 1): slope 0.
    for (int k = 0; k < 4; ++k) EXPECT(out[k] == 0.0f, "clamp " << out[k]);
  }
  // Subnormal inputs read as zero: a subnormal image gives what zeros give.
  {
    std::mt19937_64 rng(7);
    Problem p = MakeProblem(rng, 1, 6, 7, 4, 5, 3, 4);
    Problem zero = p;
    for (size_t i = 0; i < p.image.size(); ++i) {
      p.image[i] = (i % 2 ? 1e-40f : -3e-42f);
      zero.image[i] = 0.0f;
    }
    std::vector<float> a(20), b(20);
    crg::CropAndResizeGradBoxesCpu(p.Args(), p.image.data(), a.data(),
                                   crg::SerialRunner());
    crg::CropAndResizeGradBoxesCpu(zero.Args(), zero.image.data(), b.data(),
                                   crg::SerialRunner());
    for (int j = 0; j < 20; ++j) {
      EXPECT(a[j] == 0.0f && b[j] == 0.0f, "subnormal image " << a[j]);
    }
    EXPECT(crg::FlushSubnormal(-1e-40f) == 0.0f &&
               signbit(crg::FlushSubnormal(-1e-40f)),
           "signed zero");
    EXPECT(crg::FlushSubnormal(1e-30f) == 1e-30f, "normal kept");
    EXPECT(crg::FlushSubnormal(4e-320) == 0.0, "double subnormal");
    for (uint32_t h = 0; h < 0x10000u; ++h) {
      const float f = crg::HalfBitsToFloat(static_cast<uint16_t>(h));
      if (isnan(f)) {
        EXPECT((h & 0x7c00u) == 0x7c00u && (h & 0x3ffu) != 0, "half " << h);
      } else {
        EXPECT(crg::FloatToHalfBits(f) == h, "half round trip " << h);
      }
    }
  }
  // Depth 0 and no boxes: zeros and nothing.
  {
    std::mt19937_64 rng(9);
    Problem p = MakeProblem(rng, 2, 4, 4, 0, 3, 2, 2);
    std::vector<float> out(12, -1.0f);
    crg::CropAndResizeGradBoxesCpu(p.Args(), p.image.data(), out.data(),
                                   crg::SerialRunner());
    for (float v : out) EXPECT(v == 0.0f && !signbit(v), "depth 0: " << v);
    p.num_boxes = 0;
    crg::CropAndResizeGradBoxesCpu(p.Args(), p.image.data(), nullptr,
                                   crg::SerialRunner());
  }
}

crg::Shape S(std::initializer_list<int64_t> dims) {
  crg::Shape s;
  for (int64_t d : dims) s.dims[s.rank++] = d;
  return s;
}

void ExpectBad(const crg::CheckResult& r, const std::string& fragment) {
  EXPECT(!r.ok() && r.code == crg::ErrorCode::kInvalidArgument &&
             r.message.find(fragment) != std::string::npos,
         "expected '" << fragment << "', got '" << r.message << "'");
}

void TestChecks() {
  crg::GradBoxesArgs a;
  const crg::Shape g = S({3, 4, 5, 6}), img = S({2, 7, 8, 6}), b = S({3, 4}),
                   bi = S({3});
  EXPECT(crg::CheckGradBoxesShapes(g, img, b, bi, &a).ok(), "good shapes");
  EXPECT(a.num_boxes == 3 && a.crop_height == 4 && a.crop_width == 5 &&
             a.batch == 2 && a.height == 7 && a.width == 8 && a.depth == 6,
         "sizes");
  ExpectBad(crg::CheckGradBoxesShapes(S({3, 4, 5}), img, b, bi, &a),
            "grads must be 4-D");
  ExpectBad(crg::CheckGradBoxesShapes(S({3, 0, 5, 6}), img, b, bi, &a),
            "grads crop dimensions must be positive");
  ExpectBad(crg::CheckGradBoxesShapes(g, img, S({0}), bi, &a),
            "boxes must be 2-D");
  ExpectBad(crg::CheckGradBoxesShapes(g, img, S({3, 5}), bi, &a),
            "boxes must be 2-D");
  ExpectBad(crg::CheckGradBoxesShapes(g, img, b, S({0, 0}), &a),
            "box_ind must be 1-D");
  ExpectBad(crg::CheckGradBoxesShapes(g, img, b, S({2}), &a),
            "box_ind has 2 elements but boxes has 3 rows");
  ExpectBad(crg::CheckGradBoxesShapes(S({2, 4, 5, 6}), img, b, bi, &a),
            "grads has 2 boxes but boxes has 3 rows");
  ExpectBad(crg::CheckGradBoxesShapes(g, S({2, 7, 8}), b, bi, &a),
            "image must be 4-D");
  ExpectBad(crg::CheckGradBoxesShapes(g, S({2, 0, 8, 6}), b, bi, &a),
            "image height and width must be positive");
  ExpectBad(crg::CheckGradBoxesShapes(g, S({2, 7, 8, 5}), b, bi, &a),
            "image and grads are incompatible: depth 5 in image but 6");
  EXPECT(crg::CheckGradBoxesShapes(S({0, 1, 1, 6}), S({0, 1, 1, 6}), S({0, 4}),
                                   S({0}), &a)
             .ok(),
         "no boxes, empty batch");
}

}  // namespace

int main() {
  const std::pair<const char*, std::function<void()>> sections[] = {
      {"order+accuracy", TestOrderAndAccuracy},
      {"special", TestSpecial},
      {"checks", TestChecks},
  };
  for (const auto& s : sections) {
    const int64_t before = g_failures;
    s.second();
    printf("[%s] %s\n", s.first, g_failures == before ? "ok" : "FAILED");
  }
  printf("%lld checks, %lld failures\n", static_cast<long long>(g_checks),
         static_cast<long long>(g_failures));
  return g_failures == 0 ? 0 : 1;
}
