#!/usr/bin/env bash
# GPU check: build the _kernels module for the local GPU, run the CUDA tests
# and the GPU benchmark. Meant for a GPU machine that has only a copy of the
# working tree (no TensorFlow needed); run from anywhere:
#
#   scripts/gpu_check.sh OUTDIR
#
# Steps: build _kernels for the local GPU (CMake `native` architecture when
# CMake >= 3.24, else the compute capability nvidia-smi reports, else 90),
# check with `cuobjdump -sass` that the sm_90+ build has the vector atomics,
# run the CUDA tests (CuPy, or torch where CuPy's NVRTC cannot compile), run
# the edge-case tests under `compute-sanitizer --tool memcheck`, then the GPU
# benchmark.
#
# Writes OUTDIR/gpu_check.log (everything) and OUTDIR/gpu_check.json (build
# status, test counts, benchmark results), plus OUTDIR/pytest.xml and
# OUTDIR/bench_gpu.json. Every step runs under `timeout`; the whole check stays
# within CRG_GPU_CHECK_BUDGET seconds (default 420, for an 8-minute limit).
#
# Exit status: 0 ok; 1 tests failed (or could not run); 2 build failed;
# 3 no GPU; 64 usage. The JSON is written in every case. A slow or failing
# benchmark is reported in the JSON but does not change the exit status.
#
# Environment: PYTHON (default python3), CRG_BUILD_DIR (default
# build/gpu_check, under the git-ignored build/), CRG_GPU_CHECK_BUDGET,
# CRG_CUDA_ARCH (skip `native` and use this architecture list).
set -euo pipefail

if [[ $# -lt 1 || -z "${1:-}" ]]; then
  echo "usage: $0 OUTDIR" >&2
  exit 64
fi
mkdir -p "$1"
OUTDIR=$(cd "$1" && pwd)
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"

LOG=$OUTDIR/gpu_check.log
JSON=$OUTDIR/gpu_check.json
STEPS=$OUTDIR/.gpu_check_steps.tsv
JUNIT=$OUTDIR/pytest.xml
BENCH_JSON=$OUTDIR/bench_gpu.json
BUDGET=${CRG_GPU_CHECK_BUDGET:-420}
RESERVE=10 # seconds kept for writing the JSON
BUILD_DIR=${CRG_BUILD_DIR:-$REPO/build/gpu_check}
PY=${PYTHON:-python3}
START=$SECONDS
export PYTHONUNBUFFERED=1
: >"$LOG"
: >"$STEPS"
rm -f "$JUNIT" "$BENCH_JSON" "$JSON"

# State reported in the JSON.
STATUS=started
MESSAGE=""
GPU_NAME=""
BUILD_OK=false
BUILD_ARCH=""
KERNELS_SO=""
TESTS_RC=""
TEST_PATHS=""
GPU_ENV=""
BENCH_RC=""
SASS_RC=""
MEMCHECK_RC=""
LAST_RC=0

log() { printf '%s\n' "$*" | tee -a "$LOG"; }

time_left() { echo $((BUDGET - (SECONDS - START) - RESERVE)); }

# run_step NAME LIMIT_S CMD...: runs CMD under timeout (clamped to the time
# left), output to the terminal and the log; sets LAST_RC, never fails.
run_step() {
  local name=$1 limit=$2
  shift 2
  local left
  left=$(time_left)
  if ((left < 5)); then
    log "### $name: skipped, out of time"
    printf '%s\t%s\t%s\t%s\n' "$name" skipped 0 0 >>"$STEPS"
    LAST_RC=124
    return 0
  fi
  ((limit > left)) && limit=$left
  log "### $name (timeout ${limit}s): $*"
  local t0=$SECONDS rc=0
  timeout -k 10 "$limit" "$@" 2>&1 | tee -a "$LOG" || rc=$?
  ((rc == 124 || rc == 137)) && log "### $name: TIMED OUT after ${limit}s"
  log "### $name: rc=$rc ($((SECONDS - t0))s)"
  printf '%s\t%s\t%s\t%s\n' "$name" "$rc" "$((SECONDS - t0))" "$limit" >>"$STEPS"
  LAST_RC=$rc
  return 0
}

write_json() {
  export S_STATUS="$STATUS" S_MESSAGE="$MESSAGE" S_EXIT="$1" S_GPU_NAME="$GPU_NAME" \
    S_BUILD_OK="$BUILD_OK" S_BUILD_ARCH="$BUILD_ARCH" S_BUILD_DIR="$BUILD_DIR" \
    S_KERNELS_SO="$KERNELS_SO" S_TESTS_RC="$TESTS_RC" S_TEST_PATHS="$TEST_PATHS" \
    S_GPU_ENV="$GPU_ENV" S_BENCH_RC="$BENCH_RC" S_JUNIT="$JUNIT" S_BENCH_JSON="$BENCH_JSON" \
    S_STEPS="$STEPS" S_LOG="$LOG" S_ELAPSED=$((SECONDS - START)) S_BUDGET="$BUDGET" \
    S_SASS_RC="$SASS_RC" S_MEMCHECK_RC="$MEMCHECK_RC"
  if ! timeout 30 "$PY" - "$JSON" <<'PYEOF' 2>>"$LOG"; then
import json, os, sys
import xml.etree.ElementTree as ET

e = os.environ
def opt_int(v):
    try:
        return int(v)
    except (TypeError, ValueError):
        return None

tests = {"rc": opt_int(e["S_TESTS_RC"]), "paths": e["S_TEST_PATHS"].split(),
         "gpu_environment": e["S_GPU_ENV"] or None, "junit": None, "counts": None}
if os.path.exists(e["S_JUNIT"]):
    tests["junit"] = e["S_JUNIT"]
    try:
        root = ET.parse(e["S_JUNIT"]).getroot()
        suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
        c = {k: sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors", "skipped")}
        c["passed"] = c["tests"] - c["failures"] - c["errors"] - c["skipped"]
        c["time_s"] = round(sum(float(s.get("time", 0)) for s in suites), 2)
        failed = []
        for case in root.iter("testcase"):
            if case.find("failure") is not None or case.find("error") is not None:
                failed.append(f"{case.get('classname')}::{case.get('name')}")
        c["failed_tests"] = failed[:200]
        tests["counts"] = c
    except Exception as ex:  # noqa: BLE001
        tests["counts_error"] = repr(ex)

bench = {"rc": opt_int(e["S_BENCH_RC"]), "path": None, "results": None}
if os.path.exists(e["S_BENCH_JSON"]):
    bench["path"] = e["S_BENCH_JSON"]
    try:
        with open(e["S_BENCH_JSON"]) as f:
            bench["results"] = json.load(f)
    except Exception as ex:  # noqa: BLE001
        bench["error"] = repr(ex)

steps = []
if os.path.exists(e["S_STEPS"]):
    for line in open(e["S_STEPS"]):
        parts = line.rstrip("\n").split("\t")
        if len(parts) == 4:
            steps.append({"step": parts[0], "rc": opt_int(parts[1]) if parts[1] != "skipped" else "skipped",
                          "seconds": opt_int(parts[2]), "timeout_s": opt_int(parts[3])})

out = {
    "status": e["S_STATUS"],
    "message": e["S_MESSAGE"],
    "exit_code": opt_int(e["S_EXIT"]),
    "gpu": e["S_GPU_NAME"] or None,
    "build": {"ok": e["S_BUILD_OK"] == "true", "cuda_architectures": e["S_BUILD_ARCH"] or None,
              "dir": e["S_BUILD_DIR"], "kernels": e["S_KERNELS_SO"] or None},
    "tests": tests,
    "sass_vector_atomics_rc": opt_int(e["S_SASS_RC"]),
    "memcheck_rc": opt_int(e["S_MEMCHECK_RC"]),
    "bench": bench,
    "steps": steps,
    "elapsed_s": opt_int(e["S_ELAPSED"]),
    "budget_s": opt_int(e["S_BUDGET"]),
    "log": e["S_LOG"],
}
with open(sys.argv[1], "w") as f:
    json.dump(out, f, indent=2)
PYEOF
    # No usable Python: a minimal JSON by hand.
    printf '{"status": "%s", "message": "%s", "exit_code": %s, "build": {"ok": %s}, "log": "%s"}\n' \
      "$STATUS" "${MESSAGE//\"/\'}" "$1" "$BUILD_OK" "$LOG" >"$JSON"
  fi
}

finish() {
  local rc=$?
  set +e
  trap - EXIT
  [[ $STATUS == started ]] && STATUS=aborted && MESSAGE="script stopped unexpectedly (rc=$rc)"
  write_json "$rc"
  log "### gpu_check: status=$STATUS rc=$rc elapsed=$((SECONDS - START))s; JSON: $JSON"
  rm -f "$STEPS"
  exit "$rc"
}
trap finish EXIT

log "### gpu_check.sh $(date -u '+%Y-%m-%dT%H:%M:%SZ') on $(hostname) in $REPO, budget ${BUDGET}s"

# ---- 1. GPU present? -----------------------------------------------------------
GPU_LIST=$(timeout 30 nvidia-smi -L 2>/dev/null || true)
if ! grep -qi '^GPU' <<<"$GPU_LIST"; then
  STATUS=no_gpu
  MESSAGE="no GPU: nvidia-smi is missing or lists no GPU; nothing was built or tested"
  log "### $MESSAGE"
  exit 3
fi
run_step nvidia-smi 30 nvidia-smi
GPU_NAME=$(timeout 30 nvidia-smi --query-gpu=name,driver_version,memory.total \
  --format=csv,noheader 2>/dev/null | head -n 1 || true)

# ---- 2. Tools -----------------------------------------------------------------
if ! command -v "$PY" >/dev/null 2>&1; then
  STATUS=build_failed
  MESSAGE="no Python interpreter '$PY'"
  log "### $MESSAGE"
  exit 2
fi
NVCC=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
run_step python-version 30 "$PY" --version
run_step cmake-version 30 cmake --version
run_step nvcc-version 30 "$NVCC" --version
run_step python-packages 90 "$PY" -c '
import importlib
for name in ("numpy", "pytest", "pybind11", "cupy", "torch", "torchvision", "tensorflow"):
    try:
        m = importlib.import_module(name)
        print(name, getattr(m, "__version__", "?"))
    except Exception as e:
        print(name + ": not importable (" + type(e).__name__ + ")")
'
for pkg in numpy pytest; do
  if ! "$PY" -c "import $pkg" >/dev/null 2>&1; then
    run_step "pip-install-$pkg" 90 "$PY" -m pip install -q --retries 0 --timeout 10 "$pkg"
  fi
done

# ---- 3. Build _kernels for the local GPU ---------------------------------------
# Python's headers and pybind11's CMake files, from the interpreter itself
# (CMake's own search can miss a pyenv/venv Python 3.12).
PY_INCLUDE=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])' 2>/dev/null || true)
PYBIND11_DIR=$("$PY" -m pybind11 --cmakedir 2>/dev/null || true)
PY_ARGS=(-DPython3_EXECUTABLE="$(command -v "$PY")")
if [[ -n $PY_INCLUDE && -f $PY_INCLUDE/Python.h ]]; then
  PY_ARGS+=(-DPython3_INCLUDE_DIR="$PY_INCLUDE")
else
  log "### Python.h not found (include dir '${PY_INCLUDE:-?}'): install the Python development headers (e.g. python3.12-dev)"
fi
[[ -n $PYBIND11_DIR ]] && PY_ARGS+=(-Dpybind11_DIR="$PYBIND11_DIR")
configure() { # configure ARCH
  run_step "configure-$1" 120 cmake -S "$REPO" -B "$BUILD_DIR" -DCRG_BUILD_TF_OP=OFF -DCRG_CUDA=ON \
    -DCMAKE_CUDA_COMPILER="$NVCC" -DCMAKE_CUDA_ARCHITECTURES="$1" -DCMAKE_BUILD_TYPE=Release \
    "${PY_ARGS[@]}"
}
# CMake's `native` needs CMake 3.24; else the GPU's own compute capability.
CMAKE_VERSION=$(cmake --version 2>/dev/null | sed -n 's/^cmake version \([0-9]*\.[0-9]*\).*/\1/p')
GPU_CC=$(timeout 30 nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n 1 | tr -d ' .' || true)
ARCHS=()
if [[ -n $CMAKE_VERSION ]] && printf '3.24\n%s\n' "$CMAKE_VERSION" | sort -V -C; then
  ARCHS+=(native)
else
  log "### CMake ${CMAKE_VERSION:-?} < 3.24 has no 'native' CUDA architecture: using the GPU's (${GPU_CC:-unknown})"
fi
[[ $GPU_CC =~ ^[0-9]+$ ]] && ARCHS+=("$GPU_CC")
ARCHS+=(90)
[[ -n "${CRG_CUDA_ARCH:-}" ]] && ARCHS=("$CRG_CUDA_ARCH")
for arch in "${ARCHS[@]}"; do
  configure "$arch"
  if ((LAST_RC == 0)); then
    BUILD_ARCH=$arch
    break
  fi
  # Start the next attempt from a clean cache (a kept build dir is reused
  # incrementally otherwise).
  rm -rf "$BUILD_DIR/CMakeCache.txt" "$BUILD_DIR/CMakeFiles"
done
if [[ -n $BUILD_ARCH ]]; then
  run_step build 240 cmake --build "$BUILD_DIR" -j "$(nproc 2>/dev/null || echo 8)" --target _kernels
  if ((LAST_RC == 0)); then
    KERNELS_SO=$(ls "$BUILD_DIR"/_kernels*.so 2>/dev/null | head -n 1 || true)
    if [[ -n $KERNELS_SO ]]; then
      run_step import-kernels 60 env CRG_KERNELS_DIR="$BUILD_DIR" "$PY" -c "
import sys; sys.path.insert(0, '$BUILD_DIR')
import _kernels
print('_kernels', _kernels.__file__, 'has_cuda', _kernels.has_cuda, 'cpu_isa', _kernels.cpu_isa())
sys.exit(0 if _kernels.has_cuda else 1)"
      ((LAST_RC == 0)) && BUILD_OK=true
    fi
  fi
fi
if [[ $BUILD_OK != true ]]; then
  STATUS=build_failed
  MESSAGE="could not build/import _kernels with CUDA (see the log)"
  log "### $MESSAGE"
  exit 2
fi
export CRG_KERNELS_DIR=$BUILD_DIR

# ---- 3b. The sm_90+ SASS has the vector atomics ----------------------------------
# RED/ATOM .F32x4 and .F32x2 (e.g. REDG.E.ADD.F32x4.FTZ.RN.STRONG.GPU): the
# float4/float2 atomicAdd of the atomic mode. Only for SASS of sm_90 or newer.
CUOBJDUMP=$(command -v cuobjdump || echo "$(dirname "$NVCC")/cuobjdump")
if [[ -x $CUOBJDUMP ]]; then
  run_step sass-vector-atomics 60 bash -c '
    sass=$("$1" -sass "$2") || exit 2
    archs=$(grep -o "code for sm_[0-9]*" <<<"$sass" | sort -u | tr "\n" " ")
    echo "SASS for: $archs"
    if ! grep -Eq "code for sm_(9[0-9]|1[0-9][0-9])" <<<"$sass"; then
      echo "no sm_90+ SASS in this build: no vector atomics expected"; exit 0
    fi
    grep -oE "\b(RED|REDG|ATOM|ATOMG)\.[A-Z0-9_.x]*" <<<"$sass" | sort | uniq -c
    grep -Eq "\b(RED|REDG|ATOM|ATOMG)\.[A-Z0-9_.]*F32x4" <<<"$sass" &&
      grep -Eq "\b(RED|REDG|ATOM|ATOMG)\.[A-Z0-9_.]*F32x2" <<<"$sass"' _ "$CUOBJDUMP" "$KERNELS_SO"
  SASS_RC=$LAST_RC
else
  log "### cuobjdump not found: SASS check skipped"
fi

# ---- 4. Tests -------------------------------------------------------------------
TEST_ARGS=(tests/gpu)
[[ -f tests/test_kernels_cpu.py ]] && TEST_ARGS+=(tests/test_kernels_cpu.py)
TEST_PATHS="${TEST_ARGS[*]}"
PYTEST_OPTS=(-q -rfEs -p no:cacheprovider --junitxml="$JUNIT")
if ! timeout 120 "$PY" -c "import tensorflow" >/dev/null 2>&1; then
  # tests/conftest.py imports TensorFlow: keep pytest from loading it.
  log "### TensorFlow not importable: running pytest with --confcutdir=tests/gpu"
  PYTEST_OPTS+=(--confcutdir=tests/gpu)
fi
GPU_ENV=$(timeout 120 "$PY" -c "
import sys; sys.path.insert(0, 'tests')
from support import gpu as sg
k, b, reason = sg.gpu_environment()
print(reason if reason else 'ok: backends ' + ','.join(sorted(b)))" 2>&1 | tail -n 1 || true)
log "### GPU test environment: $GPU_ENV"
left=$(time_left)
limit=$((left - 100)) # leave time for the benchmark
((limit > 180)) && limit=180
((limit < 60)) && limit=60
run_step pytest "$limit" "$PY" -m pytest "${PYTEST_OPTS[@]}" "${TEST_ARGS[@]}"
TESTS_RC=$LAST_RC

# ---- 4b. Edge cases under compute-sanitizer memcheck -----------------------------
SANITIZER=$(command -v compute-sanitizer || echo "$(dirname "$NVCC")/compute-sanitizer")
if [[ -x $SANITIZER && $GPU_ENV == ok* ]]; then
  MEMCHECK_OPTS=(-q -x -p no:cacheprovider)
  [[ " ${PYTEST_OPTS[*]} " == *" --confcutdir=tests/gpu "* ]] && MEMCHECK_OPTS+=(--confcutdir=tests/gpu)
  run_step memcheck 150 "$SANITIZER" --tool memcheck --error-exitcode 86 --target-processes all \
    "$PY" -m pytest "${MEMCHECK_OPTS[@]}" tests/gpu/test_cuda_validation.py
  MEMCHECK_RC=$LAST_RC
else
  log "### compute-sanitizer not found (or CUDA tests cannot run): memcheck skipped"
fi

# ---- 5. Benchmark ---------------------------------------------------------------
left=$(time_left)
limit=$((left > 200 ? 200 : left))
bench_budget=$((limit - 45))
((bench_budget < 10)) && bench_budget=10
run_step bench-gpu "$limit" "$PY" benchmarks/bench_gpu.py --out "$BENCH_JSON" --time-budget "$bench_budget"
BENCH_RC=$LAST_RC

# ---- Result ---------------------------------------------------------------------
if [[ $TESTS_RC != 0 ]]; then
  STATUS=tests_failed
  MESSAGE="pytest rc=$TESTS_RC"
  exit 1
fi
if [[ -n $SASS_RC && $SASS_RC != 0 ]]; then
  STATUS=tests_failed
  MESSAGE="the sm_90+ SASS lacks the float4/float2 vector atomics (rc=$SASS_RC)"
  exit 1
fi
if [[ -n $MEMCHECK_RC && $MEMCHECK_RC != 0 ]]; then
  STATUS=tests_failed
  MESSAGE="compute-sanitizer memcheck over tests/gpu/test_cuda_validation.py: rc=$MEMCHECK_RC"
  exit 1
fi
if [[ $GPU_ENV != ok* ]]; then
  # On a GPU machine the CUDA tests must run, not skip.
  STATUS=tests_failed
  MESSAGE="CUDA tests were skipped on a GPU machine: $GPU_ENV"
  exit 1
fi
STATUS=ok
MESSAGE="build and tests ok; benchmark rc=$BENCH_RC"
exit 0
