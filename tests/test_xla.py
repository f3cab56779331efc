"""XLA (``jit_compile=True``) on the CPU: the wrapper, the raw image-gradient op,
the boxes gradient and a Keras model compile, through the lowerings in
``crop_and_resize_grad._xla``, and agree with the non-XLA run and with float64
references (docs/xla.md)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from crop_and_resize_grad import _xla as crg_xla
from support.numerics import METHODS
from support.reference import _axis_taps, grad_image_reference, inside, sample_coordinates

DTYPES = (tf.float32, tf.float16, tf.bfloat16, tf.float64)
SHAPE = (2, 13, 17, 3)  # B, H, W, D
NUM_BOXES = 9


def _boxes(rng, n):
    """Boxes partly outside [0, 1], some flipped, one exactly on the border
    case of docs/semantics.md (last sample at 0.0 only without FMA)."""
    boxes = rng.uniform(-0.3, 1.3, (n, 4)).astype(np.float32)
    boxes[0] = [0.42268723249435425, 0.1, 0.0, 0.9]
    return boxes


def _forward_reference(image, boxes, box_ind, crop, method, extrapolation):
    """float64 crop_and_resize with the float32 positions of the kernels."""
    image = np.asarray(image, np.float64)
    _, h, w, _ = image.shape
    ys = sample_coordinates(boxes[:, 0], boxes[:, 2], h, crop[0])
    xs = sample_coordinates(boxes[:, 1], boxes[:, 3], w, crop[1])
    vy, vx = inside(ys, h), inside(xs, w)
    ty, by, ly = _axis_taps(ys, vy, method)
    lx_i, rx_i, lx = _axis_taps(xs, vx, method)
    b = box_ind[:, None, None]
    ly, lx = ly[:, :, None, None], lx[:, None, :, None]

    def at(rows, cols):
        return image[b, rows[:, :, None], cols[:, None, :]]

    top = at(ty, lx_i) * (1 - lx) + at(ty, rx_i) * lx
    bottom = at(by, lx_i) * (1 - lx) + at(by, rx_i) * lx
    out = top * (1 - ly) + bottom * ly
    valid = (vy[:, :, None] & vx[:, None, :])[..., None]
    return np.where(valid, out, extrapolation)


def _boxes_reference(grads, image, boxes, box_ind):
    """float64 boxes gradient (bilinear formula, docs/semantics.md)."""
    image = np.asarray(image, np.float64)
    grads = np.asarray(grads, np.float64)
    _, h, w, _ = image.shape
    n, ch, cw, _ = grads.shape
    ys = sample_coordinates(boxes[:, 0], boxes[:, 2], h, ch)
    xs = sample_coordinates(boxes[:, 1], boxes[:, 3], w, cw)
    vy, vx = inside(ys, h), inside(xs, w)
    ty, by, ly = _axis_taps(ys, vy, "bilinear")
    lx_i, rx_i, lx = _axis_taps(xs, vx, "bilinear")
    b = box_ind[:, None, None]
    ly4, lx4 = ly[:, :, None, None], lx[:, None, :, None]

    def at(rows, cols):
        return image[b, rows[:, :, None], cols[:, None, :]]

    tl, tr, bl, br = at(ty, lx_i), at(ty, rx_i), at(by, lx_i), at(by, rx_i)
    dy = ((1 - lx4) * (bl - tl) + lx4 * (br - tr)) * grads
    dx = ((1 - ly4) * (tr - tl) + ly4 * (br - bl)) * grads
    valid = (vy[:, :, None] & vx[:, None, :])[..., None]
    dy, dx = np.where(valid, dy, 0), np.where(valid, dx, 0)

    def edge(size, crop):
        if crop > 1:
            hi = np.arange(crop) * ((size - 1) / (crop - 1))
            return (size - 1) - hi, hi
        return np.full(1, 0.5 * (size - 1)), np.full(1, 0.5 * (size - 1))

    wy_lo, wy_hi = edge(h, ch)
    wx_lo, wx_hi = edge(w, cw)
    out = np.zeros((n, 4))
    out[:, 0] = np.einsum("nyxd,y->n", dy, wy_lo)
    out[:, 2] = np.einsum("nyxd,y->n", dy, wy_hi)
    out[:, 1] = np.einsum("nyxd,x->n", dx, wx_lo)
    out[:, 3] = np.einsum("nyxd,x->n", dx, wx_hi)
    return out


def _f64(t):
    return tf.cast(t, tf.float64).numpy()


def _run(crg, image, boxes, box_ind, crop, method, extrapolation, upstream, jit):
    def step(image, boxes):
        with tf.GradientTape() as tape:
            tape.watch([image, boxes])
            out = crg.crop_and_resize(image, boxes, box_ind, crop, method, extrapolation)
            loss = tf.reduce_sum(tf.cast(out, tf.float32) * upstream)
        d_image, d_boxes = tape.gradient(loss, [image, boxes])
        return out, d_image, d_boxes

    fn = tf.function(step, jit_compile=True) if jit else step
    return fn(tf.constant(image), tf.constant(boxes))


# Each case compiles three programs: every dtype once, both methods, the crop sizes.
CASES = [("bilinear", dtype, (4, 5)) for dtype in DTYPES]
CASES += [("nearest", tf.float32, (4, 5)), ("nearest", tf.bfloat16, (1, 3))]
CASES += [("bilinear", tf.float32, (1, 1)), ("bilinear", tf.float16, (1, 3))]


@pytest.mark.parametrize(
    "method, dtype, crop", CASES, ids=lambda v: getattr(v, "name", None) or str(v)
)
def test_wrapper_forward_and_gradients(crg, rng, method, dtype, crop):
    b, h, w, d = SHAPE
    image = tf.cast(rng.standard_normal(SHAPE).astype(np.float32), dtype).numpy()
    boxes = _boxes(rng, NUM_BOXES)
    box_ind = rng.integers(0, b, NUM_BOXES).astype(np.int32)
    upstream = rng.standard_normal((NUM_BOXES, *crop, d)).astype(np.float32)
    extrapolation = 0.5
    out, d_image, d_boxes = _run(
        crg, image, boxes, box_ind, crop, method, extrapolation, upstream, True
    )
    ref_out, ref_image, ref_boxes = _run(
        crg, image, boxes, box_ind, crop, method, extrapolation, upstream, False
    )
    assert out.dtype == ref_out.dtype and d_image.dtype == ref_image.dtype == dtype
    # Same float32 positions, taps and products: bitwise equal to the kernels.
    np.testing.assert_array_equal(_f64(out), _f64(ref_out))
    if dtype == tf.float64:
        # float64 products may be fused into FMAs by XLA:CPU (docs/xla.md).
        np.testing.assert_allclose(_f64(d_image), _f64(ref_image), rtol=1e-13, atol=1e-13)
    else:
        np.testing.assert_array_equal(_f64(d_image), _f64(ref_image))
    # The boxes kernel's float64 terms, lanes and tree: the same bits (docs/xla.md).
    np.testing.assert_array_equal(_f64(d_boxes), _f64(ref_boxes))

    image64 = _f64(tf.constant(image))
    if dtype == tf.bfloat16:
        # The gradient of the cast back to bfloat16 rounds the upstream gradient.
        upstream = _f64(tf.cast(upstream, tf.bfloat16)).astype(np.float32)
    fwd = _forward_reference(image64, boxes, box_ind, crop, method, extrapolation)
    tol = {tf.float16: 1e-3, tf.bfloat16: 1e-2}.get(dtype, 1e-6)
    np.testing.assert_allclose(_f64(out), fwd, rtol=tol, atol=tol)
    ref = grad_image_reference(upstream, boxes, box_ind, SHAPE, method=method)
    np.testing.assert_allclose(_f64(d_image), ref, rtol=tol, atol=tol * 4)
    ref_b = _boxes_reference(upstream, image64, boxes, box_ind)
    np.testing.assert_allclose(_f64(d_boxes), ref_b, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("method", METHODS)
def test_raw_image_gradient_op_under_jit(crg, rng, method):
    b, h, w, d = SHAPE
    grads = rng.standard_normal((NUM_BOXES, 3, 4, d)).astype(np.float32)
    boxes = _boxes(rng, NUM_BOXES)
    box_ind = rng.integers(0, b, NUM_BOXES).astype(np.int32)

    def f(grads, boxes):
        return crg.crop_and_resize_grad_image(grads, boxes, box_ind, SHAPE, tf.float32, method)

    out = tf.function(f, jit_compile=True)(grads, boxes)
    np.testing.assert_array_equal(out.numpy(), f(grads, boxes).numpy())
    raw = tf.raw_ops.CropAndResizeGradImage(
        grads=grads, boxes=boxes, box_ind=box_ind, image_size=SHAPE, T=tf.float32, method=method
    )
    np.testing.assert_array_equal(out.numpy(), raw.numpy())


def test_boxes_lowering_fixed_order(rng):
    """The lowering's lane order: more than 256 terms per box, crop size 1."""
    image = rng.standard_normal((1, 9, 11, 40)).astype(np.float32)
    boxes = _boxes(rng, 5)
    box_ind = np.zeros(5, np.int32)
    for crop in ((3, 4), (1, 1)):
        grads = rng.standard_normal((5, *crop, 40)).astype(np.float32)
        f = tf.function(crg_xla.crop_and_resize_grad_boxes, jit_compile=True)
        out = f(grads, image, boxes, box_ind).numpy()
        ref = _boxes_reference(grads, image, boxes, box_ind)
        np.testing.assert_allclose(out, ref, rtol=1e-6, atol=1e-5)


def test_matmul_form_agrees(rng, monkeypatch):
    grads = rng.standard_normal((NUM_BOXES, 4, 5, SHAPE[3])).astype(np.float32)
    boxes = _boxes(rng, NUM_BOXES)
    box_ind = rng.integers(0, SHAPE[0], NUM_BOXES).astype(np.int32)

    def f(grads, boxes):
        return crg_xla.crop_and_resize_grad_image(grads, boxes, box_ind, SHAPE, tf.float32)

    scatter = tf.function(f, jit_compile=True)(grads, boxes).numpy()
    monkeypatch.setattr(crg_xla, "_IMAGE_GRAD_FORM", "matmul")
    matmul = tf.function(f, jit_compile=True)(grads, boxes).numpy()
    np.testing.assert_allclose(matmul, scatter, rtol=1e-5, atol=1e-5)


def test_bad_inputs_stay_in_bounds(crg):
    """box_ind out of range is clamped, NaN boxes sample nothing (no run-time
    errors inside XLA)."""
    image = tf.ones([2, 4, 4, 1])
    boxes = tf.constant([[0.0, 0.0, 1.0, 1.0], [np.nan, 0.0, 1.0, 1.0]])
    box_ind = tf.constant([5, -3])

    @tf.function(jit_compile=True)
    def f(image, boxes):
        with tf.GradientTape() as tape:
            tape.watch(image)
            out = crg.crop_and_resize(image, boxes, box_ind, [2, 2], extrapolation_value=-1.0)
        return out, tape.gradient(out, image)

    out, d_image = f(image, boxes)
    np.testing.assert_array_equal(out.numpy()[0], 1.0)
    np.testing.assert_array_equal(out.numpy()[1], -1.0)
    # Box 0 (index 5, clamped to 1) hits the four corners of image 1.
    assert d_image.numpy().sum() == 4.0 and d_image.numpy()[1].sum() == 4.0


def test_not_in_xla_context_outside_jit():
    assert not crg_xla.in_xla_context()
    seen = []

    @tf.function
    def plain():
        seen.append(crg_xla.in_xla_context())
        return tf.constant(0)

    @tf.function(jit_compile=True)
    def jit():
        seen.append(crg_xla.in_xla_context())
        return tf.constant(0)

    @tf.function
    def nested():
        seen.append(crg_xla.in_xla_context())
        return tf.constant(0)

    @tf.function(jit_compile=True)
    def jit_nested():
        return nested()

    plain()
    jit()
    jit_nested()
    assert seen == [False, True, True]


def test_keras_model_jit_compile(crg, rng, monkeypatch):
    """A model with a crop layer, compiled with jit_compile=True: gradients
    match the non-XLA run and fit() trains."""
    import keras
    from keras.src.trainers import trainer

    # Keras 3 turns jit_compile off under op determinism, which conftest enables
    # for the whole session; XLA:CPU itself is deterministic here.
    monkeypatch.setattr(trainer, "model_supports_jit", lambda model: True)
    lowered = []
    forward = crg_xla.crop_and_resize
    monkeypatch.setattr(
        crg_xla, "crop_and_resize", lambda *a, **k: lowered.append(1) or forward(*a, **k)
    )

    class Crop(keras.layers.Layer):
        def call(self, inputs):
            image, boxes = inputs
            box_ind = tf.zeros(tf.shape(boxes)[:1], tf.int32)
            return crg.crop_and_resize(image, boxes, box_ind, [3, 3])

    def build():
        keras.utils.set_random_seed(0)
        image = keras.Input((12, 12, 1), batch_size=1)
        boxes = keras.Input((4,), batch_size=6)
        features = keras.layers.Conv2D(4, 3, padding="same")(image)
        crops = Crop()([features, boxes])
        return keras.Model([image, boxes], keras.layers.Dense(1)(keras.layers.Flatten()(crops)))

    image = rng.standard_normal((1, 12, 12, 1)).astype(np.float32)
    boxes = np.sort(rng.uniform(0, 1, (6, 2, 2)), axis=1).reshape(6, 4).astype(np.float32)
    target = rng.standard_normal((6, 1)).astype(np.float32)

    def grads_of(model, jit):
        def step():
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean((model([image, boxes]) - target) ** 2)
            return tape.gradient(loss, model.trainable_variables)

        return (tf.function(step, jit_compile=True) if jit else step)()

    model = build()
    for a, b in zip(grads_of(model, True), grads_of(model, False)):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)

    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse", jit_compile=True)
    assert model.jit_compile
    # One step = one image and its 6 boxes (Keras would batch them alike).
    ds = tf.data.Dataset.from_tensors(((image, boxes), target)).repeat(20)
    before = model.evaluate(ds.take(1), verbose=0)
    lowered.clear()
    model.fit(ds, verbose=0)
    after = model.evaluate(ds.take(1), verbose=0)
    assert np.isfinite(after) and after < before
    assert lowered  # the compiled steps used the XLA lowering
