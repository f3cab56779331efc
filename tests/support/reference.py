"""Independent float64 NumPy reference for CropAndResizeGradImage.

The sample positions are computed in float32, operation for operation, as
specified in docs/semantics.md, so that exactly the
same samples fall inside / outside the image as in TF's kernels. Everything
after that (corner weights, accumulation) is done in float64.
"""

from __future__ import annotations

import numpy as np

_F32 = np.float32
_F64 = np.float64


def sample_coordinates(lo, hi, image_size, crop_size):
    """Image coordinates of the crop samples along one axis.

    lo, hi: float32 arrays [N] (normalized box edges along the axis).
    Returns float32 [N, crop_size].
    """
    lo = np.asarray(lo, dtype=_F32).reshape(-1, 1)
    hi = np.asarray(hi, dtype=_F32).reshape(-1, 1)
    size_m1 = _F32(image_size - 1)  # int -> float conversion, as in C++
    with np.errstate(all="ignore"):
        if crop_size > 1:
            # scale = (hi - lo) * (size - 1) / (crop - 1), left to right, float32
            scale = ((hi - lo) * size_m1) / _F32(crop_size - 1)
            idx = np.arange(crop_size, dtype=_F32).reshape(1, -1)
            # in = lo * (size - 1) + i * scale, float32 (no FMA: two roundings)
            coord = (lo * size_m1) + (idx * scale)
        else:
            # 0.5 * (lo + hi) * (size - 1): the sum in float32, the rest in
            # double (0.5 is a double literal), then converted to float32.
            s = (lo + hi).astype(_F64)
            coord = ((_F64(0.5) * s) * _F64(image_size - 1)).astype(_F32)
    return coord.astype(_F32, copy=False).reshape(lo.shape[0], crop_size)


def inside(coord, image_size):
    """NaN-safe test coord in [0, size - 1] (comparison in float32)."""
    with np.errstate(invalid="ignore"):
        return (coord >= _F32(0)) & (coord <= _F32(image_size - 1))


def round_half_away(x):
    """Round float32 values (>= 0 here, but handle both signs) half away from 0."""
    x = np.asarray(x)
    # floor(|x| + 0.5) computed in float64 is exact for float32 inputs.
    ax = np.abs(x.astype(_F64))
    return (np.sign(x.astype(_F64)) * np.floor(ax + 0.5)).astype(np.int64)


def _axis_taps(coord, valid, method):
    """Per-sample (lo index, hi index, weight of hi) along one axis.

    coord: float32 [N, C]; valid: bool [N, C]. Invalid entries get index 0 and
    are masked later. Returns int64, int64, float64 arrays of shape [N, C].
    """
    safe = np.where(valid, coord, _F32(0))
    if method == "bilinear":
        lo_f = np.floor(safe)  # float32
        hi_f = np.ceil(safe)
        frac = (safe - lo_f).astype(_F64)  # exact in float32
        return lo_f.astype(np.int64), hi_f.astype(np.int64), frac
    if method == "nearest":
        idx = round_half_away(safe)
        return idx, idx, np.zeros(safe.shape, dtype=_F64)
    raise ValueError(f"unknown method {method!r}")


def _scatter(out_flat, rows, samples, weights, g):
    """out_flat[rows[i], :] += weights[i] * g[samples[i], :], all in float64.

    out_flat: float64 [P, D]; rows, samples: int64 [M]; weights: float64 [M];
    g: float64 [S, D]. Duplicated rows are accumulated (np.bincount, one
    channel at a time, is far faster than np.add.at on 2-D values).
    """
    if rows.size == 0:
        return
    num_rows = out_flat.shape[0]
    g_t = np.ascontiguousarray(g.T)  # [D, S]
    for d in range(out_flat.shape[1]):
        out_flat[:, d] += np.bincount(rows, weights=weights * g_t[d][samples], minlength=num_rows)


def grad_image_reference(grads, boxes, box_ind, image_size, method="bilinear", products="float64"):
    """float64 [B, H, W, D] gradient of crop_and_resize w.r.t. the image.

    grads: [N, ch, cw, D] (converted to float32 first, as the op's input is
    float32); boxes: [N, 4] float32 [y1, x1, y2, x2]; box_ind: [N] int;
    image_size: [B, H, W, D]. box_ind values must be in [0, B).

    products="float64" (default): each corner receives w * g with the weight
    w = (1-ly)(1-lx) etc. computed in float64 from the float32 lerps.
    products="float32": emulates TF's kernel, which forms each contribution in
    float32 as (1-lx) * ((1-ly) * g) (and lx * (ly * g) etc.); the float32
    contributions are then accumulated in float64. TF's float64 output equals
    this up to float64 summation-order effects.
    """
    grads = np.asarray(grads, dtype=_F32)
    boxes = np.asarray(boxes, dtype=_F32).reshape(-1, 4)
    box_ind = np.asarray(box_ind, dtype=np.int64).reshape(-1)
    batch, height, width, depth = (int(v) for v in image_size)
    num_boxes, crop_h, crop_w, gdepth = grads.shape
    assert gdepth == depth, (gdepth, depth)
    assert boxes.shape[0] == num_boxes and box_ind.shape[0] == num_boxes
    assert crop_h > 0 and crop_w > 0 and height > 0 and width > 0
    assert products in ("float64", "float32"), products
    if num_boxes:
        assert box_ind.min() >= 0 and box_ind.max() < batch, "box_ind out of range"

    out = np.zeros((batch * height * width, depth), dtype=_F64)
    if num_boxes == 0 or depth == 0 or batch == 0:
        return out.reshape(batch, height, width, depth)

    in_y = sample_coordinates(boxes[:, 0], boxes[:, 2], height, crop_h)  # [N, ch]
    in_x = sample_coordinates(boxes[:, 1], boxes[:, 3], width, crop_w)  # [N, cw]
    vy = inside(in_y, height)
    vx = inside(in_x, width)
    ty, by, ly = _axis_taps(in_y, vy, method)
    lx_i, rx_i, lx = _axis_taps(in_x, vx, method)

    # Expand to [N, ch, cw].
    valid = vy[:, :, None] & vx[:, None, :]
    n_idx, y_idx, x_idx = np.nonzero(valid)
    if n_idx.size == 0:
        return out.reshape(batch, height, width, depth)
    g32 = grads[n_idx, y_idx, x_idx, :]  # [M, D] float32
    g = g32.astype(_F64)
    base = box_ind[n_idx] * (height * width)
    ty_s, by_s, ly_s = ty[n_idx, y_idx], by[n_idx, y_idx], ly[n_idx, y_idx]
    lx_s, rx_s, wx_s = lx_i[n_idx, x_idx], rx_i[n_idx, x_idx], lx[n_idx, x_idx]

    samples = np.arange(n_idx.size, dtype=np.int64)
    if method == "nearest":
        rows = base + ty_s * width + lx_s
        _scatter(out, rows, samples, np.ones(rows.shape, dtype=_F64), g)
    else:
        corners = (
            (ty_s, lx_s, (1.0 - ly_s) * (1.0 - wx_s)),
            (ty_s, rx_s, (1.0 - ly_s) * wx_s),
            (by_s, lx_s, ly_s * (1.0 - wx_s)),
            (by_s, rx_s, ly_s * wx_s),
        )
        rows = np.concatenate([base + yy * width + xx for yy, xx, _ in corners])
        if products == "float64":
            weights = np.concatenate([w for _, _, w in corners])
            _scatter(out, rows, np.tile(samples, 4), weights, g)
        else:
            # float32 contributions, formed exactly as TF's kernel does.
            ly32 = ly_s.astype(_F32)[:, None]
            lx32 = wx_s.astype(_F32)[:, None]
            one = _F32(1)
            dtop = (one - ly32) * g32
            dbottom = ly32 * g32
            contribs = (
                (one - lx32) * dtop,
                lx32 * dtop,
                (one - lx32) * dbottom,
                lx32 * dbottom,
            )
            vals = np.concatenate(contribs).astype(_F64)  # [4M, D]
            _scatter(
                out,
                rows,
                np.arange(rows.size, dtype=np.int64),
                np.ones(rows.size, dtype=_F64),
                vals,
            )
    return out.reshape(batch, height, width, depth)


def grad_image_abs_scale(grads, boxes, box_ind, image_size, method="bilinear"):
    """Per-output-element sum of |contributions| (reference applied to |grads|)."""
    return grad_image_reference(
        np.abs(np.asarray(grads, dtype=_F32)), boxes, box_ind, image_size, method
    )


# --------------------------------------------------------------------------- #
# The boxes gradient (docs/semantics.md, "Boxes gradient")
# --------------------------------------------------------------------------- #
def _edge_weights(image_size, crop_size):
    """d in / d (lo, hi) edge for each crop index: float64 [crop_size] each."""
    extent = _F64(image_size - 1)
    if crop_size > 1:
        hi = np.arange(crop_size, dtype=_F64) * (extent / _F64(crop_size - 1))
        return extent - hi, hi
    half = np.full(1, 0.5 * extent)
    return half, half


def _flush_subnormal(x):
    """float32 subnormals read as signed zeros (as under DAZ)."""
    x = np.asarray(x, dtype=_F32)
    tiny = (x != 0) & (np.abs(x) < np.finfo(_F32).tiny)
    return np.where(tiny, np.copysign(_F32(0), x), x)


def grad_boxes_reference(grads, image, boxes, box_ind, with_scale=False):
    """float64 ``[N, 4]`` gradient of crop_and_resize w.r.t. the boxes.

    grads: ``[N, ch, cw, D]`` (converted to float32 first); image:
    ``[B, H, W, D]`` of any float dtype (float16/bfloat16 values are exact in
    float64; float32 subnormals are read as zero); boxes: float32 ``[N, 4]``;
    box_ind: ``[N]`` in ``[0, B)``. Sample positions in float32 as the op;
    everything else in float64: per sample and channel, with the bilinear taps
    (clamped to size - 1) and the image values TL, TR, BL, BR there,

        dy = ((1 - lx)(BL - TL) + lx (BR - TR)) g
        dx = ((1 - ly)(TR - TL) + ly (BR - BL)) g

    times ``d in_y / d(y1, y2)`` and ``d in_x / d(x1, x2)``. The terms are
    summed with ``np.sum`` (not the op's order). With ``with_scale`` also
    returns the sum of the terms' magnitudes per output (for error bounds).
    """
    g64 = _flush_subnormal(grads).astype(_F64)
    img = np.asarray(image)
    if img.dtype == np.float32:
        img = _flush_subnormal(img)
    img = img.astype(_F64)
    boxes = _flush_subnormal(np.asarray(boxes, dtype=_F32).reshape(-1, 4))
    box_ind = np.asarray(box_ind, dtype=np.int64).reshape(-1)
    num_boxes, crop_h, crop_w, depth = g64.shape
    _, height, width, idepth = img.shape
    assert idepth == depth, (idepth, depth)
    out = np.zeros((num_boxes, 4), _F64)
    scale = np.zeros((num_boxes, 4), _F64)
    in_y = sample_coordinates(boxes[:, 0], boxes[:, 2], height, crop_h)
    in_x = sample_coordinates(boxes[:, 1], boxes[:, 3], width, crop_w)
    vy, vx = inside(in_y, height), inside(in_x, width)
    wy = _edge_weights(height, crop_h)
    wx = _edge_weights(width, crop_w)
    for n in range(num_boxes):
        ys, xs = np.nonzero(vy[n])[0], np.nonzero(vx[n])[0]
        if ys.size == 0 or xs.size == 0 or depth == 0:
            continue
        cy, cx = in_y[n, ys], in_x[n, xs]
        top = np.minimum(np.floor(cy).astype(np.int64), height - 1)
        bottom = np.minimum(np.ceil(cy).astype(np.int64), height - 1)
        left = np.minimum(np.floor(cx).astype(np.int64), width - 1)
        right = np.minimum(np.ceil(cx).astype(np.int64), width - 1)
        ly = (cy - np.floor(cy)).astype(_F64)[:, None, None]
        lx = (cx - np.floor(cx)).astype(_F64)[None, :, None]
        im = img[box_ind[n]]
        tl, tr = im[top][:, left], im[top][:, right]
        bl, br = im[bottom][:, left], im[bottom][:, right]
        g = g64[n][ys][:, xs]
        with np.errstate(all="ignore"):
            dy = ((1 - lx) * (bl - tl) + lx * (br - tr)) * g
            dx = ((1 - ly) * (tr - tl) + ly * (br - bl)) * g
            iy = ys if crop_h > 1 else np.zeros_like(ys)
            ix = xs if crop_w > 1 else np.zeros_like(xs)
            terms = (
                dy * wy[0][iy, None, None],
                dx * wx[0][None, ix, None],
                dy * wy[1][iy, None, None],
                dx * wx[1][None, ix, None],
            )
        for k, t in enumerate(terms):
            out[n, k] = np.sum(t)
            scale[n, k] = np.sum(np.abs(t))
    return (out, scale) if with_scale else out
