"""Loads the pybind11 ``_kernels`` module without the ``crop_and_resize_grad`` package.

The package's ``__init__`` imports TensorFlow; the kernel tests and the GPU
benchmark must run without it, so the extension is loaded straight from its
file. Where ``_kernels`` comes from, first match wins:

1. ``$CRG_KERNELS_DIR`` (a directory holding ``_kernels*.so``; when set, only
   this directory is searched);
2. ``_kernels`` importable from ``sys.path``;
3. ``<repo>/build/gpu_check`` (what ``scripts/gpu_check.sh`` builds);
4. the directories of the ``crop_and_resize_grad`` package (found without
   importing it), e.g. an in-place or installed build.
"""

from __future__ import annotations

import glob
import importlib.machinery
import importlib.util
import os
import sys
import sysconfig

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

_KERNELS_CACHE: dict = {}


def _ext_suffixes():
    suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
    return [suffix] + [s for s in importlib.machinery.EXTENSION_SUFFIXES if s != suffix]


def _package_dirs():
    try:
        spec = importlib.util.find_spec("crop_and_resize_grad")  # does not run __init__
    except (ImportError, ValueError):
        return []
    if spec is None or not spec.submodule_search_locations:
        return []
    return list(spec.submodule_search_locations)


def load_extension(path, name="_kernels"):
    """Loads the ``_kernels`` extension at ``path`` as module ``name``.

    Two builds loaded side by side need two names: under the same name the
    second load hands back the module loaded first (pybind11 3.1, CPython
    3.11), even after it was removed from ``sys.modules``.
    """
    loader = importlib.machinery.ExtensionFileLoader(name, path)
    spec = importlib.util.spec_from_file_location(name, path, loader=loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    sys.modules[name] = module
    return module


def load_kernels():
    """Returns ``(module, None)`` or ``(None, reason)``. Never raises."""
    if "result" in _KERNELS_CACHE:
        return _KERNELS_CACHE["result"]
    result = _find_kernels()
    _KERNELS_CACHE["result"] = result
    return result


def _find_kernels():
    if "_kernels" in sys.modules:
        return sys.modules["_kernels"], None
    env_dir = os.environ.get("CRG_KERNELS_DIR")
    if env_dir:
        dirs = [env_dir]
    else:
        try:
            import _kernels  # noqa: PLC0415

            return _kernels, None
        except ImportError:
            pass
        dirs = [os.path.join(REPO_ROOT, "build", "gpu_check")]
        dirs += _package_dirs()
    errors = []
    for d in dirs:
        for suffix in _ext_suffixes():
            for path in sorted(glob.glob(os.path.join(d, "_kernels" + suffix))):
                try:
                    return load_extension(path), None
                except ImportError as e:  # e.g. built for another Python
                    errors.append(f"{path}: {e}")
    where = ", ".join(dirs)
    detail = ("; " + "; ".join(errors)) if errors else ""
    return None, f"_kernels extension not found (searched {where}; set CRG_KERNELS_DIR){detail}"
