// CUDA kernels for CropAndResizeGradImage. See cuda/README.md for the
// algorithms, the deterministic mode's error bound and the costs.
//
// Both modes scatter: one thread per (box, crop row, crop column, channel
// vector) computes the sample's image taps with the shared sampling header and
// adds the same per-tap products as the CPU kernel into the accumulator.
//  - Atomic mode: float (double for double output) atomicAdd, vector atomics
//    on sm_90; half and bfloat16 accumulate in float scratch and are cast
//    once.
//  - Deterministic mode: every finite product is rounded to an int64 fixed
//    point value with a power-of-two scale taken from max|grads| and added
//    with integer atomics, which are associative, so the sum is the same
//    whatever the order. Non-finite products set per-element flags instead.
#include <cuda_runtime.h>
#include <stddef.h>
#include <stdint.h>

#include <algorithm>
#include <type_traits>

#include "cc/core/float16.h"
#include "cc/core/sampling.h"
#include "cuda/grad_image.h"

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 600
#error "crop_and_resize_grad needs sm_60 or newer (double atomicAdd)."
#endif

// float2/float4 atomicAdd exist on sm_90 and newer.
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
#define CRG_VECTOR_ATOMICS 1
#else
#define CRG_VECTOR_ATOMICS 0
#endif

namespace crop_and_resize_grad {
namespace cuda {
namespace {

constexpr int kThreadsPerBlock = 256;
// Grid-stride loops: at most this many blocks per multiprocessor (two waves
// of fully resident 256-thread blocks).
constexpr int64_t kBlocksPerSm = 16;
constexpr size_t kScratchAlignment = 256;
// Deterministic scratch: [header | non-finite flags | int64 accumulator].
// The header holds the max-|grads| bit pattern (uint32 at offset 0).
constexpr size_t kHeaderBytes = 256;
// Fixed-point scale: max|grads| * samples * scale < 2^kFixedPointBits, which
// leaves room in an int64 for the rounding of every contribution.
constexpr int kFixedPointBits = 61;
// Non-finite flags: 2 bits per output element, 16 elements per uint32 word.
constexpr int64_t kFlagsPerWord = 16;
constexpr uint32_t kFlagPosInf = 1;
constexpr uint32_t kFlagNegInf = 2;
constexpr uint32_t kFlagNaN = kFlagPosInf | kFlagNegInf;  // Also +Inf + -Inf.

// ---------------------------------------------------------------------------
// Device helpers.

// 2^e as a double, for -1022 <= e <= 1023.
__device__ __forceinline__ double Pow2(int e) {
  return __longlong_as_double(static_cast<long long>(e + 1023) << 52);
}

// Exponent e of the fixed-point scale 2^e, from the bit pattern of the
// largest finite |grad| M and ceil(log2(samples)). With M < 2^(floor_log2 + 1)
// and samples <= 2^log2_samples, M * samples * 2^e < 2^kFixedPointBits.
// e lies in [-130, 209], so 2^e and 2^-e are normal doubles.
// All grads zero (or none finite): any scale works; use 1.
__device__ __forceinline__ int FixedPointExponent(uint32_t max_abs_bits,
                                                  int log2_samples) {
  if (max_abs_bits == 0) return 0;
  const int biased = static_cast<int>(max_abs_bits >> 23);
  // Subnormal M = bits * 2^-149.
  const int floor_log2 = biased != 0
                             ? biased - 127
                             : 31 - __clz(static_cast<int>(max_abs_bits)) - 149;
  return kFixedPointBits - 1 - floor_log2 - log2_samples;
}

template <int V>
__device__ __forceinline__ void LoadGrads(const float* p, float (&g)[V]) {
  if constexpr (V == 4) {
    const float4 v = __ldg(reinterpret_cast<const float4*>(p));
    g[0] = v.x;
    g[1] = v.y;
    g[2] = v.z;
    g[3] = v.w;
  } else if constexpr (V == 2) {
    const float2 v = __ldg(reinterpret_cast<const float2*>(p));
    g[0] = v.x;
    g[1] = v.y;
  } else {
    static_assert(V == 1, "vector width must be 1, 2 or 4");
    g[0] = __ldg(p);
  }
}

// Atomic mode: adds V contiguous products at out + offset.
template <typename Acc>
struct AtomicSink {
  Acc* out;

  __device__ AtomicSink Bind() const { return *this; }

  template <int V>
  __device__ __forceinline__ void Add(int64_t offset, const Acc (&c)[V]) const {
    Acc* p = out + offset;
#if CRG_VECTOR_ATOMICS
    constexpr bool kFloat = std::is_same<Acc, float>::value;
    if constexpr (kFloat && V == 4) {
      atomicAdd(reinterpret_cast<float4*>(p),
                make_float4(c[0], c[1], c[2], c[3]));
    } else if constexpr (kFloat && V == 2) {
      atomicAdd(reinterpret_cast<float2*>(p), make_float2(c[0], c[1]));
    } else
#endif
    {
#pragma unroll
      for (int k = 0; k < V; ++k) atomicAdd(p + k, c[k]);
    }
  }
};

// Deterministic mode. Bind() reads the max-|grads| pre-pass result and fixes
// the scale for the calling thread.
template <typename P>
struct FixedPointSink {
  unsigned long long* acc;
  uint32_t* flags;
  const uint32_t* max_abs_bits;
  int log2_samples;

  struct Bound {
    unsigned long long* acc;
    uint32_t* flags;
    double scale;

    template <int V>
    __device__ __forceinline__ void Add(int64_t offset, const P (&c)[V]) const {
#pragma unroll
      for (int k = 0; k < V; ++k) AddOne(offset + k, c[k]);
    }

    __device__ __forceinline__ void AddOne(int64_t i, P v) const {
      if (isfinite(v)) {
        // Exact scaling by a power of two, one rounding to nearest even.
        const long long q = __double2ll_rn(static_cast<double>(v) * scale);
        atomicAdd(acc + i, static_cast<unsigned long long>(q));
      } else {
        const uint32_t flag =
            isnan(v) ? kFlagNaN : (v > 0 ? kFlagPosInf : kFlagNegInf);
        atomicOr(flags + i / kFlagsPerWord,
                 flag << (2 * static_cast<int>(i % kFlagsPerWord)));
      }
    }
  };

  __device__ Bound Bind() const {
    return Bound{acc, flags,
                 Pow2(FixedPointExponent(*max_abs_bits, log2_samples))};
  }
};

// Adds the contributions of one sample's channel vector through `sink`.
// The products are those of the CPU kernel: bilinear t = wy * g, then
// wx * t, with float weights (1 - frac, frac) and the products in P; nearest
// adds g. A sample outside the image (or of an invalid box_ind) adds nothing.
template <typename P, int V, typename Sink>
__device__ __forceinline__ void ScatterSample(const GradImageArgs& a,
                                              int64_t box, int64_t cy,
                                              int64_t cx, int64_t vec,
                                              int64_t grad_offset,
                                              const Sink& sink) {
  const int64_t image = __ldg(a.box_ind + box);
  if (image < 0 || image >= a.batch) return;  // Callers validate; be safe.
  const float* b = a.boxes + 4 * box;
  const AxisSample ys = MakeAxisSample(__ldg(b + 0), __ldg(b + 2), a.height,
                                       a.crop_height, cy, a.method);
  if (!ys.valid) return;
  const AxisSample xs = MakeAxisSample(__ldg(b + 1), __ldg(b + 3), a.width,
                                       a.crop_width, cx, a.method);
  if (!xs.valid) return;

  float g[V];
  LoadGrads<V>(a.grads + grad_offset, g);
  const int64_t first_row = image * a.height;
  const int64_t channel = vec * V;
  auto offset = [&](int64_t y, int64_t x) {
    return ((first_row + y) * a.width + x) * a.depth + channel;
  };

  if (a.method == Method::kNearest) {
    P c[V];
#pragma unroll
    for (int k = 0; k < V; ++k) c[k] = static_cast<P>(g[k]);
    sink.Add(offset(ys.taps.lo, xs.taps.lo), c);
    return;
  }
  const TapWeights<P> y_weights = MakeTapWeights<P>(ys.taps.frac);
  const TapWeights<P> x_weights = MakeTapWeights<P>(xs.taps.frac);
  const P wy[2] = {y_weights.lo, y_weights.hi};
  const P wx[2] = {x_weights.lo, x_weights.hi};
  const int64_t rows[2] = {ys.taps.lo, ys.taps.hi};
  const int64_t cols[2] = {xs.taps.lo, xs.taps.hi};
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    P t[V];
#pragma unroll
    for (int k = 0; k < V; ++k) t[k] = wy[r] * static_cast<P>(g[k]);
#pragma unroll
    for (int c = 0; c < 2; ++c) {
      P v[V];
#pragma unroll
      for (int k = 0; k < V; ++k) v[k] = wx[c] * t[k];
      sink.Add(offset(rows[r], cols[c]), v);
    }
  }
}

// ---------------------------------------------------------------------------
// Kernels. All use grid-stride loops; Index is uint32_t when the whole index
// range (plus one grid stride) fits, else uint64_t; offsets are int64.

// One thread per (box, crop row, crop column, channel vector of V). The flat
// index i equals the grads offset / V, since grads is [N, ch, cw, D].
template <typename P, int V, typename Index, typename Sink>
__global__ void __launch_bounds__(kThreadsPerBlock)
    ScatterKernel(const GradImageArgs args, const Index total,
                  const Sink unbound_sink) {
  const auto sink = unbound_sink.Bind();
  const Index vectors = static_cast<Index>(args.depth / V);
  const Index crop_width = static_cast<Index>(args.crop_width);
  const Index crop_height = static_cast<Index>(args.crop_height);
  const Index stride = static_cast<Index>(gridDim.x) * blockDim.x;
  for (Index i = static_cast<Index>(blockIdx.x) * blockDim.x + threadIdx.x;
       i < total; i += stride) {
    Index rest = i / vectors;
    const Index vec = i - rest * vectors;
    const Index cx = rest % crop_width;
    rest /= crop_width;
    const Index cy = rest % crop_height;
    const Index box = rest / crop_height;
    ScatterSample<P, V>(args, static_cast<int64_t>(box),
                        static_cast<int64_t>(cy), static_cast<int64_t>(cx),
                        static_cast<int64_t>(vec), static_cast<int64_t>(i) * V,
                        sink);
  }
}

__device__ __forceinline__ uint32_t MaxAbsFinite(uint32_t m, float x) {
  const uint32_t bits = __float_as_uint(x) & 0x7fffffffu;
  // Bit patterns of non-negative floats order like their values; NaN and Inf
  // (>= 0x7f800000) are left out.
  return bits < 0x7f800000u ? max(m, bits) : m;
}

// Pre-pass of deterministic mode: *max_abs_bits = bits of max finite |grads|.
// Max is order-independent, so the result is deterministic.
__global__ void __launch_bounds__(kThreadsPerBlock)
    MaxAbsFiniteKernel(const float* grads, int64_t size, bool vectorized,
                       uint32_t* max_abs_bits) {
  const int64_t start =
      static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  uint32_t m = 0;
  int64_t tail = 0;
  if (vectorized) {
    const float4* g4 = reinterpret_cast<const float4*>(grads);
    const int64_t size4 = size / 4;
    for (int64_t i = start; i < size4; i += stride) {
      const float4 v = __ldg(g4 + i);
      m = MaxAbsFinite(MaxAbsFinite(m, v.x), v.y);
      m = MaxAbsFinite(MaxAbsFinite(m, v.z), v.w);
    }
    tail = size4 * 4;
  }
  for (int64_t i = tail + start; i < size; i += stride) {
    m = MaxAbsFinite(m, __ldg(grads + i));
  }
  for (int lanes = 16; lanes > 0; lanes /= 2) {
    m = max(m, __shfl_xor_sync(0xffffffffu, m, lanes));
  }
  if ((threadIdx.x & 31) == 0 && m != 0) atomicMax(max_abs_bits, m);
}

template <typename T>
__device__ __forceinline__ T FromDouble(double v) {
  if constexpr (std::is_same<T, double>::value) {
    return v;
  } else {
    // Half and bfloat16 round through float, like the float accumulator of
    // the other paths.
    return FromFloatAccumulator<T>::Convert(__double2float_rn(v));
  }
}

// Deterministic mode, last step: output = acc / scale, or the IEEE value of a
// sum with non-finite terms. For double output acc aliases out (each element
// is read, then written, by the same thread).
template <typename T>
__global__ void __launch_bounds__(kThreadsPerBlock)
    FixedPointToOutputKernel(const unsigned long long* acc,
                             const uint32_t* flags,
                             const uint32_t* max_abs_bits, int log2_samples,
                             int64_t size, T* out) {
  const double inverse_scale =
      Pow2(-FixedPointExponent(*max_abs_bits, log2_samples));
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
       i < size; i += stride) {
    const uint32_t flag = (__ldg(flags + i / kFlagsPerWord) >>
                           (2 * static_cast<int>(i % kFlagsPerWord))) &
                          kFlagNaN;
    double v;
    if (flag == 0) {
      // int64 -> double is exact below 2^53; scaling by 2^-e is exact.
      v = static_cast<double>(static_cast<long long>(acc[i])) * inverse_scale;
    } else if (flag == kFlagNaN) {
      v = __longlong_as_double(0x7ff8000000000000LL);
    } else {
      const double inf = __longlong_as_double(0x7ff0000000000000LL);
      v = flag == kFlagPosInf ? inf : -inf;
    }
    out[i] = FromDouble<T>(v);
  }
}

// Atomic mode, half and bfloat16: one rounding of the float sums.
template <typename T>
__global__ void __launch_bounds__(kThreadsPerBlock)
    FloatToOutputKernel(const float* __restrict__ acc, int64_t size,
                        T* __restrict__ out) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
       i < size; i += stride) {
    out[i] = FromFloatAccumulator<T>::Convert(__ldg(acc + i));
  }
}

__global__ void __launch_bounds__(kThreadsPerBlock)
    CheckBoxValuesKernel(const float* boxes, const int32_t* box_ind,
                         int64_t num_boxes, int64_t batch, int32_t* status) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  int32_t worst = kBoxesOk;
  for (int64_t n = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
       n < num_boxes; n += stride) {
    for (int k = 0; k < 4; ++k) {
      if (!isfinite(__ldg(boxes + 4 * n + k))) {
        worst = max(worst, static_cast<int32_t>(kBoxesNonFinite));
      }
    }
    const int64_t b = __ldg(box_ind + n);
    if (b < 0 || b >= batch) worst = kBoxIndexOutOfRange;
  }
  if (worst != kBoxesOk) atomicMax(status, worst);
}

// ---------------------------------------------------------------------------
// Host side.

struct Sizes {
  int64_t output = 0;    // batch * height * width * depth
  int64_t samples = 0;   // num_boxes * crop_height * crop_width
  int log2_samples = 0;  // ceil(log2(samples))
};

// Rejects negative sizes and unknown methods; fills the derived sizes.
bool ValidateArgsAndComputeSizes(const GradImageArgs& a, Sizes* s) {
  if (a.num_boxes < 0 || a.crop_height < 0 || a.crop_width < 0 || a.batch < 0 ||
      a.height < 0 || a.width < 0 || a.depth < 0) {
    return false;
  }
  if (a.method != Method::kBilinear && a.method != Method::kNearest) {
    return false;
  }
  s->output = a.batch * a.height * a.width * a.depth;
  s->samples = a.num_boxes * a.crop_height * a.crop_width;
  s->log2_samples = 0;
  while ((int64_t{1} << s->log2_samples) < s->samples) ++s->log2_samples;
  return true;
}

size_t RoundUp(size_t x, size_t m) { return (x + m - 1) / m * m; }

bool IsAligned(const void* p, size_t bytes) {
  return reinterpret_cast<uintptr_t>(p) % bytes == 0;
}

struct DeterministicLayout {
  size_t flags_offset = kHeaderBytes;
  size_t acc_offset = 0;
  size_t total = 0;
};

DeterministicLayout GetDeterministicLayout(int64_t output, bool in_place) {
  DeterministicLayout l;
  const size_t flag_words = (output + kFlagsPerWord - 1) / kFlagsPerWord;
  l.acc_offset = l.flags_offset +
                 RoundUp(flag_words * sizeof(uint32_t), kScratchAlignment);
  l.total = l.acc_offset +
            (in_place ? 0 : static_cast<size_t>(output) * sizeof(int64_t));
  return l;
}

template <typename T>
size_t ScratchBytes(const Sizes& s, bool deterministic) {
  if (s.output == 0 || s.samples == 0) return 0;
  if (deterministic) {
    return GetDeterministicLayout(s.output, std::is_same<T, double>::value)
        .total;
  }
  if (std::is_same<typename AccumulatorOf<T>::type, T>::value) return 0;
  return RoundUp(static_cast<size_t>(s.output) * sizeof(float),
                 kScratchAlignment);
}

// Blocks for a grid-stride loop over `work` items.
cudaError_t GridSize(int64_t work, int* blocks) {
  int device = 0;
  int sms = 0;
  cudaError_t err = cudaGetDevice(&device);
  if (err != cudaSuccess) return err;
  err = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
  if (err != cudaSuccess) return err;
  const int64_t wanted = (work + kThreadsPerBlock - 1) / kThreadsPerBlock;
  *blocks = static_cast<int>(
      std::max<int64_t>(1, std::min<int64_t>(wanted, sms * kBlocksPerSm)));
  return cudaSuccess;
}

// Channels per thread: 4 or 2 when depth and the alignment of grads (and of
// `vector_acc`, the accumulator of vector atomics, if any) allow, else 1.
int VectorWidth(int64_t depth, const float* grads, const float* vector_acc) {
  for (int v : {4, 2}) {
    if (depth % v == 0 && IsAligned(grads, v * sizeof(float)) &&
        (vector_acc == nullptr || IsAligned(vector_acc, v * sizeof(float)))) {
      return v;
    }
  }
  return 1;
}

template <typename P, int V, typename Sink>
cudaError_t LaunchScatterWidth(const GradImageArgs& a, const Sizes& s,
                               const Sink& sink, cudaStream_t stream) {
  const int64_t total = s.samples * (a.depth / V);
  int blocks = 0;
  const cudaError_t err = GridSize(total, &blocks);
  if (err != cudaSuccess) return err;
  const uint64_t end = static_cast<uint64_t>(total) +
                       static_cast<uint64_t>(blocks) * kThreadsPerBlock;
  if (end <= UINT32_MAX) {
    ScatterKernel<P, V, uint32_t, Sink>
        <<<blocks, kThreadsPerBlock, 0, stream>>>(
            a, static_cast<uint32_t>(total), sink);
  } else {
    ScatterKernel<P, V, uint64_t, Sink>
        <<<blocks, kThreadsPerBlock, 0, stream>>>(
            a, static_cast<uint64_t>(total), sink);
  }
  return cudaGetLastError();
}

template <typename P, typename Sink>
cudaError_t LaunchScatter(const GradImageArgs& a, const Sizes& s, int width,
                          const Sink& sink, cudaStream_t stream) {
  switch (width) {
    case 4:
      return LaunchScatterWidth<P, 4>(a, s, sink, stream);
    case 2:
      return LaunchScatterWidth<P, 2>(a, s, sink, stream);
    default:
      return LaunchScatterWidth<P, 1>(a, s, sink, stream);
  }
}

template <typename T>
cudaError_t LaunchAtomic(const GradImageArgs& a, const Sizes& s, T* output,
                         void* scratch, cudaStream_t stream) {
  using Acc = typename AccumulatorOf<T>::type;
  constexpr bool kDirect = std::is_same<T, Acc>::value;
  Acc* acc;
  if constexpr (kDirect) {
    acc = output;
  } else {
    acc = static_cast<float*>(scratch);
  }
  cudaError_t err = cudaMemsetAsync(acc, 0, s.output * sizeof(Acc), stream);
  if (err != cudaSuccess) return err;
  const float* vector_acc = nullptr;  // Vector atomics exist for float only.
  if constexpr (std::is_same<Acc, float>::value) vector_acc = acc;
  err = LaunchScatter<Acc>(a, s, VectorWidth(a.depth, a.grads, vector_acc),
                           AtomicSink<Acc>{acc}, stream);
  if (err != cudaSuccess) return err;
  if constexpr (!kDirect) {
    int blocks = 0;
    err = GridSize(s.output, &blocks);
    if (err != cudaSuccess) return err;
    FloatToOutputKernel<T>
        <<<blocks, kThreadsPerBlock, 0, stream>>>(acc, s.output, output);
    err = cudaGetLastError();
  }
  return err;
}

template <typename T>
cudaError_t LaunchDeterministic(const GradImageArgs& a, const Sizes& s,
                                T* output, void* scratch, cudaStream_t stream) {
  using P = typename AccumulatorOf<T>::type;
  // A double output has room for the int64 accumulator.
  constexpr bool kInPlace = std::is_same<T, double>::value;
  const DeterministicLayout layout = GetDeterministicLayout(s.output, kInPlace);
  char* base = static_cast<char*>(scratch);
  uint32_t* max_abs_bits = reinterpret_cast<uint32_t*>(base);
  uint32_t* flags = reinterpret_cast<uint32_t*>(base + layout.flags_offset);
  unsigned long long* acc =
      kInPlace
          ? reinterpret_cast<unsigned long long*>(output)
          : reinterpret_cast<unsigned long long*>(base + layout.acc_offset);

  cudaError_t err = cudaMemsetAsync(scratch, 0, layout.total, stream);
  if (err != cudaSuccess) return err;
  if constexpr (kInPlace) {
    err = cudaMemsetAsync(output, 0, s.output * sizeof(T), stream);
    if (err != cudaSuccess) return err;
  }

  const int64_t grad_size = s.samples * a.depth;
  int blocks = 0;
  err = GridSize(grad_size / 4 + 1, &blocks);
  if (err != cudaSuccess) return err;
  MaxAbsFiniteKernel<<<blocks, kThreadsPerBlock, 0, stream>>>(
      a.grads, grad_size, IsAligned(a.grads, sizeof(float4)), max_abs_bits);
  err = cudaGetLastError();
  if (err != cudaSuccess) return err;

  err = LaunchScatter<P>(
      a, s, VectorWidth(a.depth, a.grads, nullptr),
      FixedPointSink<P>{acc, flags, max_abs_bits, s.log2_samples}, stream);
  if (err != cudaSuccess) return err;

  err = GridSize(s.output, &blocks);
  if (err != cudaSuccess) return err;
  FixedPointToOutputKernel<T><<<blocks, kThreadsPerBlock, 0, stream>>>(
      acc, flags, max_abs_bits, s.log2_samples, s.output, output);
  return cudaGetLastError();
}

}  // namespace

// ---------------------------------------------------------------------------
// Public API.

size_t GradImageScratchBytes(const GradImageArgs& args, DType dtype,
                             bool deterministic) {
  Sizes s;
  if (!ValidateArgsAndComputeSizes(args, &s)) return 0;
  switch (dtype) {
    case DType::kHalf:
      return ScratchBytes<Half>(s, deterministic);
    case DType::kBFloat16:
      return ScratchBytes<BFloat16>(s, deterministic);
    case DType::kFloat:
      return ScratchBytes<float>(s, deterministic);
    case DType::kDouble:
      return ScratchBytes<double>(s, deterministic);
  }
  return 0;
}

template <typename T>
cudaError_t LaunchCropAndResizeGradImageTyped(const GradImageArgs& args,
                                              bool deterministic, T* output,
                                              void* scratch,
                                              size_t scratch_bytes,
                                              cudaStream_t stream) {
  // The launches below report errors through cudaGetLastError(), which would
  // also return an earlier, unrelated error of this thread: clear it first.
  (void)cudaGetLastError();
  Sizes s;
  if (!ValidateArgsAndComputeSizes(args, &s)) return cudaErrorInvalidValue;
  if (s.output == 0) return cudaSuccess;
  if (output == nullptr) return cudaErrorInvalidValue;
  // The kernels access the output by element (and, for double in
  // deterministic mode, as int64) and the inputs as 4-byte words: a
  // misaligned pointer (e.g. a view from CuPy or torch) would fault inside a
  // kernel and poison the caller's CUDA context, so refuse it here.
  if (!IsAligned(output, sizeof(T))) return cudaErrorMisalignedAddress;
  if (s.samples == 0) {
    return cudaMemsetAsync(output, 0, s.output * sizeof(T), stream);
  }
  if (args.grads == nullptr || args.boxes == nullptr ||
      args.box_ind == nullptr) {
    return cudaErrorInvalidValue;
  }
  if (!IsAligned(args.grads, 4) || !IsAligned(args.boxes, 4) ||
      !IsAligned(args.box_ind, 4)) {
    return cudaErrorMisalignedAddress;
  }
  const size_t needed = ScratchBytes<T>(s, deterministic);
  if (needed > 0 && (scratch == nullptr || scratch_bytes < needed ||
                     !IsAligned(scratch, 16))) {
    return cudaErrorInvalidValue;
  }
  return deterministic ? LaunchDeterministic(args, s, output, scratch, stream)
                       : LaunchAtomic(args, s, output, scratch, stream);
}

template cudaError_t LaunchCropAndResizeGradImageTyped<Half>(
    const GradImageArgs&, bool, Half*, void*, size_t, cudaStream_t);
template cudaError_t LaunchCropAndResizeGradImageTyped<BFloat16>(
    const GradImageArgs&, bool, BFloat16*, void*, size_t, cudaStream_t);
template cudaError_t LaunchCropAndResizeGradImageTyped<float>(
    const GradImageArgs&, bool, float*, void*, size_t, cudaStream_t);
template cudaError_t LaunchCropAndResizeGradImageTyped<double>(
    const GradImageArgs&, bool, double*, void*, size_t, cudaStream_t);

cudaError_t LaunchCropAndResizeGradImage(const GradImageArgs& args, DType dtype,
                                         bool deterministic, void* output,
                                         void* scratch, size_t scratch_bytes,
                                         cudaStream_t stream) {
  switch (dtype) {
    case DType::kHalf:
      return LaunchCropAndResizeGradImageTyped(args, deterministic,
                                               static_cast<Half*>(output),
                                               scratch, scratch_bytes, stream);
    case DType::kBFloat16:
      return LaunchCropAndResizeGradImageTyped(args, deterministic,
                                               static_cast<BFloat16*>(output),
                                               scratch, scratch_bytes, stream);
    case DType::kFloat:
      return LaunchCropAndResizeGradImageTyped(args, deterministic,
                                               static_cast<float*>(output),
                                               scratch, scratch_bytes, stream);
    case DType::kDouble:
      return LaunchCropAndResizeGradImageTyped(args, deterministic,
                                               static_cast<double*>(output),
                                               scratch, scratch_bytes, stream);
  }
  return cudaErrorInvalidValue;
}

cudaError_t LaunchCheckBoxValues(const float* boxes, const int32_t* box_ind,
                                 int64_t num_boxes, int64_t batch,
                                 int32_t* device_status, cudaStream_t stream) {
  (void)cudaGetLastError();  // As in LaunchCropAndResizeGradImageTyped.
  if (device_status == nullptr || num_boxes < 0) return cudaErrorInvalidValue;
  if (!IsAligned(device_status, 4)) return cudaErrorMisalignedAddress;
  cudaError_t err = cudaMemsetAsync(device_status, 0, sizeof(int32_t), stream);
  if (err != cudaSuccess || num_boxes == 0) return err;
  if (boxes == nullptr || box_ind == nullptr) return cudaErrorInvalidValue;
  if (!IsAligned(boxes, 4) || !IsAligned(box_ind, 4)) {
    return cudaErrorMisalignedAddress;
  }
  int blocks = 0;
  err = GridSize(num_boxes, &blocks);
  if (err != cudaSuccess) return err;
  CheckBoxValuesKernel<<<blocks, kThreadsPerBlock, 0, stream>>>(
      boxes, box_ind, num_boxes, batch, device_status);
  return cudaGetLastError();
}

cudaError_t CheckKernelImage() {
  cudaFuncAttributes attributes;
  const cudaError_t err =
      cudaFuncGetAttributes(&attributes, CheckBoxValuesKernel);
  // Not this thread's error to keep: the callers report it themselves.
  if (err != cudaSuccess) (void)cudaGetLastError();
  return err;
}

}  // namespace cuda
}  // namespace crop_and_resize_grad
