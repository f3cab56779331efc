"""crop_and_resize_grad: an exact, race-free gradient of tf.image.crop_and_resize.

Public API:
  crop_and_resize_grad_image  mirror of tf.raw_ops.CropAndResizeGradImage
  OP_NAME                     the registered (namespaced) op name
  load_library                the loaded op module (loaded once, on import)
"""

from crop_and_resize_grad._loader import build_info, library_path, load_library
from crop_and_resize_grad.ops import (
    METHODS,
    OP_NAME,
    SUPPORTED_DTYPES,
    crop_and_resize_grad_image,
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
    "crop_and_resize_grad_image",
    "library_path",
    "load_library",
]
