// TF-free CPU kernel for the gradient of crop_and_resize with respect to the
// image. Used by the TF OpKernel and by the pybind11 module.
#ifndef CROP_AND_RESIZE_GRAD_CC_CROP_AND_RESIZE_GRAD_CPU_H_
#define CROP_AND_RESIZE_GRAD_CC_CROP_AND_RESIZE_GRAD_CPU_H_

#include <stdint.h>

#include <functional>
#include <string>

#include "cc/crop_and_resize_sampling.h"
#include "cc/float16.h"

namespace crop_and_resize_grad {

// Shapes: grads [num_boxes, crop_height, crop_width, depth], boxes
// [num_boxes, 4], box_ind [num_boxes], output [batch, height, width, depth].
// All arrays are dense and row-major.
struct GradImageArgs {
  const float* grads = nullptr;
  const float* boxes = nullptr;
  const int32_t* box_ind = nullptr;
  int64_t num_boxes = 0;
  int64_t crop_height = 0;
  int64_t crop_width = 0;
  int64_t batch = 0;
  int64_t height = 0;
  int64_t width = 0;
  int64_t depth = 0;
  Method method = Method::kBilinear;
};

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

enum class ErrorCode { kOk, kInvalidArgument, kOutOfRange };

struct CheckResult {
  ErrorCode code = ErrorCode::kOk;
  std::string message;
  bool ok() const { return code == ErrorCode::kOk; }
};

// Checks the values of boxes and box_ind: every coordinate finite and every
// index in [0, batch). Shapes are the caller's responsibility.
CheckResult CheckBoxValues(const float* boxes, const int32_t* box_ind,
                           int64_t num_boxes, int64_t batch);

// Writes the image gradient into `output` (which need not be initialized).
// Requires CheckBoxValues to have passed. T is float, double, Half or
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

#endif  // CROP_AND_RESIZE_GRAD_CC_CROP_AND_RESIZE_GRAD_CPU_H_
