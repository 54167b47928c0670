"""A CSI provisioner, resizer and snapshotter for StorageClasses whose provisioner is
`kubestack.io/simulated`, as pure functions.

Provisioning: a Pending PVC without a volume, in such a class (binding mode Immediate, or
WaitForFirstConsumer once the scheduler's `volume.kubernetes.io/selected-node` annotation is
there) gets a PV `pvc-<pvc uid>` with `spec.csi.driver: simulated.kubestack.io` and a claimRef to
the PVC, and both sides are bound (PVC spec.volumeName + bind annotations + status Bound with
capacity; PV status Bound) exactly as kube-controller-manager's PV binder would leave them, so the
binder, when it runs, finds nothing to change.

Expansion: a Bound PVC whose requests.storage grew beyond status.capacity (the class allows
expansion; the API server's admission already checked that) gets PV spec.capacity and PVC
status.capacity/allocatedResources raised, the Resizing/FileSystemResizePending conditions cleared.

Reclaim: a PV we provisioned, reclaim policy Delete, whose claim is gone is deleted.

Snapshots: a VolumeSnapshot of a Bound PVC gets a VolumeSnapshotContent `snapcontent-<uid>` and
both become readyToUse with restoreSize = the PVC's capacity; a snapshot whose content must be
created by us and whose PVC is missing stays readyToUse=false with an error. A VolumeSnapshot
naming a pre-provisioned content (spec.source.volumeSnapshotContentName) binds to it only if the
content's spec.volumeSnapshotRef names it back (namespace, name, and uid once set: binding sets
it), as the external-snapshotter's controller does; any other snapshot naming that content stays
readyToUse=false with an error, so one content never backs two snapshots.
"""

from __future__ import annotations

from typing import Mapping

from kubernetes.utils import parse_quantity

from kubestack.simulator.common import (
    CSI_DRIVER, PROVISIONER, Outcome, World, Write, annotations, deep, deleting, fmt_time, get,
    status_write, put_conditions,
)

DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"
DEFAULT_SNAPSHOT_CLASS_ANNOTATION = "snapshot.storage.kubernetes.io/is-default-class"
PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"
SELECTED_NODE = "volume.kubernetes.io/selected-node"
SNAPSHOT_CLASS = "simulated"


def default_storage_classes() -> list[dict]:
    """The classes `kubestack simulate` creates when absent: `standard` (default) and `fast-ssd`."""
    def sc(name: str, default: bool, tier: str) -> dict:
        md: dict = {"name": name, "labels": {"kubestack.io/simulated": "true"}}
        if default:
            md["annotations"] = {DEFAULT_CLASS_ANNOTATION: "true"}
        return {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": md,
            "provisioner": PROVISIONER,
            "parameters": {"tier": tier},
            "reclaimPolicy": "Delete",
            "volumeBindingMode": "Immediate",
            "allowVolumeExpansion": True,
        }
    return [sc("standard", True, "standard"), sc("fast-ssd", False, "ssd")]


def default_snapshot_class() -> dict:
    return {
        "apiVersion": "snapshot.storage.k8s.io/v1",
        "kind": "VolumeSnapshotClass",
        "metadata": {"name": SNAPSHOT_CLASS, "annotations": {DEFAULT_SNAPSHOT_CLASS_ANNOTATION: "true"},
                     "labels": {"kubestack.io/simulated": "true"}},
        "driver": CSI_DRIVER,
        "deletionPolicy": "Delete",
    }


def _ours(sc: Mapping | None) -> bool:
    return bool(sc) and sc.get("provisioner") == PROVISIONER


def storage_class_of(pvc: Mapping, world: World) -> Mapping | None:
    name = get(pvc, "spec", "storageClassName")
    if name is None:
        # the DefaultStorageClass admission plugin fills this in at creation; left empty means none
        return None
    return world.storage_classes.get(name)


def pv_name(pvc: Mapping) -> str:
    return f"pvc-{pvc['metadata']['uid']}"


def pv_for(pvc: Mapping, sc: Mapping) -> dict:
    md = pvc["metadata"]
    spec = pvc.get("spec") or {}
    mode = spec.get("volumeMode", "Filesystem")
    csi = {"driver": CSI_DRIVER, "volumeHandle": f"vol-{md['uid']}",
           "volumeAttributes": {"storage.kubernetes.io/csiProvisionerIdentity": "simulated",
                                **dict(sc.get("parameters") or {})}}
    if mode == "Filesystem":
        csi["fsType"] = "ext4"
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": pv_name(pvc), "annotations": {PROVISIONED_BY: PROVISIONER,
                                                           "volume.kubernetes.io/provisioner-deletion-secret-name": "",
                                                           "volume.kubernetes.io/provisioner-deletion-secret-namespace": ""}},
        "spec": {
            "capacity": {"storage": get(spec, "resources", "requests", "storage", default="1Gi")},
            "accessModes": list(spec.get("accessModes") or ["ReadWriteOnce"]),
            "volumeMode": mode,
            "persistentVolumeReclaimPolicy": sc.get("reclaimPolicy", "Delete"),
            "storageClassName": sc["metadata"]["name"],
            "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "namespace": md["namespace"],
                         "name": md["name"], "uid": md["uid"]},
            "csi": csi,
        },
    }


def _bigger(a: str | None, b: str | None) -> bool:
    if not a:
        return False
    if not b:
        return True
    return parse_quantity(a) > parse_quantity(b)


def reconcile_pvc(pvc: Mapping, world: World) -> Outcome:
    out = Outcome()
    md = pvc["metadata"]
    ns, name = md["namespace"], md["name"]
    if deleting(pvc):
        return out
    sc = storage_class_of(pvc, world)
    if not _ours(sc):
        return out
    spec = pvc.get("spec") or {}
    volume_name = spec.get("volumeName")
    if volume_name and volume_name != pv_name(pvc):
        pv = world.pvs.get(volume_name)
        if get(pv, "metadata", "annotations", PROVISIONED_BY) != PROVISIONER:
            return out  # pre-bound to a volume someone else made: the binder's business
    pv = world.pvs.get(pv_name(pvc))
    if pv is None:
        if get(pvc, "status", "phase") == "Bound":
            return out  # bound to a volume we did not make
        if sc.get("volumeBindingMode") == "WaitForFirstConsumer" and not annotations(pvc).get(SELECTED_NODE):
            return out
        pv = pv_for(pvc, sc)
        out.writes.append(Write("create", "PersistentVolume", "", pv["metadata"]["name"], pv))

    # bind the claim side
    if not volume_name or annotations(pvc).get("pv.kubernetes.io/bind-completed") != "yes":
        body: dict = {"metadata": {"annotations": {"pv.kubernetes.io/bind-completed": "yes",
                                                   "pv.kubernetes.io/bound-by-controller": "yes",
                                                   "volume.kubernetes.io/storage-provisioner": PROVISIONER,
                                                   "volume.beta.kubernetes.io/storage-provisioner": PROVISIONER}}}
        if not volume_name:
            body["spec"] = {"volumeName": pv["metadata"]["name"]}
        out.writes.append(Write("patch", "PersistentVolumeClaim", ns, name, body))

    requested = get(spec, "resources", "requests", "storage")
    pv_capacity = get(pv, "spec", "capacity", "storage")
    status = deep(pvc.get("status") or {})
    capacity = get(status, "capacity", "storage")
    # expansion: the volume grows first, then the claim reports it
    if get(pvc, "status", "phase") == "Bound" and _bigger(requested, capacity) and sc.get("allowVolumeExpansion"):
        if _bigger(requested, pv_capacity):
            out.writes.append(Write("patch", "PersistentVolume", "", pv["metadata"]["name"],
                                    {"spec": {"capacity": {"storage": requested}}}))
            pv_capacity = requested
    status["phase"] = "Bound"
    status["accessModes"] = list(get(pv, "spec", "accessModes", default=spec.get("accessModes") or []))
    new_capacity = pv_capacity if not capacity or _bigger(pv_capacity, capacity) else capacity
    status["capacity"] = {**(status.get("capacity") or {}), "storage": new_capacity}
    if capacity and new_capacity != capacity:
        status["allocatedResources"] = {**(status.get("allocatedResources") or {}), "storage": new_capacity}
        status.pop("allocatedResourceStatuses", None)
        status["conditions"] = put_conditions(status.get("conditions"), [],
                                              remove=("Resizing", "FileSystemResizePending",
                                                      "ControllerResizeError", "NodeResizeError"))
        if not status["conditions"]:
            status.pop("conditions")
    w = status_write(pvc, status)
    if w:
        out.writes.append(w)
    if get(pv, "status", "phase") != "Bound" and pv is not None:
        out.writes.append(Write("status", "PersistentVolume", "", pv["metadata"]["name"],
                                {"status": {"phase": "Bound"}}))
    return out


def reconcile_pv(pv: Mapping, world: World) -> Outcome:
    """Delete a Released PV we provisioned (reclaim policy Delete) whose claim is gone."""
    out = Outcome()
    if deleting(pv) or get(pv, "metadata", "annotations", PROVISIONED_BY) != PROVISIONER:
        return out
    if get(pv, "spec", "persistentVolumeReclaimPolicy") != "Delete":
        return out
    ref = get(pv, "spec", "claimRef")
    if not ref:
        return out
    pvc = world.pvcs.get((ref.get("namespace"), ref.get("name")))
    if pvc is not None and get(pvc, "metadata", "uid") == ref.get("uid"):
        return out
    out.writes.append(Write("delete", "PersistentVolume", "", pv["metadata"]["name"],
                            uid=pv["metadata"]["uid"]))
    return out


def content_name(snapshot: Mapping) -> str:
    return f"snapcontent-{snapshot['metadata']['uid']}"


def _quantity_bytes(q: str | None) -> int:
    return int(parse_quantity(q)) if q else 0


def _set_error(status: dict, message: str, now: float) -> None:
    """Not ready, with `message`; the error's time is kept while the message stays the same (the
    snapshot controller does not rewrite an error it already reported)."""
    status["readyToUse"] = False
    if get(status, "error", "message") != message:
        status["error"] = {"message": message, "time": fmt_time(now, False)}


def _misfit(vs: Mapping, content: Mapping, pre_provisioned: bool) -> str | None:
    """Why `content` cannot be bound to `vs`, as the snapshot controller checks it, or None.

    A pre-provisioned content (spec.source.snapshotHandle) binds only to the VolumeSnapshot its
    spec.volumeSnapshotRef names (namespace and name, and uid once set: binding sets it); a
    dynamically provisioned one (spec.source.volumeHandle) names its snapshot's uid from the
    start. Any other VolumeSnapshot naming the content is left unbound with an error."""
    md = vs["metadata"]
    name = content["metadata"]["name"]
    source = get(content, "spec", "source", default={})
    if pre_provisioned and not source.get("snapshotHandle"):
        return "VolumeSnapshotContent is dynamically provisioned while expecting a pre-provisioned one"
    if not pre_provisioned and not source.get("volumeHandle"):
        return f"VolumeSnapshotContent {name} is pre-provisioned while expecting a dynamically provisioned one"
    ref = get(content, "spec", "volumeSnapshotRef", default={})
    uid = ref.get("uid") or ""
    if ref.get("name") != md["name"] or ref.get("namespace") != md["namespace"] \
            or (uid or not pre_provisioned) and uid != md["uid"]:
        return f"VolumeSnapshotContent [{name}] is bound to a different snapshot"
    return None


def _content_ready(name: str, handle: str, now: float, restore_bytes: int | None = None) -> Write:
    """The CSI snapshotter sidecar's report that the snapshot exists on the storage side."""
    status: dict = {"readyToUse": True, "snapshotHandle": handle, "creationTime": int(now * 1e9)}
    if restore_bytes is not None:
        status["restoreSize"] = restore_bytes
    return Write("status", "VolumeSnapshotContent", "", name, {"status": status})


def reconcile_snapshot(vs: Mapping, world: World) -> Outcome:
    out = Outcome()
    if deleting(vs):
        return out
    status = deep(vs.get("status") or {})
    if get(vs, "spec", "source", "volumeSnapshotContentName"):
        _sync_preprovisioned(vs, status, world, out)
    else:
        _sync_dynamic(vs, status, world, out)
    w = status_write(vs, status)
    if w:
        out.writes.append(w)
    return out


def _sync_preprovisioned(vs: Mapping, status: dict, world: World, out: Outcome) -> None:
    """Bind to the named content if it names this snapshot back (setting its uid), then follow
    its status; our driver's contents are made ready here (the sidecar's part)."""
    md = vs["metadata"]
    name = vs["spec"]["source"]["volumeSnapshotContentName"]
    content = world.snapshot_contents.get(name)
    problem = "VolumeSnapshotContent is missing" if content is None else _misfit(vs, content, True)
    if problem:
        _set_error(status, problem, world.now)
        return
    if not get(content, "spec", "volumeSnapshotRef", "uid"):
        spec: dict = {"volumeSnapshotRef": {"uid": md["uid"]}}
        class_name = get(vs, "spec", "volumeSnapshotClassName")
        if class_name and not get(content, "spec", "volumeSnapshotClassName"):
            spec["volumeSnapshotClassName"] = class_name
        out.writes.append(Write("patch", "VolumeSnapshotContent", "", name, {"spec": spec}))
    ready = bool(get(content, "status", "readyToUse"))
    created = get(content, "status", "creationTime")
    if not ready and get(content, "spec", "driver") == CSI_DRIVER:
        out.writes.append(_content_ready(name, content["spec"]["source"]["snapshotHandle"], world.now))
        ready, created = True, int(world.now * 1e9)
    status["boundVolumeSnapshotContentName"] = name
    status["readyToUse"] = ready
    size = get(content, "status", "restoreSize")
    if size is not None:
        status["restoreSize"] = str(size)
    if created is not None:
        status.setdefault("creationTime", fmt_time(created / 1e9, False))
    status.pop("error", None)


def _sync_dynamic(vs: Mapping, status: dict, world: World, out: Outcome) -> None:
    """Take a snapshot of the PVC: a content `snapcontent-<uid>` of our driver, ready at once."""
    md = vs["metadata"]
    ns, name = md["namespace"], md["name"]
    class_name = get(vs, "spec", "volumeSnapshotClassName")
    if class_name is None:
        defaults = [c for c in world.snapshot_classes.values()
                    if annotations(c).get(DEFAULT_SNAPSHOT_CLASS_ANNOTATION) == "true" and c.get("driver") == CSI_DRIVER]
        class_name = defaults[0]["metadata"]["name"] if defaults else None
    vclass = world.snapshot_classes.get(class_name) if class_name else None
    claim = get(vs, "spec", "source", "persistentVolumeClaimName")
    pvc = world.pvcs.get((ns, claim)) if claim else None
    if vclass is not None and vclass.get("driver") != CSI_DRIVER:
        return  # someone else's snapshotter
    cname = content_name(vs)
    content = world.snapshot_contents.get(cname)
    if content is not None:
        problem = _misfit(vs, content, False)
        if problem:
            _set_error(status, problem, world.now)
            return
    elif status.get("boundVolumeSnapshotContentName") == cname:
        # bound, and the content was deleted under it: reported, never taken again
        _set_error(status, "VolumeSnapshotContent is missing", world.now)
        return
    if content is None:
        if pvc is None or get(pvc, "status", "phase") != "Bound":
            why = "not found" if pvc is None else "not bound"
            _set_error(status, f"failed to take snapshot: PVC {ns}/{claim} {why}", world.now)
            return
        pv = world.pvs.get(get(pvc, "spec", "volumeName", default=""))
        handle = get(pv, "spec", "csi", "volumeHandle", default=f"vol-{pvc['metadata']['uid']}")
        spec = {
            "deletionPolicy": (vclass or {}).get("deletionPolicy", "Delete"),
            "driver": CSI_DRIVER,
            "source": {"volumeHandle": handle},
            "volumeSnapshotRef": {"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot",
                                  "namespace": ns, "name": name, "uid": md["uid"]},
            "sourceVolumeMode": get(pvc, "spec", "volumeMode", default="Filesystem"),
        }
        if class_name:
            spec["volumeSnapshotClassName"] = class_name
        content = {"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshotContent",
                   "metadata": {"name": cname, "annotations": {"kubestack.io/simulated": "true"}},
                   "spec": spec}
        out.writes.append(Write("create", "VolumeSnapshotContent", "", cname, content))
        size = get(pvc, "status", "capacity", "storage", default="0")
        out.writes.append(_content_ready(cname, f"snap-{md['uid']}", world.now, _quantity_bytes(size)))
        created_at, restore = world.now, size
    else:
        created_at = (get(content, "status", "creationTime", default=int(world.now * 1e9))) / 1e9
        restore_bytes = get(content, "status", "restoreSize")
        restore = status.get("restoreSize") or (str(restore_bytes) if restore_bytes is not None else None)
        if not get(content, "status", "readyToUse"):
            pvc_size = get(pvc, "status", "capacity", "storage", default="0")
            out.writes.append(_content_ready(cname, f"snap-{md['uid']}", world.now, _quantity_bytes(pvc_size)))
            restore = pvc_size
    status["boundVolumeSnapshotContentName"] = cname
    status["readyToUse"] = True
    status.setdefault("creationTime", fmt_time(created_at, False))
    if restore:
        status["restoreSize"] = restore
    status.pop("error", None)


def reconcile_snapshot_content(content: Mapping, world: World) -> Outcome:
    """Delete a content we made (deletionPolicy Delete) once its VolumeSnapshot is gone."""
    out = Outcome()
    if deleting(content) or annotations(content).get("kubestack.io/simulated") != "true":
        return out
    if get(content, "spec", "deletionPolicy") != "Delete":
        return out
    ref = get(content, "spec", "volumeSnapshotRef", default={})
    vs = world.snapshots.get((ref.get("namespace"), ref.get("name")))
    if vs is not None and get(vs, "metadata", "uid") == ref.get("uid"):
        return out
    out.writes.append(Write("delete", "VolumeSnapshotContent", "", content["metadata"]["name"],
                            uid=content["metadata"]["uid"]))
    return out
