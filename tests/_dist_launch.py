"""Launches two MultiWorkerMirroredStrategy workers (_dist_worker.py) on 127.0.0.1.

usage: python _dist_launch.py OUT_DIR TIMEOUT_S

Picks two free loopback ports, starts worker 0 and 1 with TF_CONFIG naming
only 127.0.0.1 addresses, waits at most TIMEOUT_S, kills what is left, and
exits 0 only if both workers succeeded (their stderr tails are printed
otherwise). The test runs this inside a private network namespace when it can
(TF's gRPC server listens on all interfaces of its namespace, whatever the
cluster addresses say); there, loopback is the only interface.
"""

import json
import os
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def free_loopback_ports(n):
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def main():
    out_dir, timeout_s = sys.argv[1], float(sys.argv[2])
    cluster = {"worker": [f"127.0.0.1:{p}" for p in free_loopback_ports(2)]}
    procs = []
    try:
        for i in range(2):
            env = dict(os.environ)
            env["TF_CONFIG"] = json.dumps(
                {"cluster": cluster, "task": {"type": "worker", "index": i}}
            )
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        os.path.join(HERE, "_dist_worker.py"),
                        "multiworker",
                        os.path.join(out_dir, f"worker{i}.npz"),
                    ],
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
        deadline = time.monotonic() + timeout_s
        failed = False
        for i, p in enumerate(procs):
            try:
                _, stderr = p.communicate(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                print(f"worker {i} timed out after {timeout_s:.0f} s", file=sys.stderr)
                return 124
            if p.returncode != 0:
                failed = True
                print(f"worker {i} exited {p.returncode}:\n{stderr[-3000:]}", file=sys.stderr)
        print("cluster", json.dumps(cluster))
        return 1 if failed else 0
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
