#!/usr/bin/env python3
"""Summarizes several bench_cpu.py runs (JSON files) as a markdown table.

Usage: python benchmarks/summarize_runs.py RUN.json [RUN.json ...]

Each cell is the median over runs of that run's TF/ours ratio, with the
range across runs, because a shared 2-core machine is noisy run to run. The
floor column is our time over the memory floor measured in the same run
(read grads once + write a fresh output once); lower is better.
"""

from __future__ import annotations

import json
import statistics
import sys


def main(paths: list[str]) -> None:
    runs = [json.load(open(p, encoding="utf-8")) for p in paths]
    keys = [(r["workload"], r["dtype"]) for r in runs[0]["results"]]
    print(
        "| workload | T | ours ms (median of runs) | TF/ours: median [min, max] "
        "| TF-det/ours: median [min, max] | ours/floor: median [min, max] "
        "| ours/write: median [min, max] | target | met by median |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|:-:|")
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

        def fmt(v: list[float]) -> str:
            if not v:
                return "—"
            return f"{statistics.median(v):.2f}× [{min(v):.2f}, {max(v):.2f}]"

        target = rows[0].get("target_speedup")
        met = "—" if not sp or target is None else ("y" if statistics.median(sp) >= target else "n")
        tgt = "—" if target is None or not sp else f"{target:g}×"
        print(
            f"| {wl} | {dt} | {ours:.2f} | {fmt(sp)} | {fmt(det)} | {fmt(floor)} "
            f"| {fmt(write)} | {tgt} | {met} |"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
