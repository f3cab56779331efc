"""Loading the op library: a build for another TF, or a broken library, gives
an ImportError that says what is wrong and how to rebuild."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import crop_and_resize_grad as crg


def copy_package(tmp_path):
    src = os.path.dirname(os.path.abspath(crg.__file__))
    dst = tmp_path / "crop_and_resize_grad"
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
    return dst


def import_in_subprocess(path):
    env = dict(os.environ, PYTHONPATH=str(path), TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run(
        [sys.executable, "-c", "import crop_and_resize_grad"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_library_loads_once_and_reports_build_info():
    assert crg.load_library() is crg.load_library()
    assert crg.build_info()["tensorflow_version"] == __import__("tensorflow").__version__


def test_tensorflow_version_mismatch(tmp_path):
    pkg = copy_package(tmp_path)
    info = json.loads((pkg / "_build_info.json").read_text())
    info["tensorflow_version"] = "0.0.1"
    (pkg / "_build_info.json").write_text(json.dumps(info))
    proc = import_in_subprocess(tmp_path)
    assert proc.returncode != 0
    assert "ImportError" in proc.stderr
    assert "built against TensorFlow 0.0.1" in proc.stderr
    assert "pip install --no-build-isolation" in proc.stderr


def test_broken_library(tmp_path):
    pkg = copy_package(tmp_path)
    (pkg / "_crop_and_resize_grad_ops.so").write_bytes(b"not an ELF file")
    proc = import_in_subprocess(tmp_path)
    assert proc.returncode != 0
    assert "Could not load" in proc.stderr and "_crop_and_resize_grad_ops.so" in proc.stderr


def test_missing_build(tmp_path):
    pkg = copy_package(tmp_path)
    (pkg / "_build_info.json").unlink()
    proc = import_in_subprocess(tmp_path)
    assert proc.returncode != 0
    assert "is not built" in proc.stderr
