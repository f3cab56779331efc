"""setup.py: a build that cannot see TensorFlow stops early with a short
message that names the fix; the source hash scripts/install.sh compares."""

from __future__ import annotations

import os
import runpy

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SETUP = runpy.run_path(os.path.join(ROOT, "setup.py"), run_name="crg_setup")


def test_build_isolation_gives_a_short_message_with_the_fix():
    isolated_path = ["/tmp/pip-build-env-abc123/overlay/lib/python3.11/site-packages"]
    msg = SETUP["tensorflow_problem"](find_spec=lambda name: None, path=isolated_path)
    assert "build isolation" in msg
    assert "pip install --no-build-isolation ." in msg
    assert len(msg.splitlines()) <= 3


def test_missing_tensorflow_says_what_to_install():
    msg = SETUP["tensorflow_problem"](find_spec=lambda name: None, path=["/usr/lib/python3"])
    assert "pip install tensorflow-cpu" in msg
    assert "--no-build-isolation" in msg


def test_visible_tensorflow_is_no_problem():
    assert SETUP["tensorflow_problem"](find_spec=lambda name: object(), path=[]) is None


def test_source_hash_follows_the_build_knobs(monkeypatch):
    monkeypatch.setenv("CRG_CUDA", "off")
    off = SETUP["source_hash"]()
    assert off == SETUP["source_hash"]()
    monkeypatch.setenv("CRG_CUDA", "on")
    assert SETUP["source_hash"]() != off
