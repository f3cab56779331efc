"""Fixtures for the CUDA tests in tests/gpu.

Every test here is skipped (never errors) unless the ``_kernels`` extension
was built with CUDA and a GPU is visible to CuPy or PyTorch. ``_kernels`` is
found through ``$CRG_KERNELS_DIR`` (see benchmarks/_gpu_common.py); these tests
never import the ``crop_and_resize_grad`` package (it needs TensorFlow).

``$CRG_GPU_BACKEND`` (cupy / torch) picks the library used for most tests;
the adapter tests run with every library that is installed.
"""

from __future__ import annotations

import os
import sys
import zlib

_HERE = os.path.dirname(os.path.abspath(__file__))
_TESTS = os.path.dirname(_HERE)
_BENCHMARKS = os.path.join(os.path.dirname(_TESTS), "benchmarks")
for _p in (_HERE, _TESTS, _BENCHMARKS):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import _gpu_common as gc  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from cuda_helpers import Gpu  # noqa: E402


@pytest.fixture(scope="session")
def gpu():
    """A cuda_helpers.Gpu, or a skip of every test that uses it."""
    kernels, backends, reason = gc.gpu_environment()
    if reason is not None:
        pytest.skip(reason)
    return Gpu(kernels, gc.default_backend(prefer="cupy"), backends)


@pytest.fixture(autouse=True)
def _requires_gpu(gpu):
    """Makes every test in this directory depend on the GPU (skips otherwise)."""


@pytest.fixture
def rng(request):
    """A NumPy Generator seeded from the test's node id (reproducible)."""
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))


def pytest_report_header(config):
    kernels, backends, reason = gc.gpu_environment()
    if reason is not None:
        return f"CUDA tests: skipped ({reason})"
    be = gc.default_backend(prefer="cupy")
    try:
        info = be.device_info()
        name = info.get("name")
    except Exception as e:  # noqa: BLE001 - header only
        name = f"? ({e})"
    return (
        f"CUDA tests: _kernels from {getattr(kernels, '__file__', '?')}, "
        f"backend {be.name} (available: {sorted(backends)}), GPU {name}"
    )
