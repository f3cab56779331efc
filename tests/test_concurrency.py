"""Concurrency: the op called from many Python threads at once, and several
instances of the op run in parallel by TF's executor.

- 8+ threads call the op at the same time (a barrier releases them together)
  with different inputs, dtypes and methods, several times each; every result
  must equal the same call's single-threaded result bitwise. This runs in this
  process (op determinism on, see conftest.py) and in a subprocess without
  op determinism, with 4 intra-op threads shared by all concurrent calls (the
  kernel schedules its work units on TF's intra-op pool: no deadlock, no
  interference).
- Independent ops in one tf.function: results equal the eager ones bitwise,
  and TF's step stats (RunMetadata with FULL_TRACE, in a subprocess) show the
  ops' execution intervals overlapping when inter_op_parallelism_threads > 1;
  with 1 inter-op thread (the control) they never overlap. This is evidence
  from TF's own timeline, not a wall-clock comparison.
"""

from __future__ import annotations

import json
import threading

import numpy as np
import tensorflow as tf
from helpers import describe_proc, run_python
from support.cases import make_case

NUM_THREADS = 10
REPEATS = 4

CONFIGS = [  # (B, H, W, D, N, ch, cw, kind, T, method)
    (1, 32, 32, 64, 600, 7, 7, "normal", "float32", "bilinear"),
    (2, 20, 24, 16, 300, 5, 5, "mixed", "float16", "bilinear"),
    (1, 16, 16, 8, 2000, 8, 8, "unit", "float64", "bilinear"),
    (3, 9, 11, 3, 200, 4, 3, "flipped", "bfloat16", "nearest"),
    (2, 40, 30, 33, 150, 6, 9, "partly_outside", "float32", "nearest"),
    (1, 8, 8, 300, 100, 3, 3, "normal", "float32", "bilinear"),
    (4, 12, 12, 5, 400, 2, 2, "grid", "float64", "nearest"),
    (1, 64, 64, 1, 1000, 14, 14, "normal", "float16", "nearest"),
    (2, 6, 7, 17, 500, 1, 1, "mixed", "bfloat16", "bilinear"),
    (1, 100, 152, 32, 128, 14, 14, "normal", "float32", "bilinear"),
]


def make_inputs(seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for B, H, W, D, N, ch, cw, kind, T, method in CONFIGS:
        out.append((make_case(rng, B, H, W, D, N, ch, cw, kind), tf.as_dtype(T), method))
    return out


def run_concurrently(crg, inputs, num_threads, repeats):
    """Each thread i runs inputs[i % len(inputs)] `repeats` times, all threads
    starting together. Returns a list of (thread, error message) problems."""
    expected = [
        crg.crop_and_resize_grad_image(*c.args(), T=T, method=m).numpy().tobytes()
        for c, T, m in inputs
    ]
    barrier = threading.Barrier(num_threads)
    problems = []
    lock = threading.Lock()

    def body(i):
        case, T, method = inputs[i % len(inputs)]
        try:
            barrier.wait(timeout=60)
            for r in range(repeats):
                got = crg.crop_and_resize_grad_image(*case.args(), T=T, method=method)
                if got.numpy().tobytes() != expected[i % len(inputs)]:
                    with lock:
                        problems.append((i, f"repeat {r}: differs from the single-threaded result"))
        except Exception as e:  # noqa: BLE001 - reported below
            with lock:
                problems.append((i, f"{type(e).__name__}: {e}"))

    threads = [threading.Thread(target=body, args=(i,)) for i in range(num_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    alive = [i for i, t in enumerate(threads) if t.is_alive()]
    if alive:
        problems.append((alive, "threads still running after 300 s (deadlock?)"))
    return problems


def test_threads_call_concurrently_bitwise(crg):
    problems = run_concurrently(crg, make_inputs(), NUM_THREADS, REPEATS)
    assert not problems, problems


def test_threads_call_concurrently_without_determinism_subprocess():
    """No op determinism, 4 intra-op threads shared by 10 concurrent calls."""
    proc = run_python(
        """
        import json
        import tensorflow as tf
        tf.config.threading.set_intra_op_parallelism_threads(4)
        tf.config.threading.set_inter_op_parallelism_threads(4)
        import crop_and_resize_grad as crg
        import test_concurrency as tc
        from tensorflow.python.framework import config as tf_config
        assert not tf_config.is_op_determinism_enabled()
        problems = tc.run_concurrently(crg, tc.make_inputs(1), 12, 3)
        print(json.dumps({"problems": [[str(i), p] for i, p in problems],
                          "intra": tf.config.threading.get_intra_op_parallelism_threads()}))
        """,
        timeout=600,
    )
    assert proc.returncode == 0, describe_proc(proc)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["intra"] == 4
    assert not result["problems"], result["problems"]


def test_independent_ops_in_one_function(crg):
    """Several independent ops in one tf.function give their eager results."""
    inputs = make_inputs(2)[:4]

    @tf.function
    def f():
        return [
            crg.crop_and_resize_grad_image(*c.args(), T=T, method=m, name=f"op{i}")
            for i, (c, T, m) in enumerate(inputs)
        ]

    for _ in range(3):
        outs = f()
        for out, (c, T, m) in zip(outs, inputs):
            eager = crg.crop_and_resize_grad_image(*c.args(), T=T, method=m)
            assert out.numpy().tobytes() == eager.numpy().tobytes()


_STEP_STATS_SCRIPT = """
import json, sys
import numpy as np
import tensorflow as tf
import crop_and_resize_grad as crg

inter = int(sys.argv[1]) if len(sys.argv) > 1 else {inter}
rng = np.random.default_rng(0)
N, D = 8192, 64
grads = rng.standard_normal((N, 7, 7, D)).astype(np.float32)
boxes = rng.uniform(0, 1, (N, 4)).astype(np.float32)
NUM_OPS = 4

@tf.function
def two_branches(g, b, bi):
    # Independent ops (distinct image sizes, so no common-subexpression merge).
    return [crg.crop_and_resize_grad_image(g, b, bi, [1, 32 + i, 32, D], T=tf.float32,
                                           name=f"branch{{i}}")
            for i in range(NUM_OPS)]

graph = tf.Graph()
with graph.as_default():
    g = tf.compat.v1.placeholder(tf.float32, grads.shape)
    b = tf.compat.v1.placeholder(tf.float32, boxes.shape)
    bi = tf.zeros([N], tf.int32)
    outs = two_branches(g, b, bi)
config = tf.compat.v1.ConfigProto(inter_op_parallelism_threads=inter,
                                  intra_op_parallelism_threads=1)
with tf.compat.v1.Session(graph=graph, config=config) as sess:
    feed = {{g: grads, b: boxes}}
    sess.run(outs, feed)  # warm-up
    options = tf.compat.v1.RunOptions(trace_level=tf.compat.v1.RunOptions.FULL_TRACE)
    meta = tf.compat.v1.RunMetadata()
    results = sess.run(outs, feed, options=options, run_metadata=meta)

intervals = []
for dev in meta.step_stats.dev_stats:
    for ns in dev.node_stats:
        if "CropAndResizeGrad>" in ns.node_name:
            intervals.append((ns.node_name, ns.all_start_micros,
                              ns.all_start_micros + ns.all_end_rel_micros))
overlaps = [(a[0], b[0]) for i, a in enumerate(intervals) for b in intervals[i + 1:]
            if a[1] < b[2] and b[1] < a[2]]
eager = [crg.crop_and_resize_grad_image(grads, boxes, np.zeros(N, np.int32), [1, 32 + i, 32, D],
                                        T=tf.float32).numpy() for i in range(NUM_OPS)]
correct = all(r.tobytes() == e.tobytes() for r, e in zip(results, eager))
print(json.dumps({{"inter": inter, "intervals": intervals, "overlaps": overlaps,
                  "correct": correct}}))
"""


def step_stats(inter):
    proc = run_python(_STEP_STATS_SCRIPT.format(inter=inter), timeout=300)
    assert proc.returncode == 0, describe_proc(proc)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_executor_runs_independent_ops_in_parallel():
    parallel = step_stats(4)
    serial = step_stats(1)
    for res in (parallel, serial):
        assert res["correct"], res
        assert len(res["intervals"]) == 4, res  # every op ran and was traced
    # Control: with one inter-op thread the ops run one after another.
    assert not serial["overlaps"], serial
    # With four, at least two ops were executing at the same time.
    assert parallel["overlaps"], parallel
