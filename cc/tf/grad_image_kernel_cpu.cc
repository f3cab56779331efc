// CPU registration: box values are checked on the host, then the TF-free
// kernel runs on TF's intra-op thread pool.
#include "cc/tf/cpu_runner.h"
#include "cc/tf/grad_image_kernel.h"
#include "cc/tf/op_names.h"
#include "tensorflow/core/framework/register_types.h"

namespace crop_and_resize_grad {

using CPUDevice = Eigen::ThreadPoolDevice;

template <typename T>
struct GradImageFunctor<CPUDevice, T> {
  absl::Status CheckBoxes(tensorflow::OpKernelContext* /*ctx*/,
                          const GradImageArgs& args) {
    return ToStatus(
        CheckBoxValues(args.boxes, args.box_ind, args.num_boxes, args.batch));
  }

  void operator()(tensorflow::OpKernelContext* ctx, const GradImageArgs& args,
                  bool /*deterministic: the CPU kernel always is*/,
                  tensorflow::Tensor* output) {
    if (output->NumElements() == 0) return;
    CropAndResizeGradImageCpu(args, StoragePointer<T>(output),
                              TfCpuRunner(ctx));
  }
};

#define CRG_REGISTER_CPU(T)                                   \
  REGISTER_KERNEL_BUILDER(Name(kGradImageOpName)              \
                              .Device(tensorflow::DEVICE_CPU) \
                              .TypeConstraint<T>("T"),        \
                          CropAndResizeGradImageOp<CPUDevice, T>);

CRG_FOR_EACH_FLOAT_TYPE(CRG_REGISTER_CPU);

#undef CRG_REGISTER_CPU

}  // namespace crop_and_resize_grad
