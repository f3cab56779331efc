#!/usr/bin/env python3
"""XLA:CPU against the kernels: forward, image gradient, boxes gradient.

Usage::

    python benchmarks/bench_xla.py [--workloads NAME ...] [--repeats N] [--forms]

For each standard workload (tests/support/workloads.py, float32) this times,
median of ``--repeats`` calls after a warm-up:

* ``forward``: ``crg.crop_and_resize`` (TF's CropAndResize) eagerly, against
  the same call inside ``tf.function(jit_compile=True)`` (the XLA lowering);
* ``grad_image``: ``crg.crop_and_resize_grad_image`` (our op) against it under
  ``jit_compile=True`` (the scatter-add lowering);
* ``grad_boxes``: ``tf.raw_ops.CropAndResizeGradBoxes`` (or our op, where the
  package has one) against the boxes lowering under ``jit_compile=True``.

``--forms`` also times the image-gradient lowering in both forms (scatter-add
and separable matmul) and reports XLA's buffer-assignment size for each (the
memory the compiled program allocates, from XLA's dump), in a subprocess per
form. The matmul form is skipped where its contraction would exceed
``--max-gflop``. Results go to stdout as a Markdown table and JSON.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

import _support  # noqa: F401  (puts tests/ on sys.path for `support`)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _median_ms(fn, repeats):
    fn()  # warm-up (and compilation)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        out = out if isinstance(out, (list, tuple)) else [out]
        for t in out:
            t.numpy()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times), min(times), max(times)


def _inputs(name):
    import numpy as np
    import tensorflow as tf
    from support.workloads import WORKLOADS, workload_case

    case = workload_case(name, np.random.default_rng(0))
    b, h, w, d, n, ch, cw = WORKLOADS[name]
    image = tf.constant(np.random.default_rng(1).standard_normal((b, h, w, d)).astype(np.float32))
    return dict(
        grads=tf.constant(case.grads),
        boxes=tf.constant(case.boxes),
        box_ind=tf.constant(case.box_ind),
        image=image,
        image_size=[b, h, w, d],
        crop=[ch, cw],
    )


def _matmul_gflop(name):
    from support.workloads import WORKLOADS

    b, h, w, d, n, ch, cw = WORKLOADS[name]
    return 2 * (n * h * ch * cw * d + b * w * h * d * n * cw) / 1e9


def time_workload(name, repeats):
    import crop_and_resize_grad as crg
    import tensorflow as tf

    x = _inputs(name)
    boxes_op = getattr(crg, "crop_and_resize_grad_boxes", None)

    def forward():
        return crg.crop_and_resize(x["image"], x["boxes"], x["box_ind"], x["crop"])

    def grad_image():
        return crg.crop_and_resize_grad_image(
            x["grads"], x["boxes"], x["box_ind"], x["image_size"], tf.float32
        )

    def grad_boxes():
        if boxes_op is not None:
            return boxes_op(x["grads"], x["image"], x["boxes"], x["box_ind"])
        return tf.raw_ops.CropAndResizeGradBoxes(
            grads=x["grads"], image=x["image"], boxes=x["boxes"], box_ind=x["box_ind"]
        )

    def grad_boxes_xla():
        from crop_and_resize_grad import _xla as xla

        return xla.crop_and_resize_grad_boxes(x["grads"], x["image"], x["boxes"], x["box_ind"])

    rows = []
    for what, plain, lowered in (
        ("forward", forward, forward),
        ("grad_image", grad_image, grad_image),
        ("grad_boxes", grad_boxes, grad_boxes_xla),
    ):
        t0 = time.perf_counter()
        jit = tf.function(lowered, jit_compile=True)
        jit()
        compile_s = time.perf_counter() - t0
        rows.append(
            dict(
                workload=name,
                op=what,
                kernel_ms=_median_ms(plain, repeats),
                xla_ms=_median_ms(jit, repeats),
                first_call_s=compile_s,
                kernel="ours" if what != "grad_boxes" or boxes_op else "TF",
            )
        )
    return rows


def form_child(name, form, repeats):
    """One image-gradient form, in this (fresh) process: time and XLA memory."""
    import tensorflow as tf
    from crop_and_resize_grad import _xla as xla

    xla._IMAGE_GRAD_FORM = form
    x = _inputs(name)
    fn = tf.function(
        lambda: xla.crop_and_resize_grad_image(
            x["grads"], x["boxes"], x["box_ind"], x["image_size"], tf.float32
        ),
        jit_compile=True,
    )
    ms = _median_ms(fn, repeats)
    print(json.dumps(dict(ms=ms)))


def run_form(name, form, repeats):
    with tempfile.TemporaryDirectory() as dump:
        env = dict(os.environ, XLA_FLAGS=f"--xla_dump_to={dump}")
        proc = subprocess.run(
            [sys.executable, __file__, "--form-child", name, form, "--repeats", str(repeats)],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode:
            return dict(error=proc.stderr[-500:])
        ms = json.loads(proc.stdout.strip().splitlines()[-1])["ms"]
        total = 0
        for path in glob.glob(os.path.join(dump, "*buffer-assignment.txt")):
            with open(path) as f:
                m = re.search(r"Total bytes used: (\d+)", f.read())
            total = max(total, int(m.group(1)) if m else 0)
        return dict(ms=ms, xla_bytes=total)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workloads", nargs="+", default=["maskrcnn-14", "fastrcnn-7", "overlap-1img"])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--forms", action="store_true")
    p.add_argument("--max-gflop", type=float, default=20.0)
    p.add_argument("--form-child", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.form_child:
        form_child(*args.form_child, args.repeats)
        return 0

    load = os.getloadavg()
    print(f"# bench_xla  nproc={os.cpu_count()}  loadavg={load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    rows = []
    for name in args.workloads:
        rows += time_workload(name, args.repeats)
    print("\n| workload | op | kernel ms | XLA ms | XLA / kernel | first XLA call s |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        k, x = r["kernel_ms"], r["xla_ms"]
        print(
            f"| {r['workload']} | {r['op']} ({r['kernel']}) "
            f"| {k[0]:.1f} ({k[1]:.1f}-{k[2]:.1f}) "
            f"| {x[0]:.1f} ({x[1]:.1f}-{x[2]:.1f}) | {x[0] / k[0]:.2f} | {r['first_call_s']:.1f} |"
        )
    forms = []
    if args.forms:
        print("\n| workload | form | XLA ms (median, min-max) | XLA buffers MiB |")
        print("| --- | --- | --- | --- |")
        for name in args.workloads:
            for form in ("scatter", "matmul"):
                if form == "matmul" and _matmul_gflop(name) > args.max_gflop:
                    print(f"| {name} | matmul | skipped: {_matmul_gflop(name):.0f} GFLOP | |")
                    continue
                r = run_form(name, form, args.repeats)
                forms.append(dict(workload=name, form=form, **r))
                if "error" in r:
                    print(f"| {name} | {form} | failed: {r['error'][-120:]!r} | |")
                else:
                    ms = r["ms"]
                    mib = r["xla_bytes"] / 2**20
                    print(
                        f"| {name} | {form} | {ms[0]:.1f} ({ms[1]:.1f}-{ms[2]:.1f}) | {mib:.0f} |"
                    )
    load = os.getloadavg()
    print(f"\nloadavg at end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(json.dumps(dict(rows=rows, forms=forms)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
