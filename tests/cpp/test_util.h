// Shared utilities of the C++ kernel tests: the harness (EXPECT), random
// numbers, bit-level views of the output types, independent reference
// conversions, the problem generator, the serial emulation of TF's loop
// and the runners. Each *_test.cc file holds one section; main.cc runs them.
#ifndef CROP_AND_RESIZE_GRAD_TESTS_CPP_TEST_UTIL_H_
#define CROP_AND_RESIZE_GRAD_TESTS_CPP_TEST_UTIL_H_

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <initializer_list>
#include <memory>
#include <new>
#include <sstream>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "cc/core/checks.h"
#include "cc/core/cpu/grad_image.h"
#include "cc/core/float16.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CRG_TEST_X86 1
#endif

#if defined(CRG_TEST_SANITIZED) || defined(__SANITIZE_ADDRESS__) || \
    defined(__SANITIZE_THREAD__)
#define CRG_TEST_IS_SANITIZED 1
#else
#define CRG_TEST_IS_SANITIZED 0
#endif

// Heap tracking (test_util.cc): the global operator new/delete of this binary
// (and so of the kernel linked into it) count live bytes while g_track_heap is
// set, to measure the kernel's temporaries exactly. Not in sanitizer builds,
// whose runtimes own operator new/delete.
namespace crg_test {
inline std::atomic<bool> g_track_heap{false};
inline std::atomic<int64_t> g_heap_live{0};
inline std::atomic<int64_t> g_heap_peak{0};
}  // namespace crg_test

namespace crg_test {

namespace crg = crop_and_resize_grad;
using crg::BFloat16;
using crg::Half;
using crg::Method;

constexpr bool kSanitized = CRG_TEST_IS_SANITIZED;

// ---------------------------------------------------------------------------
// A tiny harness: EXPECT records a failure (printing at most a few per
// section) and carries on.

inline int64_t g_checks = 0;
inline int64_t g_failures = 0;
inline int64_t g_printed = 0;
constexpr int64_t kMaxPrinted = 30;

inline void Fail(const char* file, int line, const std::string& what) {
  ++g_failures;
  if (g_printed++ < kMaxPrinted) {
    fprintf(stderr, "%s:%d: FAILED: %s\n", file, line, what.c_str());
  } else if (g_printed == kMaxPrinted + 1) {
    fprintf(stderr, "(further failures not printed)\n");
  }
}

#define EXPECT(cond, msg)                      \
  do {                                         \
    ++g_checks;                                \
    if (!(cond)) {                             \
      std::ostringstream crg_os_;              \
      crg_os_.precision(17);                   \
      crg_os_ << #cond << " -- " << msg;       \
      Fail(__FILE__, __LINE__, crg_os_.str()); \
    }                                          \
  } while (0)

inline double Seconds() {
  return std::chrono::duration<double>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// ---------------------------------------------------------------------------
// Deterministic random numbers (splitmix64), identical on every platform.

class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  double Uniform(double lo, double hi) {
    return lo + (hi - lo) * static_cast<double>(Next() >> 11) * 0x1p-53;
  }
  int64_t Int(int64_t n) { return static_cast<int64_t>(Next() % n); }
  bool Chance(double p) { return Uniform(0, 1) < p; }

 private:
  uint64_t state_;
};

// ---------------------------------------------------------------------------
// Bits and values of the four output types.

template <typename T>
inline uint64_t BitsOf(const T& v) {
  uint64_t b = 0;
  memcpy(&b, &v, sizeof(T));
  return b;
}

inline double HalfBitsToDouble(uint16_t h) {
  const int e = (h >> 10) & 31;
  const int m = h & 1023;
  double v;
  if (e == 0) {
    v = ldexp(m, -24);
  } else if (e == 31) {
    v = m ? NAN : INFINITY;
  } else {
    v = ldexp(m + 1024, e - 25);
  }
  return (h & 0x8000) ? -v : v;
}

inline double BFloat16BitsToDouble(uint16_t b) {
  const uint32_t u = static_cast<uint32_t>(b) << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}

inline double ToDouble(float v) { return v; }
inline double ToDouble(double v) { return v; }
inline double ToDouble(Half v) { return HalfBitsToDouble(v.bits); }
inline double ToDouble(BFloat16 v) { return BFloat16BitsToDouble(v.bits); }

template <typename T>
const char* TypeName();
template <>
inline const char* TypeName<float>() {
  return "float";
}
template <>
inline const char* TypeName<double>() {
  return "double";
}
template <>
inline const char* TypeName<Half>() {
  return "Half";
}
template <>
inline const char* TypeName<BFloat16>() {
  return "BFloat16";
}

// ---------------------------------------------------------------------------
// Reference conversions, written independently of cc/float16.h.

// float -> binary16, round to nearest even, in double arithmetic. NaN maps to
// a quiet NaN keeping the sign and the upper 10 payload bits (F16C's rule).
inline uint16_t RefHalfBits(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  const uint16_t sign = (u >> 31) ? 0x8000 : 0;
  if (isnan(f)) return sign | 0x7e00 | ((u >> 13) & 0x3ff);
  const double a = fabs(static_cast<double>(f));
  // 65520 = 65504 + half an ulp: from there on, rounding overflows.
  if (a >= 65520.0) return sign | 0x7c00;
  if (a < 0x1p-14) {  // Subnormal (or rounds up to the smallest normal).
    return sign | static_cast<uint16_t>(nearbyint(a * 0x1p24));
  }
  int e;
  frexp(a, &e);  // a = m 2^e, m in [0.5, 1): a in [2^(e-1), 2^e).
  const double r = nearbyint(ldexp(a, 11 - e));  // In [1024, 2048].
  // r == 2048 carries into the exponent; the formula covers it.
  return sign | static_cast<uint16_t>(((e - 1 + 15) << 10) +
                                      (static_cast<int>(r) - 1024));
}

// float -> bfloat16, round to nearest even: pick the nearer of the two
// bfloat16 neighbours (distances in double), ties to the even one; the value
// past the largest bfloat16 is +-2^128, i.e. infinity.
inline uint16_t RefBFloat16Bits(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  if (isnan(f)) return static_cast<uint16_t>((u >> 16) | 0x0040);
  if (isinf(f)) return static_cast<uint16_t>(u >> 16);
  const uint32_t sign = u & 0x80000000u;
  const uint32_t lo = (u & 0x7fffffffu) & 0xffff0000u;
  const uint32_t hi = lo + 0x10000u;
  auto value = [](uint32_t bits) {
    if (bits >= 0x7f800000u) return 0x1p128;
    float v;
    memcpy(&v, &bits, 4);
    return static_cast<double>(v);
  };
  const double a = fabs(static_cast<double>(f));
  const double d_lo = a - value(lo);
  const double d_hi = value(hi) - a;
  uint32_t pick;
  if (d_lo < d_hi) {
    pick = lo;
  } else if (d_hi < d_lo) {
    pick = hi;
  } else {
    pick = ((lo >> 16) & 1) ? hi : lo;
  }
  return static_cast<uint16_t>((sign | pick) >> 16);
}

template <typename T>
T FromAccumulator(float v);
template <>
inline float FromAccumulator<float>(float v) {
  return v;
}
template <>
inline Half FromAccumulator<Half>(float v) {
  return Half{RefHalfBits(v)};
}
template <>
inline BFloat16 FromAccumulator<BFloat16>(float v) {
  return BFloat16{RefBFloat16Bits(v)};
}
template <typename T>
inline T FromAccumulator(double v) {
  static_assert(std::is_same<T, double>::value, "double accumulates double");
  return v;
}

template <typename T>
struct AccOf {
  using type = float;
};
template <>
struct AccOf<double> {
  using type = double;
};

// ---------------------------------------------------------------------------
// Problems.

enum class BoxKind {
  kNormal,
  kFlipped,
  kDegenerate,
  kPartlyOutside,
  kWhollyOutside,
  kUnit,
  kGrid,
  kHuge,
  kNearFull,
  kMixed
};

struct Problem {
  std::string name;
  int64_t num_boxes = 0, crop_height = 1, crop_width = 1;
  int64_t batch = 1, height = 1, width = 1, depth = 1;
  std::vector<float> grads;
  std::vector<float> boxes;
  std::vector<int32_t> box_ind;

  int64_t OutputSize() const { return batch * height * width * depth; }
  crg::GradImageArgs Args(Method method) const {
    crg::GradImageArgs a;
    a.grads = grads.data();
    a.boxes = boxes.data();
    a.box_ind = box_ind.data();
    a.num_boxes = num_boxes;
    a.crop_height = crop_height;
    a.crop_width = crop_width;
    a.batch = batch;
    a.height = height;
    a.width = width;
    a.depth = depth;
    a.method = method;
    return a;
  }
};

inline void MakeBox(Rng& rng, BoxKind kind, float* b) {
  double y1 = 0, x1 = 0, y2 = 0, x2 = 0;
  switch (kind) {
    case BoxKind::kMixed:
      return MakeBox(rng, static_cast<BoxKind>(rng.Int(9)), b);
    case BoxKind::kNormal:
    case BoxKind::kFlipped: {
      y1 = rng.Uniform(0, 0.8);
      x1 = rng.Uniform(0, 0.8);
      y2 = std::min(1.0, y1 + rng.Uniform(0.05, 0.5));
      x2 = std::min(1.0, x1 + rng.Uniform(0.05, 0.5));
      if (kind == BoxKind::kFlipped) {
        const int which = static_cast<int>(rng.Int(3));
        if (which != 1) std::swap(y1, y2);
        if (which != 0) std::swap(x1, x2);
      }
      break;
    }
    case BoxKind::kDegenerate: {
      y1 = rng.Uniform(0, 1);
      x1 = rng.Uniform(0, 1);
      y2 = rng.Uniform(0, 1);
      x2 = rng.Uniform(0, 1);
      const int which = static_cast<int>(rng.Int(3));
      if (which != 1) y2 = y1;
      if (which != 0) x2 = x1;
      break;
    }
    case BoxKind::kPartlyOutside:
      y1 = rng.Uniform(-0.6, 0.4);
      y2 = rng.Uniform(0.6, 1.6);
      x1 = rng.Uniform(-0.6, 1.6);
      x2 = rng.Uniform(-0.6, 1.6);
      if (rng.Chance(0.3)) std::swap(y1, y2);
      break;
    case BoxKind::kWhollyOutside: {
      const double s = rng.Chance(0.5) ? 1.0 : -1.0;
      y1 = 0.5 + s * rng.Uniform(0.55, 2.5);
      y2 = 0.5 + s * rng.Uniform(0.55, 2.5);
      x1 = rng.Uniform(-0.5, 1.5);
      x2 = rng.Uniform(-0.5, 1.5);
      if (rng.Chance(0.5)) {
        std::swap(y1, x1);
        std::swap(y2, x2);
      }
      break;
    }
    case BoxKind::kUnit:
      y1 = x1 = 0;
      y2 = x2 = 1;
      break;
    case BoxKind::kGrid: {
      static const double kGrid[] = {0,   0.125, 0.1, 0.2,  0.25, 0.3,
                                     0.5, 0.6,   0.7, 0.75, 0.9,  1.0};
      y1 = kGrid[rng.Int(12)];
      x1 = kGrid[rng.Int(12)];
      y2 = kGrid[rng.Int(12)];
      x2 = kGrid[rng.Int(12)];
      break;
    }
    case BoxKind::kHuge: {
      // Finite but extreme values: the coordinates overflow to Inf or NaN,
      // which must be dropped, not dereferenced (TF segfaults here).
      static const float kValues[] = {3.4e38f, -3.4e38f, 1e30f,  -1e30f,
                                      1e20f,   -1e20f,   1e-40f, -0.0f,
                                      0.0f,    0.5f,     1.0f,   1e7f};
      for (int k = 0; k < 4; ++k) b[k] = kValues[rng.Int(12)];
      return;
    }
    case BoxKind::kNearFull:
      y1 = rng.Uniform(-0.05, 0.1);
      x1 = rng.Uniform(-0.05, 0.1);
      y2 = rng.Uniform(0.9, 1.05);
      x2 = rng.Uniform(0.9, 1.05);
      if (rng.Chance(0.2)) std::swap(y1, y2);
      break;
  }
  b[0] = static_cast<float>(y1);
  b[1] = static_cast<float>(x1);
  b[2] = static_cast<float>(y2);
  b[3] = static_cast<float>(x2);
}

inline Problem MakeProblem(const std::string& name, int64_t num_boxes,
                           int64_t ch, int64_t cw, int64_t batch,
                           int64_t height, int64_t width, int64_t depth,
                           BoxKind kind, uint64_t seed) {
  Problem p;
  p.name = name;
  p.num_boxes = num_boxes;
  p.crop_height = ch;
  p.crop_width = cw;
  p.batch = batch;
  p.height = height;
  p.width = width;
  p.depth = depth;
  Rng rng(seed);
  p.boxes.resize(num_boxes * 4);
  p.box_ind.resize(num_boxes);
  for (int64_t n = 0; n < num_boxes; ++n) {
    MakeBox(rng, kind, &p.boxes[n * 4]);
    p.box_ind[n] = static_cast<int32_t>(rng.Int(std::max<int64_t>(batch, 1)));
  }
  p.grads.resize(num_boxes * ch * cw * depth);
  for (float& g : p.grads) g = static_cast<float>(rng.Uniform(-1, 1));
  return p;
}

// The fixed set of problems of the "kernel" section (and of the hash).
inline std::vector<Problem> KernelProblems() {
  std::vector<Problem> ps;
  uint64_t seed = 1;
  auto add = [&](const std::string& name, int64_t n, int64_t ch, int64_t cw,
                 int64_t b, int64_t h, int64_t w, int64_t d, BoxKind kind) {
    ps.push_back(MakeProblem(name, n, ch, cw, b, h, w, d, kind, seed++));
  };
  add("normal", 30, 5, 4, 3, 11, 9, 3, BoxKind::kNormal);
  add("flipped", 30, 5, 4, 3, 11, 9, 3, BoxKind::kFlipped);
  add("degenerate", 30, 5, 4, 2, 11, 9, 3, BoxKind::kDegenerate);
  add("partly_outside", 30, 6, 5, 2, 11, 9, 3, BoxKind::kPartlyOutside);
  add("wholly_outside", 20, 4, 4, 2, 7, 8, 3, BoxKind::kWhollyOutside);
  add("unit_box", 12, 7, 7, 2, 9, 11, 3, BoxKind::kUnit);
  add("unit_box_exact_grid", 8, 9, 11, 1, 9, 11, 2, BoxKind::kUnit);
  add("grid", 40, 5, 6, 2, 11, 21, 2, BoxKind::kGrid);
  add("huge_finite", 40, 4, 3, 2, 9, 7, 2, BoxKind::kHuge);
  add("crop_1x1", 40, 1, 1, 2, 10, 7, 4, BoxKind::kMixed);
  add("crop_1x6", 40, 1, 6, 2, 10, 7, 4, BoxKind::kMixed);
  add("crop_6x1", 40, 6, 1, 2, 10, 7, 4, BoxKind::kMixed);
  add("crop_2x2", 40, 2, 2, 2, 10, 7, 4, BoxKind::kMixed);
  add("several_images", 50, 4, 5, 5, 8, 6, 3, BoxKind::kMixed);
  add("height_1", 20, 3, 4, 2, 1, 9, 3, BoxKind::kMixed);
  add("width_1", 20, 3, 4, 2, 9, 1, 3, BoxKind::kMixed);
  add("height_width_1", 20, 3, 4, 2, 1, 1, 3, BoxKind::kMixed);
  add("many_rows", 30, 9, 3, 3, 70, 5, 2, BoxKind::kMixed);
  add("near_full_overlap", 150, 7, 7, 1, 8, 8, 4, BoxKind::kNearFull);
  // Rows wider than the accumulator's block: the depth splits into blocks
  // (float: 1800 x 300 x 4 B, double: 900 x 300 x 8 B, both > 2 MiB, the
  // largest whole-row block).
  add("wide_rows_f32", 6, 3, 40, 1, 3, 1800, 300, BoxKind::kNearFull);
  add("wide_rows_f64", 6, 3, 20, 1, 3, 900, 300, BoxKind::kNearFull);
  for (int64_t d : {1,  2,  3,  4,  5,   7,   8,   9,   15,  16,  17,  31, 32,
                    33, 63, 64, 65, 127, 128, 129, 255, 256, 257, 299, 300}) {
    add("depth_" + std::to_string(d), 12, 4, 3, 2, 6, 5, d, BoxKind::kMixed);
  }
  add("no_boxes", 0, 3, 3, 2, 5, 4, 3, BoxKind::kMixed);
  add("no_boxes_no_batch", 0, 3, 3, 0, 5, 4, 3, BoxKind::kMixed);
  add("depth_0", 5, 3, 3, 2, 5, 4, 0, BoxKind::kMixed);
  return ps;
}

// ---------------------------------------------------------------------------
// The serial loop of TF's kernel, written from docs/semantics.md: sample
// positions in float32 in TF's order, NaN-safe range test, floor/ceil (or
// round) taps.

struct AxisRef {
  bool valid;
  int64_t lo, hi;
  float frac;
};

inline AxisRef RefAxis(float a, float b, int64_t size, int64_t crop, int64_t i,
                       Method method) {
  float coord;
  if (crop > 1) {
    const float scale =
        (b - a) * static_cast<float>(size - 1) / static_cast<float>(crop - 1);
    coord = a * static_cast<float>(size - 1) + static_cast<float>(i) * scale;
  } else {
    coord = static_cast<float>(0.5 * (a + b) * static_cast<double>(size - 1));
  }
  AxisRef r{false, 0, 0, 0.0f};
  if (!(coord >= 0.0f && coord <= static_cast<float>(size - 1))) return r;
  r.valid = true;
  if (method == Method::kNearest) {
    r.lo = r.hi = static_cast<int64_t>(roundf(coord));
  } else {
    const float fl = floorf(coord);
    r.lo = static_cast<int64_t>(fl);
    r.hi = static_cast<int64_t>(ceilf(coord));
    r.frac = coord - fl;
  }
  return r;
}

// Calls visit(grads_offset, top_row, bottom_row, left, right, ly, lx) for
// every valid sample in (box, crop row, crop column) order; rows are flat
// image rows (b * height + y).
template <typename Visit>
inline void ForEachSample(const Problem& p, Method method, Visit visit) {
  for (int64_t n = 0; n < p.num_boxes; ++n) {
    const float* box = &p.boxes[n * 4];
    const int64_t row_base = static_cast<int64_t>(p.box_ind[n]) * p.height;
    for (int64_t y = 0; y < p.crop_height; ++y) {
      const AxisRef ay =
          RefAxis(box[0], box[2], p.height, p.crop_height, y, method);
      if (!ay.valid) continue;
      for (int64_t x = 0; x < p.crop_width; ++x) {
        const AxisRef ax =
            RefAxis(box[1], box[3], p.width, p.crop_width, x, method);
        if (!ax.valid) continue;
        visit(((n * p.crop_height + y) * p.crop_width + x) * p.depth,
              row_base + ay.lo, row_base + ay.hi, ax.lo, ax.hi, ay.frac,
              ax.frac);
      }
    }
  }
}

// float64 reference: value, sum of |contributions| and their count.
struct Reference64 {
  std::vector<double> value, abs_sum;
  std::vector<int32_t> count;
};

inline Reference64 ComputeReference64(const Problem& p, Method method) {
  const int64_t size = p.OutputSize();
  Reference64 r;
  r.value.assign(size, 0.0);
  r.abs_sum.assign(size, 0.0);
  r.count.assign(size, 0);
  if (size == 0) return r;
  auto add = [&](int64_t row, int64_t col, int64_t d, double c) {
    const int64_t i = (row * p.width + col) * p.depth + d;
    r.value[i] += c;
    r.abs_sum[i] += fabs(c);
    r.count[i] += 1;
  };
  ForEachSample(p, method,
                [&](int64_t g0, int64_t top, int64_t bottom, int64_t left,
                    int64_t right, float ly, float lx) {
                  for (int64_t d = 0; d < p.depth; ++d) {
                    const double g = p.grads[g0 + d];
                    if (method == Method::kNearest) {
                      add(top, left, d, g);
                      continue;
                    }
                    const double y1 = ly, y0 = 1.0 - y1;
                    const double x1 = lx, x0 = 1.0 - x1;
                    add(top, left, d, y0 * x0 * g);
                    add(top, right, d, y0 * x1 * g);
                    add(bottom, left, d, y1 * x0 * g);
                    add(bottom, right, d, y1 * x1 * g);
                  }
                });
  return r;
}

// TF's serial loop in the accumulator type Acc (float, or double for double
// output), then one rounding to T: what the kernel must produce bit for bit.
template <typename T>
inline std::vector<T> EmulateSerial(const Problem& p, Method method) {
  using Acc = typename AccOf<T>::type;
  std::vector<Acc> acc(p.OutputSize(), Acc(0));
  if (acc.empty()) return {};
  ForEachSample(p, method,
                [&](int64_t g0, int64_t top, int64_t bottom, int64_t left,
                    int64_t right, float ly, float lx) {
                  Acc* tl = &acc[(top * p.width + left) * p.depth];
                  Acc* tr = &acc[(top * p.width + right) * p.depth];
                  Acc* bl = &acc[(bottom * p.width + left) * p.depth];
                  Acc* br = &acc[(bottom * p.width + right) * p.depth];
                  const Acc wt = Acc(1) - static_cast<Acc>(ly);
                  const Acc wb = static_cast<Acc>(ly);
                  const Acc wl = Acc(1) - static_cast<Acc>(lx);
                  const Acc wr = static_cast<Acc>(lx);
                  for (int64_t d = 0; d < p.depth; ++d) {
                    const Acc g = static_cast<Acc>(p.grads[g0 + d]);
                    if (method == Method::kNearest) {
                      tl[d] += g;
                      continue;
                    }
                    const Acc dtop = wt * g;
                    const Acc dbottom = wb * g;
                    tl[d] += wl * dtop;
                    tr[d] += wr * dtop;
                    bl[d] += wl * dbottom;
                    br[d] += wr * dbottom;
                  }
                });
  std::vector<T> out(acc.size());
  for (size_t i = 0; i < acc.size(); ++i) out[i] = FromAccumulator<T>(acc[i]);
  return out;
}

// ---------------------------------------------------------------------------
// Runners.

// Dynamic scheduling over std::threads, like cc/pybind's ThreadRunner: every
// thread takes `chunk` units at a time from a shared counter. All threads are
// started even when there are fewer units, to add contention.
inline crg::ParallelRunner ThreadRunner(int num_threads, int64_t chunk = 1) {
  crg::ParallelRunner runner;
  runner.num_threads = num_threads;
  runner.parallel_for = [num_threads, chunk](
                            int64_t num_units,
                            const std::function<void(int64_t, int64_t)>& work) {
    std::atomic<int64_t> next{0};
    auto loop = [&] {
      for (;;) {
        const int64_t begin = next.fetch_add(chunk);
        if (begin >= num_units) return;
        work(begin, std::min(begin + chunk, num_units));
      }
    };
    std::vector<std::thread> pool;
    for (int t = 1; t < num_threads; ++t) pool.emplace_back(loop);
    loop();
    for (std::thread& t : pool) t.join();
  };
  return runner;
}

// Claims num_threads (so the kernel tiles for them) but runs the units one
// by one in reverse order on the calling thread.
inline crg::ParallelRunner ReverseRunner(int num_threads) {
  crg::ParallelRunner runner;
  runner.num_threads = num_threads;
  runner.parallel_for = [](int64_t num_units,
                           const std::function<void(int64_t, int64_t)>& work) {
    for (int64_t u = num_units - 1; u >= 0; --u) work(u, u + 1);
  };
  return runner;
}

// Runs the kernel into a buffer of exactly the output's size (so ASan sees
// any overrun), pre-filled with garbage (the kernel must overwrite it all).
// offset > 0 shifts the output off its natural alignment; the elements
// before it must stay untouched.
template <typename T>
inline std::vector<T> RunKernel(const Problem& p, Method method,
                                const crg::ParallelRunner& runner,
                                int offset = 0) {
  const int64_t size = p.OutputSize();
  std::unique_ptr<T[]> buf(new T[size + offset]);
  memset(static_cast<void*>(buf.get()), 0xA5, sizeof(T) * (size + offset));
  crg::CropAndResizeGradImageCpu<T>(p.Args(method), buf.get() + offset, runner);
  for (int i = 0; i < offset; ++i) {
    const unsigned char* bytes =
        reinterpret_cast<const unsigned char*>(buf.get() + i);
    for (size_t k = 0; k < sizeof(T); ++k) {
      EXPECT(bytes[k] == 0xA5, p.name << ": write before the output");
    }
  }
  return std::vector<T>(buf.get() + offset, buf.get() + offset + size);
}

template <typename T>
inline int64_t CountBitwiseDiffs(const std::vector<T>& a,
                                 const std::vector<T>& b, int64_t* first) {
  int64_t diffs = 0;
  *first = -1;
  for (size_t i = 0; i < a.size(); ++i) {
    if (BitsOf(a[i]) != BitsOf(b[i])) {
      if (diffs++ == 0) *first = static_cast<int64_t>(i);
    }
  }
  return diffs;
}

template <typename T>
inline void ExpectBitwiseEqual(const std::vector<T>& actual,
                               const std::vector<T>& expected,
                               const std::string& what) {
  EXPECT(actual.size() == expected.size(), what << ": size");
  if (actual.size() != expected.size()) return;
  int64_t first;
  const int64_t diffs = CountBitwiseDiffs(actual, expected, &first);
  EXPECT(diffs == 0, what << ": " << diffs << " of " << actual.size()
                          << " elements differ bitwise; first at " << first
                          << ": " << ToDouble(actual[first]) << " vs "
                          << ToDouble(expected[first]));
}

// Per-element bound on |out - reference| for T: the float (or double)
// accumulation error, plus one final rounding for the 16-bit types.
template <typename T>
inline double ErrorBound(double ref, double abs_sum, int32_t count) {
  const double u = std::is_same<T, double>::value ? 0x1p-53 : 0x1p-24;
  const double tiny = std::is_same<T, double>::value ? 0x1p-1074 : 0x1p-149;
  // Each contribution: 1 - frac, two products (about 3u); each add: u.
  const double acc = (count + 4) * u * abs_sum + count * tiny;
  if (std::is_same<T, Half>::value) {
    return acc + 0x1p-11 * (fabs(ref) + acc) + 0x1p-25;
  }
  if (std::is_same<T, BFloat16>::value) {
    return acc + 0x1p-8 * (fabs(ref) + acc) + 0x1p-134;
  }
  return acc;
}

template <typename T>
inline void ExpectNearReference(const std::vector<T>& out,
                                const Reference64& ref,
                                const std::string& what) {
  int64_t bad = 0, first = -1;
  for (size_t i = 0; i < out.size(); ++i) {
    const double v = ToDouble(out[i]);
    const double bound =
        ErrorBound<T>(ref.value[i], ref.abs_sum[i], ref.count[i]);
    const double err = fabs(v - ref.value[i]);
    if (!(err <= bound)) {  // NaN-safe.
      if (bad++ == 0) first = static_cast<int64_t>(i);
    }
  }
  EXPECT(bad == 0, what << ": " << bad << " of " << out.size()
                        << " elements outside the float64 bound; first at "
                        << first << ": "
                        << (first >= 0 ? ToDouble(out[first]) : 0.0) << " vs "
                        << (first >= 0 ? ref.value[first] : 0.0));
}

// FNV-1a over the outputs.
struct Hash {
  uint64_t h = 0xcbf29ce484222325ull;
  void Add(const void* data, size_t bytes) {
    const unsigned char* c = static_cast<const unsigned char*>(data);
    for (size_t i = 0; i < bytes; ++i) {
      h ^= c[i];
      h *= 0x100000001b3ull;
    }
  }
};

inline const char* MethodName(Method m) {
  return m == Method::kBilinear ? "bilinear" : "nearest";
}

template <typename T>
inline void CheckProblem(const Problem& p, Method method,
                         const Reference64& ref) {
  const std::string what =
      p.name + " " + MethodName(method) + " " + TypeName<T>();
  const std::vector<T> serial = RunKernel<T>(p, method, crg::SerialRunner());
  ExpectNearReference(serial, ref, what + " vs float64 reference");
  ExpectBitwiseEqual(serial, EmulateSerial<T>(p, method),
                     what + " vs serial emulation of TF's loop");
  ExpectBitwiseEqual(RunKernel<T>(p, method, ThreadRunner(4)), serial,
                     what + " 4 threads vs serial");
  ExpectBitwiseEqual(RunKernel<T>(p, method, ReverseRunner(3), 1), serial,
                     what + " reverse order, misaligned vs serial");
}

inline uint64_t KernelHash(const std::vector<Problem>& problems) {
  Hash hash;
  for (const Problem& p : problems) {
    for (Method m : {Method::kBilinear, Method::kNearest}) {
      const crg::ParallelRunner serial = crg::SerialRunner();
      auto add = [&](const auto& v) {
        hash.Add(v.data(), v.size() * sizeof(v[0]));
      };
      add(RunKernel<float>(p, m, serial));
      add(RunKernel<double>(p, m, serial));
      add(RunKernel<Half>(p, m, serial));
      add(RunKernel<BFloat16>(p, m, serial));
    }
  }
  return hash.h;
}

// The sections (one file each).
void TestCheckBoxValues();
void TestCheckGradImageShapes();
void TestConversions(bool exhaustive);
void TestIsaSelection();
void TestHandComputed();
void TestHugeSizes();
void TestKernel(const std::vector<Problem>& problems);
void TestThreads();
void TestMemory();

}  // namespace crg_test

#endif  // CROP_AND_RESIZE_GRAD_TESTS_CPP_TEST_UTIL_H_
