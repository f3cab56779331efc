#!/usr/bin/env python3
"""CPU benchmark of the boxes gradient: crop_and_resize_grad_boxes vs TF's
builtin tf.raw_ops.CropAndResizeGradBoxes, side by side in one process.

Usage::

    python benchmarks/bench_boxes.py [--runs 3] [--repeats 7] [--workloads ...]
        [--dtypes float32 ...] [--threads N] [--out results/boxes.json]

For each standard workload (tests/support/workloads.py) and image dtype, each
op is timed ``--repeats`` times per run (after a warm-up), alternating ours
and TF's; a run's time is the median of its repeats, and the table shows the
median over ``--runs`` runs plus the range of the per-run ratios. TF's kernel
has no bfloat16 (only ours runs there). Wall-clock times with TF's default
intra-op pool (``--threads`` sets both ops' pool); TF's boxes kernel is a
serial loop, ours is parallel over boxes. The machine (CPU model, cores) and
the load average before and after are printed and saved.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import _support  # noqa: F401  (puts tests/ on sys.path for `support`)
import numpy as np
from support.workloads import WORKLOADS, workload_case

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

DTYPES = ("float32", "float16", "float64", "bfloat16")


def _cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _time(fn) -> float:
    t0 = time.perf_counter()
    out = fn()
    out.numpy() if hasattr(out, "numpy") else None
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--workloads", nargs="+", default=list(WORKLOADS), choices=list(WORKLOADS))
    p.add_argument("--dtypes", nargs="+", default=list(DTYPES), choices=DTYPES)
    p.add_argument("--threads", type=int, default=0, help="intra-op threads (0: TF's default)")
    p.add_argument("--out", default=None, help="JSON file for the results")
    args = p.parse_args()

    import tensorflow as tf

    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    import crop_and_resize_grad as crg

    machine = {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "isa": __import__("crop_and_resize_grad._kernels", fromlist=["x"]).cpu_isa(),
        "tensorflow": tf.__version__,
        "load_before": _load(),
    }
    print(
        f"# {machine['cpu']}, {machine['cores']} cores, ISA {machine['isa']}, TF {tf.__version__}"
    )
    print(f"# load average before: {machine['load_before']}")
    rows = []
    for name in args.workloads:
        rng = np.random.default_rng([7, list(WORKLOADS).index(name)])
        case = workload_case(name, rng)
        b, h, w, d = case.image_size
        image32 = rng.standard_normal((b, h, w, d)).astype(np.float32)
        grads = tf.constant(case.grads)
        boxes = tf.constant(case.boxes)
        box_ind = tf.constant(case.box_ind)
        for dtype in args.dtypes:
            image = tf.cast(tf.constant(image32), dtype)

            def ours(grads=grads, image=image, boxes=boxes, box_ind=box_ind):
                return crg.crop_and_resize_grad_boxes(grads, image, boxes, box_ind)

            def theirs(grads=grads, image=image, boxes=boxes, box_ind=box_ind):
                return tf.raw_ops.CropAndResizeGradBoxes(
                    grads=grads, image=image, boxes=boxes, box_ind=box_ind
                )

            has_tf = dtype != "bfloat16"
            ours(), theirs() if has_tf else None  # warm-up
            per_run = []
            for _ in range(args.runs):
                t_ours, t_tf = [], []
                for _ in range(args.repeats):
                    t_ours.append(_time(ours))
                    if has_tf:
                        t_tf.append(_time(theirs))
                per_run.append(
                    (statistics.median(t_ours), statistics.median(t_tf) if has_tf else None)
                )
            ours_ms = statistics.median(r[0] for r in per_run) * 1e3
            row = {"workload": name, "dtype": dtype, "ours_ms": round(ours_ms, 3)}
            line = f"{name:14s} {dtype:9s} ours {ours_ms:9.2f} ms"
            if has_tf:
                tf_ms = statistics.median(r[1] for r in per_run) * 1e3
                ratios = [r[1] / r[0] for r in per_run]
                row.update(
                    tf_ms=round(tf_ms, 3),
                    speedup=round(tf_ms / ours_ms, 3),
                    speedup_range=[round(min(ratios), 3), round(max(ratios), 3)],
                )
                line += (
                    f"   TF {tf_ms:9.2f} ms   TF/ours {tf_ms / ours_ms:5.2f} "
                    f"(runs {min(ratios):.2f}-{max(ratios):.2f})"
                )
            print(line, flush=True)
            rows.append(row)
    machine["load_after"] = _load()
    print(f"# load average after: {machine['load_after']}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"machine": machine, "results": rows}, f, indent=1)


if __name__ == "__main__":
    main()
