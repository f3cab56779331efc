// Runs the real CUDA kernels of cuda/ in the host emulation (cuda_shim.h) and
// checks them against the CPU kernel (CropAndResizeGradImageCpu) and a float64
// reference. See README.md in this folder for what this does and does not
// check. No test framework: every failed CHECK prints and the exit status is
// the number of failures (capped).
//
// Sections (all by default, or one with --only NAME):
//   exact        dyadic boxes and small integer grads: every path, dtype,
//                method and mode is bitwise equal to the CPU kernel (and to
//                the reference for float and double).
//   random       random boxes (partly outside, flipped, degenerate): atomic
//                mode within float rounding of the reference, deterministic
//                mode within its documented bound, for every dtype.
//   order        deterministic mode bitwise identical across shuffled thread
//                orders, SM counts, both architectures and all vector widths;
//                atomic mode really reordered (different float sums).
//   maxpass      the max-|grads| pre-pass (warp shuffles, atomicMax) finds a
//                single large gradient wherever it sits, vector loads and tail.
//   paths        the sm_90 build runs float4/float2 atomics where D and the
//                alignment allow, the sm_80 build only scalar ones.
//   denormals    the emulated FTZ setting (the build's -ftz) and its effect.
//   checks       LaunchCheckBoxValues statuses.
//   launcher     argument errors, misaligned pointers, stale CUDA errors,
//                empty outputs, invalid box indices.
//   huge         image sizes above 2^24: taps clamped to size - 1.
//   boxes        the boxes-gradient kernel (cuda/grad_boxes.cu: __shared__
//                sums, __syncthreads, fixed tree) bitwise equal to the CPU
//                boxes kernel for every dtype, method and shape.
//   boxes-tree   boxes whose float32 result depends on the exact tree.
//   boxes-order  the same across thread orders, block orders and SM counts.
//   boxes-launcher  argument errors, no boxes, depth 0, box_ind outside the
//                batch, a stale error.
//   boxes-huge   the boxes kernel's tap clamp above 2^24.
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "cc/core/cpu/grad_boxes.h"
#include "cc/core/cpu/grad_image.h"
#include "cc/core/float16.h"
#include "cc/core/grad_boxes_args.h"
#include "cc/core/sampling.h"
#include "tests/cuda_emulation/emulated_api.h"

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#define CRG_TEST_X86 1
#else
#define CRG_TEST_X86 0
#endif

namespace {

namespace crg = crop_and_resize_grad;
using crg_emu::EmuArgs;
using crg_emu::EmulatedApi;

int g_failures = 0;

#define CHECK(cond, ...)                                                \
  do {                                                                  \
    if (!(cond)) {                                                      \
      ++g_failures;                                                     \
      fprintf(stderr, "FAILED %s:%d: %s: ", __FILE__, __LINE__, #cond); \
      fprintf(stderr, __VA_ARGS__);                                     \
      fprintf(stderr, "\n");                                            \
    }                                                                   \
  } while (0)

const char* const kDTypeNames[] = {"half", "bfloat16", "float", "double"};
const char* const kMethodNames[] = {"bilinear", "nearest"};

// ---- problems
// -----------------------------------------------------------------

struct Problem {
  std::string name;
  int64_t batch = 1, height = 1, width = 1, depth = 1;
  int64_t crop_height = 1, crop_width = 1;
  std::vector<float> grads;  // [N, ch, cw, D]
  std::vector<float> boxes;  // [N, 4]
  std::vector<int32_t> box_ind;
  int64_t num_boxes() const { return static_cast<int64_t>(box_ind.size()); }
  int64_t output_size() const { return batch * height * width * depth; }
};

Problem MakeShape(const std::string& name, int64_t b, int64_t h, int64_t w,
                  int64_t d, int64_t n, int64_t ch, int64_t cw) {
  Problem p;
  p.name = name;
  p.batch = b;
  p.height = h;
  p.width = w;
  p.depth = d;
  p.crop_height = ch;
  p.crop_width = cw;
  p.grads.assign(n * ch * cw * d, 0.0f);
  p.boxes.assign(n * 4, 0.0f);
  p.box_ind.assign(n, 0);
  return p;
}

// Random boxes: inside the image, partly outside, flipped or degenerate.
Problem RandomProblem(const std::string& name, std::mt19937_64& rng, int64_t b,
                      int64_t h, int64_t w, int64_t d, int64_t n, int64_t ch,
                      int64_t cw) {
  Problem p = MakeShape(name, b, h, w, d, n, ch, cw);
  std::uniform_real_distribution<float> in(0.0f, 1.0f), wide(-0.6f, 1.6f);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (int64_t i = 0; i < n; ++i) {
    float* box = &p.boxes[4 * i];
    switch (rng() % 4) {
      case 0:  // inside
        for (int k = 0; k < 4; ++k) box[k] = in(rng);
        if (box[0] > box[2]) std::swap(box[0], box[2]);
        if (box[1] > box[3]) std::swap(box[1], box[3]);
        break;
      case 1:  // partly outside, maybe flipped
        for (int k = 0; k < 4; ++k) box[k] = wide(rng);
        break;
      case 2:  // flipped
        for (int k = 0; k < 4; ++k) box[k] = in(rng);
        if (box[0] < box[2]) std::swap(box[0], box[2]);
        break;
      default:  // the whole image, or degenerate
        box[0] = box[1] = 0.0f;
        box[2] = box[3] = 1.0f;
        if (rng() % 2) box[2] = box[0] = in(rng);
        break;
    }
    p.box_ind[i] = static_cast<int32_t>(rng() % b);
  }
  for (float& g : p.grads) g = normal(rng) * (rng() % 8 == 0 ? 30.0f : 1.0f);
  return p;
}

// Dyadic boxes and small integer grads: every product and every partial sum
// is exact in float, so every summation order gives the same bits.
Problem ExactProblem(const std::string& name, std::mt19937_64& rng, int64_t b,
                     int64_t d, int64_t n) {
  static const int64_t kSizes[] = {5, 9};           // size - 1 = 4 or 8
  static const int64_t kCrops[] = {1, 2, 3, 5, 9};  // crop - 1 = 0,1,2,4,8
  Problem p = MakeShape(name, b, kSizes[rng() % 2], kSizes[rng() % 2], d, n,
                        kCrops[rng() % 5], kCrops[rng() % 5]);
  for (int64_t i = 0; i < n; ++i) {
    for (int k = 0; k < 4; ++k) {
      p.boxes[4 * i + k] = static_cast<float>(rng() % 5) * 0.25f;
    }
    p.box_ind[i] = static_cast<int32_t>(rng() % b);
  }
  for (float& g : p.grads)
    g = static_cast<float>(static_cast<int>(rng() % 5) - 2);
  return p;
}

// ---- the float64 reference
// ------------------------------------------------------

struct Reference {
  std::vector<double> sum;      // exact-ish sum of the products
  std::vector<double> abs_sum;  // sum of |product|
  std::vector<int64_t> count;   // number of contributions
  double max_abs_grad = 0.0;    // of the finite grads
  int64_t samples = 0;
};

Reference ComputeReference(const Problem& p, int method) {
  Reference r;
  r.sum.assign(p.output_size(), 0.0);
  r.abs_sum.assign(p.output_size(), 0.0);
  r.count.assign(p.output_size(), 0);
  r.samples = p.num_boxes() * p.crop_height * p.crop_width;
  for (float g : p.grads) {
    if (std::isfinite(g))
      r.max_abs_grad = std::max(r.max_abs_grad, fabs(double{g}));
  }
  const auto m = static_cast<crg::Method>(method);
  for (int64_t n = 0; n < p.num_boxes(); ++n) {
    const int64_t image = p.box_ind[n];
    if (image < 0 || image >= p.batch) continue;
    const float* box = &p.boxes[4 * n];
    for (int64_t y = 0; y < p.crop_height; ++y) {
      const crg::AxisSample ys =
          crg::MakeAxisSample(box[0], box[2], p.height, p.crop_height, y, m);
      if (!ys.valid) continue;
      for (int64_t x = 0; x < p.crop_width; ++x) {
        const crg::AxisSample xs =
            crg::MakeAxisSample(box[1], box[3], p.width, p.crop_width, x, m);
        if (!xs.valid) continue;
        const double fy = ys.taps.frac, fx = xs.taps.frac;
        const int64_t rows[2] = {ys.taps.lo, ys.taps.hi};
        const int64_t cols[2] = {xs.taps.lo, xs.taps.hi};
        const double wy[2] = {1.0 - fy, fy}, wx[2] = {1.0 - fx, fx};
        const int taps = m == crg::Method::kNearest ? 1 : 2;
        for (int a = 0; a < taps; ++a) {
          for (int c = 0; c < taps; ++c) {
            const double w = m == crg::Method::kNearest ? 1.0 : wy[a] * wx[c];
            const int64_t base =
                ((image * p.height + rows[a]) * p.width + cols[c]) * p.depth;
            for (int64_t k = 0; k < p.depth; ++k) {
              const double g =
                  p.grads[((n * p.crop_height + y) * p.crop_width + x) *
                              p.depth +
                          k];
              r.sum[base + k] += w * g;
              r.abs_sum[base + k] += fabs(w * g);
              r.count[base + k] += 1;
            }
          }
        }
      }
    }
  }
  return r;
}

// ---- running the paths
// ------------------------------------------------------------

double ToDouble(int dtype, const void* out, int64_t i) {
  switch (dtype) {
    case crg_emu::kEmuHalf: {
      const uint16_t h = static_cast<const crg::Half*>(out)[i].bits;
      const int e = (h >> 10) & 0x1f, m = h & 0x3ff;
      const double s = (h & 0x8000) ? -1.0 : 1.0;
      if (e == 0x1f) return m ? NAN : s * INFINITY;
      if (e == 0) return s * ldexp(m, -24);
      return s * ldexp(m + 1024, e - 25);
    }
    case crg_emu::kEmuBFloat16: {
      const uint32_t u =
          uint32_t{static_cast<const crg::BFloat16*>(out)[i].bits} << 16;
      float f;
      memcpy(&f, &u, 4);
      return f;
    }
    case crg_emu::kEmuFloat:
      return static_cast<const float*>(out)[i];
    default:
      return static_cast<const double*>(out)[i];
  }
}

size_t ElementBytes(int dtype) {
  return dtype == crg_emu::kEmuFloat ? 4 : dtype == crg_emu::kEmuDouble ? 8 : 2;
}

// Output bytes of one run, for bitwise comparisons.
struct Output {
  int dtype = 0;
  std::vector<unsigned char> bytes;
  double at(int64_t i) const { return ToDouble(dtype, bytes.data(), i); }
};

struct RunOptions {
  crg_emu::Schedule schedule = crg_emu::Schedule::kShuffled;
  uint64_t seed = 1;
  int multiprocessors = 4;
  size_t grads_offset = 0;  // bytes past 16-byte alignment
  size_t output_offset = 0;
  cudaError_t expect = cudaSuccess;  // what the launcher must return
};

// Copies `p` into emulated device memory, runs the launcher, copies back.
Output RunEmulated(const EmulatedApi& api, const Problem& p, int dtype,
                   int method, bool deterministic, const RunOptions& o = {}) {
  crg_emu::Options& opt = crg_emu::GetOptions();
  opt.schedule = o.schedule;
  opt.seed = o.seed;
  opt.multiprocessors = o.multiprocessors;
  crg_emu::ResetCounters();

  auto upload = [](const void* src, size_t bytes, size_t offset) {
    void* d = crg_emu::DeviceMalloc(bytes, offset);
    if (bytes > 0) memcpy(d, src, bytes);
    return d;
  };
  float* grads = static_cast<float*>(
      upload(p.grads.data(), p.grads.size() * 4, o.grads_offset));
  float* boxes =
      static_cast<float*>(upload(p.boxes.data(), p.boxes.size() * 4, 0));
  int32_t* box_ind =
      static_cast<int32_t*>(upload(p.box_ind.data(), p.box_ind.size() * 4, 0));
  EmuArgs a;
  a.grads = grads;
  a.boxes = boxes;
  a.box_ind = box_ind;
  a.num_boxes = p.num_boxes();
  a.crop_height = p.crop_height;
  a.crop_width = p.crop_width;
  a.batch = p.batch;
  a.height = p.height;
  a.width = p.width;
  a.depth = p.depth;
  a.method = method;

  const size_t out_bytes = p.output_size() * ElementBytes(dtype);
  void* out = crg_emu::DeviceMalloc(out_bytes, o.output_offset);
  memset(out, 0xA5, out_bytes);  // "uninitialized"
  const size_t scratch_bytes = api.scratch_bytes(a, dtype, deterministic);
  void* scratch =
      scratch_bytes > 0 ? crg_emu::DeviceMalloc(scratch_bytes, 0) : nullptr;
  if (scratch) memset(scratch, 0x5A, scratch_bytes);
  const cudaError_t err =
      api.launch(a, dtype, deterministic, out, scratch, scratch_bytes, nullptr);
  CHECK(err == o.expect, "%s %s: launch returned %s, not %s", api.name,
        p.name.c_str(), cudaGetErrorName(err), cudaGetErrorName(o.expect));
  Output result;
  result.dtype = dtype;
  result.bytes.assign(static_cast<unsigned char*>(out),
                      static_cast<unsigned char*>(out) + out_bytes);
  crg_emu::DeviceFree(scratch);
  crg_emu::DeviceFree(out);
  crg_emu::DeviceFree(box_ind);
  crg_emu::DeviceFree(boxes);
  crg_emu::DeviceFree(grads);
  return result;
}

// The CPU kernel, with flush-to-zero and denormals-are-zero as TensorFlow's
// threads (and the _kernels module) run it.
Output RunCpu(const Problem& p, int dtype, int method) {
  crg::GradImageArgs a;
  a.grads = p.grads.data();
  a.boxes = p.boxes.data();
  a.box_ind = p.box_ind.data();
  a.num_boxes = p.num_boxes();
  a.crop_height = p.crop_height;
  a.crop_width = p.crop_width;
  a.batch = p.batch;
  a.height = p.height;
  a.width = p.width;
  a.depth = p.depth;
  a.method = static_cast<crg::Method>(method);
  Output result;
  result.dtype = dtype;
  result.bytes.assign(p.output_size() * ElementBytes(dtype), 0);
#if CRG_TEST_X86
  const unsigned int csr = _mm_getcsr();
  _mm_setcsr(csr | 0x8040u);
#endif
  void* out = result.bytes.data();
  const crg::ParallelRunner runner = crg::SerialRunner();
  switch (dtype) {
    case crg_emu::kEmuHalf:
      crg::CropAndResizeGradImageCpu(a, static_cast<crg::Half*>(out), runner);
      break;
    case crg_emu::kEmuBFloat16:
      crg::CropAndResizeGradImageCpu(a, static_cast<crg::BFloat16*>(out),
                                     runner);
      break;
    case crg_emu::kEmuFloat:
      crg::CropAndResizeGradImageCpu(a, static_cast<float*>(out), runner);
      break;
    default:
      crg::CropAndResizeGradImageCpu(a, static_cast<double*>(out), runner);
      break;
  }
#if CRG_TEST_X86
  _mm_setcsr(csr);
#endif
  return result;
}

// ---- error bounds
// -------------------------------------------------------------------

// Unit roundoff of the output type and of the product/accumulator type.
double OutputUnit(int dtype) {
  switch (dtype) {
    case crg_emu::kEmuHalf:
      return ldexp(1.0, -11);
    case crg_emu::kEmuBFloat16:
      return ldexp(1.0, -8);
    case crg_emu::kEmuFloat:
      return ldexp(1.0, -24);
    default:
      return ldexp(1.0, -53);
  }
}
double AccumulatorUnit(int dtype) {
  return dtype == crg_emu::kEmuDouble ? ldexp(1.0, -53) : ldexp(1.0, -24);
}
// Smallest positive normal of the output type: rounding below it is absolute.
double OutputTiny(int dtype) {
  switch (dtype) {
    case crg_emu::kEmuHalf:
      return ldexp(1.0, -24);  // half subnormal spacing
    case crg_emu::kEmuBFloat16:
      return ldexp(1.0, -126);
    case crg_emu::kEmuFloat:
      return ldexp(1.0, -126);
    default:
      return ldexp(1.0, -1022);
  }
}

// Atomic mode (and the CPU kernel): float (double) products, each rounded
// twice, summed in some order, then one rounding to T (half and bfloat16:
// from the float sum).
double AtomicBound(const Reference& r, int dtype, int64_t i) {
  const double u = AccumulatorUnit(dtype);
  const double acc = r.abs_sum[i] * u * static_cast<double>(r.count[i] + 2);
  return acc + (fabs(r.sum[i]) + acc) * OutputUnit(dtype) + OutputTiny(dtype) +
         static_cast<double>(r.count[i]) * ldexp(1.0, -126);
}

// Deterministic mode, as documented in cuda/README.md: each contribution is
// off by at most half the fixed-point quantum 2^(E + c - 60), E =
// floor(log2 max|g|), c = ceil(log2 samples); plus the rounding of the
// products themselves and the final rounding to T.
double DeterministicBound(const Reference& r, int dtype, int64_t i) {
  int c = 0;
  while ((int64_t{1} << c) < r.samples) ++c;
  const int e_floor =
      r.max_abs_grad > 0 ? static_cast<int>(floor(log2(r.max_abs_grad))) : 0;
  const double quantum = ldexp(1.0, e_floor + c - 60);
  const double products = r.abs_sum[i] * 2.0 * AccumulatorUnit(dtype);
  const double fixed = static_cast<double>(r.count[i]) * 0.5 * quantum;
  const double before_cast = products + fixed;
  double cast = (fabs(r.sum[i]) + before_cast) * OutputUnit(dtype);
  if (dtype == crg_emu::kEmuHalf || dtype == crg_emu::kEmuBFloat16) {
    cast += (fabs(r.sum[i]) + before_cast) * ldexp(1.0, -24);  // via float
  }
  return before_cast + cast + OutputTiny(dtype) +
         static_cast<double>(r.count[i]) * ldexp(1.0, -126);
}

template <typename Bound>
void CheckAgainstReference(const Output& out, const Reference& r, Bound bound,
                           const std::string& what) {
  int reported = 0;
  for (size_t i = 0; i < r.sum.size(); ++i) {
    const double v = out.at(static_cast<int64_t>(i));
    const double b = bound(r, out.dtype, static_cast<int64_t>(i));
    const bool ok = std::isfinite(v) && fabs(v - r.sum[i]) <= b;
    if (!ok && reported++ < 3) {
      CHECK(ok, "%s: element %zu is %.17g, reference %.17g, bound %.3g",
            what.c_str(), i, v, r.sum[i], b);
    }
  }
}

std::string Describe(const EmulatedApi& api, const Problem& p, int dtype,
                     int method, bool det) {
  return std::string(api.name) + " " + p.name + " " + kDTypeNames[dtype] + " " +
         kMethodNames[method] + (det ? " deterministic" : " atomic");
}

const EmulatedApi* const kApis[] = {&crg_emu::EmulatedSm80(),
                                    &crg_emu::EmulatedSm90()};

// ---- sections
// --------------------------------------------------------------------

void TestExact() {
  std::mt19937_64 rng(11);
  std::vector<Problem> problems;
  for (int i = 0; i < 6; ++i) {
    const int64_t depths[] = {1, 2, 3, 4, 8, 6};
    problems.push_back(ExactProblem("exact" + std::to_string(i), rng, 1 + i % 2,
                                    depths[i], 3 + i));
  }
  for (const Problem& p : problems) {
    for (int method = 0; method < 2; ++method) {
      const Reference r = ComputeReference(p, method);
      for (int dtype = 0; dtype < 4; ++dtype) {
        const Output cpu = RunCpu(p, dtype, method);
        if (dtype >= crg_emu::kEmuFloat) {
          for (size_t i = 0; i < r.sum.size(); ++i) {
            CHECK(cpu.at(i) == r.sum[i], "cpu %s %s %s: %zu", p.name.c_str(),
                  kDTypeNames[dtype], kMethodNames[method], i);
          }
        }
        for (const EmulatedApi* api : kApis) {
          for (bool det : {false, true}) {
            const Output out = RunEmulated(*api, p, dtype, method, det);
            CHECK(out.bytes == cpu.bytes, "%s: not bitwise equal to the CPU",
                  Describe(*api, p, dtype, method, det).c_str());
          }
        }
      }
    }
  }
}

void TestRandom() {
  std::mt19937_64 rng(23);
  std::vector<Problem> problems = {
      RandomProblem("random-d1", rng, 2, 7, 9, 1, 9, 4, 5),
      RandomProblem("random-d4", rng, 2, 6, 5, 4, 7, 3, 3),
      RandomProblem("random-d6-crop1", rng, 1, 8, 8, 6, 6, 1, 4),
      RandomProblem("random-d3", rng, 3, 5, 11, 3, 8, 5, 1),
      RandomProblem("random-d8-h1", rng, 1, 1, 6, 8, 5, 3, 3),
  };
  for (const Problem& p : problems) {
    for (int method = 0; method < 2; ++method) {
      const Reference r = ComputeReference(p, method);
      for (int dtype = 0; dtype < 4; ++dtype) {
        CheckAgainstReference(RunCpu(p, dtype, method), r, AtomicBound,
                              "cpu " + p.name + " " + kDTypeNames[dtype]);
        for (const EmulatedApi* api : kApis) {
          CheckAgainstReference(RunEmulated(*api, p, dtype, method, false), r,
                                AtomicBound,
                                Describe(*api, p, dtype, method, false));
          CheckAgainstReference(RunEmulated(*api, p, dtype, method, true), r,
                                DeterministicBound,
                                Describe(*api, p, dtype, method, true));
        }
      }
    }
  }
}

// A problem with more work items than one SM's worth of threads, so the
// grid-stride loops go round more than once with multiprocessors = 1.
Problem LargeProblem(std::mt19937_64& rng) {
  return RandomProblem("large", rng, 2, 9, 10, 4, 90, 7, 7);
}

void TestOrder() {
  std::mt19937_64 rng(37);
  const Problem p = LargeProblem(rng);
  std::vector<RunOptions> variants = {
      {crg_emu::Schedule::kShuffled, 1, 1, 0, 0},
      {crg_emu::Schedule::kShuffled, 2, 132, 4, 0},
      {crg_emu::Schedule::kShuffled, 3, 3, 8, 0},
  };
#if !defined(__SANITIZE_ADDRESS__)
  // Sanitized builds (CI) run three orders, to keep the run short.
  variants.insert(variants.begin(),
                  RunOptions{crg_emu::Schedule::kInOrder, 1, 4, 0, 0});
#endif
  for (int method = 0; method < 2; ++method) {
    const Reference r = ComputeReference(p, method);
    for (int dtype = 0; dtype < 4; ++dtype) {
      Output first;
      bool have_first = false;
      for (const EmulatedApi* api : kApis) {
        for (const RunOptions& o : variants) {
          const Output out = RunEmulated(*api, p, dtype, method, true, o);
          if (!have_first) {
            first = out;
            have_first = true;
            CheckAgainstReference(out, r, DeterministicBound,
                                  Describe(*api, p, dtype, method, true));
          }
          CHECK(out.bytes == first.bytes,
                "%s seed %llu sms %d grads offset %zu: deterministic output "
                "differs",
                Describe(*api, p, dtype, method, true).c_str(),
                static_cast<unsigned long long>(o.seed), o.multiprocessors,
                o.grads_offset);
        }
      }
    }
  }

  // Many boxes on one small image: float atomics in different orders must
  // give different sums, or the emulator is not reordering them.
  Problem race = RandomProblem("race", rng, 1, 4, 4, 1, 300, 3, 3);
  for (size_t i = 0; i < race.box_ind.size(); ++i) {
    float* box = &race.boxes[4 * i];
    box[0] = box[1] = 0.0f;
    box[2] = box[3] = 1.0f;
  }
  const Reference r = ComputeReference(race, 0);
  std::vector<std::vector<unsigned char>> distinct;
  for (uint64_t seed = 1; seed <= 4; ++seed) {
    RunOptions o;
    o.seed = seed;
    const Output out = RunEmulated(crg_emu::EmulatedSm90(), race,
                                   crg_emu::kEmuFloat, 0, false, o);
    CheckAgainstReference(out, r, AtomicBound, "race float atomic");
    if (std::find(distinct.begin(), distinct.end(), out.bytes) ==
        distinct.end()) {
      distinct.push_back(out.bytes);
    }
    const Output det = RunEmulated(crg_emu::EmulatedSm90(), race,
                                   crg_emu::kEmuFloat, 0, true, o);
    CheckAgainstReference(det, r, DeterministicBound, "race deterministic");
  }
  CHECK(distinct.size() >= 2,
        "4 shuffled runs of float atomics gave %zu distinct results",
        distinct.size());
}

// One large gradient among small ones, at every position that matters to
// the pre-pass (each lane of a warp, the float4 body and the scalar tail):
// missing it would scale the fixed point for the small ones and overflow.
void TestMaxPass() {
  std::mt19937_64 rng(47);
  for (int64_t depth : {4, 3}) {
    Problem p = RandomProblem("spike-d" + std::to_string(depth), rng, 1, 5, 9,
                              depth, 1, 4, 11);
    for (float& g : p.grads) g *= 1e-3f;
    const std::vector<float> small = p.grads;
    for (size_t at = 0; at < p.grads.size(); at += (depth == 4 ? 1 : 5)) {
      p.grads = small;
      p.grads[at] = (at % 2 ? -1.0f : 1.0f) * 3e6f;
      const Reference r = ComputeReference(p, 0);
      for (const EmulatedApi* api : kApis) {
        RunOptions o;
        o.seed = at;
        CheckAgainstReference(
            RunEmulated(*api, p, crg_emu::kEmuFloat, 0, true, o), r,
            DeterministicBound,
            Describe(*api, p, crg_emu::kEmuFloat, 0, true) + " spike at " +
                std::to_string(at));
      }
    }
  }
}

void TestPaths() {
  std::mt19937_64 rng(41);
  struct Expect {
    int64_t depth;
    size_t grads_offset;
    bool float4, float2;
  };
  const Expect expects[] = {
      {8, 0, true, false},  {4, 0, true, false},  {2, 0, false, true},
      {6, 0, false, true},  {4, 8, false, true},  {4, 4, false, false},
      {3, 0, false, false}, {1, 0, false, false},
  };
  for (const Expect& e : expects) {
    const Problem p = RandomProblem("paths-d" + std::to_string(e.depth), rng, 1,
                                    6, 6, e.depth, 5, 3, 3);
    const Reference r = ComputeReference(p, 0);
    for (int dtype : {crg_emu::kEmuHalf, crg_emu::kEmuFloat}) {
      for (const EmulatedApi* api : kApis) {
        RunOptions o;
        o.grads_offset = e.grads_offset;
        const Output out = RunEmulated(*api, p, dtype, 0, false, o);
        const crg_emu::Counters c = crg_emu::GetCounters();
        CheckAgainstReference(out, r, AtomicBound,
                              Describe(*api, p, dtype, 0, false));
        const bool vector = api->arch >= 900;
        CHECK((c.float4_atomics > 0) == (vector && e.float4),
              "%s offset %zu: %lld float4 atomics",
              Describe(*api, p, dtype, 0, false).c_str(), e.grads_offset,
              static_cast<long long>(c.float4_atomics));
        CHECK((c.float2_atomics > 0) == (vector && e.float2),
              "%s offset %zu: %lld float2 atomics",
              Describe(*api, p, dtype, 0, false).c_str(), e.grads_offset,
              static_cast<long long>(c.float2_atomics));
        CHECK(c.shuffles == 0, "atomic mode ran warp shuffles");
      }
    }
    // Double output and the deterministic mode never use vector atomics.
    for (const EmulatedApi* api : kApis) {
      RunEmulated(*api, p, crg_emu::kEmuDouble, 0, false);
      CHECK(crg_emu::GetCounters().float4_atomics +
                    crg_emu::GetCounters().float2_atomics ==
                0,
            "double output used float vector atomics");
      RunEmulated(*api, p, crg_emu::kEmuFloat, 0, true);
      const crg_emu::Counters c = crg_emu::GetCounters();
      CHECK(c.float4_atomics + c.float2_atomics == 0,
            "deterministic mode used float vector atomics");
      CHECK(c.shuffles > 0, "the max-|grads| pre-pass ran no warp shuffles");
    }
  }
}

void TestDenormals() {
  std::mt19937_64 rng(43);
  Problem p = RandomProblem("tiny", rng, 1, 6, 6, 2, 10, 3, 3);
  for (float& g : p.grads) g *= 1e-40f;  // all subnormal
  const bool ftz = crg_emu::FlushesDenormals();
  printf("emulated device code: %s\n",
         ftz ? "flush-to-zero (-ftz=true)" : "denormals kept (-ftz=false)");
  for (int method = 0; method < 2; ++method) {
    const Reference r = ComputeReference(p, method);
    for (int dtype : {crg_emu::kEmuFloat, crg_emu::kEmuDouble}) {
      const Output cpu = RunCpu(p, dtype, method);
      for (int64_t i = 0; i < p.output_size(); ++i) {
        CHECK(cpu.at(i) == 0.0, "cpu %s: denormal grads not flushed",
              kDTypeNames[dtype]);
      }
      for (const EmulatedApi* api : kApis) {
        for (bool det : {false, true}) {
          const Output out = RunEmulated(*api, p, dtype, method, det);
          const std::string what = Describe(*api, p, dtype, method, det);
          // Float atomics flush on the hardware whatever -ftz says.
          const bool flushed = ftz || (!det && dtype == crg_emu::kEmuFloat);
          if (flushed) {
            CHECK(out.bytes == cpu.bytes, "%s: differs from the CPU",
                  what.c_str());
          } else {
            CheckAgainstReference(out, r, DeterministicBound, what);
          }
        }
      }
    }
  }
  // A subnormal max|g| next to zeros: the scale exponent stays in range.
  Problem q = MakeShape("one-tiny", 1, 3, 3, 1, 1, 2, 2);
  q.boxes = {0, 0, 1, 1};
  q.grads = {0.0f, 1e-42f, 0.0f, 0.0f};
  for (const EmulatedApi* api : kApis) {
    const Output out = RunEmulated(*api, q, crg_emu::kEmuDouble, 0, true);
    CHECK(out.at(2) == (ftz ? 0.0 : double{1e-42f}),
          "%s: subnormal grad gave %g", api->name, out.at(2));
  }
}

void TestChecks() {
  for (const EmulatedApi* api : kApis) {
    struct Case {
      std::vector<float> boxes;
      std::vector<int32_t> box_ind;
      int64_t batch;
      int32_t expected;
    };
    const float nan = NAN, inf = INFINITY;
    std::vector<Case> cases = {
        {{0, 0, 1, 1, 0.5f, 0.5f, 1, 1}, {0, 1}, 2, 0},
        {{0, 0, 1, nan}, {0}, 1, 1},
        {{0, -inf, 1, 1}, {0}, 1, 1},
        {{0, 0, 1, 1}, {1}, 1, 2},
        {{0, 0, 1, 1}, {-1}, 1, 2},
        {{nan, 0, 1, 1, 0, 0, 1, 1}, {0, 7}, 3, 2},
    };
    // Many boxes, one bad one at the end: the grid-stride loop reaches it.
    Case many;
    many.batch = 4;
    for (int i = 0; i < 20000; ++i) {
      many.boxes.insert(many.boxes.end(), {0.1f, 0.2f, 0.9f, 0.8f});
      many.box_ind.push_back(i % 4);
    }
    many.box_ind.back() = 4;
    many.expected = 2;
    cases.push_back(many);
    for (const Case& c : cases) {
      crg_emu::GetOptions().multiprocessors = 1;
      const int64_t n = static_cast<int64_t>(c.box_ind.size());
      float* boxes = static_cast<float*>(crg_emu::DeviceMalloc(n * 16));
      int32_t* ind = static_cast<int32_t*>(crg_emu::DeviceMalloc(n * 4));
      int32_t* status = static_cast<int32_t*>(crg_emu::DeviceMalloc(4));
      memcpy(boxes, c.boxes.data(), n * 16);
      memcpy(ind, c.box_ind.data(), n * 4);
      *status = -7;
      const cudaError_t err =
          api->check_boxes(boxes, ind, n, c.batch, status, nullptr);
      CHECK(err == cudaSuccess, "%s: check launch %s", api->name,
            cudaGetErrorName(err));
      CHECK(*status == c.expected,
            "%s: box check of %lld boxes gave %d, not %d", api->name,
            static_cast<long long>(n), *status, c.expected);
      crg_emu::DeviceFree(status);
      crg_emu::DeviceFree(ind);
      crg_emu::DeviceFree(boxes);
    }
    int32_t* status = static_cast<int32_t*>(crg_emu::DeviceMalloc(4));
    *status = 5;
    CHECK(api->check_boxes(nullptr, nullptr, 0, 1, status, nullptr) ==
                  cudaSuccess &&
              *status == 0,
          "%s: no boxes", api->name);
    CHECK(api->check_boxes(nullptr, nullptr, 3, 1, status, nullptr) ==
              cudaErrorInvalidValue,
          "%s: null boxes", api->name);
    crg_emu::DeviceFree(status);
  }
}

void TestLauncher() {
  std::mt19937_64 rng(53);
  for (const EmulatedApi* api : kApis) {
    // Empty output: nothing is launched or written.
    {
      Problem p = RandomProblem("empty", rng, 1, 4, 4, 2, 3, 2, 2);
      p.depth = 0;
      p.grads.clear();
      crg_emu::ResetCounters();
      for (int dtype = 0; dtype < 4; ++dtype) {
        for (bool det : {false, true}) {
          RunEmulated(*api, p, dtype, 0, det);
          CHECK(crg_emu::GetCounters().launches == 0 &&
                    crg_emu::GetCounters().memsets == 0,
                "%s: empty output launched work", api->name);
        }
      }
    }
    // No boxes: the output is zeroed, no kernel runs.
    {
      Problem p = MakeShape("no-boxes", 2, 3, 3, 2, 0, 2, 2);
      for (int dtype = 0; dtype < 4; ++dtype) {
        for (bool det : {false, true}) {
          const Output out = RunEmulated(*api, p, dtype, 0, det);
          CHECK(crg_emu::GetCounters().launches == 0, "%s: no-boxes launched",
                api->name);
          for (unsigned char b : out.bytes) {
            CHECK(b == 0, "%s: no-boxes output not zeroed", api->name);
            if (b != 0) break;
          }
        }
      }
    }
    // A box with box_ind outside [0, batch) is skipped, never written out of
    // bounds (callers reject it first; the kernel stays safe anyway).
    {
      Problem p = RandomProblem("bad-index", rng, 2, 5, 5, 4, 6, 3, 3);
      p.box_ind[2] = 2;
      p.box_ind[4] = -1;
      for (int method = 0; method < 2; ++method) {
        const Reference r = ComputeReference(p, method);  // skips them too
        for (int dtype = 0; dtype < 4; ++dtype) {
          for (bool det : {false, true}) {
            CheckAgainstReference(RunEmulated(*api, p, dtype, method, det), r,
                                  det ? DeterministicBound : AtomicBound,
                                  Describe(*api, p, dtype, method, det));
          }
        }
      }
    }
    // Argument errors: cudaErrorInvalidValue, nothing launched.
    {
      Problem p = RandomProblem("args", rng, 1, 4, 4, 2, 2, 2, 2);
      float* grads =
          static_cast<float*>(crg_emu::DeviceMalloc(p.grads.size() * 4));
      float* boxes =
          static_cast<float*>(crg_emu::DeviceMalloc(p.boxes.size() * 4));
      int32_t* ind =
          static_cast<int32_t*>(crg_emu::DeviceMalloc(p.box_ind.size() * 4));
      memcpy(grads, p.grads.data(), p.grads.size() * 4);
      memcpy(boxes, p.boxes.data(), p.boxes.size() * 4);
      memcpy(ind, p.box_ind.data(), p.box_ind.size() * 4);
      void* out = crg_emu::DeviceMalloc(p.output_size() * 8);
      EmuArgs a;
      a.grads = grads;
      a.boxes = boxes;
      a.box_ind = ind;
      a.num_boxes = p.num_boxes();
      a.crop_height = p.crop_height;
      a.crop_width = p.crop_width;
      a.batch = p.batch;
      a.height = p.height;
      a.width = p.width;
      a.depth = p.depth;
      crg_emu::ResetCounters();
      const size_t need = api->scratch_bytes(a, crg_emu::kEmuHalf, false);
      void* scratch = crg_emu::DeviceMalloc(need);
      CHECK(need > 0, "half output needs scratch");
      CHECK(api->launch(a, crg_emu::kEmuHalf, false, out, scratch, need - 4,
                        nullptr) == cudaErrorInvalidValue,
            "%s: short scratch accepted", api->name);
      CHECK(api->launch(a, crg_emu::kEmuHalf, false, out, nullptr, need,
                        nullptr) == cudaErrorInvalidValue,
            "%s: null scratch accepted", api->name);
      CHECK(api->launch(a, crg_emu::kEmuFloat, false, nullptr, nullptr, 0,
                        nullptr) == cudaErrorInvalidValue,
            "%s: null output accepted", api->name);
      EmuArgs bad = a;
      bad.method = 7;
      CHECK(api->launch(bad, crg_emu::kEmuFloat, false, out, nullptr, 0,
                        nullptr) == cudaErrorInvalidValue,
            "%s: unknown method accepted", api->name);
      bad = a;
      bad.height = -1;
      CHECK(api->launch(bad, crg_emu::kEmuFloat, false, out, nullptr, 0,
                        nullptr) == cudaErrorInvalidValue,
            "%s: negative size accepted", api->name);
      bad = a;
      bad.grads = nullptr;
      CHECK(api->launch(bad, crg_emu::kEmuFloat, false, out, nullptr, 0,
                        nullptr) == cudaErrorInvalidValue,
            "%s: null grads accepted", api->name);
      CHECK(api->launch(a, 9, false, out, nullptr, 0, nullptr) ==
                cudaErrorInvalidValue,
            "%s: unknown dtype accepted", api->name);
      CHECK(crg_emu::GetCounters().launches == 0,
            "%s: a rejected call launched a kernel", api->name);
      crg_emu::DeviceFree(scratch);
      crg_emu::DeviceFree(out);
      crg_emu::DeviceFree(ind);
      crg_emu::DeviceFree(boxes);
      crg_emu::DeviceFree(grads);
    }
  }
}

// Misaligned pointers are refused before anything is enqueued, and an
// earlier, unrelated CUDA error of the thread does not leak into the result.
void TestAlignmentAndStaleErrors() {
  std::mt19937_64 rng(59);
  const Problem p = RandomProblem("align", rng, 1, 5, 5, 4, 3, 2, 2);
  for (const EmulatedApi* api : kApis) {
    for (int dtype = 0; dtype < 4; ++dtype) {
      for (bool det : {false, true}) {
        RunOptions o;
        o.output_offset = ElementBytes(dtype) / 2;  // 1, 2 or 4 bytes off
        o.expect = cudaErrorMisalignedAddress;
        RunEmulated(*api, p, dtype, 0, det, o);
        CHECK(crg_emu::GetCounters().launches == 0 &&
                  crg_emu::GetCounters().memsets == 0,
              "%s: misaligned output enqueued work",
              Describe(*api, p, dtype, 0, det).c_str());
        o = RunOptions();
        o.grads_offset = 2;
        o.expect = cudaErrorMisalignedAddress;
        RunEmulated(*api, p, dtype, 0, det, o);
        CHECK(crg_emu::GetCounters().launches == 0,
              "%s: misaligned grads launched",
              Describe(*api, p, dtype, 0, det).c_str());
        // A stale error from before the call is not this call's error.
        crg_emu::SetLastError(cudaErrorLaunchFailure);
        const Reference r = ComputeReference(p, 0);
        CheckAgainstReference(RunEmulated(*api, p, dtype, 0, det), r,
                              det ? DeterministicBound : AtomicBound,
                              Describe(*api, p, dtype, 0, det) + " stale");
      }
    }
    // CheckKernelImage passes the runtime's verdict on the kernel image
    // through, and leaves no error behind.
    CHECK(api->check_image() == cudaSuccess, "%s: kernel image", api->name);
    crg_emu::GetOptions().func_attributes_error =
        cudaErrorNoKernelImageForDevice;
    CHECK(api->check_image() == cudaErrorNoKernelImageForDevice,
          "%s: missing kernel image not reported", api->name);
    crg_emu::GetOptions().func_attributes_error = cudaSuccess;
    CHECK(cudaPeekAtLastError() == cudaSuccess, "%s: error left behind",
          api->name);
    // The box check: misaligned status, and a stale error.
    float* boxes = static_cast<float*>(crg_emu::DeviceMalloc(16));
    int32_t* ind = static_cast<int32_t*>(crg_emu::DeviceMalloc(4));
    char* status = static_cast<char*>(crg_emu::DeviceMalloc(8));
    const float box[4] = {0, 0, 1, 1};
    memcpy(boxes, box, 16);
    *ind = 0;
    CHECK(api->check_boxes(boxes, ind, 1, 1,
                           reinterpret_cast<int32_t*>(status + 2),
                           nullptr) == cudaErrorMisalignedAddress,
          "%s: misaligned status accepted", api->name);
    crg_emu::SetLastError(cudaErrorLaunchFailure);
    CHECK(api->check_boxes(boxes, ind, 1, 1, reinterpret_cast<int32_t*>(status),
                           nullptr) == cudaSuccess,
          "%s: box check returned a stale error", api->name);
    crg_emu::DeviceFree(status);
    crg_emu::DeviceFree(ind);
    crg_emu::DeviceFree(boxes);
  }
}

// Sizes above 2^24 (docs/semantics.md, "Tap clamp"): the far-border sample's
// taps are clamped to size - 1, so the output sums to 2 and nothing lands
// past it (the emulator and ASan would report an access past the buffer).
void TestHugeSizes() {
  const int64_t size = 16777220;
  for (bool along_height : {true, false}) {
    for (int method = 0; method < 2; ++method) {
      if (!along_height && method == 1) continue;  // keep it quick
      Problem p = MakeShape(along_height ? "huge-height" : "huge-width", 1,
                            along_height ? size : 1, along_height ? 1 : size, 1,
                            1, along_height ? 2 : 1, along_height ? 1 : 2);
      p.boxes = {0, 0, 1, 1};
      p.grads = {1.0f, 1.0f};
      for (bool det : {false, true}) {
        // Deterministic mode finalizes all 16.8M elements: once is enough.
        if (det && !(along_height && method == 0)) continue;
        const Output out = RunEmulated(crg_emu::EmulatedSm90(), p,
                                       crg_emu::kEmuFloat, method, det);
        double sum = 0.0;
        for (int64_t i = 0; i < size; ++i) sum += out.at(i);
        CHECK(sum == 2.0 && out.at(0) == 1.0 && out.at(size - 1) == 1.0,
              "%s %s %s: sum %g, first %g, last %g", p.name.c_str(),
              kMethodNames[method], det ? "deterministic" : "atomic", sum,
              out.at(0), out.at(size - 1));
      }
    }
  }
}

// ---- the boxes-gradient kernel (cuda/grad_boxes.cu)
// ---------------------------------------------------------------------------

const crg_emu::EmulatedBoxesApi* const kBoxesApis[] = {
    &crg_emu::EmulatedBoxesSm80(), &crg_emu::EmulatedBoxesSm90()};

// `values` in `dtype`, as raw bytes.
std::vector<unsigned char> EncodeImage(const std::vector<double>& values,
                                       int dtype) {
  const int64_t n = static_cast<int64_t>(values.size());
  std::vector<unsigned char> bytes(n * ElementBytes(dtype));
  for (int64_t i = 0; i < n; ++i) {
    const double v = values[i];
    const float f = static_cast<float>(v);
    uint16_t h;
    switch (dtype) {
      case crg_emu::kEmuHalf:
        h = crg::FloatToHalfBits(f);
        memcpy(&bytes[2 * i], &h, 2);
        break;
      case crg_emu::kEmuBFloat16:
        h = crg::FloatToBFloat16Bits(f);
        memcpy(&bytes[2 * i], &h, 2);
        break;
      case crg_emu::kEmuFloat:
        memcpy(&bytes[4 * i], &f, 4);
        break;
      default:
        memcpy(&bytes[8 * i], &v, 8);
        break;
    }
  }
  return bytes;
}

// A random image [batch, height, width, depth] for `p` in `dtype`.
std::vector<unsigned char> MakeImage(const Problem& p, int dtype,
                                     std::mt19937_64& rng) {
  std::vector<double> values(p.batch * p.height * p.width * p.depth);
  std::normal_distribution<double> normal(0.0, 1.0);
  for (double& v : values) v = normal(rng) * (rng() % 16 == 0 ? 100.0 : 1.0);
  return EncodeImage(values, dtype);
}

struct BoxesRun {
  std::vector<float> out;
  crg_emu::Counters counters;
};

// Copies `p` and `image` into emulated device memory, runs the boxes
// launcher, copies back the [N, 4] output.
BoxesRun RunBoxesEmulated(const crg_emu::EmulatedBoxesApi& api,
                          const Problem& p,
                          const std::vector<unsigned char>& image, int dtype,
                          int method, const RunOptions& o = {}) {
  crg_emu::Options& opt = crg_emu::GetOptions();
  opt.schedule = o.schedule;
  opt.seed = o.seed;
  opt.multiprocessors = o.multiprocessors;
  crg_emu::ResetCounters();
  auto upload = [](const void* src, size_t bytes) {
    void* d = crg_emu::DeviceMalloc(bytes);
    if (bytes > 0) memcpy(d, src, bytes);
    return d;
  };
  EmuArgs a;
  a.grads = static_cast<float*>(upload(p.grads.data(), p.grads.size() * 4));
  a.boxes = static_cast<float*>(upload(p.boxes.data(), p.boxes.size() * 4));
  a.box_ind =
      static_cast<int32_t*>(upload(p.box_ind.data(), p.box_ind.size() * 4));
  a.num_boxes = p.num_boxes();
  a.crop_height = p.crop_height;
  a.crop_width = p.crop_width;
  a.batch = p.batch;
  a.height = p.height;
  a.width = p.width;
  a.depth = p.depth;
  a.method = method;
  void* img = upload(image.data(), image.size());
  const size_t out_bytes = p.num_boxes() * 4 * sizeof(float);
  float* out = static_cast<float*>(crg_emu::DeviceMalloc(out_bytes));
  memset(out, 0xA5, out_bytes);  // "uninitialized"
  const cudaError_t err = api.launch(a, dtype, img, out, nullptr);
  CHECK(err == o.expect, "%s boxes %s: launch returned %s, not %s", api.name,
        p.name.c_str(), cudaGetErrorName(err), cudaGetErrorName(o.expect));
  BoxesRun r;
  r.out.assign(out, out + p.num_boxes() * 4);
  r.counters = crg_emu::GetCounters();
  crg_emu::DeviceFree(out);
  crg_emu::DeviceFree(img);
  crg_emu::DeviceFree(const_cast<int32_t*>(a.box_ind));
  crg_emu::DeviceFree(const_cast<float*>(a.boxes));
  crg_emu::DeviceFree(const_cast<float*>(a.grads));
  return r;
}

// The CPU boxes kernel, under flush-to-zero as TensorFlow's threads run it.
std::vector<float> RunBoxesCpu(const Problem& p,
                               const std::vector<unsigned char>& image,
                               int dtype, int method) {
  crg::GradBoxesArgs a;
  a.grads = p.grads.data();
  a.boxes = p.boxes.data();
  a.box_ind = p.box_ind.data();
  a.num_boxes = p.num_boxes();
  a.crop_height = p.crop_height;
  a.crop_width = p.crop_width;
  a.batch = p.batch;
  a.height = p.height;
  a.width = p.width;
  a.depth = p.depth;
  a.method = static_cast<crg::Method>(method);
  std::vector<float> out(p.num_boxes() * 4, -1.0f);
#if CRG_TEST_X86
  const unsigned int csr = _mm_getcsr();
  _mm_setcsr(csr | 0x8040u);
#endif
  const crg::ParallelRunner runner = crg::SerialRunner();
  const void* img = image.data();
  switch (dtype) {
    case crg_emu::kEmuHalf:
      crg::CropAndResizeGradBoxesCpu(a, static_cast<const crg::Half*>(img),
                                     out.data(), runner);
      break;
    case crg_emu::kEmuBFloat16:
      crg::CropAndResizeGradBoxesCpu(a, static_cast<const crg::BFloat16*>(img),
                                     out.data(), runner);
      break;
    case crg_emu::kEmuFloat:
      crg::CropAndResizeGradBoxesCpu(a, static_cast<const float*>(img),
                                     out.data(), runner);
      break;
    default:
      crg::CropAndResizeGradBoxesCpu(a, static_cast<const double*>(img),
                                     out.data(), runner);
      break;
  }
#if CRG_TEST_X86
  _mm_setcsr(csr);
#endif
  return out;
}

bool BitwiseEqual(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() &&
         (a.empty() || memcmp(a.data(), b.data(), a.size() * 4) == 0);
}

// First differing element, for the failure message.
std::string FirstDifference(const std::vector<float>& got,
                            const std::vector<float>& want) {
  for (size_t i = 0; i < std::min(got.size(), want.size()); ++i) {
    if (memcmp(&got[i], &want[i], 4) != 0) {
      char buf[128];
      snprintf(buf, sizeof(buf), "box %zu coord %zu: %.9g vs cpu %.9g", i / 4,
               i % 4, got[i], want[i]);
      return buf;
    }
  }
  return "sizes differ";
}

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
#else
constexpr bool kSanitized = false;
#endif

// Shapes: crop sizes 1 and > 1, depths 1..300 (below, at and above the 256
// lanes, and not dividing them), one, several and more boxes than blocks.
std::vector<Problem> BoxesProblems(std::mt19937_64& rng) {
  struct Shape {
    int64_t b, h, w, d, n, ch, cw;
  };
  const Shape shapes[] = {
      {1, 1, 1, 1, 1, 1, 1},   {2, 5, 7, 1, 9, 1, 1},   {2, 6, 5, 3, 7, 3, 2},
      {1, 9, 4, 7, 5, 1, 4},   {3, 4, 6, 64, 6, 2, 3},  {1, 7, 7, 255, 3, 2, 2},
      {2, 3, 5, 256, 4, 1, 3}, {1, 5, 3, 257, 3, 3, 1}, {2, 4, 4, 300, 5, 2, 2},
      {2, 8, 6, 5, 14, 5, 4},
  };
  std::vector<Problem> problems;
  int i = 0;
  for (const Shape& s : shapes) {
    problems.push_back(RandomProblem("boxes" + std::to_string(i++), rng, s.b,
                                     s.h, s.w, s.d, s.n, s.ch, s.cw));
  }
  return problems;
}

// Every dtype, method, shape and architecture: bitwise equal to the CPU
// kernel, one launch, ten barriers per box, one 8 KiB `sums` per block.
void TestBoxes() {
  std::mt19937_64 rng(21);
  const std::vector<Problem> problems = BoxesProblems(rng);
  int k = 0, cases = 0;
  for (const Problem& p : problems) {
    for (int dtype = 0; dtype < 4; ++dtype) {
      const std::vector<unsigned char> image = MakeImage(p, dtype, rng);
      for (int method = 0; method < 2; ++method) {
        const std::vector<float> cpu = RunBoxesCpu(p, image, dtype, method);
        ++cases;
        for (const crg_emu::EmulatedBoxesApi* api : kBoxesApis) {
          // Sanitized builds (CI) run one architecture per case, alternating.
          if (kSanitized && (api == kBoxesApis[1]) != (cases % 2 == 1)) {
            continue;
          }
          RunOptions o;
          o.seed = 100 + k++;
          o.multiprocessors = 1 + k % 3;  // 8 to 24 blocks
          const BoxesRun r = RunBoxesEmulated(*api, p, image, dtype, method, o);
          CHECK(BitwiseEqual(r.out, cpu), "%s %s %s %s: %s", api->name,
                p.name.c_str(), kDTypeNames[dtype], kMethodNames[method],
                FirstDifference(r.out, cpu).c_str());
          const int64_t blocks =
              std::min<int64_t>(p.num_boxes(), o.multiprocessors * 8);
          CHECK(r.counters.launches == 1 && r.counters.scalar_atomics == 0 &&
                    r.counters.threads == blocks * 256 &&
                    r.counters.barriers == p.num_boxes() * 10 &&
                    r.counters.shared_bytes == blocks * 4 * 256 * 8,
                "%s %s: launches %lld threads %lld barriers %lld shared %lld",
                api->name, p.name.c_str(),
                static_cast<long long>(r.counters.launches),
                static_cast<long long>(r.counters.threads),
                static_cast<long long>(r.counters.barriers),
                static_cast<long long>(r.counters.shared_bytes));
        }
      }
    }
  }
}

// The reduction tree itself. A float64 sum rounded once to float32 rarely
// shows a different association, so these boxes are built to: 256 terms (D =
// 256, a 1x1 crop, so term i is lane i), the same image in every channel, and
// grads +2^60 and -2^60 at two lanes and a small value at a third. The
// small value survives only if the two large ones cancel before it joins,
// which depends on exactly which lanes the tree pairs at which level.
void TestBoxesTree() {
  std::mt19937_64 rng(24);
  Problem p = MakeShape("boxes-tree", 1, 6, 7, 256, 24, 1, 1);
  for (int64_t n = 0; n < p.num_boxes(); ++n) {
    const float box[4] = {0.1f, 0.15f, 0.8f, 0.9f};
    memcpy(&p.boxes[4 * n], box, sizeof(box));
    float* g = &p.grads[256 * n];
    int a = static_cast<int>(rng() % 256), b, c;
    do b = static_cast<int>(rng() % 256);
    while (b == a);
    do c = static_cast<int>(rng() % 256);
    while (c == a || c == b);
    if (n < 8) {  // lane 0 against lane 2^n: each level of the tree
      a = 0;
      b = 1 << n;
      c = b == 1 ? 2 : 1;
    }
    g[a] = 1152921504606846976.0f;  // 2^60
    g[b] = -1152921504606846976.0f;
    g[c] = 1.5f;
  }
  std::vector<double> values(p.height * p.width * p.depth);
  for (int64_t y = 0; y < p.height; ++y) {
    for (int64_t x = 0; x < p.width; ++x) {
      for (int64_t d = 0; d < p.depth; ++d) {
        values[(y * p.width + x) * p.depth + d] =
            static_cast<double>(y * y * 3 + x * 5);
      }
    }
  }
  for (int dtype = 0; dtype < 4; ++dtype) {
    const std::vector<unsigned char> image = EncodeImage(values, dtype);
    const std::vector<float> cpu = RunBoxesCpu(p, image, dtype, 0);
    for (const crg_emu::EmulatedBoxesApi* api : kBoxesApis) {
      RunOptions o;
      o.multiprocessors = 1;
      const BoxesRun r = RunBoxesEmulated(*api, p, image, dtype, 0, o);
      CHECK(BitwiseEqual(r.out, cpu), "%s %s %s: %s", api->name, p.name.c_str(),
            kDTypeNames[dtype], FirstDifference(r.out, cpu).c_str());
    }
  }
}

// Bitwise the same for in-order and shuffled thread orders, block orders and
// SM counts (1 SM: 8 blocks, so each block loops over several boxes and
// reuses its `sums`).
void TestBoxesOrder() {
  std::mt19937_64 rng(22);
  std::vector<Problem> problems;
  problems.push_back(RandomProblem("order-d300", rng, 2, 6, 5, 300, 12, 2, 2));
  problems.push_back(RandomProblem("order-d3", rng, 2, 6, 5, 3, 20, 4, 3));
  const int seeds = kSanitized ? 1 : 3;
  for (const Problem& p : problems) {
    for (int dtype : {crg_emu::kEmuHalf, crg_emu::kEmuDouble}) {
      const std::vector<unsigned char> image = MakeImage(p, dtype, rng);
      const std::vector<float> cpu = RunBoxesCpu(p, image, dtype, 0);
      for (const crg_emu::EmulatedBoxesApi* api : kBoxesApis) {
        for (int sms : {1, 132}) {
          for (int s = 0; s <= seeds; ++s) {
            RunOptions o;
            o.multiprocessors = sms;
            o.seed = 1000 + s;
            if (s == seeds) o.schedule = crg_emu::Schedule::kInOrder;
            const BoxesRun r = RunBoxesEmulated(*api, p, image, dtype, 0, o);
            CHECK(BitwiseEqual(r.out, cpu), "%s %s %s %d SMs seed %d: %s",
                  api->name, p.name.c_str(), kDTypeNames[dtype], sms, s,
                  FirstDifference(r.out, cpu).c_str());
          }
        }
      }
    }
  }
}

// What the launcher rejects (nothing launched, no error left behind), empty
// work, depth 0, box indices outside the batch (zeros, nothing read) and a
// stale error from before the call.
void TestBoxesLauncher() {
  std::mt19937_64 rng(23);
  const Problem base = RandomProblem("launcher", rng, 2, 5, 4, 3, 3, 2, 2);
  const std::vector<unsigned char> image =
      MakeImage(base, crg_emu::kEmuFloat, rng);
  const crg_emu::EmulatedBoxesApi& api = crg_emu::EmulatedBoxesSm90();
  struct Bad {
    const char* what;
    void (*edit)(EmuArgs&);
  };
  const Bad bad[] = {
      {"num_boxes < 0", [](EmuArgs& a) { a.num_boxes = -1; }},
      {"crop_height 0", [](EmuArgs& a) { a.crop_height = 0; }},
      {"crop_width < 0", [](EmuArgs& a) { a.crop_width = -2; }},
      {"batch < 0", [](EmuArgs& a) { a.batch = -1; }},
      {"height 0", [](EmuArgs& a) { a.height = 0; }},
      {"width 0", [](EmuArgs& a) { a.width = 0; }},
      {"depth < 0", [](EmuArgs& a) { a.depth = -1; }},
      {"method 2", [](EmuArgs& a) { a.method = 2; }},
      {"method -1", [](EmuArgs& a) { a.method = -1; }},
      {"null grads", [](EmuArgs& a) { a.grads = nullptr; }},
      {"null boxes", [](EmuArgs& a) { a.boxes = nullptr; }},
      {"null box_ind", [](EmuArgs& a) { a.box_ind = nullptr; }},
  };
  float* grads = static_cast<float*>(
      crg_emu::DeviceMalloc(base.grads.size() * sizeof(float)));
  float* boxes = static_cast<float*>(crg_emu::DeviceMalloc(12 * sizeof(float)));
  int32_t* box_ind =
      static_cast<int32_t*>(crg_emu::DeviceMalloc(3 * sizeof(int32_t)));
  void* img = crg_emu::DeviceMalloc(image.size());
  float* out = static_cast<float*>(crg_emu::DeviceMalloc(12 * sizeof(float)));
  memcpy(grads, base.grads.data(), base.grads.size() * sizeof(float));
  memcpy(boxes, base.boxes.data(), 12 * sizeof(float));
  memcpy(box_ind, base.box_ind.data(), 3 * sizeof(int32_t));
  memcpy(img, image.data(), image.size());
  EmuArgs good;
  good.grads = grads;
  good.boxes = boxes;
  good.box_ind = box_ind;
  good.num_boxes = 3;
  good.crop_height = base.crop_height;
  good.crop_width = base.crop_width;
  good.batch = base.batch;
  good.height = base.height;
  good.width = base.width;
  good.depth = base.depth;
  crg_emu::GetOptions() = crg_emu::Options();
  auto launches = [] { return crg_emu::GetCounters().launches; };
  for (const Bad& b : bad) {
    EmuArgs a = good;
    b.edit(a);
    crg_emu::ResetCounters();
    const cudaError_t err =
        api.launch(a, crg_emu::kEmuFloat, img, out, nullptr);
    CHECK(err == cudaErrorInvalidValue && launches() == 0 &&
              cudaGetLastError() == cudaSuccess,
          "boxes launcher, %s: %s, %lld launches", b.what,
          cudaGetErrorName(err), static_cast<long long>(launches()));
  }
  struct Call {
    const char* what;
    int dtype;
    const void* image;
    float* output;
  };
  const Call bad_calls[] = {
      {"null image", crg_emu::kEmuFloat, nullptr, out},
      {"null output", crg_emu::kEmuFloat, img, nullptr},
      {"unknown dtype", 7, img, out},
  };
  for (const Call& c : bad_calls) {
    crg_emu::ResetCounters();
    const cudaError_t err =
        api.launch(good, c.dtype, c.image, c.output, nullptr);
    CHECK(err == cudaErrorInvalidValue && launches() == 0,
          "boxes launcher, %s: %s", c.what, cudaGetErrorName(err));
  }
  // No boxes: success, nothing launched, whatever the pointers.
  {
    EmuArgs a = good;
    a.num_boxes = 0;
    a.boxes = nullptr;
    a.box_ind = nullptr;
    crg_emu::ResetCounters();
    const cudaError_t err =
        api.launch(a, crg_emu::kEmuFloat, nullptr, nullptr, nullptr);
    CHECK(err == cudaSuccess && launches() == 0, "boxes, no boxes: %s",
          cudaGetErrorName(err));
  }
  // Depth 0: no image or grads needed; zeros.
  {
    EmuArgs a = good;
    a.depth = 0;
    a.grads = nullptr;
    memset(out, 0xA5, 12 * sizeof(float));
    const cudaError_t err =
        api.launch(a, crg_emu::kEmuFloat, nullptr, out, nullptr);
    bool zeros = true;
    for (int i = 0; i < 12; ++i) zeros = zeros && out[i] == 0.0f;
    CHECK(err == cudaSuccess && zeros, "boxes, depth 0: %s, zeros %d",
          cudaGetErrorName(err), zeros);
  }
  // Box indices outside [0, batch): zeros for those boxes, the others as the
  // CPU kernel computes them.
  {
    const int32_t ind[3] = {-1, 1, 2};  // batch is 2
    memcpy(box_ind, ind, sizeof(ind));
    memset(out, 0xA5, 12 * sizeof(float));
    const cudaError_t err =
        api.launch(good, crg_emu::kEmuFloat, img, out, nullptr);
    Problem one = base;
    one.boxes.assign(base.boxes.begin() + 4, base.boxes.begin() + 8);
    one.box_ind = {1};
    one.grads.assign(base.grads.begin() + base.grads.size() / 3,
                     base.grads.begin() + 2 * base.grads.size() / 3);
    const std::vector<float> cpu =
        RunBoxesCpu(one, image, crg_emu::kEmuFloat, 0);
    bool ok = err == cudaSuccess && memcmp(out + 4, cpu.data(), 16) == 0;
    for (int i : {0, 1, 2, 3, 8, 9, 10, 11}) ok = ok && out[i] == 0.0f;
    CHECK(ok, "boxes, box_ind outside the batch: %s", cudaGetErrorName(err));
  }
  // A stale error from before the call is not this call's error (as for the
  // image-gradient launcher).
  {
    memcpy(box_ind, base.box_ind.data(), 3 * sizeof(int32_t));
    crg_emu::SetLastError(cudaErrorLaunchFailure);
    const cudaError_t err =
        api.launch(good, crg_emu::kEmuFloat, img, out, nullptr);
    CHECK(err == cudaSuccess && cudaGetLastError() == cudaSuccess,
          "boxes, stale error returned: %s", cudaGetErrorName(err));
  }
  crg_emu::DeviceFree(out);
  crg_emu::DeviceFree(img);
  crg_emu::DeviceFree(box_ind);
  crg_emu::DeviceFree(boxes);
  crg_emu::DeviceFree(grads);
}

// Sizes above 2^24: the far-border taps are clamped to size - 1, so nothing
// is read past the image (the emulator and ASan would report it) and the
// result is the CPU kernel's.
void TestBoxesHuge() {
  const int64_t size = 16777220;
  for (bool along_height : {true, false}) {
    Problem p =
        MakeShape(along_height ? "boxes-huge-height" : "boxes-huge-width", 1,
                  along_height ? size : 1, along_height ? 1 : size, 1, 1,
                  along_height ? 2 : 1, along_height ? 1 : 2);
    p.boxes = {0, 0, 1, 1};
    p.grads = {1.0f, -2.0f};
    std::vector<unsigned char> image(size * sizeof(float));
    for (int64_t i = 0; i < size; ++i) {
      const float v = static_cast<float>(i % 1000) * 0.25f;
      memcpy(&image[4 * i], &v, 4);
    }
    const std::vector<float> cpu = RunBoxesCpu(p, image, crg_emu::kEmuFloat, 0);
    const BoxesRun r = RunBoxesEmulated(crg_emu::EmulatedBoxesSm90(), p, image,
                                        crg_emu::kEmuFloat, 0);
    CHECK(BitwiseEqual(r.out, cpu), "%s: %s", p.name.c_str(),
          FirstDifference(r.out, cpu).c_str());
  }
}

struct Section {
  const char* name;
  void (*run)();
};
const Section kSections[] = {
    {"exact", TestExact},
    {"random", TestRandom},
    {"order", TestOrder},
    {"maxpass", TestMaxPass},
    {"paths", TestPaths},
    {"denormals", TestDenormals},
    {"checks", TestChecks},
    {"launcher",
     [] {
       TestLauncher();
       TestAlignmentAndStaleErrors();
     }},
    {"huge", TestHugeSizes},
    {"boxes", TestBoxes},
    {"boxes-tree", TestBoxesTree},
    {"boxes-order", TestBoxesOrder},
    {"boxes-launcher", TestBoxesLauncher},
    {"boxes-huge", TestBoxesHuge},
};

}  // namespace

int main(int argc, char** argv) {
  const char* only = nullptr;
  for (int i = 1; i < argc; ++i) {
    if (strcmp(argv[i], "--only") == 0 && i + 1 < argc) {
      only = argv[++i];
    } else {
      fprintf(stderr, "usage: %s [--only SECTION]\n", argv[0]);
      return 64;
    }
  }
  int ran = 0;
  for (const Section& s : kSections) {
    if (only != nullptr && strcmp(only, s.name) != 0) continue;
    const int before = g_failures;
    s.run();
    ++ran;
    printf("%-10s %s\n", s.name, g_failures == before ? "ok" : "FAILED");
    fflush(stdout);
  }
  if (ran == 0) {
    fprintf(stderr, "no section named %s\n", only);
    return 64;
  }
  printf("%d failure(s)\n", g_failures);
  return g_failures == 0 ? 0 : 1;
}
