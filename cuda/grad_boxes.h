// CUDA kernel for the gradient of crop_and_resize with respect to the boxes,
// behind a plain launcher API: raw device pointers and a cudaStream_t, no
// TensorFlow headers. Used by the TF GPU OpKernel and by the pybind11 module.
//
// One 256-thread block per box (grid-stride over boxes). Thread t sums, in
// float64, the terms i = t, t + 256, ... of its box; the block then combines
// the 256 partial sums with the fixed pairwise tree of
// cc/core/grad_boxes_math.h and rounds once to float32. No atomics: the
// result is bitwise reproducible and equal to the CPU kernel's.
#ifndef CROP_AND_RESIZE_GRAD_CUDA_GRAD_BOXES_H_
#define CROP_AND_RESIZE_GRAD_CUDA_GRAD_BOXES_H_

#include <cuda_runtime_api.h>
#include <stdint.h>

#include "cc/core/float16.h"
#include "cc/core/grad_boxes_args.h"
#include "cuda/grad_image.h"  // DType

namespace crop_and_resize_grad {
namespace cuda {

// Writes the boxes gradient, float32 [num_boxes, 4], into `output` (device
// memory; need not be initialized). `image` is [batch, height, width, depth]
// of `image_dtype`; the pointers in `args` are device pointers. Only enqueues
// one kernel on `stream`; launches nothing when num_boxes is 0.
//
// Requires the values of boxes and box_ind to have been validated
// (LaunchCheckBoxValues or CheckBoxValues). A box whose box_ind is outside
// [0, batch) gets zeros rather than reading out of bounds.
//
// Returns cudaErrorInvalidValue for negative sizes, null pointers where data
// is needed or an unknown dtype.
cudaError_t LaunchCropAndResizeGradBoxes(const GradBoxesArgs& args,
                                         DType image_dtype, const void* image,
                                         float* output, cudaStream_t stream);

// Typed form; explicitly instantiated for Half, BFloat16, float and double.
template <typename T>
cudaError_t LaunchCropAndResizeGradBoxesTyped(const GradBoxesArgs& args,
                                              const T* image, float* output,
                                              cudaStream_t stream);

}  // namespace cuda
}  // namespace crop_and_resize_grad

#endif  // CROP_AND_RESIZE_GRAD_CUDA_GRAD_BOXES_H_
