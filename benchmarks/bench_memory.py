#!/usr/bin/env python3
"""Peak memory of one call: crop_and_resize_grad vs TF's builtin, on the CPU.

Usage::

    python benchmarks/bench_memory.py [--workloads maskrcnn-14,...] [--dtypes float32,...]
                                      [--out benchmarks/results/memory_cpu.json]

Every (implementation, workload, dtype) runs in a fresh subprocess. The child
builds its inputs inside TF (no NumPy copies), runs a small warm-up call (op
library, thread pools), then resets the kernel's resident-set high-water mark
(``echo 5 > /proc/self/clear_refs``), runs the op once on the workload, and
reads ``VmHWM`` back from ``/proc/self/status``. ``peak_delta`` is the growth
of peak RSS during that call: the output plus every temporary of the kernel
(and of TF around it). ``overhead`` is ``peak_delta`` minus the output size.

TF's ``tf.config.experimental.get_memory_info`` does not support CPU devices,
so resident memory is the measure. The children run with
``TF_ENABLE_ONEDNN_OPTS=0``: TF's plain CPU allocator returns large freed
blocks to the system, so a new output shows up in RSS. With oneDNN on (TF's
default) the BFC allocator keeps freed memory resident and carves the output
from it, and the call's peak RSS growth is about zero for both kernels.
Where ``clear_refs`` cannot be written the child falls back to ``ru_maxrss``
against the RSS before the call, which is only valid when nothing before the
call peaked higher (the child avoids large transient allocations for that
reason).

Our kernel's temporaries, by construction (cc/core/cpu/grad_image.h): at
most ``TEMPORARY_BYTES_PER_SAMPLE_ROW`` per (box, crop row) and
``TEMPORARY_BYTES_PER_CROP_COLUMN`` per (box, crop column), and per running
work unit an accumulator of at most ``UNIT_ACCUMULATOR_BYTES`` (``CRG_UNIT_KB``,
512 KiB unless the build changed it), all read from the ``_kernels`` module.
``expected_temporaries_bytes`` below is that bound.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import os
import platform
import resource
import subprocess
import sys
from pathlib import Path

import _support  # noqa: F401  (puts tests/ on sys.path for `support`)
from support.kernels import load_kernels
from support.numerics import ITEMSIZE
from support.workloads import WORKLOADS as STANDARD_WORKLOADS

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "memory_cpu.json"

# (B, H, W, D, N, ch, cw): the standard workloads, plus two shapes that probe
# how the temporaries scale: a big image with few boxes, many boxes on a small
# image.
WORKLOADS = {
    **STANDARD_WORKLOADS,
    "big-image-few-boxes": (1, 2048, 2048, 8, 4, 14, 14),
    "many-boxes-small-image": (1, 16, 16, 1, 200_000, 4, 4),
}
DTYPES = ("float32", "float16", "bfloat16", "float64")
TF_DTYPES = ("float32", "float16", "float64")  # TF's kernel has no bfloat16


def expected_temporaries_bytes(workload, threads):
    """Upper bound of our kernel's temporaries for one call (see module doc)."""
    kernels, why = load_kernels()
    if kernels is None:
        raise RuntimeError(f"the _kernels module holds the bound: {why}")
    B, H, W, D, N, ch, cw = WORKLOADS[workload]
    sample_rows = N * ch * kernels.TEMPORARY_BYTES_PER_SAMPLE_ROW
    taps = N * cw * kernels.TEMPORARY_BYTES_PER_CROP_COLUMN
    return sample_rows + taps + threads * kernels.UNIT_ACCUMULATOR_BYTES


def _status_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def _reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def child(impl, dtype, workload):
    """Runs in a fresh process; prints one JSON line."""
    import crop_and_resize_grad as crg
    import tensorflow as tf

    B, H, W, D, N, ch, cw = WORKLOADS[workload]
    T = tf.as_dtype(dtype)

    def op(grads, boxes, box_ind, image_size):
        if impl == "ours":
            return crg.crop_and_resize_grad_image(grads, boxes, box_ind, image_size, T=T)
        return tf.raw_ops.CropAndResizeGradImage(
            grads=grads, boxes=boxes, box_ind=box_ind, image_size=image_size, T=T
        )

    # Inputs made by TF itself: no transient NumPy copies before the call.
    gen = tf.random.Generator.from_seed(1234)
    grads = gen.normal([N, ch, cw, D], dtype=tf.float32)
    y1 = gen.uniform([N], 0, 0.8)
    x1 = gen.uniform([N], 0, 0.8)
    y2 = tf.minimum(y1 + gen.uniform([N], 0.05, 0.5), 1.0)
    x2 = tf.minimum(x1 + gen.uniform([N], 0.05, 0.5), 1.0)
    boxes = tf.stack([y1, x1, y2, x2], axis=1)
    box_ind = gen.uniform([N], 0, B, dtype=tf.int32)
    image_size = tf.constant([B, H, W, D], tf.int32)
    # Warm-up on a small input: loads kernels, starts the thread pools.
    small = op(grads[:2], boxes[:2], box_ind[:2], tf.constant([B, 4, 4, D], tf.int32))
    _ = small.numpy()
    del small
    gc.collect()

    rss_before_kib = _status_kib("VmRSS")
    reset = _reset_peak()
    maxrss_before_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = op(grads, boxes, box_ind, image_size)
    _ = out.shape  # eager: the op has run when it returns
    peak_kib = _status_kib("VmHWM") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rss_after_kib = _status_kib("VmRSS")
    output_bytes = B * H * W * D * ITEMSIZE[dtype]
    base_kib = rss_before_kib if reset else max(rss_before_kib, maxrss_before_kib)
    peak_delta = (peak_kib - base_kib) * 1024
    result = {
        "impl": impl,
        "dtype": dtype,
        "workload": workload,
        "shape": dict(zip(("B", "H", "W", "D", "N", "ch", "cw"), WORKLOADS[workload])),
        "method": "VmHWM after clear_refs" if reset else "ru_maxrss",
        "tf_enable_onednn_opts": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "<unset>"),
        "grads_bytes": N * ch * cw * D * 4,
        "output_bytes": output_bytes,
        "rss_before_bytes": rss_before_kib * 1024,
        "peak_delta_bytes": peak_delta,
        "overhead_bytes": peak_delta - output_bytes,
        "rss_after_minus_before_bytes": (rss_after_kib - rss_before_kib) * 1024,
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads()
        or os.cpu_count(),
    }
    if impl == "ours":
        result["expected_temporaries_bytes"] = expected_temporaries_bytes(
            workload, result["intra_op_threads"]
        )
    print(json.dumps(result))


def run_child(impl, dtype, workload, env_extra=None, timeout=600):
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["TF_ENABLE_ONEDNN_OPTS"] = "0"  # plain allocator: see the module doc
    if env_extra:
        env.update(env_extra)
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", impl, dtype, workload],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"child {impl} {dtype} {workload} failed ({proc.returncode}):\n{proc.stderr[-3000:]}"
        )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _mib(b):
    return f"{b / 2**20:8.2f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workloads", default="maskrcnn-14")
    ap.add_argument("--dtypes", default=",".join(DTYPES))
    ap.add_argument("--out", default=str(DEFAULT_OUT))
    ap.add_argument("--child", nargs=3, metavar=("IMPL", "DTYPE", "WORKLOAD"))
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return
    import crop_and_resize_grad  # noqa: F401 - fail early if it is not importable

    rows = []
    print(
        f"{'workload':24s} {'dtype':9s} {'impl':5s} {'output MiB':>10s} "
        f"{'peak+ MiB':>10s} {'overhead MiB':>12s}"
    )
    for workload in args.workloads.split(","):
        for dtype in args.dtypes.split(","):
            for impl in ("ours", "tf"):
                if impl == "tf" and dtype not in TF_DTYPES:
                    continue
                r = run_child(impl, dtype, workload)
                rows.append(r)
                print(
                    f"{workload:24s} {dtype:9s} {impl:5s} {_mib(r['output_bytes']):>10s} "
                    f"{_mib(r['peak_delta_bytes']):>10s} {_mib(r['overhead_bytes']):>12s}",
                    flush=True,
                )
    import tensorflow as tf

    doc = {
        "description": (
            "Growth of peak resident memory during one eager call, fresh process "
            "per row (see benchmarks/bench_memory.py). overhead = peak growth - "
            "output size."
        ),
        "machine": {
            "platform": platform.platform(),
            "nproc": os.cpu_count(),
            "python": platform.python_version(),
            "tensorflow": tf.__version__,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        },
        "results": rows,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
