#!/usr/bin/env bash
# Installs everything (matplotlib included, for the picture), builds when the
# sources changed, and runs the main job: the training demo on built-in
# synthetic data (python -m crop_and_resize_grad.demo). Extra arguments go to
# the demo (--steps, --out, --seed, ...).
# The PNG goes to the directory this is called from (or --out).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
PYTHON="${PYTHON:-python3}"
bash "$REPO/scripts/install.sh"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
"$PYTHON" -m crop_and_resize_grad.demo "$@"
