"""Race freedom, bitwise reproducibility and thread-count independence.

In this process op determinism is on (conftest), which may make a kernel take
a serial path; the parallel path is exercised in subprocesses without it,
with several intra-op thread counts.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from helpers import TESTS_DIR, as_f64, numpy_dtype, run_ours
from support.cases import unit_box_case
from support.numerics import round_to
from support.workloads import workload_case

WORKER = os.path.join(TESTS_DIR, "_worker.py")

ALL = ("float16", "bfloat16", "float32", "float64")


def overlap_case():
    """Heavy overlap: the overlap-1img workload, 4096 boxes on one 32x32x64 image."""
    return workload_case("overlap-1img", np.random.default_rng(1234))


def expected_unit_value(dtype, num_boxes=20000):
    return float(round_to(num_boxes, dtype))


UNIT_CONFIGS = [f"{d}:{m}" for d in ALL for m in ("bilinear", "nearest")]
OVERLAP_CONFIGS = [
    "float32:bilinear",
    "float16:bilinear",
    "bfloat16:bilinear",
    "float64:bilinear",
    "float32:nearest",
]
THREAD_COUNTS = (1, 0, 8)  # 0: TF's default (one per core)


def save_case(path, case, configs):
    np.savez(
        path,
        grads=case.grads,
        boxes=case.boxes,
        box_ind=case.box_ind,
        image_size=np.asarray(case.image_size, np.int32),
        configs=np.array(configs),
    )


@pytest.fixture(scope="module")
def worker_results(crg, tmp_path_factory):
    """{threads: {"unit": results, "overlap": results}} from fresh processes
    without op determinism, one per intra-op thread count, run concurrently."""
    tmp = tmp_path_factory.mktemp("workers")
    save_case(tmp / "unit.npz", unit_box_case(), UNIT_CONFIGS)
    save_case(tmp / "overlap.npz", overlap_case(), OVERLAP_CONFIGS)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    procs = {}
    for threads in THREAD_COUNTS:
        files = []
        for name in ("unit", "overlap"):
            files += [str(tmp / f"{name}.npz"), str(tmp / f"{name}_out_{threads}.npz")]
        procs[threads] = subprocess.Popen(
            [sys.executable, WORKER, str(threads), "3", "0", *files],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=TESTS_DIR,
        )
    results = {}
    for threads, proc in procs.items():
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, (
            f"worker (threads={threads}) failed, rc {proc.returncode}:\n"
            f"{out[-3000:]}\n{err[-3000:]}"
        )
        results[threads] = {
            name: dict(np.load(tmp / f"{name}_out_{threads}.npz")) for name in ("unit", "overlap")
        }
    return results


def decode(result, config, shape):
    dtype = config.split(":")[0]
    return np.frombuffer(
        result[f"{config}:bytes"].tobytes(), numpy_dtype(tf.as_dtype(dtype))
    ).reshape(shape)


# ------------------------------------------------------------------ (a) race


@pytest.mark.parametrize("method", ["bilinear", "nearest"])
@pytest.mark.parametrize("dtype", ALL)
def test_unit_boxes_exact_in_process(crg, dtype, method):
    case = unit_box_case()
    out = as_f64(run_ours(crg, case, tf.as_dtype(dtype), method))
    expected = expected_unit_value(dtype)
    np.testing.assert_array_equal(out, np.full((1, 8, 8, 1), expected))
    if dtype in ("float64", "float32", "float16"):
        assert out.sum() == 1_280_000


@pytest.mark.parametrize("threads", THREAD_COUNTS)
def test_unit_boxes_exact_parallel_no_determinism(worker_results, threads):
    """The same without op determinism: 1 thread, default, oversubscribed."""
    res = worker_results[threads]["unit"]
    assert int(res["intra_op_threads"]) == threads
    for config in UNIT_CONFIGS:
        out = as_f64(decode(res, config, (1, 8, 8, 1)))
        expected = expected_unit_value(config.split(":")[0])
        assert res[f"{config}:repeatable"], f"{config}: repeated calls differ (threads={threads})"
        bad = out != expected
        assert not bad.any(), (
            f"{config} threads={threads}: sum {out.sum()} (expected {expected * 64}), "
            f"{int(bad.sum())} pixels not {expected}: {np.unique(out[bad])[:10]}"
        )


# ---------------------------------------------------- (b) reproducibility


@pytest.mark.parametrize(
    "T", [tf.float32, tf.float16, tf.bfloat16, tf.float64], ids=lambda t: t.name
)
def test_repeated_calls_bitwise_identical(crg, T):
    case = overlap_case()
    for method in ("bilinear", "nearest"):
        first = run_ours(crg, case, T, method).tobytes()
        for _ in range(4):
            assert run_ours(crg, case, T, method).tobytes() == first, method


# ------------------------------------------------------ (c) thread counts


def test_thread_count_independence(crg, worker_results):
    case = overlap_case()
    shape = tuple(case.image_size)
    for config in OVERLAP_CONFIGS:
        base = worker_results[1]["overlap"][f"{config}:bytes"].tobytes()
        for threads in THREAD_COUNTS:
            res = worker_results[threads]["overlap"]
            assert res[f"{config}:repeatable"], (
                f"{config}: repeated calls differ with {threads} threads"
            )
            assert res[f"{config}:bytes"].tobytes() == base, (
                f"{config}: {threads} threads differ from 1 thread"
            )
        # ... and equal to this process's result (op determinism on).
        dtype, method = config.split(":")
        here = run_ours(crg, case, tf.as_dtype(dtype), method)
        assert here.tobytes() == base, (
            f"{config}: differs from the in-process (op determinism) result"
        )
        assert decode(worker_results[0]["overlap"], config, shape).shape == shape
