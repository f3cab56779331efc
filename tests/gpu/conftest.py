"""Fixtures for the CUDA tests in tests/gpu.

Every test here is skipped (never errors) unless the ``_kernels`` extension
was built with CUDA and a GPU is visible to CuPy or PyTorch. ``_kernels`` is
found through ``$CRG_KERNELS_DIR`` (see tests/support/kernels.py); these tests
never import the ``crop_and_resize_grad`` package (it needs TensorFlow).

``$CRG_GPU_BACKEND`` (cupy / torch) picks the library used for most tests;
the adapter tests run with every library that is installed.
"""

from __future__ import annotations

import os
import sys
import zlib

# tests/ (for ``support``) and tests/gpu (for ``cuda_helpers``): with
# --confcutdir=tests/gpu, tests/conftest.py is not loaded.
_HERE = os.path.dirname(os.path.abspath(__file__))
for _p in (_HERE, os.path.dirname(_HERE)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from support import gpu as sg  # noqa: E402


@pytest.fixture(scope="session")
def gpu():
    """A support.gpu.Gpu, or a skip of every test that uses it."""
    kernels, backends, reason = sg.gpu_environment()
    if reason is not None:
        pytest.skip(reason)
    return sg.Gpu(kernels, sg.default_backend(prefer="cupy"), backends)


@pytest.fixture(autouse=True)
def _requires_gpu(gpu):
    """Makes every test in this directory depend on the GPU (skips otherwise)."""


@pytest.fixture
def rng(request):
    """A NumPy Generator seeded from the test's node id (reproducible)."""
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))


def pytest_report_header(config):
    kernels, backends, reason = sg.gpu_environment()
    if reason is not None:
        return f"CUDA tests: skipped ({reason})"
    be = sg.default_backend(prefer="cupy")
    try:
        info = be.device_info()
        name = info.get("name")
    except Exception as e:  # noqa: BLE001 - header only
        name = f"? ({e})"
    return (
        f"CUDA tests: _kernels from {getattr(kernels, '__file__', '?')}, "
        f"backend {be.name} (available: {sorted(backends)}), GPU {name}"
    )
