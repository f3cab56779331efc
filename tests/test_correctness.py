"""Our op against the float64 reference and against TF's builtin kernel.

TF's builtin runs serially under op determinism (set in conftest), so it is a
valid oracle here. Tolerances:
  float64: 1e-12 x (sum of |contributions|) per output element;
  float32: 1e-5 x that scale (and bitwise equal to TF's deterministic result);
  float16 / bfloat16: within one unit of the reference rounded once to T.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from helpers import (
    ALL_DTYPES,
    TF_BUILTIN_DTYPES,
    as_f64,
    assert_close_scaled,
    numpy_dtype,
    run_ours,
    run_tf_builtin,
)
from support.cases import BOX_KINDS, Case, make_case
from support.numerics import METHODS, round_to

DTYPE_IDS = {tf.float16: "f16", tf.bfloat16: "bf16", tf.float32: "f32", tf.float64: "f64"}


def dtype_id(T):
    return DTYPE_IDS[T]


def ulp16(x64, T):
    """Spacing of T's values at |x| (never below T's smallest subnormal)."""
    if T == tf.float16:
        mant, min_sub = 10, 2.0**-24
    else:  # bfloat16
        mant, min_sub = 7, 2.0**-133
    ax = np.abs(as_f64(x64))
    with np.errstate(divide="ignore"):
        e = np.floor(np.log2(np.where(ax > 0, ax, 1.0)))
    return np.maximum(2.0 ** (e - mant), min_sub)


def check_against_reference(out, case, T, method, what=""):
    """Check `out` (numpy, dtype T) against the float64 reference."""
    B, H, W, D = case.image_size
    assert out.shape == (B, H, W, D), (out.shape, case.image_size)
    assert out.dtype == numpy_dtype(T), (out.dtype, T)
    ref = case.reference(method)
    scale = case.scale(method)
    if T == tf.float64:
        assert_close_scaled(out, ref, scale, 1e-12, 1e-300, f"{what} float64 vs reference")
    elif T == tf.float32:
        assert_close_scaled(out, ref, scale, 1e-5, 1e-30, f"{what} float32 vs reference")
    else:
        # Accumulated in float32 and rounded once: at most one unit of T away
        # from the once-rounded reference (float32 round-off can move a value
        # across a rounding boundary), and mostly exactly equal to it.
        rounded = round_to(ref, T)
        tol = ulp16(ref, T) + 1e-5 * scale
        assert_close_scaled(
            out, rounded, np.ones_like(ref), 0.0, tol, f"{what} {T.name} vs rounded reference"
        )
        if ref.size >= 50:
            frac_equal = np.mean(as_f64(out) == rounded)
            assert frac_equal >= 0.9, (
                f"only {frac_equal:.3f} of {T.name} outputs equal the once-rounded reference"
            )


def check_against_tf(out, case, T, method, what=""):
    """Check `out` against TF's builtin (T in half/float/double)."""
    scale = case.scale(method)
    theirs = run_tf_builtin(case, T, method)
    if T == tf.float32:
        np.testing.assert_array_equal(
            out.view(np.uint32),
            theirs.view(np.uint32),
            err_msg=f"{what}: float32 not bitwise equal to TF",
        )
    elif T == tf.float64:
        # TF forms each contribution in float32 (then accumulates in double).
        assert_close_scaled(out, theirs, scale, 3e-7, 1e-300, f"{what} float64 vs TF")
    else:
        # TF accumulates in half: only a loose check.
        assert_close_scaled(out, theirs, scale, 2e-2, 1e-3, f"{what} float16 vs TF")


# --------------------------------------------------------------------------
# Every dtype x method x box kind.


@pytest.mark.parametrize("kind", BOX_KINDS)
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("T", ALL_DTYPES, ids=dtype_id)
def test_box_kinds(crg, rng, T, method, kind):
    case = make_case(rng, 3, 11, 9, 3, 40, 5, 4, kind)
    out = run_ours(crg, case, T, method)
    check_against_reference(out, case, T, method, kind)
    if T in TF_BUILTIN_DTYPES:
        check_against_tf(out, case, T, method, kind)


@pytest.mark.parametrize(
    "crop", [(1, 1), (1, 6), (6, 1), (2, 2), (2, 1)], ids=lambda c: f"{c[0]}x{c[1]}"
)
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("T", ALL_DTYPES, ids=dtype_id)
def test_small_crop_sizes(crg, rng, T, method, crop):
    case = make_case(rng, 2, 10, 7, 4, 60, crop[0], crop[1], "mixed")
    out = run_ours(crg, case, T, method)
    check_against_reference(out, case, T, method, f"crop {crop}")
    if T in TF_BUILTIN_DTYPES:
        check_against_tf(out, case, T, method, f"crop {crop}")


@pytest.mark.parametrize("depth", [1, 3, 4, 17, 64, 300])
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("T", ALL_DTYPES, ids=dtype_id)
def test_depths(crg, rng, T, method, depth):
    num_boxes = 40 if depth < 100 else 12
    case = make_case(rng, 2, 9, 10, depth, num_boxes, 4, 5, "mixed")
    out = run_ours(crg, case, T, method)
    check_against_reference(out, case, T, method, f"depth {depth}")
    if T in TF_BUILTIN_DTYPES:
        check_against_tf(out, case, T, method, f"depth {depth}")


@pytest.mark.parametrize(
    "shape",
    [
        (1, 1, 1, 2, 10, 3, 3),  # 1x1 image
        (2, 1, 6, 3, 20, 4, 4),  # H == 1
        (2, 6, 1, 3, 20, 4, 4),  # W == 1
        (5, 8, 8, 2, 100, 3, 3),  # many images
        (1, 40, 3, 2, 30, 13, 2),
        (2, 3, 3, 1, 30, 16, 16),  # crop much larger than image
    ],
    ids=lambda s: "x".join(map(str, s)),
)
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("T", [tf.float32, tf.float64, tf.float16], ids=dtype_id)
def test_odd_shapes(crg, rng, T, method, shape):
    case = make_case(rng, *shape, kind="mixed")
    out = run_ours(crg, case, T, method)
    check_against_reference(out, case, T, method, str(shape))
    check_against_tf(out, case, T, method, str(shape))


@pytest.mark.parametrize("method", METHODS)
def test_float32_bitwise_vs_tf_large(crg, rng, method):
    """Many boxes on few pixels: the order of the float32 additions matters."""
    case = make_case(rng, 2, 16, 16, 8, 1500, 7, 7, "mixed")
    out = run_ours(crg, case, tf.float32, method)
    check_against_tf(out, case, tf.float32, method, "large")
    check_against_reference(out, case, tf.float32, method, "large")


def test_exact_unit_box(crg):
    """[0,0,1,1] with crop == image size hits each pixel exactly once."""
    g = np.arange(2 * 6 * 5 * 3, dtype=np.float32).reshape(2, 6, 5, 3)
    case = Case(
        g, np.array([[0, 0, 1, 1]] * 2, np.float32), np.array([1, 0], np.int32), [2, 6, 5, 3]
    )
    for method in METHODS:
        for T in ALL_DTYPES:
            out = as_f64(run_ours(crg, case, T, method))
            np.testing.assert_array_equal(out[1], round_to(g[0], T))
            np.testing.assert_array_equal(out[0], round_to(g[1], T))


def test_half_equals_float32_rounded_once(crg, rng):
    """half and bfloat16 accumulate in float32 (docs/semantics.md) and cast once, so they
    equal the float32 result converted to T."""
    case = make_case(rng, 2, 12, 12, 8, 300, 6, 6, "mixed")
    for method in METHODS:
        f32 = run_ours(crg, case, tf.float32, method)
        for T in (tf.float16, tf.bfloat16):
            out = run_ours(crg, case, T, method)
            np.testing.assert_array_equal(
                as_f64(out), as_f64(f32.astype(numpy_dtype(T))), err_msg=f"{T.name} {method}"
            )


@pytest.mark.parametrize("T", ALL_DTYPES, ids=dtype_id)
def test_deterministic_attr_does_not_change_cpu_result(crg, rng, T):
    case = make_case(rng, 2, 10, 10, 5, 200, 5, 5, "mixed")
    for method in METHODS:
        outs = [run_ours(crg, case, T, method, deterministic=d) for d in (None, True, False)]
        for o in outs[1:]:
            assert o.tobytes() == outs[0].tobytes()


# --------------------------------------------------------------------------
# API: dtype/shape, execution modes, input types, static shape, op name.


@pytest.mark.parametrize("T", ALL_DTYPES, ids=dtype_id)
def test_dtype_and_shape(crg, rng, T):
    case = make_case(rng, 3, 5, 6, 7, 4, 2, 3)
    out = crg.crop_and_resize_grad_image(*case.args(), T=T)
    assert isinstance(out, tf.Tensor)
    assert out.dtype == T
    assert out.shape.as_list() == [3, 5, 6, 7]


def test_default_method_is_bilinear(crg, rng):
    case = make_case(rng, 1, 9, 9, 2, 10, 4, 4, "normal")
    a = crg.crop_and_resize_grad_image(*case.args(), T=tf.float64).numpy()
    b = run_ours(crg, case, tf.float64, "bilinear")
    assert a.tobytes() == b.tobytes()


def test_op_name_is_namespaced(crg):
    assert isinstance(crg.OP_NAME, str)
    assert crg.OP_NAME != "CropAndResizeGradImage"
    g = tf.Graph()
    with g.as_default():
        out = crg.crop_and_resize_grad_image(
            np.zeros((1, 2, 2, 1), np.float32), [[0, 0, 1, 1]], [0], [1, 3, 3, 1], T=tf.float32
        )
    assert out.op.type == crg.OP_NAME
    assert "CropAndResizeGradImage" not in [op.type for op in g.get_operations()]


@pytest.mark.parametrize("method", METHODS)
def test_tf_function(crg, rng, method):
    case = make_case(rng, 2, 8, 9, 3, 20, 4, 3, "mixed")
    eager = run_ours(crg, case, tf.float32, method)
    shapes = {}

    @tf.function
    def f(grads, boxes, box_ind):
        out = crg.crop_and_resize_grad_image(
            grads, boxes, box_ind, [2, 8, 9, 3], T=tf.float32, method=method
        )
        shapes["static"] = out.shape
        return out

    got = f(tf.constant(case.grads), tf.constant(case.boxes), tf.constant(case.box_ind)).numpy()
    assert got.tobytes() == eager.tobytes()
    # image_size is a constant: the shape function gives a static shape.
    assert shapes["static"].as_list() == [2, 8, 9, 3]


def test_tf_function_unknown_shapes(crg, rng):
    case = make_case(rng, 2, 8, 9, 3, 20, 4, 3, "mixed")
    eager = run_ours(crg, case, tf.float64, "bilinear")
    shapes = {}

    @tf.function(
        input_signature=[
            tf.TensorSpec(None, tf.float32),
            tf.TensorSpec(None, tf.float32),
            tf.TensorSpec(None, tf.int32),
            tf.TensorSpec(None, tf.int32),
        ]
    )
    def f(grads, boxes, box_ind, image_size):
        out = crg.crop_and_resize_grad_image(grads, boxes, box_ind, image_size, T=tf.float64)
        shapes["static"] = out.shape
        return out

    got = f(*case.args()).numpy()
    assert got.tobytes() == eager.tobytes()
    assert shapes["static"].rank in (None, 4)


def test_tf_function_partial_static_shape(crg, rng):
    """image_size as a tensor of unknown value but grads of known depth."""
    case = make_case(rng, 2, 8, 9, 3, 20, 4, 3, "mixed")
    shapes = {}

    @tf.function(input_signature=[tf.TensorSpec([4], tf.int32)])
    def f(image_size):
        out = crg.crop_and_resize_grad_image(
            case.grads, case.boxes, case.box_ind, image_size, T=tf.float32
        )
        shapes["static"] = out.shape
        return out

    got = f(tf.constant(case.image_size, tf.int32)).numpy()
    assert got.tobytes() == run_ours(crg, case, tf.float32, "bilinear").tobytes()
    assert shapes["static"].rank == 4


def test_compat_v1_graph_session(crg, rng):
    case = make_case(rng, 2, 8, 9, 3, 20, 4, 3, "mixed")
    eager = run_ours(crg, case, tf.float32, "nearest")
    with tf.compat.v1.Graph().as_default() as g:
        grads = tf.compat.v1.placeholder(tf.float32, [None, 4, 3, 3])
        out = crg.crop_and_resize_grad_image(
            grads, case.boxes, case.box_ind, case.image_size, T=tf.float32, method="nearest"
        )
        assert out.shape.as_list() == [2, 8, 9, 3]
        with tf.compat.v1.Session(graph=g) as sess:
            got = sess.run(out, feed_dict={grads: case.grads})
    assert got.tobytes() == eager.tobytes()


@pytest.mark.parametrize("kind", ["numpy", "list", "tensor", "mixed"])
def test_input_types(crg, rng, kind):
    case = make_case(rng, 2, 7, 8, 2, 6, 3, 3, "mixed")
    expected = case.reference("bilinear")
    g, b, bi, s = case.args()
    if kind == "numpy":
        args = (g, b, bi, np.asarray(s, np.int32))
    elif kind == "list":
        args = (g.tolist(), b.tolist(), bi.tolist(), list(s))
    elif kind == "tensor":
        args = tuple(tf.constant(x) for x in (g, b, bi, np.asarray(s, np.int32)))
    else:
        args = (tf.constant(g), b.tolist(), bi, tf.constant(s, tf.int32))
    out = crg.crop_and_resize_grad_image(*args, T=tf.float64).numpy()
    assert_close_scaled(out, expected, case.scale("bilinear"), 1e-12, 1e-300, kind)


def test_name_argument(crg):
    with tf.compat.v1.Graph().as_default():
        out = crg.crop_and_resize_grad_image(
            np.zeros((1, 2, 2, 1), np.float32),
            [[0, 0, 1, 1]],
            [0],
            [1, 3, 3, 1],
            T=tf.float32,
            name="my_grad",
        )
        assert "my_grad" in out.name


# --------------------------------------------------------------------------
# float64 weights and a property-based sweep.


def test_float64_corner_weights_in_double(crg):
    """Minimal case: one 1x1 crop sampling x = float32(1e-3) in a 1x2 image.
    The float64 output must carry the weights 1 - lx and lx computed in double
    (double accumulates in double, docs/semantics.md; the reference forms (1-ly)(1-lx)
    in float64 from the float32 lerps); 1 - lx rounded to float32 is off by
    ~1.3e-8 relative."""
    boxes = np.array([[0, 1e-3, 0, 1e-3]], np.float32)  # in_x = 0.5 * (2e-3) * 1
    grads = np.ones((1, 1, 1, 1), np.float32)
    out = crg.crop_and_resize_grad_image(grads, boxes, [0], [1, 1, 2, 1], T=tf.float64).numpy()
    lx = np.float64(np.float32(0.5 * float(np.float32(1e-3) + np.float32(1e-3))))
    np.testing.assert_allclose(out[0, 0, :, 0], [1.0 - lx, lx], rtol=1e-15, atol=0)


try:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover - hypothesis is a test dependency
    given = None

if given is not None:
    _coord = st.one_of(
        st.floats(-2.0, 3.0, width=32),
        st.sampled_from([0.0, 1.0, 0.5, 0.25, 0.1, 0.9, -0.0, 1.0000001, 0.99999994, -1e-7]),
    )

    @st.composite
    def _cases(draw):
        batch = draw(st.integers(1, 3))
        height = draw(st.integers(1, 9))
        width = draw(st.integers(1, 9))
        depth = draw(st.sampled_from([1, 2, 3, 5, 8, 16]))
        n = draw(st.integers(0, 12))
        crop_h = draw(st.integers(1, 6))
        crop_w = draw(st.integers(1, 6))
        boxes = np.array(
            draw(st.lists(st.tuples(_coord, _coord, _coord, _coord), min_size=n, max_size=n)),
            np.float32,
        )
        boxes = boxes.reshape(n, 4)
        box_ind = np.array(
            draw(st.lists(st.integers(0, batch - 1), min_size=n, max_size=n)), np.int32
        )
        seed = draw(st.integers(0, 2**31 - 1))
        grads = (
            np.random.default_rng(seed)
            .standard_normal((n, crop_h, crop_w, depth))
            .astype(np.float32)
        )
        method = draw(st.sampled_from(METHODS))
        return Case(grads, boxes, box_ind, [batch, height, width, depth]), method

    @settings(
        max_examples=60,
        deadline=None,
        derandomize=True,  # reproducible in CI
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(_cases())
    def test_property_sweep(crg, case_and_method):
        case, method = case_and_method
        for T in (tf.float32, tf.float16, tf.bfloat16):
            out = run_ours(crg, case, T, method)
            check_against_reference(out, case, T, method, "hypothesis")
        check_against_tf(
            run_ours(crg, case, tf.float32, method), case, tf.float32, method, "hypothesis"
        )
        # float64 is checked at float32 round-off here; the 1e-12 check is
        # in the tests above.
        out64 = run_ours(crg, case, tf.float64, method)
        assert_close_scaled(
            out64, case.reference(method), case.scale(method), 1e-7, 1e-300, "hypothesis f64"
        )
