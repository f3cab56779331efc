"""crop_and_resize_grad: an exact, race-free gradient of tf.image.crop_and_resize.

Public API:
  crop_and_resize_grad_image  mirror of tf.raw_ops.CropAndResizeGradImage
  OP_NAME                     the registered (namespaced) op name
  load_library                the loaded op module (loaded once, on import)
  crop_and_resize             tf.image.crop_and_resize with this package's image gradient
  override_gradient           make it the gradient of TF's builtin CropAndResize (process-wide)
  restore_gradient            put TF's own CropAndResize gradient back
  gradient_override           context manager for the two above
  is_gradient_overridden      whether the override is active

Importing the package also registers the gradient of the op itself
(crop_and_resize_grad.gradients), so it is twice differentiable.
"""

from crop_and_resize_grad._loader import build_info, library_path, load_library
from crop_and_resize_grad.gradients import crop_and_resize, crop_and_resize_grad_image_gradient
from crop_and_resize_grad.ops import (
    METHODS,
    OP_NAME,
    SUPPORTED_DTYPES,
    crop_and_resize_grad_image,
)
from crop_and_resize_grad.override import (
    crop_and_resize_gradient,
    gradient_override,
    is_gradient_overridden,
    override_gradient,
    restore_gradient,
)

__version__ = "0.1.0"

# Load at import so a build/TF mismatch is reported right away.
load_library()

__all__ = [
    "METHODS",
    "OP_NAME",
    "SUPPORTED_DTYPES",
    "__version__",
    "build_info",
    "crop_and_resize",
    "crop_and_resize_grad_image",
    "crop_and_resize_grad_image_gradient",
    "crop_and_resize_gradient",
    "gradient_override",
    "is_gradient_overridden",
    "library_path",
    "load_library",
    "override_gradient",
    "restore_gradient",
]
