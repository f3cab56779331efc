// CPU registration of the boxes gradient: box values are checked on the
// host, then the TF-free kernel runs on TF's intra-op thread pool.
#include "cc/core/cpu/grad_boxes.h"
#include "cc/tf/cpu_runner.h"
#include "cc/tf/grad_boxes_kernel.h"
#include "cc/tf/op_names.h"
#include "tensorflow/core/framework/register_types.h"

namespace crop_and_resize_grad {

using CPUDevice = Eigen::ThreadPoolDevice;

template <typename T>
struct GradBoxesFunctor<CPUDevice, T> {
  absl::Status CheckBoxes(tensorflow::OpKernelContext* /*ctx*/,
                          const GradBoxesArgs& args) {
    return ToStatus(
        CheckBoxValues(args.boxes, args.box_ind, args.num_boxes, args.batch));
  }

  void operator()(tensorflow::OpKernelContext* ctx, const GradBoxesArgs& args,
                  const tensorflow::Tensor& image, tensorflow::Tensor* output) {
    CropAndResizeGradBoxesCpu(args, ConstStoragePointer<T>(image),
                              output->flat<float>().data(), TfCpuRunner(ctx));
  }
};

#define CRG_REGISTER_CPU(T)                                   \
  REGISTER_KERNEL_BUILDER(Name(kGradBoxesOpName)              \
                              .Device(tensorflow::DEVICE_CPU) \
                              .TypeConstraint<T>("T"),        \
                          CropAndResizeGradBoxesOp<CPUDevice, T>);

CRG_FOR_EACH_FLOAT_TYPE(CRG_REGISTER_CPU);

#undef CRG_REGISTER_CPU

}  // namespace crop_and_resize_grad
