"""A local control plane: real etcd, kube-apiserver and kube-controller-manager on loopback.

This is what `kubestack dev up` and the integration tests run (DESIGN §4). There are no
kubelets: compute hosts are Node objects registered through the API, and the simulator
plays KubeVirt/CDI. Everything lives in one state directory:

    <state>/pki/         CAs, serving and client certificates, service-account key
    <state>/etcd/        etcd data (kept across restarts)
    <state>/logs/        one log per process
    <state>/run/         <process>.pid and ports.json
    <state>/kubeconfig   admin kubeconfig (client cert CN=admin, O=system:masters)

`up()` is idempotent: processes that are alive and healthy are kept, stale pid files (after
a crash or a reboot) are discarded, and ports are chosen afresh when the recorded ones are
taken by someone else.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from kubestack.devcluster import certs

PROCESSES = ("etcd", "kube-apiserver", "kube-controller-manager")

# Controllers that need kubelets or a cloud and would only fight the simulator: the node
# lifecycle controller would mark our kubelet-less Nodes NotReady and evict; IPAM and cloud
# controllers have nothing to manage. Everything else (garbage collector, namespace, resource
# quota, PV binder, service accounts, ...) runs for real.
DISABLED_CONTROLLERS = ("nodelifecycle", "nodeipam", "cloud-node-lifecycle", "service-lb-controller",
                        "node-route-controller")


class ControlPlaneError(RuntimeError):
    """The control plane could not be started or reached; the message says which part and why."""


def default_cache_dir() -> Path:
    return Path(os.environ.get("KUBESTACK_CACHE", Path.home() / ".cache" / "kubestack"))


def default_state_dir(name: str = "default") -> Path:
    return default_cache_dir() / "clusters" / name


def find_bin_dir(repo_root: Path | None = None) -> Path:
    """The directory holding the control-plane binaries, building them if needed.

    `hack/build-controlplane.sh` owns the versions and the cache layout; it prints the bin dir
    and returns at once when everything is already built.
    """
    explicit = os.environ.get("KUBESTACK_BIN_DIR")
    if explicit:
        return Path(explicit)
    root = repo_root or Path(__file__).resolve().parents[3]
    script = root / "hack" / "build-controlplane.sh"
    if not script.exists():
        raise ControlPlaneError(
            f"{script} not found: set KUBESTACK_BIN_DIR to a directory with etcd, kube-apiserver "
            "and kube-controller-manager"
        )
    proc = subprocess.run(["bash", str(script)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise ControlPlaneError(f"building the control plane failed:\n{proc.stderr.strip()}")
    return Path(proc.stdout.strip().splitlines()[-1])


# the ports (keys of ports.json) each process listens on
_LISTENS_ON = {"etcd": ("etcd", "etcd_peer", "etcd_metrics"), "kube-apiserver": ("apiserver",),
               "kube-controller-manager": ("controller_manager",)}


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def _free_ports(count: int) -> list[int]:
    """`count` distinct free ports below the kernel's ephemeral range. One inside it can be
    taken while its server is down (a restart after a crash): by any outgoing connection, or by
    a client retrying to reach it, whose connection then lands on itself; the restarted server
    could not bind it."""
    low = _ephemeral_low()
    ports: list[int] = []
    for _ in range(1000):
        port = random.randrange(10000, low) if low > 11000 else random.randrange(1024, 10000)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        if port not in ports:
            ports.append(port)
            if len(ports) == count:
                return ports
    raise ControlPlaneError("no free ports below the ephemeral range")


def wait_bindable(port: int, timeout: float) -> bool:
    """Wait until a server may listen on `port` again; False if it still cannot after
    `timeout` seconds. A killed multi-threaded process (Go's) shows as a zombie, so as not
    running, while its other threads are still exiting and its listening sockets still open:
    restarting it at once failed with "address already in use" (CI)."""
    deadline = time.monotonic() + timeout
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Go's listeners: TIME_WAIT is no obstacle
            try:
                s.bind(("127.0.0.1", port))
                return True
            except OSError:
                pass
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child of ours counts as dead
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return False


def terminate(pid: int, timeout: float) -> None:
    """SIGTERM, then SIGKILL if `pid` is still alive after `timeout` seconds."""
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if pid_alive(pid):
        os.kill(pid, signal.SIGKILL)


def _pid_is(pid: int, binary: Path) -> bool:
    """True when `pid` is alive and runs `binary` (a recycled pid after a reboot is not ours)."""
    if not pid_alive(pid):
        return False
    try:
        return Path(os.readlink(f"/proc/{pid}/exe")).name == binary.name
    except OSError:
        return False


@dataclass
class NodeSpec:
    """A compute host registered as a Node object (no kubelet behind it)."""

    name: str
    zone: str
    cpu: str = "32"
    memory: str = "128Gi"
    ephemeral_storage: str = "1Ti"
    pods: str = "250"
    arch: str = "amd64"
    labels: dict[str, str] = field(default_factory=dict)
    extended: dict[str, str] = field(default_factory=dict)

    def manifest(self) -> dict:
        labels = {
            "kubernetes.io/hostname": self.name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": self.arch,
            "topology.kubernetes.io/zone": self.zone,
            "kubestack.io/compute-host": "true",
            **self.labels,
        }
        return {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": self.name, "labels": labels},
            "spec": {},
        }

    def status(self) -> dict:
        resources = {
            "cpu": self.cpu,
            "memory": self.memory,
            "ephemeral-storage": self.ephemeral_storage,
            "pods": self.pods,
            **self.extended,
        }
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        return {
            "capacity": resources,
            "allocatable": resources,
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "KubeletReady",
                    "message": "registered by kubestack dev (simulated host)",
                    "lastHeartbeatTime": now,
                    "lastTransitionTime": now,
                }
            ],
            "addresses": [{"type": "Hostname", "address": self.name}],
            "nodeInfo": {
                "architecture": self.arch,
                "operatingSystem": "linux",
                "kubeletVersion": "v1.36.3",
                "kubeProxyVersion": "",
                "containerRuntimeVersion": "simulated://1",
                "osImage": "kubestack simulated host",
                "kernelVersion": "",
                "machineID": "",
                "systemUUID": "",
                "bootID": "",
            },
        }


def node_specs(count: int, zones: list[str], **sizes: str) -> list[NodeSpec]:
    """`count` hosts named compute-0..N-1, spread round-robin over `zones`."""
    return [NodeSpec(name=f"compute-{i}", zone=zones[i % len(zones)], **sizes) for i in range(count)]


class DevCluster:
    def __init__(self, state_dir: Path, bin_dir: Path):
        self.state = state_dir
        self.bin = bin_dir
        self.pki = state_dir / "pki"
        self.logs = state_dir / "logs"
        self.run = state_dir / "run"
        self.kubeconfig = state_dir / "kubeconfig"

    # ---- ports and pids -------------------------------------------------------------------
    def _ports_file(self) -> Path:
        return self.run / "ports.json"

    def ports(self) -> dict[str, int]:
        try:
            return json.loads(self._ports_file().read_text())
        except (OSError, ValueError):
            return {}

    def pid(self, proc: str) -> int | None:
        try:
            return int((self.run / f"{proc}.pid").read_text())
        except (OSError, ValueError):
            return None

    def running(self, proc: str) -> bool:
        pid = self.pid(proc)
        return pid is not None and _pid_is(pid, self.bin / proc)

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.ports()['apiserver']}"

    # ---- certificates and kubeconfigs -----------------------------------------------------
    def _ensure_pki(self) -> None:
        self.pki.mkdir(parents=True, exist_ok=True)
        server_ca = certs.create_ca(self.pki, "server-ca")
        client_ca = certs.create_ca(self.pki, "client-ca")
        certs.issue(server_ca, self.pki, "apiserver", common_name="localhost", server=True)
        certs.issue(client_ca, self.pki, "admin", common_name="admin", organizations=("system:masters",))
        # One identity for all controllers (no per-controller service accounts in a dev
        # cluster), so it needs every controller's rights: system:masters.
        certs.issue(client_ca, self.pki, "controller-manager", common_name="system:kube-controller-manager",
                    organizations=("system:masters",))
        certs.create_signing_key(self.pki / "service-account.key")

    def issue_user(self, user: str, groups: tuple[str, ...] = ()) -> certs.KeyPairFiles:
        """A client certificate for `user` in `groups`, for RBAC tests as a real user."""
        name = "user-" + "-".join([user, *groups]).replace(":", "_").replace("/", "_")
        client_ca = certs.KeyPairFiles(self.pki / "client-ca.crt", self.pki / "client-ca.key")
        return certs.issue(client_ca, self.pki, name, common_name=user, organizations=groups)

    def write_kubeconfig(self, path: Path, user: str, files: certs.KeyPairFiles) -> Path:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "kubestack",
                    "cluster": {
                        "server": self.server,
                        "certificate-authority": str(self.pki / "server-ca.crt"),
                    },
                }
            ],
            "users": [
                {
                    "name": user,
                    "user": {"client-certificate": str(files.cert), "client-key": str(files.key)},
                }
            ],
            "contexts": [{"name": "kubestack", "context": {"cluster": "kubestack", "user": user}}],
            "current-context": "kubestack",
        }
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        path.chmod(0o600)
        return path

    # ---- processes ------------------------------------------------------------------------
    def _args(self, proc: str, p: dict[str, int]) -> list[str]:
        pki = self.pki
        if proc == "etcd":
            url = f"http://127.0.0.1:{p['etcd']}"
            return [
                "--name=kubestack",
                f"--data-dir={self.state / 'etcd'}",
                f"--listen-client-urls={url}",
                f"--advertise-client-urls={url}",
                f"--listen-peer-urls=http://127.0.0.1:{p['etcd_peer']}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{p['etcd_peer']}",
                f"--initial-cluster=kubestack=http://127.0.0.1:{p['etcd_peer']}",
                f"--listen-metrics-urls=http://127.0.0.1:{p['etcd_metrics']}",
                # a throwaway dev/test store: losing the last writes on power loss is fine
                "--unsafe-no-fsync=true",
                "--quota-backend-bytes=8589934592",
                "--log-level=warn",
            ]
        if proc == "kube-apiserver":
            return [
                f"--etcd-servers=http://127.0.0.1:{p['etcd']}",
                f"--secure-port={p['apiserver']}",
                "--bind-address=127.0.0.1",
                # without it the apiserver looks for a default route, which sandboxes lack
                "--advertise-address=127.0.0.1",
                f"--cert-dir={pki}",
                f"--tls-cert-file={pki / 'apiserver.crt'}",
                f"--tls-private-key-file={pki / 'apiserver.key'}",
                f"--client-ca-file={pki / 'client-ca.crt'}",
                "--authorization-mode=RBAC",
                "--service-cluster-ip-range=10.0.0.0/24",
                "--allow-privileged=true",
                f"--service-account-issuer=https://127.0.0.1:{p['apiserver']}/",
                f"--service-account-key-file={pki / 'service-account.key'}",
                f"--service-account-signing-key-file={pki / 'service-account.key'}",
                # ServiceAccount admission would wait for token controllers we do not need in
                # tests (as envtest); TaintNodesByCondition would taint our kubelet-less Nodes
                # not-ready forever, since the node lifecycle controller is off.
                "--disable-admission-plugins=ServiceAccount,TaintNodesByCondition",
                "--max-requests-inflight=800",
                "--max-mutating-requests-inflight=400",
                "--v=1",
            ]
        if proc == "kube-controller-manager":
            return [
                f"--kubeconfig={self.state / 'controller-manager.kubeconfig'}",
                f"--authentication-kubeconfig={self.state / 'controller-manager.kubeconfig'}",
                f"--authorization-kubeconfig={self.state / 'controller-manager.kubeconfig'}",
                "--bind-address=127.0.0.1",
                f"--secure-port={p['controller_manager']}",
                "--leader-elect=false",
                f"--service-account-private-key-file={pki / 'service-account.key'}",
                f"--root-ca-file={pki / 'server-ca.crt'}",
                "--use-service-account-credentials=false",
                "--controllers=*," + ",".join(f"-{c}" for c in DISABLED_CONTROLLERS),
                # quota usage and GC should follow changes quickly in a dev cluster
                "--resource-quota-sync-period=15s",
                "--concurrent-gc-syncs=20",
                "--kube-api-qps=200",
                "--kube-api-burst=400",
                "--v=1",
            ]
        raise ValueError(proc)

    def _start(self, proc: str, ports: dict[str, int]) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        log = open(self.logs / f"{proc}.log", "ab")
        child = subprocess.Popen(
            [str(self.bin / proc), *self._args(proc, ports)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # survives the CLI that started it; `dev down` stops it
            # Go's default GOGC=100 spends a sixth of the API server's CPU in garbage collection
            # under a boot storm (pprof); a dev control plane can trade memory for it. A GOGC
            # in the caller's environment wins.
            env={"GOGC": "400", **os.environ},
        )
        log.close()
        (self.run / f"{proc}.pid").write_text(str(child.pid))

    def _choose_ports(self) -> dict[str, int]:
        keys = ("etcd", "etcd_peer", "etcd_metrics", "apiserver", "controller_manager")
        old = self.ports()
        any_running = any(self.running(p) for p in PROCESSES)
        if old and all(k in old for k in keys) and (
            any_running or not any(_port_in_use(old[k]) for k in keys)
        ):
            return old
        ports = dict(zip(keys, _free_ports(len(keys))))
        self._ports_file().write_text(json.dumps(ports))
        return ports

    def _wait(self, proc: str, check, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if not self.running(proc):
                raise ControlPlaneError(
                    f"{proc} exited during start-up; last log lines:\n{self._tail(proc)}"
                )
            try:
                if check():
                    return
            except (OSError, urllib.error.URLError, ssl.SSLError) as exc:
                last = str(exc)
            time.sleep(0.2)
        raise ControlPlaneError(f"{proc} not healthy after {timeout:.0f}s ({last}); log:\n{self._tail(proc)}")

    def _tail(self, proc: str, lines: int = 15) -> str:
        try:
            return "\n".join((self.logs / f"{proc}.log").read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def _https_ok(self, path: str) -> bool:
        ctx = ssl.create_default_context(cafile=str(self.pki / "server-ca.crt"))
        ctx.load_cert_chain(self.pki / "admin.crt", self.pki / "admin.key")
        with urllib.request.urlopen(self.server + path, context=ctx, timeout=2) as resp:
            return resp.status == 200

    def _etcd_ok(self) -> bool:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.ports()['etcd']}/health", timeout=2) as resp:
            return json.loads(resp.read()).get("health") == "true"

    def up(self, nodes: list[NodeSpec] | None = None, timeout: float = 120.0) -> None:
        for d in (self.state, self.run, self.logs):
            d.mkdir(parents=True, exist_ok=True)
        for proc in PROCESSES:
            if not (self.bin / proc).exists():
                raise ControlPlaneError(f"{self.bin / proc} is missing: run hack/build-controlplane.sh")
        self._ensure_pki()
        ports = self._choose_ports()
        admin = certs.KeyPairFiles(self.pki / "admin.crt", self.pki / "admin.key")
        self.write_kubeconfig(self.kubeconfig, "admin", admin)
        self.write_kubeconfig(
            self.state / "controller-manager.kubeconfig",
            "system:kube-controller-manager",
            certs.KeyPairFiles(self.pki / "controller-manager.crt", self.pki / "controller-manager.key"),
        )
        checks = {
            "etcd": (self._etcd_ok, 30),
            "kube-apiserver": (lambda: self._https_ok("/readyz"), timeout),
            "kube-controller-manager": (lambda: self._kcm_ok(ports), 60),
        }
        for proc in PROCESSES:
            if not self.running(proc):
                (self.run / f"{proc}.pid").unlink(missing_ok=True)
                for key in _LISTENS_ON[proc]:
                    if not wait_bindable(ports[key], timeout=15):
                        raise ControlPlaneError(f"{proc} cannot start: port {ports[key]} ({key}) is taken")
                self._start(proc, ports)
            check, limit = checks[proc]
            self._wait(proc, check, limit)
        if nodes:
            self.register_nodes(nodes)

    def _kcm_ok(self, ports: dict[str, int]) -> bool:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # its serving cert is self-signed at start-up
        url = f"https://127.0.0.1:{ports['controller_manager']}/healthz"
        with urllib.request.urlopen(url, context=ctx, timeout=2) as resp:
            return resp.status == 200

    def down(self, timeout: float = 20.0) -> list[str]:
        """Stop every process (reverse start order); returns the names that were running."""
        stopped = []
        for proc in reversed(PROCESSES):
            pid = self.pid(proc)
            if pid is not None and _pid_is(pid, self.bin / proc):
                terminate(pid, timeout)
                stopped.append(proc)
            (self.run / f"{proc}.pid").unlink(missing_ok=True)
        return stopped

    def status(self) -> dict[str, bool]:
        return {proc: self.running(proc) for proc in PROCESSES}

    # ---- nodes ----------------------------------------------------------------------------
    def register_nodes(self, nodes: list[NodeSpec]) -> None:
        """Create (or update) each Node and set its status: capacity, allocatable, Ready."""
        from kubernetes import client
        from kubernetes.client.rest import ApiException

        from kubestack.devcluster.clients import api_client

        core = client.CoreV1Api(api_client(self.kubeconfig))
        for spec in nodes:
            manifest = spec.manifest()
            try:
                core.create_node(manifest)
            except ApiException as exc:
                if exc.status != 409:
                    raise
                core.patch_node(spec.name, {"metadata": {"labels": manifest["metadata"]["labels"]}})
            core.patch_node_status(spec.name, {"status": spec.status()})
