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

Snapshot deletion, as the external-snapshotter orders it (its common controller for every
snapshot handled here, its csi-snapshotter sidecar for our driver's contents only):

* a VolumeSnapshot not being deleted gets `volumesnapshot-as-source-protection`, and
  `volumesnapshot-bound-protection` too once bound to a content whose deletionPolicy is Delete
  (none on a snapshot naming a content bound to another); a bound content of our driver gets
  `volumesnapshotcontent-bound-protection` (a dynamic one is created with it);
* a deleted VolumeSnapshot (deletionTimestamp, one of those finalizers) with a content that names
  it back (namespace, name, uid) waits while a Pending PVC is being restored from it, then marks
  the content `volumesnapshot-being-deleted` and: deletionPolicy Delete -> deletes the content
  and keeps its bound finalizer until the content is gone; Retain -> the content is left as it
  is (still naming the deleted snapshot, status and finalizer kept) and the snapshot goes;
* a deleted content of our driver that is marked being-deleted (or a pre-provisioned one never
  bound) has its snapshot deleted on the storage side (deletionPolicy Delete: the status's
  snapshotHandle, readyToUse, creationTime and restoreSize are cleared), then loses its finalizer.

A content whose snapshot is simply missing is never deleted (the snapshot controller's guard
against data loss), and nothing is done with a bound content deleted by hand while its
snapshot exists: it stays Terminating until that snapshot is deleted.
"""

from __future__ import annotations

from typing import Mapping

from kubernetes.utils import parse_quantity

from kubestack.simulator.common import (
    CSI_DRIVER, PROVISIONER, Outcome, World, Write, annotations, deep, deleting, fmt_time, get, metadata_write,
    status_write, put_conditions,
)

DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"
DEFAULT_SNAPSHOT_CLASS_ANNOTATION = "snapshot.storage.kubernetes.io/is-default-class"
PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"
SELECTED_NODE = "volume.kubernetes.io/selected-node"
SNAPSHOT_CLASS = "simulated"
SNAPSHOT_GROUP = "snapshot.storage.k8s.io"
# the external-snapshotter's finalizers and the annotation its common controller leaves for the sidecar
SNAPSHOT_SOURCE_FINALIZER = "snapshot.storage.kubernetes.io/volumesnapshot-as-source-protection"
SNAPSHOT_BOUND_FINALIZER = "snapshot.storage.kubernetes.io/volumesnapshot-bound-protection"
CONTENT_FINALIZER = "snapshot.storage.kubernetes.io/volumesnapshotcontent-bound-protection"
ANN_BEING_DELETED = "snapshot.storage.kubernetes.io/volumesnapshot-being-deleted"
ANN_BEING_CREATED = "snapshot.storage.kubernetes.io/volumesnapshot-being-created"
RESTORE_RECHECK = 2.0  # seconds between looks at a deleted snapshot a PVC is being restored from


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


def _finalizers_write(obj: Mapping, add: tuple[str, ...] = (), remove: tuple[str, ...] = ()) -> Write | None:
    """A patch adding `add` (after any others) and dropping `remove` from obj's finalizers, or
    None when nothing changes. The list is replaced whole by a merge patch: the resourceVersion in
    the body makes a concurrent edit of it fail (409, looked at again) instead of being lost."""
    current = list(get(obj, "metadata", "finalizers", default=[]))
    wanted = [f for f in current if f not in remove] + [f for f in dict.fromkeys(add) if f not in current]
    if wanted == current:
        return None
    md = obj["metadata"]
    return Write("patch", obj["kind"], md.get("namespace", ""), md["name"],
                 {"metadata": {"finalizers": wanted or None, "resourceVersion": md.get("resourceVersion")}})


def _snapshot_finalizers(content: Mapping | None, bound: bool) -> tuple[str, ...]:
    """The finalizers the snapshot controller puts on a VolumeSnapshot that is not being deleted:
    the as-source one always, the bound one once it is bound to a content of deletionPolicy Delete."""
    if bound and content is not None and get(content, "spec", "deletionPolicy") == "Delete":
        return SNAPSHOT_SOURCE_FINALIZER, SNAPSHOT_BOUND_FINALIZER
    return (SNAPSHOT_SOURCE_FINALIZER,)


def reconcile_snapshot(vs: Mapping, world: World) -> Outcome:
    out = Outcome()
    if deleting(vs):
        _delete_snapshot(vs, world, out)
        return out
    status = deep(vs.get("status") or {})
    if get(vs, "spec", "source", "volumeSnapshotContentName"):
        finalizers = _sync_preprovisioned(vs, status, world, out)
    else:
        finalizers = _sync_dynamic(vs, status, world, out)
    if finalizers:
        # added before anything else is done for it, as the snapshot controller does: a deletion
        # arriving meanwhile then goes through `_delete_snapshot`
        w = _finalizers_write(vs, add=finalizers)
        if w:
            out.writes.insert(0, w)
    w = status_write(vs, status)
    if w:
        out.writes.append(w)
    return out


def _sync_preprovisioned(vs: Mapping, status: dict, world: World, out: Outcome) -> tuple[str, ...]:
    """Bind to the named content if it names this snapshot back (setting its uid), then follow
    its status; our driver's contents are made ready here (the sidecar's part). Returns the
    snapshot's finalizers (none while the content is bound to another snapshot)."""
    md = vs["metadata"]
    name = vs["spec"]["source"]["volumeSnapshotContentName"]
    content = world.snapshot_contents.get(name)
    if content is None:
        _set_error(status, "VolumeSnapshotContent is missing", world.now)
        return _snapshot_finalizers(None, False)
    problem = _misfit(vs, content, True)
    if problem:
        _set_error(status, problem, world.now)
        return ()
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
    return _snapshot_finalizers(content, True)


def _sync_dynamic(vs: Mapping, status: dict, world: World, out: Outcome) -> tuple[str, ...]:
    """Take a snapshot of the PVC: a content `snapcontent-<uid>` of our driver, ready at once.
    Returns the snapshot's finalizers (none for someone else's snapshotter's snapshot, or while
    the content of its name is bound to another snapshot)."""
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
        return ()  # someone else's snapshotter
    cname = content_name(vs)
    content = world.snapshot_contents.get(cname)
    if content is not None:
        problem = _misfit(vs, content, False)
        if problem:
            _set_error(status, problem, world.now)
            return ()
    elif status.get("boundVolumeSnapshotContentName") == cname:
        # bound, and the content was deleted under it: reported, never taken again
        _set_error(status, "VolumeSnapshotContent is missing", world.now)
        return _snapshot_finalizers(None, False)
    if content is None:
        if pvc is None or get(pvc, "status", "phase") != "Bound":
            why = "not found" if pvc is None else "not bound"
            _set_error(status, f"failed to take snapshot: PVC {ns}/{claim} {why}", world.now)
            return _snapshot_finalizers(None, False)
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
        # created bound, so with the finalizer the snapshot controller adds to bound contents
        content = {"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshotContent",
                   "metadata": {"name": cname, "annotations": {"kubestack.io/simulated": "true"},
                                "finalizers": [CONTENT_FINALIZER]},
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
    return _snapshot_finalizers(content, True)


def _points_back(content: Mapping, vs: Mapping) -> bool:
    """The content's volumeSnapshotRef names `vs` (namespace, name and uid): bound both ways."""
    ref = get(content, "spec", "volumeSnapshotRef", default={})
    md = vs["metadata"]
    return (ref.get("namespace"), ref.get("name"), ref.get("uid")) == (md["namespace"], md["name"], md["uid"])


def restoring_from(vs: Mapping, world: World) -> bool:
    """A Pending PVC of the snapshot's namespace names it as its dataSource: a volume is being
    restored from it, and its deletion waits."""
    md = vs["metadata"]
    for (ns, _), pvc in world.pvcs.items():
        if ns != md["namespace"]:
            continue
        source = get(pvc, "spec", "dataSource", default={})
        names_it = (source.get("kind"), source.get("apiGroup"), source.get("name")) == \
            ("VolumeSnapshot", SNAPSHOT_GROUP, md["name"])
        if names_it and get(pvc, "status", "phase") == "Pending":
            return True
    return False


def _delete_snapshot(vs: Mapping, world: World, out: Outcome) -> None:
    """The snapshot controller's deletion of a VolumeSnapshot: the content bound to it both ways
    is marked being-deleted and, with deletionPolicy Delete, deleted (the snapshot keeps its bound
    finalizer until the content is gone); with Retain it is left as it is. Then the snapshot's
    finalizers go."""
    finalizers = get(vs, "metadata", "finalizers", default=[])
    if SNAPSHOT_SOURCE_FINALIZER not in finalizers and SNAPSHOT_BOUND_FINALIZER not in finalizers:
        return  # not ours to finish (or done)
    name = get(vs, "status", "boundVolumeSnapshotContentName")
    if not name and get(vs, "spec", "source", "persistentVolumeClaimName"):
        name = content_name(vs)  # created, and the snapshot's status not written yet
    content = world.snapshot_contents.get(name) if name else None
    if content is not None and not _points_back(content, vs):
        content = None
    delete_content = content is not None and get(content, "spec", "deletionPolicy") == "Delete"
    if content is not None:
        if restoring_from(vs, world):
            out.requeue(RESTORE_RECHECK)
            return
        w = metadata_write(content, annotations={ANN_BEING_DELETED: "yes"})
        if w:
            out.writes.append(w)
        if delete_content and not deleting(content):
            out.writes.append(Write("delete", "VolumeSnapshotContent", "", content["metadata"]["name"],
                                    uid=content["metadata"]["uid"]))
    remove = (SNAPSHOT_SOURCE_FINALIZER,) if delete_content else (SNAPSHOT_SOURCE_FINALIZER, SNAPSHOT_BOUND_FINALIZER)
    w = _finalizers_write(vs, remove=remove)
    if w:
        out.writes.append(w)


def _sidecar_deletes(content: Mapping) -> bool:
    """Whether the csi-snapshotter sidecar acts on a deleted content: a pre-provisioned one never
    bound, or one the snapshot controller marked being-deleted (never while a CreateSnapshot call
    is outstanding)."""
    if get(content, "spec", "source", "snapshotHandle") and not get(content, "spec", "volumeSnapshotRef", "uid"):
        return True
    ann = annotations(content)
    return ANN_BEING_CREATED not in ann and ANN_BEING_DELETED in ann


def reconcile_snapshot_content(content: Mapping, world: World) -> Outcome:
    """Our driver's contents: the snapshot controller's finalizer on a bound one, and the
    sidecar's deletion (of the storage-side snapshot for deletionPolicy Delete, then of the
    finalizer). Another driver's contents are left to that driver's sidecar: a finalizer put on
    them here would never be taken off."""
    out = Outcome()
    if get(content, "spec", "driver") != CSI_DRIVER:
        return out
    if deleting(content):
        if not _sidecar_deletes(content):
            return out
        if get(content, "spec", "deletionPolicy") == "Delete" and get(content, "status", "snapshotHandle"):
            # DeleteSnapshot succeeded: the sidecar clears what described the snapshot, and lets
            # go of the content on its next look
            status = {k: v for k, v in (content.get("status") or {}).items()
                      if k not in ("snapshotHandle", "readyToUse", "creationTime", "restoreSize")}
            w = status_write(content, status)
            if w:
                out.writes.append(w)
            return out
        w = _finalizers_write(content, remove=(CONTENT_FINALIZER,))
        if w:
            out.writes.append(w)
        return out
    if get(content, "spec", "volumeSnapshotRef", "uid"):
        w = _finalizers_write(content, add=(CONTENT_FINALIZER,))
        if w:
            out.writes.append(w)
    return out
