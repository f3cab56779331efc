#!/usr/bin/env bash
# Installs the build/test dependencies and builds + installs the package into
# the current Python (use a venv). TensorFlow: keeps an installed one, else
# installs TF_PACKAGE (default tensorflow-cpu==2.21.0).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
TF_PACKAGE="${TF_PACKAGE:-tensorflow-cpu==2.21.0}"

"$PYTHON" -m pip install --quiet --upgrade pip
"$PYTHON" -m pip install --quiet -r requirements-dev.txt
if ! "$PYTHON" -c "import tensorflow" >/dev/null 2>&1; then
  echo "[install] installing $TF_PACKAGE"
  "$PYTHON" -m pip install --quiet "$TF_PACKAGE"
fi
echo "[install] building crop_and_resize_grad (CUDA: ${CRG_CUDA:-auto})"
# No build isolation: the op must be built against the TensorFlow installed here.
"$PYTHON" -m pip install --quiet --no-build-isolation --force-reinstall --no-deps .
"$PYTHON" - <<'PY'
import crop_and_resize_grad as crg
print("[install] ok:", crg._loader.library_path(), crg.build_info())
PY
