#!/usr/bin/env bash
# Installs a wheel from scripts/build_wheel.sh into a fresh venv that has
# TensorFlow but no compiler or CMake on PATH, and runs tests/wheel/smoke.py.
#
#   bash scripts/wheel_check.sh WHEEL
#
# TensorFlow and its dependencies come from $PYTHON's environment (default
# python3), made visible to the venv through a .pth file over a folder of
# links to its packages, minus crop_and_resize_grad, pip and setuptools: no
# second copy of TensorFlow, no download.
set -euo pipefail
if [ $# -ne 1 ] || [ ! -f "$1" ]; then
  echo "usage: $0 WHEEL" >&2
  exit 64
fi
WHEEL=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
cd "$(dirname "$0")/.."
REPO=$PWD
PYTHON="${PYTHON:-python3}"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/crg-wheel-check.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

site=$("$PYTHON" -c 'import os, tensorflow; print(os.path.dirname(os.path.dirname(tensorflow.__file__)))' 2>/dev/null | tail -1)
"$PYTHON" -m venv "$WORK/venv"
mkdir "$WORK/deps"
for entry in "$site"/*; do
  case "$(basename "$entry")" in
    crop_and_resize_grad* | pip | pip-* | setuptools | setuptools-* | _distutils_hack | __pycache__ | *.pth) ;;
    *) ln -s "$entry" "$WORK/deps/" ;;
  esac
done
venv_site=$("$WORK/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$WORK/deps" >"$venv_site/tensorflow_from_outside.pth"

"$WORK/venv/bin/python" -m pip install --quiet --no-index --no-deps "$WHEEL"
echo "[wheel_check] installed $(basename "$WHEEL") into a fresh venv; PATH holds only its bin/"
cd "$WORK"
env -i HOME="$HOME" PATH="$WORK/venv/bin" TF_CPP_MIN_LOG_LEVEL=2 \
  "$WORK/venv/bin/python" "$REPO/tests/wheel/smoke.py"
