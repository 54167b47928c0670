"""Boot benchmark: N servers applied at once on M compute hosts, until all are ACTIVE.

    python hack/bench/boot.py --servers 200 --nodes 100

Starts its own local control plane (real etcd + kube-apiserver + kube-controller-manager),
the simulator and the operator, then in one run:

1. creates N Servers at once and times until every one is ACTIVE;
2. counts API writes from kube-apiserver's own /metrics (apiserver_request_total, before and
   after): the operator's (Servers' status, VirtualMachines, Secrets, Events, migrations) per
   server, and the simulator's (VMIs, VM/VMI status) separately, since on a real cluster
   KubeVirt makes those;
3. samples the operator's peak RSS;
4. creates N bare VirtualMachine objects directly with the same client concurrency: the API
   server's own create rate on this machine, which the boot rate is compared with;
5. creates N running VirtualMachines pinned to the nodes, as the operator renders them, and
   times until the simulator reports every one Running: the boot rate with no operator at all
   (KubeVirt's own writes, played by the simulator), the bound any operator works within here.

Prints a table and, last, one JSON line:
{"boot": {"servers": N, "nodes": M, "seconds": ..., "servers_per_s": ..., "direct_vms_per_s": ...,
          "ratio": ..., "writes_per_server": ..., "operator_rss_mb": ...}}
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "operator"))

PROFILE_SECONDS = 5  # the boot run's busiest seconds, its start
WRITE_VERBS = {"POST", "PUT", "PATCH", "DELETE", "APPLY"}
LINE = re.compile(r'^(?P<metric>apiserver_request_total|apiserver_request_duration_seconds_sum)'
                  r'\{(?P<labels>[^}]*)\} (?P<value>[0-9.e+]+)$')
# what KubeVirt/CDI would write on a real cluster (the simulator plays them here)
SIMULATED = {("virtualmachineinstances", ""), ("virtualmachineinstances", "status"),
             ("virtualmachines", "status"), ("virtualmachineinstancemigrations", "status"),
             ("persistentvolumeclaims", ""), ("persistentvolumeclaims", "status"),
             ("persistentvolumes", ""), ("persistentvolumes", "status"), ("datavolumes", "status"),
             ("storageclasses", ""), ("volumesnapshotclasses", "")}
# written by the benchmark itself (the user's creates) or by the control plane's own loops
NOT_OPERATOR = {("servers", ""), ("flavors", ""), ("images", ""), ("namespaces", ""), ("leases", ""),
                ("nodes", ""), ("nodes", "status"), ("customresourcedefinitions", ""),
                ("customresourcedefinitions", "status"), ("configmaps", ""), ("serviceaccounts", ""),
                ("endpointslices", ""), ("endpoints", ""), ("events", "controller")}


def _admin_get(dev, path: str, timeout: float = 10) -> bytes:
    ctx = ssl.create_default_context(cafile=str(dev.pki / "server-ca.crt"))
    ctx.load_cert_chain(dev.pki / "admin.crt", dev.pki / "admin.key")
    with urllib.request.urlopen(dev.server + path, context=ctx, timeout=timeout) as resp:
        return resp.read()


def _profile_apiserver(dev, out: Path, seconds: int = PROFILE_SECONDS) -> None:
    """kube-apiserver's CPU profile over the next `seconds` (its /debug/pprof, on by default)."""
    out.write_bytes(_admin_get(dev, f"/debug/pprof/profile?seconds={seconds}", timeout=seconds + 30))


def api_requests(dev) -> tuple[Counter, Counter]:
    """kube-apiserver's own request counters and the seconds spent serving them, both keyed by
    (resource, subresource, verb)."""
    text = _admin_get(dev, "/metrics").decode()
    counts: Counter = Counter()
    seconds: Counter = Counter()
    for line in text.splitlines():
        m = LINE.match(line)
        if not m:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group("labels")))
        if labels.get("verb") and labels["verb"] != "WATCH":
            into = counts if m.group("metric") == "apiserver_request_total" else seconds
            into[(labels.get("resource", ""), labels.get("subresource", ""), labels["verb"])] += float(m.group("value"))
    return counts, seconds


def split_writes(delta: Counter, servers: int) -> tuple[int, int, dict]:
    operator = simulator = 0
    detail: Counter = Counter()
    for (resource, sub, verb), n in delta.items():
        if n <= 0 or verb not in WRITE_VERBS:
            continue
        if (resource, sub) in SIMULATED:
            simulator += n
        elif (resource, sub) not in NOT_OPERATOR and not (resource == "servers" and sub == "" and verb == "POST"):
            operator += n
            detail[f"{verb} {resource}{'/' + sub if sub else ''}"] += int(n)
    return int(operator), int(simulator), dict(detail)


def rss_sampler(pid: int, stop: threading.Event, peak: list[float]) -> None:
    import psutil

    proc = psutil.Process(pid)
    while not stop.is_set():
        try:
            peak[0] = max(peak[0], proc.memory_info().rss / 2**20)
        except psutil.Error:
            return
        stop.wait(0.2)


def cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    """User+system CPU seconds so far of each process (where a run's time went, on shared cores)."""
    import psutil

    out = {}
    for name, pid in pids.items():
        try:
            t = psutil.Process(pid).cpu_times()
            out[name] = t.user + t.system
        except psutil.Error:
            out[name] = 0.0
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, default=200)
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=16, help="client threads creating objects")
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--controllers", default=None,
                        help="run only these operator controllers (default: all), to find who costs what")
    parser.add_argument("--apiserver-profile", type=Path, default=None, metavar="FILE",
                        help="write a CPU profile of kube-apiserver over the boot run to FILE "
                             "(pprof format: go tool pprof -top FILE)")
    args = parser.parse_args()

    from kubernetes import client

    from kubestack.devcluster.cluster import DevCluster, find_bin_dir, node_specs
    from kubestack.devcluster.clients import api_client
    from kubestack.devcluster.crds import install_crds
    from kubestack.runtime.informer import Informer

    state = Path(tempfile.mkdtemp(prefix="kubestack-bench-"))
    dev = DevCluster(state, find_bin_dir(REPO))
    procs: list[subprocess.Popen] = []
    try:
        dev.up(node_specs(args.nodes, ["az1", "az2", "az3"]))
        install_crds(dev.kubeconfig)
        api = api_client(dev.kubeconfig)
        custom = client.CustomObjectsApi(api)
        core = client.CoreV1Api(api)
        for ns in ("bench", "direct", "direct-boot"):
            core.create_namespace({"metadata": {"name": ns}})
        py = [sys.executable, "-m", "kubestack"]
        logs = state / "logs"
        sim = subprocess.Popen([*py, "simulate", "--kubeconfig", str(dev.kubeconfig)],
                               stdout=open(logs / "simulator.log", "wb"), stderr=subprocess.STDOUT)
        op = subprocess.Popen([*py, "operator", "--kubeconfig", str(dev.kubeconfig), "--vm-actions", "simulator",
                               "--probe-port", "0", "--probe-host", "127.0.0.1", "--log-level", "WARNING",
                               *(["--controllers", args.controllers] if args.controllers is not None else [])],
                              stdout=open(logs / "operator.log", "wb"), stderr=subprocess.STDOUT)
        procs += [sim, op]
        custom.create_cluster_custom_object("kubestack.io", "v1alpha1", "flavors", {
            "apiVersion": "kubestack.io/v1alpha1", "kind": "Flavor", "metadata": {"name": "m1.small"},
            "spec": {"vcpus": 1, "ram": 2048, "disk": 20}})
        custom.create_namespaced_custom_object("kubestack.io", "v1alpha1", "bench", "images", {
            "apiVersion": "kubestack.io/v1alpha1", "kind": "Image", "metadata": {"name": "cirros"},
            "spec": {"source": {"registry": "docker://quay.io/kubevirt/cirros-container-disk-demo"},
                     "containerDisk": True, "containerFormat": "docker", "diskFormat": "qcow2"}})
        _wait(lambda: _image_active(custom), 120, "image active")
        # the operator is ready once its first reconcile of anything has happened; a server
        # booted before the timed run proves the whole path works
        _wait(lambda: _lease_held(api), 120, "operator leading")

        peak = [0.0]
        stop = threading.Event()
        threading.Thread(target=rss_sampler, args=(op.pid, stop, peak), daemon=True).start()

        pids = {"kube-apiserver": dev.pid("kube-apiserver"), "etcd": dev.pid("etcd"),
                "kube-controller-manager": dev.pid("kube-controller-manager"),
                "operator": op.pid, "simulator": sim.pid}
        # watched, not polled: listing 200 servers a few times a second would load the API
        # server being measured; the times are when the watch told us
        active: set[str] = set()
        vms: set[str] = set()
        marks: dict[str, float] = {}
        finished = threading.Event()

        def on_server(_type: str, body: dict, _previous) -> None:
            if (body.get("status") or {}).get("status") == "ACTIVE":
                active.add(body["metadata"]["name"])
            if len(active) >= args.servers and "active" not in marks:
                marks["active"] = time.perf_counter()
                finished.set()

        def on_vm(_type: str, body: dict, _previous) -> None:
            # the operator's own share: when the last VirtualMachine existed (the rest of the
            # path to ACTIVE is the simulator playing KubeVirt)
            vms.add(body["metadata"]["name"])
            if len(vms) >= args.servers:
                marks.setdefault("vms", time.perf_counter())

        watching = [Informer(api, "kubestack.io/v1alpha1", "servers", "Server", namespace="bench"),
                    Informer(api, "kubevirt.io/v1", "virtualmachines", "VirtualMachine", namespace="bench")]
        for informer, handler in zip(watching, (on_server, on_vm)):
            informer.add_handler(handler)
            informer.start()
            informer.wait_synced(60)
        before, before_s = api_requests(dev)
        cpu_before = cpu_seconds(pids)
        profiler = None
        if args.apiserver_profile:
            profiler = threading.Thread(target=_profile_apiserver, args=(dev, args.apiserver_profile), daemon=True)
            profiler.start()
        start = time.perf_counter()
        with ThreadPoolExecutor(args.concurrency) as pool:
            list(pool.map(lambda i: custom.create_namespaced_custom_object(
                "kubestack.io", "v1alpha1", "bench", "servers", {
                    "apiVersion": "kubestack.io/v1alpha1", "kind": "Server",
                    "metadata": {"name": f"bench-{i:05d}"},
                    "spec": {"flavor": "m1.small", "image": "cirros"}}), range(args.servers)))
        if not finished.wait(args.timeout):
            raise SystemExit(f"boot benchmark: {len(active)} of {args.servers} ACTIVE after {args.timeout:.0f}s")
        seconds = marks["active"] - start
        vms_seconds = marks["vms"] - start if "vms" in marks else None
        for i in watching:
            i.stop()
        cpu = {k: v - cpu_before[k] for k, v in cpu_seconds(pids).items()}
        time.sleep(2)  # let trailing Events land before counting
        if profiler is not None:
            profiler.join()
        after, after_s = api_requests(dev)
        stop.set()
        delta = Counter({k: after[k] - before.get(k, 0) for k in after})
        op_writes, sim_writes, detail = split_writes(delta, args.servers)

        vm_body = {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
                   "spec": {"runStrategy": "Halted", "template": {"spec": {
                       "domain": {"devices": {"disks": [{"name": "root", "disk": {"bus": "virtio"}}]},
                                  "memory": {"guest": "2048Mi"}},
                       "volumes": [{"name": "root", "containerDisk": {"image": "quay.io/kubevirt/cirros"}}]}}}}
        cpu_direct = cpu_seconds({"kube-apiserver": pids["kube-apiserver"]})
        start = time.perf_counter()
        with ThreadPoolExecutor(args.concurrency) as pool:
            list(pool.map(lambda i: custom.create_namespaced_custom_object(
                "kubevirt.io", "v1", "direct", "virtualmachines",
                {**vm_body, "metadata": {"name": f"direct-{i:05d}"}}), range(args.servers)))
        direct = time.perf_counter() - start
        apiserver_direct = cpu_seconds({"kube-apiserver": pids["kube-apiserver"]})["kube-apiserver"] \
            - cpu_direct["kube-apiserver"]

        kubevirt_only = _boot_bare_vms(api, custom, vm_body, args, Informer)

        result = {
            "servers": args.servers, "nodes": args.nodes, "seconds": round(seconds, 3),
            "servers_per_s": round(args.servers / seconds, 2),
            "direct_vms_per_s": round(args.servers / direct, 2),
            "ratio": round((args.servers / seconds) / (args.servers / direct), 3),
            "writes_per_server": round(op_writes / args.servers, 2),
            "operator_rss_mb": round(peak[0], 1),
        }
        print(f"{'metric':34} {'value':>12}")
        print(f"{'servers / nodes':34} {args.servers:>6} / {args.nodes:<5}")
        print(f"{'time to all ACTIVE (s)':34} {seconds:>12.2f}")
        print(f"{'servers ACTIVE per s':34} {result['servers_per_s']:>12.2f}")
        if vms_seconds:
            print(f"{'VMs created by the operator per s':34} {args.servers / vms_seconds:>12.2f}")
        print(f"{'bare VMs created per s (direct)':34} {result['direct_vms_per_s']:>12.2f}")
        print(f"{'ratio (boot rate / create rate)':34} {result['ratio']:>12.3f}")
        print(f"{'bare VMs booted per s (no operator)':34} {args.servers / kubevirt_only:>12.2f}")
        print(f"{'servers / bare VM boots':34} {kubevirt_only / seconds:>12.3f}")
        print(f"{'operator API writes per server':34} {result['writes_per_server']:>12.2f}")
        print(f"{'simulator writes per server':34} {sim_writes / args.servers:>12.2f}")
        print(f"{'operator peak RSS (MB)':34} {peak[0]:>12.1f}")
        # the API server's own work per booted server vs per bare VM create: on a machine the
        # boot run saturates, this bounds the ratio whatever the operator does
        print(f"{'API server CPU ms per booted server':34} {1000 * cpu['kube-apiserver'] / args.servers:>12.1f}")
        print(f"{'API server CPU ms per bare VM':34} {1000 * apiserver_direct / args.servers:>12.1f}")
        print("CPU seconds during the boot run: " + ", ".join(f"{k}={v:.1f}" for k, v in cpu.items()))
        served = Counter({f"{verb} {resource}{'/' + sub if sub else ''}": after_s[k] - before_s.get(k, 0)
                          for k in after_s for (resource, sub, verb) in [k]})
        print("API server seconds by request (everyone's): "
              + ", ".join(f"{k}={v:.1f}" for k, v in served.most_common(10)))
        reads = Counter({f"{verb} {resource}{'/' + sub if sub else ''}": int(n)
                         for (resource, sub, verb), n in delta.items() if n > 0 and verb not in WRITE_VERBS})
        print("API reads during the run (everyone's): " + ", ".join(f"{k}={v}" for k, v in reads.most_common(12)))
        print("operator writes by kind: " + ", ".join(f"{k}={v}" for k, v in sorted(detail.items())))
        print(json.dumps({"boot": result}))
        return 0
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
        dev.down()


def _boot_bare_vms(api, custom, vm_body: dict, args, informer_cls) -> float:
    """Seconds from creating `args.servers` running VirtualMachines (pinned round-robin to the
    compute nodes, as the operator pins them) until the simulator has every one Running."""
    running: set[str] = set()
    done = threading.Event()

    def on_vm(_type: str, body: dict, _previous) -> None:
        if (body.get("status") or {}).get("printableStatus") == "Running":
            running.add(body["metadata"]["name"])
            if len(running) >= args.servers:
                done.set()

    watch = informer_cls(api, "kubevirt.io/v1", "virtualmachines", "VirtualMachine", namespace="direct-boot")
    watch.add_handler(on_vm)
    watch.start()
    watch.wait_synced(60)
    template = vm_body["spec"]["template"]

    def create(i: int) -> None:
        node = f"compute-{i % args.nodes}"
        spec = {**template["spec"], "nodeSelector": {"kubernetes.io/hostname": node}}
        custom.create_namespaced_custom_object("kubevirt.io", "v1", "direct-boot", "virtualmachines", {
            **vm_body, "metadata": {"name": f"boot-{i:05d}"},
            "spec": {"runStrategy": "Always", "template": {**template, "spec": spec}}})

    start = time.perf_counter()
    try:
        with ThreadPoolExecutor(args.concurrency) as pool:
            list(pool.map(create, range(args.servers)))
        if not done.wait(args.timeout):
            raise SystemExit(f"boot benchmark: {len(running)} of {args.servers} bare VMs Running "
                             f"after {args.timeout:.0f}s")
        return time.perf_counter() - start
    finally:
        watch.stop()


def _wait(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise SystemExit(f"boot benchmark: {what} not reached within {timeout:.0f}s")


def _image_active(custom) -> bool:
    image = custom.get_namespaced_custom_object("kubestack.io", "v1alpha1", "bench", "images", "cirros")
    return (image.get("status") or {}).get("status") == "active"


def _lease_held(api) -> bool:
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    try:
        lease = client.CoordinationV1Api(api).read_namespaced_lease("kubestack-operator", "kubestack-system")
    except ApiException:
        return False
    return bool(lease.spec.holder_identity)


if __name__ == "__main__":
    sys.exit(main())
