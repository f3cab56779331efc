"""A/B of two builds of the CPU kernel, in one process, calls interleaved.

    python benchmarks/ab_kernels.py BUILD_A BUILD_B [--workloads ...] [--dtypes ...]
                                    [--threads 2 1] [--repeats 15]

Each BUILD is a CMake build folder (or any folder) holding a ``_kernels``
pybind module, for example one configured with ``-DCRG_BUILD_TF_OP=OFF`` from
another checkout or with other tuning switches (docs/tuning.md). Calls of A and
B alternate (A B, then B A, and so on), so that the machine's drift hits both
alike; the table gives the median and minimum of each, and B/A of the medians.

Each module is imported under a name of its own (``load_extension`` in
tests/support/kernels.py says why): under one name, such an A/B would time one
build twice. The script refuses two paths to one file, and checks that it got
two module objects.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from support.kernels import load_extension  # noqa: E402
from support.workloads import WORKLOADS, workload_case  # noqa: E402


def load_build(folder: str, tag: str):
    paths = sorted(Path(folder).glob("_kernels*.so"))
    if not paths:
        raise SystemExit(f"no _kernels*.so in {folder}")
    return load_extension(str(paths[0]), f"ab_{tag}._kernels")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("build_a")
    parser.add_argument("build_b")
    parser.add_argument("--workloads", nargs="+", default=list(WORKLOADS), choices=list(WORKLOADS))
    parser.add_argument("--dtypes", nargs="+", default=["float32", "float16", "float64"])
    parser.add_argument("--threads", nargs="+", type=int, default=[2])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    a, b = load_build(args.build_a, "a"), load_build(args.build_b, "b")
    if a is b or os.path.samefile(a.__file__, b.__file__):
        raise SystemExit("A and B are one module or one file: pass two different builds")
    print(f"A: {a.__file__}\nB: {b.__file__}")
    print(f"{'workload':13s} {'dtype':8s} thr   A median/min ms   B median/min ms    B/A")
    for workload in args.workloads:
        case = workload_case(workload, np.random.default_rng(0))
        for dtype in args.dtypes:
            call_args = (
                case.grads,
                case.boxes,
                case.box_ind,
                np.array(case.image_size, np.int32),
                dtype,
            )
            for threads in args.threads:
                times = {"a": [], "b": []}
                for i in range(args.repeats + 2):  # two warm-up rounds
                    order = (("a", a), ("b", b)) if i % 2 == 0 else (("b", b), ("a", a))
                    for key, module in order:
                        start = time.perf_counter()
                        module.grad_image_cpu(*call_args, num_threads=threads)
                        if i >= 2:
                            times[key].append((time.perf_counter() - start) * 1e3)
                med = {k: statistics.median(v) for k, v in times.items()}
                cells = "  ".join(f"{med[k]:8.3f}/{min(times[k]):8.3f}" for k in ("a", "b"))
                ratio = med["b"] / med["a"]
                print(f"{workload:13s} {dtype:8s} {threads:3d}  {cells}  {ratio:5.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
