// 16-bit float storage types and round-to-nearest-even conversion from float.
//
// The TF-free kernels write half and bfloat16 through these bit-level types so
// that the pybind11 module and the TF op produce identical bits. They are
// layout-compatible with Eigen::half and Eigen::bfloat16.
#ifndef CROP_AND_RESIZE_GRAD_CC_CORE_FLOAT16_H_
#define CROP_AND_RESIZE_GRAD_CC_CORE_FLOAT16_H_

#include <stdint.h>
#include <string.h>

#if defined(__CUDACC__)
#define CRG_F16_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define CRG_F16_HOST_DEVICE inline
#endif

namespace crop_and_resize_grad {

struct Half {
  uint16_t bits;
};
struct BFloat16 {
  uint16_t bits;
};

CRG_F16_HOST_DEVICE uint32_t FloatBits(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof(u));
  return u;
}

// IEEE binary16, round to nearest even; overflow gives infinity and NaN stays
// a quiet NaN with its sign and upper payload bits, bit-identical to F16C's
// vcvtps2ph.
CRG_F16_HOST_DEVICE uint16_t FloatToHalfBits(float f) {
  const uint32_t u = FloatBits(f);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  const uint32_t abs = u & 0x7fffffffu;
  if (abs > 0x7f800000u) {  // NaN: quiet, upper payload bits kept (as F16C).
    return sign | 0x7e00u | static_cast<uint16_t>((abs & 0x7fffffu) >> 13);
  }
  if (abs == 0x7f800000u) return sign | 0x7c00u;  // Infinity.
  if (abs >= 0x477ff000u) {  // Rounds to >= 65520: overflow to infinity.
    return sign | 0x7c00u;
  }
  if (abs < 0x38800000u) {               // Below 2^-14: subnormal half or zero.
    if (abs < 0x33000000u) return sign;  // Below half the smallest subnormal.
    // Shift the full significand so that the result is in units of 2^-24.
    const uint32_t exponent = abs >> 23;
    const uint32_t mantissa = (abs & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126u - exponent;  // 14..24 for this range.
    uint32_t result = mantissa >> shift;
    const uint32_t rest = mantissa & ((1u << shift) - 1u);
    const uint32_t halfway = 1u << (shift - 1u);
    if (rest > halfway || (rest == halfway && (result & 1u))) ++result;
    return sign | static_cast<uint16_t>(result);
  }
  // Normal range: rebias the exponent and round away 13 mantissa bits. A
  // carry out of the mantissa correctly bumps the exponent.
  uint32_t result = abs - 0x38000000u;
  const uint32_t rest = result & 0x1fffu;
  result >>= 13;
  if (rest > 0x1000u || (rest == 0x1000u && (result & 1u))) ++result;
  return sign | static_cast<uint16_t>(result);
}

// bfloat16 (upper half of a float), round to nearest even; NaN becomes a
// quiet NaN with its sign.
CRG_F16_HOST_DEVICE uint16_t FloatToBFloat16Bits(float f) {
  const uint32_t u = FloatBits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) {
    return static_cast<uint16_t>((u >> 16) | 0x0040u);
  }
  const uint32_t rounding_bias = 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>((u + rounding_bias) >> 16);
}

// Conversion from the float accumulator into each output storage type.
template <typename T>
struct FromFloatAccumulator {
  CRG_F16_HOST_DEVICE static T Convert(float v) { return static_cast<T>(v); }
};
template <>
struct FromFloatAccumulator<Half> {
  CRG_F16_HOST_DEVICE static Half Convert(float v) {
    return Half{FloatToHalfBits(v)};
  }
};
template <>
struct FromFloatAccumulator<BFloat16> {
  CRG_F16_HOST_DEVICE static BFloat16 Convert(float v) {
    return BFloat16{FloatToBFloat16Bits(v)};
  }
};

}  // namespace crop_and_resize_grad

#endif  // CROP_AND_RESIZE_GRAD_CC_CORE_FLOAT16_H_
