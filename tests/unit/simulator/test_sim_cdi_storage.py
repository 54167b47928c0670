"""DataVolume phases, the provisioner (bind, expand, reclaim) and snapshots, on an in-memory World."""

from __future__ import annotations

import pytest
from sim_helpers import apply, pvc, uid, world

from kubestack.simulator import cdi, storage
from kubestack.simulator.common import SimConfig

STANDARD = {sc["metadata"]["name"]: sc for sc in storage.default_storage_classes()}


def dv(name, source, ns="p1", size="1Gi", annotations=None, **spec):
    md = {"name": name, "namespace": ns, "uid": uid(), "resourceVersion": "1"}
    if annotations:
        md["annotations"] = annotations
    body = {"source": source, **spec}
    if size:
        body.setdefault("storage", {"resources": {"requests": {"storage": size}}})
    return {"apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "DataVolume", "metadata": md, "spec": body}


def settle(w, rounds=20):
    for _ in range(rounds):
        wrote = False
        for key in list(w.dvs):
            wrote |= bool(apply(cdi.reconcile_dv(w.dvs[key], w), w))
        for key in list(w.pvcs):
            if key in w.pvcs:
                wrote |= bool(apply(storage.reconcile_pvc(w.pvcs[key], w), w))
        for name in list(w.pvs):
            if name in w.pvs:
                wrote |= bool(apply(storage.reconcile_pv(w.pvs[name], w), w))
        for key in list(w.snapshots):
            wrote |= bool(apply(storage.reconcile_snapshot(w.snapshots[key], w), w))
        for name in list(w.snapshot_contents):
            if name in w.snapshot_contents:
                wrote |= bool(apply(storage.reconcile_snapshot_content(w.snapshot_contents[name], w), w))
        if not wrote:
            return w
    raise AssertionError("did not settle")


def sworld(**kw):
    w = world(**kw)
    w.storage_classes = STANDARD
    w.pvs, w.snapshots, w.snapshot_contents = {}, {}, {}
    w.snapshot_classes = {storage.SNAPSHOT_CLASS: storage.default_snapshot_class()}
    return w


def new_pvc(name, ns="p1", size="1Gi", sc="standard"):
    p = pvc(name, ns=ns, phase="Pending", size=size, sc=sc)
    p["status"] = {"phase": "Pending"}
    return p


def test_default_classes():
    std, ssd = storage.default_storage_classes()
    assert std["metadata"]["annotations"][storage.DEFAULT_CLASS_ANNOTATION] == "true"
    assert std["provisioner"] == ssd["provisioner"] == "kubestack.io/simulated"
    assert std["allowVolumeExpansion"] and ssd["metadata"]["name"] == "fast-ssd"


def test_pending_pvc_gets_a_bound_csi_volume():
    w = settle(sworld(pvcs=[new_pvc("v")]))
    claim = w.pvcs[("p1", "v")]
    pv = w.pvs[claim["spec"]["volumeName"]]
    assert pv["spec"]["csi"]["driver"] == "simulated.kubestack.io"
    assert pv["spec"]["claimRef"]["uid"] == claim["metadata"]["uid"]
    assert pv["status"]["phase"] == "Bound" and claim["status"]["phase"] == "Bound"
    assert claim["status"]["capacity"] == {"storage": "1Gi"}
    assert claim["metadata"]["annotations"]["pv.kubernetes.io/bind-completed"] == "yes"


def test_pvc_of_a_foreign_class_is_left_alone():
    w = settle(sworld(pvcs=[new_pvc("v", sc="nfs")]))
    assert w.pvs == {} and w.pvcs[("p1", "v")]["status"]["phase"] == "Pending"


def test_expansion_follows_the_request():
    w = settle(sworld(pvcs=[new_pvc("v")]))
    claim = w.pvcs[("p1", "v")]
    claim["spec"]["resources"]["requests"]["storage"] = "5Gi"
    settle(w)
    assert claim["status"]["capacity"]["storage"] == "5Gi"
    assert claim["status"]["allocatedResources"]["storage"] == "5Gi"
    assert w.pvs[claim["spec"]["volumeName"]]["spec"]["capacity"]["storage"] == "5Gi"


def test_released_volume_is_deleted():
    w = settle(sworld(pvcs=[new_pvc("v")]))
    del w.pvcs[("p1", "v")]
    settle(w)
    assert w.pvs == {}


def test_http_import_progresses_and_succeeds():
    w = sworld(dvs=[dv("img", {"http": {"url": "https://example.com/cirros.img"}})],
               config=SimConfig(import_delay=10))
    settle(w)
    d = w.dvs[("p1", "img")]
    assert d["status"]["phase"] == "ImportScheduled"
    claim = w.pvcs[("p1", "img")]
    assert claim["metadata"]["ownerReferences"][0]["uid"] == d["metadata"]["uid"]
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"] and claim["status"]["phase"] == "Bound"
    w.now += 5
    settle(w)
    assert d["status"]["phase"] == "ImportInProgress" and d["status"]["progress"] == "50.00%"
    running = [c for c in d["status"]["conditions"] if c["type"] == "Running"][0]
    assert (running["status"], running["reason"]) == ("True", "Pod is running")
    w.now += 5
    settle(w)
    assert d["status"]["phase"] == "Succeeded" and d["status"]["progress"] == "100.0%"
    conds = {c["type"]: (c["status"], c.get("reason", "")) for c in d["status"]["conditions"]}
    assert conds == {"Bound": ("True", "Bound"), "Running": ("False", "Completed"), "Ready": ("True", "")}
    assert claim["metadata"]["annotations"]["cdi.kubevirt.io/storage.pod.phase"] == "Succeeded"


@pytest.mark.parametrize("source", [
    {"http": {"url": "https://images.example.invalid/x.img"}},
    {"http": {"url": "ftp://example.com/x.img"}},
    {"http": {"url": "https:///x.img"}},
    {"registry": {"url": "https://quay.io/containerdisks/fedora"}},
])
def test_unreachable_sources_fail(source):
    w = settle(sworld(dvs=[dv("img", source)]))
    d = w.dvs[("p1", "img")]
    assert d["status"]["phase"] == "Failed" and d["status"]["restartCount"] == 1
    running = [c for c in d["status"]["conditions"] if c["type"] == "Running"][0]
    assert running["reason"] == "Error" and running["message"]


def test_registry_and_injected_failure():
    ok = settle(sworld(dvs=[dv("r", {"registry": {"url": "docker://quay.io/containerdisks/fedora:40"}})]))
    assert ok.dvs[("p1", "r")]["status"]["phase"] == "Succeeded"
    bad = settle(sworld(dvs=[dv("r", {"http": {"url": "https://example.com/a"}},
                                annotations={"simulator.kubestack.io/fail": "import"})]))
    assert bad.dvs[("p1", "r")]["status"]["phase"] == "Failed"


def test_blank_and_upload():
    w = settle(sworld(dvs=[dv("b", {"blank": {}}), dv("u", {"upload": {}})]))
    assert w.dvs[("p1", "b")]["status"]["phase"] == "Succeeded"
    up = w.dvs[("p1", "u")]
    assert up["status"]["phase"] == "UploadReady"
    up["metadata"]["annotations"] = {"simulator.kubestack.io/uploaded": "true"}
    settle(w)
    assert up["status"]["phase"] == "Succeeded"


def test_clone_waits_for_its_source_and_takes_its_size():
    w = settle(sworld(dvs=[dv("c", {"pvc": {"namespace": "golden", "name": "img"}}, size=None, storage={})]))
    d = w.dvs[("p1", "c")]
    assert d["status"]["phase"] == "Pending"  # no size yet: the source is missing
    w.pvcs[("golden", "img")] = pvc("img", ns="golden", size="3Gi")
    settle(w)
    assert d["status"]["phase"] == "Succeeded"
    assert w.pvcs[("p1", "c")]["spec"]["resources"]["requests"]["storage"] == "3Gi"


def test_foreign_pvc_is_not_taken_over():
    w = settle(sworld(pvcs=[new_pvc("x")], dvs=[dv("x", {"blank": {}})]))
    d = w.dvs[("p1", "x")]
    assert d["status"]["phase"] == "Pending"
    bound = [c for c in d["status"]["conditions"] if c["type"] == "Bound"][0]
    assert bound["reason"] == "ErrExists"


def test_snapshot_becomes_ready_restores_and_is_cleaned_up():
    w = settle(sworld(pvcs=[new_pvc("src", size="2Gi")]))
    vs = {"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot",
          "metadata": {"name": "s", "namespace": "p1", "uid": uid(), "resourceVersion": "1"},
          "spec": {"source": {"persistentVolumeClaimName": "src"}}}
    w.snapshots[("p1", "s")] = vs
    settle(w)
    assert vs["status"]["readyToUse"] is True and vs["status"]["restoreSize"] == "2Gi"
    content = w.snapshot_contents[vs["status"]["boundVolumeSnapshotContentName"]]
    assert content["status"]["restoreSize"] == 2 * 1024**3 and content["spec"]["driver"] == "simulated.kubestack.io"
    w.dvs[("p1", "r")] = dv("r", {"snapshot": {"namespace": "p1", "name": "s"}}, size="2Gi")
    settle(w)
    assert w.dvs[("p1", "r")]["status"]["phase"] == "Succeeded"
    del w.snapshots[("p1", "s")]
    settle(w)
    assert w.snapshot_contents == {}


def test_snapshot_of_missing_pvc_is_not_ready():
    w = sworld()
    w.snapshots[("p1", "s")] = {"kind": "VolumeSnapshot", "apiVersion": "snapshot.storage.k8s.io/v1",
                                "metadata": {"name": "s", "namespace": "p1", "uid": uid(), "resourceVersion": "1"},
                                "spec": {"source": {"persistentVolumeClaimName": "nope"}}}
    settle(w)
    st = w.snapshots[("p1", "s")]["status"]
    assert st["readyToUse"] is False and "not found" in st["error"]["message"]


def _snapshot(name, source, ns="p1", **spec):
    return {"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot",
            "metadata": {"name": name, "namespace": ns, "uid": uid(), "resourceVersion": "1"},
            "spec": {"source": source, **spec}}


def _preprovisioned(name, ref_name, ref_ns="p1", ref_uid=None, driver="simulated.kubestack.io"):
    ref = {"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot", "name": ref_name, "namespace": ref_ns}
    if ref_uid:
        ref["uid"] = ref_uid
    return {"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshotContent",
            "metadata": {"name": name, "uid": uid(), "resourceVersion": "1"},
            "spec": {"deletionPolicy": "Retain", "driver": driver, "source": {"snapshotHandle": "h-1"},
                     "volumeSnapshotRef": ref}}


def test_preprovisioned_content_binds_only_the_snapshot_it_names():
    w = sworld()
    w.snapshot_contents["pre"] = _preprovisioned("pre", "mine")
    # the stranger comes first: it must not take the content meanwhile
    stranger = w.snapshots[("p1", "stranger")] = _snapshot("stranger", {"volumeSnapshotContentName": "pre"})
    settle(w)
    assert stranger["status"]["readyToUse"] is False
    assert stranger["status"]["error"]["message"] == "VolumeSnapshotContent [pre] is bound to a different snapshot"
    assert "boundVolumeSnapshotContentName" not in stranger["status"]
    assert "uid" not in w.snapshot_contents["pre"]["spec"]["volumeSnapshotRef"]
    assert "status" not in w.snapshot_contents["pre"]  # nothing written to someone else's content

    mine = w.snapshots[("p1", "mine")] = _snapshot("mine", {"volumeSnapshotContentName": "pre"},
                                                   volumeSnapshotClassName="simulated")
    settle(w)
    content = w.snapshot_contents["pre"]
    assert content["spec"]["volumeSnapshotRef"]["uid"] == mine["metadata"]["uid"]
    assert content["spec"]["volumeSnapshotClassName"] == "simulated"
    assert content["status"]["readyToUse"] is True and content["status"]["snapshotHandle"] == "h-1"
    assert mine["status"]["readyToUse"] is True and mine["status"]["boundVolumeSnapshotContentName"] == "pre"
    assert "error" not in mine["status"] and mine["status"]["creationTime"]
    assert stranger["status"]["readyToUse"] is False and "bound to a different" in stranger["status"]["error"]["message"]

    # once the uid is set, a new snapshot of the same name (the first one deleted) is a stranger too
    del w.snapshots[("p1", "mine")]
    again = w.snapshots[("p1", "mine")] = _snapshot("mine", {"volumeSnapshotContentName": "pre"})
    settle(w)
    assert again["status"]["readyToUse"] is False and "bound to a different" in again["status"]["error"]["message"]
    assert w.snapshot_contents["pre"]["spec"]["volumeSnapshotRef"]["uid"] == mine["metadata"]["uid"]


def test_preprovisioned_two_snapshots_decided_from_one_view_bind_once():
    """Both decisions taken before either write lands (two workers): still one binding."""
    w = sworld()
    w.snapshot_contents["pre"] = _preprovisioned("pre", "a")
    a = w.snapshots[("p1", "a")] = _snapshot("a", {"volumeSnapshotContentName": "pre"})
    b = w.snapshots[("p1", "b")] = _snapshot("b", {"volumeSnapshotContentName": "pre"})
    out_a, out_b = storage.reconcile_snapshot(a, w), storage.reconcile_snapshot(b, w)
    assert not [x for x in out_b.writes if x.kind == "VolumeSnapshotContent"]
    apply(out_a, w)
    apply(out_b, w)
    settle(w)
    assert a["status"]["readyToUse"] is True and b["status"]["readyToUse"] is False
    assert w.snapshot_contents["pre"]["spec"]["volumeSnapshotRef"]["uid"] == a["metadata"]["uid"]


def test_preprovisioned_content_errors():
    w = sworld()
    missing = w.snapshots[("p1", "m")] = _snapshot("m", {"volumeSnapshotContentName": "nope"})
    settle(w)
    assert missing["status"]["readyToUse"] is False
    assert missing["status"]["error"]["message"] == "VolumeSnapshotContent is missing"
    first = dict(missing["status"]["error"])
    w.now += 30
    settle(w)  # the same error is not rewritten with a new time
    assert missing["status"]["error"] == first

    # a dynamically provisioned content is not pre-provisioned, whatever it names
    w.snapshot_contents["dyn"] = dict(_preprovisioned("dyn", "d"), spec={
        **_preprovisioned("dyn", "d")["spec"], "source": {"volumeHandle": "vol-1"}})
    d = w.snapshots[("p1", "d")] = _snapshot("d", {"volumeSnapshotContentName": "dyn"})
    settle(w)
    assert "dynamically provisioned" in d["status"]["error"]["message"]

    # another driver's content: bound, but only its own sidecar can make it ready
    w.snapshot_contents["other"] = _preprovisioned("other", "o", driver="ebs.csi.aws.com")
    o = w.snapshots[("p1", "o")] = _snapshot("o", {"volumeSnapshotContentName": "other"})
    settle(w)
    assert w.snapshot_contents["other"]["spec"]["volumeSnapshotRef"]["uid"] == o["metadata"]["uid"]
    assert "status" not in w.snapshot_contents["other"]
    assert o["status"]["readyToUse"] is False and o["status"]["boundVolumeSnapshotContentName"] == "other"


def test_bound_snapshot_whose_content_vanished_reports_it_and_takes_no_new_one():
    w = settle(sworld(pvcs=[new_pvc("src")]))
    vs = w.snapshots[("p1", "s")] = _snapshot("s", {"persistentVolumeClaimName": "src"})
    settle(w)
    name = vs["status"]["boundVolumeSnapshotContentName"]
    del w.snapshot_contents[name]
    settle(w)
    assert w.snapshot_contents == {}
    assert vs["status"]["readyToUse"] is False and vs["status"]["error"]["message"] == "VolumeSnapshotContent is missing"
