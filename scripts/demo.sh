#!/usr/bin/env bash
# Installs everything, builds, and runs the main job: the CPU benchmark's
# quick mode against TF's builtin kernel, on synthetic boxes.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
bash scripts/install.sh
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
"$PYTHON" benchmarks/bench_cpu.py --quick --out "${OUT:-benchmarks/results/quick}" "$@"
