// CPU kernel. The image rows are cut into bands (and wide rows into channel
// blocks); one work unit owns one band x block of the output and gathers, in
// TF's serial order, every sample row that touches it. No two units write the
// same element and every element sees its contributions in (box, crop row,
// crop column, corner) order, so the result is race-free and bitwise
// independent of the thread count.
#include "cc/crop_and_resize_grad_cpu.h"

#include <math.h>

#include <algorithm>
#include <string>
#include <type_traits>
#include <vector>

#include "cc/float16_convert_cpu.h"

namespace crop_and_resize_grad {
namespace {

// A valid sample row (box, crop row) listed under one band it touches.
struct SampleRow {
  int64_t band;  // Sort key.
  int64_t box;
  int64_t sample_row;  // box * crop_height + cy: the grads row to read.
  int64_t top;         // Flat image row (b * height + y) of the upper tap.
  int64_t bottom;      // Lower tap; == top for nearest or integer coordinates.
  float frac;          // ly; 0 for nearest.
};

// One crop column of one box: where it lands along x.
struct ColumnTap {
  int64_t left;
  int64_t right;
  float frac;
  bool valid;
};

// How the output is cut into work units.
struct Tiling {
  int64_t band_rows;  // Image rows per unit.
  int64_t num_bands;
  int64_t block_depth;  // Channels per unit.
  int64_t num_blocks;
};

// Keeps a unit's output slice in L2, and makes enough units to balance.
template <typename Acc>
Tiling ChooseTiling(int64_t rows, int64_t width, int64_t depth) {
  constexpr int64_t kRowBlockBytes = 256 << 10;
  constexpr int64_t kUnitBytes = 512 << 10;
  constexpr int64_t kMaxBandRows = 8;
  constexpr int64_t kMinUnits = 16;
  Tiling t;
  const int64_t pixel_bytes = width * static_cast<int64_t>(sizeof(Acc));
  t.block_depth = depth;
  if (pixel_bytes * depth > kRowBlockBytes) {
    t.block_depth =
        std::max<int64_t>(16, kRowBlockBytes / pixel_bytes / 16 * 16);
    t.block_depth = std::min(t.block_depth, depth);
  }
  t.num_blocks = (depth + t.block_depth - 1) / t.block_depth;
  const int64_t slice_bytes = std::max<int64_t>(1, pixel_bytes * t.block_depth);
  t.band_rows = std::clamp<int64_t>(kUnitBytes / slice_bytes, 1, kMaxBandRows);
  t.band_rows = std::min(t.band_rows,
                         std::max<int64_t>(1, rows * t.num_blocks / kMinUnits));
  t.num_bands = (rows + t.band_rows - 1) / t.band_rows;
  return t;
}

// Every valid sample row, listed under each band it touches (one or two),
// sorted by band and, within a band, in (box, crop row) order. Memory is
// proportional to the input, not to the image.
std::vector<SampleRow> ListSampleRows(const GradImageArgs& a,
                                      int64_t band_rows) {
  std::vector<SampleRow> items;
  items.reserve(a.num_boxes * a.crop_height);
  for (int64_t n = 0; n < a.num_boxes; ++n) {
    const float y1 = a.boxes[n * 4 + 0];
    const float y2 = a.boxes[n * 4 + 2];
    const int64_t row_base = static_cast<int64_t>(a.box_ind[n]) * a.height;
    for (int64_t cy = 0; cy < a.crop_height; ++cy) {
      const AxisSample s =
          MakeAxisSample(y1, y2, a.height, a.crop_height, cy, a.method);
      if (!s.valid) continue;
      SampleRow item{0,
                     n,
                     n * a.crop_height + cy,
                     row_base + s.taps.lo,
                     row_base + s.taps.hi,
                     s.taps.frac};
      item.band = item.top / band_rows;
      items.push_back(item);
      if (item.bottom / band_rows != item.band) {
        item.band = item.bottom / band_rows;
        items.push_back(item);
      }
    }
  }
  // Stable: keeps the serial order within each band.
  std::stable_sort(
      items.begin(), items.end(),
      [](const SampleRow& l, const SampleRow& r) { return l.band < r.band; });
  return items;
}

std::vector<ColumnTap> ComputeColumnTaps(const GradImageArgs& a) {
  std::vector<ColumnTap> taps(a.num_boxes * a.crop_width);
  for (int64_t n = 0; n < a.num_boxes; ++n) {
    const float x1 = a.boxes[n * 4 + 1];
    const float x2 = a.boxes[n * 4 + 3];
    for (int64_t cx = 0; cx < a.crop_width; ++cx) {
      const AxisSample s =
          MakeAxisSample(x1, x2, a.width, a.crop_width, cx, a.method);
      taps[n * a.crop_width + cx] =
          ColumnTap{s.taps.lo, s.taps.hi, s.taps.frac, s.valid};
    }
  }
  return taps;
}

// Accumulator type: float for float/half/bfloat16, double for double.
template <typename T>
struct AccumulatorOf {
  using type = float;
};
template <>
struct AccumulatorOf<double> {
  using type = double;
};

// The per-sample update of one crop pixel, over n channels, in TF's operation
// order: dtop = (1 - ly) g, dbottom = ly g, then (1 - lx) and lx of each, added
// top-left, top-right, bottom-left, bottom-right. Each variant gets pointers
// that are distinct by construction, so its loop vectorizes; where two
// corners coincide their adds stay in that order on one pointer.
template <typename Acc>
inline void UpdateFourCorners(const float* __restrict g, float wt, float wb,
                              float wl, float wr, Acc* __restrict tl,
                              Acc* __restrict tr, Acc* __restrict bl,
                              Acc* __restrict br, int64_t n) {
  const Acc at = wt, ab = wb, al = wl, ar = wr;
  for (int64_t d = 0; d < n; ++d) {
    const Acc dtop = at * static_cast<Acc>(g[d]);
    const Acc dbottom = ab * static_cast<Acc>(g[d]);
    tl[d] += al * dtop;
    tr[d] += ar * dtop;
    bl[d] += al * dbottom;
    br[d] += ar * dbottom;
  }
}

// Two weights along one axis, both landing on each of two distinct pixels:
// p[d] += w0 * (u0 g), q[d] += w1 * (u0 g), then p += w0 * (u1 g), q += ...
// Covers top == bottom (p, q = left, right) with u = row weights.
template <typename Acc>
inline void UpdateSameRow(const float* __restrict g, float wt, float wb,
                          float wl, float wr, Acc* __restrict left,
                          Acc* __restrict right, int64_t n) {
  const Acc at = wt, ab = wb, al = wl, ar = wr;
  for (int64_t d = 0; d < n; ++d) {
    const Acc dtop = at * static_cast<Acc>(g[d]);
    const Acc dbottom = ab * static_cast<Acc>(g[d]);
    Acc l = left[d], r = right[d];
    l += al * dtop;
    r += ar * dtop;
    l += al * dbottom;
    r += ar * dbottom;
    left[d] = l;
    right[d] = r;
  }
}

// left == right, top != bottom.
template <typename Acc>
inline void UpdateSameColumn(const float* __restrict g, float wt, float wb,
                             float wl, float wr, Acc* __restrict top,
                             Acc* __restrict bottom, int64_t n) {
  const Acc at = wt, ab = wb, al = wl, ar = wr;
  for (int64_t d = 0; d < n; ++d) {
    const Acc dtop = at * static_cast<Acc>(g[d]);
    const Acc dbottom = ab * static_cast<Acc>(g[d]);
    Acc t = top[d], b = bottom[d];
    t += al * dtop;
    t += ar * dtop;
    b += al * dbottom;
    b += ar * dbottom;
    top[d] = t;
    bottom[d] = b;
  }
}

// All four corners on one pixel.
template <typename Acc>
inline void UpdateOnePixel(const float* __restrict g, float wt, float wb,
                           float wl, float wr, Acc* __restrict p, int64_t n) {
  const Acc at = wt, ab = wb, al = wl, ar = wr;
  for (int64_t d = 0; d < n; ++d) {
    const Acc dtop = at * static_cast<Acc>(g[d]);
    const Acc dbottom = ab * static_cast<Acc>(g[d]);
    Acc v = p[d];
    v += al * dtop;
    v += ar * dtop;
    v += al * dbottom;
    v += ar * dbottom;
    p[d] = v;
  }
}

// One row weight w (the other row is outside this unit).
template <typename Acc>
inline void UpdateOneRow(const float* __restrict g, float w, float wl, float wr,
                         Acc* __restrict left, Acc* __restrict right,
                         int64_t n) {
  const Acc aw = w, al = wl, ar = wr;
  for (int64_t d = 0; d < n; ++d) {
    const Acc dy = aw * static_cast<Acc>(g[d]);
    left[d] += al * dy;
    right[d] += ar * dy;
  }
}

template <typename Acc>
inline void UpdateOneRowOnePixel(const float* __restrict g, float w, float wl,
                                 float wr, Acc* __restrict p, int64_t n) {
  const Acc aw = w, al = wl, ar = wr;
  for (int64_t d = 0; d < n; ++d) {
    const Acc dy = aw * static_cast<Acc>(g[d]);
    Acc v = p[d];
    v += al * dy;
    v += ar * dy;
    p[d] = v;
  }
}

template <typename Acc>
inline void AddNearest(const float* __restrict g, Acc* __restrict p,
                       int64_t n) {
  for (int64_t d = 0; d < n; ++d) p[d] += static_cast<Acc>(g[d]);
}

// Adds one sample row to the rows of [row_begin, row_end) it touches.
// acc_rows points at row_begin; pixel x of row r is at
// acc_rows + (r - row_begin) * row_stride + x * pixel_stride.
template <typename Acc>
void AddSampleRow(const SampleRow& s, const float* g_row, const ColumnTap* taps,
                  int64_t crop_width, int64_t depth, int64_t nd, Method method,
                  int64_t row_begin, int64_t row_end, Acc* acc_rows,
                  int64_t row_stride, int64_t pixel_stride) {
  const bool top_in = s.top >= row_begin && s.top < row_end;
  const bool bottom_in = s.bottom >= row_begin && s.bottom < row_end;
  Acc* top = acc_rows + (s.top - row_begin) * row_stride;
  Acc* bottom = acc_rows + (s.bottom - row_begin) * row_stride;
  const float wt = 1.0f - s.frac;
  const float wb = s.frac;
  for (int64_t cx = 0; cx < crop_width; ++cx) {
    const ColumnTap& t = taps[cx];
    if (!t.valid) continue;
    const float* g = g_row + cx * depth;
    const int64_t l = t.left * pixel_stride;
    const int64_t r = t.right * pixel_stride;
    if (method == Method::kNearest) {
      AddNearest(g, top + l, nd);
      continue;
    }
    const float wl = 1.0f - t.frac;
    const float wr = t.frac;
    const bool same_col = t.left == t.right;
    if (top_in && bottom_in) {
      if (s.top == s.bottom) {
        if (same_col) {
          UpdateOnePixel(g, wt, wb, wl, wr, top + l, nd);
        } else {
          UpdateSameRow(g, wt, wb, wl, wr, top + l, top + r, nd);
        }
      } else if (same_col) {
        UpdateSameColumn(g, wt, wb, wl, wr, top + l, bottom + l, nd);
      } else {
        UpdateFourCorners(g, wt, wb, wl, wr, top + l, top + r, bottom + l,
                          bottom + r, nd);
      }
    } else {
      Acc* row = top_in ? top : bottom;
      const float w = top_in ? wt : wb;
      if (same_col) {
        UpdateOneRowOnePixel(g, w, wl, wr, row + l, nd);
      } else {
        UpdateOneRow(g, w, wl, wr, row + l, row + r, nd);
      }
    }
  }
}

template <typename T>
void GradImage(const GradImageArgs& a, T* output,
               const ParallelRunner& runner) {
  using Acc = typename AccumulatorOf<T>::type;
  // Float and double accumulate in the output itself; the 16-bit types go
  // through a float buffer and are rounded once.
  constexpr bool kDirect = std::is_same<T, Acc>::value;

  const int64_t rows = a.batch * a.height;
  const int64_t width = a.width;
  const int64_t depth = a.depth;
  if (rows == 0 || width == 0 || depth == 0) return;

  const Tiling tiling = ChooseTiling<Acc>(rows, width, depth);
  const std::vector<SampleRow> items = ListSampleRows(a, tiling.band_rows);
  const std::vector<ColumnTap> column_taps = ComputeColumnTaps(a);
  // Where each band's items start.
  std::vector<int64_t> band_begin(tiling.num_bands + 1, 0);
  for (const SampleRow& s : items) ++band_begin[s.band + 1];
  for (int64_t b = 0; b < tiling.num_bands; ++b) {
    band_begin[b + 1] += band_begin[b];
  }

  const int64_t num_units = tiling.num_bands * tiling.num_blocks;
  const int64_t items_per_band =
      static_cast<int64_t>(items.size()) / tiling.num_bands + 1;
  const int64_t cost_per_unit =
      tiling.band_rows * width * tiling.block_depth +
      items_per_band * a.crop_width * tiling.block_depth * 6;

  runner(num_units, cost_per_unit, [&](int64_t unit_begin, int64_t unit_end) {
    std::vector<Acc> buffer;
    if (!kDirect) {
      buffer.resize(tiling.band_rows * width * tiling.block_depth);
    }
    for (int64_t unit = unit_begin; unit < unit_end; ++unit) {
      const int64_t band = unit / tiling.num_blocks;
      const int64_t d0 = (unit % tiling.num_blocks) * tiling.block_depth;
      const int64_t nd = std::min(tiling.block_depth, depth - d0);
      const int64_t row_begin = band * tiling.band_rows;
      const int64_t row_end = std::min(rows, row_begin + tiling.band_rows);
      T* out = output + row_begin * width * depth + d0;
      Acc* acc;
      int64_t pixel_stride;
      if constexpr (kDirect) {
        acc = out;
        pixel_stride = depth;
      } else {
        acc = buffer.data();
        pixel_stride = nd;
      }
      const int64_t row_stride = width * pixel_stride;
      const int64_t pixels = (row_end - row_begin) * width;
      for (int64_t p = 0; p < pixels; ++p) {
        std::fill_n(acc + p * pixel_stride, nd, Acc(0));
      }
      for (int64_t i = band_begin[band]; i < band_begin[band + 1]; ++i) {
        const SampleRow& s = items[i];
        if (i + 1 < band_begin[band + 1]) {
          // The next grads row is a jump in memory; start fetching it.
          __builtin_prefetch(
              a.grads + items[i + 1].sample_row * a.crop_width * depth + d0);
        }
        AddSampleRow(s, a.grads + s.sample_row * a.crop_width * depth + d0,
                     column_taps.data() + s.box * a.crop_width, a.crop_width,
                     depth, nd, a.method, row_begin, row_end, acc, row_stride,
                     pixel_stride);
      }
      if constexpr (!kDirect) {
        for (int64_t p = 0; p < pixels; ++p) {
          ConvertFromFloat(acc + p * pixel_stride, out + p * depth, nd);
        }
      }
    }
  });
}

}  // namespace

void RunSerially(int64_t num_units, int64_t /*cost_per_unit*/,
                 const std::function<void(int64_t, int64_t)>& work) {
  if (num_units > 0) work(0, num_units);
}

CheckResult CheckBoxValues(const float* boxes, const int32_t* box_ind,
                           int64_t num_boxes, int64_t batch) {
  for (int64_t n = 0; n < num_boxes; ++n) {
    for (int k = 0; k < 4; ++k) {
      if (!isfinite(boxes[n * 4 + k])) {
        return {ErrorCode::kInvalidArgument,
                "boxes must be finite, but boxes[" + std::to_string(n) + ", " +
                    std::to_string(k) + "] is " +
                    std::to_string(boxes[n * 4 + k])};
      }
    }
    const int64_t b = box_ind[n];
    if (b < 0 || b >= batch) {
      return {ErrorCode::kOutOfRange,
              "box_index has values outside [0, batch_size): box_ind[" +
                  std::to_string(n) + "] = " + std::to_string(b) +
                  " with batch_size " + std::to_string(batch)};
    }
  }
  return {};
}

template <typename T>
void CropAndResizeGradImageCpu(const GradImageArgs& args, T* output,
                               const ParallelRunner& runner) {
  GradImage<T>(args, output, runner);
}

template void CropAndResizeGradImageCpu<float>(const GradImageArgs&, float*,
                                               const ParallelRunner&);
template void CropAndResizeGradImageCpu<double>(const GradImageArgs&, double*,
                                                const ParallelRunner&);
template void CropAndResizeGradImageCpu<Half>(const GradImageArgs&, Half*,
                                              const ParallelRunner&);
template void CropAndResizeGradImageCpu<BFloat16>(const GradImageArgs&,
                                                  BFloat16*,
                                                  const ParallelRunner&);

}  // namespace crop_and_resize_grad
