"""Run `kubestack operator` / `kubestack simulate` as subprocesses for integration tests."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

KUBESTACK = [sys.executable, "-m", "kubestack"]
# the tests' operators run here (--namespace), as `kubestack dev up`'s does by default
OPERATOR_NAMESPACE = "kubestack-system"


class Process:
    """A kubestack subprocess with its output in a log file."""

    def __init__(self, args: list[str], log_path: Path, env: dict[str, str] | None = None):
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen(
            [*KUBESTACK, *args], stdout=self._log, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, pattern: str, timeout: float = 60.0) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(pattern, self.log())
            if match:
                return match
            if self.proc.poll() is not None:
                raise AssertionError(f"process exited ({self.proc.returncode}):\n{self.log()[-3000:]}")
            time.sleep(0.1)
        raise AssertionError(f"{pattern!r} not in log after {timeout}s:\n{self.log()[-3000:]}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


class Operator(Process):
    def __init__(self, kubeconfig: Path, log_path: Path, identity: str = "test-operator",
                 namespace: str = OPERATOR_NAMESPACE, extra: list[str] | None = None):
        super().__init__(["operator", "--kubeconfig", str(kubeconfig), "--probe-port", "0",
                          "--probe-host", "127.0.0.1", "--identity", identity,
                          "--namespace", namespace, *(extra or [])], log_path)
        self.port = int(self.wait_for_log(r"probes and metrics on [\d.]+:(\d+)").group(1))

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.get("/readyz")[0] == 200:
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"operator exited ({self.proc.returncode}):\n{self.log()[-3000:]}")
            time.sleep(0.2)
        raise AssertionError(f"operator not ready after {timeout}s:\n{self.log()[-3000:]}")


class Simulator(Process):
    def __init__(self, kubeconfig: Path, log_path: Path, extra: list[str] | None = None):
        super().__init__(["simulate", "--kubeconfig", str(kubeconfig), *(extra or [])], log_path)


class Stack:
    """The operator (all controllers, simulator VM actions) and the simulator, as the
    quickstart runs them; `restart_operator` kills and restarts the operator mid-work."""

    def __init__(self, kubeconfig: Path, log_dir: Path):
        self.kubeconfig = kubeconfig
        self.log_dir = log_dir
        self.simulator = Simulator(kubeconfig, log_dir / "simulator.log")
        self.restarts = 0
        self.operator = self._start_operator()

    def _start_operator(self) -> Operator:
        op = Operator(self.kubeconfig, self.log_dir / f"operator-{self.restarts}.log",
                      identity=f"test-operator-{self.restarts}",
                      extra=["--vm-actions", "simulator"])
        op.wait_ready()
        return op

    def restart_operator(self, sig: int = signal.SIGKILL) -> None:
        self.stop_operator(sig)
        self.start_operator()

    def stop_operator(self, sig: int = signal.SIGTERM) -> int:
        return self.operator.stop(sig)

    def start_operator(self) -> None:
        self.restarts += 1
        self.operator = self._start_operator()

    def stop(self) -> None:
        self.operator.stop()
        self.simulator.stop()
