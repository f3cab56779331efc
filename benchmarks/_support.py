"""Puts ``tests/`` on ``sys.path`` so that the benchmarks can import
``support`` (``tests/support``: workloads, cases, reference, GPU backends).

Each benchmark does ``import _support`` before its first ``from support ...``.
"""

from __future__ import annotations

import os
import sys

TESTS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests")
if TESTS_DIR not in sys.path:
    sys.path.insert(0, TESTS_DIR)
