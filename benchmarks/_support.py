"""What the benchmarks share.

Importing it puts ``tests/`` on ``sys.path`` so that the benchmarks can import
``support`` (``tests/support``: workloads, cases, reference, GPU backends):
each benchmark does ``import _support`` before its first ``from support ...``.
It also holds ``CpuContention``, how busy the machine was during a run, and
``percent``, how the benchmarks print its shares.
"""

from __future__ import annotations

import os
import sys
import time

TESTS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests")
if TESTS_DIR not in sys.path:
    sys.path.insert(0, TESTS_DIR)


def _first_line(path: str) -> str:
    try:
        with open(path, encoding="ascii") as f:
            return f.readline()
    except OSError:
        return ""


def load_average() -> list[str]:
    """The 1, 5 and 15 minute load averages as ``/proc/loadavg`` writes them."""
    return _first_line("/proc/loadavg").split()[:3]


class CpuContention:
    """Share of the machine's CPU time that was not ours in a window.

    Busy jiffies from /proc/stat minus this process's (and its reaped
    children's) CPU time from os.times(), divided by elapsed CPU capacity:
    ``other_cpu_frac``. On a virtual machine the busy jiffies include *steal*,
    time the hypervisor gave to other guests while ours waited; it is also
    reported alone as ``steal_frac``, since it says the host is shared even
    when nothing else runs in the guest. Over a short window the two can
    disagree by a few points (our own time and the machine's are accounted in
    different ticks), so ``other_cpu_frac`` can read below ``steal_frac``.
    A large value of either means noisy numbers.
    """

    def __init__(self) -> None:
        self.t0 = self._snap()

    @staticmethod
    def _snap():
        line = _first_line("/proc/stat")
        vals = [int(v) for v in line.split()[1:]] if line.startswith("cpu ") else []
        hz = os.sysconf("SC_CLK_TCK")
        busy = (sum(vals) - vals[3] - vals[4]) / hz if len(vals) > 4 else None
        total = sum(vals) / hz if vals else None
        steal = vals[7] / hz if len(vals) > 7 else None
        t = os.times()
        own = t.user + t.system + t.children_user + t.children_system
        return busy, total, own, time.time(), steal

    def stop(self) -> dict:
        b1, tot1, own1, w1, st1 = self._snap()
        b0, tot0, own0, w0, st0 = self.t0
        out = {"wall_s": w1 - w0, "loadavg": load_average()}
        if b0 is None or b1 is None or tot1 == tot0:
            out["other_cpu_frac"] = None
            return out
        other = max(0.0, (b1 - b0) - (own1 - own0))
        out["other_cpu_frac"] = other / (tot1 - tot0)
        if st0 is not None and st1 is not None:
            out["steal_frac"] = (st1 - st0) / (tot1 - tot0)
        out["own_cpu_s"] = own1 - own0
        return out


def percent(frac: float | None) -> str:
    """A share such as ``CpuContention``'s as "12 %", or "—" when unknown."""
    return "—" if frac is None else f"{100 * frac:.0f} %"
