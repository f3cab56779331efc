"""The gradient of our op (so it is twice differentiable) and the ``crop_and_resize`` wrapper.

Op determinism is on for the whole session (conftest), so TF's builtin
gradient kernels are serial and comparable bit for bit.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from crop_and_resize_grad.gradients import _crop_and_resize_grad_image_grad
from helpers import ALL_DTYPES, TF_BUILTIN_DTYPES, as_f64, numpy_dtype
from support.cases import random_boxes
from support.numerics import METHODS
from support.reference import grad_image_reference

# --------------------------------------------------------------------------- helpers


def small_problem(rng, batch=2, height=5, width=6, depth=2, num_boxes=3, crop_h=3, crop_w=4):
    grads = rng.standard_normal((num_boxes, crop_h, crop_w, depth)).astype(np.float32)
    boxes = random_boxes(rng, num_boxes, "mixed")
    box_ind = rng.integers(0, batch, num_boxes).astype(np.int32)
    return grads, boxes, box_ind, [batch, height, width, depth]


def smooth_boxes(rng, num_boxes, height, width, crop_h, crop_w, margin=0.02):
    """Boxes whose bilinear sample positions all lie inside the image, at least
    `margin` pixels from any integer: the crop is differentiable there, so a
    finite-difference check of the boxes gradient is meaningful."""
    out = []
    while len(out) < num_boxes:
        b = random_boxes(rng, 1, "normal")[0]
        ok = True
        for lo, hi, size, n in ((b[0], b[2], height, crop_h), (b[1], b[3], width, crop_w)):
            pos = lo * (size - 1) + np.arange(n) * (hi - lo) * (size - 1) / max(n - 1, 1)
            frac = np.abs(pos - np.round(pos))
            ok &= bool(
                np.all(frac > margin) and pos.min() > margin and pos.max() < size - 1 - margin
            )
        if ok:
            out.append(b)
    return np.asarray(out, np.float32)


def max_rel(theoretical, numerical):
    t, n = np.asarray(theoretical, np.float64), np.asarray(numerical, np.float64)
    return float(np.max(np.abs(t - n)) / max(np.max(np.abs(n)), 1e-300))


# --------------------------------------------------------------------------- our op's gradient


def test_gradient_is_registered(crg):
    from tensorflow.python.framework import ops

    assert ops.gradient_registry.lookup(crg.OP_NAME) is _crop_and_resize_grad_image_grad


@pytest.mark.parametrize("method", METHODS)
def test_jacobian_wrt_grads_float64(crg, rng, method):
    """tf.test.compute_gradient of grad_image(g) (T=float64) with respect to g.

    The op is linear in g, so central differences are exact up to rounding g +- delta to float32.
    """
    grads, boxes, box_ind, size = small_problem(rng)

    def f(g):
        return crg.crop_and_resize_grad_image(g, boxes, box_ind, size, T=tf.float64, method=method)

    (theo,), (num,) = tf.test.compute_gradient(f, [grads], delta=0.125)
    assert theo.shape == (np.prod(size), grads.size)
    assert np.abs(theo).max() > 0
    assert max_rel(theo, num) < 1e-5


@pytest.mark.parametrize("T", ALL_DTYPES, ids=lambda d: d.name)
@pytest.mark.parametrize("method", METHODS)
def test_grad_wrt_grads_is_crop_and_resize(crg, rng, T, method):
    """d/dg sum(w * grad_image(g)) == crop_and_resize(w): the adjoint, bit for bit."""
    grads, boxes, box_ind, size = small_problem(rng, num_boxes=6)
    w = tf.constant(rng.standard_normal(size).astype(numpy_dtype(T)))
    g = tf.constant(grads)
    with tf.GradientTape() as tape:
        tape.watch(g)
        out = crg.crop_and_resize_grad_image(g, boxes, box_ind, size, T=T, method=method)
        assert out.dtype == T
        loss = tf.reduce_sum(tf.cast(w, tf.float64) * tf.cast(out, tf.float64))
    dg = tape.gradient(loss, g)
    expected = tf.image.crop_and_resize(
        tf.cast(w, tf.float32), boxes, box_ind, grads.shape[1:3], method, extrapolation_value=0
    )
    assert dg.dtype == tf.float32
    np.testing.assert_array_equal(dg.numpy(), expected.numpy())


@pytest.mark.parametrize("method", METHODS)
def test_grads_match_the_adjoint_expression(crg, rng, method):
    """Both gradients of sum(w * grad_image(g, b)) equal TF's (builtin) gradients
    of the adjoint expression sum(g * crop_and_resize(w, b)): d/dg bitwise,
    d/db (our boxes op) to float32 summation error."""
    grads, boxes, box_ind, size = small_problem(rng, num_boxes=5)
    w = tf.constant(rng.standard_normal(size).astype(np.float32))
    g, b = tf.constant(grads), tf.constant(boxes)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([g, b])
        ours = tf.reduce_sum(
            w * crg.crop_and_resize_grad_image(g, b, box_ind, size, T=tf.float32, method=method)
        )
        with crg.gradient_override(enabled=False):  # TF's own gradient
            adj = tf.reduce_sum(
                g * tf.image.crop_and_resize(w, b, box_ind, grads.shape[1:3], method)
            )
    np.testing.assert_allclose(ours.numpy(), adj.numpy(), rtol=1e-5)
    dg_ours, db_ours = tape.gradient(ours, [g, b])
    with crg.gradient_override(enabled=False):  # TF's own gradient
        dg_adj, db_adj = tape.gradient(adj, [g, b])
    np.testing.assert_array_equal(dg_ours.numpy(), dg_adj.numpy())
    # d/dboxes is our boxes op (float64 sums, rounded once); TF's sums in
    # float32, so the two agree to float32 summation error.
    expected = crg.crop_and_resize_grad_boxes(g, w, b, box_ind)
    np.testing.assert_array_equal(db_ours.numpy(), expected.numpy())
    np.testing.assert_allclose(
        db_ours.numpy(), db_adj.numpy(), rtol=1e-5, atol=1e-5 * np.abs(db_adj.numpy()).max()
    )


def test_jacobian_wrt_boxes_bilinear(crg, rng):
    """compute_gradient w.r.t. boxes where the bilinear crop is smooth."""
    height, width, crop_h, crop_w = 7, 8, 3, 3
    boxes = smooth_boxes(rng, 3, height, width, crop_h, crop_w)
    grads = rng.standard_normal((3, crop_h, crop_w, 2)).astype(np.float32)
    box_ind = np.array([0, 1, 0], np.int32)
    size = [2, height, width, 2]

    def f(b):
        return crg.crop_and_resize_grad_image(grads, b, box_ind, size, T=tf.float64)

    (theo,), (num,) = tf.test.compute_gradient(f, [boxes], delta=1e-3)
    assert np.abs(theo).max() > 0
    assert max_rel(theo, num) < 2e-3


def test_gradient_in_tf_function_and_v1_graph(crg, rng):
    grads, boxes, box_ind, size = small_problem(rng)
    w = rng.standard_normal(size).astype(np.float32)

    @tf.function
    def fn(g):
        with tf.GradientTape() as tape:
            tape.watch(g)
            loss = tf.reduce_sum(
                w * crg.crop_and_resize_grad_image(g, boxes, box_ind, size, T=tf.float32)
            )
        return tape.gradient(loss, g)

    eager = fn(tf.constant(grads)).numpy()
    expected = tf.image.crop_and_resize(w, boxes, box_ind, grads.shape[1:3]).numpy()
    np.testing.assert_array_equal(eager, expected)
    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
        g = tf.compat.v1.placeholder(tf.float32, [None, None, None, size[3]])
        out = crg.crop_and_resize_grad_image(g, boxes, box_ind, size, T=tf.float32)
        (dg,) = tf.gradients(tf.reduce_sum(w * out), [g])
        np.testing.assert_array_equal(sess.run(dg, {g: grads}), expected)


def test_second_order_through_crop_and_resize(crg, rng):
    """Second order: L(x) = sum(v * crop(x)^2) => dL/dx = grad_image(2 v crop(x)) (our op);
    h(x) = <u, dL/dx> is linear in x with gradient grad_image(2 v crop(u)).

    Checked with tf.test.compute_gradient (float64 image), and bit for bit against
    the closed form, for the wrapper and for the override of tf.image.crop_and_resize."""
    batch, height, width, depth, n, crop = 2, 6, 7, 2, 4, [3, 4]
    boxes = random_boxes(rng, n, "normal")
    box_ind = np.array([0, 1, 1, 0], np.int32)
    v = rng.standard_normal([n, *crop, depth]).astype(np.float32)
    u = rng.standard_normal([batch, height, width, depth])
    x0 = rng.standard_normal([batch, height, width, depth])

    def make_h(crop_fn):
        def h(x):
            with tf.GradientTape() as inner:
                inner.watch(x)
                c = tf.cast(crop_fn(x, boxes, box_ind, crop), tf.float64)
                loss = tf.reduce_sum(v * c * c)
            return tf.reduce_sum(u * inner.gradient(loss, x))

        return h

    closed_form = crg.crop_and_resize_grad_image(
        2 * v * tf.image.crop_and_resize(u.astype(np.float32), boxes, box_ind, crop),
        boxes,
        box_ind,
        x0.shape,
        T=tf.float64,
    ).numpy()
    with crg.gradient_override():
        for crop_fn in (crg.crop_and_resize, tf.image.crop_and_resize):
            h = make_h(crop_fn)
            x = tf.constant(x0)
            with tf.GradientTape() as outer:
                outer.watch(x)
                hx = h(x)
            dh = outer.gradient(hx, x).numpy()
            np.testing.assert_allclose(dh, closed_form, rtol=1e-6, atol=1e-6)
            (theo,), (num,) = tf.test.compute_gradient(h, [x0], delta=0.5)
            np.testing.assert_allclose(theo.reshape(x0.shape), closed_form, rtol=1e-6, atol=1e-6)
            assert max_rel(theo, num) < 1e-4


def test_composed_crops_jacobian(crg, rng):
    """crop_and_resize applied twice (crop of a crop), first order, float64 image."""
    x0 = rng.standard_normal([1, 6, 6, 2])
    b1 = np.array([[0.05, 0.1, 0.9, 0.95]], np.float32)
    b2 = np.array([[0.1, 0.0, 0.8, 0.7], [0.3, 0.2, 1.0, 0.9]], np.float32)

    def f(x):
        c1 = crg.crop_and_resize(x, b1, [0], [5, 5])
        return crg.crop_and_resize(c1, b2, [0, 0], [3, 3])

    (theo,), (num,) = tf.test.compute_gradient(f, [x0], delta=0.25)
    assert max_rel(theo, num) < 1e-5


# --------------------------------------------------------------------------- the wrapper


@pytest.mark.parametrize("T", ALL_DTYPES, ids=lambda d: d.name)
@pytest.mark.parametrize("method", METHODS)
def test_wrapper_forward_and_gradients(crg, rng, T, method):
    image32 = rng.standard_normal([2, 9, 10, 3]).astype(np.float32)
    image = tf.constant(image32.astype(numpy_dtype(T)))
    boxes = tf.constant(random_boxes(rng, 7, "mixed"))
    box_ind = rng.integers(0, 2, 7).astype(np.int32)
    crop = [4, 5]
    w = tf.constant(rng.standard_normal([7, *crop, 3]).astype(np.float32))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([image, boxes])
        y = crg.crop_and_resize(image, boxes, box_ind, crop, method=method, extrapolation_value=0.5)
        loss = tf.reduce_sum(w * tf.cast(y, tf.float32))
    d_image, d_boxes = tape.gradient(loss, [image, boxes])
    assert d_image.dtype == T and d_image.shape == image.shape
    assert d_boxes.dtype == tf.float32 and d_boxes.shape == boxes.shape

    dy = w if T != tf.bfloat16 else tf.cast(tf.cast(w, tf.bfloat16), tf.float32)
    exact = grad_image_reference(
        dy.numpy(), boxes.numpy(), box_ind, image.shape.as_list(), method=method
    )
    if T == tf.bfloat16:
        # TF has no bfloat16 crop: the forward runs in float32 and is cast back.
        expected_y = tf.cast(
            tf.image.crop_and_resize(tf.cast(image, tf.float32), boxes, box_ind, crop, method, 0.5),
            tf.bfloat16,
        )
        assert y.dtype == tf.bfloat16
        np.testing.assert_array_equal(as_f64(y), as_f64(expected_y))
        # one rounding of the exact float64 result
        np.testing.assert_array_equal(
            as_f64(d_image), exact.astype(numpy_dtype(T)).astype(np.float64)
        )
        return
    assert T in TF_BUILTIN_DTYPES
    expected_y = tf.image.crop_and_resize(image, boxes, box_ind, crop, method, 0.5)
    assert y.dtype == tf.float32
    np.testing.assert_array_equal(y.numpy(), expected_y.numpy())
    with crg.gradient_override(enabled=False):  # TF's own gradient
        with tf.GradientTape(persistent=True) as tape2:
            tape2.watch([image, boxes])
            loss2 = tf.reduce_sum(
                w * tf.image.crop_and_resize(image, boxes, box_ind, crop, method, 0.5)
            )
        tf_image, tf_boxes = tape2.gradient(loss2, [image, boxes])
    # d/dboxes: our boxes op, bitwise; TF's sums in float32.
    np.testing.assert_array_equal(
        d_boxes.numpy(),
        crg.crop_and_resize_grad_boxes(
            tf.broadcast_to(w, y.shape), image, boxes, box_ind, method=method
        ).numpy(),
    )
    np.testing.assert_allclose(
        d_boxes.numpy(), tf_boxes.numpy(), rtol=1e-5, atol=1e-5 * np.abs(tf_boxes.numpy()).max()
    )
    if T == tf.float32:
        np.testing.assert_array_equal(d_image.numpy(), tf_image.numpy())  # see README
    elif T == tf.float64:
        np.testing.assert_allclose(d_image.numpy(), exact, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(d_image.numpy(), tf_image.numpy(), rtol=1e-5, atol=1e-5)
    else:  # float16: ours is rounded once from float32 sums
        scale = np.abs(exact).max()
        assert np.abs(as_f64(d_image) - exact).max() <= 2e-3 * scale


def test_wrapper_in_tf_function_dynamic_shapes(crg, rng):
    image = rng.standard_normal([2, 8, 9, 3]).astype(np.float32)
    boxes = random_boxes(rng, 5, "normal")
    box_ind = np.array([0, 1, 1, 0, 1], np.int32)
    spec = [
        tf.TensorSpec([None, None, None, 3], tf.float32),
        tf.TensorSpec([None, 4], tf.float32),
        tf.TensorSpec([None], tf.int32),
    ]

    @tf.function(input_signature=spec)
    def fn(x, b, i):
        with tf.GradientTape() as tape:
            tape.watch([x, b])
            y = crg.crop_and_resize(x, b, i, [3, 3])
            loss = tf.reduce_sum(y * y)
        return (y, *tape.gradient(loss, [x, b]))

    y, dx, db = fn(image, boxes, box_ind)
    x = tf.constant(image)
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(crg.crop_and_resize(x, boxes, box_ind, [3, 3]) ** 2)
    np.testing.assert_array_equal(dx.numpy(), tape.gradient(loss, x).numpy())
    assert db.shape == boxes.shape and y.shape == (5, 3, 3, 3)


def test_wrapper_v1_graph(crg, rng):
    image = rng.standard_normal([1, 6, 6, 2]).astype(np.float32)
    boxes = random_boxes(rng, 3, "normal")
    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
        x = tf.compat.v1.placeholder(tf.float32, [None, 6, 6, 2])
        y = crg.crop_and_resize(x, boxes, [0, 0, 0], [4, 4], method="nearest")
        (dx,) = tf.gradients(tf.reduce_sum(y), [x])
        types = {op.type for op in tf.compat.v1.get_default_graph().get_operations()}
        assert crg.OP_NAME in types
        out = sess.run(dx, {x: image})
    expected = crg.crop_and_resize_grad_image(
        np.ones([3, 4, 4, 2], np.float32), boxes, [0, 0, 0], [1, 6, 6, 2], tf.float32, "nearest"
    )
    np.testing.assert_array_equal(out, expected.numpy())


def test_wrapper_integer_image_and_errors(crg, rng):
    image = tf.constant(rng.integers(0, 255, [1, 5, 5, 3]).astype(np.uint8))
    y = crg.crop_and_resize(image, [[0, 0, 1, 1]], [0], [3, 3])
    np.testing.assert_array_equal(
        y.numpy(), tf.image.crop_and_resize(image, [[0, 0, 1, 1]], [0], [3, 3]).numpy()
    )
    with pytest.raises(ValueError, match="method"):
        crg.crop_and_resize(image, [[0, 0, 1, 1]], [0], [3, 3], method="bicubic")
