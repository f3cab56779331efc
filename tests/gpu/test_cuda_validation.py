"""Box checks, empty inputs, bad inputs and the launcher's argument checks."""

from __future__ import annotations

import cuda_helpers as ch
import numpy as np
import pytest
from support import cases, numerics
from support import gpu as sg

OK, NON_FINITE, OUT_OF_RANGE = 0, 1, 2


def _boxes(n=6):
    return np.tile(np.array([0.1, 0.2, 0.7, 0.9], np.float32), (n, 1)), np.zeros(n, np.int32)


@pytest.mark.parametrize(
    "edit, batch, expected",
    [
        (None, 2, OK),
        ("nan", 2, NON_FINITE),
        ("inf", 2, NON_FINITE),
        ("-inf", 2, NON_FINITE),
        ("huge", 2, OK),  # finite: accepted (harmless in the kernel)
        ("ind=-1", 2, OUT_OF_RANGE),
        ("ind=batch", 2, OUT_OF_RANGE),
        ("ind=big", 2, OUT_OF_RANGE),
        ("nan+ind", 2, OUT_OF_RANGE),  # the out-of-range index wins
        ("any", 0, OUT_OF_RANGE),  # batch 0: every index is out of range
    ],
)
def test_check_boxes_status(gpu, edit, batch, expected):
    boxes, box_ind = _boxes()
    box_ind[:] = np.arange(6) % max(batch, 1)
    if edit == "nan":
        boxes[3, 2] = np.nan
    elif edit == "inf":
        boxes[5, 0] = np.inf
    elif edit == "-inf":
        boxes[0, 1] = -np.inf
    elif edit == "huge":
        boxes[2] = [-3e38, -3e38, 3e38, 3e38]
    elif edit == "ind=-1":
        box_ind[4] = -1
    elif edit == "ind=batch":
        box_ind[1] = batch
    elif edit == "ind=big":
        box_ind[1] = 2**31 - 1
    elif edit == "nan+ind":
        boxes[0, 0] = np.nan
        box_ind[5] = 7
    assert sg.check_boxes(boxes, box_ind, batch, backend=gpu.be) == expected


def test_check_boxes_many(gpu, rng):
    """A bad entry deep in a large array (grid-stride loop) is found."""
    n = 300_000
    boxes = np.tile(np.array([0.1, 0.2, 0.7, 0.9], np.float32), (n, 1))
    box_ind = rng.integers(0, 4, n).astype(np.int32)
    assert sg.check_boxes(boxes, box_ind, 4, backend=gpu.be) == OK
    boxes[n - 3, 3] = np.nan
    assert sg.check_boxes(boxes, box_ind, 4, backend=gpu.be) == NON_FINITE
    box_ind[n - 1] = 4
    assert sg.check_boxes(boxes, box_ind, 4, backend=gpu.be) == OUT_OF_RANGE


def test_check_boxes_empty(gpu):
    assert (
        sg.check_boxes(np.zeros((0, 4), np.float32), np.zeros(0, np.int32), 3, backend=gpu.be) == OK
    )


@pytest.mark.parametrize("mode", ch.MODES)
@pytest.mark.parametrize("dtype", numerics.DTYPES)
def test_no_boxes_gives_zeros(gpu, dtype, mode):
    """N = 0: the (NaN-prefilled) output is zeroed."""
    case = cases.Case(
        np.zeros((0, 3, 4, 5), np.float32),
        np.zeros((0, 4), np.float32),
        np.zeros(0, np.int32),
        [2, 6, 7, 5],
    )
    assert (
        gpu.k.grad_image_scratch_bytes(
            [0, 3, 4, 5], 0, [2, 6, 7, 5], dtype, "bilinear", mode == "deterministic"
        )
        == 0
    )
    out = gpu.run64(case, dtype, "bilinear", mode == "deterministic")
    assert out.shape == (2, 6, 7, 5) and np.all(out == 0)
    assert np.array_equal(out, gpu.cpu64(case, dtype))


@pytest.mark.parametrize("mode", ch.MODES)
@pytest.mark.parametrize("dtype", numerics.DTYPES)
@pytest.mark.parametrize("shape", ["D=0", "B=0"])
def test_empty_output(gpu, rng, dtype, mode, shape):
    if shape == "D=0":
        case = cases.make_case(rng, 2, 5, 6, 0, 4, 3, 3, "normal")
    else:
        case = cases.Case(
            np.zeros((0, 3, 3, 4), np.float32),
            np.zeros((0, 4), np.float32),
            np.zeros(0, np.int32),
            [0, 5, 6, 4],
        )
    out = gpu.run(case, dtype, "bilinear", mode == "deterministic")
    assert out.shape == tuple(case.image_size) and out.size == 0
    assert gpu.cpu(case, dtype).shape == tuple(case.image_size)


@pytest.mark.parametrize("mode", ch.MODES)
@pytest.mark.parametrize("method", numerics.METHODS)
def test_out_of_range_box_ind_is_skipped(gpu, rng, method, mode):
    """The launcher skips boxes with box_ind outside [0, B) (callers must
    still reject them): no out-of-bounds write, others unaffected."""
    case = cases.make_case(rng, 2, 8, 9, 4, 40, 4, 4, "normal")
    bad = case.box_ind.copy()
    bad[[3, 10, 20]] = [-1, 2, 1 << 30]
    bad_case = cases.Case(case.grads, case.boxes, bad, case.image_size)
    keep = np.ones(40, bool)
    keep[[3, 10, 20]] = False
    good_case = cases.Case(case.grads[keep], case.boxes[keep], case.box_ind[keep], case.image_size)
    for dtype in numerics.DTYPES:
        out = gpu.run64(bad_case, dtype, method, mode == "deterministic")
        cpu = gpu.cpu64(good_case, dtype, method)
        scale = ch.abs_scale(good_case, method)
        tol = ch.tolerance(dtype, scale, np.abs(cpu) + np.abs(out))
        if mode == "deterministic":
            # K counts the skipped boxes too (at most doubling it: c + 1).
            tol = tol + 2 * ch.fixed_point_bound(good_case, method)
        ch.assert_close(out, cpu, tol, f"{dtype} with skipped boxes")


@pytest.mark.parametrize("mode", ch.MODES)
@pytest.mark.parametrize("method", numerics.METHODS)
def test_nonfinite_boxes_contribute_nothing(gpu, rng, method, mode):
    """NaN / Inf boxes (which callers reject) put every sample outside."""
    case = cases.make_case(rng, 2, 8, 9, 4, 30, 4, 4, "normal")
    boxes = case.boxes.copy()
    boxes[2, 0] = np.nan
    boxes[5] = [np.inf, 0.1, np.inf, 0.9]
    boxes[7, 3] = -np.inf
    bad = cases.Case(case.grads, boxes, case.box_ind, case.image_size)
    keep = np.ones(30, bool)
    keep[[2, 5, 7]] = False
    good = cases.Case(case.grads[keep], case.boxes[keep], case.box_ind[keep], case.image_size)
    out = gpu.run64(bad, "float32", method, mode == "deterministic")
    cpu = gpu.cpu64(good, "float32", method)
    tol = ch.tolerance("float32", ch.abs_scale(good, method), np.abs(cpu) + np.abs(out))
    if mode == "deterministic":
        tol = tol + 2 * ch.fixed_point_bound(good, method)
    ch.assert_close(out, cpu, tol, "non-finite boxes")


@pytest.mark.parametrize("mode", ch.MODES)
@pytest.mark.parametrize("method", numerics.METHODS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_huge_boxes(gpu, rng, dtype, method, mode):
    """Huge finite boxes (TF crashes on them) are valid input: match the CPU."""
    case = cases.make_case(rng, 2, 8, 9, 3, 12, 5, 4, "normal")
    case.boxes[0] = [-3e38, -3e38, 3e38, 3e38]
    case.boxes[1] = [1e30, -1e30, -1e30, 1e30]
    case.boxes[2] = [-1e20, 0.2, 1e20, 0.8]
    case.boxes[3] = [0.5, 0.5, 0.5 + 1e-30, 0.5]
    ch.check_against_reference_and_cpu(gpu, case, dtype, method, mode == "deterministic")


def test_scratch_bytes(gpu):
    k = gpu.k
    grads_shape, n, image = [10, 3, 3, 8], 10, [2, 5, 6, 8]
    out_elems = 2 * 5 * 6 * 8
    for method in numerics.METHODS:
        assert k.grad_image_scratch_bytes(grads_shape, n, image, "float32", method, False) == 0
        assert k.grad_image_scratch_bytes(grads_shape, n, image, "float64", method, False) == 0
        for dtype in ("float16", "bfloat16"):
            assert (
                k.grad_image_scratch_bytes(grads_shape, n, image, dtype, method, False)
                >= 4 * out_elems
            )
        for dtype in ("float16", "bfloat16", "float32"):
            assert (
                k.grad_image_scratch_bytes(grads_shape, n, image, dtype, method, True)
                >= 8 * out_elems
            )
        assert (
            k.grad_image_scratch_bytes(grads_shape, n, image, "float64", method, True)
            >= out_elems // 8
        )


@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_launcher_rejects_small_or_misaligned_scratch(gpu, rng, dtype):
    case = cases.make_case(rng, 1, 5, 5, 4, 6, 3, 3, "normal")
    launch = gpu.launch(case, dtype, "bilinear", deterministic=True)
    assert launch.scratch_bytes > 0
    with pytest.raises(RuntimeError, match="LaunchCropAndResizeGradImage"):
        launch.launch(scratch_bytes=launch.scratch_bytes - 1)
    # Misaligned scratch (16-byte alignment required).
    be = launch.backend
    big = be.empty([launch.scratch_bytes + 64], "uint8")
    launch.scratch = big[4 : 4 + launch.scratch_bytes]
    with pytest.raises(RuntimeError, match="LaunchCropAndResizeGradImage"):
        launch.launch()
    be.synchronize()


def test_launcher_rejects_bad_arguments(gpu, rng):
    case = cases.make_case(rng, 1, 5, 5, 4, 6, 3, 3, "normal")
    with pytest.raises(ValueError):
        sg.grad_image(case.grads, case.boxes, case.box_ind, case.image_size, "int8", backend=gpu.be)
    with pytest.raises(ValueError, match="method"):
        sg.grad_image(
            case.grads,
            case.boxes,
            case.box_ind,
            case.image_size,
            "float32",
            "bicubic",
            backend=gpu.be,
        )
    with pytest.raises(ValueError):  # depth mismatch
        sg.grad_image(case.grads, case.boxes, case.box_ind, [1, 5, 5, 3], "float32", backend=gpu.be)
    with pytest.raises(ValueError):  # num_boxes mismatch
        sg.grad_image(
            case.grads, case.boxes[:5], case.box_ind[:5], case.image_size, "float32", backend=gpu.be
        )
    with pytest.raises(ValueError):  # non-positive crop size
        sg.grad_image(
            np.zeros((6, 0, 3, 4), np.float32),
            case.boxes,
            case.box_ind,
            case.image_size,
            backend=gpu.be,
        )
    # The module still works afterwards (no sticky CUDA error).
    out = sg.grad_image(
        case.grads, case.boxes, case.box_ind, case.image_size, "float32", backend=gpu.be
    )
    gpu.be.synchronize()
    assert np.isfinite(gpu.be.to_numpy(out)).all()


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("deterministic", [False, True])
def test_launcher_rejects_misaligned_pointers(gpu, rng, dtype, deterministic):
    """An output not aligned to its element size, or grads not aligned to 4
    bytes (a byte view from CuPy or torch), is refused before anything is
    enqueued ("misaligned address"), and the CUDA context stays usable."""
    case = cases.make_case(rng, 1, 5, 5, 4, 6, 3, 3, "normal")
    be = gpu.be
    launch = gpu.launch(case, dtype, "bilinear", deterministic=deterministic)
    itemsize = np.dtype(np.float64 if dtype == "float64" else np.float32).itemsize
    out_bytes = int(np.prod(case.image_size)) * (2 if dtype == "float16" else itemsize)
    good_out = launch.out
    big = be.empty([out_bytes + 64], "uint8")
    launch.out = big[itemsize // 2 + 1 : itemsize // 2 + 1 + out_bytes]
    with pytest.raises(RuntimeError, match="misaligned"):
        launch.launch()
    launch.out = good_out
    good_grads = launch.grads
    gbig = be.empty([case.grads.nbytes + 64], "uint8")
    launch.grads = gbig[2 : 2 + case.grads.nbytes]
    with pytest.raises(RuntimeError, match="misaligned"):
        launch.launch()
    launch.grads = good_grads
    launch.launch()
    be.synchronize()
    assert np.isfinite(gpu.be.to_numpy(launch.out).astype(np.float64)).all()
