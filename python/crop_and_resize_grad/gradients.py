"""Gradients: our op's own gradient, and ``crop_and_resize`` with our image gradient.

Importing this module registers, with ``tf.RegisterGradient``, the gradient of
our op (``OP_NAME``). The op ``out = grad_image(g, boxes)`` is linear in ``g``
and is the exact adjoint of ``crop_and_resize(., boxes, extrapolation_value=0)``:
``<crop_and_resize(u), g> = <u, grad_image(g)>``. So, for an upstream gradient
``dy`` (of dtype ``T``, shape ``[B, H, W, D]``):

* w.r.t. ``grads``: ``crop_and_resize(dy, boxes, box_ind, [ch, cw], method,
  extrapolation_value=0)``;
* w.r.t. ``boxes``: the derivative of ``<crop_and_resize(dy, boxes), g>`` with
  respect to ``boxes``, which is this package's boxes gradient
  ``crop_and_resize_grad_boxes(grads=g, image=dy, boxes, box_ind)`` (the
  bilinear formula, also for ``nearest``, as TF does), with ``dy`` in its own
  dtype;
* ``None`` for ``box_ind`` and ``image_size``.

For the crop, ``dy`` is cast to float32 first (TF's crop ops take no bfloat16,
and they sample in float32 anyway).

No gradient is registered for the boxes-gradient op (TF registers none for its
``CropAndResizeGradBoxes`` either): differentiating through ``d_boxes`` a
second time raises ``LookupError``.
"""

from __future__ import annotations

import tensorflow as tf

from crop_and_resize_grad import _xla
from crop_and_resize_grad.ops import (
    METHODS,
    OP_NAME,
    SUPPORTED_DTYPES,
    TensorLike,
    crop_and_resize_grad_boxes,
    crop_and_resize_grad_image,
)

__all__ = ["crop_and_resize"]


def _attr_str(value) -> str:
    """An op's string attr as ``str`` (graph ops and the eager tape's mock op
    may give bytes)."""
    return value.decode() if isinstance(value, bytes) else str(value)


def _skipped(op) -> tuple:
    """Inputs whose gradient nobody asked for. Only the eager tape tells
    (``_MockOp.skip_input_indices``); graph gradients prune unused ops anyway."""
    return tuple(getattr(op, "skip_input_indices", None) or ())


def _crop_size_of(grads: tf.Tensor):
    """[crop_height, crop_width] of a ``[N, ch, cw, D]`` tensor: static when known."""
    static = grads.shape[1:3]
    if static.is_fully_defined():
        return static.as_list()
    return tf.shape(grads)[1:3]


def _image_size_of(image: tf.Tensor):
    """[B, H, W, D] of an image: static when known, so the result keeps a static shape."""
    if image.shape.is_fully_defined():
        return image.shape.as_list()
    return tf.shape(image)


def _forward(image, boxes, box_ind, crop_size, method, extrapolation_value):
    """TF's CropAndResize, or its lowering to XLA-compilable ops while traced for XLA."""
    if _xla.in_xla_context():
        static = tf.get_static_value(crop_size)
        if static is None:
            raise ValueError("crop_size must be a compile-time constant under jit_compile=True")
        return _xla.crop_and_resize(
            image, boxes, box_ind, [int(v) for v in static], method, extrapolation_value
        )
    return tf.raw_ops.CropAndResize(
        image=image,
        boxes=boxes,
        box_ind=box_ind,
        crop_size=crop_size,
        method=method,
        extrapolation_value=extrapolation_value,
    )


def _boxes_gradient(grads, image, boxes, box_ind, method):
    """The boxes gradient: this package's op (its lowering while traced for
    XLA); the bilinear formula for both methods."""
    return crop_and_resize_grad_boxes(grads, image, boxes, box_ind, method=method)


def _crop_and_resize_grad_image_grad(op, grad):
    """Gradient of ``CropAndResizeGrad>CropAndResizeGradImage`` (see module docstring).

    Uses only ``op.inputs[0..2]``, the ``method`` attr and ``grad``.
    """
    grads, boxes, box_ind = op.inputs[0], op.inputs[1], op.inputs[2]
    method = _attr_str(op.get_attr("method"))
    skip = _skipped(op)
    d_grads = d_boxes = None
    if 0 not in skip:
        d_grads = _forward(
            tf.cast(grad, tf.float32), boxes, box_ind, _crop_size_of(grads), method, 0.0
        )
    if 1 not in skip:
        d_boxes = _boxes_gradient(grads, grad, boxes, box_ind, method)
    return [d_grads, d_boxes, None, None]


def _register_own_gradient() -> None:
    try:
        tf.RegisterGradient(OP_NAME)(_crop_and_resize_grad_image_grad)
    except KeyError:
        # Already registered: this module was reloaded (importlib.reload).
        pass


_register_own_gradient()


# float16/32/64 are TF's CropAndResize types; bfloat16 is computed in float32.
_WRAPPER_DTYPES = SUPPORTED_DTYPES

#: Finite box coordinates are clamped to [-BOX_LIMIT, BOX_LIMIT] before TF's
#: forward op. TF computes ``(y2 - y1) * (H - 1)`` in float32; with
#: ``|y| <= 1e28`` and ``H - 1 < 2^31`` that is at most ``4.3e37``, and every
#: later step of its position math (``/ (ch - 1)``, ``y * scale``,
#: ``y1 * (H - 1) + ...``) stays below ``6.5e37``, far from float32's
#: ``3.4e38``: no infinity, so no NaN position and no wild index. Larger
#: finite boxes (``±3e38``) make TF's forward crash the process (SIGSEGV).
BOX_LIMIT = 1e28


def _guard_boxes(boxes: tf.Tensor) -> tf.Tensor:
    """Finite values clamped to ±BOX_LIMIT; NaN and ±Inf unchanged (TF's
    forward rejects them with a clean InvalidArgumentError)."""
    clamped = tf.clip_by_value(boxes, -BOX_LIMIT, BOX_LIMIT)
    return tf.where(tf.math.is_finite(boxes), clamped, boxes)


def _needs_gradient(tensor: tf.Tensor) -> bool:
    """False only when executing eagerly and no active tape watches ``tensor``:
    then nobody can ask for its gradient through this call. Inside a
    ``tf.function`` the answer is always True (a tape outside the function
    is not visible while tracing; unused gradient ops are pruned there)."""
    if not tf.executing_eagerly():
        return True
    from tensorflow.python.eager import record  # not exported under tf.*

    return bool(record.should_record_backprop([tensor]))


def crop_and_resize(
    image: TensorLike,
    boxes: TensorLike,
    box_indices: TensorLike,
    crop_size: TensorLike,
    method: str = "bilinear",
    extrapolation_value: float = 0.0,
    name: str | None = None,
) -> tf.Tensor:
    """``tf.image.crop_and_resize`` whose gradients are this package's ops.

    The forward pass is TF's ``crop_and_resize`` (bitwise the same result for
    every box with coordinates in ``[-1e28, 1e28]``). A bfloat16 image, which
    TF's op does not take, is cropped in float32 and the result cast back to
    bfloat16; other float images give float32, as in TF.

    Crash guard: finite box coordinates are clamped to ``[-BOX_LIMIT,
    BOX_LIMIT]`` (``1e28``) before TF's forward, whose float32 position math
    would otherwise overflow and crash the process on huge boxes such as
    ``±3e38``. NaN and ±Inf are left alone: TF's forward rejects them with
    ``InvalidArgumentError``. Boxes beyond the limit (no real model has them)
    are cropped as if clamped; the gradient passes straight through the clamp
    (it is that of the clamped boxes, not zero).

    Gradients:
      * image: ``crop_and_resize_grad_image(dy, boxes, box_indices,
        shape(image), T=image.dtype, method)``, race-free and deterministic,
        with the image's dtype (float16, bfloat16, float32 or float64);
        ``deterministic`` follows ``tf.config.experimental.enable_op_determinism()``.
      * boxes: ``crop_and_resize_grad_boxes(dy, image, boxes, box_indices)``,
        deterministic on every device (bilinear formula, also for
        ``nearest``, as TF does).
      * box_indices, crop_size: none.
      Executing eagerly, a gradient that no active tape can ask for (its input
      is not watched) is not computed.

    Integer images go to TF's forward too, with the same box clamp; as in TF
    they get no image gradient, and their boxes gradient reads the image as
    float32 (as TF's kernel does).

    Args:
      image: ``[batch, height, width, depth]``.
      boxes: float32 ``[num_boxes, 4]``, normalized ``[y1, x1, y2, x2]``.
      box_indices: int32 ``[num_boxes]`` in ``[0, batch)``.
      crop_size: int32 ``[crop_height, crop_width]``.
      method: ``"bilinear"`` or ``"nearest"``.
      extrapolation_value: value for samples outside the image.
      name: optional name scope.

    Returns:
      ``[num_boxes, crop_height, crop_width, depth]``: float32, or bfloat16 for
      a bfloat16 image.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    with tf.name_scope(name or "crop_and_resize"):
        image = tf.convert_to_tensor(image)
        boxes = tf.convert_to_tensor(boxes, tf.float32)
        box_indices = tf.convert_to_tensor(box_indices, tf.int32)
        crop_size = tf.convert_to_tensor(crop_size, tf.int32)
        image_dtype = image.dtype
        is_float = image_dtype in _WRAPPER_DTYPES
        need_image = is_float and _needs_gradient(image)
        need_boxes = _needs_gradient(boxes)

        # A closure (not keyword arguments): tf.custom_gradient takes no
        # keyword arguments in graph mode.
        @tf.custom_gradient
        def _crop(image, boxes, box_indices, crop_size):
            guarded = _guard_boxes(boxes)
            image32 = tf.cast(image, tf.float32) if image_dtype == tf.bfloat16 else image
            out = _forward(image32, guarded, box_indices, crop_size, method, extrapolation_value)
            if image_dtype == tf.bfloat16:
                out = tf.cast(out, tf.bfloat16)

            def grad(dy):
                dy = tf.cast(dy, tf.float32)
                d_image = d_boxes = None
                if need_image:
                    d_image = crop_and_resize_grad_image(
                        dy,
                        guarded,
                        box_indices,
                        _image_size_of(image),
                        T=image_dtype,
                        method=method,
                    )
                if need_boxes:
                    # TF's kernels read integer images as float32 too.
                    d_boxes = _boxes_gradient(
                        dy,
                        image if is_float else tf.cast(image, tf.float32),
                        guarded,
                        box_indices,
                        method,
                    )
                return d_image, d_boxes, None, None

            return out, grad

        return _crop(image, boxes, box_indices, crop_size)
