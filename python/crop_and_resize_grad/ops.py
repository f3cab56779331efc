"""The raw-op mirror of tf.raw_ops.CropAndResizeGradImage."""

from __future__ import annotations

from typing import Union

import numpy as np
import tensorflow as tf

from crop_and_resize_grad import _loader, _xla

#: Registered name of the op (namespaced: it cannot clash with TF's builtin).
OP_NAME = "CropAndResizeGrad>CropAndResizeGradImage"

#: Output dtypes the op supports.
SUPPORTED_DTYPES = (tf.float16, tf.bfloat16, tf.float32, tf.float64)

#: Sampling methods of the forward crop_and_resize.
METHODS = ("bilinear", "nearest")

TensorLike = Union[tf.Tensor, np.ndarray, list, tuple]


_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1


def _as_tensor(value: TensorLike, dtype: tf.DType) -> tf.Tensor:
    """``tf.convert_to_tensor(value, dtype)``, returning a tensor of that dtype
    as it is: the conversion machinery costs tens of microseconds a call in
    eager mode, a few percent of a small workload."""
    if isinstance(value, tf.Tensor) and value.dtype == dtype:
        return value
    return tf.convert_to_tensor(value, dtype)


def _int32_tensor(value: TensorLike, what: str) -> tf.Tensor:
    """Converts to int32, refusing values that int32 would silently wrap."""
    if isinstance(value, (tf.Tensor, tf.Variable)):
        return _as_tensor(value, tf.int32)
    array = np.asarray(value)
    if array.size and np.issubdtype(array.dtype, np.integer):
        if array.min() < _INT32_MIN or array.max() > _INT32_MAX:
            raise ValueError(f"{what} has values outside the int32 range")
    return tf.convert_to_tensor(array, tf.int32)


def _op_determinism_enabled() -> bool:
    """Whether tf.config.experimental.enable_op_determinism() is on."""
    # Not exported under tf.config; this is where enable_op_determinism lives.
    from tensorflow.python.framework import config as tf_config

    return bool(tf_config.is_op_determinism_enabled())


def crop_and_resize_grad_image(
    grads: TensorLike,
    boxes: TensorLike,
    box_ind: TensorLike,
    image_size: TensorLike,
    T: tf.DType | str | type,
    method: str = "bilinear",
    deterministic: bool | None = None,
    name: str | None = None,
) -> tf.Tensor:
    """Gradient of ``tf.image.crop_and_resize`` with respect to the image.

    A drop-in replacement for ``tf.raw_ops.CropAndResizeGradImage`` that is
    race-free, bitwise reproducible, accumulates 16-bit outputs in float32,
    and rejects bad boxes with an error instead of crashing. The signature
    mirrors the raw op: ``T`` is required, as there.

    Input dtypes: Python lists and NumPy arrays are converted, so float64
    ``grads``/``boxes`` become float32 and int64 ``box_ind``/``image_size``
    become int32 (integer values outside the int32 range raise ``ValueError``
    rather than wrap). A ``tf.Tensor`` is not cast: one of another dtype is
    refused by TF's tensor conversion (``ValueError`` eagerly, ``TypeError``
    while tracing a ``tf.function``); cast it first.

    Args:
      grads: float32 ``[num_boxes, crop_height, crop_width, depth]``.
      boxes: float32 ``[num_boxes, 4]``, normalized ``[y1, x1, y2, x2]``.
      box_ind: int32 ``[num_boxes]``, values in ``[0, batch)``.
      image_size: int32 ``[4]``, ``[batch, height, width, depth]``.
      T: output dtype (required): float16, bfloat16, float32 or float64, as a
        ``tf.DType``, its name or a NumPy type.
      method: ``"bilinear"`` or ``"nearest"``, as in the forward op.
      deterministic: request the bitwise-reproducible GPU algorithm. ``None``
        follows ``tf.config.experimental.enable_op_determinism()``. The CPU
        kernel is deterministic either way.
      name: optional op name.

    Returns:
      A ``T`` tensor of shape ``[batch, height, width, depth]``.

    Raises:
      tf.errors.InvalidArgumentError: bad shapes, non-finite boxes, bad sizes
        (also an ``image_size`` with more elements than a tensor can index).
      tf.errors.OutOfRangeError: ``box_ind`` outside ``[0, batch)``.
      TypeError: ``T`` not a supported dtype; a ``tf.Tensor`` input of the wrong
        dtype in a ``tf.function``.
      ValueError: ``method`` unknown; integer values outside int32; a
        ``tf.Tensor`` input of the wrong dtype, eagerly.
    """
    dtype = tf.as_dtype(T)
    if dtype not in SUPPORTED_DTYPES:
        raise TypeError(f"T must be one of {[d.name for d in SUPPORTED_DTYPES]}, got {dtype.name}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if deterministic is None:
        deterministic = _op_determinism_enabled()
    with tf.name_scope(name or "crop_and_resize_grad_image"):
        if _xla.in_xla_context():
            # No XLA kernel for the op: compile the same computation from TF ops.
            static_size = tf.get_static_value(image_size)
            return _xla.crop_and_resize_grad_image(
                grads,
                boxes,
                _int32_tensor(box_ind, "box_ind"),
                [int(v) for v in static_size] if static_size is not None else image_size,
                dtype,
                method,
            )
        return _loader.load_library().crop_and_resize_grad_crop_and_resize_grad_image(
            grads=_as_tensor(grads, tf.float32),
            boxes=_as_tensor(boxes, tf.float32),
            box_ind=_int32_tensor(box_ind, "box_ind"),
            image_size=_int32_tensor(image_size, "image_size"),
            T=dtype,
            method=method,
            deterministic=bool(deterministic),
        )


#: Registered name of the boxes-gradient op.
GRAD_BOXES_OP_NAME = "CropAndResizeGrad>CropAndResizeGradBoxes"


def crop_and_resize_grad_boxes(
    grads: TensorLike,
    image: TensorLike,
    boxes: TensorLike,
    box_ind: TensorLike,
    method: str = "bilinear",
    name: str | None = None,
) -> tf.Tensor:
    """Gradient of ``tf.image.crop_and_resize`` with respect to the boxes.

    A drop-in replacement for ``tf.raw_ops.CropAndResizeGradBoxes`` that is
    deterministic on every device (no atomics: each box is summed in float64
    in one fixed order, the same on CPU and GPU, and rounded once to float32),
    takes bfloat16 images, and rejects bad inputs with an error instead of
    crashing. See docs/semantics.md, "Boxes gradient".

    Args:
      grads: float32 ``[num_boxes, crop_height, crop_width, depth]``.
      image: ``[batch, height, width, depth]``: float16, bfloat16, float32 or
        float64 (a tensor keeps its dtype; an array-like is converted as
        ``tf.convert_to_tensor`` does).
      boxes: float32 ``[num_boxes, 4]``, normalized ``[y1, x1, y2, x2]``.
      box_ind: int32 ``[num_boxes]``, values in ``[0, batch)``.
      method: ``"bilinear"`` or ``"nearest"``, as in the forward op. Both
        use the bilinear formula, as TF does.
      name: optional op name.

    Returns:
      A float32 ``[num_boxes, 4]`` tensor.

    Raises:
      TypeError: an unsupported image dtype.
      ValueError: an unknown ``method`` or an index outside the int32 range.
      tf.errors.InvalidArgumentError: bad shapes, non-finite boxes.
      tf.errors.OutOfRangeError: ``box_ind`` outside ``[0, batch)``.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    with tf.name_scope(name or "crop_and_resize_grad_boxes"):
        image = tf.convert_to_tensor(image)
        if image.dtype not in SUPPORTED_DTYPES:
            raise TypeError(
                f"image must be one of {[d.name for d in SUPPORTED_DTYPES]}, got {image.dtype.name}"
            )
        if _xla.in_xla_context():
            # No XLA kernel for the op: the same sums from TF ops.
            return _xla.crop_and_resize_grad_boxes(
                grads, image, boxes, _int32_tensor(box_ind, "box_ind")
            )
        return _loader.load_library().crop_and_resize_grad_crop_and_resize_grad_boxes(
            grads=_as_tensor(grads, tf.float32),
            image=image,
            boxes=_as_tensor(boxes, tf.float32),
            box_ind=_int32_tensor(box_ind, "box_ind"),
            method=method,
        )
