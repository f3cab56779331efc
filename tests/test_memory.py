"""Memory: thousands of calls do not grow resident memory, and one call's peak
memory is the output plus small, bounded temporaries.

All measurements run in fresh subprocesses (RSS from /proc/self/statm, peak
from VmHWM after resetting it through /proc/self/clear_refs; see
benchmarks/bench_memory.py, which also writes benchmarks/results/memory_cpu.json).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from helpers import TESTS_DIR, describe_proc, run_python

ROOT = os.path.dirname(TESTS_DIR)
BENCH = os.path.join(ROOT, "benchmarks", "bench_memory.py")
MIB = 2**20

# Valid calls: rounds of 5 calls (four dtypes eagerly, one tf.function).
WARMUP_ROUNDS = 200
STAGE_ROUNDS = 600
STAGES = 3
CALLS_PER_ROUND = 5
# Allowed RSS growth over the last two stages (2 x 600 x 5 = 6,000 calls):
# a leak of 1 KiB per call would add 5.9 MiB.
GROWTH_SLACK = 4 * MIB

_LEAK_SCRIPT = """
import gc, json, os
import numpy as np
import tensorflow as tf
import crop_and_resize_grad as crg
from support.cases import make_case

kind, warmup, stage, stages = __PARAMS__
rng = np.random.default_rng(0)
cases = [make_case(rng, 2, 30, 40, 16, 64, 7, 7, "mixed"),
         make_case(rng, 1, 8, 8, 300, 16, 3, 3, "normal"),
         make_case(rng, 3, 50, 9, 3, 200, 5, 4, "partly_outside")]
page = os.sysconf("SC_PAGE_SIZE")

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * page

@tf.function(input_signature=[tf.TensorSpec(None, tf.float32)] * 2
             + [tf.TensorSpec(None, tf.int32)] * 2)
def graph_call(g, b, i, s):
    return crg.crop_and_resize_grad_image(g, b, i, s, T=tf.float16, method="nearest")

c0 = cases[0]
g0, b0, i0, s0 = (tf.constant(a) for a in c0.args())
nan_boxes = c0.boxes.copy()
nan_boxes[3, 1] = np.nan
nan_boxes = tf.constant(nan_boxes)
bad_ind = i0 + 7
ERRORS = {
    # (call, error class); each fails after allocating its output, except
    # "ours_shape" (validation before allocation).
    "ours_nan": (lambda: crg.crop_and_resize_grad_image(g0, nan_boxes, i0, s0, T=tf.float32),
                 tf.errors.InvalidArgumentError),
    "ours_oor": (lambda: crg.crop_and_resize_grad_image(g0, b0, bad_ind, s0, T=tf.float32),
                 tf.errors.OutOfRangeError),
    "ours_shape": (lambda: crg.crop_and_resize_grad_image(g0, b0[:, :3], i0, s0, T=tf.float32),
                   tf.errors.InvalidArgumentError),
    "tf_oor": (lambda: tf.raw_ops.CropAndResizeGradImage(grads=g0, boxes=b0, box_ind=bad_ind,
                                                          image_size=s0, T=tf.float32),
               tf.errors.OutOfRangeError),
}

def one_round(k):
    if kind == "valid":
        c = cases[k % len(cases)]
        for T, m in ((tf.float32, "bilinear"), (tf.float16, "nearest"),
                     (tf.bfloat16, "bilinear"), (tf.float64, "nearest")):
            crg.crop_and_resize_grad_image(*c.args(), T=T, method=m).numpy()
        graph_call(*c.args()).numpy()
    else:
        call, err = ERRORS[kind]
        try:
            call()
        except err:
            pass
        else:
            raise AssertionError("no error")

def run(rounds):
    for k in range(rounds):
        one_round(k)
    gc.collect()

run(warmup)
samples = [rss()]
for _ in range(stages):
    run(stage)
    samples.append(rss())
print(json.dumps(samples))
"""


def rss_samples(kind, warmup, stage, stages):
    params = f"{kind!r}, {warmup}, {stage}, {stages}"
    proc = run_python(_LEAK_SCRIPT.replace("__PARAMS__", params), timeout=600)
    assert proc.returncode == 0, describe_proc(proc)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_repeated_calls_do_not_grow_rss():
    """Four dtype/method pairs eagerly plus a tf.function: 10,000 calls."""
    samples = rss_samples("valid", WARMUP_ROUNDS, STAGE_ROUNDS, STAGES)
    calls = STAGE_ROUNDS * CALLS_PER_ROUND
    text = ", ".join(f"{s / MIB:.1f}" for s in samples)
    print(f"\nRSS (MiB) after warm-up and after each {calls} calls: {text}")
    # The first stage may still settle (allocator caches); from there on,
    # resident memory must stay flat.
    growth = samples[-1] - samples[1]
    assert growth <= GROWTH_SLACK, (
        f"RSS grew {growth / MIB:.2f} MiB over {(STAGES - 1) * calls} calls: {text}"
    )
    assert samples[-1] - samples[0] <= 2 * GROWTH_SLACK, text


ERROR_CALLS = 2000


def error_growth_per_call(kind):
    samples = rss_samples(kind, 300, ERROR_CALLS, 1)
    return (samples[-1] - samples[0]) / ERROR_CALLS


def test_repeated_error_calls_rss():
    """Failing calls: growth per call for ours and, for scale, TF's builtin.

    Box values are checked before the output is allocated, so a rejected call
    leaves almost nothing behind (TF 2.21's eager runtime keeps a few KiB per
    call that fails after allocating, as TF's builtin does for a bad box_ind).
    """
    growth = {k: error_growth_per_call(k) for k in ("ours_nan", "ours_oor", "ours_shape", "tf_oor")}
    print(
        "\nRSS growth per failing call (KiB): "
        + ", ".join(f"{k} {v / 1024:.2f}" for k, v in growth.items())
    )
    assert growth["ours_nan"] <= 1024 and growth["ours_oor"] <= 1024, growth


def bench_child(impl, dtype, workload):
    env = dict(os.environ)
    env["TF_ENABLE_ONEDNN_OPTS"] = "0"  # plain allocator, see bench_memory.py
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    proc = subprocess.run(
        [sys.executable, BENCH, "--child", impl, dtype, workload],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, describe_proc(proc)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _report(r):
    return (
        f"{r['impl']} {r['dtype']} {r['workload']}: output {r['output_bytes'] / MIB:.2f} MiB, "
        f"peak growth {r['peak_delta_bytes'] / MIB:.2f} MiB, "
        f"overhead {r['overhead_bytes'] / MIB:.2f} MiB"
    )


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_peak_memory_maskrcnn_vs_tf(dtype):
    """maskrcnn-14: peak growth is the output plus at most the kernel's own
    bounded temporaries (sample rows, column taps, per-thread accumulators),
    and within that bound of TF's builtin."""
    ours = bench_child("ours", dtype, "maskrcnn-14")
    theirs = bench_child("tf", dtype, "maskrcnn-14")
    print("\n" + _report(ours) + "\n" + _report(theirs))
    bound = ours["expected_temporaries_bytes"] + MIB  # + allocator slack
    assert ours["peak_delta_bytes"] >= ours["output_bytes"] * 0.95, (
        "the measurement did not see the output being written"
    )
    assert ours["overhead_bytes"] <= bound, _report(ours)
    assert ours["peak_delta_bytes"] <= theirs["peak_delta_bytes"] + bound, (
        _report(ours),
        _report(theirs),
    )


def test_temporaries_do_not_scale_with_the_image():
    """A 2048 x 2048 x 8 image with 4 boxes: no temporary proportional to the
    image (the accumulator is per work unit, at most 512 KiB per thread)."""
    r = bench_child("ours", "float32", "big-image-few-boxes")
    print("\n" + _report(r))
    assert r["peak_delta_bytes"] >= r["output_bytes"] * 0.95
    assert r["overhead_bytes"] <= r["expected_temporaries_bytes"] + MIB, _report(r)
    assert r["overhead_bytes"] <= 0.05 * r["output_bytes"], _report(r)


def test_temporaries_scale_with_the_boxes_as_documented():
    """200,000 boxes on a 16 x 16 image: the temporaries are the sample-row
    list and column taps (O(N * crop size)), within the documented bound."""
    r = bench_child("ours", "float32", "many-boxes-small-image")
    print("\n" + _report(r) + f", bound {r['expected_temporaries_bytes'] / MIB:.2f} MiB")
    assert r["overhead_bytes"] <= r["expected_temporaries_bytes"] + MIB, _report(r)
