#!/usr/bin/env python3
"""Summarizes several bench_cpu.py runs (JSON files) as a markdown table.

Usage: python benchmarks/summarize_runs.py RUN.json [RUN.json ...]

Each cell is the median over runs of that run's TF/ours ratio, with the
range across runs, because a shared 2-core machine is noisy run to run. The
floor column is our time over the memory floor measured in the same run
(read grads once + write a fresh output once); lower is better. TF/floor is
TF's time over the same floor: a kernel at the floor would be TF/floor times
faster than TF, so a speed-up target above it asks for less than one pass
over the data. Below the table: the contention of each run (the share of CPU
time that was not ours, and the hypervisor's steal alone where recorded).
"""

from __future__ import annotations

import json
import statistics
import sys

from _support import percent


def main(paths: list[str]) -> None:
    runs = [json.load(open(p, encoding="utf-8")) for p in paths]
    keys = [(r["workload"], r["dtype"]) for r in runs[0]["results"]]
    print(
        "| workload | T | ours ms (median of runs) | TF/ours: median [min, max] "
        "| TF-det/ours: median [min, max] | ours/floor: median [min, max] "
        "| ours/write: median [min, max] | TF/floor: median | target | met by median |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|:-:|")
    for wl, dt in keys:
        rows = [
            next(r for r in run["results"] if (r["workload"], r["dtype"]) == (wl, dt))
            for run in runs
        ]
        ours = statistics.median(r["ours"]["median_ms"] for r in rows)
        sp = [r["speedup"] for r in rows if r.get("speedup")]
        det = [r["speedup_deterministic"] for r in rows if r.get("speedup_deterministic")]
        floor = [r["ours_over_floor"] for r in rows if r.get("ours_over_floor")]
        write = [r["ours_over_write"] for r in rows if r.get("ours_over_write")]
        tf_floor = [
            r["speedup"] * r["ours_over_floor"]
            for r in rows
            if r.get("speedup") and r.get("ours_over_floor")
        ]

        def fmt(v: list[float]) -> str:
            if not v:
                return "—"
            return f"{statistics.median(v):.2f}× [{min(v):.2f}, {max(v):.2f}]"

        target = rows[0].get("target_speedup")
        met = "—" if not sp or target is None else ("y" if statistics.median(sp) >= target else "n")
        tgt = "—" if target is None or not sp else f"{target:g}×"
        print(
            f"| {wl} | {dt} | {ours:.2f} | {fmt(sp)} | {fmt(det)} | {fmt(floor)} "
            f"| {fmt(write)} | {median_cell(tf_floor)} | {tgt} | {met} |"
        )
    print()
    for path, run in zip(paths, runs):
        busy = run.get("contention", {})
        other, steal = busy.get("other_cpu_frac"), busy.get("steal_frac")
        cells = [f"{path}: not ours {percent(other)}"]
        if steal is not None:
            cells.append(f"steal {percent(steal)}")
        print("- " + ", ".join(cells))


def median_cell(values: list[float]) -> str:
    return f"{statistics.median(values):.2f}×" if values else "—"


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):
        asked = len(sys.argv) >= 2
        print(__doc__, file=sys.stdout if asked else sys.stderr)
        sys.exit(0 if asked else 2)
    main(sys.argv[1:])
