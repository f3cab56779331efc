// crop_and_resize_grad._kernels: the TF-free kernels for NumPy arrays (CPU)
// and raw device pointers (CUDA), so tests and benchmarks can reach them
// without TensorFlow.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#if defined(__SSE2__)
#include <xmmintrin.h>
#endif
#include <atomic>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "cc/core/checks.h"
#include "cc/core/cpu/grad_boxes.h"
#include "cc/core/cpu/grad_image.h"
#if CRG_WITH_CUDA
#include "cuda/grad_boxes.h"
#include "cuda/grad_image.h"
#endif

namespace py = pybind11;

namespace crop_and_resize_grad {
namespace {

using FloatArray =
    py::array_t<float, py::array::c_style | py::array::forcecast>;
using IndexArray =
    py::array_t<int32_t, py::array::c_style | py::array::forcecast>;

Method ParseMethod(const std::string& method) {
  if (method == "bilinear") return Method::kBilinear;
  if (method == "nearest") return Method::kNearest;
  throw py::value_error("method must be 'bilinear' or 'nearest', got '" +
                        method + "'");
}

void ThrowIfBad(const CheckResult& check) {
  if (check.code == ErrorCode::kOutOfRange)
    throw py::index_error(check.message);
  if (!check.ok()) throw py::value_error(check.message);
}

Shape ToShape(const std::vector<int64_t>& dims) {
  Shape s;
  s.rank = static_cast<int>(dims.size());
  for (int i = 0; i < s.rank && i < Shape::kMaxDims; ++i) s.dims[i] = dims[i];
  return s;
}

// Shapes and image_size, checked as the TF op checks them (the same core
// check and messages); data pointers are left empty.
GradImageArgs ShapeArgs(const std::vector<int64_t>& grads_shape,
                        const std::vector<int64_t>& boxes_shape,
                        const std::vector<int64_t>& box_ind_shape,
                        const std::vector<int64_t>& image_size,
                        const std::string& method) {
  int64_t size[4] = {0, 0, 0, 0};
  if (image_size.size() == 4) {
    std::copy(image_size.begin(), image_size.end(), size);
  }
  GradImageArgs args;
  ThrowIfBad(CheckGradImageShapes(
      ToShape(grads_shape), ToShape(boxes_shape), ToShape(box_ind_shape),
      ToShape({static_cast<int64_t>(image_size.size())}), size, &args));
  args.method = ParseMethod(method);
  return args;
}

std::vector<int64_t> ShapeOf(const py::array& a) {
  return std::vector<int64_t>(a.shape(), a.shape() + a.ndim());
}

// TF runs kernels with denormals flushed to zero (FTZ and DAZ); the module
// does the same so that it returns the op's exact bits.
class ScopedFlushDenormals {
 public:
#if defined(__SSE2__)
  ScopedFlushDenormals() : saved_(_mm_getcsr()) {
    _mm_setcsr(saved_ | 0x8040u);  // FTZ (bit 15) and DAZ (bit 6).
  }
  ~ScopedFlushDenormals() { _mm_setcsr(saved_); }

 private:
  unsigned int saved_;
#endif
};

// Dynamic scheduling over std::threads. The kernel's result does not depend
// on how units are spread, so this only affects speed.
ParallelRunner ThreadRunner(int num_threads) {
  ParallelRunner runner;
  runner.num_threads = num_threads;
  runner.parallel_for = [num_threads](
                            int64_t num_units,
                            const std::function<void(int64_t, int64_t)>& work) {
    const int threads =
        static_cast<int>(std::min<int64_t>(num_threads, num_units));
    std::atomic<int64_t> next{0};
    auto loop = [&] {
      ScopedFlushDenormals flush;
      for (int64_t u; (u = next.fetch_add(1)) < num_units;) work(u, u + 1);
    };
    if (threads <= 1) {
      loop();
      return;
    }
    std::vector<std::thread> pool;
    for (int t = 1; t < threads; ++t) pool.emplace_back(loop);
    loop();
    for (auto& t : pool) t.join();
  };
  return runner;
}

template <typename T>
void RunCpu(const GradImageArgs& args, py::array& out, int num_threads) {
  T* data = reinterpret_cast<T*>(out.mutable_data());
  const ParallelRunner runner = ThreadRunner(num_threads);
  py::gil_scoped_release release;
  CropAndResizeGradImageCpu(args, data, runner);
}

// Returns the image gradient as a NumPy array of `dtype` ('float16',
// 'bfloat16' as raw uint16 bits, 'float32' or 'float64').
py::array GradImageCpu(FloatArray grads, FloatArray boxes, IndexArray box_ind,
                       std::vector<int64_t> image_size,
                       const std::string& dtype, const std::string& method,
                       int num_threads) {
  GradImageArgs args = ShapeArgs(ShapeOf(grads), ShapeOf(boxes),
                                 ShapeOf(box_ind), image_size, method);
  args.grads = grads.data();
  args.boxes = boxes.data();
  args.box_ind = box_ind.data();
  ThrowIfBad(
      CheckBoxValues(args.boxes, args.box_ind, args.num_boxes, args.batch));
  if (num_threads <= 0) {
    num_threads = static_cast<int>(std::thread::hardware_concurrency());
  }
  const std::vector<py::ssize_t> shape(image_size.begin(), image_size.end());
  py::array out;
  if (dtype == "float32") {
    out = py::array_t<float>(shape);
    RunCpu<float>(args, out, num_threads);
  } else if (dtype == "float64") {
    out = py::array_t<double>(shape);
    RunCpu<double>(args, out, num_threads);
  } else if (dtype == "float16") {
    out = py::array(py::dtype("float16"), shape);
    RunCpu<Half>(args, out, num_threads);
  } else if (dtype == "bfloat16") {
    out = py::array_t<uint16_t>(shape);
    RunCpu<BFloat16>(args, out, num_threads);
  } else {
    throw py::value_error(
        "dtype must be float16, bfloat16, float32 or "
        "float64, got '" +
        dtype + "'");
  }
  return out;
}

int ThreadsOrDefault(int num_threads) {
  return num_threads > 0
             ? num_threads
             : static_cast<int>(std::thread::hardware_concurrency());
}

// Shapes checked as the TF op checks them; data pointers left empty.
GradBoxesArgs BoxesShapeArgs(const std::vector<int64_t>& grads_shape,
                             const std::vector<int64_t>& image_shape,
                             const std::vector<int64_t>& boxes_shape,
                             const std::vector<int64_t>& box_ind_shape,
                             const std::string& method) {
  GradBoxesArgs args;
  ThrowIfBad(CheckGradBoxesShapes(ToShape(grads_shape), ToShape(image_shape),
                                  ToShape(boxes_shape), ToShape(box_ind_shape),
                                  &args));
  args.method = ParseMethod(method);
  return args;
}

// The image's element type: its NumPy dtype (float16, float32, float64,
// bfloat16 from ml_dtypes), or bfloat16 for uint16 bits when image_dtype says
// so.
std::string ImageDType(const py::array& image, const std::string& image_dtype) {
  const std::string name = py::str(image.dtype().attr("name"));
  if (image_dtype.empty()) {
    if (name == "float16" || name == "float32" || name == "float64" ||
        name == "bfloat16") {
      return name;
    }
  } else if (image_dtype == "bfloat16" &&
             (name == "uint16" || name == "bfloat16")) {
    return image_dtype;
  } else if (image_dtype == name) {
    return name;
  }
  throw py::type_error(
      "image must be float16, bfloat16 (or uint16 bits with "
      "image_dtype='bfloat16'), float32 or float64, got " +
      name +
      (image_dtype.empty() ? "" : " with image_dtype='" + image_dtype + "'"));
}

template <typename T>
void RunBoxesCpu(const GradBoxesArgs& args, const py::array& image,
                 float* output, int num_threads) {
  const T* data = reinterpret_cast<const T*>(image.data());
  const ParallelRunner runner = ThreadRunner(num_threads);
  py::gil_scoped_release release;
  CropAndResizeGradBoxesCpu(args, data, output, runner);
}

// Returns the boxes gradient, float32 [num_boxes, 4].
py::array GradBoxesCpu(FloatArray grads, py::array image, FloatArray boxes,
                       IndexArray box_ind, const std::string& method,
                       int num_threads, const std::string& image_dtype) {
  const std::string dtype = ImageDType(image, image_dtype);
  image = py::array::ensure(image, py::array::c_style);
  GradBoxesArgs args = BoxesShapeArgs(ShapeOf(grads), ShapeOf(image),
                                      ShapeOf(boxes), ShapeOf(box_ind), method);
  args.grads = grads.data();
  args.boxes = boxes.data();
  args.box_ind = box_ind.data();
  ThrowIfBad(
      CheckBoxValues(args.boxes, args.box_ind, args.num_boxes, args.batch));
  num_threads = ThreadsOrDefault(num_threads);
  py::array_t<float> out(std::vector<py::ssize_t>{args.num_boxes, 4});
  float* data = out.mutable_data();
  if (dtype == "float32") {
    RunBoxesCpu<float>(args, image, data, num_threads);
  } else if (dtype == "float64") {
    RunBoxesCpu<double>(args, image, data, num_threads);
  } else if (dtype == "float16") {
    RunBoxesCpu<Half>(args, image, data, num_threads);
  } else {
    RunBoxesCpu<BFloat16>(args, image, data, num_threads);
  }
  return out;
}

#if CRG_WITH_CUDA
cuda::DType ParseDType(const std::string& dtype) {
  if (dtype == "float16") return cuda::DType::kHalf;
  if (dtype == "bfloat16") return cuda::DType::kBFloat16;
  if (dtype == "float32") return cuda::DType::kFloat;
  if (dtype == "float64") return cuda::DType::kDouble;
  throw py::value_error("unknown dtype '" + dtype + "'");
}

void ThrowIfCudaError(cudaError_t err, const char* what) {
  if (err != cudaSuccess) {
    throw std::runtime_error(std::string(what) + ": " +
                             cudaGetErrorString(err));
  }
}

GradImageArgs DeviceArgs(uintptr_t grads, uintptr_t boxes, uintptr_t box_ind,
                         std::vector<int64_t> grads_shape, int64_t num_boxes,
                         std::vector<int64_t> image_size,
                         const std::string& method) {
  GradImageArgs args =
      ShapeArgs(grads_shape, {num_boxes, 4}, {num_boxes}, image_size, method);
  args.grads = reinterpret_cast<const float*>(grads);
  args.boxes = reinterpret_cast<const float*>(boxes);
  args.box_ind = reinterpret_cast<const int32_t*>(box_ind);
  return args;
}
#endif

}  // namespace
}  // namespace crop_and_resize_grad

PYBIND11_MODULE(_kernels, m) {
  using namespace crop_and_resize_grad;
  m.doc() =
      "TF-free crop_and_resize_grad kernels (CPU on NumPy, CUDA on "
      "device pointers).";
  m.def("cpu_isa", &CpuIsaName,
        "Instruction set of the CPU kernel (CRG_CPU_ISA caps it).");
  // Bounds of the CPU kernel's set-up temporaries, for bench_memory.py.
  m.attr("TEMPORARY_BYTES_PER_SAMPLE_ROW") = kTemporaryBytesPerSampleRow;
  m.attr("TEMPORARY_BYTES_PER_CROP_COLUMN") = kTemporaryBytesPerCropColumn;
  m.attr("UNIT_ACCUMULATOR_BYTES") = kUnitAccumulatorBytes;
  m.def("grad_image_cpu", &GradImageCpu, py::arg("grads"), py::arg("boxes"),
        py::arg("box_ind"), py::arg("image_size"), py::arg("dtype"),
        py::arg("method") = "bilinear", py::arg("num_threads") = 0,
        "Image gradient on the CPU. bfloat16 comes back as uint16 bits.");
  m.def("grad_boxes_cpu", &GradBoxesCpu, py::arg("grads"), py::arg("image"),
        py::arg("boxes"), py::arg("box_ind"), py::arg("method") = "bilinear",
        py::arg("num_threads") = 0, py::arg("image_dtype") = "",
        "Boxes gradient on the CPU: float32 [num_boxes, 4]. The image's "
        "dtype is its NumPy dtype; pass image_dtype='bfloat16' for uint16 "
        "bfloat16 bits.");
#if CRG_WITH_CUDA
  m.attr("has_cuda") = true;
  m.def(
      "grad_image_scratch_bytes",
      [](std::vector<int64_t> grads_shape, int64_t num_boxes,
         std::vector<int64_t> image_size, const std::string& dtype,
         const std::string& method, bool deterministic) {
        const GradImageArgs args =
            DeviceArgs(0, 0, 0, grads_shape, num_boxes, image_size, method);
        return cuda::GradImageScratchBytes(args, ParseDType(dtype),
                                           deterministic);
      },
      py::arg("grads_shape"), py::arg("num_boxes"), py::arg("image_size"),
      py::arg("dtype"), py::arg("method"), py::arg("deterministic"));
  m.def(
      "grad_image_cuda",
      [](uintptr_t grads, uintptr_t boxes, uintptr_t box_ind,
         std::vector<int64_t> grads_shape, int64_t num_boxes,
         std::vector<int64_t> image_size, uintptr_t output,
         const std::string& dtype, const std::string& method,
         bool deterministic, uintptr_t scratch, size_t scratch_bytes,
         uintptr_t stream) {
        const GradImageArgs args = DeviceArgs(
            grads, boxes, box_ind, grads_shape, num_boxes, image_size, method);
        py::gil_scoped_release release;
        ThrowIfCudaError(cuda::LaunchCropAndResizeGradImage(
                             args, ParseDType(dtype), deterministic,
                             reinterpret_cast<void*>(output),
                             reinterpret_cast<void*>(scratch), scratch_bytes,
                             reinterpret_cast<cudaStream_t>(stream)),
                         "LaunchCropAndResizeGradImage");
      },
      py::arg("grads"), py::arg("boxes"), py::arg("box_ind"),
      py::arg("grads_shape"), py::arg("num_boxes"), py::arg("image_size"),
      py::arg("output"), py::arg("dtype"), py::arg("method"),
      py::arg("deterministic"), py::arg("scratch"), py::arg("scratch_bytes"),
      py::arg("stream") = 0,
      "Launches on device pointers (ints); asynchronous on `stream`.");
  m.def(
      "check_boxes_cuda",
      [](uintptr_t boxes, uintptr_t box_ind, int64_t num_boxes, int64_t batch,
         uintptr_t device_status, uintptr_t stream) {
        ThrowIfCudaError(
            cuda::LaunchCheckBoxValues(
                reinterpret_cast<const float*>(boxes),
                reinterpret_cast<const int32_t*>(box_ind), num_boxes, batch,
                reinterpret_cast<int32_t*>(device_status),
                reinterpret_cast<cudaStream_t>(stream)),
            "LaunchCheckBoxValues");
      },
      py::arg("boxes"), py::arg("box_ind"), py::arg("num_boxes"),
      py::arg("batch"), py::arg("device_status"), py::arg("stream") = 0);
  m.def(
      "grad_boxes_cuda",
      [](uintptr_t grads, uintptr_t image, uintptr_t boxes, uintptr_t box_ind,
         std::vector<int64_t> grads_shape, std::vector<int64_t> image_shape,
         uintptr_t output, const std::string& image_dtype,
         const std::string& method, uintptr_t stream) {
        const int64_t num_boxes = grads_shape.empty() ? 0 : grads_shape[0];
        GradBoxesArgs args = BoxesShapeArgs(
            grads_shape, image_shape, {num_boxes, 4}, {num_boxes}, method);
        args.grads = reinterpret_cast<const float*>(grads);
        args.boxes = reinterpret_cast<const float*>(boxes);
        args.box_ind = reinterpret_cast<const int32_t*>(box_ind);
        py::gil_scoped_release release;
        ThrowIfCudaError(cuda::LaunchCropAndResizeGradBoxes(
                             args, ParseDType(image_dtype),
                             reinterpret_cast<const void*>(image),
                             reinterpret_cast<float*>(output),
                             reinterpret_cast<cudaStream_t>(stream)),
                         "LaunchCropAndResizeGradBoxes");
      },
      py::arg("grads"), py::arg("image"), py::arg("boxes"), py::arg("box_ind"),
      py::arg("grads_shape"), py::arg("image_shape"), py::arg("output"),
      py::arg("image_dtype"), py::arg("method") = "bilinear",
      py::arg("stream") = 0,
      "Boxes gradient on device pointers (ints): output float32 "
      "[num_boxes, 4]. Box values must have been checked "
      "(check_boxes_cuda). Asynchronous on `stream`.");
#else
  m.attr("has_cuda") = false;
#endif
}
