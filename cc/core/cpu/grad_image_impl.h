// The CPU kernel's implementation, compiled once per instruction set by
// grad_image_isa.cc inside namespace CRG_ISA_NAMESPACE (the
// results are bitwise identical: no FMA contraction, element-wise math only).
//
// The image rows are cut into bands (and wide rows into channel blocks); one
// work unit owns one band x block of the output and gathers, in TF's serial
// order, every sample row that touches it. No two units write the same element
// and every element sees its contributions in (box, crop row, crop column,
// corner) order, so the result is race-free and bitwise independent of the
// thread count.
#ifndef CROP_AND_RESIZE_GRAD_CC_CORE_CPU_GRAD_IMAGE_IMPL_H_
#define CROP_AND_RESIZE_GRAD_CC_CORE_CPU_GRAD_IMAGE_IMPL_H_

#ifndef CRG_ISA_NAMESPACE
#error "Define CRG_ISA_NAMESPACE before including this header."
#endif

#include <string.h>

#include <algorithm>
#include <memory>
#include <type_traits>
#include <vector>

#include "cc/core/cpu/float16_convert.h"
#include "cc/core/cpu/grad_image.h"

// Build-time tuning switches; docs/tuning.md says what each one trades.
// They change speed and temporaries, never the result. CRG_UNIT_KB is in
// grad_image.h, which publishes the accumulator bound it sets.
#ifndef CRG_PREFETCH_DISTANCE
#define CRG_PREFETCH_DISTANCE 1
#endif
#ifndef CRG_UNITS_PER_THREAD
#define CRG_UNITS_PER_THREAD 4
#endif

namespace crop_and_resize_grad {
namespace CRG_ISA_NAMESPACE {

// One sample row (box, crop row), stored at index box * crop_height + cy:
// that index is also the row of grads it reads.
struct SampleRow {
  int64_t box;
  int64_t top;     // Flat image row (b * height + y) of the upper tap.
  int64_t bottom;  // Lower tap; == top for nearest or integer coordinates.
  float frac;      // ly; 0 for nearest.
};

// One crop column of one box: where it lands along x.
struct ColumnTap {
  int64_t left;
  int64_t right;
  float frac;
  bool valid;
};

// The bounds grad_image.h publishes: a SampleRow, its 8 B band code, at most
// 8 B of per-task counts and two 8 B listings per (box, crop row); a
// ColumnTap per (box, crop column).
static_assert(sizeof(SampleRow) + 4 * sizeof(int64_t) <=
                  kTemporaryBytesPerSampleRow,
              "update kTemporaryBytesPerSampleRow in grad_image.h");
static_assert(sizeof(ColumnTap) <= kTemporaryBytesPerCropColumn,
              "update kTemporaryBytesPerCropColumn in grad_image.h");

// How the output is cut into work units.
struct Tiling {
  int64_t band_rows;  // Image rows per unit.
  int64_t num_bands;
  int64_t block_depth;  // Channels per unit.
  int64_t num_blocks;
};

// Cuts the output into units: bands of whole rows (all channels, unless a
// row alone overflows the row budget), as tall as one unit of cache allows,
// since a sample row whose taps fall in two bands is read twice. Contiguous
// grads reads beat narrower channel blocks with taller bands (measured).
// Rows stay whole up to one unit: a band of a single whole row, in place,
// beats two-row bands of channel blocks in a per-thread buffer, although every
// sample row whose taps differ is then read twice (maskrcnn-14 float64, 304
// KiB rows: 10-16% faster on one and two threads; float32 and half rows of
// that size 16% and 8%; measured). A wider row is cut into channel blocks of
// half a unit, so that bands of blocks hold at least two rows. When the
// output outweighs grads (large, sparsely sampled feature maps), writing it in
// long contiguous runs matters more than re-reading straddling sample rows,
// and a whole row of up to four units (2 MiB) is one band (1.5-2x on fpn-p2
// for float and double, measured). Bands then shrink, and channels split,
// until every thread has CRG_UNITS_PER_THREAD units to balance (one thread
// needs only one). But a band of 8 to 15 rows is not halved once every thread
// has two units: in bands under 8 rows, over an eighth of the sample rows
// straddle two bands and are read twice (overlap-1img, 32 rows, float32,
// float64 and half, one-process A/Bs in both orders: on two threads four
// bands of 8 rows took 0.92-0.96x the time of eight bands of 4; on one thread
// two bands of 16 took 0.82-0.93x the time of four bands of 8). The tiling
// never changes the result.
template <typename Acc>
Tiling ChooseTiling(int64_t rows, int64_t width, int64_t depth, int num_threads,
                    bool output_outweighs_grads) {
  const int64_t whole_row_bytes = output_outweighs_grads
                                      ? kWholeRowAccumulatorBytes
                                      : kUnitAccumulatorBytes;
  const int64_t row_block_bytes = output_outweighs_grads
                                      ? kWholeRowAccumulatorBytes
                                      : kUnitAccumulatorBytes / 2;
  constexpr int64_t kMaxBandRows = 16;
  constexpr int64_t kTallBandRows = 8;
  const int64_t threads = std::max(1, num_threads);
  const int64_t min_units = threads == 1 ? 1 : CRG_UNITS_PER_THREAD * threads;
  const int64_t pixel_bytes = width * static_cast<int64_t>(sizeof(Acc));
  // Narrow blocks cost per-column overhead; allow one cache line of channels
  // only when the image is so wide that four would overflow the budget.
  const int64_t kMinBlockDepth =
      pixel_bytes * static_cast<int64_t>(256 / sizeof(Acc)) > row_block_bytes
          ? static_cast<int64_t>(64 / sizeof(Acc))
          : static_cast<int64_t>(256 / sizeof(Acc));
  Tiling t;
  t.block_depth = depth;
  if (pixel_bytes * depth > whole_row_bytes) {
    t.block_depth =
        std::max<int64_t>(kMinBlockDepth, row_block_bytes / pixel_bytes /
                                              kMinBlockDepth * kMinBlockDepth);
    t.block_depth = std::min(t.block_depth, depth);
  }
  t.band_rows = std::clamp<int64_t>(
      kUnitAccumulatorBytes / (pixel_bytes * t.block_depth), 1, kMaxBandRows);
  auto count = [&] {
    t.num_blocks = (depth + t.block_depth - 1) / t.block_depth;
    t.num_bands = (rows + t.band_rows - 1) / t.band_rows;
    return t.num_blocks * t.num_bands;
  };
  while (count() < min_units) {
    if (t.band_rows >= kTallBandRows && t.band_rows < 2 * kTallBandRows &&
        count() >= 2 * threads) {
      break;
    } else if (t.band_rows > 1) {
      t.band_rows /= 2;
    } else if (t.block_depth >= 2 * kMinBlockDepth) {
      t.block_depth = (t.block_depth / 2 + kMinBlockDepth - 1) /
                      kMinBlockDepth * kMinBlockDepth;
    } else {
      break;
    }
  }
  return t;
}

// The set-up of a call: where every sample row and crop column lands, and
// for each band the sample rows that touch it.
struct Samples {
  std::unique_ptr<SampleRow[]> rows;     // [box * crop_height + cy]
  std::unique_ptr<ColumnTap[]> columns;  // [box * crop_width + cx]
  std::vector<int64_t> band_begin;       // Band b: [band_begin[b], [b + 1]).
  std::unique_ptr<int64_t[]> listed;     // Indices into rows, band by band.
};

// Boxes per task of the set-up passes: enough work to be worth a thread's
// wake-up, few enough tasks to balance.
constexpr int64_t kBoxesPerSetupTask = 64;

// The sample math (a division and two roundings per crop row and column) runs
// once, in a parallel pass over runs of boxes (tasks). Each valid sample row is
// then listed under each band it touches (one or two), grouped by band and,
// within a band, in (box, crop row) order: a stable counting sort, parallel
// too. Each task counts its listings per band in the first pass; a serial
// prefix over (band, task) turns the counts into write positions; a second
// parallel pass writes each task's listings. Temporaries: per (box, crop
// row) 32 B (SampleRow) and 8 B (band code); 8 B per listing; 24 B
// (ColumnTap) per (box, crop column); 8 B per band (offsets); and the counts,
// 8 B per task and band, which the cap on tasks (num_rows / num_bands, at
// least one) keeps within 8 B per (box, crop row) or per band.
Samples ComputeSamples(const GradImageArgs& a, int64_t band_rows,
                       int64_t num_bands, const ParallelRunner& runner) {
  const int64_t num_rows = a.num_boxes * a.crop_height;
  Samples out;
  // new T[] leaves these trivially constructible structs unwritten; the
  // first pass writes every element.
  out.rows.reset(new SampleRow[num_rows]);
  out.columns.reset(new ColumnTap[a.num_boxes * a.crop_width]);
  // 2 * (band of the upper tap) + 1 if the lower tap lies in the next band
  // (it is the upper tap or the row below), or -1 if the row is not sampled.
  std::unique_ptr<int64_t[]> band_code(new int64_t[num_rows]);
  int64_t boxes_per_task = kBoxesPerSetupTask;
  int64_t tasks = (a.num_boxes + boxes_per_task - 1) / boxes_per_task;
  const int64_t max_tasks = std::max<int64_t>(1, num_rows / num_bands);
  if (tasks > max_tasks) {
    tasks = max_tasks;
    boxes_per_task = (a.num_boxes + tasks - 1) / tasks;
  }
  // position[t * num_bands + b]: task t's listings in band b, counted, then
  // where the next one goes.
  std::unique_ptr<int64_t[]> position(new int64_t[tasks * num_bands]());
  // The task loops below copy what they read into locals: their stores would
  // otherwise make the compiler reload values captured by reference, sample
  // by sample (overlap-1img's set-up, one thread: 0.53 ms instead of 0.58,
  // the fastest of 300 calls).
  runner.parallel_for(tasks, [&](int64_t task_begin, int64_t task_end) {
    const GradImageArgs args = a;
    const int64_t rows_per_band = band_rows;
    const double inverse = 1.0 / static_cast<double>(rows_per_band);
    SampleRow* const sample_rows = out.rows.get();
    ColumnTap* const columns = out.columns.get();
    int64_t* const codes = band_code.get();
    // row / rows_per_band without a 64-bit division per row (it took a third
    // of this pass): a double reciprocal, off by at most one below 2^53,
    // corrected.
    auto band_of = [rows_per_band, inverse](int64_t row) {
      int64_t q = static_cast<int64_t>(static_cast<double>(row) * inverse);
      if (q * rows_per_band > row) --q;
      if ((q + 1) * rows_per_band <= row) ++q;
      return q;
    };
    for (int64_t task = task_begin; task < task_end; ++task) {
      int64_t* const count = position.get() + task * num_bands;
      const int64_t box_end =
          std::min(args.num_boxes, (task + 1) * boxes_per_task);
      for (int64_t n = task * boxes_per_task; n < box_end; ++n) {
        const float y1 = args.boxes[n * 4 + 0];
        const float x1 = args.boxes[n * 4 + 1];
        const float y2 = args.boxes[n * 4 + 2];
        const float x2 = args.boxes[n * 4 + 3];
        const int64_t row_base =
            static_cast<int64_t>(args.box_ind[n]) * args.height;
        for (int64_t cy = 0; cy < args.crop_height; ++cy) {
          const int64_t r = n * args.crop_height + cy;
          const AxisSample s = MakeAxisSample(
              y1, y2, args.height, args.crop_height, cy, args.method);
          const SampleRow row{n, row_base + s.taps.lo, row_base + s.taps.hi,
                              s.taps.frac};
          sample_rows[r] = row;
          if (!s.valid) {
            codes[r] = -1;
            continue;
          }
          const int64_t top_band = band_of(row.top);
          const bool straddles = row.bottom >= (top_band + 1) * rows_per_band;
          codes[r] = 2 * top_band + straddles;
          ++count[top_band];
          if (straddles) ++count[top_band + 1];
        }
        for (int64_t cx = 0; cx < args.crop_width; ++cx) {
          const AxisSample s = MakeAxisSample(x1, x2, args.width,
                                              args.crop_width, cx, args.method);
          columns[n * args.crop_width + cx] =
              ColumnTap{s.taps.lo, s.taps.hi, s.taps.frac, s.valid};
        }
      }
    }
  });
  out.band_begin.resize(num_bands + 1);
  int64_t total = 0;
  for (int64_t b = 0; b < num_bands; ++b) {
    out.band_begin[b] = total;
    for (int64_t task = 0; task < tasks; ++task) {
      int64_t& p = position[task * num_bands + b];
      const int64_t count = p;
      p = total;
      total += count;
    }
  }
  out.band_begin[num_bands] = total;
  out.listed.reset(new int64_t[total]);
  runner.parallel_for(tasks, [&](int64_t task_begin, int64_t task_end) {
    const int64_t* const codes = band_code.get();
    int64_t* const listed = out.listed.get();
    const int64_t crop_height = a.crop_height;
    const int64_t num_boxes = a.num_boxes;
    for (int64_t task = task_begin; task < task_end; ++task) {
      int64_t* const next = position.get() + task * num_bands;
      const int64_t row_end =
          std::min(num_boxes, (task + 1) * boxes_per_task) * crop_height;
      for (int64_t r = task * boxes_per_task * crop_height; r < row_end; ++r) {
        const int64_t code = codes[r];
        if (code < 0) continue;
        listed[next[code >> 1]++] = r;
        if (code & 1) listed[next[(code >> 1) + 1]++] = r;
      }
    }
  });
  return out;
}

// The per-sample update of one crop pixel, over n channels, in TF's operation
// order: dtop = (1 - ly) g, dbottom = ly g, then (1 - lx) and lx of each, added
// top-left, top-right, bottom-left, bottom-right. Each variant gets pointers
// that are distinct by construction, so its loop vectorizes; where two
// corners coincide their adds stay in that order on one pointer.
template <typename Acc>
inline void UpdateFourCorners(const float* __restrict g, Acc wt, Acc wb, Acc wl,
                              Acc wr, Acc* __restrict tl, Acc* __restrict tr,
                              Acc* __restrict bl, Acc* __restrict br,
                              int64_t n) {
  for (int64_t d = 0; d < n; ++d) {
    const Acc dtop = wt * static_cast<Acc>(g[d]);
    const Acc dbottom = wb * static_cast<Acc>(g[d]);
    tl[d] += wl * dtop;
    tr[d] += wr * dtop;
    bl[d] += wl * dbottom;
    br[d] += wr * dbottom;
  }
}

// Two weights along one axis, both landing on each of two distinct pixels:
// p[d] += w0 * (u0 g), q[d] += w1 * (u0 g), then p += w0 * (u1 g), q += ...
// Covers top == bottom (p, q = left, right) with u = row weights.
template <typename Acc>
inline void UpdateSameRow(const float* __restrict g, Acc wt, Acc wb, Acc wl,
                          Acc wr, Acc* __restrict left, Acc* __restrict right,
                          int64_t n) {
  for (int64_t d = 0; d < n; ++d) {
    const Acc dtop = wt * static_cast<Acc>(g[d]);
    const Acc dbottom = wb * static_cast<Acc>(g[d]);
    Acc l = left[d], r = right[d];
    l += wl * dtop;
    r += wr * dtop;
    l += wl * dbottom;
    r += wr * dbottom;
    left[d] = l;
    right[d] = r;
  }
}

// left == right, top != bottom.
template <typename Acc>
inline void UpdateSameColumn(const float* __restrict g, Acc wt, Acc wb, Acc wl,
                             Acc wr, Acc* __restrict top,
                             Acc* __restrict bottom, int64_t n) {
  for (int64_t d = 0; d < n; ++d) {
    const Acc dtop = wt * static_cast<Acc>(g[d]);
    const Acc dbottom = wb * static_cast<Acc>(g[d]);
    Acc t = top[d], b = bottom[d];
    t += wl * dtop;
    t += wr * dtop;
    b += wl * dbottom;
    b += wr * dbottom;
    top[d] = t;
    bottom[d] = b;
  }
}

// All four corners on one pixel.
template <typename Acc>
inline void UpdateOnePixel(const float* __restrict g, Acc wt, Acc wb, Acc wl,
                           Acc wr, Acc* __restrict p, int64_t n) {
  for (int64_t d = 0; d < n; ++d) {
    const Acc dtop = wt * static_cast<Acc>(g[d]);
    const Acc dbottom = wb * static_cast<Acc>(g[d]);
    Acc v = p[d];
    v += wl * dtop;
    v += wr * dtop;
    v += wl * dbottom;
    v += wr * dbottom;
    p[d] = v;
  }
}

// One row weight w (the other row is outside this unit).
template <typename Acc>
inline void UpdateOneRow(const float* __restrict g, Acc w, Acc wl, Acc wr,
                         Acc* __restrict left, Acc* __restrict right,
                         int64_t n) {
  for (int64_t d = 0; d < n; ++d) {
    const Acc dy = w * static_cast<Acc>(g[d]);
    left[d] += wl * dy;
    right[d] += wr * dy;
  }
}

template <typename Acc>
inline void UpdateOneRowOnePixel(const float* __restrict g, Acc w, Acc wl,
                                 Acc wr, Acc* __restrict p, int64_t n) {
  for (int64_t d = 0; d < n; ++d) {
    const Acc dy = w * static_cast<Acc>(g[d]);
    Acc v = p[d];
    v += wl * dy;
    v += wr * dy;
    p[d] = v;
  }
}

template <typename Acc>
inline void AddNearest(const float* __restrict g, Acc* __restrict p,
                       int64_t n) {
  for (int64_t d = 0; d < n; ++d) p[d] += static_cast<Acc>(g[d]);
}

// Which rows of a sample row a unit owns; decided once per sample row so the
// crop-column loop only branches on the column.
enum class RowCase { kTwoRows, kOneRowTwice, kOneRow, kNearest };

// kDepth > 0 fixes the channel count at compile time (nd == kDepth), so the
// channel loops of few-channel images unroll instead of running as scalar
// remainders; 0 leaves it to nd.
//
// The next sample row is usually elsewhere in memory, so it is prefetched
// column by column, spread over this row's work: each crop column's channels
// are updated in chunks of four cache lines of grads, and each chunk first
// prefetches the same four lines of the next row. A burst of a whole column's
// prefetches (16 lines at 256 channels) ahead of its update took 2-18% more
// time on fastrcnn-7, maskrcnn-14 and small-D3, AVX-512 and AVX2 alike
// (one-process A/Bs, two threads); the likely cause is the burst holding the
// line fill buffers that the accumulator's loads then wait for. Full chunks
// have a compile-time length, so their loops unroll.
template <RowCase kCase, int kDepth, typename Acc>
inline void AddColumns(const float* g_row, const float* next_g_row,
                       const ColumnTap* taps, int64_t crop_width, int64_t depth,
                       int64_t nd_any, Acc wt, Acc wb, Acc* row0, Acc* row1,
                       int64_t pixel_stride) {
  constexpr int64_t kFloatsPerLine = 64 / sizeof(float);
  constexpr int64_t kChunk = 4 * kFloatsPerLine;
  const int64_t nd = kDepth > 0 ? kDepth : nd_any;
  for (int64_t cx = 0; cx < crop_width; ++cx) {
    const float* next = next_g_row + cx * depth;
    const ColumnTap& t = taps[cx];
    if (!t.valid) {
      for (int64_t d = 0; d < nd; d += kFloatsPerLine)
        __builtin_prefetch(next + d);
      continue;
    }
    const float* g_column = g_row + cx * depth;
    const int64_t left = t.left * pixel_stride;
    const int64_t right = t.right * pixel_stride;
    const TapWeights<Acc> wx = MakeTapWeights<Acc>(t.frac);
    const bool same_col = t.left == t.right;
    // Channels [d0, d0 + n) of this column.
    auto update_chunk = [&](int64_t d0, auto n) {
      for (int64_t d = d0; d < d0 + n; d += kFloatsPerLine)
        __builtin_prefetch(next + d);
      const float* g = g_column + d0;
      const int64_t l = left + d0;
      const int64_t r = right + d0;
      if constexpr (kCase == RowCase::kNearest) {
        AddNearest(g, row0 + l, n);
      } else if constexpr (kCase == RowCase::kTwoRows) {
        if (same_col) {
          UpdateSameColumn(g, wt, wb, wx.lo, wx.hi, row0 + l, row1 + l, n);
        } else {
          UpdateFourCorners(g, wt, wb, wx.lo, wx.hi, row0 + l, row0 + r,
                            row1 + l, row1 + r, n);
        }
      } else if constexpr (kCase == RowCase::kOneRowTwice) {
        if (same_col) {
          UpdateOnePixel(g, wt, wb, wx.lo, wx.hi, row0 + l, n);
        } else {
          UpdateSameRow(g, wt, wb, wx.lo, wx.hi, row0 + l, row0 + r, n);
        }
      } else {  // kOneRow: weight wt on row0 only.
        if (same_col) {
          UpdateOneRowOnePixel(g, wt, wx.lo, wx.hi, row0 + l, n);
        } else {
          UpdateOneRow(g, wt, wx.lo, wx.hi, row0 + l, row0 + r, n);
        }
      }
    };
    int64_t d0 = 0;
    for (; d0 + kChunk <= nd; d0 += kChunk) {
      update_chunk(d0, std::integral_constant<int64_t, kChunk>());
    }
    if (d0 < nd) update_chunk(d0, nd - d0);
  }
}

// Adds one sample row to the rows of [row_begin, row_end) it touches.
// acc_rows points at row_begin; pixel x of row r is at
// acc_rows + (r - row_begin) * row_stride + x * pixel_stride.
template <int kDepth, typename Acc>
void AddSampleRow(const SampleRow& s, const float* g_row,
                  const float* next_g_row, const ColumnTap* taps,
                  int64_t crop_width, int64_t depth, int64_t nd, Method method,
                  int64_t row_begin, int64_t row_end, Acc* acc_rows,
                  int64_t row_stride, int64_t pixel_stride) {
  const bool top_in = s.top >= row_begin && s.top < row_end;
  const bool bottom_in = s.bottom >= row_begin && s.bottom < row_end;
  Acc* top = acc_rows + (s.top - row_begin) * row_stride;
  Acc* bottom = acc_rows + (s.bottom - row_begin) * row_stride;
  if (method == Method::kNearest) {
    AddColumns<RowCase::kNearest, kDepth, Acc>(g_row, next_g_row, taps,
                                               crop_width, depth, nd, Acc(1),
                                               Acc(0), top, top, pixel_stride);
    return;
  }
  const TapWeights<Acc> wy = MakeTapWeights<Acc>(s.frac);
  if (top_in && bottom_in) {
    if (s.top == s.bottom) {
      AddColumns<RowCase::kOneRowTwice, kDepth, Acc>(
          g_row, next_g_row, taps, crop_width, depth, nd, wy.lo, wy.hi, top,
          top, pixel_stride);
    } else {
      AddColumns<RowCase::kTwoRows, kDepth, Acc>(
          g_row, next_g_row, taps, crop_width, depth, nd, wy.lo, wy.hi, top,
          bottom, pixel_stride);
    }
  } else if (top_in) {
    AddColumns<RowCase::kOneRow, kDepth, Acc>(g_row, next_g_row, taps,
                                              crop_width, depth, nd, wy.lo,
                                              wy.hi, top, top, pixel_stride);
  } else {
    AddColumns<RowCase::kOneRow, kDepth, Acc>(
        g_row, next_g_row, taps, crop_width, depth, nd, wy.hi, wy.lo, bottom,
        bottom, pixel_stride);
  }
}

// A unit's accumulator. Small ones reuse a per-thread buffer across units and
// calls (a fresh allocation per unit costs page faults); large ones (very wide
// images) are allocated per use so that no thread keeps them.
template <typename Acc>
class UnitAccumulator {
 public:
  explicit UnitAccumulator(int64_t size) {
    constexpr int64_t kKeepBytes = 4 << 20;
    if (size * static_cast<int64_t>(sizeof(Acc)) <= kKeepBytes) {
      thread_local std::vector<Acc> kept;
      if (static_cast<int64_t>(kept.size()) < size) {
        // Free first and allocate the exact size (resize would double).
        std::vector<Acc>().swap(kept);
        kept.resize(size);
      }
      data_ = kept.data();
    } else {
      own_.resize(size);
      data_ = own_.data();
    }
  }
  Acc* data() { return data_; }

 private:
  std::vector<Acc> own_;
  Acc* data_ = nullptr;
};

template <typename T>
void GradImage(const GradImageArgs& a, T* output,
               const ParallelRunner& runner) {
  using Acc = typename AccumulatorOf<T>::type;
  const int64_t rows = a.batch * a.height;
  const int64_t width = a.width;
  const int64_t depth = a.depth;
  if (rows == 0 || width == 0 || depth == 0) return;

  const int64_t output_bytes = rows * width * depth * sizeof(T);
  const int64_t grads_bytes =
      a.num_boxes * a.crop_height * a.crop_width * depth * sizeof(float);
  const Tiling tiling = ChooseTiling<Acc>(
      rows, width, depth, runner.num_threads, output_bytes > grads_bytes);
  const Samples samples =
      ComputeSamples(a, tiling.band_rows, tiling.num_bands, runner);
  const std::vector<int64_t>& band_begin = samples.band_begin;

  const int64_t num_units = tiling.num_bands * tiling.num_blocks;
  const int64_t sample_row_floats = a.crop_width * depth;

  // A float or double output whose units hold whole pixels accumulates in
  // place: each unit zeroes its band of the output and adds into it while the
  // band sits in L2, so the output is written once and never copied. Against
  // a per-thread buffer copied out at the end this is 10-25% faster wherever
  // the output is large or the caches are shared (bench-like A/B runs:
  // fastrcnn-7 float32 4.9 -> 4.0 ms, fpn-p2 float64 98 -> 75 ms). Half and
  // bfloat16 outputs, and units that hold a block of channels (rows over the
  // row budget of ChooseTiling), accumulate in a per-thread buffer (L2-sized,
  // like the band) and are written once at the end.
  constexpr bool kAccumulatesInT = std::is_same<Acc, T>::value;
  const bool in_place = kAccumulatesInT && tiling.block_depth == depth;

  runner.parallel_for(num_units, [&](int64_t unit_begin, int64_t unit_end) {
    UnitAccumulator<Acc> acc(
        in_place ? 0 : tiling.band_rows * width * tiling.block_depth);
    for (int64_t unit = unit_begin; unit < unit_end; ++unit) {
      const int64_t band = unit / tiling.num_blocks;
      const int64_t d0 = (unit % tiling.num_blocks) * tiling.block_depth;
      const int64_t nd = std::min(tiling.block_depth, depth - d0);
      const int64_t row_begin = band * tiling.band_rows;
      const int64_t row_end = std::min(rows, row_begin + tiling.band_rows);
      const int64_t pixels = (row_end - row_begin) * width;
      const int64_t band_end = band_begin[band + 1];
      T* out = output + row_begin * width * depth + d0;
      if (band_begin[band] == band_end) {
        // No sample touches the band: write its zeros (all-zero bits, +0.0,
        // in every T) straight to the output.
        if (nd == depth) {
          memset(out, 0, pixels * nd * sizeof(T));
        } else {
          for (int64_t p = 0; p < pixels; ++p)
            memset(out + p * depth, 0, nd * sizeof(T));
        }
        continue;
      }
      // Pixel p of the band is at acc_rows[p * nd] (nd == depth in place).
      Acc* acc_rows = acc.data();
      if constexpr (kAccumulatesInT) {
        if (in_place) acc_rows = out;
      }
      memset(acc_rows, 0, pixels * nd * sizeof(Acc));  // +0.0: all-zero bits.

      auto add_band = [&](auto depth_tag) {
        constexpr int kDepth = decltype(depth_tag)::value;
        for (int64_t i = band_begin[band]; i < band_end; ++i) {
          const int64_t r = samples.listed[i];
          const int64_t next_r =
              samples.listed[std::min(i + CRG_PREFETCH_DISTANCE, band_end - 1)];
          const SampleRow& s = samples.rows[r];
          AddSampleRow<kDepth>(s, a.grads + r * sample_row_floats + d0,
                               a.grads + next_r * sample_row_floats + d0,
                               samples.columns.get() + s.box * a.crop_width,
                               a.crop_width, depth, nd, a.method, row_begin,
                               row_end, acc_rows, width * nd, nd);
        }
      };
      switch (nd) {  // Few channels: unrolled channel loops.
        case 1:
          add_band(std::integral_constant<int, 1>());
          break;
        case 2:
          add_band(std::integral_constant<int, 2>());
          break;
        case 3:
          add_band(std::integral_constant<int, 3>());
          break;
        case 4:
          add_band(std::integral_constant<int, 4>());
          break;
        default:
          add_band(std::integral_constant<int, 0>());
      }
      if (in_place) continue;
      if (nd == depth) {  // The band is one contiguous run of output.
        ConvertFromFloat(acc.data(), out, pixels * nd);
      } else {
        for (int64_t p = 0; p < pixels; ++p) {
          ConvertFromFloat(acc.data() + p * nd, out + p * depth, nd);
        }
      }
    }
  });
}

}  // namespace CRG_ISA_NAMESPACE
}  // namespace crop_and_resize_grad

#endif  // CROP_AND_RESIZE_GRAD_CC_CORE_CPU_GRAD_IMAGE_IMPL_H_
