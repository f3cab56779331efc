"""crop_and_resize_grad: an exact, race-free gradient of tf.image.crop_and_resize.

Public API:
  crop_and_resize             tf.image.crop_and_resize with this package's gradients
  crop_and_resize_grad_image  mirror of tf.raw_ops.CropAndResizeGradImage
  crop_and_resize_grad_boxes  mirror of tf.raw_ops.CropAndResizeGradBoxes (deterministic)
  override_gradient           make it the gradient of TF's builtin CropAndResize (process-wide)
  restore_gradient            put TF's own CropAndResize gradient back
  gradient_override           context manager: the override on (or off) inside, then as before
  is_gradient_overridden      whether the override is active
  build_info                  what the op library was built against
  OP_NAME                     the registered (namespaced) op name
  SUPPORTED_DTYPES            the output dtypes T
  METHODS                     the sampling methods
  __version__                 the package version

Importing the package loads the op library (a build made for another
TensorFlow fails here, with how to rebuild) and registers the gradient of the
op itself, so it is twice differentiable.
"""

from crop_and_resize_grad import _loader
from crop_and_resize_grad._loader import build_info
from crop_and_resize_grad._version import __version__
from crop_and_resize_grad.gradients import crop_and_resize
from crop_and_resize_grad.ops import (
    METHODS,
    OP_NAME,
    SUPPORTED_DTYPES,
    crop_and_resize_grad_boxes,
    crop_and_resize_grad_image,
)
from crop_and_resize_grad.override import (
    gradient_override,
    is_gradient_overridden,
    override_gradient,
    restore_gradient,
)

# Load at import so a build/TF mismatch is reported right away.
_loader.load_library()

__all__ = [
    "crop_and_resize",
    "crop_and_resize_grad_boxes",
    "crop_and_resize_grad_image",
    "override_gradient",
    "restore_gradient",
    "gradient_override",
    "is_gradient_overridden",
    "build_info",
    "OP_NAME",
    "SUPPORTED_DTYPES",
    "METHODS",
    "__version__",
]
