// TF-free CPU kernel for the gradient of crop_and_resize with respect to the
// image. Used by the TF OpKernel and by the pybind11 module.
#ifndef CROP_AND_RESIZE_GRAD_CC_CORE_CPU_GRAD_IMAGE_H_
#define CROP_AND_RESIZE_GRAD_CC_CORE_CPU_GRAD_IMAGE_H_

#include <stdint.h>

#include <functional>

#include "cc/core/float16.h"
#include "cc/core/grad_image_args.h"

// The size of a work unit's accumulator in KiB, a build-time tuning switch
// (docs/tuning.md): it changes speed and temporaries, never the result.
#ifndef CRG_UNIT_KB
#define CRG_UNIT_KB 512
#endif

namespace crop_and_resize_grad {

// How the kernel runs work units in parallel. parallel_for(num_units, work)
// calls work(begin, end) over [0, num_units), possibly concurrently, and
// returns when all are done. num_threads only sizes the work units: the
// result never depends on either.
struct ParallelRunner {
  int num_threads = 1;
  std::function<void(int64_t num_units, const std::function<void(
                                            int64_t begin, int64_t end)>& work)>
      parallel_for;
};

// Runs everything on the calling thread.
ParallelRunner SerialRunner();

// Bounds of the kernel's set-up temporaries (grad_image_impl.h,
// ComputeSamples, where static_asserts tie them to its records): per (box,
// crop row) a sample, a band code, per-task counts and one or two listings;
// per (box, crop column) a column tap. And one work unit's accumulator
// (CRG_UNIT_KB), or a whole image row of up to four units when the output
// outweighs grads. The memory tests and benchmarks/bench_memory.py take them
// from here.
constexpr int64_t kTemporaryBytesPerSampleRow = 64;
constexpr int64_t kTemporaryBytesPerCropColumn = 24;
constexpr int64_t kUnitAccumulatorBytes = int64_t{CRG_UNIT_KB} << 10;
constexpr int64_t kWholeRowAccumulatorBytes = 4 * kUnitAccumulatorBytes;

// Writes the image gradient into `output` (which need not be initialized).
// Requires CheckGradImageShapes and CheckBoxValues (cc/core/checks.h) to
// have passed. T is float, double, Half or
// BFloat16. Race-free and bitwise reproducible for any runner: every output
// element is written by one work unit, and its contributions are added in
// (box, crop row, crop column) order, the order of TF's serial loop.
template <typename T>
void CropAndResizeGradImageCpu(const GradImageArgs& args, T* output,
                               const ParallelRunner& runner);

// Name of the instruction set the CPU kernel runs with: "baseline", "avx2"
// or "avx512". The environment variable CRG_CPU_ISA caps it.
const char* CpuIsaName();

}  // namespace crop_and_resize_grad

#endif  // CROP_AND_RESIZE_GRAD_CC_CORE_CPU_GRAD_IMAGE_H_
