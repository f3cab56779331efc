#!/usr/bin/env bash
# Installs the build/test dependencies and builds + installs the package into
# the current Python (use a venv). TensorFlow: keeps an installed one, else
# installs TF_PACKAGE (default tensorflow-cpu==2.21.0).
#
# The build is skipped when the installed package was built from the same
# sources (a hash of cc/, cuda/, python/, CMakeLists.txt, setup.py,
# pyproject.toml and the build knobs, see setup.py) against the installed
# TensorFlow. CRG_FORCE_REBUILD=1 rebuilds anyway.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
TF_PACKAGE="${TF_PACKAGE:-tensorflow-cpu==2.21.0}"

"$PYTHON" -m pip install --quiet --upgrade pip
# Includes matplotlib, which the demo's picture needs.
"$PYTHON" -m pip install --quiet -r requirements-dev.txt
if ! "$PYTHON" -c "import tensorflow" >/dev/null 2>&1; then
  echo "[install] installing $TF_PACKAGE"
  "$PYTHON" -m pip install --quiet "$TF_PACKAGE"
fi
# Keras 2 (tf_keras, for tests/test_mixed_precision.py) of TensorFlow's minor.
# --no-deps: its requirement `tensorflow` would add the full TensorFlow next
# to tensorflow-cpu, which pip does not count as `tensorflow`.
tf_minor=$("$PYTHON" -c "import importlib.metadata as m
for d in ('tensorflow', 'tensorflow-cpu'):
    try:
        print('.'.join(m.version(d).split('.')[:2])); break
    except m.PackageNotFoundError:
        pass")
"$PYTHON" -m pip install --quiet --no-deps "tf_keras==${tf_minor}.*"

# Prints why a build is needed, or nothing when the installed one is current.
# Reads files only: importing TensorFlow would take seconds.
stale=$("$PYTHON" - <<'PY'
import json, os, runpy
from importlib import metadata


def why_stale():
    want = runpy.run_path("setup.py", run_name="crg_setup")["source_hash"]()
    try:
        pkg = metadata.distribution("crop_and_resize_grad").locate_file("crop_and_resize_grad")
    except metadata.PackageNotFoundError:
        return "not installed"

    def read(name):
        try:
            with open(os.path.join(pkg, name), encoding="utf-8") as f:
                return f.read().strip()
        except OSError:
            return None

    if not os.path.exists(os.path.join(pkg, "_crop_and_resize_grad_ops.so")):
        return "op library missing"
    if read("_source_hash.txt") != want:
        return "sources or build settings changed"
    installed = set()
    for name in ("tensorflow", "tensorflow-cpu", "tf-nightly", "tf-nightly-cpu"):
        try:
            installed.add(metadata.version(name))
        except metadata.PackageNotFoundError:
            pass
    built_for = json.loads(read("_build_info.json") or "{}").get("tensorflow_version")
    if built_for not in installed:
        return f"built for TensorFlow {built_for}, installed {sorted(installed)}"
    return ""


print(why_stale())
PY
) || stale="cannot tell whether the installed build is current"
if [ -z "${CRG_FORCE_REBUILD:-}" ] && [ -z "$stale" ]; then
  echo "[install] up to date: sources unchanged since the installed build (CRG_FORCE_REBUILD=1 rebuilds)"
else
  echo "[install] building crop_and_resize_grad (CUDA: ${CRG_CUDA:-auto}; ${stale:-forced})"
  # No build isolation: the op must be built against the TensorFlow installed here.
  "$PYTHON" -m pip install --quiet --no-build-isolation --force-reinstall --no-deps .
fi
"$PYTHON" - <<'PY'
import crop_and_resize_grad as crg
print("[install] ok:", crg._loader.library_path(), crg.build_info())
PY
