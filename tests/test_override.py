"""The process-wide override of TF's CropAndResize gradient.

Every test leaves the override as it found it (off), through the `restored` fixture.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
import tensorflow as tf
from crop_and_resize_grad.override import _crop_and_resize_gradient
from helpers import as_f64
from support.cases import random_boxes
from support.reference import grad_image_reference
from tensorflow.python.framework import ops
from tensorflow.python.ops import image_grad

TF_GRAD = image_grad._CropAndResizeGrad  # TF's own gradient function object


@pytest.fixture(autouse=True)
def restored(crg):
    crg.restore_gradient()
    yield
    crg.restore_gradient()
    assert ops.gradient_registry.lookup("CropAndResize") is TF_GRAD


@pytest.fixture
def spy(crg, monkeypatch):
    """Counts the calls the override's gradient makes to our op (the registry
    entry holds the function object, which looks up this module global)."""
    from crop_and_resize_grad import override

    calls = []
    real = override.crop_and_resize_grad_image

    def counting(*args, **kwargs):
        calls.append(kwargs.get("T"))
        return real(*args, **kwargs)

    monkeypatch.setattr(override, "crop_and_resize_grad_image", counting)
    return calls


def problem(rng, batch=2, size=9, depth=3, n=6):
    image = tf.constant(rng.standard_normal([batch, size, size, depth]).astype(np.float32))
    boxes = tf.constant(random_boxes(rng, n, "mixed"))
    box_ind = tf.constant(rng.integers(0, batch, n).astype(np.int32))
    return image, boxes, box_ind


def graph_op_types(graph):
    types = set()
    for op in graph.get_operations():
        types.add(op.type)
    for f in graph._functions.values():  # nested function bodies (gradients, while, ...)
        types.update(node.op for node in f.cached_definition.node_def)
    return types


# --------------------------------------------------------------------------- switch semantics


def test_override_restore_idempotent(crg):
    entry = ops.gradient_registry._registry["CropAndResize"]
    assert not crg.is_gradient_overridden()
    crg.restore_gradient()  # restoring when not overridden is harmless
    assert ops.gradient_registry._registry["CropAndResize"] is entry
    crg.override_gradient()
    crg.override_gradient()
    assert crg.is_gradient_overridden()
    assert ops.gradient_registry.lookup("CropAndResize") is _crop_and_resize_gradient
    crg.restore_gradient()
    crg.restore_gradient()
    assert not crg.is_gradient_overridden()
    # the very same entry and function object as before
    assert ops.gradient_registry._registry["CropAndResize"] is entry
    assert ops.gradient_registry.lookup("CropAndResize") is TF_GRAD
    # TF still refuses a second registration: the entry was swapped, not deleted
    with pytest.raises(KeyError):
        tf.RegisterGradient("CropAndResize")(TF_GRAD)


def test_context_manager_nests_and_restores_on_error(crg):
    with crg.gradient_override():
        assert crg.is_gradient_overridden()
        with crg.gradient_override():
            assert crg.is_gradient_overridden()
        assert crg.is_gradient_overridden()  # the outer one is still in force
    assert not crg.is_gradient_overridden()
    with pytest.raises(RuntimeError, match="boom"):
        with crg.gradient_override():
            raise RuntimeError("boom")
    assert not crg.is_gradient_overridden()
    crg.override_gradient()
    with crg.gradient_override():
        pass
    assert crg.is_gradient_overridden()  # was on before: stays on


@pytest.mark.parametrize("before", [False, True], ids=["off_before", "on_before"])
@pytest.mark.parametrize("enabled", [False, True], ids=["disabled", "enabled"])
def test_context_manager_enabled_argument(crg, enabled, before):
    """enabled=True: the override inside; enabled=False: TF's gradient inside.
    Either way the state from before comes back, also after an error."""
    if before:
        crg.override_gradient()
    with crg.gradient_override(enabled=enabled):
        assert crg.is_gradient_overridden() is enabled
        expected = _crop_and_resize_gradient if enabled else TF_GRAD
        assert ops.gradient_registry.lookup("CropAndResize") is expected
    assert crg.is_gradient_overridden() is before
    with pytest.raises(RuntimeError, match="boom"):
        with crg.gradient_override(enabled):
            raise RuntimeError("boom")
    assert crg.is_gradient_overridden() is before
    if not before:
        assert ops.gradient_registry.lookup("CropAndResize") is TF_GRAD


def test_context_manager_nests_on_and_off(crg):
    states = []
    with crg.gradient_override():
        states.append(crg.is_gradient_overridden())
        with crg.gradient_override(enabled=False):
            states.append(crg.is_gradient_overridden())
            with crg.gradient_override(enabled=True):
                states.append(crg.is_gradient_overridden())
            states.append(crg.is_gradient_overridden())
            with crg.gradient_override(enabled=False):
                states.append(crg.is_gradient_overridden())
            states.append(crg.is_gradient_overridden())
        states.append(crg.is_gradient_overridden())
    states.append(crg.is_gradient_overridden())
    assert states == [True, False, True, False, False, False, True, False]
    assert ops.gradient_registry.lookup("CropAndResize") is TF_GRAD


def test_context_manager_disabled_gives_tf_gradient(crg, rng, spy):
    """Under gradient_override(enabled=False) a tape uses TF's gradient, even
    with the override on outside."""
    image, boxes, box_ind = problem(rng)

    def image_grad_():
        with tf.GradientTape() as tape:
            tape.watch(image)
            y = tf.image.crop_and_resize(image, boxes, box_ind, [3, 3])
        return tape.gradient(y, image)

    with crg.gradient_override():
        with crg.gradient_override(enabled=False):
            image_grad_()
        assert spy == []
        image_grad_()
    assert len(spy) == 1


def test_concurrent_switching(crg):
    def flip():
        for _ in range(200):
            crg.override_gradient()
            crg.restore_gradient()

    threads = [threading.Thread(target=flip) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not crg.is_gradient_overridden()


# --------------------------------------------------------------------------- where it applies


@pytest.mark.parametrize("method", ["bilinear", "nearest"])
def test_eager_tape_uses_our_op_and_matches_tf(crg, rng, spy, method):
    image, boxes, box_ind = problem(rng)
    w = tf.constant(rng.standard_normal([6, 4, 5, 3]).astype(np.float32))

    def grads():
        with tf.GradientTape() as tape:
            tape.watch([image, boxes])
            loss = tf.reduce_sum(
                w * tf.image.crop_and_resize(image, boxes, box_ind, [4, 5], method)
            )
        return tape.gradient(loss, [image, boxes])

    tf_image, tf_boxes = grads()
    assert spy == []
    with crg.gradient_override():
        our_image, our_boxes = grads()
    assert spy == [tf.float32]
    # float32: bitwise equal to TF's serial (op-determinism) kernel, see README
    np.testing.assert_array_equal(our_image.numpy(), tf_image.numpy())
    # d/dboxes is our boxes op (float64 sums); TF's sums in float32.
    np.testing.assert_allclose(
        our_boxes.numpy(), tf_boxes.numpy(), rtol=1e-5, atol=1e-5 * np.abs(tf_boxes.numpy()).max()
    )


def test_eager_registry_read_at_backward_time(crg, rng, spy):
    image, boxes, box_ind = problem(rng)
    with tf.GradientTape() as tape:
        tape.watch(image)
        y = tf.image.crop_and_resize(image, boxes, box_ind, [3, 3])
    crg.override_gradient()  # after recording, before backward
    tape.gradient(y, image)
    assert len(spy) == 1


def test_only_needed_gradients_are_computed(crg, rng):
    """Eagerly, inputs nobody asked for (skip_input_indices) are not computed."""
    image, boxes, box_ind = problem(rng)
    seen = []

    class Op:  # a stand-in for the tape's _MockOp
        inputs = (image, boxes, box_ind, None)
        skip_input_indices = (1, 2, 3)

        def get_attr(self, name):
            seen.append(name)
            return {"method": b"bilinear"}[name]

    grads = _crop_and_resize_gradient(Op(), tf.ones([6, 3, 3, 3]))
    assert grads[0] is not None and grads[1:] == [None, None, None]
    Op.skip_input_indices = (0, 2, 3)
    grads = _crop_and_resize_gradient(Op(), tf.ones([6, 3, 3, 3]))
    assert grads[0] is None and grads[1].shape == (6, 4)


def test_tf_function_traced_with_override(crg, rng, spy):
    image, boxes, box_ind = problem(rng)

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(tf.image.crop_and_resize(x, boxes, box_ind, [3, 3]) ** 2)
        return tape.gradient(loss, x)

    with crg.gradient_override():
        ours = step(image)
        graph = step.get_concrete_function(image).graph
    assert len(spy) == 1  # looked up once, at trace time
    assert crg.OP_NAME in graph_op_types(graph)
    assert "CropAndResizeGradImage" not in graph_op_types(graph)
    # the traced function keeps our gradient after the switch is off
    np.testing.assert_array_equal(step(image).numpy(), ours.numpy())
    assert len(spy) == 1

    @tf.function
    def step_tf(x):
        return step.python_function(x)

    step_tf(image)
    assert "CropAndResizeGradImage" in graph_op_types(step_tf.get_concrete_function(image).graph)


def test_tf_function_forward_under_eager_tape(crg, rng, spy):
    """A tf.function called under a tape: its backward is built at the first
    recorded call, with the registry of that moment."""
    image, boxes, box_ind = problem(rng)

    @tf.function
    def forward(x):
        return tf.image.crop_and_resize(x, boxes, box_ind, [3, 3], "nearest")

    with crg.gradient_override():
        with tf.GradientTape() as tape:
            tape.watch(image)
            y = forward(image)
        dx = tape.gradient(y, image)
    assert len(spy) == 1
    expected = grad_image_reference(
        np.ones([6, 3, 3, 3], np.float32),
        boxes.numpy(),
        box_ind.numpy(),
        [2, 9, 9, 3],
        method="nearest",
    )
    np.testing.assert_array_equal(as_f64(dx), expected)


def test_v1_graph_tf_gradients(crg, rng):
    image, boxes, box_ind = problem(rng)
    with tf.Graph().as_default() as g, tf.compat.v1.Session() as sess:
        x = tf.compat.v1.placeholder(tf.float32, [None, None, None, 3])
        y = tf.image.crop_and_resize(x, boxes.numpy(), box_ind.numpy(), [3, 3])
        with crg.gradient_override():
            (dx,) = tf.gradients(tf.reduce_sum(y), [x])
        assert crg.OP_NAME in graph_op_types(g)
        ours = sess.run(dx, {x: image.numpy()})
    with tf.GradientTape() as tape:
        tape.watch(image)
        y = tf.reduce_sum(tf.image.crop_and_resize(image, boxes, box_ind, [3, 3]))
    np.testing.assert_array_equal(ours, tape.gradient(y, image).numpy())


@pytest.mark.parametrize("dtype", [tf.float16, tf.float64])
def test_other_image_dtypes(crg, rng, spy, dtype):
    """float16 and float64 images: gradient of the image's dtype, from our op.
    float16 is accumulated in float32 (TF accumulates in half)."""
    n = 400
    image = tf.cast(tf.constant(rng.standard_normal([1, 8, 8, 2])), dtype)
    boxes = random_boxes(rng, n, "normal")
    box_ind = np.zeros(n, np.int32)
    w = rng.standard_normal([n, 5, 5, 2]).astype(np.float32)
    exact = grad_image_reference(w, boxes, box_ind, [1, 8, 8, 2])

    def grad():
        with tf.GradientTape() as tape:
            tape.watch(image)
            loss = tf.reduce_sum(w * tf.image.crop_and_resize(image, boxes, box_ind, [5, 5]))
        return tape.gradient(loss, image)

    with crg.gradient_override():
        ours = grad()
    tf_result = grad()
    assert ours.dtype == dtype and spy == [dtype]
    err_ours = np.abs(as_f64(ours) - exact).max() / np.abs(exact).max()
    err_tf = np.abs(as_f64(tf_result) - exact).max() / np.abs(exact).max()
    if dtype == tf.float64:
        assert err_ours < 1e-12
    else:
        assert err_ours < 1e-3 < err_tf  # half: one rounding vs. half accumulation


def test_integer_image_has_no_image_gradient(crg, rng):
    image = tf.constant(rng.integers(0, 9, [1, 6, 6, 1]).astype(np.int32))
    boxes = tf.constant([[0.1, 0.1, 0.9, 0.8]])
    with crg.gradient_override():
        with tf.GradientTape() as tape:
            tape.watch(boxes)
            y = tf.image.crop_and_resize(image, boxes, [0], [3, 3])
        db = tape.gradient(y, boxes)
    assert db.shape == (1, 4)


def test_second_order_needs_the_override(crg, rng):
    """TF registers no gradient for its CropAndResizeGradImage; ours has one."""
    image, boxes, box_ind = problem(rng)

    def second_order():
        with tf.GradientTape() as outer:
            outer.watch(image)
            with tf.GradientTape() as inner:
                inner.watch(image)
                loss = tf.reduce_sum(tf.image.crop_and_resize(image, boxes, box_ind, [3, 3]) ** 2)
            g = inner.gradient(loss, image)
            h = tf.reduce_sum(g * g)
        return outer.gradient(h, image)

    with pytest.raises(LookupError):
        second_order()
    with crg.gradient_override():
        assert second_order().shape == image.shape
