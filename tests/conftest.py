"""Shared fixtures.

TF's builtin CropAndResizeGradImage has a data race on the CPU unless op
determinism is enabled (then it runs on one thread), so every comparison
against it needs op determinism. The flag is process-global and cannot be
turned off again, so it is set once here, before any op runs. Tests that must
exercise our op *without* the flag (thread-count independence, races) run it
in a subprocess.
"""

from __future__ import annotations

import os
import zlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

tf.config.experimental.enable_op_determinism()


@pytest.fixture(scope="session")
def crg():
    """The package under test. No skipping: if it does not import, every test
    that uses it errors."""
    import crop_and_resize_grad

    return crop_and_resize_grad


@pytest.fixture
def rng(request):
    """A NumPy Generator seeded from the test's node id (reproducible)."""
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))
