// Arithmetic of the boxes gradient, shared by the CPU and CUDA kernels so
// that both produce the same bits: the per-sample terms in float64 and the
// fixed summation order (kBoxesLanes partial sums, then a pairwise tree).
// docs/semantics.md ("Boxes gradient") states the formula.
#ifndef CROP_AND_RESIZE_GRAD_CC_CORE_GRAD_BOXES_MATH_H_
#define CROP_AND_RESIZE_GRAD_CC_CORE_GRAD_BOXES_MATH_H_

#include <stdint.h>
#include <string.h>

#include "cc/core/float16.h"
#include "cc/core/sampling.h"

namespace crop_and_resize_grad {

// Term i of a box (i over crop row, crop column, channel, flattened) goes to
// partial sum i % kBoxesLanes. Also the CUDA block size.
inline constexpr int kBoxesLanes = 256;

// Subnormal inputs are read as signed zeros, as the CPU does under DAZ (TF's
// threads and the _kernels module run with it), so that the result does not
// depend on the floating-point mode of the thread or device.
CRG_HOST_DEVICE float FlushSubnormal(float v) {
  uint32_t u;
  memcpy(&u, &v, sizeof(u));
  if ((u & 0x7f800000u) == 0) u &= 0x80000000u;
  memcpy(&v, &u, sizeof(v));
  return v;
}

CRG_HOST_DEVICE double FlushSubnormal(double v) {
  uint64_t u;
  memcpy(&u, &v, sizeof(u));
  if ((u & 0x7ff0000000000000ull) == 0) u &= 0x8000000000000000ull;
  memcpy(&v, &u, sizeof(v));
  return v;
}

// Exact half -> float; written with integer operations, selects and an
// int -> float conversion, so that no step depends on denormal handling (a
// half subnormal is a normal float) and the CPU loop vectorizes.
CRG_HOST_DEVICE float HalfBitsToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t em = h & 0x7fffu;
  const uint32_t special = sign | 0x7f800000u | ((em & 0x3ffu) << 13);
  const uint32_t normal = sign | ((em << 13) + 0x38000000u);  // Rebias 112.
  // Subnormal or zero: em units of 2^-24, exact in float.
  const float magnitude =
      static_cast<float>(static_cast<int32_t>(em)) * 5.9604644775390625e-8f;
  uint32_t small;
  memcpy(&small, &magnitude, sizeof(small));
  small |= sign;
  const uint32_t bits =
      em >= 0x7c00u ? special : (em >= 0x0400u ? normal : small);
  float f;
  memcpy(&f, &bits, sizeof(f));
  return f;
}

// One image value as float64, with subnormals of float-sized (and narrower)
// types and of double read as zero.
CRG_HOST_DEVICE double ImageValue(float v) {
  return static_cast<double>(FlushSubnormal(v));
}
CRG_HOST_DEVICE double ImageValue(double v) { return FlushSubnormal(v); }
CRG_HOST_DEVICE double HalfValue(uint16_t bits) {
  return static_cast<double>(HalfBitsToFloat(bits));
}
CRG_HOST_DEVICE double BFloat16Value(uint16_t bits) {
  const uint32_t u = static_cast<uint32_t>(bits) << 16;
  float f;
  memcpy(&f, &u, sizeof(f));
  return static_cast<double>(FlushSubnormal(f));
}
CRG_HOST_DEVICE double ImageValue(Half v) { return HalfValue(v.bits); }
CRG_HOST_DEVICE double ImageValue(BFloat16 v) { return BFloat16Value(v.bits); }

// Element k of an image row as float64. The 16-bit types are read through
// their bits, which lets the CPU loop vectorize.
CRG_HOST_DEVICE double ImageAt(const float* p, int64_t k) {
  return ImageValue(p[k]);
}
CRG_HOST_DEVICE double ImageAt(const double* p, int64_t k) {
  return ImageValue(p[k]);
}
CRG_HOST_DEVICE double ImageAt(const Half* p, int64_t k) {
  return HalfValue(reinterpret_cast<const uint16_t*>(p)[k]);
}
CRG_HOST_DEVICE double ImageAt(const BFloat16* p, int64_t k) {
  return BFloat16Value(reinterpret_cast<const uint16_t*>(p)[k]);
}

// Derivatives of a sample's image coordinate with respect to the two box
// edges of its axis (lo: y1 or x1, hi: y2 or x2), for crop index i.
struct EdgeWeights {
  double lo;
  double hi;
};

CRG_HOST_DEVICE EdgeWeights MakeEdgeWeights(int64_t image_size,
                                            int64_t crop_size, int64_t i) {
  const double extent = static_cast<double>(image_size - 1);
  EdgeWeights w;
  if (crop_size > 1) {
    const double ratio = extent / static_cast<double>(crop_size - 1);
    w.hi = static_cast<double>(i) * ratio;
    w.lo = extent - w.hi;
  } else {
    w.lo = w.hi = 0.5 * extent;
  }
  return w;
}

// Slopes of the bilinear surface at a sample, from its four tap values and
// the fractional positions ly, lx (weights of the bottom row, right column).
struct Slopes {
  double dy;
  double dx;
};

CRG_HOST_DEVICE Slopes MakeSlopes(double top_left, double top_right,
                                  double bottom_left, double bottom_right,
                                  double ly, double lx) {
  Slopes s;
  s.dy =
      (1.0 - lx) * (bottom_left - top_left) + lx * (bottom_right - top_right);
  s.dx =
      (1.0 - ly) * (top_right - top_left) + ly * (bottom_right - bottom_left);
  return s;
}

// The four terms of one (sample, channel) with upstream gradient g, in output
// order [y1, x1, y2, x2].
struct BoxTerms {
  double v[4];
};

CRG_HOST_DEVICE BoxTerms MakeBoxTerms(const Slopes& slopes, double g,
                                      const EdgeWeights& wy,
                                      const EdgeWeights& wx) {
  const double gy = slopes.dy * g;
  const double gx = slopes.dx * g;
  BoxTerms t;
  t.v[0] = gy * wy.lo;
  t.v[1] = gx * wx.lo;
  t.v[2] = gy * wy.hi;
  t.v[3] = gx * wx.hi;
  return t;
}

// The fixed pairwise tree over kBoxesLanes partial sums (the CUDA kernel runs
// the same steps in shared memory): for stride 128, 64, ..., 1,
// s[t] += s[t + stride] for t < stride. Returns s[0]; overwrites `s`.
inline double ReduceLanes(double* s) {
  for (int stride = kBoxesLanes / 2; stride > 0; stride /= 2) {
    for (int t = 0; t < stride; ++t) s[t] += s[t + stride];
  }
  return s[0];
}

}  // namespace crop_and_resize_grad

#endif  // CROP_AND_RESIZE_GRAD_CC_CORE_GRAD_BOXES_MATH_H_
