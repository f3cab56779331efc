"""Helpers for the TensorFlow tests (fixtures live in conftest.py).

TF-free support code (cases, the reference, rounding, workloads) is in
``tests/support``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import ml_dtypes
import numpy as np
import tensorflow as tf

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))

ALL_DTYPES = (tf.float16, tf.bfloat16, tf.float32, tf.float64)
TF_BUILTIN_DTYPES = (tf.float16, tf.float32, tf.float64)


def numpy_dtype(T):
    """NumPy dtype matching a tf.DType (bfloat16 via ml_dtypes)."""
    if T == tf.bfloat16:
        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(T.as_numpy_dtype)


def run_ours(crg, case, T, method, **kwargs):
    out = crg.crop_and_resize_grad_image(*case.args(), T=T, method=method, **kwargs)
    return out.numpy()


def run_tf_builtin(case, T, method):
    return tf.raw_ops.CropAndResizeGradImage(
        grads=case.grads,
        boxes=case.boxes,
        box_ind=case.box_ind,
        image_size=case.image_size,
        T=T,
        method=method,
    ).numpy()


def as_f64(x):
    return np.asarray(x).astype(np.float64)


def assert_close_scaled(actual, expected, scale, rtol, atol=0.0, what=""):
    """|actual - expected| <= rtol * scale + atol elementwise (scale >= 0)."""
    actual = as_f64(actual)
    expected = as_f64(expected)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    assert np.all(np.isfinite(actual)), f"{what}: non-finite values in result"
    err = np.abs(actual - expected)
    bound = rtol * scale + atol
    bad = err > bound
    if bad.any():
        idx = np.argwhere(bad)[:5]
        rel = err / np.maximum(scale, 1e-300)
        raise AssertionError(
            f"{what}: {int(bad.sum())} of {bad.size} elements off; max err {err.max():.3e}, "
            f"max err/scale {rel.max():.3e} (rtol {rtol:g}); first bad indices {idx.tolist()} "
            f"actual {actual[tuple(idx.T)]} expected {expected[tuple(idx.T)]}"
        )


def rel_error(actual, expected):
    expected = as_f64(expected)
    return float(np.linalg.norm(as_f64(actual) - expected) / np.linalg.norm(expected))


def run_python(code, timeout=120, env_extra=None):
    """Run `code` in a fresh Python interpreter (cwd = tests dir, so that
    `support` and `helpers` import). Returns the CompletedProcess."""
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["PYTHONPATH"] = TESTS_DIR + os.pathsep + env.get("PYTHONPATH", "")
    if env_extra:
        env.update(env_extra)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=TESTS_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def describe_proc(proc):
    return (
        f"returncode {proc.returncode}\n"
        f"--- stdout ---\n{proc.stdout[-4000:]}\n"
        f"--- stderr ---\n{proc.stderr[-4000:]}"
    )
