"""Test inputs shared by the TF tests and the TF-free GPU/kernel tests.

No TensorFlow here: tests/gpu runs on a machine without it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .reference import grad_image_abs_scale, grad_image_reference

BOX_KINDS = (
    "normal",  # the workloads' boxes: y1,x1 ~ U(0,0.8), h,w ~ U(0.05,0.5), clipped
    "flipped",  # y1 > y2 and/or x1 > x2
    "degenerate",  # y1 == y2 and/or x1 == x2
    "partly_outside",  # boxes straddling the [0, 1] border
    "wholly_outside",  # boxes entirely outside [0, 1]
    "unit",  # exactly [0, 0, 1, 1]
    "grid",  # coordinates on a coarse grid (0, 1/8, 0.1, 1, ...): exact hits
    "mixed",  # a mixture of all of the above
)

_GRID = np.array([0.0, 0.125, 0.1, 0.2, 0.25, 0.3, 0.5, 0.6, 0.7, 0.75, 0.9, 1.0], dtype=np.float32)


def random_boxes(rng, n, kind="normal"):
    """float32 [n, 4] boxes [y1, x1, y2, x2] of the given kind."""
    if kind == "mixed":
        kinds = [k for k in BOX_KINDS if k != "mixed"]
        picks = rng.integers(0, len(kinds), n)
        out = np.empty((n, 4), np.float32)
        for i, k in enumerate(kinds):
            sel = picks == i
            if sel.any():
                out[sel] = random_boxes(rng, int(sel.sum()), k)
        return out
    if kind == "normal":
        y1 = rng.uniform(0, 0.8, n)
        x1 = rng.uniform(0, 0.8, n)
        h = rng.uniform(0.05, 0.5, n)
        w = rng.uniform(0.05, 0.5, n)
        b = np.stack([y1, x1, np.minimum(y1 + h, 1), np.minimum(x1 + w, 1)], 1)
    elif kind == "flipped":
        b = random_boxes(rng, n, "normal").astype(np.float64)
        flip_y = rng.random(n) < 0.7
        flip_x = rng.random(n) < 0.7
        b[flip_y] = b[flip_y][:, [2, 1, 0, 3]]
        b[flip_x] = b[flip_x][:, [0, 3, 2, 1]]
    elif kind == "degenerate":
        b = rng.uniform(0, 1, (n, 4))
        which = rng.integers(0, 3, n)  # 0: y only, 1: x only, 2: both
        b[which != 1, 2] = b[which != 1, 0]
        b[which != 0, 3] = b[which != 0, 1]
    elif kind == "partly_outside":
        b = rng.uniform(-0.6, 1.6, (n, 4))
        # make sure every box straddles at least one border
        b[:, 0] = rng.uniform(-0.6, 0.4, n)
        b[:, 2] = rng.uniform(0.6, 1.6, n)
        flip = rng.random(n) < 0.3
        b[flip] = b[flip][:, [2, 3, 0, 1]]
    elif kind == "wholly_outside":
        b = rng.uniform(1.05, 3.0, (n, 4))
        sign = rng.random(n) < 0.5
        b[sign] = -b[sign] + 1.0  # entirely below 0
    elif kind == "unit":
        b = np.tile(np.array([0, 0, 1, 1], np.float64), (n, 1))
    elif kind == "grid":
        b = _GRID[rng.integers(0, len(_GRID), (n, 4))].astype(np.float64)
    else:
        raise ValueError(kind)
    return np.asarray(b, dtype=np.float32)


@dataclass
class Case:
    grads: np.ndarray  # float32 [N, ch, cw, D]
    boxes: np.ndarray  # float32 [N, 4]
    box_ind: np.ndarray  # int32 [N]
    image_size: list  # [B, H, W, D]

    def args(self):
        return self.grads, self.boxes, self.box_ind, self.image_size

    def reference(self, method, products="float64"):
        return grad_image_reference(*self.args(), method=method, products=products)

    def scale(self, method):
        return grad_image_abs_scale(*self.args(), method=method)

    @property
    def num_samples(self):
        n, ch, cw, _ = self.grads.shape
        return n * ch * cw


def make_case(
    rng, batch, height, width, depth, num_boxes, crop_h, crop_w, kind="normal", grads=None
):
    boxes = random_boxes(rng, num_boxes, kind)
    box_ind = rng.integers(0, max(batch, 1), num_boxes).astype(np.int32)
    if grads is None:
        grads = rng.standard_normal((num_boxes, crop_h, crop_w, depth)).astype(np.float32)
    return Case(grads, boxes, box_ind, [batch, height, width, depth])


def unit_box_case(num_boxes=20000):
    """The race case: boxes [0,0,1,1] on one 8x8 image, crop 8x8, D=1,
    grads all ones. Every sample hits one pixel with weight 1, so each pixel's
    exact sum is num_boxes."""
    return Case(
        np.ones((num_boxes, 8, 8, 1), np.float32),
        np.tile(np.array([0, 0, 1, 1], np.float32), (num_boxes, 1)),
        np.zeros(num_boxes, np.int32),
        [1, 8, 8, 1],
    )
