"""A/B of two builds of the CPU kernel, in one process, calls interleaved.

    python benchmarks/ab_kernels.py BUILD_A BUILD_B [--workloads ...] [--dtypes ...]
                                    [--threads 2 1] [--repeats 15]
                                    [--isa-a ISA] [--isa-b ISA]

Each BUILD is a CMake build folder (or any folder) holding a ``_kernels``
pybind module, for example one configured with ``-DCRG_BUILD_TF_OP=OFF`` from
another checkout or with other tuning switches (docs/tuning.md). Calls of A and
B alternate (A B, then B A, and so on), so that the machine's drift hits both
alike; the table gives the median and minimum of each, and B/A of the medians.

Each module is imported under a name of its own (``load_extension`` in
tests/support/kernels.py says why): under one name, such an A/B would time one
build twice. The script refuses two paths to one file unless their ISA caps
differ, and checks that it got two module objects. The last column is the
share of CPU time that was not ours while a row was timed, and the
hypervisor's steal alone: rows timed on a busy host say little.

``--isa-a`` and ``--isa-b`` cap the instruction-set copy each module runs
(``CRG_CPU_ISA``: avx512, avx2 or baseline; a copy the CPU lacks falls back
to the best it has). A module reads the cap once, at its first
call, so each is loaded and asked for its ISA with its own cap set. To compare
two ISA copies of one build, pass the same folder twice with different caps:
B is then loaded from a copy of the file, since loading one file twice hands
back the first library and its choice of ISA.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import _support  # puts tests/ on sys.path for `support`
import numpy as np
from support.kernels import load_extension
from support.workloads import WORKLOADS, workload_case


def find_module_file(folder: str) -> Path:
    paths = sorted(Path(folder).glob("_kernels*.so"))
    if not paths:
        raise SystemExit(f"no _kernels*.so in {folder}")
    return paths[0]


def load_with_isa_cap(path: Path, tag: str, isa: str | None):
    """Loads the module and makes it choose its ISA now, under ``isa`` as cap.

    Without ``isa`` the module sees the environment's CRG_CPU_ISA, if any.
    """
    saved = os.environ.get("CRG_CPU_ISA")
    if isa is not None:
        os.environ["CRG_CPU_ISA"] = isa
    try:
        module = load_extension(str(path), f"ab_{tag}._kernels")
        chosen = module.cpu_isa()
    finally:
        if saved is None:
            os.environ.pop("CRG_CPU_ISA", None)
        else:
            os.environ["CRG_CPU_ISA"] = saved
    return module, chosen


def keep_freed_memory_mapped() -> None:
    """Stops glibc from handing the kernel's temporaries back to the OS.

    By default glibc maps each large allocation afresh and unmaps it on free,
    so in this process every call page-faults its set-up temporaries again
    (overlap-1img: 479 faults a call, measured), which the TF op does not (0
    a call in a TF process). Both builds would pay it, diluting the ratio.
    """
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return
    libc = ctypes.CDLL(libc_name)
    if not hasattr(libc, "mallopt"):
        return
    m_trim_threshold, m_mmap_threshold = -1, -3
    # 32 MiB is glibc's largest threshold on 64-bit; larger outputs stay mapped afresh.
    ok = libc.mallopt(m_mmap_threshold, 32 << 20) and libc.mallopt(m_trim_threshold, 1 << 30)
    if not ok:
        print("note: mallopt failed; calls may page-fault their temporaries", file=sys.stderr)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("build_a")
    parser.add_argument("build_b")
    parser.add_argument("--workloads", nargs="+", default=list(WORKLOADS), choices=list(WORKLOADS))
    parser.add_argument("--dtypes", nargs="+", default=["float32", "float16", "float64"])
    parser.add_argument("--threads", nargs="+", type=int, default=[2])
    parser.add_argument("--repeats", type=int, default=15)
    isas = ("avx512", "avx2", "baseline")
    parser.add_argument("--isa-a", choices=isas, help="ISA cap for A (default: CRG_CPU_ISA's)")
    parser.add_argument("--isa-b", choices=isas, help="ISA cap for B (default: CRG_CPU_ISA's)")
    args = parser.parse_args()
    keep_freed_memory_mapped()
    path_a, path_b = find_module_file(args.build_a), find_module_file(args.build_b)
    with tempfile.TemporaryDirectory() as scratch:
        same_file = os.path.samefile(path_a, path_b)
        load_b = path_b
        if same_file:
            if args.isa_a == args.isa_b:
                raise SystemExit("A and B are one file with one ISA cap: nothing to compare")
            load_b = Path(shutil.copy(path_b, scratch))
        a, isa_a = load_with_isa_cap(path_a, "a", args.isa_a)
        b, isa_b = load_with_isa_cap(load_b, "b", args.isa_b)
        if a is b:
            raise SystemExit("A and B loaded as one module")
        if same_file and isa_a == isa_b:
            raise SystemExit(f"both caps gave the {isa_a} copy on this CPU: nothing to compare")
        copied = " (loaded from a copy)" if same_file else ""
        print(f"A: {path_a} ({isa_a})\nB: {path_b} ({isa_b}){copied}")
        return time_interleaved(a, b, args)


def time_interleaved(a, b, args) -> int:
    print(
        f"{'workload':13s} {'dtype':8s} thr   A median/min ms   B median/min ms    B/A"
        "  not ours / steal"
    )
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
                contention = _support.CpuContention()
                for i in range(args.repeats + 2):  # two warm-up rounds
                    order = (("a", a), ("b", b)) if i % 2 == 0 else (("b", b), ("a", a))
                    for key, module in order:
                        start = time.perf_counter()
                        module.grad_image_cpu(*call_args, num_threads=threads)
                        if i >= 2:
                            times[key].append((time.perf_counter() - start) * 1e3)
                busy = contention.stop()
                med = {k: statistics.median(v) for k, v in times.items()}
                cells = "  ".join(f"{med[k]:8.3f}/{min(times[k]):8.3f}" for k in ("a", "b"))
                ratio = med["b"] / med["a"]
                other = _support.percent(busy.get("other_cpu_frac"))
                steal = _support.percent(busy.get("steal_frac"))
                load = f"{other:>5s} / {steal:>5s}"
                print(
                    f"{workload:13s} {dtype:8s} {threads:3d}  {cells}  {ratio:5.2f}  {load}",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
