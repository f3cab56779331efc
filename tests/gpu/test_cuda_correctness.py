"""CUDA kernels against the float64 NumPy reference and the CPU kernel.

Every dtype, both methods, atomic and deterministic mode; the edge
cases (flipped, degenerate, partly/wholly outside, exactly [0,0,1,1], crop
size 1); D = 1, 3, 4, 256, 301; misaligned grads / output pointers; the
array-library adapters.
"""

from __future__ import annotations

import cuda_helpers as ch
import numpy as np
import pytest
from support import cases, numerics
from support import gpu as sg


@pytest.mark.parametrize("kind", cases.BOX_KINDS)
@pytest.mark.parametrize("mode", ch.MODES)
@pytest.mark.parametrize("method", numerics.METHODS)
@pytest.mark.parametrize("dtype", numerics.DTYPES)
def test_box_kinds(gpu, rng, dtype, method, mode, kind):
    case = cases.make_case(rng, 2, 9, 11, 3, 40, 5, 4, kind)
    out, _ = ch.check_against_reference_and_cpu(gpu, case, dtype, method, mode == "deterministic")
    if kind == "wholly_outside":
        assert not np.any(out), "boxes wholly outside the image must not contribute"


@pytest.mark.parametrize("crop", [(1, 1), (1, 6), (6, 1), (2, 2)], ids=lambda c: f"{c[0]}x{c[1]}")
@pytest.mark.parametrize("mode", ch.MODES)
@pytest.mark.parametrize("method", numerics.METHODS)
@pytest.mark.parametrize("dtype", numerics.DTYPES)
def test_crop_sizes(gpu, rng, dtype, method, mode, crop):
    case = cases.make_case(rng, 2, 7, 10, 2, 60, crop[0], crop[1], "mixed")
    ch.check_against_reference_and_cpu(gpu, case, dtype, method, mode == "deterministic")


@pytest.mark.parametrize("depth", [1, 3, 4, 256, 301])
@pytest.mark.parametrize("mode", ch.MODES)
@pytest.mark.parametrize("method", numerics.METHODS)
@pytest.mark.parametrize("dtype", numerics.DTYPES)
def test_depths(gpu, rng, dtype, method, mode, depth):
    case = cases.make_case(rng, 2, 12, 13, depth, 16, 6, 5, "mixed")
    ch.check_against_reference_and_cpu(gpu, case, dtype, method, mode == "deterministic")


@pytest.mark.parametrize("out_offset", [0, 1])
@pytest.mark.parametrize("grads_offset", [0, 1, 2, 3])
@pytest.mark.parametrize("mode", ch.MODES)
@pytest.mark.parametrize("dtype", numerics.DTYPES)
def test_misaligned_pointers(gpu, rng, dtype, mode, grads_offset, out_offset):
    """grads / output views that start 1-3 floats (1 output element) into an
    allocation: the vector paths must fall back, results unchanged."""
    case = cases.make_case(rng, 2, 9, 10, 8, 30, 5, 4, "mixed")
    launch = gpu.launch(
        case,
        dtype,
        "bilinear",
        mode == "deterministic",
        grads_offset=grads_offset,
        out_offset=out_offset,
    )
    assert sg.device_ptr(launch.grads) % 16 == (4 * grads_offset) % 16
    assert sg.device_ptr(launch.out) % 16 == (numerics.ITEMSIZE[dtype] * out_offset) % 16
    ch.check_against_reference_and_cpu(
        gpu,
        case,
        dtype,
        "bilinear",
        mode == "deterministic",
        grads_offset=grads_offset,
        out_offset=out_offset,
    )


@pytest.mark.parametrize("depth", [3, 4, 8])
@pytest.mark.parametrize("method", numerics.METHODS)
@pytest.mark.parametrize("dtype", numerics.DTYPES)
def test_sparse_samples_bitwise_equal_cpu(gpu, rng, dtype, method, depth):
    """Each box on its own image, samples > 2 pixels apart: every output element
    gets at most one (non-zero) contribution, so there is no summation order and
    atomic mode must equal the CPU kernel exactly. Catches any deviation in the
    sampling arithmetic (e.g. FMA contraction of in = y1*(H-1) + y*scale)."""
    n = 64
    y1 = rng.uniform(-0.4, 1.1, n)
    x1 = rng.uniform(-0.4, 1.1, n)
    h = rng.uniform(0.3, 0.9, n) * rng.choice([-1.0, 1.0], n)
    w = rng.uniform(0.3, 0.9, n) * rng.choice([-1.0, 1.0], n)
    boxes = np.stack([y1, x1, y1 + h, x1 + w], axis=1).astype(np.float32)
    grads = rng.standard_normal((n, 5, 4, depth)).astype(np.float32)
    case = cases.Case(grads, boxes, np.arange(n, dtype=np.int32), [n, 64, 64, depth])
    out = gpu.run64(case, dtype, method, deterministic=False)
    cpu = gpu.cpu64(case, dtype, method)
    diff = out != cpu
    assert not diff.any(), (
        f"{int(diff.sum())} elements differ, e.g. at {np.argwhere(diff)[0].tolist()}: "
        f"GPU {out[diff][0]!r} vs CPU {cpu[diff][0]!r}"
    )


# Boxes whose last sample lies exactly on the image border (in = 0 or H - 1)
# when in = y1*(H-1) + y*scale is evaluated as two rounded float32 operations
# (docs/semantics.md), but just outside when the multiply-add is fused (FMA). Found by
# search: (y1, y2, H, crop_size).
_BORDER_CASES = [
    (0.42268723249435425, 0.0, 163, 5),
    (0.12428327649831772, 0.0, 122, 3),
    (0.3889214098453522, 1.0, 252, 28),
    (0.3218694031238556, 1.0, 202, 23),
    (0.3916189968585968, 0.0, 179, 21),
    (0.05202130228281021, 0.0, 239, 28),
]


@pytest.mark.parametrize("axis", ["y", "x"])
@pytest.mark.parametrize("mode", ch.MODES)
@pytest.mark.parametrize("method", numerics.METHODS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_border_samples(gpu, dtype, method, mode, axis):
    for lo, hi, size, crop in _BORDER_CASES:
        if axis == "y":
            boxes = np.array([[lo, 0.0, hi, 1.0]], np.float32)
            grads = np.ones((1, crop, 3, 1), np.float32)
            image = [1, size, 4, 1]
        else:
            boxes = np.array([[0.0, lo, 1.0, hi]], np.float32)
            grads = np.ones((1, 3, crop, 1), np.float32)
            image = [1, 4, size, 1]
        case = cases.Case(grads, boxes, np.zeros(1, np.int32), image)
        ref = ch.reference(case, dtype, method)
        # The border row/column is inside: 3 samples of weight 1 land there.
        border = ref[0, :, 0, 0] if axis == "x" else ref[0, 0, :, 0]
        edge = ref[0, -1, :, 0] if axis == "y" else ref[0, :, -1, 0]
        assert border.sum() + edge.sum() >= 3.0
        ch.check_against_reference_and_cpu(gpu, case, dtype, method, mode == "deterministic")


@pytest.mark.parametrize("mode", ch.MODES)
@pytest.mark.parametrize("method", numerics.METHODS)
@pytest.mark.parametrize("dtype", numerics.DTYPES)
def test_heavy_overlap(gpu, rng, dtype, method, mode):
    """4096 boxes on one 32x32 image (overlap-1img, D=8). Atomic
    float32 must match the CPU within ~1e-5 of sum |contributions|."""
    case = cases.make_case(rng, 1, 32, 32, 8, 4096, 7, 7, "normal")
    ch.check_against_reference_and_cpu(gpu, case, dtype, method, mode == "deterministic")


def _adapter_case(rng):
    return cases.make_case(rng, 2, 9, 10, 4, 24, 5, 4, "mixed")


@pytest.mark.parametrize("dtype", numerics.DTYPES)
@pytest.mark.parametrize("library", ["cupy", "torch"])
def test_adapter_with_library(gpu, rng, library, dtype):
    """Inputs as the library's own device arrays, launched on a non-default
    stream made current by that library; the adapter must use it."""
    be = gpu.backends.get(library)
    if be is None:
        pytest.skip(f"{library} not available")
    case = _adapter_case(rng)
    grads, boxes, box_ind = be.asarray(case.grads), be.asarray(case.boxes), be.asarray(case.box_ind)
    scale = ch.abs_scale(case, "bilinear")
    cpu = gpu.cpu64(case, dtype)
    be.synchronize()  # uploads done before another stream reads them
    for deterministic in (False, True):
        with be.stream_context():
            out = sg.grad_image(
                grads, boxes, box_ind, case.image_size, dtype, "bilinear", deterministic
            )
            be.synchronize()  # the current, non-default stream
            host = be.to_numpy(out)
        if library == "torch":
            import torch

            expected_dtype = {"bfloat16": torch.bfloat16}.get(dtype, getattr(torch, dtype))
            assert out.dtype == expected_dtype
            assert out.is_cuda and tuple(out.shape) == tuple(case.image_size)
        else:
            assert host.dtype == numerics.HOST_DTYPE[dtype] and host.shape == tuple(case.image_size)
        got = numerics.to_float64(host, dtype)
        ch.assert_close(
            got, cpu, ch.tolerance(dtype, scale, np.abs(cpu) + np.abs(got)), f"{library}/{dtype}"
        )


@pytest.mark.parametrize("library", ["cupy", "torch"])
def test_adapter_converts_input_dtypes(gpu, rng, library):
    """float64 grads / boxes and int64 box_ind are converted, not misread."""
    be = gpu.backends.get(library)
    if be is None:
        pytest.skip(f"{library} not available")
    case = _adapter_case(rng)
    if library == "torch":
        import torch

        grads = torch.from_numpy(case.grads.astype(np.float64)).cuda()
        boxes = torch.from_numpy(case.boxes.astype(np.float64)).cuda()
        box_ind = torch.from_numpy(case.box_ind.astype(np.int64)).cuda()
    else:
        import cupy as cp

        grads = cp.asarray(case.grads.astype(np.float64))
        boxes = cp.asarray(case.boxes.astype(np.float64))
        box_ind = cp.asarray(case.box_ind.astype(np.int64))
    out = sg.grad_image(grads, boxes, box_ind, case.image_size, "float32")
    be.synchronize()
    np.testing.assert_allclose(
        be.to_numpy(out),
        gpu.cpu(case, "float32"),
        rtol=0,
        atol=1e-5 * ch.abs_scale(case, "bilinear").max(),
    )


def test_numpy_inputs_are_uploaded(gpu, rng):
    case = _adapter_case(rng)
    out = sg.grad_image(
        case.grads, case.boxes, case.box_ind, case.image_size, "float64", backend=gpu.be
    )
    gpu.be.synchronize()
    cpu = gpu.cpu64(case, "float64")
    ch.assert_close(
        gpu.be.to_numpy(out),
        cpu,
        ch.tolerance("float64", ch.abs_scale(case, "bilinear"), np.abs(cpu)),
    )


def test_box_generator_covers_kinds(rng):
    """Sanity of the test inputs themselves (runs only where the GPU tests run)."""
    b = cases.random_boxes(rng, 200, "flipped")
    assert np.all((b[:, 0] > b[:, 2]) | (b[:, 1] > b[:, 3]))
    b = cases.random_boxes(rng, 200, "degenerate")
    assert np.all((b[:, 0] == b[:, 2]) | (b[:, 1] == b[:, 3]))
    b = cases.random_boxes(rng, 200, "partly_outside")
    assert np.any(b < 0) and np.any(b > 1)
