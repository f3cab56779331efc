// Bulk accumulator -> T conversion: the CPU kernel's final (only) rounding.
// Half uses the F16C instruction when the CPU has it (same bits as the portable
// code).
#ifndef CROP_AND_RESIZE_GRAD_CC_CORE_CPU_FLOAT16_CONVERT_H_
#define CROP_AND_RESIZE_GRAD_CC_CORE_CPU_FLOAT16_CONVERT_H_

#include <stdint.h>
#include <string.h>

#include "cc/core/float16.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CRG_HAVE_F16C_DISPATCH 1
#endif

namespace crop_and_resize_grad {

#if CRG_HAVE_F16C_DISPATCH
__attribute__((target("avx,f16c"))) inline void ConvertToHalfF16c(
    const float* src, Half* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h =
        _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i), h);
  }
  for (; i < n; ++i) dst[i].bits = FloatToHalfBits(src[i]);
}
#endif

inline void ConvertFromFloat(const float* src, Half* dst, int64_t n) {
#if CRG_HAVE_F16C_DISPATCH
  static const bool has_f16c = __builtin_cpu_supports("f16c");
  if (has_f16c) {
    ConvertToHalfF16c(src, dst, n);
    return;
  }
#endif
  for (int64_t i = 0; i < n; ++i) dst[i].bits = FloatToHalfBits(src[i]);
}

// Same type: a copy. Long runs go through memcpy, whose string-copy path
// writes whole lines without first reading them; short ones stay inline.
template <typename T>
inline void ConvertFromFloat(const T* src, T* dst, int64_t n) {
  if (n * static_cast<int64_t>(sizeof(T)) >= 4096) {
    memcpy(dst, src, n * sizeof(T));
    return;
  }
  for (int64_t i = 0; i < n; ++i) dst[i] = src[i];
}

inline void ConvertFromFloat(const float* src, BFloat16* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i].bits = FloatToBFloat16Bits(src[i]);
}

}  // namespace crop_and_resize_grad

#endif  // CROP_AND_RESIZE_GRAD_CC_CORE_CPU_FLOAT16_CONVERT_H_
