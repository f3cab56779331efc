"""The TF-free CPU kernel through the pybind11 module ``_kernels``.

These tests need no TensorFlow (scripts/gpu_check.sh runs them on a GPU
machine without it): the module is loaded straight from its shared library.
Only the last test, which compares with the TF op, needs TensorFlow.
"""

from __future__ import annotations

import numpy as np
import pytest
from support.cases import unit_box_case
from support.kernels import load_kernels
from support.numerics import DTYPES, METHODS, round_to, to_float64, ulp
from support.reference import grad_image_abs_scale, grad_image_reference

_kernels, _why = load_kernels()
pytestmark = pytest.mark.skipif(_kernels is None, reason=str(_why))


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


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", range(4))
def test_matches_float64_reference(dtype, method, seed):
    rng = np.random.default_rng(seed)
    shape = dict(d=int(rng.choice([1, 3, 4, 17, 64])), ch=int(rng.integers(1, 6)))
    grads, boxes, box_ind, size = random_case(rng, **shape)
    out = _kernels.grad_image_cpu(grads, boxes, box_ind, size, dtype, method, 2)
    assert out.shape == tuple(size)
    got = to_float64(out, dtype)
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
    out = _kernels.grad_image_cpu(*unit_box_case(n).args(), "float64")
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


# The module runs the op's own input checks, so the messages are the TF op's
# (tests/test_validation.py), raised as ValueError (IndexError for OutOfRange).
@pytest.mark.parametrize(
    "change, error, message",
    [
        pytest.param(
            lambda a: a["boxes"].__setitem__((0, 1), np.nan),
            ValueError,
            r"boxes must be finite, but boxes\[0, 1\] is nan",
            id="nan_box",
        ),
        pytest.param(
            lambda a: a["boxes"].__setitem__((1, 2), np.inf),
            ValueError,
            r"boxes must be finite, but boxes\[1, 2\] is inf",
            id="inf_box",
        ),
        pytest.param(
            lambda a: a["box_ind"].__setitem__(0, 2),
            IndexError,
            r"box_ind has values outside \[0, batch_size\): box_ind\[0\] = 2 with batch_size 2",
            id="box_ind_eq_batch",
        ),
        pytest.param(
            lambda a: a["box_ind"].__setitem__(0, -1),
            IndexError,
            r"box_ind has values outside \[0, batch_size\): box_ind\[0\] = -1 with batch_size 2",
            id="box_ind_negative",
        ),
        pytest.param(
            lambda a: a.__setitem__("size", [2, 0, 5, 3]),
            ValueError,
            r"image_size height and width must be positive, got 0 x 5",
            id="height_zero",
        ),
        pytest.param(
            lambda a: a.__setitem__("size", [-1, 4, 5, 3]),
            ValueError,
            r"image_size batch and depth must be non-negative, got batch -1 and depth 3",
            id="batch_negative",
        ),
        pytest.param(
            lambda a: a.__setitem__("size", [2, 4, 5, 4]),
            ValueError,
            r"image_size and grads are incompatible: depth 4 in image_size but 3 in grads",
            id="depth_mismatch",
        ),
        pytest.param(
            lambda a: a.__setitem__("size", [2, 4, 5]),
            ValueError,
            r"image_size must be 1-D with 4 elements",
            id="image_size_3",
        ),
        pytest.param(
            lambda a: a.__setitem__("boxes", a["boxes"][:, :3].copy()),
            ValueError,
            r"boxes must be 2-D \[num_boxes, 4\]",
            id="boxes_3_columns",
        ),
        pytest.param(
            lambda a: a.__setitem__("box_ind", a["box_ind"][:1].copy()),
            ValueError,
            r"box_ind has 1 elements but boxes has 2 rows",
            id="box_ind_1_of_2",
        ),
        pytest.param(
            lambda a: a.__setitem__("grads", a["grads"][0]),
            ValueError,
            r"grads must be 4-D \[num_boxes, crop_height, crop_width, depth\], got shape",
            id="grads_3d",
        ),
        pytest.param(
            lambda a: a.__setitem__("dtype", "int8"),
            ValueError,
            r"dtype must be float16, bfloat16, float32 or float64",
            id="dtype_int8",
        ),
        pytest.param(
            lambda a: a.__setitem__("method", "bicubic"),
            ValueError,
            r"method must be 'bilinear' or 'nearest'",
            id="method_bicubic",
        ),
    ],
)
def test_bad_inputs_raise(change, error, message):
    args = dict(
        grads=np.ones((2, 2, 2, 3), np.float32),
        boxes=np.array([[0, 0, 1, 1], [0.1, 0.2, 0.5, 0.9]], np.float32),
        box_ind=np.array([0, 1], np.int32),
        size=[2, 4, 5, 3],
        dtype="float32",
        method="bilinear",
    )
    change(args)
    with pytest.raises(error, match=message):
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
