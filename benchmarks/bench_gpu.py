#!/usr/bin/env python3
"""GPU benchmark of the CUDA kernels (atomic and deterministic mode).

Usage::

    CRG_KERNELS_DIR=<dir with _kernels*.so> python benchmarks/bench_gpu.py [--out FILE]

Needs the ``_kernels`` extension built with CUDA (``CRG_BUILD_TF_OP=OFF`` is
fine), a GPU, and CuPy or PyTorch; no TensorFlow. For every standard workload
(tests/support/workloads.py) and output dtype it times, with CUDA events on one stream:

- ``atomic`` and ``deterministic`` mode of ``grad_image_cuda`` (method
  bilinear, grads float32 as the op defines them);
- the HBM floor: a device-to-device copy of (grads bytes + output bytes).
  The copy reads and writes that many bytes, so the bandwidth it shows is
  ``2 * bytes / copy time``, and the floor of a kernel that must read grads
  and write the output once is ``(grads + output bytes) / bandwidth``
  = copy time / 2. The table shows the ratio to that floor (``x floor``);
  the JSON also has the ratio to the whole copy time (``x copy``);
- ``torchvision.ops.roi_align`` backward when importable: the same N boxes
  (converted to pixel coordinates), output size ch x cw, the same feature map
  [B, D, H, W] of the dtype, ``aligned=False``, ``sampling_ratio=1`` (one
  bilinear sample per bin, like crop_and_resize); only the backward op
  (``torchvision::_roi_align_backward``, which also zeroes its output) is
  timed.

Timing: each measurement enqueues a GPU spin kernel first (so the host runs
ahead and launch overhead is hidden), then a batch of launches between two
events; the per-launch time is the median over ``--repeats`` batches. Inputs
stay on the device, so tensors that fit in L2 are L2-warm, for the copy as
for the kernels.

Writes JSON (``--out``, default benchmarks/results/results_gpu.json) and
prints a markdown table with the targets.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time

import _support  # noqa: F401  (puts tests/ on sys.path for `support`)
import numpy as np
from support import gpu as sg
from support.numerics import ITEMSIZE
from support.workloads import WORKLOADS, workload_case

DTYPES = ("float32", "float16", "bfloat16", "float64")
MODES = ("atomic", "deterministic")
# Targets: time / HBM floor (maskrcnn-14, atomic) and deterministic / atomic.
FLOOR_TARGET = {"float32": 2.0, "float16": 2.5, "bfloat16": 2.5}  # maskrcnn-14, atomic
DET_TARGET = 1.5
DEFAULT_OUT = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "results", "results_gpu.json"
)


# --------------------------------------------------------------------------- #
# Timing
# --------------------------------------------------------------------------- #
class Timer:
    def __init__(self, be, repeats, batch_ms=3.0):
        self.be = be
        self.repeats = repeats
        self.batch_ms = batch_ms
        self.cycles_per_ms = None
        if be.spin(1000):
            be.synchronize()
            start = be.event()
            be.spin(2_000_000)
            end = be.event()
            ms = be.elapsed_ms(start, end)
            if ms > 0:
                self.cycles_per_ms = 2_000_000 / ms

    def _spin(self, ms):
        if self.cycles_per_ms:
            self.be.spin(int(ms * self.cycles_per_ms))

    def measure(self, fn):
        """Median per-call GPU time (ms) of ``fn`` (which only enqueues)."""
        be = self.be
        fn()
        be.synchronize()
        self._spin(1.0)
        start = be.event()
        for _ in range(3):
            fn()
        end = be.event()
        one = max(be.elapsed_ms(start, end) / 3, 1e-3)
        reps = int(min(50, max(1, self.batch_ms / one)))
        samples = []
        for _ in range(self.repeats):
            # Long enough for the host to enqueue the whole batch (<= ~60 us a call).
            self._spin(0.5 + 0.06 * reps)
            start = be.event()
            for _ in range(reps):
                fn()
            end = be.event()
            samples.append(be.elapsed_ms(start, end) / reps)
        return statistics.median(samples), reps


# --------------------------------------------------------------------------- #
# torchvision roi_align backward
# --------------------------------------------------------------------------- #
def roi_align_backward_fn(workload, boxes, box_ind, dtype):
    """Returns (fn, None) or (None, reason)."""
    try:
        import torch
        import torchvision  # noqa: F401  (registers torchvision:: ops)
    except Exception as e:  # noqa: BLE001
        return None, f"torchvision not importable: {type(e).__name__}: {e}"
    if not torch.cuda.is_available():
        return None, "torch sees no GPU"
    B, H, W, D, N, ch, cw = workload
    tdt = {"bfloat16": torch.bfloat16}.get(dtype) or getattr(torch, dtype)
    rois = np.stack(
        [
            box_ind.astype(np.float64),
            boxes[:, 1] * (W - 1),
            boxes[:, 0] * (H - 1),
            boxes[:, 3] * (W - 1),
            boxes[:, 2] * (H - 1),
        ],
        axis=1,
    )
    rois_t = torch.from_numpy(rois).to(device="cuda", dtype=tdt)
    grad = torch.randn((N, D, ch, cw), device="cuda", dtype=torch.float32).to(tdt)
    op = getattr(torch.ops.torchvision, "_roi_align_backward", None)
    try:
        if op is not None:

            def fn():
                return op(grad, rois_t, 1.0, ch, cw, B, D, H, W, 1, False)

        else:  # older torchvision: through autograd (includes its overhead)
            from torchvision.ops import roi_align

            x = torch.zeros((B, D, H, W), device="cuda", dtype=tdt, requires_grad=True)
            out = roi_align(x, rois_t, (ch, cw), 1.0, 1, False)

            def fn():
                return torch.autograd.grad(out, x, grad, retain_graph=True)

        fn()
        torch.cuda.synchronize()
    except Exception as e:  # noqa: BLE001 - e.g. no bfloat16 kernel
        return None, f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
    return fn, None


# --------------------------------------------------------------------------- #
# Benchmark
# --------------------------------------------------------------------------- #
def run(args):
    kernels, backends, reason = sg.gpu_environment()
    if reason is not None:
        print(f"bench_gpu: cannot run: {reason}", file=sys.stderr)
        return None, 2
    be = sg.default_backend(prefer=args.backend or "torch")
    info = be.device_info()
    print(f"# GPU benchmark on {info.get('name')} ({be.name}); _kernels {kernels.__file__}")
    timer = Timer(be, args.repeats)
    t_start = time.monotonic()
    rows, skipped, checks = [], [], []
    result = {
        "status": "running",
        "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "device": info,
        "backend": be.name,
        "host": {"python": platform.python_version(), "platform": platform.platform()},
        "kernels": getattr(kernels, "__file__", None),
        "method": "bilinear",
        "timing": {
            "repeats": args.repeats,
            "statistic": "median of batches (ms per call)",
            "spin_kernel": timer.cycles_per_ms is not None,
            "floor": "copy_ms / 2: (grads + output bytes) at the D2D copy bandwidth (2*bytes/time)",
        },
        "results": rows,
        "sanity_checks": checks,
        "skipped_for_time": skipped,
    }
    for wname in args.workloads:
        workload = WORKLOADS[wname]
        B, H, W, D, N, ch, cw = workload
        case = workload_case(wname, np.random.default_rng(args.seed))
        grads_h, boxes_h, box_ind_h = case.grads, case.boxes, case.box_ind
        grads = be.asarray(grads_h)
        boxes = be.asarray(boxes_h)
        box_ind = be.asarray(box_ind_h)
        grads_bytes = grads_h.nbytes
        for dtype in args.dtypes:
            if time.monotonic() - t_start > args.time_budget:
                skipped.append(f"{wname}/{dtype}")
                continue
            out_bytes = B * H * W * D * ITEMSIZE[dtype]
            total = grads_bytes + out_bytes
            src = be.empty([total], "uint8")
            dst = be.empty([total], "uint8")
            be.fill(src, 1)
            copy_ms, _ = timer.measure(lambda src=src, dst=dst, n=total: be.copy_bytes(dst, src, n))
            del src, dst
            copy_gbps = 2 * total / (copy_ms * 1e-3) / 1e9
            floor_ms = copy_ms / 2
            row = {
                "workload": wname,
                "shape": dict(zip("B H W D N ch cw".split(), workload)),
                "dtype": dtype,
                "grads_bytes": grads_bytes,
                "output_bytes": out_bytes,
                "copy_ms": copy_ms,
                "copy_GBps": copy_gbps,
                "floor_ms": floor_ms,
            }
            outs = {}
            for mode in MODES:
                launch = sg.GradImageLaunch(
                    grads,
                    boxes,
                    box_ind,
                    [B, H, W, D],
                    dtype,
                    "bilinear",
                    mode == "deterministic",
                    backend=be,
                )
                ms, reps = timer.measure(launch.launch)
                row[f"{mode}_ms"] = ms
                row[f"{mode}_x_floor"] = ms / floor_ms
                row[f"{mode}_x_copy"] = ms / copy_ms
                row[f"{mode}_batch"] = reps
                row[f"scratch_bytes_{mode}"] = launch.scratch_bytes
                if dtype == "float32":
                    be.synchronize()
                    outs[mode] = be.to_numpy(launch.out).astype(np.float64)
                del launch
            row["det_over_atomic"] = row["deterministic_ms"] / row["atomic_ms"]
            if not args.no_roi_align:
                fn, why = roi_align_backward_fn(workload, boxes_h, box_ind_h, dtype)
                if fn is None:
                    row["roi_align_error"] = why
                else:
                    roi_ms, _ = timer.measure(fn)
                    row["roi_align_bwd_ms"] = roi_ms
                    row["roi_over_atomic"] = roi_ms / row["atomic_ms"]
                    row["roi_over_deterministic"] = roi_ms / row["deterministic_ms"]
                del fn
            rows.append(row)
            print(
                f"{wname:13s} {dtype:8s} atomic {row['atomic_ms']:.4f} ms, det "
                f"{row['deterministic_ms']:.4f} ms, floor {floor_ms:.4f} ms, "
                f"roi_align {row.get('roi_align_bwd_ms', float('nan')):.4f} ms",
                flush=True,
            )
            if outs:
                checks.append(
                    sanity_check(kernels, wname, grads_h, boxes_h, box_ind_h, workload, outs)
                )
            # Partial results survive a kill (the check script time-boxes us).
            result["elapsed_s"] = time.monotonic() - t_start
            result["targets"] = evaluate_targets(rows)
            write_json(result, args.out)
        del grads, boxes, box_ind
    result["status"] = "partial" if skipped else "ok"
    result["elapsed_s"] = time.monotonic() - t_start
    result["targets"] = evaluate_targets(rows)
    return result, 0


def write_json(result, path):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(result, f, indent=2)
    os.replace(tmp, path)


def sanity_check(kernels, wname, grads, boxes, box_ind, workload, outs):
    """float32: atomic vs deterministic vs the CPU kernel, relative to max |out|."""
    B, H, W, D, *_ = workload
    cpu = kernels.grad_image_cpu(grads, boxes, box_ind, [B, H, W, D], "float32").astype(np.float64)
    scale = max(float(np.abs(cpu).max()), 1e-30)
    check = {"workload": wname, "dtype": "float32"}
    for mode, out in outs.items():
        check[f"{mode}_vs_cpu_max_rel"] = float(np.abs(out - cpu).max() / scale)
    check["ok"] = all(v < 1e-4 for k, v in check.items() if k.endswith("_max_rel"))
    return check


def evaluate_targets(rows):
    targets = []
    for r in rows:
        if r["workload"] == "maskrcnn-14" and r["dtype"] in FLOOR_TARGET:
            limit = FLOOR_TARGET[r["dtype"]]
            targets.append(
                {
                    "target": f"{r['dtype']} maskrcnn-14 atomic <= {limit}x floor",
                    "value": r["atomic_x_floor"],
                    "value_x_copy": r["atomic_x_copy"],
                    "ok": r["atomic_x_floor"] <= limit,
                }
            )
    for r in rows:
        targets.append(
            {
                "target": f"{r['workload']} {r['dtype']} deterministic <= {DET_TARGET}x atomic",
                "value": r["det_over_atomic"],
                "ok": r["det_over_atomic"] <= DET_TARGET,
            }
        )
        if "roi_align_bwd_ms" in r:
            targets.append(
                {
                    "target": f"{r['workload']} {r['dtype']} atomic faster than roi_align backward",
                    "value": r["roi_over_atomic"],
                    "ok": r["roi_over_atomic"] > 1.0,
                }
            )
    return targets


def markdown(result):
    lines = [
        f"GPU: {result['device'].get('name')} (driver {result['device'].get('driver_version')}, "
        f"CUDA runtime {result['device'].get('cuda_runtime_version')}, {result['backend']})",
        "",
        "| workload | dtype | atomic ms | det ms | det/atomic | floor ms | atomic x floor "
        "| det x floor | roi_align bwd ms | roi_align/atomic |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in result["results"]:
        roi = r.get("roi_align_bwd_ms")
        roi_s = f"{roi:.4f}" if roi is not None else "n/a"
        ratio_s = f"{r['roi_over_atomic']:.2f}" if roi is not None else "n/a"
        lines.append(
            f"| {r['workload']} | {r['dtype']} | {r['atomic_ms']:.4f} "
            f"| {r['deterministic_ms']:.4f} "
            f"| {r['det_over_atomic']:.2f} | {r['floor_ms']:.4f} | {r['atomic_x_floor']:.2f} "
            f"| {r['deterministic_x_floor']:.2f} | {roi_s} | {ratio_s} |"
        )
    lines += [
        "",
        "floor = (grads + output bytes) / D2D copy bandwidth (= half the time of copying those "
        "bytes); x copy = x floor / 2.",
        "",
        "Targets:",
    ]
    for t in result["targets"]:
        extra = f" (x copy {t['value_x_copy']:.2f})" if "value_x_copy" in t else ""
        lines.append(f"- [{'x' if t['ok'] else ' '}] {t['target']}: {t['value']:.2f}{extra}")
    for c in result["sanity_checks"]:
        lines.append(
            f"- sanity {c['workload']} float32 vs CPU: {'ok' if c['ok'] else 'MISMATCH'} {c}"
        )
    if result["skipped_for_time"]:
        lines.append(f"- skipped (time budget): {', '.join(result['skipped_for_time'])}")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--out", default=DEFAULT_OUT, help="JSON output file")
    p.add_argument("--workloads", nargs="+", default=list(WORKLOADS), choices=list(WORKLOADS))
    p.add_argument("--dtypes", nargs="+", default=list(DTYPES), choices=list(DTYPES))
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument(
        "--time-budget", type=float, default=150.0, help="seconds; later cases are skipped"
    )
    p.add_argument("--backend", choices=["torch", "cupy"], default=None)
    p.add_argument("--no-roi-align", action="store_true")
    p.add_argument("--seed", type=int, default=1234)
    args = p.parse_args(argv)
    result, rc = run(args)
    if result is None:
        return rc
    text = markdown(result)
    result["markdown"] = text
    write_json(result, args.out)
    print()
    print(text)
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
