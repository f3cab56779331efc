"""Builds the op library with CMake and installs it inside the package.

Build against the TensorFlow that is installed, without build isolation:

    pip install --no-build-isolation .

Environment knobs:
  CRG_CUDA=auto|on|off          CUDA kernels (auto: when nvcc is found)
  CMAKE_CUDA_ARCHITECTURES=...  GPU architectures (default 75;80;86;89;90 + PTX)
  CRG_NATIVE_ARCH=1             tune the CPU kernel for this machine
  CRG_BUILD_JOBS=N              parallel compile jobs
  CMAKE_ARGS="..."              extra arguments to cmake
"""

from __future__ import annotations

import ast
import os
import shlex
import subprocess
import sys

from setuptools import Extension, find_packages, setup
from setuptools.command.build_ext import build_ext

ROOT = os.path.dirname(os.path.abspath(__file__))


def read_version() -> str:
    """__version__ from python/crop_and_resize_grad/_version.py, parsed (importing
    the package would need TensorFlow and the built library)."""
    path = os.path.join(ROOT, "python", "crop_and_resize_grad", "_version.py")
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__version__" for t in node.targets
        ):
            return ast.literal_eval(node.value)
    raise RuntimeError(f"no __version__ in {path}")


class CMakeExtension(Extension):
    """An extension whose files come from the CMake project at the repo root."""

    def __init__(self, name: str) -> None:
        super().__init__(name, sources=[])


class CMakeBuild(build_ext):
    """Configures, builds and installs the CMake project into the package."""

    def build_extension(self, ext: Extension) -> None:
        package_dir = os.path.dirname(os.path.abspath(self.get_ext_fullpath(ext.name)))
        build_dir = os.path.abspath(os.path.join(self.build_temp, "cmake"))
        os.makedirs(build_dir, exist_ok=True)
        args = [
            f"-DPython3_EXECUTABLE={sys.executable}",
            f"-DCMAKE_INSTALL_PREFIX={package_dir}",
            "-DCMAKE_BUILD_TYPE=Release",
        ]
        cuda = os.environ.get("CRG_CUDA", "auto").lower()
        args.append(f"-DCRG_CUDA={cuda.upper()}")
        if os.environ.get("CMAKE_CUDA_ARCHITECTURES"):
            args.append(f"-DCMAKE_CUDA_ARCHITECTURES={os.environ['CMAKE_CUDA_ARCHITECTURES']}")
        if os.environ.get("CRG_NATIVE_ARCH", "0") not in ("", "0"):
            args.append("-DCRG_NATIVE_ARCH=ON")
        args += shlex.split(os.environ.get("CMAKE_ARGS", ""))
        jobs = os.environ.get("CRG_BUILD_JOBS", str(os.cpu_count() or 2))
        subprocess.check_call(["cmake", ROOT, *args], cwd=build_dir)
        subprocess.check_call(["cmake", "--build", ".", "--parallel", jobs], cwd=build_dir)
        subprocess.check_call(["cmake", "--install", "."], cwd=build_dir)


setup(
    name="crop_and_resize_grad",
    version=read_version(),
    description="Exact, race-free, deterministic gradient of tf.image.crop_and_resize",
    packages=find_packages("python"),
    package_dir={"": "python"},
    ext_modules=[CMakeExtension("crop_and_resize_grad._crop_and_resize_grad_ops")],
    cmdclass={"build_ext": CMakeBuild},
    python_requires=">=3.9",
    # TensorFlow is not listed: the build links against whichever TF is
    # installed (tensorflow or tensorflow-cpu), so it must come first.
    install_requires=["numpy", "matplotlib"],  # matplotlib: the demo's chart
    extras_require={"test": ["pytest", "hypothesis"], "bench": ["matplotlib"]},
    zip_safe=False,
)
