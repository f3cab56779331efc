// Heap tracking for the memory section: see test_util.h.
#include "tests/cpp/test_util.h"

using crg_test::g_heap_live;
using crg_test::g_heap_peak;
using crg_test::g_track_heap;

#if !CRG_TEST_IS_SANITIZED
namespace {
constexpr size_t kHeapHeader = 16;  // Keeps malloc's 16-byte alignment.

void* TrackedAlloc(size_t n) {
  void* base = malloc(n + kHeapHeader);
  if (base == nullptr) throw std::bad_alloc();
  const bool track = g_track_heap.load(std::memory_order_relaxed);
  // The header holds the tracked size; 0 for allocations made untracked.
  *static_cast<size_t*>(base) = track ? n : 0;
  if (track) {
    const int64_t live = g_heap_live.fetch_add(static_cast<int64_t>(n)) + n;
    int64_t peak = g_heap_peak.load();
    while (live > peak && !g_heap_peak.compare_exchange_weak(peak, live)) {
    }
  }
  return static_cast<char*>(base) + kHeapHeader;
}

void TrackedFree(void* p) {
  if (p == nullptr) return;
  char* base = static_cast<char*>(p) - kHeapHeader;
  const size_t n = *reinterpret_cast<size_t*>(base);
  if (n != 0) g_heap_live.fetch_sub(static_cast<int64_t>(n));
  free(base);
}
}  // namespace

void* operator new(size_t n) { return TrackedAlloc(n); }
void* operator new[](size_t n) { return TrackedAlloc(n); }
void operator delete(void* p) noexcept { TrackedFree(p); }
void operator delete[](void* p) noexcept { TrackedFree(p); }
void operator delete(void* p, size_t) noexcept { TrackedFree(p); }
void operator delete[](void* p, size_t) noexcept { TrackedFree(p); }
#endif
