"""The boxes-gradient op (crg.crop_and_resize_grad_boxes) and its use by the
wrapper, the override and the image-gradient op's own gradient.

Accuracy: the op sums float64 terms and rounds once, so against the float64
reference (tests/support/reference.py) it is within one float32 rounding of
the result plus the float64 summation error (``(K/256 + 8) 2^-53`` times the
sum of the terms' magnitudes, K terms per coordinate). TF's kernel forms and
sums its terms in float32, so it is within about ``K 2^-23`` of that sum.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from helpers import ALL_DTYPES, TF_BUILTIN_DTYPES, describe_proc, run_python
from support.cases import BOX_KINDS, make_case, random_boxes
from support.reference import grad_boxes_reference

OUR_BOXES_OP = "CropAndResizeGrad>CropAndResizeGradBoxes"
OUR_IMAGE_OP = "CropAndResizeGrad>CropAndResizeGradImage"
TF_GRAD_OPS = {"CropAndResizeGradImage", "CropAndResizeGradBoxes"}


def _inputs(rng, batch, height, width, depth, num_boxes, ch, cw, kind="mixed", dtype=tf.float32):
    case = make_case(rng, batch, height, width, depth, num_boxes, ch, cw, kind=kind)
    image = rng.standard_normal((batch, height, width, depth)).astype(np.float32)
    image = tf.cast(image, dtype).numpy() if dtype != tf.float32 else image
    return case.grads, image, case.boxes, case.box_ind


def _assert_near_reference(out, grads, image, boxes, box_ind):
    ref, scale = grad_boxes_reference(grads, image, boxes, box_ind, with_scale=True)
    terms = np.prod(np.asarray(grads).shape[1:])
    bound = np.abs(ref) * 2.0**-24 + scale * (terms / 256 + 9) * 2.0**-53 + 1e-300
    err = np.abs(np.asarray(out, np.float64) - ref)
    assert np.all(err <= bound), (err.max(), bound[err > bound][:4], np.argwhere(err > bound)[:4])


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=lambda d: d.name)
@pytest.mark.parametrize("crop", [(1, 1), (1, 4), (5, 1), (7, 6)], ids=str)
def test_reference_every_dtype_and_crop(crg, rng, dtype, crop):
    grads, image, boxes, box_ind = _inputs(rng, 2, 11, 13, 5, 40, *crop, dtype=dtype)
    out = crg.crop_and_resize_grad_boxes(grads, image, boxes, box_ind).numpy()
    assert out.dtype == np.float32 and out.shape == (40, 4)
    _assert_near_reference(out, grads, np.asarray(image).astype(np.float64), boxes, box_ind)


@pytest.mark.parametrize("kind", BOX_KINDS)
@pytest.mark.parametrize("method", ["bilinear", "nearest"])
def test_reference_box_kinds(crg, rng, kind, method):
    grads, image, boxes, box_ind = _inputs(rng, 3, 17, 9, 3, 60, 4, 5, kind=kind)
    out = crg.crop_and_resize_grad_boxes(grads, image, boxes, box_ind, method=method).numpy()
    _assert_near_reference(out, grads, image, boxes, box_ind)


@pytest.mark.parametrize("depth", [1, 2, 3, 7, 8, 9, 64, 255, 256, 257, 300])
def test_reference_depths(crg, rng, depth):
    grads, image, boxes, box_ind = _inputs(rng, 2, 9, 10, depth, 6, 3, 4)
    out = crg.crop_and_resize_grad_boxes(grads, image, boxes, box_ind).numpy()
    _assert_near_reference(out, grads, image, boxes, box_ind)


@pytest.mark.parametrize("dtype", TF_BUILTIN_DTYPES, ids=lambda d: d.name)
@pytest.mark.parametrize("crop", [(1, 1), (6, 5)], ids=str)
def test_against_tf_builtin(crg, rng, dtype, crop):
    """TF sums in float32: within K 2^-23 of the terms' magnitude sum."""
    grads, image, boxes, box_ind = _inputs(
        rng, 2, 12, 14, 16, 30, *crop, kind="normal", dtype=dtype
    )
    ours = crg.crop_and_resize_grad_boxes(grads, image, boxes, box_ind).numpy()
    theirs = tf.raw_ops.CropAndResizeGradBoxes(
        grads=grads, image=image, boxes=boxes, box_ind=box_ind
    ).numpy()
    ref, scale = grad_boxes_reference(
        grads, np.asarray(image).astype(np.float64), boxes, box_ind, with_scale=True
    )
    terms = np.prod(grads.shape[1:])
    assert np.all(np.abs(theirs - ours) <= scale * (terms + 8) * 2.0**-23 + 1e-30)
    # And ours is the closer one (in total).
    assert np.abs(ours - ref).sum() <= np.abs(theirs - ref).sum()


def test_bitwise_reproducible_and_thread_independent(crg, rng):
    grads, image, boxes, box_ind = _inputs(rng, 2, 30, 30, 33, 300, 7, 7)
    first = crg.crop_and_resize_grad_boxes(grads, image, boxes, box_ind).numpy()
    for _ in range(3):
        again = crg.crop_and_resize_grad_boxes(grads, image, boxes, box_ind).numpy()
        assert np.array_equal(first.view(np.uint32), again.view(np.uint32))
    code = """
        import numpy as np, tensorflow as tf
        tf.config.threading.set_intra_op_parallelism_threads(1)
        import crop_and_resize_grad as crg
        a = np.load("{path}")
        out = crg.crop_and_resize_grad_boxes(a["g"], a["i"], a["b"], a["n"]).numpy()
        np.save("{path}.out.npy", out)
    """
    import os
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "in.npz")
        np.savez(path, g=grads, i=image, b=boxes, n=box_ind)
        proc = run_python(code.format(path=path))
        assert proc.returncode == 0, describe_proc(proc)
        single = np.load(path + ".out.npy")
    assert np.array_equal(first.view(np.uint32), single.view(np.uint32))


def test_same_bits_as_kernels_module(crg, rng):
    from support.kernels import load_kernels

    kernels, reason = load_kernels()
    if kernels is None:
        pytest.skip(reason)
    grads, image, boxes, box_ind = _inputs(rng, 2, 10, 12, 9, 20, 3, 4)
    for dtype in ALL_DTYPES:
        img = tf.cast(image, dtype)
        ours = crg.crop_and_resize_grad_boxes(grads, img, boxes, box_ind).numpy()
        host = img.numpy()
        kw = {}
        if dtype == tf.bfloat16:
            host = host.view(np.uint16)
            kw["image_dtype"] = "bfloat16"
        direct = kernels.grad_boxes_cpu(grads, host, boxes, box_ind, num_threads=3, **kw)
        assert np.array_equal(ours.view(np.uint32), direct.view(np.uint32)), dtype.name


def test_subnormal_inputs_read_as_zero(crg, rng):
    grads, image, boxes, box_ind = _inputs(rng, 1, 6, 6, 4, 5, 3, 3, kind="normal")
    tiny = np.where(rng.random(image.shape) < 0.5, 1e-40, -3e-42).astype(np.float32)
    out = crg.crop_and_resize_grad_boxes(grads, tiny, boxes, box_ind).numpy()
    assert np.all(out == 0)


def test_no_boxes_and_empty_depth(crg):
    out = crg.crop_and_resize_grad_boxes(
        np.zeros((0, 2, 2, 3), np.float32),
        np.ones((1, 4, 4, 3), np.float32),
        np.zeros((0, 4), np.float32),
        np.zeros((0,), np.int32),
    )
    assert out.shape == (0, 4)
    out = crg.crop_and_resize_grad_boxes(
        np.zeros((2, 2, 2, 0), np.float32),
        np.ones((1, 4, 4, 0), np.float32),
        np.full((2, 4), 0.5, np.float32),
        np.zeros((2,), np.int32),
    )
    assert np.array_equal(out.numpy(), np.zeros((2, 4), np.float32))


def test_static_shape_inference(crg):
    @tf.function(
        input_signature=[
            tf.TensorSpec([None, 3, 3, 2]),
            tf.TensorSpec([2, 8, 8, 2]),
            tf.TensorSpec([7, 4]),
            tf.TensorSpec([None], tf.int32),
        ]
    )
    def f(g, i, b, n):
        out = crg.crop_and_resize_grad_boxes(g, i, b, n)
        assert out.shape.as_list() == [7, 4], out.shape
        return out

    f.get_concrete_function()


# --------------------------------------------------------------------------- #
# Validation: the image gradient's list and messages
# --------------------------------------------------------------------------- #
def _good():
    return dict(
        grads=np.ones((2, 3, 3, 2), np.float32),
        image=np.ones((2, 5, 5, 2), np.float32),
        boxes=np.array([[0, 0, 1, 1], [0.1, 0.2, 0.5, 0.9]], np.float32),
        box_ind=np.array([0, 1], np.int32),
    )


BAD = [
    (
        "nan box",
        dict(boxes=np.array([[0, np.nan, 1, 1], [0, 0, 1, 1]], np.float32)),
        tf.errors.InvalidArgumentError,
        "boxes must be finite",
    ),
    (
        "inf box",
        dict(boxes=np.array([[0, 0, 1, 1], [0, 0, np.inf, 1]], np.float32)),
        tf.errors.InvalidArgumentError,
        "boxes must be finite",
    ),
    (
        "box_ind high",
        dict(box_ind=np.array([0, 2], np.int32)),
        tf.errors.OutOfRangeError,
        "box_ind has values outside [0, batch_size)",
    ),
    (
        "box_ind negative",
        dict(box_ind=np.array([-1, 0], np.int32)),
        tf.errors.OutOfRangeError,
        "box_ind has values outside [0, batch_size)",
    ),
    (
        "boxes [0]",
        dict(boxes=np.zeros((0,), np.float32)),
        tf.errors.InvalidArgumentError,
        "boxes must be 2-D",
    ),
    (
        "box_ind [0,0]",
        dict(box_ind=np.zeros((0, 0), np.int32)),
        tf.errors.InvalidArgumentError,
        "box_ind must be 1-D",
    ),
    (
        "5 columns",
        dict(boxes=np.zeros((2, 5), np.float32)),
        tf.errors.InvalidArgumentError,
        "boxes must be 2-D [num_boxes, 4]",
    ),
    (
        "grads rank",
        dict(grads=np.ones((2, 3, 3), np.float32)),
        tf.errors.InvalidArgumentError,
        "grads must be 4-D",
    ),
    (
        "image rank",
        dict(image=np.ones((5, 5, 2), np.float32)),
        tf.errors.InvalidArgumentError,
        "image must be 4-D",
    ),
    (
        "depth mismatch",
        dict(image=np.ones((2, 5, 5, 3), np.float32)),
        tf.errors.InvalidArgumentError,
        "image and grads are incompatible",
    ),
    (
        "N mismatch grads",
        dict(grads=np.ones((3, 3, 3, 2), np.float32)),
        tf.errors.InvalidArgumentError,
        "grads has 3 boxes but boxes has 2 rows",
    ),
    (
        "N mismatch box_ind",
        dict(box_ind=np.zeros((3,), np.int32)),
        tf.errors.InvalidArgumentError,
        "box_ind has 3 elements but boxes has 2 rows",
    ),
    (
        "empty image",
        dict(image=np.ones((2, 0, 5, 2), np.float32)),
        tf.errors.InvalidArgumentError,
        "image height and width must be positive",
    ),
    (
        "empty crop",
        dict(grads=np.ones((2, 0, 3, 2), np.float32)),
        tf.errors.InvalidArgumentError,
        "grads crop dimensions must be positive",
    ),
]


@pytest.mark.parametrize("name,change,error,message", BAD, ids=[b[0] for b in BAD])
def test_validation_eager(crg, name, change, error, message):
    kw = _good()
    kw.update(change)
    with pytest.raises(error, match=message.replace("[", r"\[").replace(")", r"\)")):
        crg.crop_and_resize_grad_boxes(**kw)


def test_validation_raw_op_and_method(crg):
    lib = crg._loader.load_library() if hasattr(crg, "_loader") else None
    from crop_and_resize_grad import _loader

    lib = _loader.load_library()
    with pytest.raises(ValueError, match="method"):
        crg.crop_and_resize_grad_boxes(**_good(), method="bicubic")
    with pytest.raises((tf.errors.InvalidArgumentError, ValueError, TypeError)):
        lib.crop_and_resize_grad_crop_and_resize_grad_boxes(**_good(), method="bicubic")
    with pytest.raises(TypeError, match="image must be"):
        crg.crop_and_resize_grad_boxes(**{**_good(), "image": np.ones((2, 5, 5, 2), np.int32)})


def test_bad_inputs_never_crash_subprocess():
    """The inputs that crash TF's CropAndResizeGradBoxes (NaN, Inf, ±3e38
    boxes, [0] boxes) give errors or results here, in a child process."""
    code = """
        import numpy as np, tensorflow as tf
        import crop_and_resize_grad as crg
        g = np.ones((1, 3, 3, 2), np.float32)
        img = np.ones((1, 5, 5, 2), np.float32)
        results = []
        for boxes in ([[np.nan, 0, 1, 1]], [[0, 0, np.inf, 1]], [[-3e38, -3e38, 3e38, 3e38]],
                      [[3e38, 0, -3e38, 1]], np.zeros([0], np.float32)):
            try:
                out = crg.crop_and_resize_grad_boxes(g, img, np.asarray(boxes, np.float32), [0])
                results.append(("ok", np.isfinite(out.numpy()).all()))
            except tf.errors.InvalidArgumentError as e:
                results.append(("error", "boxes" in str(e)))
        print(results)
        assert results[0][0] == results[1][0] == results[4][0] == "error"
        assert results[2] == ("ok", True) and results[3] == ("ok", True)
    """
    proc = run_python(code)
    assert proc.returncode == 0, describe_proc(proc)


# --------------------------------------------------------------------------- #
# The wrapper, the override and the own gradient use it
# --------------------------------------------------------------------------- #
def _op_types(concrete):
    types = set()
    graphs = [concrete.graph]
    while graphs:
        graph = graphs.pop()
        for op in graph.get_operations():
            types.add(op.type)
        for f in graph._functions.values():  # nested functions (gradient graphs)
            graphs.append(f.graph) if hasattr(f, "graph") else None
    lib = concrete.graph.as_graph_def().library
    for fdef in lib.function:
        types.update(node.op for node in fdef.node_def)
    return types


def _traced_grad_op_types(fn, image_dtype=tf.float32):
    @tf.function
    def step(image, boxes):
        with tf.GradientTape() as tape:
            tape.watch([image, boxes])
            out = fn(image, boxes)
            loss = tf.reduce_sum(tf.cast(out, tf.float32) ** 2)
        return tape.gradient(loss, [image, boxes])

    image = tf.cast(tf.ones([2, 8, 8, 3]), image_dtype)
    boxes = tf.constant([[0, 0, 1, 1], [0.1, 0.2, 0.6, 0.9]], tf.float32)
    return _op_types(step.get_concrete_function(image, boxes))


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=lambda d: d.name)
def test_wrapper_gradient_graph_has_only_our_gradient_ops(crg, dtype):
    types = _traced_grad_op_types(
        lambda i, b: crg.crop_and_resize(i, b, [0, 1], [4, 5]), image_dtype=dtype
    )
    assert not types & TF_GRAD_OPS, types & TF_GRAD_OPS
    assert {OUR_BOXES_OP, OUR_IMAGE_OP} <= types, types


def test_override_gradient_graph_has_only_our_gradient_ops(crg):
    with crg.gradient_override():
        types = _traced_grad_op_types(lambda i, b: tf.image.crop_and_resize(i, b, [0, 1], [4, 5]))
    assert not types & TF_GRAD_OPS, types & TF_GRAD_OPS
    assert {OUR_BOXES_OP, OUR_IMAGE_OP} <= types, types


def test_own_gradient_uses_our_boxes_op(crg):
    @tf.function
    def second(g, boxes):
        with tf.GradientTape() as tape:
            tape.watch([g, boxes])
            img = crg.crop_and_resize_grad_image(g, boxes, [0], [1, 8, 8, 2], T=tf.float32)
            loss = tf.reduce_sum(img**2)
        return tape.gradient(loss, [g, boxes])

    g = tf.ones([1, 3, 3, 2])
    boxes = tf.constant([[0.1, 0.2, 0.7, 0.9]])
    types = _op_types(second.get_concrete_function(g, boxes))
    assert OUR_BOXES_OP in types and "CropAndResizeGradBoxes" not in types
    # d/dboxes of <grad_image(g), dy> equals our boxes op on (g, dy).
    d_g, d_boxes = second(g, boxes)
    img = crg.crop_and_resize_grad_image(g, boxes, [0], [1, 8, 8, 2], T=tf.float32)
    expected = crg.crop_and_resize_grad_boxes(g, 2 * img, boxes, [0])
    np.testing.assert_array_equal(d_boxes.numpy(), expected.numpy())


def test_wrapper_boxes_gradient_matches_tf(crg, rng):
    image = rng.standard_normal((2, 15, 17, 4)).astype(np.float32)
    boxes = tf.constant(random_boxes(rng, 12, "mixed"))
    box_ind = rng.integers(0, 2, 12).astype(np.int32)
    with tf.GradientTape() as tape:
        tape.watch(boxes)
        ours = crg.crop_and_resize(image, boxes, box_ind, [5, 6])
        loss = tf.reduce_sum(ours * ours)
    d_ours = tape.gradient(loss, boxes).numpy()
    with tf.GradientTape() as tape:
        tape.watch(boxes)
        theirs = tf.image.crop_and_resize(image, boxes, box_ind, [5, 6])
        loss = tf.reduce_sum(theirs * theirs)
    d_tf = tape.gradient(loss, boxes).numpy()
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    np.testing.assert_allclose(d_ours, d_tf, rtol=1e-4, atol=1e-4 * np.abs(d_tf).max())


def test_eager_skips_unwatched_inputs(crg, monkeypatch):
    """Executing eagerly, an input no tape watches gets no gradient op run."""
    import crop_and_resize_grad.gradients as gradients

    calls = []
    real_boxes, real_image = (
        gradients.crop_and_resize_grad_boxes,
        gradients.crop_and_resize_grad_image,
    )
    monkeypatch.setattr(
        gradients,
        "crop_and_resize_grad_boxes",
        lambda *a, **k: calls.append("boxes") or real_boxes(*a, **k),
    )
    monkeypatch.setattr(
        gradients,
        "crop_and_resize_grad_image",
        lambda *a, **k: calls.append("image") or real_image(*a, **k),
    )
    image = tf.Variable(tf.ones([1, 6, 6, 2]))
    boxes = tf.constant([[0.1, 0.1, 0.8, 0.9]])
    with tf.GradientTape() as tape:
        out = crg.crop_and_resize(image, boxes, [0], [3, 3])
    assert tape.gradient(out, image) is not None
    assert calls == ["image"]
    calls.clear()
    with tf.GradientTape() as tape:
        tape.watch(boxes)
        out = crg.crop_and_resize(tf.ones([1, 6, 6, 2]), boxes, [0], [3, 3])
    assert tape.gradient(out, boxes) is not None
    assert calls == ["boxes"]


@pytest.mark.parametrize("what", ["image", "boxes"])
def test_compute_gradient_through_wrapper(crg, rng, what):
    image = rng.standard_normal((1, 7, 8, 2))
    boxes = np.array([[0.13, 0.21, 0.77, 0.86], [0.61, 0.07, 0.18, 0.71]])

    def f(x):
        if what == "image":
            return crg.crop_and_resize(x, tf.constant(boxes, tf.float32), [0, 0], [3, 4])
        return crg.crop_and_resize(tf.constant(image), tf.cast(x, tf.float32), [0, 0], [3, 4])

    x = image if what == "image" else boxes
    theoretical, numerical = tf.test.compute_gradient(
        f, [tf.constant(x, tf.float64 if what == "image" else tf.float32)], delta=1e-3
    )
    np.testing.assert_allclose(theoretical[0], numerical[0], rtol=2e-2, atol=2e-2)


def test_integer_image_boxes_gradient(crg):
    image = tf.constant(np.arange(2 * 6 * 6 * 1).reshape(2, 6, 6, 1), tf.int32)
    boxes = tf.constant([[0.1, 0.1, 0.8, 0.9]])
    with tf.GradientTape() as tape:
        tape.watch(boxes)
        out = crg.crop_and_resize(image, boxes, [1], [3, 3])
    d = tape.gradient(out, boxes)
    expected = tf.raw_ops.CropAndResizeGradBoxes(
        grads=tf.ones_like(out), image=image, boxes=boxes, box_ind=[1]
    )
    np.testing.assert_allclose(d.numpy(), expected.numpy(), rtol=1e-6)


# --------------------------------------------------------------------------- #
# The forward guard
# --------------------------------------------------------------------------- #
def test_guard_leaves_real_boxes_alone(crg, rng):
    image = rng.standard_normal((2, 9, 11, 3)).astype(np.float32)
    boxes = np.concatenate(
        [
            random_boxes(rng, 50, "mixed"),
            [[-1e28, 0, 1e28, 1], [0.5, -1e28, 0.5, 1e28], [1e5, -1e20, -1e27, 3]],
        ]
    ).astype(np.float32)
    box_ind = rng.integers(0, 2, len(boxes)).astype(np.int32)
    for method in ("bilinear", "nearest"):
        ours = crg.crop_and_resize(image, boxes, box_ind, [4, 3], method=method).numpy()
        theirs = tf.image.crop_and_resize(image, boxes, box_ind, [4, 3], method=method).numpy()
        np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_guard_keeps_tf_error_for_non_finite(crg, bad):
    with pytest.raises(tf.errors.InvalidArgumentError, match="finite"):
        crg.crop_and_resize(tf.ones([1, 4, 4, 1]), [[0, bad, 1, 1]], [0], [2, 2])


def test_huge_boxes_no_longer_crash_subprocess():
    """TF's forward SIGSEGVs on ±3e38 boxes; the wrapper runs forward and
    backward (both gradients) and exits cleanly, for float and integer images."""
    code = """
        import numpy as np, tensorflow as tf
        import crop_and_resize_grad as crg
        for dtype in (tf.float32, tf.float16, tf.bfloat16, tf.float64, tf.int32, tf.uint8):
            image = tf.cast(tf.ones([1, 10, 10, 2]), dtype)
            huge = ([-3e38, -3e38, 3e38, 3e38], [3e38, 0, -3e38, 1], [-3.4e38, 3.4e38, 0.5, 0.5])
            for box in huge:
                for crop in ([3, 3], [1, 1]):
                    boxes = tf.constant([box], tf.float32)
                    with tf.GradientTape() as tape:
                        tape.watch([image, boxes])
                        out = crg.crop_and_resize(image, boxes, [0], crop)
                        loss = tf.reduce_sum(tf.cast(out, tf.float32))
                    grads = tape.gradient(loss, [image, boxes])
                    assert np.isfinite(tf.cast(out, tf.float32).numpy()).all()
                    assert np.isfinite(grads[1].numpy()).all()
        print("clean")
    """
    proc = run_python(code, timeout=300)
    assert proc.returncode == 0 and "clean" in proc.stdout, describe_proc(proc)
