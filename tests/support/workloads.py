"""The standard benchmark workloads, shared by the benchmarks and the tests.

Each is ``(B, H, W, D, N, ch, cw)``: a ``[B, H, W, D]`` image, ``N`` boxes,
``ch x cw`` crops. Their inputs are ``"normal"`` random boxes (y1, x1 ~
U(0, 0.8), h, w ~ U(0.05, 0.5), clipped to 1), box indices uniform in
``[0, B)`` and standard normal float32 grads.
"""

from __future__ import annotations

from .cases import Case, make_case

WORKLOADS: dict[str, tuple[int, int, int, int, int, int, int]] = {
    "maskrcnn-14": (2, 100, 152, 256, 512, 14, 14),
    "fastrcnn-7": (2, 50, 76, 256, 512, 7, 7),
    "fpn-p2": (2, 400, 608, 256, 512, 7, 7),
    "small-D3": (8, 224, 224, 3, 256, 32, 32),
    "overlap-1img": (1, 32, 32, 64, 4096, 7, 7),
}


def workload_case(name: str, rng) -> Case:
    """Random inputs of workload ``name`` drawn from the NumPy Generator ``rng``."""
    return make_case(rng, *WORKLOADS[name], kind="normal")
