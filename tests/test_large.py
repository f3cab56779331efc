"""Outputs with more than 2^31 and 2^32 elements (opt-in: CRG_TEST_LARGE=1).

The kernel indexes with int64 everywhere, so the only limit on the output is
memory (and int64: an output whose element count overflows int64 is rejected
with InvalidArgument). These tests write outputs of 2^31 + 98,305 elements
(float16, 4 GiB) and 2^32 + 131,073 elements (bfloat16, 8 GiB) with a few
boxes, some of them on the last image rows, i.e. at flat indices past 2^31 and
2^32. They check, against a float64 reference computed only for the touched
windows, that:
  - every touched window has the reference values (rounded once to T);
  - the whole output has exactly as many non-zero elements as those windows
    (nothing was written elsewhere, e.g. at an index wrapped to 32 bits).

Each case runs in a fresh subprocess (TF's plain CPU allocator, so the memory
is returned at once) and is skipped when CRG_TEST_LARGE is not 1 or when
/proc/meminfo's MemAvailable is below the output size plus 3 GiB.

    CRG_TEST_LARGE=1 PYTHONPATH=python python3 -m pytest -q tests/test_large.py
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from helpers import describe_proc, run_python

GIB = 2**30
ENABLED = os.environ.get("CRG_TEST_LARGE") == "1"

# name -> (image_size, dtype); both have few boxes, see BOXES.
CASES = {
    "past_2^31_float16": ([1, 65537, 32769, 1], "float16"),
    "past_2^32_bfloat16": ([1, 65537, 65537, 1], "bfloat16"),
}
ITEMSIZE = {"float16": 2, "bfloat16": 2}
# [y1, x1, y2, x2]: two boxes on the last rows (flat indices past 2^31 / 2^32),
# one flipped; one box at the top-left (small indices, where a 32-bit
# wrap-around would land); one wholly outside.
BOXES = np.array(
    [
        [0.99990, 0.50, 1.00, 0.90],
        [1.00, 0.999, 0.99993, 0.20],
        [0.0, 0.0, 0.00004, 0.0002],
        [1.5, 0.2, 1.7, 0.4],
    ],
    np.float32,
)
CROP = (5, 7)


def mem_available_bytes():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def touched(image_size, method):
    """Per box: the sample taps (rows, cols, weights), in float64."""
    from support.reference import inside, round_half_away, sample_coordinates

    _, H, W, _ = image_size
    in_y = sample_coordinates(BOXES[:, 0], BOXES[:, 2], H, CROP[0])
    in_x = sample_coordinates(BOXES[:, 1], BOXES[:, 3], W, CROP[1])
    vy, vx = inside(in_y, H), inside(in_x, W)
    taps = []
    for n in range(len(BOXES)):
        for y in range(CROP[0]):
            for x in range(CROP[1]):
                if not (vy[n, y] and vx[n, x]):
                    continue
                cy, cx = in_y[n, y], in_x[n, x]
                if method == "nearest":
                    taps.append((n, y, x, int(round_half_away(cy)), int(round_half_away(cx)), 1.0))
                    continue
                top, left = int(np.floor(cy)), int(np.floor(cx))
                bottom, right = int(np.ceil(cy)), int(np.ceil(cx))
                ly, lx = float(cy - np.float32(top)), float(cx - np.float32(left))
                taps += [
                    (n, y, x, top, left, (1 - ly) * (1 - lx)),
                    (n, y, x, top, right, (1 - ly) * lx),
                    (n, y, x, bottom, left, ly * (1 - lx)),
                    (n, y, x, bottom, right, ly * lx),
                ]
    return taps


def run_case(name, method):
    """Runs in the subprocess; returns a JSON-able summary."""
    import time

    import crop_and_resize_grad as crg
    import ml_dtypes
    import tensorflow as tf

    image_size, dtype = CASES[name]
    _, H, W, _ = image_size
    np_dtype = np.float16 if dtype == "float16" else ml_dtypes.bfloat16
    rng = np.random.default_rng(7)
    grads = rng.uniform(0.5, 1.5, (len(BOXES), *CROP, 1)).astype(np.float32)
    box_ind = np.zeros(len(BOXES), np.int32)

    # Reference for the touched pixels only: a dict (y, x) -> value.
    ref = {}
    for n, y, x, row, col, w in touched(image_size, method):
        ref[(row, col)] = ref.get((row, col), 0.0) + w * float(grads[n, y, x, 0])
    t0 = time.time()
    out = crg.crop_and_resize_grad_image(grads, BOXES, box_ind, image_size, T=dtype, method=method)
    seconds = time.time() - t0
    assert out.shape == tuple(image_size), out.shape

    # Every touched window: the bounding box of each box's taps (+1 margin).
    bad, checked, max_flat = [], 0, 0
    expected_nonzero = 0
    rows = sorted({r for r, _ in ref})
    # Group pixels by row band to slice a few windows.
    windows = []
    for r0 in rows:
        if windows and r0 <= windows[-1][1] + 2:
            windows[-1][1] = max(windows[-1][1], r0)
        else:
            windows.append([r0, r0])
    for r0, r1 in windows:
        cols = [c for (r, c) in ref if r0 <= r <= r1]
        c0, c1 = max(min(cols) - 1, 0), min(max(cols) + 2, W)
        ra, rb = max(r0 - 1, 0), min(r1 + 2, H)
        got = out[0, ra:rb, c0:c1, 0].numpy().astype(np.float64)
        want = np.zeros_like(got)
        for (r, c), v in ref.items():
            if ra <= r < rb and c0 <= c < c1:
                want[r - ra, c - c0] = v
        want_t = want.astype(np_dtype).astype(np.float64)
        ulp = np.abs(want_t) * 2.0 ** (-10 if dtype == "float16" else -7) + 1e-30
        diff = np.abs(got - want_t) > ulp
        if diff.any():
            i, j = np.argwhere(diff)[0]
            bad.append(f"pixel ({ra + i}, {c0 + j}): {got[i, j]} vs {want_t[i, j]}")
        checked += got.size
        expected_nonzero += int(np.count_nonzero(want_t))
        max_flat = max(max_flat, (rb - 1) * W + c1 - 1)
    # Nothing written outside the windows: count non-zeros over the whole
    # output, a block of rows at a time.
    nonzero = 0
    block = max(1, (256 << 20) // (W * 2))
    for r in range(0, H, block):
        nonzero += int(tf.math.count_nonzero(out[0, r : r + block]).numpy())
    return {
        "elements": int(np.prod(image_size)),
        "max_flat_index_checked": int(max_flat),
        "checked": checked,
        "bad": bad[:5],
        "nonzero": nonzero,
        "expected_nonzero": expected_nonzero,
        "op_seconds": round(seconds, 2),
    }


@pytest.mark.parametrize("method", ["bilinear", "nearest"])
@pytest.mark.parametrize("name", list(CASES))
def test_large_output(name, method):
    image_size, dtype = CASES[name]
    nbytes = int(np.prod(image_size)) * ITEMSIZE[dtype]
    if not ENABLED:
        pytest.skip(f"large-tensor test ({nbytes / GIB:.1f} GiB output): set CRG_TEST_LARGE=1")
    need = nbytes + 3 * GIB
    if mem_available_bytes() < need:
        pytest.skip(
            f"needs {need / GIB:.1f} GiB of available memory, "
            f"MemAvailable is {mem_available_bytes() / GIB:.1f} GiB"
        )
    proc = run_python(
        f"""
        import json
        import test_large
        print(json.dumps(test_large.run_case({name!r}, {method!r})))
        """,
        timeout=900,
        env_extra={"TF_ENABLE_ONEDNN_OPTS": "0"},
    )
    assert proc.returncode == 0, describe_proc(proc)
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"\n{name} {method}: {res}")
    assert res["elements"] > 2**31
    threshold = 2**32 if "2^32" in name else 2**31
    assert res["max_flat_index_checked"] > threshold, res
    assert not res["bad"], res
    assert res["expected_nonzero"] > 0, res
    assert res["nonzero"] == res["expected_nonzero"], res


def test_large_reference_windows_are_past_the_limits():
    """Cheap sanity check (always runs): the boxes reach past 2^31 / 2^32."""
    for image_size, _ in CASES.values():
        _, H, W, _ = image_size
        flat = [r * W + c for _, _, _, r, c, _ in touched(image_size, "bilinear")]
        assert max(flat) > (2**32 if W > 2**16 else 2**31)
        assert min(flat) < 2**20  # and the top-left box near index 0
