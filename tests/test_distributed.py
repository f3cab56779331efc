"""tf.distribute with the gradient override: MirroredStrategy over two logical
CPU devices, and MultiWorkerMirroredStrategy with two worker processes on
127.0.0.1. The all-reduced gradients must equal a single-device run's.

Both run in subprocesses: logical devices and the collective runtime must be
configured before TF initializes, and this process's TF already is.
"""

from __future__ import annotations

import functools
import os
import shutil
import signal
import subprocess
import sys

import _dist_model
import numpy as np
import pytest
from helpers import TESTS_DIR

WORKER = os.path.join(TESTS_DIR, "_dist_worker.py")
TIMEOUT_S = 120


@pytest.fixture(scope="module")
def reference(crg):
    with crg.gradient_override():
        return _dist_model.single_device_gradients()


def worker_env():
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["PYTHONPATH"] = TESTS_DIR + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("TF_CONFIG", None)  # _dist_launch.py sets it per worker
    # keep two workers on two shared cores modest
    env.setdefault("TF_NUM_INTEROP_THREADS", "1")
    env.setdefault("TF_NUM_INTRAOP_THREADS", "1")
    return env


def check(npz_path, reference, replicas):
    data = np.load(npz_path)
    assert int(data["replicas"]) == replicas
    assert int(data["override_calls"]) >= 1, "the override was not used"
    local = [k for k in data.files if k.startswith("g0_r")]
    for i, ref in enumerate(reference):
        for r in range(len(local)):
            got = data[f"g{i}_r{r}"]
            assert got.shape == ref.shape
            # the same float32 sums, added in another order
            np.testing.assert_allclose(got, ref, rtol=2e-5, atol=1e-7 * np.abs(ref).max())


def test_mirrored_two_logical_cpus(reference, tmp_path):
    out = tmp_path / "mirrored.npz"
    proc = subprocess.run(
        [sys.executable, WORKER, "mirrored", str(out)],
        cwd=TESTS_DIR,
        env=worker_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    check(out, reference, replicas=2)


@functools.cache
def private_netns_prefix():
    """A command prefix that runs its command in a new network namespace whose
    only interface is loopback (unprivileged user+net namespace), or [] where
    that is not allowed."""
    if not (shutil.which("unshare") and shutil.which("ip")):
        return []
    prefix = [
        "unshare",
        "--user",
        "--map-root-user",
        "--net",
        "sh",
        "-c",
        'ip link set lo up && exec "$0" "$@"',
    ]
    try:
        probe = subprocess.run([*prefix, "true"], capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return prefix if probe.returncode == 0 else []


def test_multi_worker_mirrored_two_processes(reference, tmp_path):
    """Two worker processes, cluster addresses on 127.0.0.1 only. TF's gRPC
    server listens on every interface it has, so where possible the workers run
    in a private network namespace whose only interface is loopback."""
    launcher = os.path.join(TESTS_DIR, "_dist_launch.py")
    cmd = [*private_netns_prefix(), sys.executable, launcher, str(tmp_path), str(TIMEOUT_S - 10)]
    proc = subprocess.Popen(
        cmd,
        cwd=TESTS_DIR,
        env=worker_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: killable with the workers
    )
    try:
        stdout, stderr = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"MultiWorkerMirroredStrategy workers did not finish in {TIMEOUT_S} s")
    assert proc.returncode == 0, f"{stdout[-2000:]}\n{stderr[-6000:]}"
    assert "127.0.0.1:" in stdout
    for i in range(2):
        check(tmp_path / f"worker{i}.npz", reference, replicas=2)
