"""The simulator against the real local control plane: VMs boot onto their pinned node with
addresses, stop, pause through the adapter, migrate, fail with their node; DataVolumes import
(or fail), PVCs bind and expand, VolumeSnapshots become ready (a pre-provisioned content only
for the snapshot it names) and take their content with them when deleted if its deletionPolicy
is Delete; a settled cluster gets no writes; a simulator started before the VolumeSnapshotClass
CRD creates the default class once it is installed. The simulator runs in a thread
of the test process, with its own API client."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from kubernetes import client

from kubestack.compute.vmactions import Backend, VMActionError, VMActions
from kubestack.k8s.rest import api_request
from kubestack.simulator.common import SimConfig
from kubestack.simulator.main import Simulator, client_for

WAIT = 60.0


def eventually(check, timeout=WAIT, interval=0.1):
    """Poll `check` until it returns something truthy (a deadline for hangs, not a speed test)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"condition not met; last value: {last!r}")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A control plane of this module's own: the simulator under test must be the only one
    acting (the session's operator and simulator run on the shared control plane)."""
    from conftest import TestCluster
    from kubestack.devcluster.cluster import DevCluster, find_bin_dir, node_specs
    from kubestack.devcluster.crds import install_crds

    dev = DevCluster(tmp_path_factory.mktemp("simulator-controlplane"), find_bin_dir())
    dev.up(node_specs(4, ["az1", "az2"]))
    try:
        install_crds(dev.kubeconfig)
        yield TestCluster(kubeconfig=dev.kubeconfig, bin_dir=dev.bin, dev=dev)
    finally:
        dev.down()


@pytest.fixture(scope="module")
def sim(cluster):
    simulator = Simulator(client_for(str(cluster.kubeconfig)), SimConfig(restart_backoff=0.5))
    simulator.start()
    yield simulator
    simulator.stop()


@pytest.fixture(scope="module")
def api(cluster):
    return client_for(str(cluster.kubeconfig))


def kv(api, method, ns, plural, name=None, body=None, sub=None, group="kubevirt.io/v1", ctype="application/merge-patch+json"):
    path = f"/apis/{group}/namespaces/{ns}/{plural}" + (f"/{name}" if name else "") + (f"/{sub}" if sub else "")
    return api_request(api, method, path, body=body, content_type=ctype if method == "PATCH" else "application/json")


def get_or_none(api, path):
    try:
        return api_request(api, "GET", path)
    except Exception as exc:
        if getattr(exc, "status", None) == 404:
            return None
        raise


def vm_manifest(name, node=None, run_strategy="Always", volumes=(), annotations=None, vm_annotations=None):
    template_meta = {"labels": {"kubestack.io/server": name}}
    if annotations:
        template_meta["annotations"] = annotations
    spec = {
        "domain": {
            "cpu": {"cores": 1},
            "memory": {"guest": "512Mi"},
            "devices": {
                "disks": [{"name": "root", "disk": {"bus": "virtio"}}]
                + [{"name": v["name"], "disk": {"bus": "virtio"}} for v in volumes],
                "interfaces": [
                    {"name": "default", "masquerade": {}},
                    {"name": "tenant", "bridge": {}, "macAddress": "02:00:00:aa:bb:01"},
                ],
            },
        },
        "networks": [{"name": "default", "pod": {}},
                     {"name": "tenant", "multus": {"networkName": "tenant-net"}}],
        "volumes": [{"name": "root", "containerDisk": {"image": "quay.io/containerdisks/cirros:0.6"}}] + list(volumes),
    }
    if node:
        spec["nodeSelector"] = {"kubernetes.io/hostname": node}
    md = {"name": name}
    if vm_annotations:
        md["annotations"] = vm_annotations
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine", "metadata": md,
            "spec": {"runStrategy": run_strategy, "template": {"metadata": template_meta, "spec": spec}}}


def vmi_of(api, ns, name):
    return get_or_none(api, f"/apis/kubevirt.io/v1/namespaces/{ns}/virtualmachineinstances/{name}")


def vm_of(api, ns, name):
    return get_or_none(api, f"/apis/kubevirt.io/v1/namespaces/{ns}/virtualmachines/{name}")


def running_vmi(api, ns, name):
    vmi = vmi_of(api, ns, name)
    return vmi if vmi and vmi.get("status", {}).get("phase") == "Running" else None


def vm_printable(api, ns, name, wanted):
    vm = vm_of(api, ns, name)
    return vm if vm and vm.get("status", {}).get("printableStatus") == wanted else None


def test_vm_always_boots_on_its_pinned_node_with_addresses(sim, api, namespace):
    addrs = {"tenant": {"ips": ["10.0.0.5/24"], "mac": "02:00:00:aa:bb:01"}}
    kv(api, "POST", namespace, "virtualmachines",
       body=vm_manifest("web-1", node="compute-1",
                        annotations={"kubestack.io/interface-addresses": json.dumps(addrs)}))
    vmi = eventually(lambda: running_vmi(api, namespace, "web-1"))
    st = vmi["status"]
    assert st["nodeName"] == "compute-1"
    assert vmi["metadata"]["labels"]["kubevirt.io/nodeName"] == "compute-1"
    assert vmi["metadata"]["labels"]["kubestack.io/server"] == "web-1"
    owner = vmi["metadata"]["ownerReferences"][0]
    assert owner["kind"] == "VirtualMachine" and owner["controller"] is True
    ifaces = {i["name"]: i for i in st["interfaces"]}
    assert ifaces["default"]["ipAddress"].startswith("10.244.")
    assert ifaces["tenant"]["ipAddress"] == "10.0.0.5"
    assert ifaces["tenant"]["mac"] == "02:00:00:aa:bb:01"
    assert [p["phase"] for p in st["phaseTransitionTimestamps"]] == ["Pending", "Scheduling", "Scheduled", "Running"]
    conds = {c["type"]: c["status"] for c in st["conditions"]}
    assert conds["Ready"] == "True" and conds["AgentConnected"] == "True"
    vm = eventually(lambda: vm_printable(api, namespace, "web-1", "Running"))
    assert vm["status"]["ready"] is True and vm["status"]["created"] is True
    assert vm["status"]["runStrategy"] == "Always"

    # a second VM on the pod network gets another address
    kv(api, "POST", namespace, "virtualmachines", body=vm_manifest("web-2", node="compute-1"))
    other = eventually(lambda: running_vmi(api, namespace, "web-2"))
    assert {i["name"]: i for i in other["status"]["interfaces"]}["default"]["ipAddress"] != ifaces["default"]["ipAddress"]

    # settled: a full resync makes no writes (compare-before-patch, no hot loops)
    assert sim.wait_idle(WAIT)
    before = sim.total_writes()
    sim.resync()
    assert sim.wait_idle(WAIT)
    assert sim.total_writes() == before


def test_halted_removes_the_vmi_and_stops(sim, api, namespace):
    kv(api, "POST", namespace, "virtualmachines", body=vm_manifest("db-1", node="compute-0"))
    eventually(lambda: running_vmi(api, namespace, "db-1"))
    kv(api, "PATCH", namespace, "virtualmachines", "db-1", body={"spec": {"runStrategy": "Halted"}})
    eventually(lambda: vmi_of(api, namespace, "db-1") is None)
    vm = eventually(lambda: vm_printable(api, namespace, "db-1", "Stopped"))
    assert vm["status"]["ready"] is False and vm["status"]["created"] is False
    ready = [c for c in vm["status"]["conditions"] if c["type"] == "Ready"][0]
    assert ready["reason"] == "VMINotExists"


def test_pause_unpause_softreboot_restart_through_the_adapter(sim, api, namespace):
    kv(api, "POST", namespace, "virtualmachines", body=vm_manifest("app-1", node="compute-2"))
    first = eventually(lambda: running_vmi(api, namespace, "app-1"))
    actions = VMActions(api, Backend.SIMULATOR)
    request = actions.pause(namespace, "app-1")
    eventually(lambda: vm_printable(api, namespace, "app-1", "Paused"))
    assert actions.request_status(namespace, "app-1", request)["result"] == "Succeeded"
    vmi = vmi_of(api, namespace, "app-1")
    paused = [c for c in vmi["status"]["conditions"] if c["type"] == "Paused"][0]
    assert paused["status"] == "True" and paused["reason"] == "PausedByUser"
    with pytest.raises(VMActionError, match="already paused"):
        actions.pause(namespace, "app-1")
    with pytest.raises(VMActionError, match="paused"):
        actions.soft_reboot(namespace, "app-1")

    actions.unpause(namespace, "app-1")
    eventually(lambda: vm_printable(api, namespace, "app-1", "Running"))

    reboot = actions.soft_reboot(namespace, "app-1")
    eventually(lambda: actions.request_status(namespace, "app-1", reboot))
    vmi = vmi_of(api, namespace, "app-1")
    assert vmi["metadata"]["annotations"]["simulator.kubestack.io/reboot-count"] == "1"
    assert vmi["metadata"]["uid"] == first["metadata"]["uid"]  # a soft reboot keeps the VMI

    actions.restart(namespace, "app-1")
    again = eventually(lambda: (v := running_vmi(api, namespace, "app-1")) and
                       v["metadata"]["uid"] != first["metadata"]["uid"] and v)
    assert again["status"]["nodeName"] == "compute-2"
    # the requests are cleared when the new VMI is created (the VM is "Starting" then); the VM
    # reports Running once it has seen the VMI's Running status, a moment after `again` saw it
    eventually(lambda: (v := vm_of(api, namespace, "app-1")) and not v["status"].get("stateChangeRequests")
               and v["status"]["printableStatus"] == "Running")

    actions.stop(namespace, "app-1")
    eventually(lambda: vm_printable(api, namespace, "app-1", "Stopped"))
    assert vm_of(api, namespace, "app-1")["spec"]["runStrategy"] == "Halted"
    actions.start(namespace, "app-1")
    eventually(lambda: running_vmi(api, namespace, "app-1"))


def test_migration_follows_the_live_updated_node_selector(sim, api, namespace):
    kv(api, "POST", namespace, "virtualmachines", body=vm_manifest("mig-1", node="compute-0"))
    eventually(lambda: running_vmi(api, namespace, "mig-1"))

    # selector still names the current node: nowhere to go
    kv(api, "POST", namespace, "virtualmachineinstancemigrations",
       body={"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstanceMigration",
             "metadata": {"name": "stay"}, "spec": {"vmiName": "mig-1"}})
    failed = eventually(lambda: (m := kv(api, "GET", namespace, "virtualmachineinstancemigrations", "stay"))
                        .get("status", {}).get("phase") == "Failed" and m)
    assert "no node to migrate to" in failed["status"]["migrationState"]["failureReason"]

    # the operator re-pins the VM template; LiveUpdate carries it to the VMI
    kv(api, "PATCH", namespace, "virtualmachines", "mig-1",
       body={"spec": {"template": {"spec": {"nodeSelector": {"kubernetes.io/hostname": "compute-3"}}}}})
    eventually(lambda: vmi_of(api, namespace, "mig-1")["spec"]["nodeSelector"] == {"kubernetes.io/hostname": "compute-3"})
    assert vmi_of(api, namespace, "mig-1")["status"]["nodeName"] == "compute-0"
    kv(api, "POST", namespace, "virtualmachineinstancemigrations",
       body={"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstanceMigration",
             "metadata": {"name": "move"}, "spec": {"vmiName": "mig-1"}})
    done = eventually(lambda: (m := kv(api, "GET", namespace, "virtualmachineinstancemigrations", "move"))
                      .get("status", {}).get("phase") == "Succeeded" and m)
    phases = [p["phase"] for p in done["status"]["phaseTransitionTimestamps"]]
    assert phases == ["Pending", "Scheduling", "Scheduled", "PreparingTarget", "TargetReady", "Running", "Succeeded"]
    vmi = eventually(lambda: (v := vmi_of(api, namespace, "mig-1"))["status"]["nodeName"] == "compute-3" and v)
    ms = vmi["status"]["migrationState"]
    assert (ms["sourceNode"], ms["targetNode"], ms["completed"]) == ("compute-0", "compute-3", True)
    assert ms["migrationUid"] == done["metadata"]["uid"]
    eventually(lambda: vm_printable(api, namespace, "mig-1", "Running"))


@pytest.fixture
def spare_node(api):
    """A temporary compute host, deleted after the test, so failing it disturbs no other test."""
    name = f"sim-{uuid.uuid4().hex[:6]}"
    core = client.CoreV1Api(api)
    core.create_node({"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name,
                                                            "kubestack.io/compute-host": "false"}}})
    set_ready(core, name, "True")
    yield name
    core.delete_node(name)


def set_ready(core, node, status):
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    core.patch_node_status(node, {"status": {"conditions": [
        {"type": "Ready", "status": status, "reason": "KubeletReady" if status == "True" else "NodeStatusUnknown",
         "message": "test", "lastHeartbeatTime": now, "lastTransitionTime": now}]}})


def test_not_ready_node_fails_its_vmis(sim, api, namespace, spare_node):
    kv(api, "POST", namespace, "virtualmachines", body=vm_manifest("edge-1", node=spare_node))
    first = eventually(lambda: running_vmi(api, namespace, "edge-1"))
    assert first["status"]["nodeName"] == spare_node
    set_ready(client.CoreV1Api(api), spare_node, "Unknown")
    # the VMI fails (virt-handler heartbeat lost); Always recreates it, which cannot schedule
    vm = eventually(lambda: vm_printable(api, namespace, "edge-1", "ErrorUnschedulable"))
    vmi = vmi_of(api, namespace, "edge-1")
    assert vmi["metadata"]["uid"] != first["metadata"]["uid"]
    sched = [c for c in vmi["status"]["conditions"] if c["type"] == "PodScheduled"][0]
    assert (sched["status"], sched["reason"]) == ("False", "Unschedulable")
    assert vm["status"]["ready"] is False
    # the node comes back: the VMI schedules
    set_ready(client.CoreV1Api(api), spare_node, "True")
    eventually(lambda: running_vmi(api, namespace, "edge-1"))


def test_injected_boot_failure_crash_loops(sim, api, namespace):
    kv(api, "POST", namespace, "virtualmachines",
       body=vm_manifest("bad-1", node="compute-0", vm_annotations={"simulator.kubestack.io/fail": "boot"}))
    vm = eventually(lambda: (v := vm_of(api, namespace, "bad-1")) and
                    v.get("status", {}).get("startFailure", {}).get("consecutiveFailCount", 0) >= 2 and v)
    assert vm["status"]["printableStatus"] in ("CrashLoopBackOff", "Starting", "Stopping", "Stopped")
    kv(api, "PATCH", namespace, "virtualmachines", "bad-1",
       body={"metadata": {"annotations": {"simulator.kubestack.io/fail": None}}})
    eventually(lambda: running_vmi(api, namespace, "bad-1"))
    eventually(lambda: not vm_of(api, namespace, "bad-1")["status"].get("startFailure"))


def dv(name, source, size="1Gi", **spec):
    return {"apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "DataVolume", "metadata": {"name": name},
            "spec": {"source": source, "storage": {"resources": {"requests": {"storage": size}}}, **spec}}


def dv_phase(api, ns, name, phase):
    obj = get_or_none(api, f"/apis/cdi.kubevirt.io/v1beta1/namespaces/{ns}/datavolumes/{name}")
    return obj if obj and obj.get("status", {}).get("phase") == phase else None


def test_datavolume_imports_and_a_vm_boots_from_it(sim, api, namespace):
    api_request(api, "POST", f"/apis/cdi.kubevirt.io/v1beta1/namespaces/{namespace}/datavolumes",
                body=dv("cirros", {"http": {"url": "https://download.cirros-cloud.net/0.6.2/cirros.img"}}))
    obj = eventually(lambda: dv_phase(api, namespace, "cirros", "Succeeded"))
    assert obj["status"]["progress"] == "100.0%" and obj["status"]["claimName"] == "cirros"
    conds = {c["type"]: (c["status"], c.get("reason", "")) for c in obj["status"]["conditions"]}
    assert conds["Bound"] == ("True", "Bound") and conds["Ready"][0] == "True"
    pvc = client.CoreV1Api(api).read_namespaced_persistent_volume_claim("cirros", namespace)
    assert pvc.status.phase == "Bound" and pvc.spec.storage_class_name == "standard"
    assert pvc.metadata.owner_references[0].kind == "DataVolume"
    pv = client.CoreV1Api(api).read_persistent_volume(pvc.spec.volume_name)
    assert pv.spec.csi.driver == "simulated.kubestack.io" and pv.status.phase == "Bound"

    # a clone of it, then a VM using the clone
    api_request(api, "POST", f"/apis/cdi.kubevirt.io/v1beta1/namespaces/{namespace}/datavolumes",
                body={"apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "DataVolume", "metadata": {"name": "root-1"},
                      "spec": {"source": {"pvc": {"namespace": namespace, "name": "cirros"}}, "storage": {}}})
    eventually(lambda: dv_phase(api, namespace, "root-1", "Succeeded"))
    kv(api, "POST", namespace, "virtualmachines",
       body=vm_manifest("vm-dv", node="compute-2", volumes=[{"name": "data", "dataVolume": {"name": "root-1"}}]))
    vmi = eventually(lambda: running_vmi(api, namespace, "vm-dv"))
    vol = {v["name"]: v for v in vmi["status"]["volumeStatus"]}
    assert vol["data"]["persistentVolumeClaimInfo"]["claimName"] == "root-1"


def test_vm_waits_for_a_missing_volume(sim, api, namespace):
    kv(api, "POST", namespace, "virtualmachines",
       body=vm_manifest("vm-wait", node="compute-1",
                        volumes=[{"name": "data", "persistentVolumeClaim": {"claimName": "later"}}]))
    eventually(lambda: vm_printable(api, namespace, "vm-wait", "ErrorPvcNotFound"))
    assert vmi_of(api, namespace, "vm-wait")["status"]["phase"] == "Pending"
    client.CoreV1Api(api).create_namespaced_persistent_volume_claim(namespace, {
        "metadata": {"name": "later"},
        "spec": {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "1Gi"}}}})
    eventually(lambda: running_vmi(api, namespace, "vm-wait"))


def test_bad_url_fails_the_datavolume(sim, api, namespace):
    api_request(api, "POST", f"/apis/cdi.kubevirt.io/v1beta1/namespaces/{namespace}/datavolumes",
                body=dv("broken", {"http": {"url": "https://images.example.invalid/disk.qcow2"}}))
    obj = eventually(lambda: dv_phase(api, namespace, "broken", "Failed"))
    running = [c for c in obj["status"]["conditions"] if c["type"] == "Running"][0]
    assert running["reason"] == "Error" and "no such host" in running["message"]
    # a VM using it reports DataVolumeError and gets no VMI
    kv(api, "POST", namespace, "virtualmachines",
       body=vm_manifest("vm-broken", volumes=[{"name": "data", "dataVolume": {"name": "broken"}}]))
    eventually(lambda: vm_printable(api, namespace, "vm-broken", "DataVolumeError"))
    assert vmi_of(api, namespace, "vm-broken") is None


def test_upload_datavolume_waits_for_the_upload(sim, api, namespace):
    api_request(api, "POST", f"/apis/cdi.kubevirt.io/v1beta1/namespaces/{namespace}/datavolumes",
                body=dv("up", {"upload": {}}))
    eventually(lambda: dv_phase(api, namespace, "up", "UploadReady"))
    api_request(api, "PATCH", f"/apis/cdi.kubevirt.io/v1beta1/namespaces/{namespace}/datavolumes/up",
                body={"metadata": {"annotations": {"simulator.kubestack.io/uploaded": "true"}}},
                content_type="application/merge-patch+json")
    eventually(lambda: dv_phase(api, namespace, "up", "Succeeded"))


def bound_pvc(api, ns, name, size="1Gi", **spec):
    """Create a PVC (ReadWriteOnce) and wait until the simulator has bound it."""
    core = client.CoreV1Api(api)
    core.create_namespaced_persistent_volume_claim(ns, {
        "metadata": {"name": name},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}, **spec}})
    return eventually(lambda: (p := core.read_namespaced_persistent_volume_claim(name, ns)).status.phase == "Bound"
                      and p)


def test_pvc_binds_and_expands(sim, api, namespace):
    core = client.CoreV1Api(api)
    pvc = bound_pvc(api, namespace, "vol-1", storageClassName="fast-ssd")
    assert pvc.status.capacity["storage"] == "1Gi"
    core.patch_namespaced_persistent_volume_claim("vol-1", namespace,
                                                  {"spec": {"resources": {"requests": {"storage": "3Gi"}}}})
    eventually(lambda: core.read_namespaced_persistent_volume_claim("vol-1", namespace)
               .status.capacity["storage"] == "3Gi")
    assert core.read_persistent_volume(pvc.spec.volume_name).spec.capacity["storage"] == "3Gi"


def test_volume_snapshot_becomes_ready_and_restores(sim, api, namespace):
    bound_pvc(api, namespace, "src", "2Gi")
    base = f"/apis/snapshot.storage.k8s.io/v1/namespaces/{namespace}/volumesnapshots"
    api_request(api, "POST", base, body={
        "apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot", "metadata": {"name": "snap-1"},
        "spec": {"source": {"persistentVolumeClaimName": "src"}}})
    vs = eventually(lambda: (s := api_request(api, "GET", f"{base}/snap-1")).get("status", {}).get("readyToUse") and s)
    assert vs["status"]["restoreSize"] == "2Gi" and vs["status"]["creationTime"]
    content = api_request(api, "GET", "/apis/snapshot.storage.k8s.io/v1/volumesnapshotcontents/"
                          + vs["status"]["boundVolumeSnapshotContentName"])
    assert content["status"]["readyToUse"] is True and content["status"]["restoreSize"] == 2 * 1024**3
    api_request(api, "POST", f"/apis/cdi.kubevirt.io/v1beta1/namespaces/{namespace}/datavolumes",
                body=dv("restored", {"snapshot": {"namespace": namespace, "name": "snap-1"}}, size="2Gi"))
    eventually(lambda: dv_phase(api, namespace, "restored", "Succeeded"))


def test_a_preprovisioned_content_binds_only_the_snapshot_it_names(sim, api, namespace):
    snapshots = f"/apis/snapshot.storage.k8s.io/v1/namespaces/{namespace}/volumesnapshots"
    contents = "/apis/snapshot.storage.k8s.io/v1/volumesnapshotcontents"
    cname = f"pre-{namespace}"
    api_request(api, "POST", contents, body={
        "apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshotContent", "metadata": {"name": cname},
        "spec": {"deletionPolicy": "Retain", "driver": "simulated.kubestack.io",
                 "source": {"snapshotHandle": "imported-1"},
                 "volumeSnapshotRef": {"namespace": namespace, "name": "mine"}}})
    try:
        def snapshot(name):
            api_request(api, "POST", snapshots, body={
                "apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot", "metadata": {"name": name},
                "spec": {"source": {"volumeSnapshotContentName": cname}}})

        def status(name):
            return api_request(api, "GET", f"{snapshots}/{name}").get("status") or {}

        snapshot("stranger")  # first, and at the same time as the one the content names
        snapshot("mine")
        mine = eventually(lambda: (s := status("mine")).get("readyToUse") and s)
        assert mine["boundVolumeSnapshotContentName"] == cname and "error" not in mine
        stranger = eventually(lambda: (s := status("stranger")).get("error") and s)
        assert stranger["readyToUse"] is False and "boundVolumeSnapshotContentName" not in stranger
        assert stranger["error"]["message"] == f"VolumeSnapshotContent [{cname}] is bound to a different snapshot"
        content = api_request(api, "GET", f"{contents}/{cname}")
        uid = api_request(api, "GET", f"{snapshots}/mine")["metadata"]["uid"]
        assert content["spec"]["volumeSnapshotRef"]["uid"] == uid
        assert content["status"]["readyToUse"] is True and content["status"]["snapshotHandle"] == "imported-1"
        assert sim.wait_idle(WAIT)
        assert status("stranger")["readyToUse"] is False and status("mine")["readyToUse"] is True
    finally:
        api_request(api, "DELETE", f"{contents}/{cname}")


SNAP = "/apis/snapshot.storage.k8s.io/v1"
SOURCE_FINALIZER = "snapshot.storage.kubernetes.io/volumesnapshot-as-source-protection"
BOUND_FINALIZER = "snapshot.storage.kubernetes.io/volumesnapshot-bound-protection"
CONTENT_FINALIZER = "snapshot.storage.kubernetes.io/volumesnapshotcontent-bound-protection"


def test_deleting_a_snapshot_follows_its_contents_deletion_policy(sim, api, namespace):
    bound_pvc(api, namespace, "src")
    snapshots, contents = f"{SNAP}/namespaces/{namespace}/volumesnapshots", f"{SNAP}/volumesnapshotcontents"
    keep, pre = f"keep-{namespace}", f"pre-del-{namespace}"
    api_request(api, "POST", f"{SNAP}/volumesnapshotclasses", body={
        "apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshotClass", "metadata": {"name": keep},
        "driver": "simulated.kubestack.io", "deletionPolicy": "Retain"})
    api_request(api, "POST", contents, body={
        "apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshotContent", "metadata": {"name": pre},
        "spec": {"deletionPolicy": "Delete", "driver": "simulated.kubestack.io",
                 "source": {"snapshotHandle": "imported-2"},
                 "volumeSnapshotRef": {"namespace": namespace, "name": "imported"}}})
    kept_name = None
    try:
        for name, spec in (("gone", {"source": {"persistentVolumeClaimName": "src"}}),
                           ("kept", {"source": {"persistentVolumeClaimName": "src"}, "volumeSnapshotClassName": keep}),
                           ("imported", {"source": {"volumeSnapshotContentName": pre}})):
            api_request(api, "POST", snapshots, body={"apiVersion": "snapshot.storage.k8s.io/v1",
                                                      "kind": "VolumeSnapshot", "metadata": {"name": name},
                                                      "spec": spec})
        ready = {n: eventually(lambda n=n: (s := api_request(api, "GET", f"{snapshots}/{n}"))
                               .get("status", {}).get("readyToUse") and s)
                 for n in ("gone", "kept", "imported")}
        assert sim.wait_idle(WAIT)
        bound = {n: api_request(api, "GET", f"{contents}/{s['status']['boundVolumeSnapshotContentName']}")
                 for n, s in ready.items()}
        kept_name = bound["kept"]["metadata"]["name"]
        for n in ("gone", "imported"):  # Delete: the snapshot waits for its content on deletion
            assert api_request(api, "GET", f"{snapshots}/{n}")["metadata"]["finalizers"] == \
                [SOURCE_FINALIZER, BOUND_FINALIZER]
        assert api_request(api, "GET", f"{snapshots}/kept")["metadata"]["finalizers"] == [SOURCE_FINALIZER]
        assert all(c["metadata"]["finalizers"] == [CONTENT_FINALIZER] for c in bound.values())

        for n in ("gone", "kept", "imported"):
            api_request(api, "DELETE", f"{snapshots}/{n}")
        for n in ("gone", "kept", "imported"):
            eventually(lambda n=n: get_or_none(api, f"{snapshots}/{n}") is None)
        # Delete: the content went too (pre-provisioned or not)
        for n in ("gone", "imported"):
            eventually(lambda n=n: get_or_none(api, f"{contents}/{bound[n]['metadata']['name']}") is None)
        # Retain: the content stays as it was, naming the deleted snapshot; only marked
        assert sim.wait_idle(WAIT)
        kept = api_request(api, "GET", f"{contents}/{kept_name}")
        assert "deletionTimestamp" not in kept["metadata"]
        assert kept["metadata"]["finalizers"] == [CONTENT_FINALIZER]
        assert kept["metadata"]["annotations"]["snapshot.storage.kubernetes.io/volumesnapshot-being-deleted"] == "yes"
        assert kept["spec"] == bound["kept"]["spec"] and kept["status"] == bound["kept"]["status"]
        assert kept["spec"]["volumeSnapshotRef"]["uid"] == ready["kept"]["metadata"]["uid"]
        assert kept["status"]["readyToUse"] is True
    finally:
        # a retained content deleted by hand goes (the sidecar lets go of it)
        if kept_name:
            api_request(api, "DELETE", f"{contents}/{kept_name}")
            eventually(lambda: get_or_none(api, f"{contents}/{kept_name}") is None)
        if get_or_none(api, f"{contents}/{pre}"):
            api_request(api, "DELETE", f"{contents}/{pre}")
        api_request(api, "DELETE", f"{SNAP}/volumesnapshotclasses/{keep}")


def test_addvolume_hotplugs_into_the_running_vmi(sim, api, namespace):
    core = client.CoreV1Api(api)
    core.create_namespaced_persistent_volume_claim(namespace, {
        "metadata": {"name": "extra"},
        "spec": {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "1Gi"}}}})
    kv(api, "POST", namespace, "virtualmachines", body=vm_manifest("hp-1", node="compute-3"))
    eventually(lambda: running_vmi(api, namespace, "hp-1"))
    actions = VMActions(api, Backend.SIMULATOR)
    actions.add_volume(namespace, "hp-1", "extra", claim_name="extra")
    vmi = eventually(lambda: (v := running_vmi(api, namespace, "hp-1")) and
                     any(s["name"] == "extra" and s.get("phase") == "Ready" for s in v["status"].get("volumeStatus", []))
                     and v)
    assert any(v["name"] == "extra" for v in vmi["spec"]["volumes"])
    vm = vm_of(api, namespace, "hp-1")
    assert any(v["name"] == "extra" for v in vm["spec"]["template"]["spec"]["volumes"])
    actions.remove_volume(namespace, "hp-1", "extra")
    eventually(lambda: not any(v["name"] == "extra" for v in vmi_of(api, namespace, "hp-1")["spec"]["volumes"]))
    with pytest.raises(VMActionError, match="not hotpluggable"):
        actions.remove_volume(namespace, "hp-1", "root")


# -- these three run last: they replace the module's simulator ------------------------------

def test_a_restarted_simulator_picks_up_without_writing(sim, cluster, api, namespace):
    kv(api, "POST", namespace, "virtualmachines", body=vm_manifest("keep-1", node="compute-0"))
    eventually(lambda: running_vmi(api, namespace, "keep-1"))
    # earlier tests' namespaces are still being emptied by the namespace controller, and
    # their released volumes are the simulator's to clean up: the cluster settles first
    core = client.CoreV1Api(api)
    eventually(lambda: not [n for n in core.list_namespace().items if n.status.phase == "Terminating"])
    assert sim.wait_idle(WAIT)
    # read once settled: "Running" can be seen between the status write and the label patch
    # that follows it in the same reconcile
    before = running_vmi(api, namespace, "keep-1")
    sim.stop()
    fresh = Simulator(client_for(str(cluster.kubeconfig)), SimConfig(restart_backoff=0.5))
    fresh.start()
    try:
        assert fresh.wait_idle(WAIT)
        assert fresh.total_writes() == 0, dict(fresh.writes)
        after = running_vmi(api, namespace, "keep-1")
        assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    finally:
        fresh.stop()


def test_kubestack_simulate_command(cluster, api, namespace):
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    exe = Path(sys.executable).parent / "kubestack"
    proc = subprocess.Popen([str(exe), "simulate", "--kubeconfig", str(cluster.kubeconfig), "--seed", "3"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        kv(api, "POST", namespace, "virtualmachines", body=vm_manifest("cli-1", node="compute-1"))
        eventually(lambda: running_vmi(api, namespace, "cli-1"))
    finally:
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=WAIT)[0]
    assert proc.returncode == 0, output
    assert "simulator started" in output
    assert os.path.exists(cluster.kubeconfig)


def test_a_simulator_started_before_the_snapshot_class_crd_makes_the_default_class_once_it_is_served(
        sim, cluster, api):
    """Last: it removes the VolumeSnapshotClass CRD, then starts a simulator of its own."""
    from kubestack.devcluster.crds import crd_manifests
    from kubestack.simulator.main import DEFAULTS_RECHECK

    sim.stop()  # the module's (stopped already if the two tests above ran): this one acts alone
    ext = client.ApiextensionsV1Api(api)
    crd = "volumesnapshotclasses.snapshot.storage.k8s.io"
    [manifest] = [c for c in crd_manifests() if c["metadata"]["name"] == crd]
    classes = f"{SNAP}/volumesnapshotclasses"

    def served():
        return "volumesnapshotclasses" in [r["name"] for r in api_request(api, "GET", SNAP)["resources"]]

    ext.delete_custom_resource_definition(crd)
    eventually(lambda: not served())
    late = Simulator(client_for(str(cluster.kubeconfig)), SimConfig())
    late.start()
    try:
        assert not late.served("VolumeSnapshotClass")
        ext.create_custom_resource_definition(manifest)
        made = eventually(lambda: get_or_none(api, f"{classes}/simulated"))
        assert made["metadata"]["annotations"]["snapshot.storage.kubernetes.io/is-default-class"] == "true"
        assert (made["driver"], made["deletionPolicy"]) == ("simulated.kubestack.io", "Delete")
        assert late.served("VolumeSnapshotClass")

        # made once: the user's edit stays, and so does their deletion
        api_request(api, "PATCH", f"{classes}/simulated", content_type="application/merge-patch+json",
                    body={"metadata": {"annotations": {"snapshot.storage.kubernetes.io/is-default-class": "false"}}})
        time.sleep(3 * DEFAULTS_RECHECK)
        assert api_request(api, "GET", f"{classes}/simulated")["metadata"]["annotations"][
            "snapshot.storage.kubernetes.io/is-default-class"] == "false"
        api_request(api, "DELETE", f"{classes}/simulated")
        eventually(lambda: get_or_none(api, f"{classes}/simulated") is None)
        time.sleep(3 * DEFAULTS_RECHECK)
        assert get_or_none(api, f"{classes}/simulated") is None
    finally:
        late.stop()
        if not served():  # failed before it was installed again: leave the cluster whole
            try:
                ext.create_custom_resource_definition(manifest)
            except client.ApiException as exc:
                if exc.status != 409:
                    raise
