"""Loading the op library: a build for another TF, or a broken library, gives
an ImportError that says what is wrong and how to rebuild."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import crop_and_resize_grad as crg
import pytest
from crop_and_resize_grad import _loader


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
    assert _loader.load_library() is _loader.load_library()
    assert os.path.isfile(_loader.library_path())
    built_for = crg.build_info()["tensorflow_version"]
    assert built_for.split(".")[:2] == __import__("tensorflow").__version__.split(".")[:2]


def test_the_kernels_stay_private_to_the_library():
    """The per-ISA copies of the TF-free kernels are linked from a static
    archive and kept out of the (CMake-built) op library's dynamic symbol
    table by --exclude-libs; the op glue in cc/tf stays visible."""
    nm = shutil.which("nm")
    if nm is None:
        pytest.skip("binutils' nm is not installed")
    out = subprocess.run(
        [nm, "-D", "-C", "--defined-only", _loader.library_path()],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "CropAndResizeGradImageOp" in out, "the listing shows no op glue at all"
    leaked = [line for line in out.splitlines() if "crop_and_resize_grad::isa_" in line]
    assert not leaked, leaked[:5]


def test_a_patch_release_is_accepted():
    assert _loader._minor("2.21.0") == _loader._minor("2.21.1") == _loader._minor("2.21.0rc1")
    assert _loader._minor("2.21.0") != _loader._minor("2.22.0")


# The public API, pinned: changing it should be a decision, seen in this diff.
PUBLIC_API = (
    "crop_and_resize crop_and_resize_grad_image crop_and_resize_grad_boxes override_gradient "
    "restore_gradient "
    "gradient_override is_gradient_overridden build_info OP_NAME SUPPORTED_DTYPES "
    "METHODS __version__"
).split()


def test_public_api_is_all_and_the_docstring():
    """__all__, the names the package docstring lists, and the public names
    it has are the same set."""
    assert sorted(crg.__all__) == sorted(PUBLIC_API)
    for name in PUBLIC_API:
        assert hasattr(crg, name), name
    doc = crg.__doc__.split("Public API:", 1)[1].split("\n\n", 1)[0]
    listed = [line.split()[0] for line in doc.strip().splitlines()]
    assert sorted(listed) == sorted(PUBLIC_API)
    public = {n for n in vars(crg) if not n.startswith("_")}
    # The package's submodules are importable but not API.
    modules = {"demo", "gradients", "ops", "override", "xla"}
    assert public - modules == set(PUBLIC_API) - {"__version__"}
    for gone in ("load_library", "library_path", "crop_and_resize_gradient"):
        assert not hasattr(crg, gone), gone


def test_one_version_string():
    from crop_and_resize_grad import _version

    assert crg.__version__ == _version.__version__
    assert __import__("importlib.metadata").metadata.version("crop_and_resize_grad") == (
        crg.__version__
    )


def test_build_info_records_the_cuda_build():
    """A CUDA build names its toolkit, GPU architectures and driver floor
    (docs/gpu.md): CUDA 12 builds TF's set incl. sm_60/70, CUDA 13+ sm_75+."""
    info = crg.build_info()
    if not info["cuda"]:
        assert "cuda_toolkit" not in info
        return
    major = int(info["cuda_toolkit"].split(".")[0])
    assert major >= 12
    assert info["cuda_min_driver"] == ("r525" if major == 12 else "r580")
    archs = info["cuda_architectures"]
    assert archs and all(isinstance(a, str) for a in archs)
    numbers = [int(a.split("-")[0]) for a in archs]
    if major >= 13:
        assert min(numbers) >= 75


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
