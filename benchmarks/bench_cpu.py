#!/usr/bin/env python3
"""CPU benchmark: crop_and_resize_grad vs TF's builtin CropAndResizeGradImage.

Usage::

    python benchmarks/bench_cpu.py [--quick] [--out DIR] [--repeats N] [--tf-only]

The main phase times our op and ``tf.raw_ops.CropAndResizeGradImage`` (TF's
default, multi-threaded and racy CPU kernel) side by side in one process.
A second phase re-runs this script as a subprocess with
``tf.config.experimental.enable_op_determinism()`` switched on (that switch is
process-global and cannot be turned off again) and times TF's deterministic
(single-threaded) fallback plus our op in that process. The results are merged
into one table, ``results_cpu.json`` and ``results_cpu.png``.

See benchmarks/README.md for what each column means.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import _support  # puts tests/ on sys.path for `support`
import numpy as np
from support.numerics import ITEMSIZE
from support.workloads import WORKLOADS, workload_case

# Keep TF's C++ logging quiet; must be set before TensorFlow is imported.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

DTYPES = ("float32", "float16", "float64", "bfloat16")
TF_BASELINE_DTYPES = ("float32", "float16", "float64")  # TF's kernel has no bfloat16
QUICK_WORKLOADS = ("maskrcnn-14", "overlap-1img")
QUICK_DTYPES = ("float32", "float16")
TARGET = {"float16": 5.0}  # minimum TF/ours speedup; everything else DEFAULT_TARGET
DEFAULT_TARGET = 2.0
# Workloads with their own target for every dtype: fpn-p2's cost is writing its
# 498 MB output, which TF's kernel writes too.
WORKLOAD_TARGET = {"fpn-p2": 1.5}
WARMUP = 2


# --------------------------------------------------------------------------- #
# Machine description and copy bandwidth
# --------------------------------------------------------------------------- #
def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _cpu_model() -> str:
    for line in _read("/proc/cpuinfo").splitlines():
        if line.lower().startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _mem_total_gib() -> float | None:
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            return round(int(line.split()[1]) / 2**20, 2)
    return None


def _llc_bytes() -> int | None:
    best = None
    base = Path("/sys/devices/system/cpu/cpu0/cache")
    if not base.is_dir():
        return None
    for idx in base.glob("index*"):
        kind = _read(str(idx / "type")).strip()
        size = _read(str(idx / "size")).strip()
        if kind == "Instruction" or not size:
            continue
        mult = {"K": 2**10, "M": 2**20, "G": 2**30}.get(size[-1], 1)
        num = int(size[:-1]) if size[-1] in "KMG" else int(size)
        best = max(best or 0, num * mult)
    return best


def _nproc() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        return os.cpu_count() or 1


def machine_description(tf_module) -> dict:
    llc = _llc_bytes()
    return {
        "platform": platform.platform(),
        "cpu_model": _cpu_model(),
        "nproc": _nproc(),
        "cpu_count": os.cpu_count(),
        "memory_total_gib": _mem_total_gib(),
        "llc_bytes": llc,
        "python": platform.python_version(),
        "tensorflow": tf_module.__version__,
        "numpy": np.__version__,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def wait_for_idle(timeout_s: float, threshold: float = 0.10, window_s: float = 3.0) -> dict:
    """Wait (up to timeout_s) until other processes and steal use < threshold of the CPUs."""
    t0 = time.time()
    last = None
    while True:
        probe = _support.CpuContention()
        time.sleep(window_s)
        last = probe.stop().get("other_cpu_frac")
        if last is None or last < threshold:
            break
        if time.time() - t0 >= timeout_s:
            msg = f"machine still busy ({100 * last:.0f}% other CPU); starting anyway"
            print(msg, file=sys.stderr)
            break
        msg = f"waiting for an idle machine ({100 * last:.0f}% other CPU) ..."
        print(msg, file=sys.stderr, flush=True)
    return {"waited_s": time.time() - t0, "other_cpu_frac_at_start": last}


def measure_copy_bandwidth(repeats: int = 7) -> dict:
    """Median np.copyto time over a float32 array >= max(512 MiB, 4 x LLC).

    Bytes counted = read + write (2 x array size); write-allocate traffic is
    not counted, matching how the per-case effective bandwidth is counted.
    Measured with one thread and with nproc threads (each copies 1/nproc of
    the array; np.copyto releases the GIL). The reference for the
    "fraction of copy BW" column is the larger of the two, since the kernels
    under test use all cores.
    """
    llc = _llc_bytes() or 0
    nbytes = max(512 * 2**20, 4 * llc)
    n = nbytes // 4
    src = np.ones(n, dtype=np.float32)
    dst = np.zeros(n, dtype=np.float32)  # zeros() + fill: pages are touched
    dst.fill(1.0)
    moved = 2 * src.nbytes

    def timed(fn) -> float:
        fn()  # warmup
        ts = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
        return statistics.median(ts)

    t1 = timed(lambda: np.copyto(dst, src))
    nthreads = _nproc()
    bounds = np.linspace(0, n, nthreads + 1).astype(np.int64)
    slices = [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]
    with ThreadPoolExecutor(nthreads) as ex:
        tn = timed(lambda: list(ex.map(lambda s: np.copyto(dst[s], src[s]), slices)))
    one = moved / t1 / 1e9
    many = moved / tn / 1e9
    return {
        "array_mib": nbytes / 2**20,
        "bytes_per_copy_counted": moved,
        "repeats": repeats,
        "single_thread_ms": t1 * 1e3,
        "single_thread_gbps": one,
        "threads": nthreads,
        "all_threads_ms": tn * 1e3,
        "all_threads_gbps": many,
        "reference_gbps": max(one, many),
    }


# --------------------------------------------------------------------------- #
# Inputs
# --------------------------------------------------------------------------- #
def make_inputs(workload: str, seed: int) -> dict:
    """Random boxes/box_ind/grads for one workload (numpy, fixed seed)."""
    case = workload_case(workload, np.random.default_rng([seed, list(WORKLOADS).index(workload)]))
    return {
        "grads": case.grads,
        "boxes": case.boxes,
        "box_ind": case.box_ind,
        "image_size": np.array(case.image_size, dtype=np.int32),
    }


def bytes_moved(workload: str, dtype: str) -> int:
    """Bytes of grads read (float32) plus bytes of output written (T)."""
    b, h, w, d, n, ch, cw = WORKLOADS[workload]
    return n * ch * cw * d * 4 + b * h * w * d * ITEMSIZE[dtype]


# --------------------------------------------------------------------------- #
# Timing
# --------------------------------------------------------------------------- #
def bench_interleaved(fns: dict, repeats: int, case_budget_s: float) -> dict:
    """Time several zero-arg callables round-robin; return stats per name.

    Each callable is warmed up WARMUP times. If repeats x (second warm-up time)
    would exceed case_budget_s for a callable, its repeat count is cut (not
    below 3) and the result is flagged "reduced".
    """
    est = {}
    for name, fn in fns.items():
        t = 0.0
        for _ in range(WARMUP):
            t0 = time.perf_counter()
            fn()
            t = time.perf_counter() - t0
        est[name] = t
    want = {}
    for name, t in est.items():
        cap = int(case_budget_s / t) if t > 0 else repeats
        want[name] = max(3, min(repeats, cap))
    times: dict[str, list[float]] = {name: [] for name in fns}
    for i in range(max(want.values())):
        for name, fn in fns.items():
            if i >= want[name]:
                continue
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    out = {}
    for name, ts in times.items():
        out[name] = {
            "median_ms": statistics.median(ts) * 1e3,
            "min_ms": min(ts) * 1e3,
            "max_ms": max(ts) * 1e3,
            "repeats": len(ts),
            "repeats_requested": repeats,
            "reduced": len(ts) < repeats,
        }
    return out


class Floor:
    """The memory floor of one case, measured in the same run as the ops.

    ``read_write``: read ``grads`` once and write a fresh output of the op's
    size and dtype once. ``write``: only the fresh output. Both use the op's
    thread count (the array is cut into that many slices; NumPy releases the
    GIL). A fresh ``np.empty`` per call, like the op's output, so its page
    faults are counted.
    """

    def __init__(self, grads: np.ndarray, out_shape, dtype: str, threads: int) -> None:
        self.grads = grads.reshape(-1)
        self.shape = tuple(int(v) for v in out_shape)
        # bfloat16 has no NumPy dtype: any 2-byte type writes the same bytes.
        self.dtype = np.float16 if dtype == "bfloat16" else np.dtype(dtype)
        self.threads = max(1, threads)
        self.pool = ThreadPoolExecutor(self.threads) if self.threads > 1 else None

    @staticmethod
    def _slices(n: int, k: int) -> list[slice]:
        b = np.linspace(0, n, k + 1).astype(np.int64)
        return [slice(int(x), int(y)) for x, y in zip(b[:-1], b[1:])]

    def _run(self, fn, n: int) -> None:
        parts = self._slices(n, self.threads)
        if self.pool is None:
            fn(parts[0])
        else:
            list(self.pool.map(fn, parts))

    def write(self) -> None:
        out = np.empty(self.shape, self.dtype).reshape(-1)
        self._run(lambda s: out[s].fill(0), out.size)

    def read_write(self) -> None:
        self._run(lambda s: self.grads[s].max(), self.grads.size)
        self.write()


def _force(t) -> None:
    """Wait for an eager result (same treatment for both ops).

    CPU eager ops are synchronous, but reading one element makes sure the
    output exists. It is read through a zero-copy NumPy view: ``.numpy()``
    copies the whole output (about 2.5 ms for maskrcnn-14's 31 MB), and TF's
    slicing (``t[0, 0, 0, 0]``) is an op of its own, 0.3-0.8 ms of Python and
    dispatch per call; either would add the same time to both ops and
    compress every ratio.
    """
    np.asarray(t).reshape(-1)[:1].tolist()


def run_phase(args, tf, ours_fn, deterministic_phase: bool) -> list[dict]:
    """Benchmark every selected (workload, dtype); returns per-case records."""
    results = []
    for wl in args.workloads:
        inputs = make_inputs(wl, args.seed)
        with tf.device("/CPU:0"):
            tens = {k: tf.constant(v) for k, v in inputs.items()}
        for dt in args.dtypes:
            tdt = tf.as_dtype(dt)
            has_tf = dt in TF_BASELINE_DTYPES
            if ours_fn is None and not has_tf:
                continue

            def call_tf(tdt=tdt, t=tens):
                return tf.raw_ops.CropAndResizeGradImage(
                    grads=t["grads"],
                    boxes=t["boxes"],
                    box_ind=t["box_ind"],
                    image_size=t["image_size"],
                    T=tdt,
                    method="bilinear",
                )

            def call_ours(tdt=tdt, t=tens):
                return ours_fn(
                    t["grads"],
                    t["boxes"],
                    t["box_ind"],
                    t["image_size"],
                    tdt,
                    method="bilinear",
                )

            fns = {}
            if ours_fn is not None:
                fns["ours"] = lambda f=call_ours: _force(f())
            if has_tf:
                fns["tf"] = lambda f=call_tf: _force(f())
            if not deterministic_phase:
                floor = Floor(inputs["grads"], inputs["image_size"], dt, args.threads)
                fns["floor"] = floor.read_write
                fns["write_floor"] = floor.write
            with tf.device("/CPU:0"):
                stats = bench_interleaved(fns, args.repeats, args.case_budget)
                phase = "deterministic" if deterministic_phase else "default"
                rec = {"workload": wl, "dtype": dt, "phase": phase}
                rec.update(stats)
                if ours_fn is not None and has_tf:
                    rec["max_rel_diff_vs_tf"] = _rel_diff(call_ours(), call_tf())
            results.append(rec)
            _progress(rec, deterministic_phase)
    return results


def _rel_diff(a, b) -> float:
    """max|a-b| / max|b| in float64 (informational sanity check only)."""
    x = np.asarray(a.numpy(), dtype=np.float64)
    y = np.asarray(b.numpy(), dtype=np.float64)
    if x.shape != y.shape:
        return float("nan")
    denom = float(np.max(np.abs(y))) or 1.0
    return float(np.max(np.abs(x - y))) / denom


def _progress(rec: dict, det: bool) -> None:
    parts = [f"[{'det' if det else 'default'}] {rec['workload']:<13} {rec['dtype']:<9}"]
    for key in ("ours", "tf"):
        if key in rec:
            parts.append(f"{key} {rec[key]['median_ms']:8.3f} ms (n={rec[key]['repeats']})")
    print("  ".join(parts), file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- #
# Merge / report
# --------------------------------------------------------------------------- #
def merge(main: list[dict], det: list[dict] | None, copy_bw: dict) -> list[dict]:
    det_by_key = {(r["workload"], r["dtype"]): r for r in (det or [])}
    rows = []
    ref = copy_bw["reference_gbps"]
    for r in main:
        key = (r["workload"], r["dtype"])
        d = det_by_key.get(key, {})
        moved = bytes_moved(*key)
        ours = r.get("ours")
        tf_ = r.get("tf")
        tf_det = d.get("tf")
        ours_det = d.get("ours")
        target = WORKLOAD_TARGET.get(r["workload"], TARGET.get(r["dtype"], DEFAULT_TARGET))
        row = {
            "workload": r["workload"],
            "shape_BHWDNchcw": list(WORKLOADS[r["workload"]]),
            "dtype": r["dtype"],
            "bytes_moved": moved,
            "ours": ours,
            "tf": tf_,
            "tf_deterministic": tf_det,
            "ours_in_deterministic_process": ours_det,
            "speedup": _ratio(tf_, ours),
            # TF-deterministic vs ours, both timed in the deterministic subprocess
            # (falls back to the main-phase ours if ours was not timed there).
            "speedup_deterministic": _ratio(tf_det, ours_det or ours),
            "ours_gbps": moved / ours["median_ms"] / 1e6 if ours else None,
            "tf_gbps": moved / tf_["median_ms"] / 1e6 if tf_ else None,
            "target_speedup": target if tf_ else None,
            "speedup_of_min_times": _ratio(tf_, ours, "min_ms"),
            "max_rel_diff_vs_tf": r.get("max_rel_diff_vs_tf"),
            "max_rel_diff_vs_tf_deterministic": d.get("max_rel_diff_vs_tf"),
            "floor": r.get("floor"),
            "write_floor": r.get("write_floor"),
            # Our time as a multiple of the floor (read grads + write output once).
            "ours_over_floor": _ratio(ours, r.get("floor")),
            "ours_over_write": _ratio(ours, r.get("write_floor")),
        }
        row["ours_frac_copy_bw"] = row["ours_gbps"] / ref if row["ours_gbps"] else None
        row["tf_frac_copy_bw"] = row["tf_gbps"] / ref if row["tf_gbps"] else None
        if row["speedup"] is None:
            row["target_met"] = None
        else:
            row["target_met"] = bool(row["speedup"] >= target)
        rows.append(row)
    return rows


def _ratio(num, den, key: str = "median_ms"):
    if not num or not den:
        return None
    return num[key] / den[key]


def _fmt(x, spec: str, suffix: str = "") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    return f"{x:{spec}}{suffix}"


def _ms(stat) -> str:
    if not stat:
        return "—"
    s = f"{stat['median_ms']:.3f}"
    return s + "\\*" if stat.get("reduced") else s


def markdown_table(rows: list[dict], copy_bw: dict, det_status: str) -> str:
    lines = [
        f"Copy bandwidth (np.copyto, {copy_bw['array_mib']:.0f} MiB float32, read+write): "
        f"{copy_bw['single_thread_gbps']:.1f} GB/s with 1 thread, "
        f"{copy_bw['all_threads_gbps']:.1f} GB/s with {copy_bw['threads']} threads; "
        f"reference = {copy_bw['reference_gbps']:.1f} GB/s.",
        f"TF-deterministic phase: {det_status}.",
        "",
        "| workload | T | ours ms | TF ms | TF/ours | TF-det ms | TF-det/ours | ours GB/s "
        "| frac copy BW | floor ms | ours/floor | write ms | ours/write | target | met "
        "| diff vs TF-det |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|:-:|---:|",
    ]
    for r in rows:
        has_tf = r["tf"] is not None
        if not has_tf:
            met = "n/a (no TF baseline)"
        elif r["target_met"] is None:
            met = "—"
        else:
            met = "y" if r["target_met"] else "n"
        target = _fmt(r["target_speedup"], "g", "×") if has_tf else "—"
        lines.append(
            "| "
            + " | ".join(
                [
                    r["workload"],
                    r["dtype"],
                    _ms(r["ours"]),
                    _ms(r["tf"]) if has_tf else "— (no TF kernel)",
                    _fmt(r["speedup"], ".2f", "×"),
                    _ms(r["tf_deterministic"]),
                    _fmt(r["speedup_deterministic"], ".2f", "×"),
                    _fmt(r["ours_gbps"], ".1f"),
                    _fmt(r["ours_frac_copy_bw"], ".2f"),
                    _ms(r["floor"]),
                    _fmt(r["ours_over_floor"], ".2f", "×"),
                    _ms(r["write_floor"]),
                    _fmt(r["ours_over_write"], ".2f", "×"),
                    target,
                    met,
                    _fmt(r["max_rel_diff_vs_tf_deterministic"], ".1e"),
                ]
            )
            + " |"
        )
    if any(
        (s or {}).get("reduced") for r in rows for s in (r["ours"], r["tf"], r["tf_deterministic"])
    ):
        lines.append("")
        lines.append(
            "\\* fewer repeats than requested (per-case time budget); see results_cpu.json"
        )
    return "\n".join(lines)


def plot(rows: list[dict], path: Path, tf_only: bool) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    workloads = list(dict.fromkeys(r["workload"] for r in rows))
    dtypes = [d for d in DTYPES if any(r["dtype"] == d and r["tf"] for r in rows)]
    by = {(r["workload"], r["dtype"]): r for r in rows}
    fig, ax = plt.subplots(figsize=(max(7.5, 2.2 * len(workloads) + 2.5), 4.5))
    width = 0.8 / max(1, len(dtypes))
    colors = {"float32": "tab:blue", "float16": "tab:orange", "float64": "tab:green"}
    for j, dt in enumerate(dtypes):
        xs = np.arange(len(workloads)) + (j - (len(dtypes) - 1) / 2) * width
        if tf_only:
            vals = [(by.get((w, dt)) or {}).get("tf") for w in workloads]
            dets = [(by.get((w, dt)) or {}).get("tf_deterministic") for w in workloads]
            heights = [v["median_ms"] if v else 0 for v in vals]
            ax.bar(xs, heights, width, color=colors[dt], label=f"TF {dt}")
            ticks = [v["median_ms"] if v else np.nan for v in dets]
            ax.scatter(xs, ticks, marker="_", s=300, color="k", zorder=3)
        else:
            vals = [(by.get((w, dt)) or {}).get("speedup") for w in workloads]
            dets = [(by.get((w, dt)) or {}).get("speedup_deterministic") for w in workloads]
            bars = ax.bar(xs, [v or 0 for v in vals], width, color=colors[dt], label=dt)
            for bar, v in zip(bars, vals):
                if v:
                    ax.annotate(
                        f"{v:.1f}",
                        (bar.get_x() + bar.get_width() / 2, v),
                        ha="center",
                        va="bottom",
                        fontsize=7,
                    )
            ticks = [v if v else np.nan for v in dets]
            ax.scatter(xs, ticks, marker="_", s=300, color="k", zorder=3)
    ax.set_xticks(np.arange(len(workloads)), workloads)
    ax.set_yscale("log")
    if tf_only:
        ax.set_ylabel("TF median time, ms (log)")
        ax.scatter([], [], marker="_", s=300, color="k", label="TF, op determinism on")
        ax.set_title("TF CropAndResizeGradImage on CPU (--tf-only)")
    else:
        ax.axhline(1.0, color="grey", lw=0.8)
        label = f"target {DEFAULT_TARGET:.0f}×"
        ax.axhline(DEFAULT_TARGET, color="k", ls="--", lw=1, label=label)
        if "float16" in dtypes:
            label = f"float16 target {TARGET['float16']:.0f}×"
            ax.axhline(TARGET["float16"], color="tab:orange", ls=":", lw=1.5, label=label)
        ax.set_ylabel("speedup = TF ms / ours ms (log)")
        ax.scatter([], [], marker="_", s=300, color="k", label="vs TF, op determinism on")
        ax.set_title("crop_and_resize_grad vs TF CropAndResizeGradImage, CPU")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# --------------------------------------------------------------------------- #
# Main
# --------------------------------------------------------------------------- #
def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="maskrcnn-14 and overlap-1img, float32+float16, 3 repeats",
    )
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    p.add_argument(
        "--repeats", type=int, default=None, help="timed calls per case (default 15, --quick 3)"
    )
    p.add_argument(
        "--tf-only", action="store_true", help="benchmark TF's builtin only (package not needed)"
    )
    p.add_argument(
        "--tf-deterministic",
        action="store_true",
        help="internal phase: enable TF op determinism in this process, time, write --phase-json",
    )
    p.add_argument("--phase-json", type=Path, help=argparse.SUPPRESS)
    p.add_argument(
        "--no-det-phase", action="store_true", help="skip the TF-deterministic subprocess phase"
    )
    p.add_argument("--workloads", nargs="+", choices=list(WORKLOADS), help="subset of workloads")
    p.add_argument("--dtypes", nargs="+", choices=list(DTYPES), help="subset of dtypes")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument(
        "--threads",
        type=int,
        default=0,
        help="TF intra-op threads for both ops and the floor (default: all CPUs)",
    )
    p.add_argument(
        "--wait-idle",
        type=float,
        default=0.0,
        metavar="S",
        help="first wait up to S seconds for other processes to use < 10%% of the CPUs",
    )
    p.add_argument(
        "--case-budget",
        type=float,
        default=20.0,
        help="max seconds of timed calls per op per case; repeats are cut (min 3) beyond it",
    )
    args = p.parse_args(argv)
    if args.repeats is None:
        args.repeats = 3 if args.quick else 15
    if args.repeats < 1:
        p.error("--repeats must be >= 1")
    if args.threads <= 0:
        args.threads = _nproc()
    if args.workloads is None:
        args.workloads = list(QUICK_WORKLOADS) if args.quick else list(WORKLOADS)
    if args.dtypes is None:
        args.dtypes = list(QUICK_DTYPES) if args.quick else list(DTYPES)
    return args


def _cpu_isa() -> str | None:
    """The ISA copy our CPU kernel dispatched to (CRG_CPU_ISA caps it)."""
    try:
        from crop_and_resize_grad import _kernels

        return _kernels.cpu_isa()
    except Exception:  # noqa: BLE001 - informational only
        return None


def load_ours(tf_only: bool):
    if tf_only:
        return None
    try:
        import crop_and_resize_grad
    except Exception as e:  # noqa: BLE001 - report any import failure
        sys.exit(f"cannot import crop_and_resize_grad ({type(e).__name__}: {e}); use --tf-only")
    return crop_and_resize_grad.crop_and_resize_grad_image


def package_info() -> dict:
    """Where the imported package lives and which op library it loaded.

    Called right after import: the library can be rebuilt while we run, and a
    process keeps the version it loaded, so hash it now (the deterministic
    subprocess imports separately and the two hashes are compared).
    """
    import crop_and_resize_grad

    pkg_file = getattr(crop_and_resize_grad, "__file__", None)
    info = {"version": getattr(crop_and_resize_grad, "__version__", None), "file": pkg_file}
    if pkg_file:
        pkg_dir = Path(pkg_file).parent
        build_info = pkg_dir / "_build_info.json"
        if build_info.exists():
            try:
                info["build_info"] = json.loads(build_info.read_text())
            except ValueError:
                pass
        libs = sorted(pkg_dir.glob("*.so"))
        if libs:
            info["op_library"] = str(libs[0])
            info["op_library_sha256"] = hashlib.sha256(libs[0].read_bytes()).hexdigest()
            info["op_library_mtime"] = datetime.datetime.fromtimestamp(
                libs[0].stat().st_mtime, datetime.timezone.utc
            ).isoformat(timespec="seconds")
    return info


def child_argv(args) -> list[str]:
    argv = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--tf-deterministic",
        "--repeats",
        str(args.repeats),
        "--seed",
        str(args.seed),
        "--case-budget",
        str(args.case_budget),
        "--threads",
        str(args.threads),
        "--workloads",
        *args.workloads,
        "--dtypes",
        *args.dtypes,
    ]
    if args.tf_only:
        argv.append("--tf-only")
    return argv


def run_det_phase(args) -> tuple[list[dict] | None, str, dict | None]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "det.json"
        cmd = [*child_argv(args), "--phase-json", str(out)]
        print("running TF-deterministic phase in a subprocess ...", file=sys.stderr, flush=True)
        proc = subprocess.run(cmd, check=False)
        if proc.returncode != 0 or not out.exists():
            return None, f"failed (exit code {proc.returncode})", None
        data = json.loads(out.read_text())
    status = "ok (subprocess with tf.config.experimental.enable_op_determinism())"
    return data["results"], status, data.get("package")


def main(argv=None) -> int:
    args = parse_args(argv)
    t_start = time.perf_counter()
    # Wait before importing anything heavy, so that we load the newest op library.
    idle = wait_for_idle(args.wait_idle) if args.wait_idle > 0 else None
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    if args.tf_deterministic:
        tf.config.experimental.enable_op_determinism()
        ours = load_ours(args.tf_only)
        pkg = package_info() if ours is not None else None
        results = run_phase(args, tf, ours, deterministic_phase=True)
        payload = {"results": results, "package": pkg, "wall_s": time.perf_counter() - t_start}
        if args.phase_json:
            args.phase_json.write_text(json.dumps(payload, indent=1))
        else:
            print(json.dumps(payload, indent=1))
        return 0

    ours = load_ours(args.tf_only)
    machine = machine_description(tf)
    machine["wait_idle"] = idle
    if ours is not None:
        machine["crop_and_resize_grad"] = package_info()
    machine["loadavg_at_start"] = _support.load_average()
    contention = _support.CpuContention()
    print("measuring copy bandwidth ...", file=sys.stderr, flush=True)
    copy_bw = measure_copy_bandwidth()
    main_results = run_phase(args, tf, ours, deterministic_phase=False)
    if args.no_det_phase:
        det_results, det_status = None, "skipped (--no-det-phase)"
    else:
        det_results, det_status, det_pkg = run_det_phase(args)
        ours_sha = (machine.get("crop_and_resize_grad") or {}).get("op_library_sha256")
        det_sha = (det_pkg or {}).get("op_library_sha256")
        if ours_sha != det_sha:
            det_status += (
                "; WARNING: the op library changed between the phases "
                f"(main {str(ours_sha)[:12]}, deterministic {str(det_sha)[:12]})"
            )
    busy = contention.stop()
    rows = merge(main_results, det_results, copy_bw)
    table = markdown_table(rows, copy_bw, det_status)
    if busy.get("other_cpu_frac") is not None:
        frac = busy["other_cpu_frac"]
        steal = busy.get("steal_frac")
        stolen = "" if steal is None else f", hypervisor steal alone {_support.percent(steal)}"
        table += (
            f"\n\nCPU time not ours during the run: {_support.percent(frac)} of the machine's"
            f" (other processes and steal{stolen}; load average {' '.join(busy['loadavg'])})."
        )
        if frac > 0.10:
            table += " WARNING: the machine was shared; timings are noisy."
    wall = time.perf_counter() - t_start

    args.out.mkdir(parents=True, exist_ok=True)
    payload = {
        "machine": machine,
        "config": {
            "quick": args.quick,
            "tf_only": args.tf_only,
            "repeats": args.repeats,
            "warmup": WARMUP,
            "case_budget_s": args.case_budget,
            "seed": args.seed,
            "workloads": {w: WORKLOADS[w] for w in args.workloads},
            "dtypes": args.dtypes,
            "method": "bilinear",
            "timing": "eager CPU calls, inputs pre-converted to CPU tensors, result forced "
            "by reading one element; ops interleaved call by call; "
            "median of time.perf_counter deltas",
            "deterministic_phase": det_status,
            "targets": {"default": DEFAULT_TARGET, **TARGET, **WORKLOAD_TARGET},
            "threads": args.threads,
            "cpu_isa": _cpu_isa(),
            "floor": "fresh np.empty output of the op's size and dtype filled once "
            "(write_floor), plus one read of grads (floor), on the same thread count",
        },
        "copy_bandwidth": copy_bw,
        "contention": busy,
        "results": rows,
        "wall_s": wall,
    }
    (args.out / "results_cpu.json").write_text(json.dumps(payload, indent=1))
    plot(rows, args.out / "results_cpu.png", tf_only=ours is None)
    print(table)
    outs = f"{args.out / 'results_cpu.json'} and {args.out / 'results_cpu.png'}"
    print(f"\nwrote {outs} ({wall:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
