"""Output dtypes by name, bfloat16 bits, rounding and ulps (NumPy only).

Dtypes are named by strings (``"float16"``, ``"bfloat16"``, ``"float32"``,
``"float64"``); anything with a ``.name`` of those (a ``tf.DType``, a NumPy
dtype) is accepted too. bfloat16 is carried as ``uint16`` bits, so neither
TensorFlow nor ml_dtypes is needed.
"""

from __future__ import annotations

import numpy as np

DTYPES = ("float16", "bfloat16", "float32", "float64")
METHODS = ("bilinear", "nearest")
ITEMSIZE = {"float16": 2, "bfloat16": 2, "float32": 4, "float64": 8}
# Host (NumPy) storage of each output dtype; bfloat16 is carried as raw bits.
HOST_DTYPE = {
    "float16": np.dtype(np.float16),
    "bfloat16": np.dtype(np.uint16),
    "float32": np.dtype(np.float32),
    "float64": np.dtype(np.float64),
}
# (mantissa bits, smallest normal exponent) of each output type.
_FORMAT = {
    "float16": (10, -14),
    "bfloat16": (7, -126),
    "float32": (23, -126),
    "float64": (52, -1022),
}


def dtype_name(dtype) -> str:
    """``"float32"`` etc. for a name, a ``tf.DType`` or a NumPy dtype."""
    name = dtype if isinstance(dtype, str) else getattr(dtype, "name", str(dtype))
    if name not in ITEMSIZE:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    return name


def bf16_bits_to_float32(bits):
    bits = np.asarray(bits, dtype=np.uint16)
    return (bits.astype(np.uint32) << 16).view(np.float32)


def float32_to_bf16_bits(x):
    """Round float32 to bfloat16 bits, nearest even (NaN kept as a NaN)."""
    x = np.array(x, dtype=np.float32)  # a copy of any shape, 0-d included
    u = x.view(np.uint32).astype(np.uint64)
    rounded = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    nan = np.isnan(x)
    return np.where(nan, ((u >> 16) | 0x40).astype(np.uint16), rounded)


def to_float64(host, dtype):
    """Host output of ``dtype`` (bfloat16 as uint16 bits) as float64."""
    if dtype_name(dtype) == "bfloat16":
        host = np.asarray(host)
        if host.dtype != np.uint16:  # a real bfloat16 array (ml_dtypes, TF's .numpy())
            return host.astype(np.float64)
        return bf16_bits_to_float32(host).astype(np.float64)
    return np.asarray(host).astype(np.float64)


def round_to(x64, dtype):
    """float64 values rounded once to ``dtype``, returned as float64.

    bfloat16 goes through float32, as the kernels (and Eigen's conversion) do.
    """
    name = dtype_name(dtype)
    x64 = np.asarray(x64, dtype=np.float64)
    if name == "bfloat16":
        return to_float64(float32_to_bf16_bits(x64.astype(np.float32)), name)
    return x64.astype(HOST_DTYPE[name]).astype(np.float64)


def ulp(values, dtype):
    """Spacing of ``dtype`` at |values| (float64 array); at 0 and at non-finite
    values, the smallest (subnormal) spacing."""
    mant, emin = _FORMAT[dtype_name(dtype)]
    a = np.abs(np.asarray(values, dtype=np.float64))
    a = np.where(np.isfinite(a), a, 0.0)
    _, e = np.frexp(a)  # a = m * 2^e, m in [0.5, 1): floor(log2 a) = e - 1
    e = np.where(a > 0, np.maximum(e - 1, emin), emin)
    return np.ldexp(1.0, e - mant)
