"""The demo (python -m crop_and_resize_grad.demo) runs end to end with tiny settings."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from helpers import describe_proc


def test_demo_tiny(tmp_path):
    out = tmp_path / "plots" / "demo.png"
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "crop_and_resize_grad.demo",
            "--steps",
            "3",
            "--batch",
            "4",
            "--timing-steps",
            "3",
            "--seed",
            "1",
            "--out",
            str(out),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, describe_proc(proc)
    text = proc.stdout
    assert "step 3/3" in text  # progress, one plain line per step at this size
    assert "\x1b[" not in text  # no terminal codes when stdout is not a terminal
    assert re.search(r"25-75 %: \[[\d.]+, [\d.]+\] ms", text), text
    assert re.search(r"float16 image gradient .* ours \S+, TF's \S+", text), text
    assert re.search(r"max abs diff \S+, max rel diff \S+", text), text
    assert re.search(r"override on  \(ours\) :\s+[\d.]+ ms", text), text
    assert re.search(r"override on  \(ours\) : bitwise identical", text), text
    assert f"Plot written to {out}" in text
    with open(out, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
