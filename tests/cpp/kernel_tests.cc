// Tests of the TF-free CPU kernels (cc/core/cpu/grad_image.h,
// cc/float16.h), without TensorFlow and without a test framework.
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

// ---------------------------------------------------------------------------
// Heap tracking: the global operator new/delete of this binary (and so of the
// kernel linked into it) count live bytes while g_track_heap is set, to
// measure the kernel's temporaries exactly. Not in sanitizer builds, whose
// runtimes own operator new/delete.

namespace {
std::atomic<bool> g_track_heap{false};
std::atomic<int64_t> g_heap_live{0};
std::atomic<int64_t> g_heap_peak{0};
}  // namespace

#if !CRG_TEST_IS_SANITIZED
namespace {
constexpr size_t kHeapHeader = 16;  // Keeps malloc's 16-byte alignment.

void* TrackedAlloc(size_t n) {
  void* base = malloc(n + kHeapHeader);
  if (base == nullptr) throw std::bad_alloc();
  const bool track = g_track_heap.load(std::memory_order_relaxed);
  // The header holds the tracked size; 0 for allocations made untracked.
  *static_cast<size_t*>(base) = track ? n : 0;
  if (track) {
    const int64_t live = g_heap_live.fetch_add(static_cast<int64_t>(n)) + n;
    int64_t peak = g_heap_peak.load();
    while (live > peak && !g_heap_peak.compare_exchange_weak(peak, live)) {
    }
  }
  return static_cast<char*>(base) + kHeapHeader;
}

void TrackedFree(void* p) {
  if (p == nullptr) return;
  char* base = static_cast<char*>(p) - kHeapHeader;
  const size_t n = *reinterpret_cast<size_t*>(base);
  if (n != 0) g_heap_live.fetch_sub(static_cast<int64_t>(n));
  free(base);
}
}  // namespace

void* operator new(size_t n) { return TrackedAlloc(n); }
void* operator new[](size_t n) { return TrackedAlloc(n); }
void operator delete(void* p) noexcept { TrackedFree(p); }
void operator delete[](void* p) noexcept { TrackedFree(p); }
void operator delete(void* p, size_t) noexcept { TrackedFree(p); }
void operator delete[](void* p, size_t) noexcept { TrackedFree(p); }
#endif

namespace {

namespace crg = crop_and_resize_grad;
using crg::BFloat16;
using crg::Half;
using crg::Method;

constexpr bool kSanitized = CRG_TEST_IS_SANITIZED;

// ---------------------------------------------------------------------------
// A tiny harness: EXPECT records a failure (printing at most a few per
// section) and carries on.

int64_t g_checks = 0;
int64_t g_failures = 0;
int64_t g_printed = 0;
constexpr int64_t kMaxPrinted = 30;

void Fail(const char* file, int line, const std::string& what) {
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

double Seconds() {
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
uint64_t BitsOf(const T& v) {
  uint64_t b = 0;
  memcpy(&b, &v, sizeof(T));
  return b;
}

double HalfBitsToDouble(uint16_t h) {
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

double BFloat16BitsToDouble(uint16_t b) {
  const uint32_t u = static_cast<uint32_t>(b) << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}

double ToDouble(float v) { return v; }
double ToDouble(double v) { return v; }
double ToDouble(Half v) { return HalfBitsToDouble(v.bits); }
double ToDouble(BFloat16 v) { return BFloat16BitsToDouble(v.bits); }

template <typename T>
const char* TypeName();
template <>
const char* TypeName<float>() {
  return "float";
}
template <>
const char* TypeName<double>() {
  return "double";
}
template <>
const char* TypeName<Half>() {
  return "Half";
}
template <>
const char* TypeName<BFloat16>() {
  return "BFloat16";
}

// ---------------------------------------------------------------------------
// Reference conversions, written independently of cc/float16.h.

// float -> binary16, round to nearest even, in double arithmetic. NaN maps to
// a quiet NaN keeping the sign and the upper 10 payload bits (F16C's rule).
uint16_t RefHalfBits(float f) {
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
uint16_t RefBFloat16Bits(float f) {
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
float FromAccumulator<float>(float v) {
  return v;
}
template <>
Half FromAccumulator<Half>(float v) {
  return Half{RefHalfBits(v)};
}
template <>
BFloat16 FromAccumulator<BFloat16>(float v) {
  return BFloat16{RefBFloat16Bits(v)};
}
template <typename T>
T FromAccumulator(double v) {
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

void MakeBox(Rng& rng, BoxKind kind, float* b) {
  double y1, x1, y2, x2;
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

Problem MakeProblem(const std::string& name, int64_t num_boxes, int64_t ch,
                    int64_t cw, int64_t batch, int64_t height, int64_t width,
                    int64_t depth, BoxKind kind, uint64_t seed) {
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
std::vector<Problem> KernelProblems() {
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
  // (float: 240 x 300 x 4 B > 256 KiB; double: 120 x 300 x 8 B).
  add("wide_rows_f32", 6, 3, 40, 1, 3, 240, 300, BoxKind::kNearFull);
  add("wide_rows_f64", 6, 3, 20, 1, 3, 120, 300, BoxKind::kNearFull);
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

AxisRef RefAxis(float a, float b, int64_t size, int64_t crop, int64_t i,
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
void ForEachSample(const Problem& p, Method method, Visit visit) {
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

Reference64 ComputeReference64(const Problem& p, Method method) {
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
std::vector<T> EmulateSerial(const Problem& p, Method method) {
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
crg::ParallelRunner ThreadRunner(int num_threads, int64_t chunk = 1) {
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
crg::ParallelRunner ReverseRunner(int num_threads) {
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
std::vector<T> RunKernel(const Problem& p, Method method,
                         const crg::ParallelRunner& runner, int offset = 0) {
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
int64_t CountBitwiseDiffs(const std::vector<T>& a, const std::vector<T>& b,
                          int64_t* first) {
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
void ExpectBitwiseEqual(const std::vector<T>& actual,
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
double ErrorBound(double ref, double abs_sum, int32_t count) {
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
void ExpectNearReference(const std::vector<T>& out, const Reference64& ref,
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

const char* MethodName(Method m) {
  return m == Method::kBilinear ? "bilinear" : "nearest";
}

template <typename T>
void CheckProblem(const Problem& p, Method method, const Reference64& ref) {
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

uint64_t KernelHash(const std::vector<Problem>& problems) {
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
// CheckBoxValues.

void TestCheckBoxValues() {
  using crg::CheckBoxValues;
  using crg::ErrorCode;
  const float kBad[] = {NAN, -NAN, INFINITY, -INFINITY};
  const std::vector<float> good = {0, 0, 1,     1,      0.1f,  -5,
                                   7, 2, 1e30f, -3e38f, 3e38f, 1e-40f};
  const std::vector<int32_t> ind = {0, 1, 2};
  EXPECT(CheckBoxValues(good.data(), ind.data(), 3, 3).ok(),
         "finite extreme boxes are valid");
  EXPECT(CheckBoxValues(nullptr, nullptr, 0, 0).ok(), "no boxes is valid");
  EXPECT(CheckBoxValues(nullptr, nullptr, 0, 5).ok(), "no boxes is valid");
  for (float bad : kBad) {
    for (int n = 0; n < 3; ++n) {
      for (int k = 0; k < 4; ++k) {
        std::vector<float> b = good;
        b[n * 4 + k] = bad;
        const crg::CheckResult r = CheckBoxValues(b.data(), ind.data(), 3, 3);
        const std::string where =
            "boxes[" + std::to_string(n) + ", " + std::to_string(k) + "]";
        EXPECT(r.code == ErrorCode::kInvalidArgument,
               "non-finite " << bad << " at " << where << ": " << r.message);
        EXPECT(r.message.find("boxes must be finite") != std::string::npos &&
                   r.message.find(where) != std::string::npos,
               "message names the box: " << r.message);
      }
    }
  }
  const int32_t kBadInd[] = {-1, 3, 4, INT32_MAX, INT32_MIN};
  for (int32_t bad : kBadInd) {
    for (int n = 0; n < 3; ++n) {
      std::vector<int32_t> i = ind;
      i[n] = bad;
      const crg::CheckResult r = CheckBoxValues(good.data(), i.data(), 3, 3);
      EXPECT(r.code == ErrorCode::kOutOfRange,
             "box_ind " << bad << " at " << n << ": " << r.message);
      EXPECT(r.message.find("box_ind has values outside [0, batch_size)") !=
                     std::string::npos &&
                 r.message.find("box_ind[" + std::to_string(n) + "]") !=
                     std::string::npos,
             "message: " << r.message);
    }
  }
  // batch 0 with boxes: every index is out of range.
  EXPECT(CheckBoxValues(good.data(), ind.data(), 3, 0).code ==
             ErrorCode::kOutOfRange,
         "batch 0");
  // The first bad box is reported: a NaN in box 1 before a bad index in 2.
  {
    std::vector<float> b = good;
    std::vector<int32_t> i = ind;
    b[4 + 2] = NAN;
    i[2] = -7;
    const crg::CheckResult r = CheckBoxValues(b.data(), i.data(), 3, 3);
    EXPECT(r.code == ErrorCode::kInvalidArgument &&
               r.message.find("boxes[1, 2]") != std::string::npos,
           r.message);
    b[4 + 2] = 0;
    i[0] = 3;
    const crg::CheckResult r2 = CheckBoxValues(b.data(), i.data(), 3, 3);
    EXPECT(r2.code == ErrorCode::kOutOfRange &&
               r2.message.find("box_ind[0]") != std::string::npos,
           r2.message);
  }
  // Large index arrays: only values matter, and the check is linear.
  {
    const int64_t n = 100000;
    std::vector<float> b(n * 4, 0.5f);
    std::vector<int32_t> i(n, 6);
    EXPECT(CheckBoxValues(b.data(), i.data(), n, 7).ok(), "large valid");
    i[n - 1] = 7;
    EXPECT(!CheckBoxValues(b.data(), i.data(), n, 7).ok(), "large, last bad");
  }
}

// CheckGradImageShapes: each bad shape gets InvalidArgument and a message
// that names the argument.
crg::Shape MakeShape(std::initializer_list<int64_t> dims) {
  crg::Shape s;
  for (int64_t d : dims) s.dims[s.rank++] = d;
  return s;
}

void TestCheckGradImageShapes() {
  using crg::ErrorCode;
  struct Case {
    const char* what;
    crg::Shape grads, boxes, box_ind, image_size_shape;
    int64_t size[4];
    const char* expect;  // Substring of the message; nullptr: valid.
  };
  const crg::Shape g = MakeShape({3, 2, 2, 5});
  const crg::Shape b = MakeShape({3, 4});
  const crg::Shape i = MakeShape({3});
  const crg::Shape s4 = MakeShape({4});
  const Case cases[] = {
      {"valid", g, b, i, s4, {2, 7, 9, 5}, nullptr},
      {"valid empty",
       MakeShape({0, 1, 1, 0}),
       MakeShape({0, 4}),
       MakeShape({0}),
       s4,
       {0, 1, 1, 0},
       nullptr},
      {"grads 3-D",
       MakeShape({3, 2, 2}),
       b,
       i,
       s4,
       {2, 7, 9, 5},
       "grads must be 4-D"},
      {"zero crop",
       MakeShape({3, 0, 2, 5}),
       b,
       i,
       s4,
       {2, 7, 9, 5},
       "grads crop dimensions must be positive"},
      {"boxes [0]",
       g,
       MakeShape({0}),
       i,
       s4,
       {2, 7, 9, 5},
       "boxes must be 2-D"},
      {"boxes 5 columns",
       g,
       MakeShape({3, 5}),
       i,
       s4,
       {2, 7, 9, 5},
       "boxes must be 2-D"},
      {"box_ind [0, 0]",
       g,
       b,
       MakeShape({0, 0}),
       s4,
       {2, 7, 9, 5},
       "box_ind must be 1-D"},
      {"box_ind count",
       g,
       b,
       MakeShape({2}),
       s4,
       {2, 7, 9, 5},
       "box_ind has 2 elements"},
      {"grads count",
       MakeShape({4, 2, 2, 5}),
       b,
       i,
       s4,
       {2, 7, 9, 5},
       "grads has 4 boxes"},
      {"image_size 3",
       g,
       b,
       i,
       MakeShape({3}),
       {2, 7, 9, 5},
       "image_size must be 1-D with 4 elements"},
      {"zero height",
       g,
       b,
       i,
       s4,
       {2, 0, 9, 5},
       "image_size height and width must be positive"},
      {"negative batch",
       g,
       b,
       i,
       s4,
       {-1, 7, 9, 5},
       "image_size batch and depth must be non-negative"},
      {"depth", g, b, i, s4, {2, 7, 9, 6}, "image_size and grads are"},
      {"int32 range",
       g,
       b,
       i,
       s4,
       {int64_t{1} << 31, 7, 9, 5},
       "does not fit in int32"},
      {"overflow",
       MakeShape({3, 2, 2, INT32_MAX}),
       b,
       i,
       s4,
       {INT32_MAX, INT32_MAX, INT32_MAX, INT32_MAX},
       "has more elements than a tensor can index"},
  };
  for (const Case& c : cases) {
    crg::GradImageArgs args;
    const crg::CheckResult r = crg::CheckGradImageShapes(
        c.grads, c.boxes, c.box_ind, c.image_size_shape, c.size, &args);
    if (c.expect == nullptr) {
      EXPECT(r.ok(), c.what << ": " << r.message);
      EXPECT(args.batch == c.size[0] && args.depth == c.size[3] &&
                 args.num_boxes == c.boxes.dims[0],
             c.what << ": sizes filled in");
    } else {
      EXPECT(r.code == ErrorCode::kInvalidArgument &&
                 r.message.find(c.expect) != std::string::npos,
             c.what << ": " << r.message);
    }
  }
}

// ---------------------------------------------------------------------------
// Conversions.

#if CRG_TEST_X86
__attribute__((target("avx,f16c"))) void F16cConvert(const float* src,
                                                     uint16_t* dst) {
  const __m128i h =
      _mm256_cvtps_ph(_mm256_loadu_ps(src), _MM_FROUND_TO_NEAREST_INT);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), h);
}
bool HaveF16c() { return __builtin_cpu_supports("f16c"); }
#else
void F16cConvert(const float*, uint16_t*) {}
bool HaveF16c() { return false; }
#endif

struct ConversionCounts {
  int64_t half_bad = 0, half_f16c_bad = 0, bf16_bad = 0, checked = 0;
};

float FloatFromBits(uint32_t u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}

// Checks the bit patterns [begin, end) with stride step; use_ref selects the
// software references (slow), use_f16c the hardware one (for half).
void CheckConversionRange(uint64_t begin, uint64_t end, uint64_t step,
                          bool use_ref, bool use_f16c, ConversionCounts* c) {
  alignas(32) float f[8];
  alignas(32) uint16_t hw[8];
  for (uint64_t base = begin; base < end; base += 8 * step) {
    int k = 0;
    for (; k < 8 && base + k * step < end; ++k) {
      f[k] = FloatFromBits(static_cast<uint32_t>(base + k * step));
    }
    for (int j = k; j < 8; ++j) f[j] = 0.0f;
    if (use_f16c) F16cConvert(f, hw);
    for (int j = 0; j < k; ++j) {
      const uint16_t h = crg::FloatToHalfBits(f[j]);
      const uint16_t bf = crg::FloatToBFloat16Bits(f[j]);
      if (use_f16c && h != hw[j]) {
        if (c->half_f16c_bad++ < 5) {
          fprintf(stderr, "FloatToHalfBits(0x%08x) = 0x%04x, F16C 0x%04x\n",
                  static_cast<uint32_t>(base + j * step), h, hw[j]);
        }
      }
      if (use_ref) {
        const uint16_t rh = RefHalfBits(f[j]);
        if (h != rh && c->half_bad++ < 5) {
          fprintf(stderr,
                  "FloatToHalfBits(0x%08x) = 0x%04x, reference 0x%04x\n",
                  static_cast<uint32_t>(base + j * step), h, rh);
        }
      }
      // bfloat16: the reference is cheap enough to run always.
      const uint16_t rb = RefBFloat16Bits(f[j]);
      if (bf != rb && c->bf16_bad++ < 5) {
        fprintf(stderr,
                "FloatToBFloat16Bits(0x%08x) = 0x%04x, reference 0x%04x\n",
                static_cast<uint32_t>(base + j * step), bf, rb);
      }
    }
    c->checked += k;
  }
}

void TestConversions(bool exhaustive) {
  const bool f16c = HaveF16c();
  ConversionCounts c;
  // Structured sample: every sign/exponent/top-mantissa prefix (upper 16
  // bits) with low halves around the half and bfloat16 rounding points.
  static const uint32_t kLow[] = {0x0000, 0x0001, 0x0fff, 0x1000, 0x1001,
                                  0x1fff, 0x2000, 0x3000, 0x7fff, 0x8000,
                                  0x8001, 0xe000, 0xefff, 0xf000, 0xffff};
  for (uint32_t hi = 0; hi < 0x10000; ++hi) {
    for (uint32_t lo : kLow) {
      const uint64_t u = (static_cast<uint64_t>(hi) << 16) | lo;
      CheckConversionRange(u, u + 1, 1, true, f16c, &c);
    }
  }
  // Plus a stride through all patterns (odd step: hits every residue class).
  CheckConversionRange(0, 1ull << 32, 997, true, f16c, &c);
  // Plus every pattern around the half subnormal / normal / overflow edges.
  for (uint32_t edge : {0x33000000u, 0x38800000u, 0x477fe000u, 0x477ff000u,
                        0x7f800000u, 0x7fc00000u}) {
    for (uint32_t sign : {0u, 0x80000000u}) {
      const uint64_t u = (edge | sign);
      CheckConversionRange(u - 0x20000, u + 0x20000, 1, true, f16c, &c);
    }
  }
  if (exhaustive) {
    // Every float: half against F16C when the CPU has it (fast), else the
    // software reference; bfloat16 against its reference.
    const double t0 = Seconds();
    CheckConversionRange(0, 1ull << 32, 1, !f16c, f16c, &c);
    printf("  exhaustive conversions: %.1f s (half oracle: %s)\n",
           Seconds() - t0, f16c ? "F16C" : "software reference");
  }
  printf("  conversions: %lld patterns checked%s\n",
         static_cast<long long>(c.checked), f16c ? ", also against F16C" : "");
  EXPECT(c.half_bad == 0, c.half_bad << " half mismatches vs reference");
  EXPECT(c.half_f16c_bad == 0, c.half_f16c_bad << " half mismatches vs F16C");
  EXPECT(c.bf16_bad == 0, c.bf16_bad << " bfloat16 mismatches vs reference");
  // A few values by hand.
  EXPECT(crg::FloatToHalfBits(1.0f) == 0x3c00, "1.0");
  EXPECT(crg::FloatToHalfBits(65504.0f) == 0x7bff, "max half");
  EXPECT(crg::FloatToHalfBits(65519.99f) == 0x7bff, "below overflow");
  EXPECT(crg::FloatToHalfBits(65520.0f) == 0x7c00, "overflow");
  EXPECT(crg::FloatToHalfBits(0x1p-24f) == 0x0001, "min subnormal");
  EXPECT(crg::FloatToHalfBits(0x1p-25f) == 0x0000, "tie to even zero");
  EXPECT(crg::FloatToHalfBits(-0x1.8p-25f) == 0x8001, "rounds up");
  EXPECT(crg::FloatToBFloat16Bits(1.0f) == 0x3f80, "bf16 1.0");
  EXPECT(crg::FloatToBFloat16Bits(FloatFromBits(0x3f808000u)) == 0x3f80,
         "bf16 tie to even (down)");
  EXPECT(crg::FloatToBFloat16Bits(FloatFromBits(0x3f818000u)) == 0x3f82,
         "bf16 tie to even (up)");
  EXPECT(crg::FloatToBFloat16Bits(FloatFromBits(0x7f7fffffu)) == 0x7f80,
         "bf16 overflow to inf");
  const uint16_t nan_bits =
      crg::FloatToBFloat16Bits(FloatFromBits(0xff800001u));
  EXPECT((nan_bits & 0x7f80) == 0x7f80 && (nan_bits & 0x7f) != 0 &&
             (nan_bits & 0x8000),
         "bf16 signalling NaN stays a negative NaN: " << nan_bits);
}

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

// ---------------------------------------------------------------------------
// Memory: the kernel's temporaries, measured with the tracking allocator.
//
// By construction (cc/core/cpu/grad_image_impl.h) they are the list of
// valid sample rows (40 B per (box, crop row) listing, listed twice when its
// taps fall in two bands; a counting sort sizes it exactly, and the bound
// below allows 3 x 48 B per row for slack),
// the column taps (N*cw entries of 24 B), the band offsets (8 B per image
// row) and one accumulator per running work unit: band_rows x width x block
// of channels, at most 512 KiB (CRG_UNIT_KB) -- but never less than one image
// row of min(D, 256 B / sizeof(Acc)) channels, i.e. width x 256 B.

struct HeapPeak {
  int64_t peak;
};

template <typename T>
HeapPeak MeasureKernelHeap(const Problem& p, const crg::ParallelRunner& runner,
                           std::vector<T>* out) {
  out->assign(p.OutputSize(), T{});
  g_heap_live = 0;
  g_heap_peak = 0;
  g_track_heap = true;
  crg::CropAndResizeGradImageCpu<T>(p.Args(Method::kBilinear), out->data(),
                                    runner);
  g_track_heap = false;
  return {g_heap_peak.load()};
}

int64_t AccumulatorBound(const Problem& p, size_t acc_size) {
  const int64_t row_min = p.width * std::min<int64_t>(p.depth, 256 / acc_size) *
                          static_cast<int64_t>(acc_size);
  return std::max<int64_t>(512 << 10, row_min);
}

int64_t TemporariesBound(const Problem& p, int threads, size_t acc_size) {
  const int64_t rows = p.num_boxes * p.crop_height;
  const int64_t sample_rows = 3 * rows * 48;
  const int64_t taps = p.num_boxes * p.crop_width * 24;
  const int64_t bands = (p.batch * p.height + 1) * 8;
  // Runner bookkeeping (std::function, std::thread state): a few KiB.
  const int64_t runner = 4096 + 1024 * threads;
  return sample_rows + taps + bands + runner +
         threads * AccumulatorBound(p, acc_size);
}

template <typename T>
void CheckTemporaries(const Problem& p, int threads) {
  std::vector<T> out;
  const crg::ParallelRunner runner =
      threads == 1 ? crg::SerialRunner() : ThreadRunner(threads);
  const HeapPeak h = MeasureKernelHeap<T>(p, runner, &out);
  const size_t acc_size = std::is_same<T, double>::value ? 8 : 4;
  const int64_t bound = TemporariesBound(p, threads, acc_size);
  const double output_mib = p.OutputSize() * sizeof(T) / 1048576.0;
  printf(
      "  %-24s %-8s %2d thread(s): temporaries %8.3f MiB (bound %8.3f MiB, "
      "output %8.3f MiB)\n",
      p.name.c_str(), TypeName<T>(), threads, h.peak / 1048576.0,
      bound / 1048576.0, output_mib);
  EXPECT(h.peak <= bound, p.name << " " << TypeName<T>() << ": temporaries "
                                 << h.peak << " B above the bound " << bound);
  if (AccumulatorBound(p, acc_size) > (512 << 10)) {
    printf(
        "  note: %s rows are too wide for a 512 KiB accumulator: each work "
        "unit allocates %.2f MiB\n",
        p.name.c_str(), AccumulatorBound(p, acc_size) / 1048576.0);
  }
}

void TestMemory() {
  if (kSanitized) {
    printf("  skipped: sanitizer builds do not count heap bytes\n");
    return;
  }
  // The maskrcnn-14 workload (fastrcnn-7 in sanitizer builds: smaller input).
  const Problem standard = kSanitized
                               ? MakeProblem("fastrcnn-7", 512, 7, 7, 2, 50, 76,
                                             256, BoxKind::kNormal, 21)
                               : MakeProblem("maskrcnn-14", 512, 14, 14, 2, 100,
                                             152, 256, BoxKind::kNormal, 21);
  for (int threads : {1, 4}) {
    CheckTemporaries<float>(standard, threads);
    CheckTemporaries<Half>(standard, threads);
    CheckTemporaries<double>(standard, threads);
  }
  // A big image with few boxes: nothing proportional to the image but the
  // band offsets (8 B per image row).
  const Problem big_image =
      MakeProblem("big_image_few_boxes", 4, 14, 14, 1, kSanitized ? 512 : 2048,
                  kSanitized ? 512 : 2048, 8, BoxKind::kNormal, 22);
  CheckTemporaries<float>(big_image, 1);
  CheckTemporaries<float>(big_image, 4);
  // Many boxes on a small image: the sample-row list dominates.
  const Problem many_boxes =
      MakeProblem("many_boxes_small_image", kSanitized ? 20000 : 200000, 4, 4,
                  1, 16, 16, 1, BoxKind::kNormal, 23);
  CheckTemporaries<float>(many_boxes, 1);
  // Very wide rows: the accumulator holds a whole row of 64 channels.
  const Problem wide = MakeProblem("wide_rows_8192x64", 4, 4, 14, 1, 2, 8192,
                                   64, BoxKind::kNormal, 24);
  CheckTemporaries<float>(wide, 1);
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

}  // namespace

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
