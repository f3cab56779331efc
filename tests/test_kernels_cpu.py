"""The TF-free CPU kernel through the pybind11 module ``_kernels``.

These tests need no TensorFlow (scripts/gpu_check.sh runs them on a GPU
machine without it): the module is loaded straight from its shared library.
Only the last test, which compares with the TF op, needs TensorFlow.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(_HERE), "benchmarks"))
sys.path.insert(0, _HERE)

from _gpu_common import load_kernels  # noqa: E402
from reference import grad_image_abs_scale, grad_image_reference  # noqa: E402

_kernels, _why = load_kernels()
pytestmark = pytest.mark.skipif(_kernels is None, reason=str(_why))

DTYPES = ("float16", "bfloat16", "float32", "float64")
METHODS = ("bilinear", "nearest")


def random_case(rng, b=2, h=9, w=11, d=5, n=13, ch=4, cw=3, spread=1.5):
    """Boxes in [-spread/2, 1 + spread/2]: flipped, degenerate and outside ones."""
    boxes = rng.uniform(-spread / 2, 1 + spread / 2, (n, 4)).astype(np.float32)
    if n >= 3:
        boxes[0] = [0, 0, 1, 1]
        boxes[1] = [0.7, 0.2, 0.1, 0.9]  # flipped
        boxes[2, 2] = boxes[2, 0]  # degenerate in y
    grads = rng.standard_normal((n, ch, cw, d)).astype(np.float32)
    box_ind = rng.integers(0, b, n).astype(np.int32)
    return grads, boxes, box_ind, [b, h, w, d]


def as_float64(out, dtype):
    if dtype == "bfloat16":
        return (out.astype(np.uint32) << 16).view(np.float32).astype(np.float64)
    return out.astype(np.float64)


def round_to(x64, dtype):
    """x64 rounded once to dtype (round to nearest even), back in float64."""
    if dtype == "bfloat16":
        u = x64.astype(np.float32).view(np.uint32).astype(np.uint64)
        u = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint32) << 16
        return u.astype(np.uint32).view(np.float32).astype(np.float64)
    return x64.astype(dtype).astype(np.float64)


def ulp(x64, dtype):
    """Spacing of the 16-bit type at each value."""
    if dtype == "float16":
        return np.spacing(np.abs(x64).astype(np.float16)).astype(np.float64)
    mag = np.maximum(np.abs(x64), 2.0**-126)
    return 2.0 ** (np.floor(np.log2(mag)) - 7)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", range(4))
def test_matches_float64_reference(dtype, method, seed):
    rng = np.random.default_rng(seed)
    shape = dict(d=int(rng.choice([1, 3, 4, 17, 64])), ch=int(rng.integers(1, 6)))
    grads, boxes, box_ind, size = random_case(rng, **shape)
    out = _kernels.grad_image_cpu(grads, boxes, box_ind, size, dtype, method, 2)
    assert out.shape == tuple(size)
    got = as_float64(out, dtype)
    ref = grad_image_reference(grads, boxes, box_ind, size, method)
    scale = grad_image_abs_scale(grads, boxes, box_ind, size, method) + 1e-30
    if dtype == "float64":
        assert np.all(np.abs(got - ref) <= 1e-12 * scale)
    elif dtype == "float32":
        assert np.all(np.abs(got - ref) <= 1e-5 * scale)
    else:
        # float32 accumulation then one rounding: at most one unit in the last
        # place of the exactly rounded reference (plus float32 noise near 0).
        once = round_to(ref, dtype)
        assert np.all(np.abs(got - once) <= ulp(once, dtype) + 1e-6 * scale)


@pytest.mark.parametrize("dtype", DTYPES)
def test_thread_count_does_not_change_bits(dtype):
    grads, boxes, box_ind, size = random_case(
        np.random.default_rng(7), b=1, h=32, w=32, d=64, n=600, ch=7, cw=7, spread=0.2
    )
    runs = [
        _kernels.grad_image_cpu(grads, boxes, box_ind, size, dtype, "bilinear", t)
        for t in (1, 2, 3, 8)
    ]
    for r in runs[1:]:
        assert r.tobytes() == runs[0].tobytes()


def test_unit_boxes_exact():
    n = 20000
    grads = np.ones((n, 8, 8, 1), np.float32)
    boxes = np.tile(np.array([0, 0, 1, 1], np.float32), (n, 1))
    out = _kernels.grad_image_cpu(grads, boxes, np.zeros(n, np.int32), [1, 8, 8, 1], "float64")
    assert np.all(out == n) and out.sum() == 1_280_000


def test_empty_cases_give_zeros():
    z = _kernels.grad_image_cpu(
        np.zeros((0, 2, 2, 3), np.float32), np.zeros((0, 4)), np.zeros(0), [2, 4, 5, 3], "float32"
    )
    assert z.shape == (2, 4, 5, 3) and not z.any()
    z = _kernels.grad_image_cpu(
        np.zeros((1, 2, 2, 0), np.float32), [[0, 0, 1, 1]], [0], [1, 4, 5, 0], "float16"
    )
    assert z.shape == (1, 4, 5, 0)


@pytest.mark.parametrize(
    "change, error",
    [
        (lambda a: a["boxes"].__setitem__((0, 1), np.nan), ValueError),
        (lambda a: a["boxes"].__setitem__((1, 2), np.inf), ValueError),
        (lambda a: a["box_ind"].__setitem__(0, 2), IndexError),
        (lambda a: a["box_ind"].__setitem__(0, -1), IndexError),
        (lambda a: a.__setitem__("size", [2, 0, 5, 3]), ValueError),
        (lambda a: a.__setitem__("size", [2, 4, 5, 4]), ValueError),
        (lambda a: a.__setitem__("size", [2, 4, 5]), ValueError),
        (lambda a: a.__setitem__("boxes", a["boxes"][:, :3].copy()), ValueError),
        (lambda a: a.__setitem__("box_ind", a["box_ind"][:1].copy()), ValueError),
        (lambda a: a.__setitem__("grads", a["grads"][0]), ValueError),
        (lambda a: a.__setitem__("dtype", "int8"), ValueError),
        (lambda a: a.__setitem__("method", "bicubic"), ValueError),
    ],
)
def test_bad_inputs_raise(change, error):
    args = dict(
        grads=np.ones((2, 2, 2, 3), np.float32),
        boxes=np.array([[0, 0, 1, 1], [0.1, 0.2, 0.5, 0.9]], np.float32),
        box_ind=np.array([0, 1], np.int32),
        size=[2, 4, 5, 3],
        dtype="float32",
        method="bilinear",
    )
    change(args)
    with pytest.raises(error):
        _kernels.grad_image_cpu(
            args["grads"],
            args["boxes"],
            args["box_ind"],
            args["size"],
            args["dtype"],
            args["method"],
        )


@pytest.mark.parametrize("method", METHODS)
def test_same_bits_as_the_tf_op(method):
    tf = pytest.importorskip("tensorflow")
    import crop_and_resize_grad as crg

    grads, boxes, box_ind, size = random_case(np.random.default_rng(3), d=17, n=40)
    for dtype in DTYPES:
        ours = _kernels.grad_image_cpu(grads, boxes, box_ind, size, dtype, method, 2)
        op = crg.crop_and_resize_grad_image(grads, boxes, box_ind, size, dtype, method=method)
        op = op.numpy()
        if dtype == "bfloat16":
            op = op.view(np.uint16)
        assert ours.tobytes() == op.tobytes(), dtype
    del tf
