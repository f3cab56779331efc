// Host emulation of the CUDA launch model, for running the real kernel bodies
// of cuda/*.cu on the CPU with the host compiler. See README.md in this folder
// for what it models and what it does not.
//
// Two parts:
//  - the runtime part (always): cudaError_t, dim3/float2/float4, the runtime
//    API calls the launchers use, the launch entry point that replaces
//    <<<...>>>, and the emulator's controls (scheduling policy, SM count,
//    device memory registry, counters);
//  - the device part (only where CRG_EMU_DEVICE_CODE is defined, i.e. in the
//    translation units that compile kernel sources): __global__ and friends,
//    threadIdx/blockIdx/..., atomics, warp shuffles, the intrinsics, and the
//    __CUDACC__ / __CUDA_ARCH__ macros.
#ifndef CRG_TESTS_CUDA_EMULATION_CUDA_SHIM_H_
#define CRG_TESTS_CUDA_EMULATION_CUDA_SHIM_H_

// Every system header the kernel sources use is included here, before
// __CUDACC__ is defined below, so no system header sees it.
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

// ---------------------------------------------------------------------------
// Runtime part.

// The values are those of CUDA's driver_types.h.
enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInitializationError = 3,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidDeviceFunction = 98,
  cudaErrorInsufficientDriver = 35,
  cudaErrorNoDevice = 100,
  cudaErrorInvalidDevice = 101,
  cudaErrorNoKernelImageForDevice = 209,
  cudaErrorIllegalAddress = 700,
  cudaErrorMisalignedAddress = 716,
  cudaErrorLaunchFailure = 719,
  cudaErrorUnknown = 999,
};
typedef cudaError_t cudaError;

struct CUstream_st;
typedef CUstream_st* cudaStream_t;

enum cudaDeviceAttr {
  cudaDevAttrMaxThreadsPerBlock = 1,
  cudaDevAttrMultiProcessorCount = 16,
  cudaDevAttrComputeCapabilityMajor = 75,
  cudaDevAttrComputeCapabilityMinor = 76,
};

enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4,
};

struct cudaFuncAttributes {
  int binaryVersion;
  int ptxVersion;
  int maxThreadsPerBlock;
};

struct uint3 {
  unsigned int x, y, z;
};
struct dim3 {
  unsigned int x, y, z;
  constexpr dim3(unsigned int vx = 1, unsigned int vy = 1, unsigned int vz = 1)
      : x(vx), y(vy), z(vz) {}
};
struct alignas(8) float2 {
  float x, y;
};
struct alignas(16) float4 {
  float x, y, z, w;
};
inline float2 make_float2(float x, float y) { return float2{x, y}; }
inline float4 make_float4(float x, float y, float z, float w) {
  return float4{x, y, z, w};
}

const char* cudaGetErrorString(cudaError_t err);
const char* cudaGetErrorName(cudaError_t err);
cudaError_t cudaGetLastError();
cudaError_t cudaPeekAtLastError();
cudaError_t cudaGetDevice(int* device);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device);
cudaError_t cudaDriverGetVersion(int* version);
cudaError_t cudaRuntimeGetVersion(int* version);
cudaError_t cudaMemsetAsync(void* ptr, int value, size_t bytes,
                            cudaStream_t stream = nullptr);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes,
                            cudaMemcpyKind kind, cudaStream_t stream = nullptr);
cudaError_t cudaStreamSynchronize(cudaStream_t stream);
cudaError_t cudaFuncGetAttributesImpl(cudaFuncAttributes* attr,
                                      const void* func);
template <typename F>
cudaError_t cudaFuncGetAttributes(cudaFuncAttributes* attr, F* func) {
  return cudaFuncGetAttributesImpl(attr, reinterpret_cast<const void*>(func));
}

namespace crg_emu {

// How the threads of a block are interleaved.
//  kInOrder: thread 0, 1, 2, ... each to completion (a thread only gives way
//            at a warp shuffle it has to wait at); blocks in order.
//  kShuffled: blocks in a random order; within a block, at every atomic and
//             every shuffle the scheduler switches to a random runnable
//             thread, so atomics to one address land in a random order.
enum class Schedule { kInOrder, kShuffled };

struct Options {
  Schedule schedule = Schedule::kShuffled;
  uint64_t seed = 1;
  int multiprocessors = 4;         // cudaDevAttrMultiProcessorCount
  int cc_major = 9, cc_minor = 0;  // compute capability reported
  int driver_version = 13000;      // cudaDriverGetVersion
  int runtime_version = 13000;     // cudaRuntimeGetVersion
  // When set, cudaFuncGetAttributes fails with this error (e.g.
  // cudaErrorNoKernelImageForDevice), as for a GPU without a usable image.
  cudaError_t func_attributes_error = cudaSuccess;
};
Options& GetOptions();

// Counters since the last ResetCounters().
struct Counters {
  int64_t launches = 0;
  int64_t threads = 0;
  int64_t scalar_atomics = 0;  // every scalar atomic operation
  int64_t float2_atomics = 0;  // atomicAdd(float2*)
  int64_t float4_atomics = 0;  // atomicAdd(float4*)
  int64_t shuffles = 0;        // completed warp-wide shuffles
  int64_t barriers = 0;        // completed block-wide __syncthreads()
  int64_t shared_bytes = 0;    // __shared__ bytes allocated (all blocks)
  int64_t context_switches = 0;
  int64_t memsets = 0;
  int64_t memcpys = 0;
};
Counters& GetCounters();
void ResetCounters();

// Sets the sticky "last error" (as an earlier failing call would).
void SetLastError(cudaError_t err);

// Device memory. Accesses through atomics and __ldg must fall inside a
// registered range, or the emulator reports an illegal address and aborts.
// DeviceMalloc returns `bytes` at `offset` bytes past a 256-byte aligned
// block, registered exactly (ASan sees the slack before it as addressable).
void* DeviceMalloc(size_t bytes, size_t offset = 0);
void DeviceFree(void* p);
void RegisterDeviceRange(const void* p, size_t bytes);
void UnregisterDeviceRange(const void* p);

// Whether the emulated device code flushes float32 denormals (-ftz=true):
// fixed per build by CRG_EMU_FTZ, see README.md.
bool FlushesDenormals();

// Internals used by the device part and the launch entry point.
namespace internal {
struct ThreadState {
  uint3 thread_idx;
  uint3 block_idx;
  dim3 block_dim;
  dim3 grid_dim;
  int linear;  // thread index within the block
};
const ThreadState& Current();
void Yield();  // a scheduling point (atomics)
uint64_t ShuffleXor(uint32_t mask, uint64_t bits, int lane_mask, int width);
void SyncThreads();  // __syncthreads(): a block-wide barrier
// The current block's copy of the __shared__ variable identified by `key`
// (the address of a tag the rewrite emits next to the declaration): `bytes`
// of fresh storage per block, filled with 0xff bytes (a NaN for floating
// point) until written, freed when the block ends.
void* SharedStorage(const void* key, size_t bytes, size_t alignment,
                    const char* name);
template <typename T>
inline T& SharedVariable(const void* key, const char* name) {
  static_assert(std::is_trivially_default_constructible<T>::value &&
                    std::is_trivially_destructible<T>::value,
                "__shared__ variables must be trivial");
  return *static_cast<T*>(SharedStorage(key, sizeof(T), alignof(T), name));
}
[[noreturn]] void Fault(const char* what, const void* address);
void CheckDeviceAccess(const void* p, size_t bytes, size_t alignment,
                       const char* what);
template <typename To, typename From>
inline To BitCast(const From& v) {
  static_assert(sizeof(To) == sizeof(From), "size");
  To t;
  memcpy(&t, &v, sizeof(t));
  return t;
}

// Flushes a float32 denormal to a zero of the same sign.
inline float FlushFloat(float v) {
  const uint32_t bits = BitCast<uint32_t>(v);
  return (bits & 0x7f800000u) == 0 ? BitCast<float>(bits & 0x80000000u) : v;
}

// Float atomics (RED/ATOM .F32 and .F32x2/x4) flush denormal inputs and
// results on every architecture, whatever -ftz says.
float AddFloatFlushed(float a, float b);
// Double arithmetic never flushes on the GPU, whatever the host's MXCSR.
double AddDoubleExact(double a, double b);

// Runs `body` once per thread of the grid. Returns the launch error, if any
// (also stored as the sticky last error).
cudaError_t RunGrid(dim3 grid, dim3 block, size_t shared_bytes,
                    cudaStream_t stream, bool ftz,
                    const std::function<void()>& body);
}  // namespace internal

// Replaces kernel<<<grid, block, shared, stream>>>(args...): the build
// rewrites it to Launch(grid, block, shared, stream)(kernel, args...).
struct Launcher {
  dim3 grid, block;
  size_t shared_bytes;
  cudaStream_t stream;

  template <typename... Params, typename... Args>
  void operator()(void (*kernel)(Params...), Args&&... args) const {
    static_assert(sizeof...(Params) == sizeof...(Args), "kernel arguments");
    // Kernel parameters are copied once at launch, as CUDA does; each thread
    // then gets its own copy.
    const std::tuple<std::decay_t<Params>...> params(
        std::forward<Args>(args)...);
    internal::RunGrid(grid, block, shared_bytes, stream,
#if defined(CRG_EMU_FTZ) && CRG_EMU_FTZ
                      true,
#else
                      false,
#endif
                      [&] { std::apply(kernel, params); });
  }
};
inline Launcher Launch(dim3 grid, dim3 block, size_t shared_bytes = 0,
                       cudaStream_t stream = nullptr) {
  return Launcher{grid, block, shared_bytes, stream};
}

}  // namespace crg_emu

// ---------------------------------------------------------------------------
// Device part.
#if defined(CRG_EMU_DEVICE_CODE)

#if !defined(CRG_EMU_ARCH)
#error "define CRG_EMU_ARCH (e.g. 900) for the emulated __CUDA_ARCH__"
#endif
#define __CUDACC__ 1
#define __CUDA_ARCH__ CRG_EMU_ARCH
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))
#define __launch_bounds__(...)

#define threadIdx (::crg_emu::internal::Current().thread_idx)
#define blockIdx (::crg_emu::internal::Current().block_idx)
#define blockDim (::crg_emu::internal::Current().block_dim)
#define gridDim (::crg_emu::internal::Current().grid_dim)

namespace crg_emu {
namespace internal {

template <typename T>
inline void CheckAtomic(T* p, const char* what) {
  CheckDeviceAccess(p, sizeof(T), sizeof(T), what);
  Yield();
}

}  // namespace internal
}  // namespace crg_emu

// Atomics. Each one is a scheduling point, then a read-modify-write.
inline float atomicAdd(float* p, float v) {
  crg_emu::internal::CheckAtomic(p, "atomicAdd(float*)");
  ++crg_emu::GetCounters().scalar_atomics;
  const float old = *p;
  *p = crg_emu::internal::AddFloatFlushed(old, v);
  return old;
}
inline double atomicAdd(double* p, double v) {
  crg_emu::internal::CheckAtomic(p, "atomicAdd(double*)");
  ++crg_emu::GetCounters().scalar_atomics;
  const double old = *p;
  *p = crg_emu::internal::AddDoubleExact(old, v);
  return old;
}
inline unsigned long long atomicAdd(unsigned long long* p,
                                    unsigned long long v) {
  crg_emu::internal::CheckAtomic(p, "atomicAdd(unsigned long long*)");
  ++crg_emu::GetCounters().scalar_atomics;
  const unsigned long long old = *p;
  *p = old + v;  // Wraps modulo 2^64, as the hardware does.
  return old;
}
inline unsigned int atomicAdd(unsigned int* p, unsigned int v) {
  crg_emu::internal::CheckAtomic(p, "atomicAdd(unsigned*)");
  ++crg_emu::GetCounters().scalar_atomics;
  const unsigned int old = *p;
  *p = old + v;
  return old;
}
inline unsigned int atomicOr(unsigned int* p, unsigned int v) {
  crg_emu::internal::CheckAtomic(p, "atomicOr(unsigned*)");
  ++crg_emu::GetCounters().scalar_atomics;
  const unsigned int old = *p;
  *p = old | v;
  return old;
}
inline unsigned long long atomicOr(unsigned long long* p,
                                   unsigned long long v) {
  crg_emu::internal::CheckAtomic(p, "atomicOr(unsigned long long*)");
  ++crg_emu::GetCounters().scalar_atomics;
  const unsigned long long old = *p;
  *p = old | v;
  return old;
}
inline unsigned int atomicMax(unsigned int* p, unsigned int v) {
  crg_emu::internal::CheckAtomic(p, "atomicMax(unsigned*)");
  ++crg_emu::GetCounters().scalar_atomics;
  const unsigned int old = *p;
  *p = std::max(old, v);
  return old;
}
inline int atomicMax(int* p, int v) {
  crg_emu::internal::CheckAtomic(p, "atomicMax(int*)");
  ++crg_emu::GetCounters().scalar_atomics;
  const int old = *p;
  *p = std::max(old, v);
  return old;
}
inline long long atomicMax(long long* p, long long v) {
  crg_emu::internal::CheckAtomic(p, "atomicMax(long long*)");
  ++crg_emu::GetCounters().scalar_atomics;
  const long long old = *p;
  *p = std::max(old, v);
  return old;
}
inline unsigned long long atomicMax(unsigned long long* p,
                                    unsigned long long v) {
  crg_emu::internal::CheckAtomic(p, "atomicMax(unsigned long long*)");
  ++crg_emu::GetCounters().scalar_atomics;
  const unsigned long long old = *p;
  *p = std::max(old, v);
  return old;
}

// Vector float atomics exist from sm_90 on. Atomic per element, not as a
// whole (as documented for the hardware); the address must be aligned to the
// vector size.
#if CRG_EMU_ARCH >= 900
inline float2 atomicAdd(float2* p, float2 v) {
  crg_emu::internal::CheckAtomic(p, "atomicAdd(float2*)");
  ++crg_emu::GetCounters().float2_atomics;
  const float2 old = *p;
  p->x = crg_emu::internal::AddFloatFlushed(old.x, v.x);
  p->y = crg_emu::internal::AddFloatFlushed(old.y, v.y);
  return old;
}
inline float4 atomicAdd(float4* p, float4 v) {
  crg_emu::internal::CheckAtomic(p, "atomicAdd(float4*)");
  ++crg_emu::GetCounters().float4_atomics;
  const float4 old = *p;
  p->x = crg_emu::internal::AddFloatFlushed(old.x, v.x);
  p->y = crg_emu::internal::AddFloatFlushed(old.y, v.y);
  p->z = crg_emu::internal::AddFloatFlushed(old.z, v.z);
  p->w = crg_emu::internal::AddFloatFlushed(old.w, v.w);
  return old;
}
#endif

// Warp shuffle: all lanes named in `mask` must arrive (lockstep); the
// emulator aborts if one exits or diverges instead.
template <typename T>
inline T __shfl_xor_sync(unsigned int mask, T var, int lane_mask,
                         int width = 32) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable<T>::value,
                "shuffle type");
  uint64_t bits = 0;
  memcpy(&bits, &var, sizeof(T));
  bits = crg_emu::internal::ShuffleXor(mask, bits, lane_mask, width);
  T out;
  memcpy(&out, &bits, sizeof(T));
  return out;
}

// Block-wide barrier: every thread of the block must arrive; the emulator
// aborts if one exits (or waits at a warp shuffle) instead.
inline void __syncthreads() { crg_emu::internal::SyncThreads(); }

// Read-only cached loads: a checked plain load.
template <typename T>
inline T __ldg(const T* p) {
  crg_emu::internal::CheckDeviceAccess(p, sizeof(T), alignof(T), "__ldg");
  return *p;
}

// Integer min/max overloads of the device library.
inline int max(int a, int b) { return a > b ? a : b; }
inline unsigned int max(unsigned int a, unsigned int b) {
  return a > b ? a : b;
}
inline long long max(long long a, long long b) { return a > b ? a : b; }
inline unsigned long long max(unsigned long long a, unsigned long long b) {
  return a > b ? a : b;
}
inline int min(int a, int b) { return a < b ? a : b; }
inline unsigned int min(unsigned int a, unsigned int b) {
  return a < b ? a : b;
}
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline unsigned long long min(unsigned long long a, unsigned long long b) {
  return a < b ? a : b;
}

// Explicitly rounded float operations. The host does each in SSE with round
// to nearest and no contraction (-ffp-contract=off); under the FTZ model the
// MXCSR flushes inputs and results as .ftz does.
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __double2float_rn(double v) { return static_cast<float>(v); }

// Round to nearest even; out of range the emulator aborts (the hardware
// saturates, but no kernel here may ever get there).
inline long long __double2ll_rn(double v) {
  if (!(v > -9223372036854775808.0 && v < 9223372036854775808.0)) {
    crg_emu::internal::Fault("__double2ll_rn out of range", nullptr);
  }
  return std::llrint(v);  // The default rounding mode: to nearest even.
}
inline double __longlong_as_double(long long v) {
  return crg_emu::internal::BitCast<double>(v);
}
inline long long __double_as_longlong(double v) {
  return crg_emu::internal::BitCast<long long>(v);
}
inline unsigned int __float_as_uint(float v) {
  return crg_emu::internal::BitCast<unsigned int>(v);
}
inline float __uint_as_float(unsigned int v) {
  return crg_emu::internal::BitCast<float>(v);
}
inline int __float_as_int(float v) {
  return crg_emu::internal::BitCast<int>(v);
}
inline int __clz(int v) {
  return v == 0 ? 32 : __builtin_clz(static_cast<unsigned int>(v));
}
inline int __clzll(long long v) {
  return v == 0 ? 64 : __builtin_clzll(static_cast<unsigned long long>(v));
}

#endif  // CRG_EMU_DEVICE_CODE

#endif  // CRG_TESTS_CUDA_EMULATION_CUDA_SHIM_H_
