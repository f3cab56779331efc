// The "conversions" section: float to half and bfloat16 against independent
// references.
#include "tests/cpp/test_util.h"

namespace crg_test {

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

}  // namespace crg_test
