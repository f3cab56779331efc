// CPU kernel of the boxes gradient: parallel over ranges of boxes, each box
// summed in the fixed order of cc/core/grad_boxes_math.h.
#include "cc/core/cpu/grad_boxes.h"

#include <stdint.h>

#include <algorithm>
#include <vector>

#include "cc/core/grad_boxes_math.h"

namespace crop_and_resize_grad {
namespace {

// Where one crop column of a box lands along x.
struct ColumnSample {
  bool valid;
  int64_t left;
  int64_t right;
  double lx;
  EdgeWeights weights;
};

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
    const Slopes slopes = MakeSlopes(
        ImageValue(top_left[k]), ImageValue(top_right[k]),
        ImageValue(bottom_left[k]), ImageValue(bottom_right[k]), ly, lx);
    const BoxTerms t = MakeBoxTerms(slopes, ImageValue(grads[k]), wy, wx);
    s0[k] += t.v[0];
    s1[k] += t.v[1];
    s2[k] += t.v[2];
    s3[k] += t.v[3];
  }
}

template <typename T>
void GradBoxesRange(const GradBoxesArgs& args, const T* image, float* output,
                    int64_t begin, int64_t end, LaneSums* sums,
                    std::vector<ColumnSample>* columns) {
  const int64_t ch = args.crop_height, cw = args.crop_width;
  const int64_t height = args.height, width = args.width, depth = args.depth;
  columns->resize(cw);
  for (int64_t n = begin; n < end; ++n) {
    for (int k = 0; k < 4; ++k) {
      std::fill(sums->s[k], sums->s[k] + kBoxesLanes, 0.0);
    }
    const float* box = args.boxes + n * 4;
    const float y1 = FlushSubnormal(box[0]), x1 = FlushSubnormal(box[1]);
    const float y2 = FlushSubnormal(box[2]), x2 = FlushSubnormal(box[3]);
    const int64_t b = args.box_ind[n];
    for (int64_t x = 0; x < cw; ++x) {
      const AxisSample sx =
          MakeAxisSample(x1, x2, width, cw, x, Method::kBilinear);
      ColumnSample& c = (*columns)[x];
      c.valid = sx.valid;
      c.left = ClampTap(sx.taps.lo, width);
      c.right = ClampTap(sx.taps.hi, width);
      c.lx = static_cast<double>(sx.taps.frac);
      c.weights = MakeEdgeWeights(width, cw, x);
    }
    for (int64_t y = 0; y < ch; ++y) {
      const AxisSample sy =
          MakeAxisSample(y1, y2, height, ch, y, Method::kBilinear);
      if (!sy.valid) continue;
      const EdgeWeights wy = MakeEdgeWeights(height, ch, y);
      const double ly = static_cast<double>(sy.taps.frac);
      const T* top_row =
          image + (b * height + ClampTap(sy.taps.lo, height)) * width * depth;
      const T* bottom_row =
          image + (b * height + ClampTap(sy.taps.hi, height)) * width * depth;
      const float* grads_row = args.grads + (n * ch + y) * cw * depth;
      for (int64_t x = 0; x < cw; ++x) {
        const ColumnSample& c = (*columns)[x];
        if (!c.valid) continue;
        const int64_t i0 = (y * cw + x) * depth;
        int64_t lane = i0 % kBoxesLanes;
        for (int64_t d = 0; d < depth;) {
          const int64_t len = std::min(depth - d, kBoxesLanes - lane);
          AccumulateChannels(
              top_row + c.left * depth + d, top_row + c.right * depth + d,
              bottom_row + c.left * depth + d, bottom_row + c.right * depth + d,
              grads_row + x * depth + d, len, ly, c.lx, wy, c.weights,
              sums->s[0] + lane, sums->s[1] + lane, sums->s[2] + lane,
              sums->s[3] + lane);
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
void CropAndResizeGradBoxesCpu(const GradBoxesArgs& args, const T* image,
                               float* output, const ParallelRunner& runner) {
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
    std::vector<ColumnSample> columns;
    GradBoxesRange(args, image, output, unit_begin * boxes_per_unit,
                   std::min(args.num_boxes, unit_end * boxes_per_unit), &sums,
                   &columns);
  });
}

template void CropAndResizeGradBoxesCpu<float>(const GradBoxesArgs&,
                                               const float*, float*,
                                               const ParallelRunner&);
template void CropAndResizeGradBoxesCpu<double>(const GradBoxesArgs&,
                                                const double*, float*,
                                                const ParallelRunner&);
template void CropAndResizeGradBoxesCpu<Half>(const GradBoxesArgs&, const Half*,
                                              float*, const ParallelRunner&);
template void CropAndResizeGradBoxesCpu<BFloat16>(const GradBoxesArgs&,
                                                  const BFloat16*, float*,
                                                  const ParallelRunner&);

}  // namespace crop_and_resize_grad
