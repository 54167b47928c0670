"""The VM / VMI / migration transitions, driven to a fixed point on an in-memory World."""

from __future__ import annotations

import json

import pytest
from sim_helpers import apply, node, pvc, vm, world

from kubestack.simulator import kubevirt
from kubestack.simulator.common import SimConfig, Write, coalesce


def settle(w, rounds=20):
    """Reconcile every VM, VMI and migration until nothing is written (the simulator's loop)."""
    for _ in range(rounds):
        wrote = False
        for obj in list(w.vms.values()):
            key = (obj["metadata"]["namespace"], obj["metadata"]["name"])
            if key in w.vms:
                wrote |= bool(apply(kubevirt.reconcile_vm(w.vms[key], w.vmis.get(key), w), w))
        for key in list(w.vmis):
            if key in w.vmis:
                wrote |= bool(apply(kubevirt.reconcile_vmi(w.vmis[key], w), w))
        for key in list(w.migrations):
            wrote |= bool(apply(kubevirt.reconcile_migration(w.migrations[key], w), w))
        if not wrote:
            return w
    raise AssertionError("did not settle: the transitions keep writing")


def nodes(*names, **kw):
    return [node(n, **kw) for n in names]


def test_always_creates_a_running_vmi_on_the_pinned_node():
    addrs = {"tenant": {"ips": ["10.0.0.5/24", "fd00::5/64"]}}
    v = vm("web", node_name="n2")
    v["spec"]["template"]["metadata"]["annotations"] = {"kubestack.io/interface-addresses": json.dumps(addrs)}
    w = settle(world(nodes=nodes("n1", "n2", "n3"), vms=[v]))
    vmi = w.vmis[("p1", "web")]
    assert vmi["metadata"]["ownerReferences"][0]["uid"] == v["metadata"]["uid"]
    assert vmi["metadata"]["ownerReferences"][0]["controller"] is True
    assert vmi["metadata"]["labels"] == {"app": "web", "kubevirt.io/nodeName": "n2"}
    assert vmi["spec"] == v["spec"]["template"]["spec"]
    st = vmi["status"]
    assert st["phase"] == "Running" and st["nodeName"] == "n2"
    ifaces = {i["name"]: i for i in st["interfaces"]}
    assert ifaces["tenant"]["ipAddresses"] == ["10.0.0.5", "fd00::5"]
    assert ifaces["tenant"]["mac"] == "02:00:00:00:00:aa"
    assert ifaces["default"]["ipAddress"].startswith("10.244.")
    assert ifaces["default"]["interfaceName"] == "eth0" and ifaces["tenant"]["interfaceName"] == "eth1"
    vst = w.vms[("p1", "web")]["status"]
    assert vst["printableStatus"] == "Running" and vst["ready"] and vst["created"]
    assert {c["type"]: c["status"] for c in vst["conditions"]}["Ready"] == "True"


def test_unpinned_vmi_lands_on_a_ready_compute_host_matching_its_selector():
    v = vm("web")
    v["spec"]["template"]["spec"]["nodeSelector"] = {"zone": "b"}
    w = settle(world(nodes=[node("a1", zone="a"), node("b1", zone="b"), node("b2", zone="b", ready=False),
                            node("b3", zone="b", compute=False)], vms=[v]))
    assert w.vmis[("p1", "web")]["status"]["nodeName"] == "b1"


def test_pod_ips_are_unique_even_when_the_hash_collides():
    w = world(nodes=nodes("n1"), vms=[vm("a"), vm("b")])
    settle(w)
    first = kubevirt.pod_ip_for(w.vmis[("p1", "a")], w)
    # pretend every other address but one is taken by someone else
    w.pod_ips = {first: "someone-else"}
    fresh = dict(w.vmis[("p1", "b")])
    fresh["status"] = {}
    assert kubevirt.pod_ip_for(fresh, w) != first


@pytest.mark.parametrize("strategy,expect_vmi", [("Always", True), ("RerunOnFailure", True), ("Once", True),
                                                 ("Manual", False), ("Halted", False), (None, False)])
def test_run_strategies_initial_start(strategy, expect_vmi):
    w = settle(world(nodes=nodes("n1"), vms=[vm("x", run_strategy=strategy)]))
    assert (("p1", "x") in w.vmis) is expect_vmi
    assert w.vms[("p1", "x")]["status"]["printableStatus"] == ("Running" if expect_vmi else "Stopped")


def test_legacy_running_field():
    w = settle(world(nodes=nodes("n1"), vms=[vm("x", run_strategy=None, running=True)]))
    assert w.vmis[("p1", "x")]["status"]["phase"] == "Running"
    assert w.vms[("p1", "x")]["status"]["runStrategy"] == "Always"


def test_halted_deletes_the_vmi():
    w = settle(world(nodes=nodes("n1"), vms=[vm("x")]))
    w.vms[("p1", "x")]["spec"]["runStrategy"] = "Halted"
    out = kubevirt.reconcile_vm(w.vms[("p1", "x")], w.vmis[("p1", "x")], w)
    deletes = [x for x in out.writes if x.verb == "delete"]
    assert deletes and deletes[0].uid == w.vmis[("p1", "x")]["metadata"]["uid"]
    assert out.writes[-1].body["status"]["printableStatus"] == "Stopping"
    settle(w)
    assert ("p1", "x") not in w.vmis
    st = w.vms[("p1", "x")]["status"]
    assert st["printableStatus"] == "Stopped" and st["created"] is False
    ready = [c for c in st["conditions"] if c["type"] == "Ready"][0]
    assert (ready["status"], ready["reason"]) == ("False", "VMINotExists")


def test_deleting_vm_is_terminating_and_deletes_its_vmi():
    w = settle(world(nodes=nodes("n1"), vms=[vm("x")]))
    w.vms[("p1", "x")]["metadata"]["deletionTimestamp"] = "2030-01-01T00:00:00Z"
    out = kubevirt.reconcile_vm(w.vms[("p1", "x")], w.vmis[("p1", "x")], w)
    assert [x.verb for x in out.writes] == ["delete", "status"]
    assert out.writes[1].body["status"]["printableStatus"] == "Terminating"


def test_settled_world_writes_nothing():
    w = settle(world(nodes=nodes("n1", "n2"), vms=[vm("a", node_name="n1"), vm("b")]))
    for key, v in w.vms.items():
        assert kubevirt.reconcile_vm(v, w.vmis.get(key), w).writes == []
    for vmi in w.vmis.values():
        assert kubevirt.reconcile_vmi(vmi, w).writes == []


def test_boot_delay_walks_the_phases():
    w = world(nodes=nodes("n1"), vms=[vm("x")], config=SimConfig(boot_delay=10))
    settle(w)
    vmi = w.vmis[("p1", "x")]
    assert vmi["status"]["phase"] == "Scheduling"
    out = kubevirt.reconcile_vmi(vmi, w)
    assert out.requeue_after == pytest.approx(5.0)
    w.now += 5
    settle(w)
    assert vmi["status"]["phase"] == "Scheduled" and vmi["status"]["nodeName"] == "n1"
    assert w.vms[("p1", "x")]["status"]["printableStatus"] == "Starting"
    w.now += 5
    settle(w)
    assert vmi["status"]["phase"] == "Running"
    assert [p["phase"] for p in vmi["status"]["phaseTransitionTimestamps"]] == \
        ["Pending", "Scheduling", "Scheduled", "Running"]


def test_missing_or_not_ready_pinned_node_is_unschedulable():
    w = settle(world(nodes=nodes("n1"), vms=[vm("x", node_name="gone")]))
    vmi = w.vmis[("p1", "x")]
    assert vmi["status"]["phase"] == "Scheduling"
    cond = [c for c in vmi["status"]["conditions"] if c["type"] == "PodScheduled"][0]
    assert (cond["status"], cond["reason"]) == ("False", "Unschedulable")
    assert w.vms[("p1", "x")]["status"]["printableStatus"] == "ErrorUnschedulable"
    w.nodes["gone"] = node("gone")
    settle(w)
    assert vmi["status"]["phase"] == "Running"


def test_node_not_ready_fails_vmi_and_always_recreates_unschedulable():
    w = settle(world(nodes=nodes("n1", "n2"), vms=[vm("x", node_name="n1")]))
    first_uid = w.vmis[("p1", "x")]["metadata"]["uid"]
    w.nodes["n1"]["status"]["conditions"][0]["status"] = "False"
    out = kubevirt.reconcile_vmi(w.vmis[("p1", "x")], w)
    st = out.writes[0].body["status"]
    assert st["phase"] == "Failed" and st["reason"] == "NodeUnresponsive"
    settle(w)
    vmi = w.vmis[("p1", "x")]
    assert vmi["metadata"]["uid"] != first_uid
    assert vmi["status"]["phase"] == "Scheduling"
    assert w.vms[("p1", "x")]["status"]["printableStatus"] == "ErrorUnschedulable"
    assert "startFailure" not in w.vms[("p1", "x")]["status"]  # it had run: not a start failure


def test_injected_boot_failure_backs_off_then_retries():
    w = world(nodes=nodes("n1"), vms=[vm("x", annotations={"simulator.kubestack.io/fail": "boot"})],
              config=SimConfig(restart_backoff=10))
    settle(w)
    st = w.vms[("p1", "x")]["status"]
    assert st["startFailure"]["consecutiveFailCount"] == 1
    assert st["printableStatus"] == "CrashLoopBackOff"
    assert ("p1", "x") not in w.vmis
    out = kubevirt.reconcile_vm(w.vms[("p1", "x")], None, w)
    assert out.requeue_after == pytest.approx(10.0)
    w.now += 10
    settle(w)
    assert w.vms[("p1", "x")]["status"]["startFailure"]["consecutiveFailCount"] == 2
    assert kubevirt.reconcile_vm(w.vms[("p1", "x")], None, w).requeue_after == pytest.approx(20.0)
    del w.vms[("p1", "x")]["metadata"]["annotations"]["simulator.kubestack.io/fail"]
    w.now += 20
    settle(w)
    assert w.vmis[("p1", "x")]["status"]["phase"] == "Running"
    assert "startFailure" not in w.vms[("p1", "x")]["status"]


def test_fail_rate_is_deterministic_per_seed():
    cfg = SimConfig(fail_rate=0.5, seed=7)
    vmis = [{"metadata": {"uid": f"u{i}", "name": "x", "namespace": "p"}} for i in range(200)]
    w = world(config=cfg)
    picks = [kubevirt.boot_fails(v, None, w) for v in vmis]
    assert picks == [kubevirt.boot_fails(v, None, w) for v in vmis]
    assert 60 < sum(picks) < 140


def test_volumes_gate_the_boot():
    v = vm("x", volumes=[{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}])
    w = settle(world(nodes=nodes("n1"), vms=[v]))
    assert w.vmis[("p1", "x")]["status"]["phase"] == "Pending"
    assert w.vms[("p1", "x")]["status"]["printableStatus"] == "ErrorPvcNotFound"
    w.pvcs[("p1", "data")] = pvc("data", phase="Pending")
    settle(w)
    assert w.vms[("p1", "x")]["status"]["printableStatus"] == "WaitingForVolumeBinding"
    w.pvcs[("p1", "data")] = pvc("data")
    settle(w)
    assert w.vmis[("p1", "x")]["status"]["phase"] == "Running"


@pytest.mark.parametrize("phase,printable", [("ImportInProgress", "Provisioning"), ("Failed", "DataVolumeError")])
def test_datavolumes_not_ready_hold_the_vmi(phase, printable):
    v = vm("x", volumes=[{"name": "root", "dataVolume": {"name": "root"}}])
    dv = {"kind": "DataVolume", "metadata": {"name": "root", "namespace": "p1"}, "status": {"phase": phase}}
    w = settle(world(nodes=nodes("n1"), vms=[v], dvs=[dv]))
    assert ("p1", "x") not in w.vmis
    assert w.vms[("p1", "x")]["status"]["printableStatus"] == printable


def test_data_volume_templates_are_created_owned_by_the_vm():
    v = vm("x", volumes=[{"name": "root", "dataVolume": {"name": "x-root"}}],
           dataVolumeTemplates=[{"metadata": {"name": "x-root"}, "spec": {"source": {"blank": {}}}}])
    w = world(nodes=nodes("n1"), vms=[v])
    out = kubevirt.reconcile_vm(v, None, w)
    creates = [x for x in out.writes if x.verb == "create" and x.kind == "DataVolume"]
    assert creates and creates[0].body["metadata"]["ownerReferences"][0]["uid"] == v["metadata"]["uid"]


def _request(obj, action, rid="r1", options=None):
    req = {"action": action, "id": rid}
    if options:
        req["options"] = options
    obj["metadata"].setdefault("annotations", {})["simulator.kubestack.io/request"] = json.dumps(req)


def _result(obj):
    return json.loads(obj["metadata"]["annotations"]["simulator.kubestack.io/request-status"])


def test_pause_and_unpause_requests():
    w = settle(world(nodes=nodes("n1"), vms=[vm("x")]))
    vmi = w.vmis[("p1", "x")]
    _request(vmi, "pause", "r1")
    settle(w)
    assert _result(vmi) == {"id": "r1", "action": "pause", "result": "Succeeded", "message": ""}
    paused = [c for c in vmi["status"]["conditions"] if c["type"] == "Paused"][0]
    assert (paused["status"], paused["reason"]) == ("True", "PausedByUser")
    vst = w.vms[("p1", "x")]["status"]
    assert vst["printableStatus"] == "Paused"
    assert any(c["type"] == "Paused" and c["status"] == "True" for c in vst["conditions"])
    _request(vmi, "softreboot", "r2")
    settle(w)
    assert _result(vmi)["result"] == "Failed" and _result(vmi)["message"] == "VMI is paused"
    _request(vmi, "unpause", "r3")
    settle(w)
    assert w.vms[("p1", "x")]["status"]["printableStatus"] == "Running"
    _request(vmi, "softreboot", "r4")
    settle(w)
    assert vmi["metadata"]["annotations"]["simulator.kubestack.io/reboot-count"] == "1"
    assert vmi["status"]["phase"] == "Running"


def test_restart_request_replaces_the_vmi_even_for_manual():
    w = world(nodes=nodes("n1"), vms=[vm("x", run_strategy="Manual")])
    _request(w.vms[("p1", "x")], "start", "s1")
    settle(w)
    first = w.vmis[("p1", "x")]["metadata"]["uid"]
    assert w.vmis[("p1", "x")]["status"]["phase"] == "Running"
    _request(w.vms[("p1", "x")], "restart", "r1")
    settle(w)
    assert w.vmis[("p1", "x")]["metadata"]["uid"] != first
    assert w.vmis[("p1", "x")]["status"]["phase"] == "Running"
    assert not w.vms[("p1", "x")]["status"].get("stateChangeRequests")
    _request(w.vms[("p1", "x")], "stop", "t1")
    settle(w)
    assert ("p1", "x") not in w.vmis
    assert w.vms[("p1", "x")]["spec"]["runStrategy"] == "Manual"


def test_stop_and_start_of_always_flip_the_run_strategy():
    w = settle(world(nodes=nodes("n1"), vms=[vm("x")]))
    _request(w.vms[("p1", "x")], "stop", "a")
    settle(w)
    assert w.vms[("p1", "x")]["spec"]["runStrategy"] == "Halted" and ("p1", "x") not in w.vmis
    _request(w.vms[("p1", "x")], "start", "b")
    settle(w)
    assert w.vms[("p1", "x")]["spec"]["runStrategy"] == "Always"
    assert w.vmis[("p1", "x")]["status"]["phase"] == "Running"


def test_hotplug_add_and_remove_volume():
    w = settle(world(nodes=nodes("n1"), vms=[vm("x")], pvcs=[pvc("extra")]))
    opts = {"name": "extra", "disk": {"name": "extra", "disk": {"bus": "scsi"}},
            "volumeSource": {"persistentVolumeClaim": {"claimName": "extra"}}}
    _request(w.vms[("p1", "x")], "addvolume", "h1", opts)
    settle(w)
    assert _result(w.vms[("p1", "x")])["result"] == "Succeeded"
    vol = [v for v in w.vmis[("p1", "x")]["spec"]["volumes"] if v["name"] == "extra"][0]
    assert vol["persistentVolumeClaim"]["hotpluggable"] is True
    status = [s for s in w.vmis[("p1", "x")]["status"]["volumeStatus"] if s["name"] == "extra"][0]
    assert (status["phase"], status["target"]) == ("Ready", "sda")
    assert not any(c["type"] == "RestartRequired" for c in w.vms[("p1", "x")]["status"]["conditions"])
    _request(w.vms[("p1", "x")], "removevolume", "h2", {"name": "extra"})
    settle(w)
    assert not any(v["name"] == "extra" for v in w.vmis[("p1", "x")]["spec"]["volumes"])
    assert not any(v["name"] == "extra" for v in w.vms[("p1", "x")]["spec"]["template"]["spec"]["volumes"])


def test_live_update_of_node_selector_and_restart_required():
    w = settle(world(nodes=nodes("n1", "n2"), vms=[vm("x", node_name="n1")]))
    tmpl = w.vms[("p1", "x")]["spec"]["template"]["spec"]
    tmpl["nodeSelector"] = {"kubernetes.io/hostname": "n2"}
    settle(w)
    vmi = w.vmis[("p1", "x")]
    assert vmi["spec"]["nodeSelector"] == {"kubernetes.io/hostname": "n2"}
    assert vmi["status"]["nodeName"] == "n1"  # moving needs a migration
    tmpl["domain"]["cpu"] = {"cores": 4}
    settle(w)
    conds = {c["type"]: c for c in w.vms[("p1", "x")]["status"]["conditions"]}
    assert conds["RestartRequired"]["status"] == "True"


def _migration(name, vmi_name, ns="p1"):
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstanceMigration",
            "metadata": {"name": name, "namespace": ns, "uid": f"mig-{name}", "resourceVersion": "1"},
            "spec": {"vmiName": vmi_name}}


def test_migration_moves_the_vmi_to_the_selected_node():
    w = settle(world(nodes=nodes("n1", "n2", "n3"), vms=[vm("x", node_name="n1")]))
    w.vms[("p1", "x")]["spec"]["template"]["spec"]["nodeSelector"] = {"kubernetes.io/hostname": "n3"}
    settle(w)
    w.migrations[("p1", "m")] = _migration("m", "x")
    settle(w)
    mig = w.migrations[("p1", "m")]
    assert mig["status"]["phase"] == "Succeeded"
    vmi = w.vmis[("p1", "x")]
    assert vmi["status"]["nodeName"] == "n3"
    assert vmi["metadata"]["labels"]["kubevirt.io/nodeName"] == "n3"
    ms = vmi["status"]["migrationState"]
    assert (ms["sourceNode"], ms["targetNode"], ms["completed"], ms["failed"]) == ("n1", "n3", True, False)
    assert ms["startTimestamp"] and ms["endTimestamp"] and ms["migrationUid"] == "mig-m"
    assert w.vms[("p1", "x")]["status"]["printableStatus"] == "Running"


def test_migration_with_delay_shows_migrating():
    w = settle(world(nodes=nodes("n1", "n2"), vms=[vm("x")], config=SimConfig(migration_delay=6)))
    source = w.vmis[("p1", "x")]["status"]["nodeName"]
    w.migrations[("p1", "m")] = _migration("m", "x")
    settle(w)
    assert w.migrations[("p1", "m")]["status"]["phase"] == "Pending"
    for _ in range(5):
        w.now += 1
        settle(w)
    assert w.migrations[("p1", "m")]["status"]["phase"] == "Running"
    assert w.vms[("p1", "x")]["status"]["printableStatus"] == "Migrating"
    w.now += 1
    settle(w)
    assert w.migrations[("p1", "m")]["status"]["phase"] == "Succeeded"
    assert w.vmis[("p1", "x")]["status"]["nodeName"] != source


def test_migration_fails_without_a_target():
    w = settle(world(nodes=nodes("n1", "n2"), vms=[vm("x", node_name="n1")]))
    w.migrations[("p1", "m")] = _migration("m", "x")
    settle(w)
    st = w.migrations[("p1", "m")]["status"]
    assert st["phase"] == "Failed"
    assert st["migrationState"]["failureReason"].startswith("no node to migrate to")
    assert w.vmis[("p1", "x")]["status"]["nodeName"] == "n1"


def test_migration_of_a_non_running_vmi_fails():
    w = world(nodes=nodes("n1"))
    w.migrations[("p1", "m")] = _migration("m", "nothing")
    settle(w)
    assert w.migrations[("p1", "m")]["status"]["phase"] == "Failed"


def test_rwo_disks_are_not_live_migratable():
    v = vm("x", volumes=[{"name": "d", "persistentVolumeClaim": {"claimName": "rwo"}}])
    w = settle(world(nodes=nodes("n1", "n2"), vms=[v], pvcs=[pvc("rwo", modes=("ReadWriteOnce",))]))
    cond = [c for c in w.vmis[("p1", "x")]["status"]["conditions"] if c["type"] == "LiveMigratable"][0]
    assert (cond["status"], cond["reason"]) == ("False", "DisksNotLiveMigratable")
    w.migrations[("p1", "m")] = _migration("m", "x")
    settle(w)
    assert w.migrations[("p1", "m")]["status"]["phase"] == "Failed"


def test_injected_migration_failure_keeps_the_source():
    w = settle(world(nodes=nodes("n1", "n2"), vms=[vm("x", annotations={"simulator.kubestack.io/fail": "migration"})]))
    source = w.vmis[("p1", "x")]["status"]["nodeName"]
    w.migrations[("p1", "m")] = _migration("m", "x")
    settle(w)
    assert w.migrations[("p1", "m")]["status"]["phase"] == "Failed"
    assert w.vmis[("p1", "x")]["status"]["nodeName"] == source
    assert w.vmis[("p1", "x")]["status"]["migrationState"]["failed"] is True


def test_a_booting_vmi_is_written_in_one_patch_where_it_has_no_status_subresource():
    # KubeVirt's VMI CRD has no status subresource: the phase and the nodeName label travel in
    # one whole-object write; kinds with the subresource keep their two writes
    w = world(nodes=nodes("n1"), vms=[vm("web", node_name="n1")])
    apply(kubevirt.reconcile_vm(w.vms[("p1", "web")], None, w), w)
    writes = kubevirt.reconcile_vmi(w.vmis[("p1", "web")], w).writes
    assert [x.verb for x in writes] == ["status", "patch"]
    (one,) = coalesce(writes, has_status=lambda kind: False)
    assert one.verb == "patch" and one.kind == "VirtualMachineInstance"
    assert one.body["status"]["phase"] == "Running"
    assert one.body["metadata"]["labels"] == {"kubevirt.io/nodeName": "n1"}
    assert coalesce(writes, has_status=lambda kind: True) == writes


def test_coalesce_keeps_writes_to_other_objects_and_overlapping_bodies_apart():
    a = Write("status", "VirtualMachineInstance", "p1", "a", {"status": {"phase": "Running"}})
    b = Write("patch", "VirtualMachineInstance", "p1", "b", {"metadata": {"labels": {"x": "1"}}})
    both = Write("patch", "VirtualMachineInstance", "p1", "a", {"status": {"phase": "Failed"}})
    no_status = lambda kind: False  # noqa: E731
    assert coalesce([a, b], no_status) == [a, b]
    assert coalesce([a, both], no_status) == [a, both]
    assert coalesce([b, a], no_status) == [b, a]
