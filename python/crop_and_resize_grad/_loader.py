"""Loads the op library once and checks it was built for this TensorFlow."""

from __future__ import annotations

import functools
import json
import os
import types

import tensorflow as tf

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
LIBRARY_NAME = "_crop_and_resize_grad_ops.so"
_BUILD_INFO_NAME = "_build_info.json"
_REBUILD_HINT = (
    "Rebuild the package against the TensorFlow you run: "
    "pip install --no-build-isolation --force-reinstall --no-deps <path to crop_and_resize_grad>"
)


def library_path() -> str:
    """Absolute path of the op library inside the installed package."""
    return os.path.join(_PACKAGE_DIR, LIBRARY_NAME)


def build_info() -> dict:
    """What the library was built against, as recorded at build time."""
    path = os.path.join(_PACKAGE_DIR, _BUILD_INFO_NAME)
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError as e:
        raise ImportError(
            f"crop_and_resize_grad is not built: {path} is missing. {_REBUILD_HINT}"
        ) from e


def _minor(version) -> tuple[str, ...]:
    """("2", "21") for "2.21.1" or "2.21.0rc0": TF keeps its C++ ABI within a minor release."""
    return tuple(str(version).split(".")[:2])


@functools.cache
def load_library() -> types.ModuleType:
    """Loads the op library (once per process) and returns its op module."""
    built_for = build_info().get("tensorflow_version")
    if _minor(built_for) != _minor(tf.__version__):
        raise ImportError(
            f"crop_and_resize_grad was built against TensorFlow {built_for} but "
            f"TensorFlow {tf.__version__} is installed; the C++ ABI differs "
            f"between minor versions. {_REBUILD_HINT}"
        )
    path = library_path()
    if not os.path.exists(path):
        raise ImportError(f"crop_and_resize_grad op library missing: {path}. {_REBUILD_HINT}")
    try:
        return tf.load_op_library(path)
    except (tf.errors.NotFoundError, OSError) as e:
        raise ImportError(
            f"Could not load {path}: {e}. A missing symbol usually means the "
            f"library was built against another TensorFlow or C++ ABI; a missing "
            f"file means a shared library it links to is not on the loader path. "
            f"{_REBUILD_HINT}"
        ) from e
