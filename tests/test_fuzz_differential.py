"""Differential fuzzing: the op (through the TF wrapper) against the float64
NumPy reference (tests/reference.py), with hypothesis.

Each example draws a shape (sizes of 1 are favoured, and N = 0, D = 0, B = 0
occur), boxes mixing ordinary, flipped, degenerate, far-outside, grid-aligned
and huge finite coordinates, and grads; it then checks every output dtype with
both methods. float32 with tame boxes is also compared bitwise against TF's
builtin kernel (serial under op determinism, see conftest.py), which crashes
on huge boxes and so only sees boxes inside [-4, 4].

Profiles (CRG_FUZZ_PROFILE):
  ci    (default) 200 examples, derandomized: the same examples every run.
  long  5000 examples from a fresh random seed, for local runs:
        CRG_FUZZ_PROFILE=long PYTHONPATH=python python3 -m pytest -q tests/test_fuzz_differential.py
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import tensorflow as tf
from helpers import ALL_DTYPES, as_f64, assert_close_scaled, numpy_dtype, run_tf_builtin
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from support.cases import Case
from support.numerics import METHODS, round_to

settings.register_profile(
    "ci",
    max_examples=200,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
settings.register_profile(
    "long",
    max_examples=5000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
PROFILE = os.environ.get("CRG_FUZZ_PROFILE", "ci")
if PROFILE not in ("ci", "long"):
    raise ValueError(f"CRG_FUZZ_PROFILE must be 'ci' or 'long', got {PROFILE!r}")
FUZZ_SETTINGS = settings.get_profile(PROFILE)

F32 = np.float32
GRID = [0.0, 1.0, 0.5, 0.25, 0.125, 0.1, 0.2, 0.3, 0.7, 0.75, 0.9, -0.5, 1.5, 2.0, -1.0]
HUGE = [3e38, -3e38, 1e30, -1e30, 1e20, -1e20, 1e7, -1e7, 1e-40, -0.0]
TAME_LIMIT = 4.0  # TF's builtin only sees boxes within [-4, 4].

# Sizes: 1 is special (scale 0 / single-pixel centre), so it gets its own weight.
small = st.one_of(st.just(1), st.integers(1, 12))
tame_coordinate = st.one_of(
    st.floats(-0.25, 1.25, width=32),  # mostly inside
    st.floats(-3.0, 4.0, width=32),  # far outside [0, 1]
    st.sampled_from(GRID),  # exact pixel hits
)
# Overflowing coordinates (must be dropped); used by about a third of the cases.
any_coordinate = st.one_of(tame_coordinate, st.sampled_from(HUGE))


@st.composite
def box_strategy(draw, coordinate):
    y1, x1, y2, x2 = (draw(coordinate) for _ in range(4))
    kind = draw(st.sampled_from(["as_drawn", "flip_y", "flip_x", "degenerate_y", "degenerate_x"]))
    if kind == "flip_y" and y1 < y2:
        y1, y2 = y2, y1
    elif kind == "flip_x" and x1 < x2:
        x1, x2 = x2, x1
    elif kind == "degenerate_y":
        y2 = y1
    elif kind == "degenerate_x":
        x2 = x1
    return [y1, x1, y2, x2]


@st.composite
def cases(draw):
    num_boxes = draw(st.integers(0, 12))
    batch = draw(st.integers(0 if num_boxes == 0 else 1, 3))
    height, width = draw(small), draw(small)
    depth = draw(st.sampled_from([1, 1, 2, 3, 4, 5, 8, 17, 33, 0]))
    crop_h, crop_w = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    coordinate = any_coordinate if draw(st.integers(0, 2)) == 0 else tame_coordinate
    boxes = np.array(
        draw(st.lists(box_strategy(coordinate), min_size=num_boxes, max_size=num_boxes)), F32
    ).reshape(num_boxes, 4)
    box_ind = np.array(
        draw(st.lists(st.integers(0, max(batch - 1, 0)), min_size=num_boxes, max_size=num_boxes)),
        np.int32,
    )
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    grads_kind = draw(st.sampled_from(["normal", "ones", "integers", "wide_range"]))
    shape = (num_boxes, crop_h, crop_w, depth)
    if grads_kind == "normal":
        grads = rng.standard_normal(shape)
    elif grads_kind == "ones":
        grads = np.ones(shape)
    elif grads_kind == "integers":
        grads = rng.integers(-3, 4, shape)
    else:  # magnitudes over several decades (still far from overflow)
        grads = rng.standard_normal(shape) * 10.0 ** rng.integers(-6, 3, shape)
    return Case(grads.astype(F32), boxes, box_ind, [batch, height, width, depth])


def ulp16(x64, T):
    """Spacing of T's values at |x| (at least T's smallest subnormal)."""
    mant, min_sub = (10, 2.0**-24) if T == tf.float16 else (7, 2.0**-133)
    ax = np.abs(as_f64(x64))
    with np.errstate(divide="ignore"):
        e = np.floor(np.log2(np.where(ax > 0, ax, 1.0)))
    return np.maximum(2.0 ** (e - mant), min_sub)


# TF runs kernels with denormals flushed to zero (FTZ/DAZ): float32 products
# below 2^-126 become 0. FTZ_ATOL covers that (< 2^-126 per contribution).
FTZ_ATOL = 1e-30


def check(out, case, T, method, ref, scale):
    what = f"{T.name} {method} image_size={case.image_size} N={case.boxes.shape[0]}"
    assert out.shape == tuple(case.image_size), (what, out.shape)
    assert out.dtype == numpy_dtype(T), (what, out.dtype)
    if T == tf.float64:
        assert_close_scaled(out, ref, scale, 1e-12, FTZ_ATOL, what)
    elif T == tf.float32:
        assert_close_scaled(out, ref, scale, 1e-5, FTZ_ATOL, what)
    else:
        # float32 accumulation, one final rounding: within one unit of T of the
        # once-rounded reference.
        tol = ulp16(ref, T) + 1e-5 * scale + FTZ_ATOL
        assert_close_scaled(out, round_to(ref, T), np.ones_like(ref), 0.0, tol, what)


TINY = 2.0**-60


def without_tiny(case):
    """The case with box coordinates below 2^-60 in magnitude set to 0.

    TF runs kernels with denormals flushed to zero (FTZ/DAZ); the NumPy
    reference does not. With coordinates of at least 2^-60 (or 0), no sample
    position, box extent or lerp weight can get near the denormal range, so
    FTZ can only flush individual products (covered by FTZ_ATOL). Tiny
    coordinates are still exercised: the raw case is compared bitwise with
    TF's builtin, which runs under the same FTZ mode.
    """
    boxes = np.where(np.abs(case.boxes) < TINY, F32(0), case.boxes)
    return Case(case.grads, boxes.astype(F32), case.box_ind, case.image_size)


def tame(case):
    return case.boxes.size == 0 or float(np.max(np.abs(case.boxes))) <= TAME_LIMIT


@settings(FUZZ_SETTINGS)
@given(case=cases())
def test_against_reference(crg, case):
    # Coverage tallies (shown with --hypothesis-show-statistics).
    event(f"N={'0' if case.boxes.shape[0] == 0 else '>0'} D={min(case.image_size[3], 1)}")
    event("tame boxes (also compared with TF)" if tame(case) else "huge boxes")
    clean = without_tiny(case)
    has_tiny = not np.array_equal(clean.boxes, case.boxes)
    event("tiny coordinates" if has_tiny else "no tiny coordinates")
    for method in METHODS:
        ref = clean.reference(method)
        scale = clean.scale(method)
        for T in ALL_DTYPES:
            out = crg.crop_and_resize_grad_image(*clean.args(), T=T, method=method).numpy()
            check(out, clean, T, method, ref, scale)
            if T == tf.float32 and tame(case) and min(case.image_size) > 0:
                if has_tiny:
                    out = crg.crop_and_resize_grad_image(*case.args(), T=T, method=method)
                    out = out.numpy()
                theirs = run_tf_builtin(case, T, method)
                np.testing.assert_array_equal(
                    out.view(np.uint32),
                    theirs.view(np.uint32),
                    err_msg=f"float32 {method}: not bitwise equal to TF's serial kernel",
                )


def test_profile_is_known():
    """The profile in use (printed with -s); 'ci' must give at least 200 examples."""
    print(f"fuzz profile {PROFILE}: {FUZZ_SETTINGS.max_examples} examples")
    assert FUZZ_SETTINGS.max_examples >= 200
    assert FUZZ_SETTINGS.deadline is None


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__, "-q"])
