// CUDA kernel of the boxes gradient (see cuda/grad_boxes.h). The per-term
// arithmetic and the summation order come from cc/core/grad_boxes_math.h,
// shared with the CPU kernel, and the build uses --fmad=false, so both
// produce the same bits.
#include <cuda_runtime.h>
#include <stdint.h>

#include <algorithm>

#include "cc/core/grad_boxes_math.h"
#include "cc/core/sampling.h"
#include "cuda/grad_boxes.h"

namespace crop_and_resize_grad {
namespace cuda {
namespace {

// Resident blocks per multiprocessor the grid asks for; boxes beyond that are
// taken by the grid-stride loop.
constexpr int64_t kBlocksPerSm = 8;

template <typename T>
__global__ void __launch_bounds__(kBoxesLanes)
    GradBoxesKernel(GradBoxesArgs a, const T* __restrict__ image,
                    float* __restrict__ output) {
  __shared__ double sums[4][kBoxesLanes];
  const int lane = threadIdx.x;
  const int64_t ch = a.crop_height, cw = a.crop_width, depth = a.depth;
  const int64_t terms = ch * cw * depth;
  // Advancing the term index by kBoxesLanes moves (y, x, d) by a fixed step:
  // step_d channels and step_s samples (step_y rows, step_x columns).
  const int64_t step_d = depth > 0 ? kBoxesLanes % depth : 0;
  const int64_t step_s = depth > 0 ? kBoxesLanes / depth : 0;
  const int64_t step_x = step_s % cw, step_y = step_s / cw;
  for (int64_t n = blockIdx.x; n < a.num_boxes; n += gridDim.x) {
    const float y1 = FlushSubnormal(a.boxes[n * 4 + 0]);
    const float x1 = FlushSubnormal(a.boxes[n * 4 + 1]);
    const float y2 = FlushSubnormal(a.boxes[n * 4 + 2]);
    const float x2 = FlushSubnormal(a.boxes[n * 4 + 3]);
    const int64_t b = a.box_ind[n];
    double acc[4] = {0.0, 0.0, 0.0, 0.0};
    if (b >= 0 && b < a.batch && lane < terms) {
      // Term `lane`: channel d of crop pixel (y, x).
      int64_t d = lane % depth;
      int64_t s = lane / depth;
      int64_t x = s % cw, y = s / cw;
      for (int64_t i = lane; i < terms; i += kBoxesLanes) {
        const AxisSample sy =
            MakeAxisSample(y1, y2, a.height, ch, y, Method::kBilinear);
        const AxisSample sx =
            MakeAxisSample(x1, x2, a.width, cw, x, Method::kBilinear);
        if (sy.valid && sx.valid) {
          const int64_t top = sy.taps.lo;
          const int64_t bottom = sy.taps.hi;
          const int64_t left = sx.taps.lo;
          const int64_t right = sx.taps.hi;
          const T* top_row = image + (b * a.height + top) * a.width * depth;
          const T* bottom_row =
              image + (b * a.height + bottom) * a.width * depth;
          const Slopes slopes =
              MakeSlopes(ImageValue(top_row[left * depth + d]),
                         ImageValue(top_row[right * depth + d]),
                         ImageValue(bottom_row[left * depth + d]),
                         ImageValue(bottom_row[right * depth + d]),
                         static_cast<double>(sy.taps.frac),
                         static_cast<double>(sx.taps.frac));
          const BoxTerms t =
              MakeBoxTerms(slopes, ImageValue(a.grads[n * terms + i]),
                           MakeEdgeWeights(a.height, ch, y),
                           MakeEdgeWeights(a.width, cw, x));
          for (int k = 0; k < 4; ++k) acc[k] += t.v[k];
        }
        d += step_d;
        x += step_x;
        y += step_y;
        if (d >= depth) {
          d -= depth;
          ++x;
        }
        if (x >= cw) {
          x -= cw;
          ++y;
        }
      }
    }
    for (int k = 0; k < 4; ++k) sums[k][lane] = acc[k];
    __syncthreads();
    // The tree of ReduceLanes, one level per step.
    for (int stride = kBoxesLanes / 2; stride > 0; stride /= 2) {
      if (lane < stride) {
        for (int k = 0; k < 4; ++k) sums[k][lane] += sums[k][lane + stride];
      }
      __syncthreads();
    }
    if (lane < 4) output[n * 4 + lane] = static_cast<float>(sums[lane][0]);
    __syncthreads();  // sums is reused by the next box.
  }
}

bool ValidArgs(const GradBoxesArgs& a) {
  return a.num_boxes >= 0 && a.crop_height > 0 && a.crop_width > 0 &&
         a.batch >= 0 && a.height > 0 && a.width > 0 && a.depth >= 0 &&
         (a.method == Method::kBilinear || a.method == Method::kNearest);
}

}  // namespace

template <typename T>
cudaError_t LaunchCropAndResizeGradBoxesTyped(const GradBoxesArgs& args,
                                              const T* image, float* output,
                                              cudaStream_t stream) {
  // The launch reports errors through cudaGetLastError(), which would also
  // return an earlier, unrelated error of this thread: clear it first.
  (void)cudaGetLastError();
  if (!ValidArgs(args)) return cudaErrorInvalidValue;
  if (args.num_boxes == 0) return cudaSuccess;
  if (output == nullptr || args.boxes == nullptr || args.box_ind == nullptr ||
      (args.depth > 0 && (image == nullptr || args.grads == nullptr))) {
    return cudaErrorInvalidValue;
  }
  int device = 0, sms = 0;
  cudaError_t err = cudaGetDevice(&device);
  if (err != cudaSuccess) return err;
  err = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
  if (err != cudaSuccess) return err;
  const int blocks = static_cast<int>(std::max<int64_t>(
      1, std::min<int64_t>(args.num_boxes, sms * kBlocksPerSm)));
  GradBoxesKernel<T><<<blocks, kBoxesLanes, 0, stream>>>(args, image, output);
  return cudaGetLastError();
}

template cudaError_t LaunchCropAndResizeGradBoxesTyped<Half>(
    const GradBoxesArgs&, const Half*, float*, cudaStream_t);
template cudaError_t LaunchCropAndResizeGradBoxesTyped<BFloat16>(
    const GradBoxesArgs&, const BFloat16*, float*, cudaStream_t);
template cudaError_t LaunchCropAndResizeGradBoxesTyped<float>(
    const GradBoxesArgs&, const float*, float*, cudaStream_t);
template cudaError_t LaunchCropAndResizeGradBoxesTyped<double>(
    const GradBoxesArgs&, const double*, float*, cudaStream_t);

cudaError_t LaunchCropAndResizeGradBoxes(const GradBoxesArgs& args,
                                         DType image_dtype, const void* image,
                                         float* output, cudaStream_t stream) {
  switch (image_dtype) {
    case DType::kHalf:
      return LaunchCropAndResizeGradBoxesTyped(
          args, static_cast<const Half*>(image), output, stream);
    case DType::kBFloat16:
      return LaunchCropAndResizeGradBoxesTyped(
          args, static_cast<const BFloat16*>(image), output, stream);
    case DType::kFloat:
      return LaunchCropAndResizeGradBoxesTyped(
          args, static_cast<const float*>(image), output, stream);
    case DType::kDouble:
      return LaunchCropAndResizeGradBoxesTyped(
          args, static_cast<const double*>(image), output, stream);
  }
  return cudaErrorInvalidValue;
}

}  // namespace cuda
}  // namespace crop_and_resize_grad
