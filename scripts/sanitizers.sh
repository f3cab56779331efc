#!/usr/bin/env bash
# Builds the TF-free kernels (crg_core) and the C++ tests (tests/cpp) three
# times -- plain, ASan+UBSan, TSan -- and runs ctest on each; plain and
# ASan+UBSan also build and run the CUDA kernels in the host emulation
# (tests/cuda_emulation; TSan cannot follow its hand-switched stacks). Fails on any test
# failure or sanitizer report. Needs only g++ and cmake (no TensorFlow, no
# CUDA, no pybind11 module is built).
#
# usage: bash scripts/sanitizers.sh [WORKDIR] [VARIANT...]
#   WORKDIR   build folders go to WORKDIR/{plain,address,thread}
#             (default .ci/work/sanitizers)
#   VARIANT   plain, address and/or thread (default: all three)
# Environment: CRG_BUILD_JOBS (default 2) compile and ctest jobs.
set -euo pipefail
cd "$(dirname "$0")/.."
WORK="${1:-.ci/work/sanitizers}"
shift || true
VARIANTS=("$@")
[ ${#VARIANTS[@]} -eq 0 ] && VARIANTS=(plain address thread)
JOBS="${CRG_BUILD_JOBS:-2}"

# Stop at the first report, with a stack, and make it the exit status.
export ASAN_OPTIONS="halt_on_error=1:detect_leaks=1:detect_stack_use_after_return=1:check_initialization_order=1:strict_init_order=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1"
# LeakSanitizer needs ptrace; where a container forbids it, run without.
if [ -r /proc/sys/kernel/yama/ptrace_scope ] && [ "$(cat /proc/sys/kernel/yama/ptrace_scope)" = 3 ]; then
  ASAN_OPTIONS="${ASAN_OPTIONS/detect_leaks=1/detect_leaks=0}"
fi

REPORT_PATTERN='ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|WARNING: ThreadSanitizer|ThreadSanitizer: reported|SUMMARY: (Address|Undefined|Thread|Leak)Sanitizer'

overall_start=$SECONDS
failed=()
for variant in "${VARIANTS[@]}"; do
  case "$variant" in
    plain) sanitizer=none ;;
    address) sanitizer=address ;;
    thread) sanitizer=thread ;;
    *) echo "unknown variant '$variant' (plain, address, thread)" >&2; exit 2 ;;
  esac
  build="$WORK/$variant"
  mkdir -p "$build"
  start=$SECONDS
  echo "== $variant: configure and build ($build)"
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DCRG_BUILD_TESTS=ON \
    -DCRG_BUILD_TF_OP=OFF -DCRG_CUDA=OFF -DCRG_SANITIZER="$sanitizer" >"$build/configure.log" 2>&1 ||
    { cat "$build/configure.log"; exit 1; }
  targets=(kernel_tests boxes_tests)
  [ "$sanitizer" != thread ] && targets+=(emulation_tests)
  cmake --build "$build" --target "${targets[@]}" -j "$JOBS"
  echo "== $variant: ctest"
  log="$build/ctest.log"
  rc=0
  # TSan cannot map its shadow memory with some kernels' ASLR settings; it
  # then asks to be rerun without ASLR, which setarch -R does.
  runner=()
  if [ "$sanitizer" = thread ] && command -v setarch >/dev/null &&
     setarch "$(uname -m)" -R true 2>/dev/null; then
    runner=(setarch "$(uname -m)" -R)
  fi
  "${runner[@]}" ctest --test-dir "$build" -V -j "$JOBS" >"$log" 2>&1 || rc=$?
  grep -E '^ *[0-9]+/[0-9]+ Test +#|tests passed|Total Test time' "$log" || true
  if grep -Eq "$REPORT_PATTERN" "$log"; then
    echo "!! $variant: sanitizer report(s):"
    grep -E -m 20 -A 12 "$REPORT_PATTERN" "$log" || true
    rc=1
  fi
  if [ "$rc" -ne 0 ]; then
    echo "!! $variant failed (full log: $log)"
    grep -E 'FAILED|Failed|failures' "$log" | head -40 || true
    failed+=("$variant")
  fi
  echo "== $variant: $((SECONDS - start)) s"
done
echo "== total $((SECONDS - overall_start)) s"
if [ ${#failed[@]} -ne 0 ]; then
  echo "FAILED: ${failed[*]}"
  exit 1
fi
echo "all clean: ${VARIANTS[*]}"
