// The emulator behind cuda_shim.h: a single OS thread runs every CUDA thread
// of a block as a fiber (ucontext), switching at atomics (in shuffled order)
// at warp shuffles (lockstep) and at __syncthreads() (block-wide barrier), with
// per-block __shared__ storage, plus the runtime API the launchers use.
#include "tests/cuda_emulation/cuda_shim.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <new>
#include <random>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#define CRG_EMU_X86 1
#else
#define CRG_EMU_X86 0
#endif

#if defined(__SANITIZE_ADDRESS__)
#define CRG_EMU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CRG_EMU_ASAN 1
#endif
#endif
#if defined(CRG_EMU_ASAN)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

#if !defined(CRG_EMU_FTZ)
#error "define CRG_EMU_FTZ to 0 or 1 (the CUDA build's -ftz setting)"
#endif

// Stack switching. On x86-64 a minimal hand-written switch (callee-saved
// registers, MXCSR and the x87 control word): no system call per switch, and
// nothing for ASan to intercept, unlike swapcontext, which ASan cannot follow
// and which costs a sigprocmask call each time. Elsewhere, ucontext.
#if defined(__x86_64__)
#define CRG_EMU_ASM_SWITCH 1
extern "C" void crg_emu_switch_stack(void** save_sp, void* new_sp);
asm(R"(
  .text
  .p2align 4
  .globl crg_emu_switch_stack
  .type crg_emu_switch_stack,@function
crg_emu_switch_stack:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size crg_emu_switch_stack, .-crg_emu_switch_stack
  .section .note.GNU-stack,"",@progbits
  .text
)");
#else
#define CRG_EMU_ASM_SWITCH 0
#endif

namespace crg_emu {
namespace {

cudaError_t g_last_error = cudaSuccess;
Options g_options;
Counters g_counters;
int g_device = 0;

// ---- device memory registry -------------------------------------------------

struct Range {
  size_t bytes;
  void* block;  // DeviceMalloc's allocation, or nullptr when only registered
  size_t block_bytes;
};
std::map<uintptr_t, Range>& Ranges() {
  static auto* ranges = new std::map<uintptr_t, Range>();
  return *ranges;
}

// ---- fibers
// -------------------------------------------------------------------

#if defined(CRG_EMU_ASAN)
constexpr size_t kStackBytes = 256 * 1024;
#else
constexpr size_t kStackBytes = 64 * 1024;
#endif

enum class FiberState { kReady, kWaitingShuffle, kWaitingBarrier, kDone };

struct Fiber {
#if CRG_EMU_ASM_SWITCH
  void* sp = nullptr;  // saved stack pointer while switched out
#else
  ucontext_t context;
#endif
  char* stack = nullptr;  // kStackBytes usable, a guard page below
  internal::ThreadState thread;
  FiberState state = FiberState::kReady;
  void* fake_stack = nullptr;  // ASan's fake stack while switched out
};

struct Warp {
  uint32_t arrived = 0;
  uint32_t mask = 0;
  int width = 32;
  uint64_t values[32];
  int lane_masks[32];
  uint64_t results[32];
};

// One __shared__ variable of the current block.
struct SharedSlot {
  const void* key;
  size_t bytes;
  size_t alignment;
  void* storage;
  const char* name;
};

struct Scheduler {
  std::vector<std::unique_ptr<Fiber>> fibers;  // reused across blocks
  std::vector<Warp> warps;
  int live = 0;  // threads of the current block not yet done
  int block_threads = 0;
  int barrier_arrived = 0;  // threads of the block waiting at __syncthreads
  std::vector<SharedSlot> shared;  // this block's __shared__ variables
  size_t shared_total = 0;         // their bytes
  size_t dynamic_shared = 0;       // the launch's dynamic shared bytes
  Fiber* current = nullptr;
  const std::function<void()>* body = nullptr;
  bool ftz = false;
#if CRG_EMU_ASM_SWITCH
  void* scheduler_sp = nullptr;
#else
  ucontext_t scheduler_context;
#endif
  const void* scheduler_stack_bottom = nullptr;
  size_t scheduler_stack_size = 0;
  void* scheduler_fake_stack = nullptr;
  std::mt19937_64 rng;
};
Scheduler g_sched;
bool g_in_kernel = false;

char* NewStack() {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  void* p = mmap(nullptr, kStackBytes + page, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    fprintf(stderr, "emulator: cannot map a fiber stack\n");
    abort();
  }
  mprotect(p, page, PROT_NONE);  // Guard page: a stack overflow faults.
  return static_cast<char*>(p) + page;
}

void SetFlushMode(bool ftz) {
#if CRG_EMU_X86
  // FTZ (bit 15) flushes results, DAZ (bit 6) flushes inputs.
  unsigned int csr = _mm_getcsr() & ~0x8040u;
  if (ftz) csr |= 0x8040u;
  _mm_setcsr(csr);
#else
  if (ftz) {
    fprintf(stderr, "emulator: the FTZ model needs an x86 host\n");
    abort();
  }
#endif
}

// Switches from the scheduler to `f` and back.
void RunFiber(Fiber* f) {
  g_sched.current = f;
  ++g_counters.context_switches;
#if defined(CRG_EMU_ASAN)
  __sanitizer_start_switch_fiber(&g_sched.scheduler_fake_stack, f->stack,
                                 kStackBytes);
#endif
#if CRG_EMU_ASM_SWITCH
  crg_emu_switch_stack(&g_sched.scheduler_sp, f->sp);
#else
  swapcontext(&g_sched.scheduler_context, &f->context);
#endif
#if defined(CRG_EMU_ASAN)
  __sanitizer_finish_switch_fiber(g_sched.scheduler_fake_stack, nullptr,
                                  nullptr);
#endif
  g_sched.current = nullptr;
}

// From a fiber back to the scheduler; returns when the scheduler resumes it.
void SwitchToScheduler(Fiber* f, bool exiting) {
#if defined(CRG_EMU_ASAN)
  __sanitizer_start_switch_fiber(exiting ? nullptr : &f->fake_stack,
                                 g_sched.scheduler_stack_bottom,
                                 g_sched.scheduler_stack_size);
#else
  (void)exiting;
#endif
#if CRG_EMU_ASM_SWITCH
  crg_emu_switch_stack(&f->sp, g_sched.scheduler_sp);
#else
  swapcontext(&f->context, &g_sched.scheduler_context);
#endif
#if defined(CRG_EMU_ASAN)
  __sanitizer_finish_switch_fiber(f->fake_stack,
                                  &g_sched.scheduler_stack_bottom,
                                  &g_sched.scheduler_stack_size);
#endif
}

// Fibers live across blocks and launches: after its thread is done a fiber
// waits to be handed the next one (so ASan keeps one fake stack per fiber
// instead of creating one per CUDA thread).
void FiberMain() {
  Fiber* f = g_sched.current;
#if defined(CRG_EMU_ASAN)
  __sanitizer_finish_switch_fiber(nullptr, &g_sched.scheduler_stack_bottom,
                                  &g_sched.scheduler_stack_size);
#endif
  for (;;) {
    // The FP environment travels with the stack: set it for this thread.
    SetFlushMode(g_sched.ftz);
    (*g_sched.body)();
    f->state = FiberState::kDone;
    --g_sched.live;
    SwitchToScheduler(f, /*exiting=*/false);
  }
}

#if CRG_EMU_ASM_SWITCH
// A fresh stack as crg_emu_switch_stack expects to find it: the saved MXCSR
// and x87 control word, six callee-saved registers, then the address to
// "return" to, placed so that FiberMain starts with the stack alignment of a
// called function.
void PrepareStack(Fiber* f) {
  uint64_t* top = reinterpret_cast<uint64_t*>(f->stack + kStackBytes);
  uint64_t* ret = top - 2;  // 16-byte aligned slot; FiberMain sees rsp%16==8
  ret[0] = reinterpret_cast<uint64_t>(&FiberMain);
  ret[1] = 0;
  uint64_t* sp = ret - 7;
  for (int i = 1; i < 7; ++i) sp[i] = 0;           // r15 r14 r13 r12 rbx rbp
  const uint32_t control[2] = {0x1f80u, 0x037fu};  // default MXCSR, FPU CW
  memcpy(sp, control, sizeof(control));
  f->sp = sp;
}
#else
void PrepareStack(Fiber* f) {
  getcontext(&f->context);
  f->context.uc_stack.ss_sp = f->stack;
  f->context.uc_stack.ss_size = kStackBytes;
  f->context.uc_link = nullptr;
  makecontext(&f->context, FiberMain, 0);
}
#endif

[[noreturn]] void Deadlock() {
  int at_shuffle = 0, at_barrier = 0, done = 0;
  for (int t = 0; t < g_sched.block_threads; ++t) {
    switch (g_sched.fibers[t]->state) {
      case FiberState::kWaitingShuffle:
        ++at_shuffle;
        break;
      case FiberState::kWaitingBarrier:
        ++at_barrier;
        break;
      case FiberState::kDone:
        ++done;
        break;
      case FiberState::kReady:
        break;
    }
  }
  const uint3 b = g_sched.fibers[0]->thread.block_idx;
  if (at_barrier > 0) {
    fprintf(stderr,
            "emulator: deadlock in block (%u,%u,%u): divergent __syncthreads: "
            "%d of %d threads wait at the barrier, %d exited, %d wait at a "
            "warp shuffle\n",
            b.x, b.y, b.z, at_barrier, g_sched.block_threads, done, at_shuffle);
  } else {
    fprintf(stderr,
            "emulator: deadlock in block (%u,%u,%u): threads wait at a warp "
            "shuffle that some lanes of their mask never reach (they exited "
            "or diverged)\n",
            b.x, b.y, b.z);
  }
  abort();
}

void FreeShared() {
  for (const SharedSlot& s : g_sched.shared) {
    ::operator delete(s.storage, std::align_val_t(s.alignment));
  }
  g_sched.shared.clear();
  g_sched.shared_total = 0;
}

void RunBlock(uint3 block_idx, dim3 grid, dim3 block, int threads) {
  while (static_cast<int>(g_sched.fibers.size()) < threads) {
    auto f = std::make_unique<Fiber>();
    f->stack = NewStack();
    PrepareStack(f.get());
    g_sched.fibers.push_back(std::move(f));
  }
  g_sched.warps.assign((threads + 31) / 32, Warp());
  for (int t = 0; t < threads; ++t) {
    Fiber* f = g_sched.fibers[t].get();
    f->state = FiberState::kReady;
    f->thread.linear = t;
    f->thread.thread_idx =
        uint3{t % block.x, (t / block.x) % block.y, t / (block.x * block.y)};
    f->thread.block_idx = block_idx;
    f->thread.block_dim = block;
    f->thread.grid_dim = grid;
  }
  g_sched.live = threads;
  g_sched.block_threads = threads;
  g_sched.barrier_arrived = 0;
  const bool shuffled = g_options.schedule == Schedule::kShuffled;
  std::vector<int> ready;
  ready.reserve(threads);
  int next_in_order = 0;
  while (g_sched.live > 0) {
    Fiber* pick = nullptr;
    if (shuffled) {
      ready.clear();
      for (int t = 0; t < threads; ++t) {
        if (g_sched.fibers[t]->state == FiberState::kReady) ready.push_back(t);
      }
      if (ready.empty()) Deadlock();
      pick = g_sched.fibers[ready[g_sched.rng() % ready.size()]].get();
    } else {
      // The lowest-numbered runnable thread.
      for (int t = 0; t < threads && pick == nullptr; ++t) {
        const int u = (next_in_order + t) % threads;
        if (g_sched.fibers[u]->state == FiberState::kReady) {
          pick = g_sched.fibers[u].get();
          next_in_order = u;
        }
      }
      if (pick == nullptr) Deadlock();
    }
    RunFiber(pick);
  }
  if (g_sched.barrier_arrived != 0) Deadlock();  // cannot happen: all done
  FreeShared();  // A fresh copy for the next block.
}

}  // namespace

Options& GetOptions() { return g_options; }
Counters& GetCounters() { return g_counters; }
void ResetCounters() { g_counters = Counters(); }
void SetLastError(cudaError_t err) { g_last_error = err; }
bool FlushesDenormals() { return CRG_EMU_FTZ != 0; }

void* DeviceMalloc(size_t bytes, size_t offset) {
  const size_t total = ((offset + bytes + 255) / 256) * 256 + 256;
  void* block = aligned_alloc(256, total);
  if (block == nullptr) return nullptr;
  char* p = static_cast<char*>(block) + offset;
  Ranges()[reinterpret_cast<uintptr_t>(p)] = Range{bytes, block, total};
#if defined(CRG_EMU_ASAN)
  // Only [p, p + bytes) is addressable: ASan reports any access to the
  // alignment slack around it, as it would past a malloc'ed buffer.
  ASAN_POISON_MEMORY_REGION(block, offset);
  ASAN_POISON_MEMORY_REGION(p + bytes, total - offset - bytes);
#endif
  return p;
}

void DeviceFree(void* p) {
  if (p == nullptr) return;
  auto it = Ranges().find(reinterpret_cast<uintptr_t>(p));
  if (it == Ranges().end() || it->second.block == nullptr) {
    fprintf(stderr, "emulator: DeviceFree of an unknown pointer %p\n", p);
    abort();
  }
#if defined(CRG_EMU_ASAN)
  ASAN_UNPOISON_MEMORY_REGION(it->second.block, it->second.block_bytes);
#endif
  free(it->second.block);
  Ranges().erase(it);
}

void RegisterDeviceRange(const void* p, size_t bytes) {
  Ranges()[reinterpret_cast<uintptr_t>(p)] = Range{bytes, nullptr, 0};
}

void UnregisterDeviceRange(const void* p) {
  Ranges().erase(reinterpret_cast<uintptr_t>(p));
}

namespace internal {

const ThreadState& Current() {
  if (g_sched.current == nullptr) {
    fprintf(stderr, "emulator: threadIdx/blockIdx used outside a kernel\n");
    abort();
  }
  return g_sched.current->thread;
}

void Yield() {
  Fiber* f = g_sched.current;
  if (f == nullptr) Fault("device operation outside a kernel", nullptr);
  if (g_options.schedule == Schedule::kShuffled) {
    SwitchToScheduler(f, false);
  }
}

uint64_t ShuffleXor(uint32_t mask, uint64_t bits, int lane_mask, int width) {
  Fiber* f = g_sched.current;
  if (f == nullptr) Fault("__shfl_xor_sync outside a kernel", nullptr);
  const int lane = f->thread.linear % 32;
  Warp& w = g_sched.warps[f->thread.linear / 32];
  if ((mask >> lane & 1u) == 0) {
    Fault("__shfl_xor_sync: the calling lane is not in the mask", nullptr);
  }
  if (width <= 0 || width > 32 || (width & (width - 1)) != 0) {
    Fault("__shfl_xor_sync: width must be a power of two <= 32", nullptr);
  }
  if (w.arrived == 0) {
    w.mask = mask;
    w.width = width;
  } else if (w.mask != mask || w.width != width) {
    Fault("__shfl_xor_sync: lanes of one warp disagree on mask or width",
          nullptr);
  }
  w.values[lane] = bits;
  w.lane_masks[lane] = lane_mask;
  w.arrived |= 1u << lane;
  if (w.arrived == w.mask) {
    // Everyone is here: exchange, then release the waiting lanes.
    for (int l = 0; l < 32; ++l) {
      if ((w.mask >> l & 1u) == 0) continue;
      const int segment = l & ~(w.width - 1);
      const int src = segment + ((l ^ w.lane_masks[l]) & (w.width - 1));
      if ((w.mask >> src & 1u) == 0) {
        Fault("__shfl_xor_sync: source lane outside the mask", nullptr);
      }
      w.results[l] = w.values[src];
    }
    const int warp_base = f->thread.linear / 32 * 32;
    for (int l = 0; l < 32; ++l) {
      if ((w.mask >> l & 1u) && l != lane) {
        g_sched.fibers[warp_base + l]->state = FiberState::kReady;
      }
    }
    w.arrived = 0;
    ++g_counters.shuffles;
    // Give others a chance to run first under the shuffled schedule.
    Yield();
    return w.results[lane];
  }
  f->state = FiberState::kWaitingShuffle;
  SwitchToScheduler(f, false);
  return w.results[lane];
}

void SyncThreads() {
  Fiber* f = g_sched.current;
  if (f == nullptr) Fault("__syncthreads outside a kernel", nullptr);
  ++g_sched.barrier_arrived;
  if (g_sched.barrier_arrived < g_sched.block_threads) {
    f->state = FiberState::kWaitingBarrier;
    SwitchToScheduler(f, false);
    return;
  }
  // The last thread is here: release the block. The shuffled scheduler then
  // resumes the threads in a random order (this one included).
  for (int t = 0; t < g_sched.block_threads; ++t) {
    Fiber* g = g_sched.fibers[t].get();
    if (g->state == FiberState::kWaitingBarrier) g->state = FiberState::kReady;
  }
  g_sched.barrier_arrived = 0;
  ++g_counters.barriers;
  Yield();
}

void* SharedStorage(const void* key, size_t bytes, size_t alignment,
                    const char* name) {
  if (g_sched.current == nullptr) Fault("__shared__ outside a kernel", nullptr);
  for (const SharedSlot& s : g_sched.shared) {
    if (s.key == key) {
      if (s.bytes != bytes) Fault("__shared__ variable changed size", key);
      return s.storage;
    }
  }
  g_sched.shared_total += bytes;
  if (g_sched.shared_total + g_sched.dynamic_shared > 48 * 1024) {
    fprintf(stderr, "emulator: __shared__ %s: %zu static bytes in all\n", name,
            g_sched.shared_total);
    Fault("more than 48 KiB of shared memory per block", key);
  }
  alignment = std::max<size_t>(alignment, 16);
  // Its own allocation, exactly `bytes` long: ASan reports any access past
  // either end, and any use of it after the block.
  void* p = ::operator new(bytes, std::align_val_t(alignment));
  memset(p, 0xff, bytes);  // Shared memory starts with garbage.
  g_sched.shared.push_back(SharedSlot{key, bytes, alignment, p, name});
  g_counters.shared_bytes += static_cast<int64_t>(bytes);
  return p;
}

void Fault(const char* what, const void* address) {
  if (g_sched.current != nullptr) {
    const ThreadState& t = g_sched.current->thread;
    fprintf(stderr,
            "emulator: device fault: %s (address %p) in block (%u,%u,%u) "
            "thread (%u,%u,%u)\n",
            what, address, t.block_idx.x, t.block_idx.y, t.block_idx.z,
            t.thread_idx.x, t.thread_idx.y, t.thread_idx.z);
  } else {
    fprintf(stderr, "emulator: fault: %s (address %p)\n", what, address);
  }
  abort();
}

void CheckDeviceAccess(const void* p, size_t bytes, size_t alignment,
                       const char* what) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  if (a % alignment != 0) {
    fprintf(stderr, "emulator: misaligned %s (%zu-byte alignment needed)\n",
            what, alignment);
    Fault("misaligned address", p);
  }
  auto& ranges = Ranges();
  auto it = ranges.upper_bound(a);
  if (it == ranges.begin()) Fault(what, p);
  --it;
  if (a < it->first || a + bytes > it->first + it->second.bytes) {
    fprintf(stderr, "emulator: %s outside every device allocation\n", what);
    Fault("illegal address", p);
  }
}

float AddFloatFlushed(float a, float b) {
  return FlushFloat(FlushFloat(a) + FlushFloat(b));
}

double AddDoubleExact(double a, double b) {
#if CRG_EMU_X86
  const unsigned int csr = _mm_getcsr();
  _mm_setcsr(csr & ~0x8040u);
  volatile double sum = a + b;
  const double result = sum;
  _mm_setcsr(csr);
  return result;
#else
  return a + b;
#endif
}

cudaError_t RunGrid(dim3 grid, dim3 block, size_t shared_bytes,
                    cudaStream_t /*stream*/, bool ftz,
                    const std::function<void()>& body) {
  const uint64_t threads = uint64_t{block.x} * block.y * block.z;
  const uint64_t blocks = uint64_t{grid.x} * grid.y * grid.z;
  if (threads == 0 || threads > 1024 || blocks == 0 || grid.x > 2147483647u ||
      grid.y > 65535 || grid.z > 65535 || shared_bytes > 48 * 1024) {
    g_last_error = cudaErrorInvalidConfiguration;
    return g_last_error;
  }
  if (g_in_kernel) {
    fprintf(stderr, "emulator: kernel launched from device code\n");
    abort();
  }
  g_in_kernel = true;
  ++g_counters.launches;
  g_counters.threads += static_cast<int64_t>(threads * blocks);
  g_sched.body = &body;
  g_sched.ftz = ftz;
  g_sched.dynamic_shared = shared_bytes;
  g_sched.rng.seed(g_options.seed * 0x9e3779b97f4a7c15ull +
                   static_cast<uint64_t>(g_counters.launches));
  std::vector<uint64_t> order(blocks);
  for (uint64_t b = 0; b < blocks; ++b) order[b] = b;
  if (g_options.schedule == Schedule::kShuffled) {
    std::shuffle(order.begin(), order.end(), g_sched.rng);
  }
  for (uint64_t b : order) {
    const uint3 idx{static_cast<unsigned>(b % grid.x),
                    static_cast<unsigned>((b / grid.x) % grid.y),
                    static_cast<unsigned>(b / (uint64_t{grid.x} * grid.y))};
    RunBlock(idx, grid, block, static_cast<int>(threads));
  }
  g_sched.body = nullptr;
  g_in_kernel = false;
  return cudaSuccess;
}

}  // namespace internal
}  // namespace crg_emu

// ---- runtime API
// ----------------------------------------------------------------

const char* cudaGetErrorName(cudaError_t err) {
  switch (err) {
    case cudaSuccess:
      return "cudaSuccess";
    case cudaErrorInvalidValue:
      return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation:
      return "cudaErrorMemoryAllocation";
    case cudaErrorInitializationError:
      return "cudaErrorInitializationError";
    case cudaErrorInvalidConfiguration:
      return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDeviceFunction:
      return "cudaErrorInvalidDeviceFunction";
    case cudaErrorInsufficientDriver:
      return "cudaErrorInsufficientDriver";
    case cudaErrorNoDevice:
      return "cudaErrorNoDevice";
    case cudaErrorInvalidDevice:
      return "cudaErrorInvalidDevice";
    case cudaErrorNoKernelImageForDevice:
      return "cudaErrorNoKernelImageForDevice";
    case cudaErrorIllegalAddress:
      return "cudaErrorIllegalAddress";
    case cudaErrorMisalignedAddress:
      return "cudaErrorMisalignedAddress";
    case cudaErrorLaunchFailure:
      return "cudaErrorLaunchFailure";
    case cudaErrorUnknown:
      break;
  }
  return "cudaErrorUnknown";
}

const char* cudaGetErrorString(cudaError_t err) {
  return cudaGetErrorName(err);
}

cudaError_t cudaGetLastError() {
  const cudaError_t err = crg_emu::g_last_error;
  crg_emu::g_last_error = cudaSuccess;
  return err;
}

cudaError_t cudaPeekAtLastError() { return crg_emu::g_last_error; }

cudaError_t cudaGetDevice(int* device) {
  if (device == nullptr) return cudaErrorInvalidValue;
  *device = crg_emu::g_device;
  return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) {
  if (device != 0) return cudaErrorInvalidDevice;
  crg_emu::g_device = device;
  return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr,
                                   int device) {
  if (value == nullptr || device != 0) return cudaErrorInvalidValue;
  const crg_emu::Options& o = crg_emu::g_options;
  switch (attr) {
    case cudaDevAttrMultiProcessorCount:
      *value = o.multiprocessors;
      return cudaSuccess;
    case cudaDevAttrMaxThreadsPerBlock:
      *value = 1024;
      return cudaSuccess;
    case cudaDevAttrComputeCapabilityMajor:
      *value = o.cc_major;
      return cudaSuccess;
    case cudaDevAttrComputeCapabilityMinor:
      *value = o.cc_minor;
      return cudaSuccess;
  }
  return cudaErrorInvalidValue;
}

cudaError_t cudaDriverGetVersion(int* version) {
  if (version == nullptr) return cudaErrorInvalidValue;
  *version = crg_emu::g_options.driver_version;
  return cudaSuccess;
}

cudaError_t cudaRuntimeGetVersion(int* version) {
  if (version == nullptr) return cudaErrorInvalidValue;
  *version = crg_emu::g_options.runtime_version;
  return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void* ptr, int value, size_t bytes, cudaStream_t) {
  if (bytes == 0) return cudaSuccess;
  if (ptr == nullptr) return cudaErrorInvalidValue;
  crg_emu::internal::CheckDeviceAccess(ptr, bytes, 1, "cudaMemsetAsync");
  ++crg_emu::g_counters.memsets;
  memset(ptr, value, bytes);
  return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes,
                            cudaMemcpyKind kind, cudaStream_t) {
  if (bytes == 0) return cudaSuccess;
  if (dst == nullptr || src == nullptr) return cudaErrorInvalidValue;
  if (kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice) {
    crg_emu::internal::CheckDeviceAccess(src, bytes, 1, "cudaMemcpyAsync src");
  }
  if (kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice) {
    crg_emu::internal::CheckDeviceAccess(dst, bytes, 1, "cudaMemcpyAsync dst");
  }
  ++crg_emu::g_counters.memcpys;
  memcpy(dst, src, bytes);
  return cudaSuccess;
}

// Everything ran when it was enqueued.
cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }

cudaError_t cudaFuncGetAttributesImpl(cudaFuncAttributes* attr,
                                      const void* func) {
  if (attr == nullptr || func == nullptr) return cudaErrorInvalidValue;
  const crg_emu::Options& o = crg_emu::g_options;
  if (o.func_attributes_error != cudaSuccess) {
    crg_emu::g_last_error = o.func_attributes_error;  // as the runtime does
    return o.func_attributes_error;
  }
  attr->binaryVersion = o.cc_major * 10 + o.cc_minor;
  attr->ptxVersion = o.cc_major * 10 + o.cc_minor;
  attr->maxThreadsPerBlock = 1024;
  return cudaSuccess;
}
