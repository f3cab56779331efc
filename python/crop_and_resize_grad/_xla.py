"""Lowerings of the crop_and_resize family to TF ops that XLA compiles.

TF has no XLA kernel for ``CropAndResize``, ``CropAndResizeGradImage``,
``CropAndResizeGradBoxes``, nor for this package's ops, so a
``tf.function(jit_compile=True)`` (or a Keras model compiled with
``jit_compile=True``) that contains any of them fails to compile. The public
functions (``crop_and_resize``, ``crop_and_resize_grad_image``,
``crop_and_resize_grad_boxes``) call the lowerings below instead of the ops
while a graph is traced for XLA (:func:`in_xla_context`); everywhere else they
use the ops. Everything here is private; docs/xla.md describes what compiles,
what it costs and where results can differ from the kernels.

Semantics follow docs/semantics.md. One XLA-specific hazard decides the
arithmetic: XLA:CPU compiles with LLVM's FP-contraction enabled, so on a CPU
with FMA ``a * b + c`` becomes one fused multiply-add (measured: about a
quarter of float32 results change). A plain product, a float64 product cast
back to float32 (LLVM narrows it to a float32 multiply, which is exact to do)
and XLA's optimization barrier all still fused in our measurements. So every
float32 product whose result is added to something is formed by
:func:`_mul32`: the exact product in float64, rounded to float32 precision with
integer operations, which LLVM cannot see through. The adds then see no
multiply and stay separate roundings, as in TF's kernels. float64 products
have no wider type; they may be fused (docs/xla.md says where that shows).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from tensorflow.python.ops import control_flow_util

# Lanes of the boxes gradient's fixed summation order (docs/semantics.md).
_BOXES_LANES = 256

# Up to this many terms per lane the lane sums are unrolled adds (fused by
# XLA); above, a while loop.
_UNROLLED_STEPS = 64

# Smallest normal float32 and float64: inputs below are read as zero by the
# boxes-gradient kernels (DAZ, as on the CPU).
_F32_MIN_NORMAL = float(np.finfo(np.float32).tiny)
_F64_MIN_NORMAL = float(np.finfo(np.float64).tiny)

# Which form the image gradient uses in XLA: "auto", "scatter" or "matmul"
# (tests and benchmarks set it; see _image_grad_form).
_IMAGE_GRAD_FORM = "auto"


def in_xla_context() -> bool:
    """True while a graph is traced for XLA (``jit_compile=True``, also in its
    gradient graph and in plain tf.functions nested inside it)."""
    if tf.executing_eagerly():
        return False
    return bool(control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph()))


# ---------------------------------------------------------------------------
# Arithmetic that XLA:CPU cannot fuse into FMAs.


def _round_to_f32(p64: tf.Tensor) -> tf.Tensor:
    """float64 -> float32, rounded to nearest even through integer operations.

    Rounds the 52-bit significand to float32's 23 bits in the bit pattern
    (carries move into the exponent, as they should), after which the
    conversion to float32 is exact. The result is the float32 nearest ``p64``
    except where it is subnormal in float32 (rounded at full precision, then
    converted; under flush-to-zero both become zero).
    """
    bits = tf.bitcast(p64, tf.int64)
    odd = tf.bitwise.bitwise_and(tf.bitwise.right_shift(bits, 29), 1)
    bits = bits + (0x0FFFFFFF + odd)
    bits = tf.bitwise.bitwise_and(bits, ~0x1FFFFFFF)
    return tf.cast(tf.bitcast(bits, tf.float64), tf.float32)


def _mul32(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    """float32 ``a * b``, rounded once, in a form that is never fused with a
    following add (the float64 product of two float32 values is exact)."""
    return _round_to_f32(tf.cast(a, tf.float64) * tf.cast(b, tf.float64))


def _div32(a: tf.Tensor, b) -> tf.Tensor:
    """float32 ``a / b``, correctly rounded. XLA rewrites a division by a
    constant as a multiplication by its reciprocal (measured: about 18% of
    float32 results change); this divides in float64 and rounds once more.
    Even with the reciprocal rewrite in float64 (error a few 2^-53), the
    rounded result is the float32 quotient: a quotient of two float32 values
    is never that close to a float32 rounding boundary."""
    return _round_to_f32(tf.cast(a, tf.float64) / tf.cast(b, tf.float64))


def _flush_subnormal(v: tf.Tensor, min_normal: float) -> tf.Tensor:
    """Values below ``min_normal`` in magnitude become zeros of their sign."""
    return tf.where(tf.abs(v) < min_normal, v * 0, v)


# ---------------------------------------------------------------------------
# Sample positions and taps.


def _static_or_dynamic(tensor: tf.Tensor, index: int):
    """Dimension ``index`` of ``tensor``: a Python int when static."""
    dim = tensor.shape[index]
    return int(dim) if dim is not None else tf.shape(tensor, out_type=tf.int64)[index]


def _positions(lo, hi, size, crop):
    """float32 ``[N, crop]`` image coordinates of one axis (docs/semantics.md).

    lo, hi: float32 ``[N]``; size: image size along the axis (int or int64
    scalar tensor); crop: crop size (Python int).
    """
    size64 = tf.cast(size, tf.int64)
    extent = tf.cast(size64 - 1, tf.float32)
    lo = lo[:, None]
    hi = hi[:, None]
    if crop > 1:
        scale = _div32(_mul32(hi - lo, extent), np.float32(crop - 1))
        index = tf.range(crop, dtype=tf.float32)[None, :]
        return _mul32(lo, extent) + _mul32(index, scale)
    # 0.5 * double(lo + hi) * double(size - 1), one rounding to float32.
    centre = 0.5 * tf.cast(lo + hi, tf.float64) * tf.cast(size64 - 1, tf.float64)
    return _round_to_f32(centre)


def _inside(coord, size):
    """``0 <= coord <= float32(size - 1)``; NaN is outside."""
    extent = tf.cast(tf.cast(size, tf.int64) - 1, tf.float32)
    return tf.logical_and(coord >= 0.0, coord <= extent)


def _clamp_tap(tap_f32, size):
    """A float32 tap (an integer value in ``[0, float32(size - 1)]``) as int64,
    clamped to ``size - 1`` (the tap clamp for sizes above 2^24)."""
    return tf.minimum(tf.cast(tap_f32, tf.int64), tf.cast(size, tf.int64) - 1)


def _axis(lo, hi, size, crop, method):
    """One axis of all samples: ``(valid, lo_tap, hi_tap, frac)``, ``[N, crop]``.

    Outside samples get coordinate 0 (taps 0, frac 0) and ``valid`` False.
    Nearest gives ``lo_tap == hi_tap`` and ``frac == 0``.
    """
    coord = _positions(lo, hi, size, crop)
    valid = _inside(coord, size)
    safe = tf.where(valid, coord, tf.zeros_like(coord))
    floor = tf.floor(safe)
    frac = safe - floor  # exact
    if method == "nearest":
        # roundf: halves away from zero (coordinates are >= 0 here).
        nearest = floor + tf.cast(frac >= 0.5, tf.float32)
        tap = _clamp_tap(nearest, size)
        return valid, tap, tap, tf.zeros_like(frac)
    return valid, _clamp_tap(floor, size), _clamp_tap(tf.math.ceil(safe), size), frac


def _tap_indices(box_ind, rows, cols):
    """``[N, ch, cw, 3]`` int64 (batch, row, column) gather/scatter indices.

    box_ind: ``[N]``; rows: ``[N, ch]``; cols: ``[N, cw]``.
    """
    n = tf.shape(rows, out_type=tf.int64)[0]
    ch = tf.shape(rows, out_type=tf.int64)[1]
    cw = tf.shape(cols, out_type=tf.int64)[1]
    full = tf.stack([n, ch, cw])
    b = tf.broadcast_to(tf.cast(box_ind, tf.int64)[:, None, None], full)
    y = tf.broadcast_to(rows[:, :, None], full)
    x = tf.broadcast_to(cols[:, None, :], full)
    return tf.stack([b, y, x], axis=-1)


def _safe_box_ind(box_ind, batch):
    """box_ind clamped into ``[0, batch)``: nothing is read or written out of
    bounds (the kernels reject such indices; XLA cannot raise at run time)."""
    batch = tf.cast(batch, tf.int64)
    return tf.clip_by_value(tf.cast(box_ind, tf.int64), 0, tf.maximum(batch - 1, 0))


# ---------------------------------------------------------------------------
# Forward: TF's CropAndResize.


@tf.autograph.experimental.do_not_convert
def crop_and_resize(image, boxes, box_ind, crop_size, method="bilinear", extrapolation_value=0.0):
    """TF's ``CropAndResize`` (float32 result) for a float image, in TF ops.

    crop_size: a pair of Python ints (static under XLA).
    """
    ch, cw = (int(v) for v in crop_size)
    boxes = tf.convert_to_tensor(boxes, tf.float32)
    height = _static_or_dynamic(image, 1)
    width = _static_or_dynamic(image, 2)
    box_ind = _safe_box_ind(box_ind, tf.shape(image, out_type=tf.int64)[0])
    vy, top, bottom, ly = _axis(boxes[:, 0], boxes[:, 2], height, ch, method)
    vx, left, right, lx = _axis(boxes[:, 1], boxes[:, 3], width, cw, method)
    valid = tf.logical_and(vy[:, :, None], vx[:, None, :])[..., None]  # [N, ch, cw, 1]

    def at(rows, cols):
        return tf.cast(tf.gather_nd(image, _tap_indices(box_ind, rows, cols)), tf.float32)

    if method == "nearest":
        out = at(top, left)
    else:
        tl, tr, bl, br = at(top, left), at(top, right), at(bottom, left), at(bottom, right)
        lx4 = lx[:, None, :, None]
        ly4 = ly[:, :, None, None]
        # TF: top = TL + (TR - TL) * lx, bottom likewise, out = top + (bottom - top) * ly.
        top_v = tl + _mul32(tr - tl, lx4)
        bottom_v = bl + _mul32(br - bl, lx4)
        out = top_v + _mul32(bottom_v - top_v, ly4)
    fill = tf.cast(extrapolation_value, tf.float32)
    return tf.where(valid, out, fill)


# ---------------------------------------------------------------------------
# Image gradient.


def _on_gpu() -> bool:
    return bool(tf.config.list_logical_devices("GPU"))


def _image_grad_form() -> str:
    """The form of the image gradient: scatter-add (default), or the separable
    matmul form on a GPU under op determinism (see docs/xla.md)."""
    if _IMAGE_GRAD_FORM != "auto":
        return _IMAGE_GRAD_FORM
    from tensorflow.python.framework import config as tf_config

    if _on_gpu() and tf_config.is_op_determinism_enabled():
        return "matmul"
    return "scatter"


@tf.autograph.experimental.do_not_convert
def crop_and_resize_grad_image(grads, boxes, box_ind, image_size, T, method="bilinear"):
    """``CropAndResizeGradImage`` in TF ops: ``T`` ``[B, H, W, D]``.

    image_size: four Python ints or an int32/int64 ``[4]`` tensor (a compile-time
    constant under XLA).
    """
    T = tf.as_dtype(T)
    grads = tf.convert_to_tensor(grads, tf.float32)
    boxes = tf.convert_to_tensor(boxes, tf.float32)
    static = isinstance(image_size, (list, tuple)) and all(
        isinstance(v, (int, np.integer)) for v in image_size
    )
    if static:
        batch, height, width, depth = (int(v) for v in image_size)
        out_shape = tf.constant([batch, height, width, depth], tf.int64)
    else:
        out_shape = tf.cast(image_size, tf.int64)
        batch, height, width, depth = (out_shape[i] for i in range(4))
    ch, cw = int(grads.shape[1]), int(grads.shape[2])
    box_ind = _safe_box_ind(box_ind, batch)
    vy, top, bottom, ly = _axis(boxes[:, 0], boxes[:, 2], height, ch, method)
    vx, left, right, lx = _axis(boxes[:, 1], boxes[:, 3], width, cw, method)
    acc = tf.float64 if T == tf.float64 else tf.float32
    if _image_grad_form() == "matmul":
        out = _grad_image_matmul(
            grads, box_ind, out_shape, vy, top, bottom, ly, vx, left, right, lx, acc
        )
    else:
        out = _grad_image_scatter(
            grads, box_ind, out_shape, vy, top, bottom, ly, vx, left, right, lx, acc, method
        )
    return tf.cast(out, T)


def _grad_image_scatter(
    grads, box_ind, out_shape, vy, top, bottom, ly, vx, left, right, lx, acc, method
):
    """Gathers of nothing, one scatter-add of all contributions, laid out in
    TF's order (box, row, column, corner TL TR BL BR): XLA:CPU applies a
    scatter's updates in order, so float32 sums are TF's."""
    valid = tf.logical_and(vy[:, :, None], vx[:, None, :])[..., None]
    neg_zero = tf.constant(-0.0, acc)  # x + -0.0 == x for every x, -0.0 included
    if method == "nearest":
        idx = _tap_indices(box_ind, top, left)
        upd = tf.where(valid, tf.cast(grads, acc), neg_zero)
        return tf.tensor_scatter_nd_add(tf.zeros(out_shape, acc), idx, upd)
    g = grads
    ly4 = ly[:, :, None, None]
    lx4 = lx[:, None, :, None]
    if acc == tf.float32:
        # TF: dtop = (1 - ly) * g, dbottom = ly * g; corners (1 - lx) * dtop, ...
        dtop = _mul32(1.0 - ly4, g)
        dbottom = _mul32(ly4, g)
        wl, wr = 1.0 - lx4, lx4
        parts = [_mul32(wl, dtop), _mul32(wr, dtop), _mul32(wl, dbottom), _mul32(wr, dbottom)]
    else:
        g64 = tf.cast(g, tf.float64)
        ly64, lx64 = tf.cast(ly4, tf.float64), tf.cast(lx4, tf.float64)
        dtop = (1.0 - ly64) * g64
        dbottom = ly64 * g64
        parts = [(1.0 - lx64) * dtop, lx64 * dtop, (1.0 - lx64) * dbottom, lx64 * dbottom]
    upd = tf.stack([tf.where(valid, p, neg_zero) for p in parts], axis=3)  # [N, ch, cw, 4, D]
    idx = tf.stack(
        [
            _tap_indices(box_ind, top, left),
            _tap_indices(box_ind, top, right),
            _tap_indices(box_ind, bottom, left),
            _tap_indices(box_ind, bottom, right),
        ],
        axis=3,
    )  # [N, ch, cw, 4, 3]
    return tf.tensor_scatter_nd_add(tf.zeros(out_shape, acc), idx, upd)


def _axis_matrix(valid, lo_tap, hi_tap, frac, size, acc):
    """``[N, crop, size]`` interpolation weights of one axis: ``1 - frac`` at
    the lower tap, ``frac`` at the upper one (summed where they coincide), zero
    rows for outside samples."""
    f = tf.cast(frac, acc)
    lo = tf.one_hot(lo_tap, tf.cast(size, tf.int32), dtype=acc) * (1.0 - f)[..., None]
    hi = tf.one_hot(hi_tap, tf.cast(size, tf.int32), dtype=acc) * f[..., None]
    return tf.where(valid[..., None], lo + hi, tf.zeros((), acc))


def _grad_image_matmul(grads, box_ind, out_shape, vy, top, bottom, ly, vx, left, right, lx, acc):
    """The separable form: per box ``Wy^T g Wx`` (two small matmuls), summed
    into its image by a third contraction over (box, crop column). No scatter:
    deterministic wherever matmuls are, but the sums are not in TF's order and
    the cost grows with ``B * H * W * D * N * cw``."""
    batch, height, width = out_shape[0], out_shape[1], out_shape[2]
    wy = _axis_matrix(vy, top, bottom, ly, height, acc)  # [N, ch, H]
    wx = _axis_matrix(vx, left, right, lx, width, acc)  # [N, cw, W]
    g = tf.cast(grads, acc)
    t1 = tf.einsum("nyh,nyxd->nhxd", wy, g)  # [N, H, cw, D]
    onehot = tf.one_hot(box_ind, tf.cast(batch, tf.int32), dtype=acc)  # [N, B]
    per_image = tf.einsum("nb,nxw->bnxw", onehot, wx)  # [B, N, cw, W]
    return tf.einsum("nhxd,bnxw->bhwd", t1, per_image)


# ---------------------------------------------------------------------------
# Boxes gradient.


def _edge_weights(size, crop):
    """float64 ``(lo, hi)`` ``[crop]`` derivatives of the coordinates w.r.t. the
    two edges of one axis (docs/semantics.md): in NumPy when ``size`` is static."""
    if isinstance(size, int):
        extent = np.float64(size - 1)
        if crop > 1:
            hi = np.arange(crop, dtype=np.float64) * (extent / np.float64(crop - 1))
            lo = extent - hi
        else:
            lo = hi = np.full([1], 0.5 * extent)
        return tf.constant(lo), tf.constant(hi)
    extent = tf.cast(size - 1, tf.float64)
    if crop > 1:
        hi = tf.range(crop, dtype=tf.float64) * (extent / np.float64(crop - 1))
        lo = extent - hi
    else:
        lo = hi = tf.fill([1], 0.5 * extent)
    return lo, hi


@tf.autograph.experimental.do_not_convert
def crop_and_resize_grad_boxes(grads, image, boxes, box_ind):
    """The boxes gradient (bilinear formula for both methods) in TF ops:
    float32 ``[N, 4]``, summed in the kernels' fixed float64 order."""
    grads = tf.convert_to_tensor(grads, tf.float32)
    boxes = _flush_subnormal(tf.convert_to_tensor(boxes, tf.float32), _F32_MIN_NORMAL)
    height = _static_or_dynamic(image, 1)
    width = _static_or_dynamic(image, 2)
    n = tf.shape(grads, out_type=tf.int64)[0]
    ch, cw = int(grads.shape[1]), int(grads.shape[2])
    box_ind = _safe_box_ind(box_ind, tf.shape(image, out_type=tf.int64)[0])
    vy, top, bottom, ly = _axis(boxes[:, 0], boxes[:, 2], height, ch, "bilinear")
    vx, left, right, lx = _axis(boxes[:, 1], boxes[:, 3], width, cw, "bilinear")
    valid = tf.logical_and(vy[:, :, None], vx[:, None, :])[..., None]

    def value(t):
        if t.dtype == tf.float16:
            return tf.cast(t, tf.float64)  # exact; half subnormals are float32 normals
        if t.dtype == tf.float64:
            return _flush_subnormal(t, _F64_MIN_NORMAL)
        return tf.cast(_flush_subnormal(tf.cast(t, tf.float32), _F32_MIN_NORMAL), tf.float64)

    def at(rows, cols):
        return value(tf.gather_nd(image, _tap_indices(box_ind, rows, cols)))

    tl, tr, bl, br = at(top, left), at(top, right), at(bottom, left), at(bottom, right)
    ly4 = tf.cast(ly, tf.float64)[:, :, None, None]
    lx4 = tf.cast(lx, tf.float64)[:, None, :, None]
    g = value(grads)
    gy = ((1.0 - lx4) * (bl - tl) + lx4 * (br - tr)) * g
    gx = ((1.0 - ly4) * (tr - tl) + ly4 * (br - bl)) * g
    wy_lo, wy_hi = _edge_weights(height, ch)
    wx_lo, wx_hi = _edge_weights(width, cw)
    wy_lo, wy_hi = wy_lo[None, :, None, None], wy_hi[None, :, None, None]
    wx_lo, wx_hi = wx_lo[None, None, :, None], wx_hi[None, None, :, None]
    neg_zero = tf.constant(-0.0, tf.float64)
    terms = tf.stack(
        [tf.where(valid, t, neg_zero) for t in (gy * wy_lo, gx * wx_lo, gy * wy_hi, gx * wx_hi)],
        axis=1,
    )  # [N, 4, ch, cw, D]
    depth = _static_or_dynamic(grads, 3)
    count = ch * cw * depth  # terms per box and coordinate
    terms = tf.reshape(terms, tf.stack([n, 4, tf.constant(-1, tf.int64)]))
    if isinstance(count, int):
        steps = max(1, -(-count // _BOXES_LANES))
        pad = steps * _BOXES_LANES - count
    else:
        steps = (count + _BOXES_LANES - 1) // _BOXES_LANES
        steps = tf.maximum(steps, 1)
        pad = steps * _BOXES_LANES - count
    terms = tf.pad(terms, [[0, 0], [0, 0], [0, pad]], constant_values=-0.0)
    terms = tf.reshape(terms, tf.stack([n, 4, tf.cast(steps, tf.int64), _BOXES_LANES]))
    # Lane l adds terms l, l + 256, l + 512, ... in that order, from +0.0.
    if isinstance(steps, int) and steps <= _UNROLLED_STEPS:
        # A chain of adds, which XLA fuses into one loop in this exact order.
        lanes = tf.zeros(tf.stack([n, 4, _BOXES_LANES]), tf.float64)
        for i in range(steps):
            lanes = lanes + terms[:, :, i, :]
    else:
        terms = tf.transpose(terms, [2, 0, 1, 3])  # [steps, N, 4, lanes]

        def body(i, acc):
            return i + 1, acc + terms[i]

        _, lanes = tf.while_loop(
            lambda i, acc: i < steps,
            body,
            (
                tf.constant(0, steps.dtype if hasattr(steps, "dtype") else tf.int32),
                tf.zeros(tf.stack([n, 4, _BOXES_LANES]), tf.float64),
            ),
        )
    stride = _BOXES_LANES // 2
    while stride:
        lanes = lanes[..., :stride] + lanes[..., stride : 2 * stride]
        stride //= 2
    return tf.cast(lanes[..., 0], tf.float32)
