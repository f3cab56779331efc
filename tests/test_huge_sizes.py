"""Image sizes above 2^24, where float32(size - 1) rounds up to size.

The sample on the far border then has a tap at index size, one past the
image. The taps are clamped to size - 1 (cc/core/sampling.h, ClampTap;
docs/semantics.md, "Tap clamp"), so the output sums to 2 and nothing is
written past it. Checked through the TF op and through _kernels, for rows and
columns and both methods.
"""

from __future__ import annotations

import numpy as np
import pytest
from support.kernels import load_kernels

SIZES = (16_777_220, 33_554_436)
METHODS = ("bilinear", "nearest")
AXES = ("height", "width")


def huge_case(size, axis):
    """Two samples on one axis of a [1, H, W, 1] image: rows 0 and H - 1."""
    if axis == "height":
        grads = np.ones((1, 2, 1, 1), np.float32)
        image_size = [1, size, 1, 1]
    else:
        grads = np.ones((1, 1, 2, 1), np.float32)
        image_size = [1, 1, size, 1]
    return grads, np.array([[0, 0, 1, 1]], np.float32), np.zeros(1, np.int32), image_size


def check(out, size):
    flat = np.asarray(out, np.float64).ravel()
    assert flat.size == size
    assert flat.sum() == 2.0
    assert flat[0] == 1.0 and flat[-1] == 1.0


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("axis", AXES)
@pytest.mark.parametrize("method", METHODS)
def test_tf_op(size, axis, method):
    pytest.importorskip("tensorflow")
    import crop_and_resize_grad as crg

    grads, boxes, box_ind, image_size = huge_case(size, axis)
    out = crg.crop_and_resize_grad_image(
        grads, boxes, box_ind, image_size, "float32", method=method
    )
    check(out.numpy(), size)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("axis", AXES)
@pytest.mark.parametrize("method", METHODS)
def test_kernels_module(size, axis, method):
    kernels, why = load_kernels()
    if kernels is None:
        pytest.skip(str(why))
    grads, boxes, box_ind, image_size = huge_case(size, axis)
    check(kernels.grad_image_cpu(grads, boxes, box_ind, image_size, "float32", method), size)
