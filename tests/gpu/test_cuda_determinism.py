"""Race freedom and the deterministic mode.

- 20,000 boxes [0,0,1,1] on one 8x8 image (the race case): exact sums.
- Deterministic mode: bitwise identical over 20 runs, for every dtype and
  method; within the error bound documented in cuda/README.md.
- Non-finite grads give the IEEE result (order independent) in both modes.
"""

from __future__ import annotations

import cuda_helpers as ch
import numpy as np
import pytest
from support import cases, numerics


@pytest.mark.parametrize("mode", ch.MODES)
@pytest.mark.parametrize("method", numerics.METHODS)
@pytest.mark.parametrize("dtype", numerics.DTYPES)
def test_unit_boxes_exact_sum(gpu, dtype, method, mode):
    case = cases.unit_box_case(20000)
    out = gpu.run64(case, dtype, method, mode == "deterministic")
    expected = numerics.round_to(20000.0, dtype)
    assert np.all(out == expected), np.unique(out)
    total = float(out.sum())
    if dtype != "bfloat16":  # 20000 rounds to 19968 in bfloat16
        assert total == 1_280_000.0, total
    else:
        assert total == 64 * 19968.0, total
    np.testing.assert_array_equal(out, gpu.cpu64(case, dtype, method))


def _overlap_case(rng, num_boxes=3000, depth=8):
    """Thousands of boxes on one 16x16 image with a wide range of grads: the
    float summation order would show in every element."""
    case = cases.make_case(rng, 1, 16, 16, depth, num_boxes, 7, 7, "mixed")
    case.grads = ch.wide_range_grads(rng, case.grads.shape)
    return case


@pytest.mark.parametrize("method", numerics.METHODS)
@pytest.mark.parametrize("dtype", numerics.DTYPES)
def test_deterministic_bitwise_over_20_runs(gpu, rng, dtype, method):
    case = _overlap_case(rng)
    launch = gpu.launch(case, dtype, method, deterministic=True)
    first = None
    for run in range(20):
        gpu.prefill(launch.out, dtype, launch.backend)
        launch()
        launch.backend.synchronize()
        raw = np.ascontiguousarray(launch.backend.to_numpy(launch.out)).view(np.uint8)
        if first is None:
            first = raw.copy()
        else:
            assert np.array_equal(raw, first), f"run {run} differs from run 0"
    # A fresh launch (new scratch and output allocations) gives the same bits.
    again = gpu.run(case, dtype, method, deterministic=True)
    assert np.array_equal(np.ascontiguousarray(again).view(np.uint8), first)


@pytest.mark.parametrize("misaligned", [False, True], ids=["aligned", "misaligned"])
@pytest.mark.parametrize("dtype", numerics.DTYPES)
def test_deterministic_independent_of_vector_width(gpu, rng, dtype, misaligned):
    """The deterministic result must not depend on the vector path taken."""
    case = _overlap_case(rng, num_boxes=1000, depth=8)
    a = gpu.run(case, dtype, "bilinear", True)
    b = gpu.run(case, dtype, "bilinear", True, grads_offset=1 if misaligned else 0, out_offset=1)
    assert np.array_equal(
        np.ascontiguousarray(a).view(np.uint8), np.ascontiguousarray(b).view(np.uint8)
    )


@pytest.mark.parametrize("kind", ["overlap", "mixed", "wide"])
@pytest.mark.parametrize("method", numerics.METHODS)
@pytest.mark.parametrize("dtype", numerics.DTYPES)
def test_deterministic_error_bound(gpu, rng, dtype, method, kind):
    """|out - sum of products| <= C * 2^(E + c - 61) + final rounding
    (cuda/README.md), with no other slack than float64 summation noise."""
    if kind == "overlap":
        case = _overlap_case(rng)
    elif kind == "mixed":
        case = cases.make_case(rng, 3, 20, 17, 5, 500, 6, 9, "mixed")
    else:  # one huge gradient makes the fixed-point quantum coarse
        case = cases.make_case(rng, 2, 12, 12, 4, 300, 5, 5, "normal")
        case.grads.flat[7] = 3.0e4
    out = gpu.run64(case, dtype, method, deterministic=True)
    ref = ch.reference(case, dtype, method)
    bound = ch.fixed_point_bound(case, method)
    # The reference sums the kernels' exact products in float64 (bincount,
    # sequential): at most C * 2^-52 * sum|p| of its own rounding error.
    noise = ch.tap_counts(case, method) * 2.0**-52 * ch.abs_scale(case, method)
    mag = np.maximum(np.abs(ref), np.abs(out))
    if dtype in ("float16", "bfloat16"):  # 1/2 ulp of float + 1/2 ulp of T
        rounding = 0.5 * numerics.ulp(mag, "float32") + 0.5 * numerics.ulp(mag, dtype)
    elif dtype == "float32":  # (+ 2^-53 relative from int64 -> double)
        rounding = 0.5 * numerics.ulp(mag, dtype) * (1 + 2.0**-20)
    else:
        rounding = numerics.ulp(mag, dtype)
    ch.assert_close(out, ref, bound + rounding + noise, f"{dtype}/{method} deterministic bound")


@pytest.mark.parametrize("dtype", numerics.DTYPES)
def test_atomic_vs_deterministic(gpu, rng, dtype):
    case = _overlap_case(rng, num_boxes=2000)
    atomic = gpu.run64(case, dtype, "bilinear", False)
    det = gpu.run64(case, dtype, "bilinear", True)
    scale = ch.abs_scale(case, "bilinear")
    tol = 2 * (1e-5 if dtype != "float64" else 1e-12) * scale + 2 * numerics.ulp(
        np.abs(det) + np.abs(atomic), dtype
    )
    tol = tol + ch.fixed_point_bound(case, "bilinear")
    ch.assert_close(atomic, det, tol, f"{dtype} atomic vs deterministic")


def _nonfinite_case(rng):
    case = cases.make_case(rng, 2, 8, 9, 4, 50, 4, 5, "normal")
    g = case.grads.reshape(-1)
    picks = rng.choice(g.size, 30, replace=False)
    g[picks[:10]] = np.inf
    g[picks[10:20]] = -np.inf
    g[picks[20:25]] = np.nan
    # One element that gets both infinities: boxes 0 and 1 identical.
    case.boxes[1] = case.boxes[0]
    case.box_ind[1] = case.box_ind[0]
    case.grads[0, 1, 1, 0] = np.inf
    case.grads[1, 1, 1, 0] = -np.inf
    return case


@pytest.mark.parametrize("mode", ch.MODES)
@pytest.mark.parametrize("method", numerics.METHODS)
@pytest.mark.parametrize("dtype", numerics.DTYPES)
def test_nonfinite_grads(gpu, rng, dtype, method, mode):
    """NaN / +-Inf grads: same NaN/Inf pattern as the CPU kernel and the
    reference (IEEE sums do not depend on the order), finite elements close."""
    case = _nonfinite_case(rng)
    with np.errstate(invalid="ignore"):
        out, cpu = ch.check_against_reference_and_cpu(
            gpu, case, dtype, method, mode == "deterministic"
        )
    assert np.isnan(out).any() and np.isinf(out).any()


def test_nonfinite_grads_deterministic_repeatable(gpu, rng):
    case = _nonfinite_case(rng)
    runs = {gpu.run(case, "float32", "bilinear", True).tobytes() for _ in range(5)}
    assert len(runs) == 1


def test_zero_grads_deterministic(gpu, rng):
    """All grads zero (max |g| = 0, scale 1): exact zeros, no NaN."""
    case = cases.make_case(rng, 2, 6, 6, 4, 20, 3, 3, "normal")
    case.grads[...] = 0
    for dtype in numerics.DTYPES:
        out = gpu.run64(case, dtype, "bilinear", True)
        assert np.all(out == 0), dtype


def test_tiny_grads_deterministic(gpu, rng):
    """Subnormal grads: the CUDA build flushes float32 denormals (-ftz=true),
    as the CPU kernel does (FTZ/DAZ), so every product is 0 and the output is
    exactly the CPU's zeros, in both modes; and a subnormal max |g| keeps the
    fixed-point exponent in range."""
    case = cases.make_case(rng, 1, 6, 6, 2, 10, 3, 3, "normal")
    case.grads = (case.grads * np.float32(1e-40)).astype(np.float32)
    assert np.abs(case.grads).max() < np.finfo(np.float32).tiny
    for dtype, method in (("float32", "bilinear"), ("float64", "nearest")):
        cpu = gpu.cpu64(case, dtype, method)
        assert not np.any(cpu), (dtype, method)
        for deterministic in (False, True):
            out = gpu.run64(case, dtype, method, deterministic)
            assert np.array_equal(out, cpu), (dtype, method, deterministic)


def test_single_box_case(gpu):
    """Hand-checked: one box [0,0,1,1], crop 2x2 on a 3x3 image, D=1:
    samples at (0,0), (0,2), (2,0), (2,2) with grads 1, 2, 3, 4."""
    case = cases.Case(
        np.arange(1, 5, dtype=np.float32).reshape(1, 2, 2, 1),
        np.array([[0, 0, 1, 1]], np.float32),
        np.zeros(1, np.int32),
        [1, 3, 3, 1],
    )
    expected = np.zeros((1, 3, 3, 1))
    expected[0, 0, 0, 0], expected[0, 0, 2, 0], expected[0, 2, 0, 0], expected[0, 2, 2, 0] = (
        1,
        2,
        3,
        4,
    )
    for dtype in numerics.DTYPES:
        for method in numerics.METHODS:
            for det in (False, True):
                assert np.array_equal(gpu.run64(case, dtype, method, det), expected), (
                    dtype,
                    method,
                    det,
                )
