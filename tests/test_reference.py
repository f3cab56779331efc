"""Tests of the NumPy reference itself (no dependency on the package under test).

(a) The reference is the adjoint of TF's forward tf.image.crop_and_resize with
    extrapolation_value=0, checked both as an inner-product identity on random
    cases and, sharply, element by element through the Jacobian on small cases.
(b) It matches tf.raw_ops.CropAndResizeGradImage (serial under op
    determinism, set in conftest) -- to float64 round-off when the reference
    emulates TF's float32 products, to float32 round-off otherwise.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from helpers import assert_close_scaled, run_tf_builtin
from support.cases import BOX_KINDS, Case, make_case, random_boxes
from support.numerics import METHODS
from support.reference import grad_image_reference, round_half_away, sample_coordinates


def tf_forward(image64, case, method):
    """TF's crop_and_resize in its own (float32) arithmetic, as float64."""
    crop = case.grads.shape[1:3]
    out = tf.image.crop_and_resize(
        image64, case.boxes, case.box_ind, crop, method=method, extrapolation_value=0.0
    )
    return out.numpy().astype(np.float64)


def float32_image(rng, shape):
    """Random image exactly representable in float32 (TF's forward reads it as float)."""
    return rng.standard_normal(shape).astype(np.float32).astype(np.float64)


# ---------------------------------------------------------------- unit pieces


def test_round_half_away_from_zero():
    x = np.array(
        [0.0, 0.49999997, 0.5, 1.5, 2.5, 3.5, 2.4999998, 7.0, -0.5, -1.5, -2.5], np.float32
    )
    expected = np.array([0, 0, 1, 2, 3, 4, 2, 7, -1, -2, -3])
    np.testing.assert_array_equal(round_half_away(x), expected)


def test_sample_coordinates_float32_order():
    # scale = (hi - lo) * (size - 1) / (crop - 1); in = lo * (size - 1) + i * scale
    lo, hi, size, crop = np.float32(0.1), np.float32(0.7), 13, 5
    got = sample_coordinates([lo], [hi], size, crop)[0]
    scale = (hi - lo) * np.float32(size - 1) / np.float32(crop - 1)
    expected = [lo * np.float32(size - 1) + np.float32(i) * scale for i in range(crop)]
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, np.array(expected, np.float32))
    # crop size 1: (lo + hi) in float32, then 0.5 * . * (size - 1) in double.
    got1 = sample_coordinates([lo], [hi], size, 1)[0, 0]
    assert got1 == np.float32(0.5 * float(lo + hi) * (size - 1))


def test_unit_box_hits_every_pixel_once():
    # [0,0,1,1] with crop == image size samples every pixel exactly once.
    g = np.ones((3, 6, 5, 2), np.float32)
    for method in METHODS:
        out = grad_image_reference(
            g, np.tile([0, 0, 1, 1], (3, 1)), [0, 1, 1], [2, 6, 5, 2], method
        )
        np.testing.assert_array_equal(out[0], 1.0)
        np.testing.assert_array_equal(out[1], 2.0)


def test_nan_and_inf_coordinates_are_skipped():
    boxes = np.array(
        [[np.nan, 0, 1, 1], [0, np.inf, 1, 1], [-np.inf, 0, np.inf, 1], [3e38, -3e38, -3e38, 3e38]],
        np.float32,
    )
    g = np.ones((4, 3, 3, 1), np.float32)
    for method in METHODS:
        out = grad_image_reference(g, boxes, [0, 0, 0, 0], [1, 4, 4, 1], method)
        assert np.all(np.isfinite(out))


# ---------------------------------------------------------------- (a) adjoint

ADJOINT_SHAPES = [
    # (B, H, W, D, N, ch, cw)
    (1, 6, 7, 1, 9, 4, 3),
    (3, 9, 5, 3, 30, 5, 6),
    (2, 5, 8, 2, 25, 1, 4),
    (2, 7, 6, 2, 25, 3, 1),
    (2, 4, 4, 3, 20, 1, 1),
    (1, 2, 2, 1, 15, 3, 3),
    (2, 1, 5, 2, 15, 3, 4),  # H == 1: only y == 0 is inside
]


@pytest.mark.parametrize("shape", ADJOINT_SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("kind", ["mixed", "flipped", "partly_outside", "grid"])
def test_adjoint_inner_product(rng, shape, method, kind):
    B, H, W, D, N, ch, cw = shape
    case = make_case(rng, B, H, W, D, N, ch, cw, kind)
    u = float32_image(rng, (B, H, W, D))
    crops = tf_forward(u, case, method)
    lhs = float(np.sum(crops * case.grads.astype(np.float64)))
    ref = case.reference(method)
    rhs = float(np.sum(u * ref))
    scale = float(np.sum(np.abs(u) * case.scale(method)))
    assert scale > 0 or kind == "wholly_outside"
    assert abs(lhs - rhs) <= 1e-6 * scale + 1e-12, (lhs, rhs, scale)


@pytest.mark.parametrize("shape", ADJOINT_SHAPES[:6], ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("method", METHODS)
def test_adjoint_jacobian_elementwise(rng, shape, method):
    """Rows of the reference's matrix (reference applied to unit crops) times
    an image reproduce TF's forward crop element by element."""
    B, H, W, D, N, ch, cw = shape
    N = min(N, 6)
    case = make_case(rng, B, H, W, D, N, ch, cw, "mixed")
    u = float32_image(rng, (B, H, W, D))
    crops = tf_forward(u, case, method).reshape(-1)
    n_el = N * ch * cw * D
    predicted = np.empty(n_el)
    bound = np.empty(n_el)
    for k in range(n_el):
        e = np.zeros(n_el, np.float32)
        e[k] = 1
        row = grad_image_reference(
            e.reshape(case.grads.shape), case.boxes, case.box_ind, case.image_size, method
        )
        predicted[k] = np.sum(row * u)
        bound[k] = np.sum(np.abs(row) * np.abs(u))
    err = np.abs(predicted - crops)
    assert np.all(err <= 1e-6 * bound + 1e-30), (err.max(), np.argmax(err - 1e-6 * bound))


# ---------------------------------------------------------------- (b) vs TF

TF_SHAPES = [
    (2, 7, 9, 3, 40, 5, 4),
    (1, 5, 5, 1, 60, 1, 1),
    (3, 16, 12, 5, 50, 3, 1),
    (2, 11, 13, 2, 50, 1, 7),
    (1, 10, 10, 2, 80, 10, 10),
    (2, 33, 17, 3, 30, 9, 8),
]


@pytest.mark.parametrize("shape", TF_SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("kind", BOX_KINDS)
def test_matches_tf_builtin(rng, shape, method, kind):
    B, H, W, D, N, ch, cw = shape
    case = make_case(rng, B, H, W, D, N, ch, cw, kind)
    scale = case.scale(method)
    tf64 = run_tf_builtin(case, tf.float64, method)
    # TF forms each contribution in float32 and accumulates in double: the
    # emulation must agree to double round-off (this pins down the exact
    # float32 sample positions, including crop size 1).
    emulated = case.reference(method, products="float32")
    assert_close_scaled(
        tf64, emulated, scale, 1e-12, 1e-300, "TF float64 vs float32-product reference"
    )
    # The float64-weight reference agrees to float32 round-off.
    ref = case.reference(method)
    assert_close_scaled(tf64, ref, scale, 3e-7, 1e-300, "TF float64 vs reference")
    tf32 = run_tf_builtin(case, tf.float32, method)
    assert_close_scaled(tf32, ref, scale, 1e-5, 1e-30, "TF float32 vs reference")


def test_matches_tf_builtin_many_boxes(rng):
    case = make_case(rng, 2, 32, 32, 16, 2000, 7, 7, "mixed")
    for method in METHODS:
        tf64 = run_tf_builtin(case, tf.float64, method)
        emulated = case.reference(method, products="float32")
        assert_close_scaled(tf64, emulated, case.scale(method), 1e-12, 1e-300, method)


def test_empty_and_all_outside():
    case = Case(
        np.ones((3, 2, 2, 2), np.float32),
        random_boxes(np.random.default_rng(1), 3, "wholly_outside"),
        np.array([0, 1, 0], np.int32),
        [2, 4, 4, 2],
    )
    for method in METHODS:
        np.testing.assert_array_equal(case.reference(method), 0.0)
        np.testing.assert_array_equal(run_tf_builtin(case, tf.float64, method), 0.0)
