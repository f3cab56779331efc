"""Helpers for the CUDA tests: the reference per output dtype, tolerances, checks.

No TensorFlow here (the GPU machine may have none). Cases, the reference, the
runner (``support.gpu.Gpu``) and ``ulp`` come from ``tests/support``.
"""

from __future__ import annotations

import numpy as np
from support.numerics import ulp
from support.reference import grad_image_abs_scale, grad_image_reference, inside, sample_coordinates

MODES = ("atomic", "deterministic")

# Accumulation error allowed against the reference / the CPU kernel, relative
# to the per-element sum of |contributions|: float sums for float32, half and
# bfloat16 (the kernels accumulate those in float), double sums for float64.
RTOL = {"float16": 1e-5, "bfloat16": 1e-5, "float32": 1e-5, "float64": 1e-12}


def wide_range_grads(rng, shape):
    """Normal grads scaled by 10^U(-3, 3): a wide dynamic range."""
    g = rng.standard_normal(shape) * 10.0 ** rng.uniform(-3, 3, shape)
    return g.astype(np.float32)


def reference(case, dtype, method):
    """float64 reference: sums of exactly the kernels' products (float32
    products for float/half/bfloat16 output, float64 weights for double)."""
    products = "float64" if dtype == "float64" else "float32"
    return grad_image_reference(
        case.grads, case.boxes, case.box_ind, case.image_size, method, products=products
    )


def abs_scale(case, method):
    return grad_image_abs_scale(case.grads, case.boxes, case.box_ind, case.image_size, method)


# --------------------------------------------------------------------------- #
# Tolerances
# --------------------------------------------------------------------------- #
def tap_counts(case, method):
    """[B, H, W, 1] number of taps (contributions) each pixel receives: 4 per
    inside sample for bilinear (zero weights included), 1 for nearest."""
    batch, height, width, _ = (int(v) for v in case.image_size)
    counts = np.zeros(batch * height * width, np.float64)
    n_boxes, crop_h, crop_w, _ = case.grads.shape
    if n_boxes == 0 or batch == 0:
        return counts.reshape(batch, height, width, 1)
    in_y = sample_coordinates(case.boxes[:, 0], case.boxes[:, 2], height, crop_h)
    in_x = sample_coordinates(case.boxes[:, 1], case.boxes[:, 3], width, crop_w)
    vy, vx = inside(in_y, height), inside(in_x, width)
    in_y = np.where(vy, in_y, np.float32(0))
    in_x = np.where(vx, in_x, np.float32(0))
    if method == "bilinear":
        ys = (np.floor(in_y).astype(np.int64), np.ceil(in_y).astype(np.int64))
        xs = (np.floor(in_x).astype(np.int64), np.ceil(in_x).astype(np.int64))
    else:
        ry = np.floor(in_y.astype(np.float64) + 0.5).astype(np.int64)  # coords >= 0
        rx = np.floor(in_x.astype(np.float64) + 0.5).astype(np.int64)
        ys, xs = (ry,), (rx,)
    n, y, x = np.nonzero(vy[:, :, None] & vx[:, None, :])
    base = case.box_ind.astype(np.int64)[n] * height * width
    for yy in ys:
        for xx in xs:
            rows = base + yy[n, y] * width + xx[n, x]
            counts += np.bincount(rows, minlength=counts.size)
    return counts.reshape(batch, height, width, 1)


def fixed_point_bound(case, method):
    """cuda/README.md deterministic bound before the final rounding, per
    element: C * 2^(E + c - 61), E = floor(log2 max|finite grads|),
    c = ceil(log2 K), K = samples, C = contributions of the element."""
    g = np.abs(case.grads[np.isfinite(case.grads)])
    m = float(g.max()) if g.size else 0.0
    if m == 0.0:
        return np.zeros([int(v) for v in case.image_size[:3]] + [1])
    big_e = int(np.frexp(m)[1]) - 1
    c = 0
    while (1 << c) < case.num_samples:
        c += 1
    return tap_counts(case, method) * 2.0 ** (big_e + c - 61)


def tolerance(dtype, scale, values, extra=0.0):
    """RTOL * sum|contributions| + one ulp of the output type + extra."""
    return RTOL[dtype] * scale + ulp(values, dtype) + extra


def assert_close(actual, expected, tol, what=""):
    """Same non-finite pattern (NaN / +Inf / -Inf) and |actual - expected| <= tol."""
    actual = np.asarray(actual, np.float64)
    expected = np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, (what, actual.shape, expected.shape)
    for name, pred in (("NaN", np.isnan), ("+Inf", np.isposinf), ("-Inf", np.isneginf)):
        a, e = pred(actual), pred(expected)
        if not np.array_equal(a, e):
            idx = np.argwhere(a != e)[:5].tolist()
            raise AssertionError(
                f"{what}: {name} pattern differs at {int((a != e).sum())} elements, e.g. {idx}; "
                f"actual {actual[tuple(np.argwhere(a != e)[0])]}, "
                f"expected {expected[tuple(np.argwhere(a != e)[0])]}"
            )
    finite = np.isfinite(expected)
    err = np.where(finite, np.abs(actual - np.where(finite, expected, 0)), 0.0)
    tol = np.broadcast_to(np.asarray(tol, np.float64), err.shape)
    bad = err > tol
    if bad.any():
        i = tuple(np.argwhere(bad)[0])
        worst = tuple(np.unravel_index(np.argmax(err - tol), err.shape))
        raise AssertionError(
            f"{what}: {int(bad.sum())}/{err.size} elements out of tolerance; first at {i}: "
            f"actual {actual[i]!r}, expected {expected[i]!r}, err {err[i]:.3g}, tol {tol[i]:.3g}; "
            f"worst at {worst}: err {err[worst]:.3g}, tol {tol[worst]:.3g}"
        )


def check_against_reference_and_cpu(gpu, case, dtype, method, deterministic, **kw):
    """The main comparison: GPU vs float64 reference and vs the CPU kernel."""
    out = gpu.run64(case, dtype, method, deterministic, **kw)
    ref = reference(case, dtype, method)
    scale = abs_scale(case, method)
    extra = fixed_point_bound(case, method) if deterministic else 0.0
    mode = "deterministic" if deterministic else "atomic"
    label = f"{dtype}/{method}/{mode}"
    assert_close(
        out,
        ref,
        tolerance(dtype, scale, np.maximum(np.abs(ref), np.abs(out)), extra),
        label + " vs reference",
    )
    cpu = gpu.cpu64(case, dtype, method)
    assert_close(
        out,
        cpu,
        tolerance(dtype, scale, np.maximum(np.abs(cpu), np.abs(out)), extra),
        label + " vs CPU",
    )
    return out, cpu
