#!/usr/bin/env bash
# Builds and tests the op library with Bazel (BUILD, WORKSPACE), offline, and
# checks that it gives the same bits as the CMake-built library.
#
#   bash scripts/bazel_check.sh
#
# Environment:
#   CRG_BAZEL_WORK     folder for Bazel's cache (--output_user_root), logs and
#                      a copy of the built library; default ./.ci/work/bazel.
#                      Inside the repository it must be under .ci/work (see
#                      .bazelignore).
#   CRG_BAZEL_JOBS     parallel jobs (default 2)
#   CRG_BAZEL_CUDA     auto (default: when nvcc is found) | on | off: also build
#                      --config=cuda (compile and link only; no GPU needed)
#   CRG_CMAKE_OPS_LIB  the CMake-built library to compare with; default
#                      python/crop_and_resize_grad/_crop_and_resize_grad_ops.so.
#                      The comparison is skipped when it does not exist.
#   PYTHON_BIN_PATH    the Python with TensorFlow (default: python3 on PATH)
#
# Installs Debian's bazel-bootstrap with apt-get when `bazel` is missing.
# Exits non-zero when a step fails; the summary at the end says which.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
WORK=${CRG_BAZEL_WORK:-.ci/work/bazel}
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
JOBS=${CRG_BAZEL_JOBS:-2}
CUDA_MODE=${CRG_BAZEL_CUDA:-auto}
CMAKE_LIB=${CRG_CMAKE_OPS_LIB:-python/crop_and_resize_grad/_crop_and_resize_grad_ops.so}
PYTHON=${PYTHON_BIN_PATH:-python3}
LOGS=$WORK/logs
OUT=$WORK/out
mkdir -p "$LOGS" "$OUT"

case "$WORK/" in
  "$ROOT/.ci/work/"*) ;;
  "$ROOT/"*)
    echo "CRG_BAZEL_WORK=$WORK is inside the repository but not under .ci/work:" \
      "bazel build //... would descend into Bazel's own cache. Use .ci/work/... or a folder outside." >&2
    exit 2 ;;
esac

declare -a SUMMARY=()
FAILED=0
record() {  # record STEP STATUS SECONDS [NOTE]
  SUMMARY+=("$(printf '%-22s %-5s %5ss  %s' "$1" "$2" "$3" "${4:-}")")
  [ "$2" = FAIL ] && FAILED=1
  return 0
}
# step NAME LOGFILE CMD...: runs CMD, output to the terminal and LOGFILE.
step() {
  local name=$1 log=$2 t0=$SECONDS rc
  shift 2
  echo "==> $name: $*"
  "$@" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  if [ "$rc" = 0 ]; then record "$name" PASS $((SECONDS - t0)); else
    record "$name" FAIL $((SECONDS - t0)) "exit $rc, log $log"; fi
  return "$rc"
}

finish() {
  [ -n "${BAZEL_STARTED:-}" ] && bazel "${STARTUP[@]}" shutdown >/dev/null 2>&1
  echo
  echo "================ Bazel check summary ================"
  echo "bazel:       ${BAZEL_VERSION:-?}"
  echo "python:      ${PYTHON_INFO:-?}"
  echo "cache:       $WORK/root"
  echo "library:     ${LIB_COPY:-(not built)}"
  printf '%s\n' "${SUMMARY[@]}"
  if [ "$FAILED" = 0 ]; then echo "RESULT: PASS"; else echo "RESULT: FAIL"; fi
  echo "====================================================="
}
trap finish EXIT

# ---- Bazel ---------------------------------------------------------------------
t0=$SECONDS
if ! command -v bazel >/dev/null 2>&1; then
  echo "==> installing Debian's bazel-bootstrap (apt-get)"
  SUDO=
  [ "$(id -u)" = 0 ] || SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  if ! $SUDO apt-get install -y -q bazel-bootstrap >"$LOGS/apt.log" 2>&1; then
    $SUDO apt-get update -q >>"$LOGS/apt.log" 2>&1
    $SUDO apt-get install -y -q bazel-bootstrap >>"$LOGS/apt.log" 2>&1
  fi
  if command -v bazel >/dev/null 2>&1; then
    record "install bazel" PASS $((SECONDS - t0))
  else
    record "install bazel" FAIL $((SECONDS - t0)) "see $LOGS/apt.log"
    tail -20 "$LOGS/apt.log"
    exit 1
  fi
fi
BAZEL_VERSION="$(command -v bazel) ($(dpkg-query -W -f='${Package} ${Version}' bazel-bootstrap 2>/dev/null || bazel --version 2>/dev/null))"

if ! PYTHON_INFO=$("$PYTHON" -c 'import sys, tensorflow as tf; print(sys.executable, "TensorFlow", tf.__version__)' 2>/dev/null | tail -1); then
  PYTHON_INFO="$PYTHON: cannot import tensorflow"
  record "python + tensorflow" FAIL 0 "$PYTHON_INFO (set PYTHON_BIN_PATH)"
  exit 1
fi
export PYTHON_BIN_PATH=$PYTHON

# The server stops at the end of the script (and after 5 idle minutes anyway).
STARTUP=(--output_user_root="$WORK/root" --max_idle_secs=300)
# No bazel-* symlinks in the source tree; outputs are found with `bazel info`.
COMMON=(--jobs="$JOBS" --symlink_prefix=/ --color=no --curses=no --show_progress_rate_limit=15)
BAZEL_STARTED=1

# ---- build and test ----------------------------------------------------------------
step "bazel build //..." "$LOGS/build.log" bazel "${STARTUP[@]}" build "${COMMON[@]}" //... || exit 1
step "bazel test //..." "$LOGS/test.log" bazel "${STARTUP[@]}" test "${COMMON[@]}" //...
BIN=$(bazel "${STARTUP[@]}" info bazel-bin 2>/dev/null)
if [ -f "$BIN/_crop_and_resize_grad_ops.so" ]; then
  cp -f "$BIN/_crop_and_resize_grad_ops.so" "$BIN/_build_info.json" "$OUT/"
  LIB_COPY=$OUT/_crop_and_resize_grad_ops.so
fi
grep -h "outputs checked" "$BIN"/../testlogs/tests/bazel/smoke_test/test.log 2>/dev/null | tail -1 |
  sed 's/^/    smoke test: /'

# ---- same bits as the CMake build ---------------------------------------------------
if [ -n "${LIB_COPY:-}" ] && [ -f "$CMAKE_LIB" ]; then
  step "compare with CMake" "$LOGS/compare.log" env TF_CPP_MIN_LOG_LEVEL=2 \
    "$PYTHON" tests/bazel/smoke_test.py compare "$LIB_COPY" "$CMAKE_LIB"
else
  record "compare with CMake" SKIP 0 "no CMake library at $CMAKE_LIB (build it: pip install --no-build-isolation .)"
fi

# ---- CUDA configuration (compile and link; runs without a GPU) ----------------------
if [ "$CUDA_MODE" = auto ]; then
  if [ -n "${CUDA_PATH:-}${CUDA_HOME:-}" ] || [ -x /usr/local/cuda/bin/nvcc ] || command -v nvcc >/dev/null 2>&1; then
    CUDA_MODE=on
  else
    CUDA_MODE=off
  fi
fi
if [ "$CUDA_MODE" = on ]; then
  if step "bazel build cuda" "$LOGS/build_cuda.log" bazel "${STARTUP[@]}" build "${COMMON[@]}" \
      --config=cuda //:_crop_and_resize_grad_ops.so //:build_info; then
    CUDA_BIN=$(bazel "${STARTUP[@]}" info --config=cuda bazel-bin 2>/dev/null)
    mkdir -p "$OUT/cuda"
    cp -f "$CUDA_BIN/_crop_and_resize_grad_ops.so" "$CUDA_BIN/_build_info.json" "$OUT/cuda/"
    # Loads without a GPU; its CPU kernels must pass the same smoke test.
    step "cuda lib: CPU smoke" "$LOGS/smoke_cuda.log" env TF_CPP_MIN_LOG_LEVEL=2 \
      "$PYTHON" tests/bazel/smoke_test.py smoke "$OUT/cuda/_crop_and_resize_grad_ops.so"
  fi
else
  record "bazel build cuda" SKIP 0 "no nvcc (CRG_BAZEL_CUDA=$CUDA_MODE)"
fi

exit "$FAILED"
