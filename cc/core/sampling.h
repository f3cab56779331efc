// Sampling math of crop_and_resize, shared by the CPU and CUDA kernels.
//
// Every function here reproduces, operation for operation and in float32,
// how TensorFlow's CPU kernel maps a crop pixel to image coordinates. Any
// change in the order of operations changes which samples fall on the border
// and breaks bit-compatibility with tf.image.crop_and_resize.
#ifndef CROP_AND_RESIZE_GRAD_CC_CORE_SAMPLING_H_
#define CROP_AND_RESIZE_GRAD_CC_CORE_SAMPLING_H_

#include <math.h>
#include <stdint.h>

#if defined(__CUDACC__)
#define CRG_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define CRG_HOST_DEVICE inline
#endif

namespace crop_and_resize_grad {

enum class Method : int32_t { kBilinear = 0, kNearest = 1 };

// Image coordinate of crop index `i` along one axis, for a box edge pair
// (lo, hi) in normalized coordinates. hi < lo flips the crop.
CRG_HOST_DEVICE float SampleCoordinate(float lo, float hi, int64_t image_size,
                                       int64_t crop_size, int64_t i) {
  if (crop_size > 1) {
    const float extent = static_cast<float>(image_size - 1);
#if defined(__CUDA_ARCH__)
    // Explicitly rounded operations: nvcc would otherwise fuse lo * extent +
    // i * scale into an FMA and move samples off TF's grid and border.
    const float scale = __fdiv_rn(__fmul_rn(__fsub_rn(hi, lo), extent),
                                  static_cast<float>(crop_size - 1));
    return __fadd_rn(__fmul_rn(lo, extent),
                     __fmul_rn(static_cast<float>(i), scale));
#else
    const float scale = (hi - lo) * extent / static_cast<float>(crop_size - 1);
    return lo * extent + static_cast<float>(i) * scale;
#endif
  }
  // TF evaluates the single-pixel centre with a double literal (0.5).
  return static_cast<float>(0.5 * static_cast<double>(lo + hi) *
                            static_cast<double>(image_size - 1));
}

// True when `coord` lies in [0, size - 1]. Written so that NaN is outside:
// overflowing finite boxes can produce NaN coordinates.
CRG_HOST_DEVICE bool InsideImage(float coord, int64_t image_size) {
  return coord >= 0.0f && coord <= static_cast<float>(image_size - 1);
}

// The two bilinear taps along one axis and the weight of the upper one.
// When `coord` is an integer, lo == hi and frac == 0.
struct BilinearTaps {
  int64_t lo;
  int64_t hi;
  float frac;
};

// Requires InsideImage(coord, size).
CRG_HOST_DEVICE BilinearTaps MakeBilinearTaps(float coord) {
  const float lo = floorf(coord);
  BilinearTaps taps;
  taps.lo = static_cast<int64_t>(lo);
  taps.hi = static_cast<int64_t>(ceilf(coord));
  taps.frac = coord - lo;
  return taps;
}

// Nearest pixel, halves rounded away from zero. Requires InsideImage.
CRG_HOST_DEVICE int64_t NearestIndex(float coord) {
  return static_cast<int64_t>(roundf(coord));
}

// Clamps a tap index to the last row or column, size - 1. Needed only above
// 2^24: there float32(size - 1) can round up to size or more, so the border
// test admits a coordinate whose ceil (or round) is size, one past the
// image. Positions, weights and the border test stay as they are; only the
// index moves (docs/semantics.md, "Tap clamp"). Every kernel that turns a
// coordinate into taps (image and boxes gradients, CPU and CUDA) goes
// through MakeAxisSample, and so through this clamp.
CRG_HOST_DEVICE int64_t ClampTap(int64_t tap, int64_t image_size) {
  return tap < image_size - 1 ? tap : image_size - 1;
}

// One axis of one sample: whether it contributes and where.
struct AxisSample {
  bool valid;
  BilinearTaps taps;  // For nearest, taps.lo == taps.hi and frac == 0.
};

CRG_HOST_DEVICE AxisSample MakeAxisSample(float lo, float hi,
                                          int64_t image_size, int64_t crop_size,
                                          int64_t i, Method method) {
  AxisSample sample;
  const float coord = SampleCoordinate(lo, hi, image_size, crop_size, i);
  sample.valid = InsideImage(coord, image_size);
  if (!sample.valid) {
    sample.taps.lo = sample.taps.hi = 0;
    sample.taps.frac = 0.0f;
  } else if (method == Method::kBilinear) {
    sample.taps = MakeBilinearTaps(coord);
    sample.taps.lo = ClampTap(sample.taps.lo, image_size);
    sample.taps.hi = ClampTap(sample.taps.hi, image_size);
  } else {
    sample.taps.lo = sample.taps.hi = ClampTap(NearestIndex(coord), image_size);
    sample.taps.frac = 0.0f;
  }
  return sample;
}

// Accumulator and product type of both kernels: float for float, half and
// bfloat16 output (rounded once at the end), double for double output.
template <typename T>
struct AccumulatorOf {
  using type = float;
};
template <>
struct AccumulatorOf<double> {
  using type = double;
};

// Weights of the lower and upper tap, in the product type P (float, or double
// for double output). For float this is TF's (1 - frac); for double the
// subtraction is done in double, so it is exact.
template <typename P>
struct TapWeights {
  P lo;
  P hi;
};

template <typename P>
CRG_HOST_DEVICE TapWeights<P> MakeTapWeights(float frac) {
  TapWeights<P> w;
  w.lo = static_cast<P>(1) - static_cast<P>(frac);
  w.hi = static_cast<P>(frac);
  return w;
}

}  // namespace crop_and_resize_grad

#endif  // CROP_AND_RESIZE_GRAD_CC_CORE_SAMPLING_H_
