"""The operator and the simulator as background services of a dev cluster.

`kubestack dev up` starts them next to the control plane (pid files and logs in the same
state dir) so one command gives a working cloud; `kubestack dev down` stops them first.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from kubestack.devcluster.cluster import DevCluster, pid_alive, terminate

SERVICES = ("simulator", "operator")


def _pid_file(cluster: DevCluster, name: str) -> Path:
    return cluster.run / f"{name}.pid"


def _pid(cluster: DevCluster, name: str) -> int | None:
    try:
        pid = int(_pid_file(cluster, name).read_text())
    except (OSError, ValueError):
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    # a recycled pid after a reboot is not ours; an empty cmdline is a child still in exec
    ours = not any(cmdline) or b"kubestack" in b" ".join(cmdline)
    return pid if pid_alive(pid) and ours else None


def running(cluster: DevCluster, name: str) -> bool:
    return _pid(cluster, name) is not None


def _command(cluster: DevCluster, name: str, probe_port: int) -> list[str]:
    base = [sys.executable, "-m", "kubestack"]
    if name == "simulator":
        return [*base, "simulate", "--kubeconfig", str(cluster.kubeconfig)]
    return [*base, "operator", "--kubeconfig", str(cluster.kubeconfig), "--vm-actions", "simulator",
            "--probe-host", "127.0.0.1", "--probe-port", str(probe_port)]


def start(cluster: DevCluster, probe_port: int = 8080) -> list[str]:
    """Start the services that are not running; returns the names started."""
    started = []
    for name in SERVICES:
        if running(cluster, name):
            continue
        log = open(cluster.logs / f"{name}.log", "ab")
        child = subprocess.Popen(_command(cluster, name, probe_port), stdout=log, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, start_new_session=True,
                                 env={**os.environ, "PYTHONUNBUFFERED": "1"})
        log.close()
        _pid_file(cluster, name).write_text(str(child.pid))
        started.append(name)
    return started


def wait_ready(cluster: DevCluster, probe_port: int = 8080, timeout: float = 60.0) -> None:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name in SERVICES:
            if not running(cluster, name):
                tail = (cluster.logs / f"{name}.log").read_text(errors="replace").splitlines()[-15:]
                raise RuntimeError(f"{name} exited; last log lines:\n" + "\n".join(tail))
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{probe_port}/readyz", timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.3)
    raise RuntimeError(f"operator not ready after {timeout:.0f}s; see {cluster.logs / 'operator.log'}")


def stop(cluster: DevCluster, timeout: float = 20.0) -> list[str]:
    stopped = []
    for name in reversed(SERVICES):
        pid = _pid(cluster, name)
        if pid is not None:
            terminate(pid, timeout)
            stopped.append(name)
        _pid_file(cluster, name).unlink(missing_ok=True)
    return stopped
