"""DataVolume phases, the provisioner (bind, expand, reclaim) and snapshots, on an in-memory World."""

from __future__ import annotations

import pytest
from sim_helpers import apply, pvc, remove, uid, world

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
            if key in w.snapshots:
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
    remove(w.snapshots, ("p1", "s"))  # the class's deletionPolicy is Delete
    settle(w)
    assert w.snapshots == {} and w.snapshot_contents == {}


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
    remove(w.snapshots, ("p1", "mine"))
    settle(w)
    assert ("p1", "mine") not in w.snapshots and "pre" in w.snapshot_contents  # Retain
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


# -- deletion, as the external-snapshotter orders it ---------------------------------------------

SOURCE, BOUND = storage.SNAPSHOT_SOURCE_FINALIZER, storage.SNAPSHOT_BOUND_FINALIZER
CONTENT = storage.CONTENT_FINALIZER


def _retain_class(name="keep"):
    return {**storage.default_snapshot_class(), "metadata": {"name": name}, "deletionPolicy": "Retain"}


def _ready_snapshot(w, name="s", **spec):
    vs = w.snapshots[("p1", name)] = _snapshot(name, {"persistentVolumeClaimName": "src"}, **spec)
    settle(w)
    assert vs["status"]["readyToUse"] is True
    return vs, w.snapshot_contents[vs["status"]["boundVolumeSnapshotContentName"]]


def _step(w, kind, key):
    """Reconcile one object once and apply its writes; returns the writes as (verb, kind, name)."""
    objs = w.snapshots if kind == "VolumeSnapshot" else w.snapshot_contents
    decide = storage.reconcile_snapshot if kind == "VolumeSnapshot" else storage.reconcile_snapshot_content
    return [(x.verb, x.kind, x.name) for x in apply(decide(objs[key], w), w)]


def test_snapshot_and_content_finalizers():
    w = settle(sworld(pvcs=[new_pvc("src")]))
    w.snapshot_classes["keep"] = _retain_class()
    deleted, content = _ready_snapshot(w, "d")  # the default class: Delete
    assert deleted["metadata"]["finalizers"] == [SOURCE, BOUND]
    assert content["metadata"]["finalizers"] == [CONTENT]  # created with it: no extra write
    kept, content = _ready_snapshot(w, "k", volumeSnapshotClassName="keep")
    assert kept["metadata"]["finalizers"] == [SOURCE]  # a Retain content: nothing to wait for
    assert content["spec"]["deletionPolicy"] == "Retain" and content["metadata"]["finalizers"] == [CONTENT]
    # an error still protects the snapshot as a source
    broken = w.snapshots[("p1", "b")] = _snapshot("b", {"persistentVolumeClaimName": "nope"})
    settle(w)
    assert broken["metadata"]["finalizers"] == [SOURCE]
    # someone else's snapshotter, and a snapshot naming a content bound to another: left alone
    w.snapshot_classes["ebs"] = {**storage.default_snapshot_class(), "metadata": {"name": "ebs"},
                                 "driver": "ebs.csi.aws.com"}
    foreign = w.snapshots[("p1", "f")] = _snapshot("f", {"persistentVolumeClaimName": "src"},
                                                   volumeSnapshotClassName="ebs")
    w.snapshot_contents["pre"] = _preprovisioned("pre", "mine")
    stranger = w.snapshots[("p1", "x")] = _snapshot("x", {"volumeSnapshotContentName": "pre"})
    settle(w)
    assert "finalizers" not in foreign["metadata"] and "finalizers" not in stranger["metadata"]
    # the finalizers come first, and others' are kept; the list is guarded by its resourceVersion
    vs = _snapshot("n", {"persistentVolumeClaimName": "src"})
    vs["metadata"].update(finalizers=["example.com/keep"], resourceVersion="7")
    writes = storage.reconcile_snapshot(vs, w).writes
    assert (writes[0].verb, writes[0].kind) == ("patch", "VolumeSnapshot")
    assert writes[0].body == {"metadata": {"finalizers": ["example.com/keep", SOURCE, BOUND], "resourceVersion": "7"}}
    assert [x.kind for x in writes[1:]] == ["VolumeSnapshotContent", "VolumeSnapshotContent", "VolumeSnapshot"]


def test_deleting_a_snapshot_deletes_a_delete_content_and_the_storage_side_snapshot_first():
    w = settle(sworld(pvcs=[new_pvc("src")]))
    vs, content = _ready_snapshot(w)
    cname = content["metadata"]["name"]
    remove(w.snapshots, ("p1", "s"))
    assert vs["metadata"]["deletionTimestamp"]
    # the content is marked and deleted; the snapshot keeps its bound finalizer until it is gone
    assert _step(w, "VolumeSnapshot", ("p1", "s")) == [
        ("patch", "VolumeSnapshotContent", cname), ("delete", "VolumeSnapshotContent", cname),
        ("patch", "VolumeSnapshot", "s")]
    assert vs["metadata"]["finalizers"] == [BOUND]
    assert content["metadata"]["annotations"][storage.ANN_BEING_DELETED] == "yes"
    assert content["metadata"]["deletionTimestamp"]  # held by its finalizer
    assert _step(w, "VolumeSnapshot", ("p1", "s")) == []  # waits for the content
    # the sidecar: DeleteSnapshot (the status's snapshot fields cleared), then the finalizer
    assert _step(w, "VolumeSnapshotContent", cname) == [("status", "VolumeSnapshotContent", cname)]
    assert not {"snapshotHandle", "readyToUse", "creationTime", "restoreSize"} & set(content.get("status") or {})
    assert _step(w, "VolumeSnapshotContent", cname) == [("patch", "VolumeSnapshotContent", cname)]
    assert cname not in w.snapshot_contents
    assert _step(w, "VolumeSnapshot", ("p1", "s")) == [("patch", "VolumeSnapshot", "s")]
    assert w.snapshots == {}


def test_deleting_a_snapshot_leaves_a_retain_content_as_it_was():
    w = settle(sworld(pvcs=[new_pvc("src")]))
    w.snapshot_classes["keep"] = _retain_class()
    vs, content = _ready_snapshot(w, volumeSnapshotClassName="keep")
    cname, before = content["metadata"]["name"], {k: content[k] for k in ("spec", "status")}
    remove(w.snapshots, ("p1", "s"))
    settle(w)
    assert w.snapshots == {}
    kept = w.snapshot_contents[cname]
    assert not kept["metadata"].get("deletionTimestamp")
    # still naming the deleted snapshot (uid included), status and finalizer kept: only marked
    assert {k: kept[k] for k in ("spec", "status")} == before
    assert kept["spec"]["volumeSnapshotRef"]["uid"] == vs["metadata"]["uid"]
    assert kept["metadata"]["finalizers"] == [CONTENT]
    assert kept["metadata"]["annotations"][storage.ANN_BEING_DELETED] == "yes"
    # deleted later by hand: the sidecar lets go of it without deleting the storage-side snapshot
    remove(w.snapshot_contents, cname)
    assert _step(w, "VolumeSnapshotContent", cname) == [("patch", "VolumeSnapshotContent", cname)]
    assert w.snapshot_contents == {}


def test_a_preprovisioned_content_follows_its_deletion_policy_too():
    w = sworld()
    w.snapshot_contents["pre"] = dict(_preprovisioned("pre", "mine"))
    w.snapshot_contents["pre"]["spec"]["deletionPolicy"] = "Delete"
    mine = w.snapshots[("p1", "mine")] = _snapshot("mine", {"volumeSnapshotContentName": "pre"})
    settle(w)
    assert mine["status"]["readyToUse"] is True and mine["metadata"]["finalizers"] == [SOURCE, BOUND]
    assert w.snapshot_contents["pre"]["metadata"]["finalizers"] == [CONTENT]
    remove(w.snapshots, ("p1", "mine"))
    settle(w)
    assert w.snapshots == {} and w.snapshot_contents == {}

    # another driver's content gets no finalizer from here (its own sidecar would take it off)
    w.snapshot_contents["ebs"] = dict(_preprovisioned("ebs", "o", driver="ebs.csi.aws.com"))
    w.snapshot_contents["ebs"]["spec"]["deletionPolicy"] = "Delete"
    o = w.snapshots[("p1", "o")] = _snapshot("o", {"volumeSnapshotContentName": "ebs"})
    settle(w)
    assert o["metadata"]["finalizers"] == [SOURCE, BOUND] and "finalizers" not in w.snapshot_contents["ebs"]["metadata"]
    remove(w.snapshots, ("p1", "o"))
    settle(w)
    assert w.snapshots == {} and w.snapshot_contents == {}


def test_a_snapshot_being_restored_from_is_deleted_once_the_restore_is_done():
    w = settle(sworld(pvcs=[new_pvc("src")]))
    vs, content = _ready_snapshot(w)
    restore = new_pvc("restore", sc="foreign")  # Pending: nobody here provisions it
    restore["spec"]["dataSource"] = {"apiGroup": "snapshot.storage.k8s.io", "kind": "VolumeSnapshot", "name": "s"}
    w.pvcs[("p1", "restore")] = restore
    remove(w.snapshots, ("p1", "s"))
    out = storage.reconcile_snapshot(vs, w)
    assert out.writes == [] and out.requeue_after == storage.RESTORE_RECHECK
    restore["status"] = {"phase": "Bound"}
    settle(w)
    assert w.snapshots == {} and w.snapshot_contents == {}


def test_a_content_is_never_deleted_for_a_missing_snapshot_nor_before_its_snapshot():
    w = settle(sworld(pvcs=[new_pvc("src")]))
    vs, content = _ready_snapshot(w)
    cname = content["metadata"]["name"]
    # the content deleted by hand while its snapshot exists: it waits for the snapshot
    remove(w.snapshot_contents, cname)
    settle(w)
    assert content["metadata"]["deletionTimestamp"] and content["status"]["readyToUse"] is True
    assert vs["status"]["readyToUse"] is True
    remove(w.snapshots, ("p1", "s"))
    settle(w)
    assert w.snapshots == {} and w.snapshot_contents == {}

    # the snapshot gone without its finalizers running (forced): the content stays, Delete or not
    vs, content = _ready_snapshot(w, "t")
    del w.snapshots[("p1", "t")]
    settle(w)
    assert w.snapshot_contents == {content["metadata"]["name"]: content}
    assert not content["metadata"].get("deletionTimestamp")


def test_a_content_made_before_the_finalizers_gets_its_own():
    w = settle(sworld(pvcs=[new_pvc("src")]))
    vs, content = _ready_snapshot(w)
    content["metadata"].pop("finalizers")
    content["metadata"]["resourceVersion"] = "3"
    [write] = storage.reconcile_snapshot_content(content, w).writes
    assert write.body == {"metadata": {"finalizers": [CONTENT], "resourceVersion": "3"}}
    # a pre-provisioned content not bound yet gets none
    assert storage.reconcile_snapshot_content(_preprovisioned("p", "x"), w).writes == []
