"""A process-wide drop-in override of the gradient of TF's builtin ``CropAndResize``.

After ``override_gradient()``, every ``tf.image.crop_and_resize`` (and
``tf.raw_ops.CropAndResize``) that is differentiated gets its image gradient
from this package's op, with no change to model code::

    import crop_and_resize_grad as crg

    crg.override_gradient()          # or: with crg.gradient_override(): ...
    model.fit(...)                   # unchanged model code

TF internals touched
--------------------
Exactly one: the ``"CropAndResize"`` entry of TF's Python gradient registry,
``tensorflow.python.framework.ops.gradient_registry`` (the same object as
``ops._gradient_registry``), a ``tensorflow.python.framework.registry.Registry``.
Its private dict ``Registry._registry`` maps an op type to
``{"type": gradient_function, "location": traceback.FrameSummary}``.
``tf.RegisterGradient`` refuses to register an op type twice (``KeyError``) and
there is no public way to unregister, so:

* ``override_gradient()`` saves the original entry dict (holding TF's own
  ``image_grad._CropAndResizeGrad`` function object) and puts a new entry dict
  whose ``"type"`` is :func:`_crop_and_resize_gradient`;
* ``restore_gradient()`` puts the saved original entry dict back (the very
  same objects). Both are idempotent and thread-safe. If other code replaced
  the entry after ``override_gradient()``, ``restore_gradient()`` leaves its
  entry in place.

Nothing else is patched: not TF's functions, not ``tf.image``, not the tape,
not ``ops.get_gradient_function``.

When the registry is read (so when the override must be active)
-----------------------------------------------------------------
Measured on TF 2.21 (``tests/test_override.py`` checks each case):

* **Eager ``tf.GradientTape``**: at *backward* time. Recording keeps only the
  op name, attrs and the tensors the gradient may need; ``tape.gradient`` calls
  ``tensorflow.python.eager.backprop._gradient_function``, which looks the op
  type up in the registry then. The switch in force at ``tape.gradient`` wins.
* **``tape.gradient`` inside a ``tf.function``** (Keras's ``train_step`` under
  ``model.fit``, custom training loops, ``strategy.run``): the same lookup,
  but it runs while the function is *traced*. The traced graph then holds
  whichever gradient ops were chosen, for the life of that concrete function:
  turn the override on before the first ``model.fit`` (or call
  ``model.make_train_function(force=True)`` after switching).
* **``tf.gradients`` in ``tf.compat.v1`` graphs**: at the ``tf.gradients`` call,
  through ``ops.get_gradient_function``.
* **A ``tf.function`` called eagerly under a tape** (its forward in the
  function, the gradient outside): its backward function is built at the
  first call recorded by a tape, with the registry of that moment, and cached
  with the concrete function; later switches do not change it.
* A SavedModel stores traced graphs: a function traced with the override
  contains our op and needs ``import crop_and_resize_grad`` to load.

The replacement gradient uses only ``op.inputs[0..2]`` (image, boxes,
box_ind), the ``method`` attr and ``grad``: under the eager tape TF keeps
neither the op's output nor ``crop_size`` for ``CropAndResize`` (the crop size
is implied by ``grad``'s shape, which is all our op needs).
"""

from __future__ import annotations

import contextlib
import threading

import tensorflow as tf
from tensorflow.python.framework import ops as _tf_ops

from crop_and_resize_grad.gradients import _attr_str, _image_size_of, _skipped
from crop_and_resize_grad.ops import crop_and_resize_grad_boxes, crop_and_resize_grad_image

__all__ = [
    "OVERRIDDEN_OP_TYPE",
    "gradient_override",
    "is_gradient_overridden",
    "override_gradient",
    "restore_gradient",
]

#: The TF op type whose gradient is overridden.
OVERRIDDEN_OP_TYPE = "CropAndResize"

# Keys of Registry._registry entries (tensorflow/python/framework/registry.py).
_TYPE_TAG = "type"

# Image dtypes TF's own gradient differentiates (CropAndResize takes no bfloat16).
_FLOAT_IMAGE_DTYPES = (tf.float16, tf.float32, tf.float64)

_lock = threading.RLock()
_saved_entry: dict | None = None  # TF's original registry entry while overridden
_our_entry: dict | None = None


def _crop_and_resize_gradient(op, grad):
    """Gradient of TF's ``CropAndResize`` with this package's image gradient.

    The same contract as TF's ``image_grad._CropAndResizeGrad``: returns
    ``[d_image, d_boxes, None, None]``; ``d_image`` is ``None`` for
    non-float images; ``d_boxes`` is this package's
    :func:`~crop_and_resize_grad.ops.crop_and_resize_grad_boxes` (integer images
    read as float32, as TF's kernel reads them).
    Inputs the eager tape says nobody needs (``skip_input_indices``) are
    not computed.
    """
    image, boxes, box_ind = op.inputs[0], op.inputs[1], op.inputs[2]
    skip = _skipped(op)
    d_image = d_boxes = None
    if 0 not in skip and image.dtype in _FLOAT_IMAGE_DTYPES:
        d_image = crop_and_resize_grad_image(
            grad,
            boxes,
            box_ind,
            _image_size_of(image),
            T=image.dtype,
            method=_attr_str(op.get_attr("method")),
        )
    if 1 not in skip:
        # TF's kernels read integer images as float32 too.
        if image.dtype not in _FLOAT_IMAGE_DTYPES:
            image = tf.cast(image, tf.float32)
        d_boxes = crop_and_resize_grad_boxes(
            grad, image, boxes, box_ind, method=_attr_str(op.get_attr("method"))
        )
    return [d_image, d_boxes, None, None]


def _entries() -> dict:
    return _tf_ops.gradient_registry._registry  # private; see the module docstring


def override_gradient() -> None:
    """Makes :func:`_crop_and_resize_gradient` the gradient of ``CropAndResize``.

    Process-wide; idempotent. See the module docstring for when it takes effect.
    """
    global _saved_entry, _our_entry
    with _lock:
        entries = _entries()
        current = entries.get(OVERRIDDEN_OP_TYPE)
        if current is None:
            raise RuntimeError(
                f"TF's gradient registry has no {OVERRIDDEN_OP_TYPE!r} entry to override "
                "(tensorflow.python.ops.image_grad not imported?)"
            )
        if current.get(_TYPE_TAG) is _crop_and_resize_gradient:
            return  # already overridden
        _saved_entry = current
        _our_entry = dict(current)  # keeps the "location" tag TF's error messages read
        _our_entry[_TYPE_TAG] = _crop_and_resize_gradient
        entries[OVERRIDDEN_OP_TYPE] = _our_entry


def restore_gradient() -> None:
    """Puts TF's original ``CropAndResize`` gradient back. Idempotent."""
    global _saved_entry, _our_entry
    with _lock:
        if _saved_entry is None:
            return  # not overridden
        entries = _entries()
        if entries.get(OVERRIDDEN_OP_TYPE) is _our_entry:
            entries[OVERRIDDEN_OP_TYPE] = _saved_entry
        _saved_entry = _our_entry = None


def is_gradient_overridden() -> bool:
    """Whether ``CropAndResize``'s registered gradient is currently ours."""
    with _lock:
        entry = _entries().get(OVERRIDDEN_OP_TYPE)
        return entry is not None and entry.get(_TYPE_TAG) is _crop_and_resize_gradient


@contextlib.contextmanager
def gradient_override(enabled: bool = True):
    """Context manager: inside, ``CropAndResize``'s gradient is this package's
    (``enabled=True``) or TF's own (``enabled=False``); on exit the previous
    state, overridden or not, comes back. Nests.

    Like :func:`override_gradient`, it switches a process-wide registry entry
    (see the module docstring for when a switch takes effect)."""
    with _lock:
        was_overridden = is_gradient_overridden()
        if enabled:
            override_gradient()
        else:
            restore_gradient()
    try:
        yield
    finally:
        with _lock:
            if was_overridden:
                override_gradient()
            else:
                restore_gradient()
