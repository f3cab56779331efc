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
import hashlib
import importlib.util
import os
import shlex
import subprocess
import sys

from setuptools import Extension, find_packages, setup
from setuptools.command.build_ext import build_ext

try:
    from setuptools.command.build import build
except ImportError:  # setuptools < 62.4
    from distutils.command.build import build

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


def read_readme() -> str:
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        return f.read()


NO_ISOLATION_FIX = "pip install --no-build-isolation ."


def tensorflow_problem(find_spec=importlib.util.find_spec, path=None) -> str | None:
    """Why this build cannot see TensorFlow, in a few lines; None when it can.

    The op library is compiled against the TensorFlow of the Python that runs
    the build. pip's default build isolation runs it in a temporary environment
    that holds only the build requirements, so an installed TensorFlow is
    invisible there.
    """
    if find_spec("tensorflow") is not None:
        return None
    path = sys.path if path is None else path
    isolated = any("pip-build-env" in p or "build-env-" in p for p in path)
    if isolated:
        return (
            "crop_and_resize_grad: cannot build with build isolation. The op is compiled "
            "against your installed TensorFlow, which an isolated build cannot see.\n"
            f"Fix: {NO_ISOLATION_FIX}"
        )
    return (
        f"crop_and_resize_grad: TensorFlow is not importable by {sys.executable}.\n"
        "Fix: pip install tensorflow-cpu (or tensorflow), then " + NO_ISOLATION_FIX
    )


# What a build depends on besides TensorFlow: scripts/install.sh rebuilds only
# when this hash differs from the one the installed package was built with.
SOURCE_HASH_FILE = "_source_hash.txt"
_HASHED_PATHS = ("cc", "cuda", "python", "CMakeLists.txt", "setup.py", "pyproject.toml")
_HASHED_ENV = ("CRG_CUDA", "CMAKE_CUDA_ARCHITECTURES", "CRG_NATIVE_ARCH", "CMAKE_ARGS")


def _source_files() -> list[str]:
    try:
        out = subprocess.run(
            ["git", "ls-files", "-co", "--exclude-standard", "--", *_HASHED_PATHS],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return sorted(set(out.splitlines()))
    except (OSError, subprocess.CalledProcessError):  # not a git checkout
        files = []
        for top in _HASHED_PATHS:
            if os.path.isfile(os.path.join(ROOT, top)):
                files.append(top)
            for d, dirs, names in os.walk(os.path.join(ROOT, top)):
                dirs[:] = [x for x in dirs if x != "__pycache__"]
                rel = os.path.relpath(d, ROOT)
                files += [os.path.join(rel, n) for n in names if not n.endswith((".so", ".pyc"))]
        return sorted(f for f in files if not f.endswith(("_build_info.json", SOURCE_HASH_FILE)))


def source_hash() -> str:
    """sha256 over the build inputs (paths and contents) and the build knobs."""
    h = hashlib.sha256()
    for rel in _source_files():
        path = os.path.join(ROOT, rel)
        if os.path.isfile(path):
            with open(path, "rb") as f:
                h.update(f"{rel}\0{os.path.getsize(path)}\0".encode())
                h.update(f.read())
    for key in _HASHED_ENV:
        h.update(f"{key}={os.environ.get(key, '')}\0".encode())
    return h.hexdigest()


def require_tensorflow() -> None:
    """Stops the build, before anything is compiled, when TensorFlow is not visible."""
    problem = tensorflow_problem()
    if problem:
        sys.stderr.write(problem + "\n")
        raise SystemExit(1)


class CheckedBuild(build):
    """`build`, checking first that TensorFlow is visible (an isolated build hides it)."""

    def run(self) -> None:
        require_tensorflow()
        super().run()


class CMakeExtension(Extension):
    """An extension whose files come from the CMake project at the repo root."""

    def __init__(self, name: str) -> None:
        super().__init__(name, sources=[])


class CMakeBuild(build_ext):
    """Configures, builds and installs the CMake project into the package."""

    def run(self) -> None:
        require_tensorflow()
        super().run()

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
        with open(os.path.join(package_dir, SOURCE_HASH_FILE), "w", encoding="utf-8") as f:
            f.write(source_hash() + "\n")


if __name__ == "__main__":
    setup(
        name="crop_and_resize_grad",
        version=read_version(),
        description="Exact, race-free, deterministic gradient of tf.image.crop_and_resize",
        long_description=read_readme(),
        long_description_content_type="text/markdown",
        license="Apache-2.0",
        license_files=["LICENSE"],
        keywords=[
            "tensorflow",
            "crop_and_resize",
            "roi align",
            "gradient",
            "deterministic",
            "custom op",
        ],
        classifiers=[
            "Development Status :: 4 - Beta",
            "Intended Audience :: Developers",
            "Intended Audience :: Science/Research",
            "Operating System :: POSIX :: Linux",
            "Programming Language :: C++",
            "Programming Language :: Python :: 3",
            "Programming Language :: Python :: 3 :: Only",
            "Topic :: Scientific/Engineering :: Artificial Intelligence",
        ],
        packages=find_packages("python"),
        package_dir={"": "python"},
        ext_modules=[CMakeExtension("crop_and_resize_grad._crop_and_resize_grad_ops")],
        cmdclass={"build": CheckedBuild, "build_ext": CMakeBuild},
        python_requires=">=3.10",
        # TensorFlow is not listed: the build links against whichever TF is
        # installed (tensorflow or tensorflow-cpu), and a requirement would pull
        # in `tensorflow` next to an installed `tensorflow-cpu`.
        install_requires=["numpy"],
        extras_require={
            "demo": ["matplotlib"],
            "test": ["pytest", "hypothesis"],
            "bench": ["matplotlib"],
        },
        zip_safe=False,
    )
