// The "memory" section: the kernel's heap temporaries against their bound.
#include "tests/cpp/test_util.h"

namespace crg_test {

// ---------------------------------------------------------------------------
// Memory: the kernel's temporaries, measured with the tracking allocator.
//
// By construction (cc/core/cpu/grad_image_impl.h, ComputeSamples) they are:
// per (box, crop row) and per (box, crop column), at most the bounds that
// cc/core/cpu/grad_image.h publishes; 8 B per band for the offsets, and as
// much again for the counts when there is a single set-up task (the bound
// counts every image row as a band); and one accumulator per running work
// unit: band_rows x width x block of channels, at most one unit (CRG_UNIT_KB),
// or one whole image row of up to four units when the output outweighs grads
// -- but never less than one image row of min(D, 256 B / sizeof(Acc))
// channels, i.e. width x 256 B.

struct HeapPeak {
  int64_t peak;
};

template <typename T>
HeapPeak MeasureKernelHeap(const Problem& p, const crg::ParallelRunner& runner,
                           std::vector<T>* out) {
  out->assign(p.OutputSize(), T{});
  g_heap_live = 0;
  g_heap_peak = 0;
  g_track_heap = true;
  crg::CropAndResizeGradImageCpu<T>(p.Args(Method::kBilinear), out->data(),
                                    runner);
  g_track_heap = false;
  return {g_heap_peak.load()};
}

int64_t AccumulatorBound(const Problem& p, size_t acc_size) {
  const int64_t row_min = p.width * std::min<int64_t>(p.depth, 256 / acc_size) *
                          static_cast<int64_t>(acc_size);
  const int64_t whole_row =
      std::min<int64_t>(p.width * p.depth * static_cast<int64_t>(acc_size),
                        crg::kWholeRowAccumulatorBytes);
  return std::max<int64_t>({crg::kUnitAccumulatorBytes, whole_row, row_min});
}

int64_t TemporariesBound(const Problem& p, int threads, size_t acc_size) {
  const int64_t rows = p.num_boxes * p.crop_height;
  const int64_t sample_rows = rows * crg::kTemporaryBytesPerSampleRow;
  const int64_t taps =
      p.num_boxes * p.crop_width * crg::kTemporaryBytesPerCropColumn;
  const int64_t bands = (p.batch * p.height + 1) * 16;
  // Runner bookkeeping (std::function, std::thread state): a few KiB.
  const int64_t runner = 4096 + 1024 * threads;
  return sample_rows + taps + bands + runner +
         threads * AccumulatorBound(p, acc_size);
}

template <typename T>
void CheckTemporaries(const Problem& p, int threads) {
  std::vector<T> out;
  const crg::ParallelRunner runner =
      threads == 1 ? crg::SerialRunner() : ThreadRunner(threads);
  const HeapPeak h = MeasureKernelHeap<T>(p, runner, &out);
  const size_t acc_size = std::is_same<T, double>::value ? 8 : 4;
  const int64_t bound = TemporariesBound(p, threads, acc_size);
  const double output_mib = p.OutputSize() * sizeof(T) / 1048576.0;
  printf(
      "  %-24s %-8s %2d thread(s): temporaries %8.3f MiB (bound %8.3f MiB, "
      "output %8.3f MiB)\n",
      p.name.c_str(), TypeName<T>(), threads, h.peak / 1048576.0,
      bound / 1048576.0, output_mib);
  EXPECT(h.peak <= bound, p.name << " " << TypeName<T>() << ": temporaries "
                                 << h.peak << " B above the bound " << bound);
  if (AccumulatorBound(p, acc_size) > crg::kUnitAccumulatorBytes) {
    printf(
        "  note: %s rows are too wide for a %lld KiB accumulator: a work "
        "unit may hold %.2f MiB\n",
        p.name.c_str(),
        static_cast<long long>(crg::kUnitAccumulatorBytes >> 10),
        AccumulatorBound(p, acc_size) / 1048576.0);
  }
}

void TestMemory() {
  if (kSanitized) {
    printf("  skipped: sanitizer builds do not count heap bytes\n");
    return;
  }
  // The maskrcnn-14 workload (fastrcnn-7 in sanitizer builds: smaller input).
  const Problem standard = kSanitized
                               ? MakeProblem("fastrcnn-7", 512, 7, 7, 2, 50, 76,
                                             256, BoxKind::kNormal, 21)
                               : MakeProblem("maskrcnn-14", 512, 14, 14, 2, 100,
                                             152, 256, BoxKind::kNormal, 21);
  for (int threads : {1, 4}) {
    CheckTemporaries<float>(standard, threads);
    CheckTemporaries<Half>(standard, threads);
    CheckTemporaries<double>(standard, threads);
  }
  // A big image with few boxes: nothing proportional to the image but the
  // band offsets (8 B per image row).
  const Problem big_image =
      MakeProblem("big_image_few_boxes", 4, 14, 14, 1, kSanitized ? 512 : 2048,
                  kSanitized ? 512 : 2048, 8, BoxKind::kNormal, 22);
  CheckTemporaries<float>(big_image, 1);
  CheckTemporaries<float>(big_image, 4);
  // Many boxes on a small image: the sample-row list dominates.
  const Problem many_boxes =
      MakeProblem("many_boxes_small_image", kSanitized ? 20000 : 200000, 4, 4,
                  1, 16, 16, 1, BoxKind::kNormal, 23);
  CheckTemporaries<float>(many_boxes, 1);
  // A large feature map with few samples (fpn-p2's rows, 608 x 256): the
  // output outweighs grads, so a whole 608 KiB float row is one unit.
  const Problem feature_map =
      MakeProblem("feature_map_608x256", 16, 7, 7, 1, kSanitized ? 8 : 24, 608,
                  256, BoxKind::kNormal, 25);
  CheckTemporaries<float>(feature_map, 1);
  CheckTemporaries<float>(feature_map, 4);
  // Very wide rows: the accumulator holds a whole row of 64 channels.
  const Problem wide = MakeProblem("wide_rows_8192x64", 4, 4, 14, 1, 2, 8192,
                                   64, BoxKind::kNormal, 24);
  CheckTemporaries<float>(wide, 1);
}

}  // namespace crg_test
