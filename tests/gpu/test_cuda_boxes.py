"""The boxes-gradient CUDA kernel (_kernels.grad_boxes_cuda) against the CPU
kernel (_kernels.grad_boxes_cpu): bitwise equal, since both sum in the same
fixed float64 order (docs/semantics.md, "Boxes gradient"); and against the
float64 NumPy reference. Every image dtype, both methods, every box kind, crop
sizes 1 and more, depths 1 to 300; repeated launches give the same bits.
"""

from __future__ import annotations

import numpy as np
import pytest
from support import cases, numerics
from support.reference import grad_boxes_reference


def _image(rng, shape, dtype):
    """Host image of ``dtype`` ('bfloat16' as uint16 bits) and its float64 values."""
    x = rng.standard_normal(shape).astype(np.float32)
    if dtype == "bfloat16":
        bits = numerics.float32_to_bf16_bits(x)
        return bits, numerics.bf16_bits_to_float32(bits).astype(np.float64)
    host = x.astype(dtype)
    return host, host.astype(np.float64)


def _run(gpu, case, image, dtype, method="bilinear"):
    be = gpu.be
    grads = be.asarray(case.grads)
    img = be.asarray(image)
    boxes = be.asarray(case.boxes)
    box_ind = be.asarray(case.box_ind)
    out = be.empty([case.boxes.shape[0], 4], "float32")
    be.fill(out, float("nan"))
    gpu.k.grad_boxes_cuda(
        _ptr(grads),
        _ptr(img),
        _ptr(boxes),
        _ptr(box_ind),
        list(case.grads.shape),
        list(image.shape),
        _ptr(out),
        dtype,
        method,
        be.stream_ptr(),
    )
    be.synchronize()
    return be.to_numpy(out)


def _ptr(x):
    from support.gpu import device_ptr

    return device_ptr(x)


def _check(gpu, rng, case, dtype, method="bilinear"):
    image, image64 = _image(rng, case.image_size, dtype)
    out = _run(gpu, case, image, dtype, method)
    kw = {"image_dtype": "bfloat16"} if dtype == "bfloat16" else {}
    cpu = gpu.k.grad_boxes_cpu(case.grads, image, case.boxes, case.box_ind, method, 0, **kw)
    assert np.array_equal(out.view(np.uint32), cpu.view(np.uint32)), np.abs(out - cpu).max()
    ref, scale = grad_boxes_reference(
        case.grads, image64, case.boxes, case.box_ind, with_scale=True
    )
    terms = np.prod(case.grads.shape[1:])
    bound = np.abs(ref) * 2.0**-24 + scale * (terms / 256 + 9) * 2.0**-53 + 1e-300
    assert np.all(np.abs(out - ref) <= bound)
    return out


@pytest.mark.parametrize("kind", cases.BOX_KINDS)
@pytest.mark.parametrize("method", numerics.METHODS)
@pytest.mark.parametrize("dtype", numerics.DTYPES)
def test_box_kinds(gpu, rng, dtype, method, kind):
    case = cases.make_case(rng, 2, 9, 11, 3, 40, 5, 4, kind)
    _check(gpu, rng, case, dtype, method)


@pytest.mark.parametrize("crop", [(1, 1), (1, 6), (6, 1), (7, 7)], ids=str)
@pytest.mark.parametrize("dtype", numerics.DTYPES)
def test_crop_sizes(gpu, rng, dtype, crop):
    case = cases.make_case(rng, 2, 7, 10, 2, 60, crop[0], crop[1], "mixed")
    _check(gpu, rng, case, dtype)


@pytest.mark.parametrize("depth", [1, 3, 8, 255, 256, 257, 300])
@pytest.mark.parametrize("dtype", numerics.DTYPES)
def test_depths(gpu, rng, dtype, depth):
    case = cases.make_case(rng, 2, 12, 13, depth, 16, 6, 5, "mixed")
    _check(gpu, rng, case, dtype)


def test_many_boxes_repeatable(gpu, rng):
    """More boxes than resident blocks (the grid-stride loop); same bits on
    every launch."""
    case = cases.make_case(rng, 2, 40, 50, 16, 20000, 7, 7, "mixed")
    first = _check(gpu, rng, case, "float32")
    image, _ = _image(np.random.default_rng(1), case.image_size, "float32")
    outs = [_run(gpu, case, image, "float32") for _ in range(3)]
    assert all(np.array_equal(o.view(np.uint32), outs[0].view(np.uint32)) for o in outs)
    assert first.shape == (20000, 4)
