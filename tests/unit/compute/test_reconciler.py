"""The Server reconciler against an in-memory cluster (pure logic: no API server)."""

from __future__ import annotations

import copy

import pytest
from kubernetes.client.rest import ApiException

from kubestack.compute.reconciler import ServerReconciler
from kubestack.k8s.objects import status_diff
from kubestack.network.interfaces import AllocatedInterface
from kubestack.network.ports import PortError
from kubestack.scheduler import HostCache, Scheduler
from kubestack.storage import names
from kubestack.storage.disks import ServerDisks, claims_used_by, current_root_disk, superseded_root_disks
from kubestack.storage.rendering import data_volume_entries, root_disk_entries
from support.patches import apply_merge_patch


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
    def secret_value(self, ns, name, key):
        return ((self.objects.get(("Secret", ns, name)) or {}).get("stringData") or {}).get(key)

    def ports(self, server):
        return [AllocatedInterface(name=f"net{i}", network=f"demo/{n['network']}", network_name=n["network"],
                                   nad=f"demo/{n['network']}", port=f"web-net{i}", mac=f"02:00:00:00:00:0{i}",
                                   ips=(f"10.0.{i}.5/24",))
                for i, n in enumerate(server["spec"].get("networks") or [])]

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

    def delete_secret(self, ns, name):
        self.writes.append(f"delete Secret {name}")
        self.objects.pop(("Secret", ns, name), None)

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


def world(cluster_class=None):
    cluster = (cluster_class or FakeCluster)()
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


def test_a_server_waits_in_build_for_an_image_still_importing_and_fails_on_a_killed_one():
    cluster, rec = world()
    image = cluster.objects[("Image", "demo", "cirros")]
    image["status"] = {"status": "importing"}
    body = server()
    out = rec.reconcile(body)
    st = out.status
    assert st["status"] == "BUILD" and st["vmState"] == "building" and not st.get("fault")
    ready = [c for c in st["conditions"] if c["type"] == "Ready"][0]
    assert (ready["status"], ready["reason"]) == ("False", "ImageNotActive")
    assert ready["message"] == "waiting: Image cirros is not active yet (importing)."
    assert out.events == [("Normal", "Waiting", "Image cirros is not active yet (importing). "
                                                "The server is built once it is.")]
    assert cluster.writes == [] and rec.cache.instance("uid-web") is None  # nothing claimed
    body["status"] = stored(st)
    assert rec.reconcile(copy.deepcopy(body)).events == []  # said once
    image["status"] = {"status": "active", "containerDisk": "quay.io/cirros"}
    out = rec.reconcile(body)
    assert out.status["host"] and cluster.writes == ["create VirtualMachine"]

    cluster, rec = world()
    cluster.objects[("Image", "demo", "cirros")]["status"] = {"status": "killed"}
    out = rec.reconcile(server())
    assert out.status["status"] == "ERROR" and out.status["fault"]["message"] == "Image cirros is not active."


def test_a_server_waits_for_a_key_pair_its_controller_has_not_answered_yet():
    cluster, rec = world()
    kp = cluster.objects[("KeyPair", "demo", "mykey")] = {
        "metadata": {"name": "mykey", "namespace": "demo", "generation": 1}, "spec": {}}
    out = rec.reconcile(server(keyName="mykey"))
    assert out.status["status"] == "BUILD" and not out.status.get("host")
    assert [e[1] for e in out.events] == ["Waiting"]
    kp["status"] = {"conditions": [{"type": "Ready", "status": "False", "reason": "InvalidKeyPair",
                                    "message": "Keypair data is invalid", "observedGeneration": 1}]}
    out = rec.reconcile(server(keyName="mykey"))
    assert out.status["status"] == "ERROR" and out.status["fault"]["message"] == "Invalid key_name provided."
    kp["status"] = {"publicKey": "ssh-ed25519 AAAA test", "conditions": [
        {"type": "Ready", "status": "True", "reason": "Ready", "message": "", "observedGeneration": 1}]}
    assert rec.reconcile(server(keyName="mykey")).status["host"]


def test_a_final_error_is_stalled_for_kstatus_and_a_retried_one_is_not():
    def conditions(out):
        return {c["type"]: (c["status"], c["reason"]) for c in out.status["conditions"]}

    cluster, rec = world()
    cluster.objects[("Flavor", "", "huge")] = {"metadata": {"name": "huge"}, "spec": {"vcpus": 1, "ram": 10**6}}
    failed = rec.reconcile(server(flavor="huge"))
    assert conditions(failed)["Stalled"] == ("True", "NoValidHost")
    # a flavor applied after the server (GitOps, any order) is progress still to come
    waiting = rec.reconcile(server(flavor="later"))
    assert waiting.status["status"] == "ERROR" and "Stalled" not in conditions(waiting)
    # fixed by a new spec: the condition goes with the ERROR
    body = server(flavor="huge")
    body["status"] = stored(failed.status)
    body["spec"]["flavor"], body["metadata"]["generation"] = "m1", 2
    built = rec.reconcile(body)
    assert built.status["status"] == "BUILD" and "Stalled" not in conditions(built)


class PortFailingCluster(FakeCluster):
    """Ports fail as `fault` says (a waiting fault, or one only a spec change cures)."""

    fault: PortError

    def ports(self, server):
        raise self.fault


@pytest.mark.parametrize("fault, reason, stalled", [
    (PortError("Network later could not be found.", 404, waiting=True), "PortNotReady", False),
    (PortError("IP address 10.0.0.1 is the gateway of subnet private-v4."), "PortError", True),
])
def test_a_port_that_cannot_be_made_gives_the_host_back_and_waits_only_when_something_may_cure_it(
        fault, reason, stalled):
    cluster, rec = world(PortFailingCluster)
    cluster.fault = fault
    out = rec.reconcile(server(networks=[{"network": "later"}]))
    st = out.status
    assert st["status"] == "ERROR" and st["fault"]["message"] == fault.message and not st.get("host")
    assert not any(w == "create VirtualMachine" for w in cluster.writes)
    assert rec.scheduler.cache.instances() == []  # the claim went back
    types = {c["type"]: c["reason"] for c in st["conditions"]}
    assert types["Ready"] == reason and ("Stalled" in types) == stalled
    # a waiting one is looked at again (RETRYABLE); a final one only after a spec change
    body = server(networks=[{"network": "later"}])
    body["status"] = stored(st)
    cluster.fault = None
    cluster.ports = FakeCluster.ports.__get__(cluster)
    again = rec.reconcile(body)
    assert (again.status["status"] == "BUILD") == (not stalled)


def test_first_reconcile_claims_a_host_and_creates_the_vm():
    cluster, rec = world()
    out = rec.reconcile(server())
    assert out.status["host"] in ("h1", "h2") and out.status["status"] == "BUILD"
    assert cluster.writes == ["create VirtualMachine"]
    assert rec.cache.instance("uid-web").host == out.status["host"]


def test_an_api_error_after_the_claim_does_not_leave_the_server_unschedulable():
    """The claim reaches the status only with the reconcile's status write: when an API error
    comes first (here creating the VM), the retry decides afresh instead of being refused as
    already placed."""
    class FlakyCluster(FakeCluster):
        failures = 1

        def create(self, obj):
            if self.failures:
                self.failures -= 1
                raise ApiException(status=500, reason="etcdserver: request timed out")
            return super().create(obj)

    cluster, rec = world(FlakyCluster)
    with pytest.raises(ApiException):
        rec.reconcile(server())
    out = rec.reconcile(server())
    assert out.status["host"] in ("h1", "h2") and cluster.writes == ["create VirtualMachine"]
    assert rec.cache.instance("uid-web").host == out.status["host"]
    assert sum(len(rec.cache.instances_on(h)) for h in ("h1", "h2")) == 1


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


def _active(cluster, rec) -> dict:
    body = server()
    body["status"] = stored(rec.reconcile(body).status)
    cluster.objects[("VirtualMachineInstance", "demo", "web")] = {
        "metadata": {"name": "web", "uid": "vmi-1"},
        "status": {"phase": "Running", "nodeName": body["status"]["host"],
                   "interfaces": [{"name": "default", "ipAddress": "10.244.0.9"}]}}
    cluster.objects[("VirtualMachine", "demo", "web")]["status"] = {"printableStatus": "Running"}
    body["status"] = stored(rec.reconcile(body).status)
    assert body["status"]["status"] == "ACTIVE"
    return body


def test_a_live_migrations_target_stays_claimed_across_an_operator_restart():
    cluster, rec = world()
    body = _active(cluster, rec)
    source = body["status"]["host"]
    target = "h2" if source == "h1" else "h1"
    body["spec"]["migrate"] = {"requestId": "m1", "live": True}
    body["metadata"]["generation"] = 2
    body["status"] = stored(rec.reconcile(body).status)  # target claimed, VM pointed at it
    assert body["status"]["migrationTarget"] == target
    vm = cluster.objects[("VirtualMachine", "demo", "web")]
    vm["spec"]["template"]["spec"]["nodeSelector"] = {"kubernetes.io/hostname": target}
    cluster.objects[("VirtualMachineInstance", "demo", "web")]["spec"] = {
        "nodeSelector": {"kubernetes.io/hostname": target}}
    body["status"] = stored(rec.reconcile(body).status)  # the migration is created
    assert "create VirtualMachineInstanceMigration" in cluster.writes

    # a restarted operator rebuilds its cache from the statuses: the target's room is held
    cache = HostCache()
    for n in ("h1", "h2"):
        cache.upsert_node(node(n))
    restarted = ServerReconciler(cluster, Scheduler(cache, seed=1), NoActions())
    restarted.record_claim(body)
    assert cache.instance("uid-web#target").host == target and cache.instance("uid-web").host == source

    (mig,) = [o for (kind, _ns, _n), o in cluster.objects.items() if kind == "VirtualMachineInstanceMigration"]
    mig["status"] = {"phase": "Succeeded"}
    body["status"] = stored(restarted.reconcile(body).status)
    assert body["status"]["host"] == target and "migrationTarget" not in body["status"]
    assert cache.instance("uid-web").host == target and cache.instance("uid-web#target") is None


def test_a_resize_in_progress_keeps_its_source_claimed_across_an_operator_restart():
    cluster, rec = world()
    cluster.objects[("Flavor", "", "m2")] = {"metadata": {"name": "m2"}, "spec": {"vcpus": 4, "ram": 4096, "disk": 10}}
    body = _active(cluster, rec)
    source = body["status"]["host"]
    body["spec"]["flavor"] = "m2"
    body["metadata"]["generation"] = 2
    body["status"] = stored(rec.reconcile(body).status)
    assert body["status"]["status"] == "RESIZE" and body["status"]["resize"]["oldHost"] == source
    cache = HostCache()
    for n in ("h1", "h2"):
        cache.upsert_node(node(n))
    ServerReconciler(cluster, Scheduler(cache, seed=1), NoActions()).record_claim(body)
    assert cache.instance("uid-web#source").host == source
    assert cache.instance("uid-web").host == body["status"]["host"]


def test_a_missing_image_or_flavor_on_a_built_server_is_refused_and_changes_nothing():
    cluster, rec = world()
    body = _active(cluster, rec)
    for change, reason in (({"image": "nope"}, "ImageNotFound"), ({"flavor": "nope"}, "FlavorNotFound")):
        bad = copy.deepcopy(body)
        bad["spec"].update(change)
        bad["metadata"]["generation"] = 2
        cluster.writes.clear()
        out = rec.reconcile(bad)
        assert cluster.writes == []
        assert out.status["status"] == "ACTIVE" and not out.status.get("fault")
        assert out.status["observedGeneration"] == 1  # the refused spec is not applied
        refused = next(c for c in out.status["conditions"] if c["type"] == "RequestRefused")
        assert refused["status"] == "True" and refused["reason"] == reason
        assert [e[1] for e in out.events] == [reason]
        bad["status"] = stored(out.status)
        assert rec.reconcile(copy.deepcopy(bad)).events == []  # said once, not on every look
    # the user puts the spec back: the condition goes, the new generation is observed
    body["status"] = bad["status"]
    assert "RequestRefused" in [c["type"] for c in body["status"]["conditions"]]
    body["metadata"]["generation"] = 3
    out = rec.reconcile(body)
    assert "RequestRefused" not in [c["type"] for c in out.status["conditions"]]
    assert out.status["observedGeneration"] == 3 and out.status["status"] == "ACTIVE"


def test_a_refusal_held_back_goes_once_the_spec_goes_through_at_the_same_generation():
    cluster, rec = world()
    body = _active(cluster, rec)
    body["spec"]["image"] = "later"
    body["metadata"]["generation"] = 2
    out = rec.reconcile(copy.deepcopy(body))
    assert [(c["reason"], c["observedGeneration"]) for c in out.status["conditions"]
            if c["type"] == "RequestRefused"] == [("ImageNotFound", 2)]
    body["status"] = stored(out.status)
    # the image is uploaded: the same spec is now accepted, the rebuild starts, the refusal is gone
    cluster.objects[("Image", "demo", "later")] = {
        "metadata": {"name": "later", "namespace": "demo"},
        "spec": {"source": {"registry": "docker://later"}, "containerDisk": True},
        "status": {"status": "active", "containerDisk": "quay.io/later"}}
    out = rec.reconcile(copy.deepcopy(body))
    assert "RequestRefused" not in [c["type"] for c in out.status["conditions"]]
    assert out.status["status"] == "REBUILD" and out.status["observedGeneration"] == 2


class PatchRecorder(FakeCluster):
    """FakeCluster whose VM takes merge patches, which it records."""

    def __init__(self):
        super().__init__()
        self.patches: list[dict] = []

    def patch_vm(self, ns, name, patch):
        self.patches.append(patch)
        super().patch_vm(ns, name, patch)
        return copy.deepcopy(apply_merge_patch(self.objects[("VirtualMachine", ns, name)], patch))


KEY = "ssh-ed25519 AAAA me@host"


def _booted_with_key(**spec):
    """An ACTIVE server booted with the key pair mykey."""
    cluster, rec = world(PatchRecorder)
    cluster.objects[("KeyPair", "demo", "mykey")] = {
        "metadata": {"name": "mykey", "namespace": "demo"}, "spec": {"publicKey": KEY}}
    body = server(keyName="mykey", **spec)
    body["status"] = stored(rec.reconcile(body).status)
    cluster.objects[("VirtualMachineInstance", "demo", "web")] = {
        "metadata": {"name": "web", "uid": "vmi-1"},
        "status": {"phase": "Running", "nodeName": body["status"]["host"]}}
    cluster.objects[("VirtualMachine", "demo", "web")]["status"] = {"printableStatus": "Running"}
    body["status"] = stored(rec.reconcile(body).status)
    assert body["status"]["status"] == "ACTIVE"
    return cluster, rec, body


def _guest_user_data(cluster) -> str:
    """The user data the VM hands the guest: inline, or from its cloud-init Secret."""
    cloud = next(v for v in cluster.objects[("VirtualMachine", "demo", "web")]["spec"]["template"]["spec"]["volumes"]
                 if v["name"] == "cloudinitdisk")["cloudInitNoCloud"]
    if "secretRef" in cloud:
        return cluster.objects[("Secret", "demo", cloud["secretRef"]["name"])]["stringData"]["userdata"]
    return cloud["userData"]


def test_deleting_the_key_pair_of_a_running_server_changes_nothing():
    cluster, rec, body = _booted_with_key()
    vm = cluster.objects[("VirtualMachine", "demo", "web")]
    assert KEY in str(vm["spec"]["template"]["spec"]["volumes"])

    del cluster.objects[("KeyPair", "demo", "mykey")]
    cluster.writes.clear()
    out = rec.reconcile(copy.deepcopy(body))
    assert out.status["status"] == "ACTIVE" and out.events == [] and cluster.writes == []
    # and the server still takes other changes (Nova keeps the key it copied at boot)
    body["spec"]["powerState"] = "Stopped"
    body["metadata"]["generation"] = 2
    rec.actions = NoActions()
    out = rec.reconcile(copy.deepcopy(body))
    assert "RequestRefused" not in [c["type"] for c in out.status.get("conditions") or []]
    assert cluster.writes == ["patch VirtualMachine"]
    assert "volumes" not in str(cluster.patches)  # the guest's cloud-init (with its key) stays
    # a new server naming the deleted key pair is still refused at boot
    other = server(keyName="mykey")
    other["metadata"].update(name="db", uid="uid-db")
    assert rec.reconcile(other).status["fault"]["message"] == "Invalid key_name provided."


@pytest.mark.parametrize("script", ["#!/bin/sh\necho v2\n", "#!/bin/sh\n" + "echo v2\n" * 400],
                         ids=["inline", "secret"])
def test_user_data_changed_after_the_key_pair_is_deleted_is_rendered_with_the_boot_key(script):
    cluster, rec, body = _booted_with_key(userData="#!/bin/sh\necho v1\n")
    del cluster.objects[("KeyPair", "demo", "mykey")]
    change(body, userData=script, hostname="web2")
    out = rec.reconcile(copy.deepcopy(body))
    assert out.status["observedGeneration"] == 2 and out.events == []
    assert "RequestRefused" not in [c["type"] for c in out.status["conditions"]]
    guest = _guest_user_data(cluster)
    assert "echo v2" in guest and "echo v1" not in guest
    assert KEY in guest and "hostname: web2" in guest
    vm = cluster.objects[("VirtualMachine", "demo", "web")]
    assert vm["spec"]["template"]["spec"]["hostname"] == "web2" and out.status["keyData"] == KEY
    # and it stays so: the next look renders the same VM
    body["status"] = stored(out.status)
    cluster.writes.clear()
    rec.reconcile(copy.deepcopy(body))
    assert cluster.writes == []


def test_the_status_records_the_key_the_server_was_given():
    cluster, rec, body = _booted_with_key()
    assert (body["status"]["keyName"], body["status"]["keyData"]) == ("mykey", KEY)
    # a key pair replaced under the same name: the cloud-init and the record change together
    cluster.objects[("KeyPair", "demo", "mykey")]["spec"]["publicKey"] = "ssh-ed25519 BBBB new@host"
    out = rec.reconcile(copy.deepcopy(body))
    assert out.status["keyData"] == "ssh-ed25519 BBBB new@host"
    assert "ssh-ed25519 BBBB new@host" in _guest_user_data(cluster) and KEY not in _guest_user_data(cluster)
    # keyName dropped from the spec: no key, no record
    body["status"] = stored(out.status)
    del body["spec"]["keyName"]
    change(body)
    out = rec.reconcile(copy.deepcopy(body))
    assert out.status.get("keyName") is None and out.status.get("keyData") is None
    assert "ssh_authorized_keys" not in _guest_user_data(cluster)


def test_the_boot_key_survives_shelve_and_unshelve_after_the_key_pair_is_deleted():
    cluster, rec, body = _booted_with_key()
    del cluster.objects[("KeyPair", "demo", "mykey")]
    rec.actions = NoActions()
    change(body, powerState="Shelved")
    body["status"] = stored(rec.reconcile(copy.deepcopy(body)).status)
    assert "delete VirtualMachine" in cluster.writes
    for kind in ("VirtualMachine", "VirtualMachineInstance"):  # as KubeVirt and the GC would
        del cluster.objects[(kind, "demo", "web")]
    body["status"] = stored(rec.reconcile(copy.deepcopy(body)).status)
    assert body["status"]["status"] == "SHELVED_OFFLOADED"
    change(body, powerState="Running")
    out = rec.reconcile(copy.deepcopy(body))
    assert not out.status.get("fault") and out.status["host"]
    assert KEY in _guest_user_data(cluster)
    # a different key pair name that does not exist is not the recorded one
    change(body, keyName="other")
    body["status"] = stored(out.status)
    refused = next(c for c in rec.reconcile(copy.deepcopy(body)).status["conditions"]
                   if c["type"] == "RequestRefused")
    assert refused["reason"] == "KeyPairNotFound"


def _secret_ref(vm: dict) -> str:
    cloud = next(v for v in vm["spec"]["template"]["spec"]["volumes"] if v["name"] == "cloudinitdisk")
    return cloud["cloudInitNoCloud"]["secretRef"]["name"]


def test_large_user_data_changes_go_to_a_new_secret_and_the_old_one_is_deleted():
    cluster, rec = world()
    script = "#!/bin/sh\n" + "echo big\n" * 400  # over the inline limit: a Secret
    body = server(userData=script)
    body["status"] = stored(rec.reconcile(body).status)
    first = _secret_ref(cluster.objects[("VirtualMachine", "demo", "web")])
    assert first.startswith("web-cloudinit-") and ("Secret", "demo", first) in cluster.objects
    assert cluster.writes == ["create Secret", "create VirtualMachine"]
    cluster.writes.clear()
    assert rec.reconcile(copy.deepcopy(body)).events == [] and cluster.writes == []  # steady

    body["spec"]["userData"] = script + "echo more\n"
    body["metadata"]["generation"] = 2
    rec.reconcile(copy.deepcopy(body))
    second = next(name for kind, _, name in cluster.objects if kind == "Secret" and name != first)
    assert second.startswith("web-cloudinit-")
    # the new Secret exists before the VM points to it; the old one goes once it does not
    assert cluster.writes == ["create Secret", "patch VirtualMachine", f"delete Secret {first}"]
    assert ("Secret", "demo", first) not in cluster.objects


def test_network_data_in_the_cloud_init_secret_survives_later_renders():
    """Big user data moves the cloud-init, network data too, into a Secret: a later change
    must carry the tenant network's data over, not drop it."""
    cluster, rec = world(PatchRecorder)
    script = "#!/bin/sh\n" + "echo big\n" * 400
    body = server(userData=script, networks=[{"network": "private"}])
    body["status"] = stored(rec.reconcile(body).status)
    first = _secret_ref(cluster.objects[("VirtualMachine", "demo", "web")])
    net_data = cluster.objects[("Secret", "demo", first)]["stringData"]["networkdata"]
    assert "10.0.0.5/24" in net_data
    change(body, userData=script + "echo more\n")
    rec.reconcile(copy.deepcopy(body))
    vm = cluster.objects[("VirtualMachine", "demo", "web")]
    second = _secret_ref(vm)
    assert second != first and cluster.objects[("Secret", "demo", second)]["stringData"]["networkdata"] == net_data
    cloud = next(v for v in vm["spec"]["template"]["spec"]["volumes"] if v["name"] == "cloudinitdisk")
    assert cloud["cloudInitNoCloud"]["networkDataSecretRef"] == {"name": second}


def test_restart_rebuilds_claims_from_status():
    cluster, rec = world()
    body = server()
    body["status"] = stored(rec.reconcile(body).status)
    host = body["status"]["host"]
    _, fresh = world()
    fresh.record_claim(body)
    assert fresh.cache.instance("uid-web").host == host
    assert fresh.cache.usage_snapshot() == rec.cache.usage_snapshot()


# ---------------------------------------------------------------------- rebuild of a cloned root disk


class DiskCluster(FakeCluster):
    """FakeCluster with what the storage service and KubeVirt do to root disks: the root disk
    is the DataVolume `current_root_disk(server)` (a clone of the image, 'ready' when the test
    says so), earlier ones are swept while REBUILD with storage's own rules, the VM takes
    merge patches and a VMI is started from its template."""

    def __init__(self):
        super().__init__()
        self.dvs: dict[str, dict] = {}       # name -> DataVolume (metadata, spec.source, ready)
        self.deleted_dvs: list[str] = []
        self.clone_ready = True              # new clones are ready at once
        self.disk_calls = 0
        self.vmi_count = 0

    def disks(self, server, root_size_gib):
        self.disk_calls += 1
        meta = server["metadata"]
        spec = server["spec"]
        out = ServerDisks()
        image = self.objects.get(("Image", meta["namespace"], spec.get("image") or ""))
        if image is not None and image["spec"].get("containerDisk"):
            disk, vol = root_disk_entries(container_disk=image["status"]["containerDisk"])
        elif spec.get("image"):
            name = current_root_disk(server)
            if name not in self.dvs:
                owners = [] if spec.get("retainRootDisk") else [{"uid": meta["uid"], "kind": "Server"}]
                self.dvs[name] = {"metadata": {"name": name, "ownerReferences": owners},
                                  "spec": {"source": {"pvc": {"name": names.image_pvc(spec["image"])}}},
                                  "ready": self.clone_ready}
            out.root_disk = name
            if not self.dvs[name]["ready"]:
                out.wait(f"root disk {name} is CloneInProgress")
            disk, vol = root_disk_entries(data_volume=name)
        else:  # boot from the Volume `boot`
            out.root_disk = names.volume_pvc("boot")
            disk, vol = root_disk_entries(claim=out.root_disk)
        out.disks.append(disk)
        out.volumes.append(vol)
        for bdm in spec.get("blockDeviceMapping") or []:
            disk, vol = data_volume_entries(bdm["name"], names.volume_pvc(bdm["name"]))
            out.disks.append(disk)
            out.volumes.append(vol)
        if (server.get("status") or {}).get("status") == "REBUILD":
            used = claims_used_by(self._get("VirtualMachine", meta["namespace"], meta["name"]),
                                  self._get("VirtualMachineInstance", meta["namespace"], meta["name"]))
            now, later = superseded_root_disks(server, list(self.dvs.values()), out.root_disk, used)
            for name in now:
                del self.dvs[name]
                self.deleted_dvs.append(name)
            out.superseded = later
        return out

    def patch_vm(self, ns, name, patch):
        super().patch_vm(ns, name, patch)
        return copy.deepcopy(apply_merge_patch(self.objects[("VirtualMachine", ns, name)], patch))

    def delete_vmi(self, ns, name):
        super().delete_vmi(ns, name)
        self.objects.pop(("VirtualMachineInstance", ns, name), None)

    def kubevirt(self, ns="demo", name="web"):
        """KubeVirt's VM controller: a VM that should run and has no VMI gets one from its
        template once its DataVolumes are ready; Halted removes the VMI."""
        vm = self.objects.get(("VirtualMachine", ns, name))
        if vm is None:
            return
        key = ("VirtualMachineInstance", ns, name)
        tpl = vm["spec"]["template"]["spec"]
        if vm["spec"]["runStrategy"] == "Halted":
            self.objects.pop(key, None)
            vm["status"] = {"printableStatus": "Stopped"}
            return
        dvs = [v["dataVolume"]["name"] for v in tpl["volumes"] if "dataVolume" in v]
        if key in self.objects or not all(self.dvs.get(d, {}).get("ready") for d in dvs):
            return
        self.vmi_count += 1
        self.objects[key] = {
            "metadata": {"name": name, "namespace": ns, "uid": f"vmi-{self.vmi_count}"},
            "spec": copy.deepcopy(tpl),
            "status": {"phase": "Running", "nodeName": tpl["nodeSelector"]["kubernetes.io/hostname"],
                       "interfaces": [{"name": "default", "ipAddress": "10.244.0.9"}]}}
        vm["status"] = {"printableStatus": "Running"}


def disk_world():
    cluster, rec = world(DiskCluster)
    for image in ("cirros", "fedora"):
        cluster.objects[("Image", "demo", image)] = {
            "metadata": {"name": image, "namespace": "demo"},
            "spec": {"source": {"url": f"https://example.com/{image}.img"}, "minDisk": 1},
            "status": {"status": "active", "pvc": names.image_pvc(image)}}
    return cluster, rec


def settle(cluster, rec, body, rounds=12):
    """Reconcile and let 'KubeVirt' act until nothing is left to do; the status is stored as
    the controller stores it."""
    for _ in range(rounds):
        out = rec.reconcile(copy.deepcopy(body))
        body["status"] = stored({**(body.get("status") or {}), **out.status})
        cluster.kubevirt()
        if out.requeue_after is None and body["status"].get("status") not in ("BUILD", "REBUILD"):
            # one more look, so the status reflects what KubeVirt did last
            body["status"] = stored({**body["status"], **rec.reconcile(copy.deepcopy(body)).status})
            return body
    raise AssertionError(f"did not settle: {body['status']}")


def change(body, **spec):
    body["spec"].update(spec)
    body["metadata"]["generation"] += 1
    return body


def root_of(cluster, kind="VirtualMachine"):
    obj = cluster.objects[(kind, "demo", "web")]
    spec = obj["spec"]["template"]["spec"] if kind == "VirtualMachine" else obj["spec"]
    return next(v for v in spec["volumes"] if v["name"] == "rootdisk")


def booted(**spec):
    cluster, rec = disk_world()
    body = server(blockDeviceMapping=[{"sourceType": "volume", "destinationType": "volume", "name": "data"}],
                  **spec)
    settle(cluster, rec, body)
    assert body["status"]["status"] == "ACTIVE" and body["status"]["rootDisk"] == "web-root"
    return cluster, rec, body


def test_rebuild_with_another_image_replaces_the_cloned_root_disk():
    cluster, rec, body = booted()
    host = body["status"]["host"]
    cluster.clone_ready = False
    change(body, image="fedora")
    out = rec.reconcile(copy.deepcopy(body))
    new = names.root_disk("web", names.rebuild_key("uid-web", 2))
    assert out.status["status"] == "REBUILD" and out.status["taskState"] == "rebuilding"
    assert out.status["rootDisk"] == new and out.status["imageName"] == "fedora"
    assert "Rebuilding" in [e[1] for e in out.events]
    # the VM points at the new disk in the same reconcile that stops the guest
    assert root_of(cluster) == {"name": "rootdisk", "dataVolume": {"name": new}}
    assert ("VirtualMachineInstance", "demo", "web") not in cluster.objects
    assert cluster.writes[-2:] == ["patch VirtualMachine", "delete VirtualMachineInstance"]
    assert cluster.dvs[new]["spec"]["source"]["pvc"]["name"] == "fedora-image"
    assert "web-root" in cluster.dvs  # the trigger's sweep ran before the VM was switched
    body["status"] = stored(out.status)

    # the clone runs: the old disk is unused now, so it goes; the guest waits for the new one
    cluster.kubevirt()
    assert ("VirtualMachineInstance", "demo", "web") not in cluster.objects
    out = rec.reconcile(copy.deepcopy(body))
    assert out.status["status"] == "REBUILD" and out.status["taskState"] == "rebuild_block_device_mapping"
    assert "web-root" not in cluster.dvs and cluster.deleted_dvs == ["web-root"]
    body["status"] = stored(out.status)

    cluster.dvs[new]["ready"] = True
    settle(cluster, rec, body)
    st = body["status"]
    assert st["status"] == "ACTIVE" and "taskState" not in st and "fault" not in st
    assert st["host"] == host and st["imageName"] == "fedora" and st["rootDisk"] == new
    assert root_of(cluster, "VirtualMachineInstance") == {"name": "rootdisk", "dataVolume": {"name": new}}
    assert list(cluster.dvs) == [new]
    vols = cluster.objects[("VirtualMachine", "demo", "web")]["spec"]["template"]["spec"]["volumes"]
    assert {"name": "vol-data", "persistentVolumeClaim": {"claimName": "data-volume", "hotpluggable": True}} in vols
    assert cluster.objects[("VirtualMachineInstance", "demo", "web")]["status"]["nodeName"] == host

    # steady afterwards: no writes, no storage calls
    cluster.writes.clear()
    calls = cluster.disk_calls
    again = rec.reconcile(copy.deepcopy(body))
    assert status_diff(body["status"], again.status) == {} and cluster.writes == []
    assert cluster.disk_calls == calls


def test_rebuild_request_on_the_same_image_makes_a_fresh_disk_too():
    cluster, rec, body = booted()
    change(body, rebuild={"requestId": "r1"})
    settle(cluster, rec, body)
    new = names.root_disk("web", names.rebuild_key("uid-web", 2))
    st = body["status"]
    assert st["status"] == "ACTIVE" and st["lastRebuildRequestId"] == "r1" and st["rootDisk"] == new
    assert list(cluster.dvs) == [new] and cluster.dvs[new]["spec"]["source"]["pvc"]["name"] == "cirros-image"
    assert root_of(cluster, "VirtualMachineInstance")["dataVolume"]["name"] == new

    # the same request id again is no new rebuild; a new one is
    writes = len(cluster.writes)
    change(body, description="x")
    settle(cluster, rec, body)
    assert list(cluster.dvs) == [new] and "delete VirtualMachineInstance" not in cluster.writes[writes:]
    change(body, rebuild={"requestId": "r2"})
    settle(cluster, rec, body)
    newer = names.root_disk("web", names.rebuild_key("uid-web", 4))
    assert list(cluster.dvs) == [newer] and body["status"]["rootDisk"] == newer


def test_rebuild_keeps_a_retained_root_disk():
    cluster, rec, body = booted(retainRootDisk=True)
    change(body, image="fedora")
    settle(cluster, rec, body)
    new = body["status"]["rootDisk"]
    assert new != "web-root" and body["status"]["status"] == "ACTIVE"
    assert sorted(cluster.dvs) == sorted(["web-root", new]) and cluster.deleted_dvs == []
    assert root_of(cluster)["dataVolume"]["name"] == new


def test_rebuild_killed_anywhere_ends_with_exactly_one_root_disk():
    """Every reconcile of the rebuild is lost once (its status never written, as when the
    operator dies before the status patch), and the spec moves on in between once: still one
    root disk at the end, the one the VM boots from."""
    cluster, rec, body = booted()
    cluster.clone_ready = False
    change(body, image="fedora")
    for _ in range(3):
        rec.reconcile(copy.deepcopy(body))  # lost: the status is not stored
        cluster.kubevirt()
    change(body, description="spec moved on before the rebuild was recorded")
    for dv in cluster.dvs.values():
        dv["ready"] = True
    cluster.clone_ready = True
    settle(cluster, rec, body)
    st = body["status"]
    assert st["status"] == "ACTIVE" and st["imageName"] == "fedora"
    assert list(cluster.dvs) == [st["rootDisk"]] == [root_of(cluster)["dataVolume"]["name"]]
    assert st["rootDisk"] == names.root_disk("web", names.rebuild_key("uid-web", 3))
    assert len(cluster.deleted_dvs) == 2  # web-root and the disk of the lost generation


def test_rebuild_of_a_stopped_server_leaves_it_stopped():
    cluster, rec, body = booted()
    change(body, powerState="Stopped")
    settle(cluster, rec, body)
    assert body["status"]["status"] == "SHUTOFF"
    change(body, image="fedora")
    settle(cluster, rec, body)
    st = body["status"]
    assert st["status"] == "SHUTOFF" and "taskState" not in st and st["imageName"] == "fedora"
    assert list(cluster.dvs) == [st["rootDisk"]] and ("VirtualMachineInstance", "demo", "web") not in cluster.objects


def test_rebuild_of_a_volume_backed_server_is_refused_without_a_fault():
    cluster, rec = disk_world()
    body = server(image=None, bootVolume={"volume": "boot"})
    del body["spec"]["image"]
    settle(cluster, rec, body)
    assert body["status"]["status"] == "ACTIVE"
    vmi_uid = cluster.objects[("VirtualMachineInstance", "demo", "web")]["metadata"]["uid"]
    cluster.events.clear()
    change(body, rebuild={"requestId": "r1"})
    out = rec.reconcile(copy.deepcopy(body))
    st = out.status
    assert st["status"] == "ACTIVE" and not st.get("fault") and st["lastRebuildRequestId"] == "r1"
    cond = next(c for c in st["conditions"] if c["type"] == "RequestRefused")
    assert (cond["status"], cond["reason"], cond["observedGeneration"]) == ("True", "VolumeBackedServer", 2)
    assert "volume-backed" in cond["message"] and st["observedGeneration"] == 2
    assert ("Warning", "RebuildRefused") in [e[:2] for e in out.events]
    assert cluster.objects[("VirtualMachineInstance", "demo", "web")]["metadata"]["uid"] == vmi_uid
    assert "delete VirtualMachineInstance" not in cluster.writes
    body["status"] = stored(out.status)
    # answered once: the condition stands, no Event again
    again = rec.reconcile(copy.deepcopy(body))
    assert again.events == [] and status_diff(body["status"], again.status) == {}
    # the next spec change, reconciled without a refusal, clears it
    change(body, description="the next change")
    out = rec.reconcile(copy.deepcopy(body))
    assert "RequestRefused" not in [c["type"] for c in out.status["conditions"]]
    assert out.status["observedGeneration"] == 3 and out.events == []


def test_root_disk_generation_names():
    key = names.rebuild_key("uid-web", 7)
    assert len(key) == 8 and key == names.rebuild_key("uid-web", 7) != names.rebuild_key("uid-web", 8)
    assert names.root_disk("web", key) == f"web-root-{key}"
    assert names.is_root_disk_of("web", "web-root") and names.is_root_disk_of("web", f"web-root-{key}")
    for other in ("web-volume", "web-root-zzzzzzzz", f"db-root-{key}", "web-x-root", f"web-root-{key}-root", None):
        assert not names.is_root_disk_of("web", other), other
    long = "a" * 250
    assert names.is_root_disk_of(long, names.root_disk(long, key)) and len(names.root_disk(long, key)) <= 253
    # a recorded status.rootDisk that is not this server's is ignored
    body = server()
    body["status"] = {"rootDisk": "db-root"}
    assert current_root_disk(body) == "web-root"
    body["status"] = {"rootDisk": f"web-root-{key}"}
    assert current_root_disk(body) == f"web-root-{key}"


def test_superseded_root_disks_only_the_servers_own_and_unused():
    body = server()
    owned = [{"uid": "uid-web"}]
    dvs = [{"metadata": {"name": "web-root", "ownerReferences": owned}},
           {"metadata": {"name": "web-root-0000000a", "ownerReferences": owned}},
           {"metadata": {"name": "web-root-0000000b", "ownerReferences": []}},                 # retained
           {"metadata": {"name": "web-root-0000000c", "ownerReferences": [{"uid": "other"}]}},
           {"metadata": {"name": "web-root-0000000d", "ownerReferences": owned,
                         "deletionTimestamp": "2026-01-01T00:00:00Z"}},
           {"metadata": {"name": "web-root-0000000e", "ownerReferences": owned}}]
    vm = {"spec": {"template": {"spec": {"volumes": [
        {"name": "rootdisk", "dataVolume": {"name": "web-root-0000000e"}}]}}}}
    vmi = {"spec": {"volumes": [{"name": "rootdisk", "dataVolume": {"name": "web-root"}}]}}
    used = claims_used_by(vm, vmi)
    assert used == {"web-root", "web-root-0000000e"}
    assert superseded_root_disks(body, dvs, "web-root-0000000e", used) == (["web-root-0000000a"], ["web-root"])
    body["spec"]["retainRootDisk"] = True
    assert superseded_root_disks(body, dvs, "web-root-0000000e", used) == ([], [])


def test_rebuild_from_a_cloned_disk_onto_a_container_disk_image_deletes_the_old_disk():
    cluster, rec, body = booted()
    change(body, image="cirros-cd")
    cluster.objects[("Image", "demo", "cirros-cd")] = {
        "metadata": {"name": "cirros-cd", "namespace": "demo"},
        "spec": {"source": {"registry": "docker://quay.io/cirros"}, "containerDisk": True},
        "status": {"status": "active", "containerDisk": "quay.io/cirros"}}
    settle(cluster, rec, body)
    st = body["status"]
    assert st["status"] == "ACTIVE" and st["imageName"] == "cirros-cd" and "rootDisk" not in st
    assert root_of(cluster, "VirtualMachineInstance") == {
        "name": "rootdisk", "containerDisk": {"image": "quay.io/cirros"}}
    assert cluster.dvs == {} and cluster.deleted_dvs == ["web-root"]
