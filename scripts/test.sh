#!/usr/bin/env bash
# Installs everything, builds when the sources changed since the installed
# build (scripts/install.sh), and runs the test suite. Extra arguments go to
# pytest. GPU tests (tests/gpu) skip themselves without a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
bash scripts/install.sh
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
rc=0
"$PYTHON" -m pytest -q tests "$@" || rc=$?
if [ "$rc" -eq 5 ]; then
  echo "[test] pytest collected no tests"
  exit 0
fi
exit "$rc"
