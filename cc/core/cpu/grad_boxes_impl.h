// The boxes-gradient CPU kernel, compiled once per instruction set by
// grad_boxes_isa.cc inside namespace CRG_ISA_NAMESPACE (element-wise float64
// math without FMA contraction: every copy gives the same bits). Parallel
// over ranges of boxes; each box is summed in the fixed order of
// cc/core/grad_boxes_math.h.
#ifndef CROP_AND_RESIZE_GRAD_CC_CORE_CPU_GRAD_BOXES_IMPL_H_
#define CROP_AND_RESIZE_GRAD_CC_CORE_CPU_GRAD_BOXES_IMPL_H_

#ifndef CRG_ISA_NAMESPACE
#error "Define CRG_ISA_NAMESPACE before including this header."
#endif

#include <stdint.h>

#include <algorithm>
#include <vector>

#if defined(__F16C__)
#include <immintrin.h>
#endif

#include "cc/core/cpu/grad_boxes.h"
#include "cc/core/grad_boxes_math.h"

namespace crop_and_resize_grad {
namespace CRG_ISA_NAMESPACE {
namespace {

// Where one crop row or column of a box lands along its axis.
struct AxisTaps {
  int64_t index;  // Crop row or column.
  int64_t lo;     // Clamped taps.
  int64_t hi;
  double frac;
  EdgeWeights weights;
};

// The valid samples of one axis of a box, in crop order.
void ValidAxisTaps(float lo, float hi, int64_t image_size, int64_t crop_size,
                   std::vector<AxisTaps>* taps) {
  taps->clear();
  for (int64_t i = 0; i < crop_size; ++i) {
    const AxisSample s =
        MakeAxisSample(lo, hi, image_size, crop_size, i, Method::kBilinear);
    if (!s.valid) continue;
    taps->push_back({i, s.taps.lo, s.taps.hi, static_cast<double>(s.taps.frac),
                     MakeEdgeWeights(image_size, crop_size, i)});
  }
}

// Asks for the depth values of one pixel to be brought into cache.
template <typename T>
inline void PrefetchPixel(const T* pixel, int64_t depth) {
  const char* p = reinterpret_cast<const char*>(pixel);
  const int64_t bytes = depth * static_cast<int64_t>(sizeof(T));
  for (int64_t offset = 0; offset < bytes; offset += 64) {
    __builtin_prefetch(p + offset);
  }
}

// Depths below this take the scalar loop.
constexpr int64_t kSmallDepth = 8;

// The kBoxesLanes partial sums of the four coordinates of one box.
struct alignas(64) LaneSums {
  double s[4][kBoxesLanes];
};

// Adds the terms of `len` consecutive channels of one sample to lanes
// [0, len) of the given partial sums (the caller offsets them). len <=
// kBoxesLanes, so every channel has its own lane and the loop vectorizes.
template <typename T>
inline void AccumulateChannels(
    const T* __restrict top_left, const T* __restrict top_right,
    const T* __restrict bottom_left, const T* __restrict bottom_right,
    const float* __restrict grads, int64_t len, double ly, double lx,
    EdgeWeights wy, EdgeWeights wx, double* __restrict s0,
    double* __restrict s1, double* __restrict s2, double* __restrict s3) {
  for (int64_t k = 0; k < len; ++k) {
    const Slopes slopes =
        MakeSlopes(ImageAt(top_left, k), ImageAt(top_right, k),
                   ImageAt(bottom_left, k), ImageAt(bottom_right, k), ly, lx);
    const BoxTerms t = MakeBoxTerms(slopes, ImageValue(grads[k]), wy, wx);
    s0[k] += t.v[0];
    s1[k] += t.v[1];
    s2[k] += t.v[2];
    s3[k] += t.v[3];
  }
}

// Half rows go through float: each row's values are converted first (F16C
// where the instruction set has it; exact either way, and a half is never a
// subnormal float), then summed by the float loop: the same bits, faster.
inline void HalfRowToFloat(const Half* __restrict src, int64_t len,
                           float* __restrict dst) {
  const uint16_t* bits = reinterpret_cast<const uint16_t*>(src);
  int64_t k = 0;
#if defined(__F16C__)
  for (; k + 8 <= len; k += 8) {
    _mm256_storeu_ps(dst + k, _mm256_cvtph_ps(_mm_loadu_si128(
                                  reinterpret_cast<const __m128i*>(bits + k))));
  }
#endif
  for (; k < len; ++k) dst[k] = HalfBitsToFloat(bits[k]);
}

template <>
inline void AccumulateChannels<Half>(
    const Half* __restrict top_left, const Half* __restrict top_right,
    const Half* __restrict bottom_left, const Half* __restrict bottom_right,
    const float* __restrict grads, int64_t len, double ly, double lx,
    EdgeWeights wy, EdgeWeights wx, double* __restrict s0,
    double* __restrict s1, double* __restrict s2, double* __restrict s3) {
  alignas(64) float rows[4][kBoxesLanes];
  HalfRowToFloat(top_left, len, rows[0]);
  HalfRowToFloat(top_right, len, rows[1]);
  HalfRowToFloat(bottom_left, len, rows[2]);
  HalfRowToFloat(bottom_right, len, rows[3]);
  AccumulateChannels<float>(rows[0], rows[1], rows[2], rows[3], grads, len, ly,
                            lx, wy, wx, s0, s1, s2, s3);
}

template <typename T>
void GradBoxesRange(const GradBoxesArgs& args, const T* image, float* output,
                    int64_t begin, int64_t end, LaneSums* sums,
                    std::vector<AxisTaps>* rows, std::vector<AxisTaps>* cols) {
  const int64_t ch = args.crop_height, cw = args.crop_width;
  const int64_t height = args.height, width = args.width, depth = args.depth;
  for (int64_t n = begin; n < end; ++n) {
    for (int k = 0; k < 4; ++k) {
      std::fill(sums->s[k], sums->s[k] + kBoxesLanes, 0.0);
    }
    const float* box = args.boxes + n * 4;
    const int64_t b = args.box_ind[n];
    ValidAxisTaps(FlushSubnormal(box[0]), FlushSubnormal(box[2]), height, ch,
                  rows);
    ValidAxisTaps(FlushSubnormal(box[1]), FlushSubnormal(box[3]), width, cw,
                  cols);
    const int64_t num_rows = static_cast<int64_t>(rows->size());
    const int64_t num_cols = static_cast<int64_t>(cols->size());
    const T* image_b = image + b * height * width * depth;
    auto row_ptr = [&](int64_t r) { return image_b + r * width * depth; };
    for (int64_t r = 0; r < num_rows; ++r) {
      const AxisTaps& ry = (*rows)[r];
      const T* top_row = row_ptr(ry.lo);
      const T* bottom_row = row_ptr(ry.hi);
      const float* grads_row = args.grads + (n * ch + ry.index) * cw * depth;
      for (int64_t c = 0; c < num_cols; ++c) {
        const AxisTaps& cx = (*cols)[c];
        // The image is read pixel by pixel at scattered places: fetch the
        // next sample's four pixels while this one is summed.
        const bool last_col = c + 1 == num_cols;
        if (depth >= kSmallDepth && (!last_col || r + 1 < num_rows)) {
          const AxisTaps& next_y = last_col ? (*rows)[r + 1] : ry;
          const AxisTaps& next_x = last_col ? (*cols)[0] : (*cols)[c + 1];
          PrefetchPixel(row_ptr(next_y.lo) + next_x.lo * depth, depth);
          PrefetchPixel(row_ptr(next_y.lo) + next_x.hi * depth, depth);
          PrefetchPixel(row_ptr(next_y.hi) + next_x.lo * depth, depth);
          PrefetchPixel(row_ptr(next_y.hi) + next_x.hi * depth, depth);
        }
        const int64_t i0 = (ry.index * cw + cx.index) * depth;
        const T* tl = top_row + cx.lo * depth;
        const T* tr = top_row + cx.hi * depth;
        const T* bl = bottom_row + cx.lo * depth;
        const T* br = bottom_row + cx.hi * depth;
        const float* g = grads_row + cx.index * depth;
        if (depth < kSmallDepth) {
          // Few channels: a plain loop costs less than the vector loop's
          // set-up.
          for (int64_t d = 0; d < depth; ++d) {
            const int64_t lane = (i0 + d) % kBoxesLanes;
            const BoxTerms t = MakeBoxTerms(
                MakeSlopes(ImageAt(tl, d), ImageAt(tr, d), ImageAt(bl, d),
                           ImageAt(br, d), ry.frac, cx.frac),
                ImageValue(g[d]), ry.weights, cx.weights);
            for (int k = 0; k < 4; ++k) sums->s[k][lane] += t.v[k];
          }
          continue;
        }
        int64_t lane = i0 % kBoxesLanes;
        for (int64_t d = 0; d < depth;) {
          const int64_t len = std::min(depth - d, kBoxesLanes - lane);
          AccumulateChannels(tl + d, tr + d, bl + d, br + d, g + d, len,
                             ry.frac, cx.frac, ry.weights, cx.weights,
                             sums->s[0] + lane, sums->s[1] + lane,
                             sums->s[2] + lane, sums->s[3] + lane);
          d += len;
          lane = 0;
        }
      }
    }
    for (int k = 0; k < 4; ++k) {
      output[n * 4 + k] = static_cast<float>(ReduceLanes(sums->s[k]));
    }
  }
}

}  // namespace

template <typename T>
void GradBoxes(const GradBoxesArgs& args, const T* image, float* output,
               const ParallelRunner& runner) {
  if (args.num_boxes <= 0) return;
  // Units of whole boxes with roughly 64k terms each (at least one box), so
  // that tiny boxes do not pay one scheduling step each.
  const int64_t terms =
      std::max<int64_t>(1, args.crop_height * args.crop_width * args.depth);
  const int64_t boxes_per_unit =
      std::max<int64_t>(1, std::min<int64_t>(args.num_boxes, 65536 / terms));
  const int64_t num_units =
      (args.num_boxes + boxes_per_unit - 1) / boxes_per_unit;
  runner.parallel_for(num_units, [&](int64_t unit_begin, int64_t unit_end) {
    LaneSums sums;
    std::vector<AxisTaps> rows, cols;
    GradBoxesRange(args, image, output, unit_begin * boxes_per_unit,
                   std::min(args.num_boxes, unit_end * boxes_per_unit), &sums,
                   &rows, &cols);
  });
}
}  // namespace CRG_ISA_NAMESPACE
}  // namespace crop_and_resize_grad

#endif  // CROP_AND_RESIZE_GRAD_CC_CORE_CPU_GRAD_BOXES_IMPL_H_
