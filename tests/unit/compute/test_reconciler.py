"""The Server reconciler against an in-memory cluster (pure logic: no API server)."""

from __future__ import annotations

import copy

from kubestack.compute.reconciler import ServerReconciler
from kubestack.k8s.objects import status_diff
from kubestack.scheduler import HostCache, Scheduler
from kubestack.storage.disks import ServerDisks


class FakeCluster:
    def __init__(self):
        self.objects: dict[tuple[str, str, str], dict] = {}
        self.writes: list[str] = []
        self.events: list = []

    def _get(self, kind, ns, name):
        return copy.deepcopy(self.objects.get((kind, ns or "", name)))

    def flavor(self, name): return self._get("Flavor", "", name)
    def image(self, ns, name): return self._get("Image", ns, name)
    def keypair(self, ns, name): return self._get("KeyPair", ns, name)
    def server_group(self, ns, name): return self._get("ServerGroup", ns, name)
    def server(self, ns, name): return self._get("Server", ns, name)
    def node(self, name): return self._get("Node", "", name)
    def vm(self, ns, name): return self._get("VirtualMachine", ns, name)
    def vmi(self, ns, name): return self._get("VirtualMachineInstance", ns, name)
    def migration(self, ns, name): return self._get("VirtualMachineInstanceMigration", ns, name)
    def secret_value(self, ns, name, key): return None
    def ports(self, server): return []

    def disks(self, server, root_size_gib):
        image = (server["spec"] or {}).get("image")
        return ServerDisks(disks=[{"name": "rootdisk", "bootOrder": 1, "disk": {"bus": "virtio"}}],
                           volumes=[{"name": "rootdisk", "containerDisk": {"image": f"quay.io/{image}"}}])
    def reservation_members(self, ns, name): return []
    def floating_ips(self, ns, server): return {}

    def create(self, obj):
        self.writes.append(f"create {obj['kind']}")
        self.objects[(obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"])] = obj
        return obj

    def patch_vm(self, ns, name, patch):
        self.writes.append("patch VirtualMachine")
        return self.objects[("VirtualMachine", ns, name)]

    def delete_vm(self, ns, name):
        self.writes.append("delete VirtualMachine")

    def delete_vmi(self, ns, name):
        self.writes.append("delete VirtualMachineInstance")

    def patch_status(self, ns, name, status):
        self.writes.append("patch status")

    def event(self, obj, type_, reason, message):
        self.events.append(reason)


class NoActions:
    def __getattr__(self, name):
        raise AssertionError(f"unexpected VM action {name}")


def node(name, cpu="8", memory="16Gi"):
    return {"metadata": {"name": name, "labels": {"kubestack.io/compute-host": "true",
                                                  "topology.kubernetes.io/zone": "az1",
                                                  "kubernetes.io/hostname": name}},
            "spec": {}, "status": {"allocatable": {"cpu": cpu, "memory": memory, "ephemeral-storage": "100Gi",
                                                   "pods": "110"},
                                   "conditions": [{"type": "Ready", "status": "True"}]}}


def world():
    cluster = FakeCluster()
    cache = HostCache()
    for n in ("h1", "h2"):
        cluster.objects[("Node", "", n)] = node(n)
        cache.upsert_node(node(n))
    cluster.objects[("Flavor", "", "m1")] = {"metadata": {"name": "m1"}, "spec": {"vcpus": 2, "ram": 2048, "disk": 10}}
    cluster.objects[("Image", "demo", "cirros")] = {
        "metadata": {"name": "cirros", "namespace": "demo"},
        "spec": {"source": {"registry": "docker://cirros"}, "containerDisk": True},
        "status": {"status": "active", "containerDisk": "quay.io/cirros"}}
    return cluster, ServerReconciler(cluster, Scheduler(cache, seed=1), NoActions())


def stored(status: dict) -> dict:
    """The status as the API server keeps it after a merge patch (null removes a key)."""
    return {k: v for k, v in status.items() if v is not None}


def server(flavor="m1", image="cirros", **spec):
    return {"apiVersion": "kubestack.io/v1alpha1", "kind": "Server",
            "metadata": {"name": "web", "namespace": "demo", "uid": "uid-web", "generation": 1},
            "spec": {"flavor": flavor, "image": image, **spec}}


def test_missing_flavor_is_an_error_and_builds_nothing():
    cluster, rec = world()
    out = rec.reconcile(server(flavor="nope"))
    assert out.status["status"] == "ERROR"
    assert out.status["fault"]["message"] == "Flavor nope could not be found."
    assert cluster.writes == [] and "FlavorNotFound" in [e[1] for e in out.events]


def test_first_reconcile_claims_a_host_and_creates_the_vm():
    cluster, rec = world()
    out = rec.reconcile(server())
    assert out.status["host"] in ("h1", "h2") and out.status["status"] == "BUILD"
    assert cluster.writes == ["create VirtualMachine"]
    assert rec.cache.instance("uid-web").host == out.status["host"]


def test_no_valid_host_carries_per_filter_counts():
    cluster, rec = world()
    cluster.objects[("Flavor", "", "huge")] = {"metadata": {"name": "huge"}, "spec": {"vcpus": 1, "ram": 10**6}}
    out = rec.reconcile(server(flavor="huge"))
    assert out.status["fault"]["code"] == 500
    assert "Filter RamFilter returned 0 hosts" in out.status["fault"]["details"]
    assert cluster.writes == [] and rec.cache.instance("uid-web") is None


def test_a_steady_active_server_costs_no_writes():
    cluster, rec = world()
    body = server()
    out = rec.reconcile(body)
    body["status"] = stored(out.status)
    vm = cluster.objects[("VirtualMachine", "demo", "web")]
    cluster.objects[("VirtualMachineInstance", "demo", "web")] = {
        "metadata": {"name": "web", "uid": "vmi-1"},
        "status": {"phase": "Running", "nodeName": out.status["host"],
                   "interfaces": [{"name": "default", "ipAddress": "10.244.0.9"}]}}
    vm["status"] = {"printableStatus": "Running"}
    body["status"] = stored(rec.reconcile(body).status)
    assert body["status"]["status"] == "ACTIVE" and body["status"]["launchedAt"]
    cluster.writes.clear()
    again = rec.reconcile(copy.deepcopy(body))
    assert status_diff(body["status"], again.status) == {}
    assert cluster.writes == [] and again.events == []


def test_restart_rebuilds_claims_from_status():
    cluster, rec = world()
    body = server()
    body["status"] = stored(rec.reconcile(body).status)
    host = body["status"]["host"]
    _, fresh = world()
    fresh.record_claim(body)
    assert fresh.cache.instance("uid-web").host == host
    assert fresh.cache.usage_snapshot() == rec.cache.usage_snapshot()
