"""Volume controller (Cinder): creates the Volume's DataVolume (blank, copy of an image, restore
of a VolumeSnapshot, clone of a Volume) after the project's volume quota admits it, extends the
PVC when spec.size grows, and keeps `status.attachments` / the Cinder state from the Servers
that reference the volume (their block device mappings) and their VMs.

A volume that a Server references (or whose VM still holds it) cannot be deleted: the finalizer
stays, status.reason and a Warning Event say why, and deletion goes through once it is detached.
Deleting a Server never deletes a data volume it did not create with deleteOnTermination.

Volume types are StorageClasses; multiattach is allowed only where the class is annotated
`kubestack.io/multiattach: "true"`.

One Volume's status is written by one thread at a time, from the Volume and what it is made of
as they are then: kopf's handlers (create/resume/update, delete) run under the Volume's lock
(`resyncer`), and every other trigger (its DataVolume's events, a Server's, the progress timer)
only queues the Volume for a re-sync that reads everything again under it. Unserialised, a
writer that had read an older state wrote last: e.g. the timer computed `in-use` just before the
user detached, the Server's refresh wrote `detaching`, then the timer `in-use`, and nothing
refreshed the volume again.
"""

from __future__ import annotations

import datetime
import logging
import threading
from typing import Any

import kopf
from kubernetes import client
from kubernetes.client.rest import ApiException

from kubestack import API_GROUP, API_VERSION
from kubestack.k8s import events, objects
from kubestack.k8s.client import api, core, custom
from kubestack.identity import project_of_namespace
from kubestack.identity.quota import QuotaExceeded
from kubestack.k8s.conditions import set_condition, with_stalled
from kubestack.runtime import informer, state as runtime_state
from kubestack.runtime.metrics import instrumented
from kubestack.runtime.resync import Resyncer
from kubestack.runtime.workqueue import WorkQueue
from kubestack.storage import names, refs, rendering, state

log = logging.getLogger(__name__)

VOLUME = objects.kubestack("volumes", "Volume")
IMAGE = objects.kubestack("images", "Image")
SERVER = objects.kubestack("servers", "Server")
MULTIATTACH_ANNOTATION = "kubestack.io/multiattach"
DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"
TRANSIENT = ("creating", "downloading", "extending", "reserved", "attaching", "detaching", "deleting")
RETRY_DELETE = 5.0


class _Refused(Exception):
    """The volume cannot be created as specified (status error, Warning Event)."""


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _plain(obj: Any) -> Any:
    return api().sanitize_for_serialization(obj)


# ------------------------------------------------------------------------------ reading


def _pvc(namespace: str, name: str) -> dict | None:
    try:
        return _plain(core().read_namespaced_persistent_volume_claim(name, namespace))
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def _storage_class(name: str | None) -> dict | None:
    storage = client.StorageV1Api(api())
    if name:
        try:
            return _plain(storage.read_storage_class(name))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
    for sc in storage.list_storage_class().items:
        if (sc.metadata.annotations or {}).get(DEFAULT_CLASS_ANNOTATION) == "true":
            return _plain(sc)
    return None


def _project(namespace: str) -> str | None:
    return project_of_namespace(core().read_namespace(namespace).metadata.labels)


def quota_key(namespace: str, name: str) -> str:
    return f"volume/{namespace}/{name}"


def _reserve(volume: dict, size: int) -> None:
    """Claim volumes 1 / gigabytes `size` in the project's quota ledger (QuotaExceeded)."""
    ns, name = volume["metadata"]["namespace"], volume["metadata"]["name"]
    runtime_state.quota_ledger().reserve(_project(ns), quota_key(ns, name),
                                         {"volumes": 1, "gigabytes": size})


def _attachments(volume: dict) -> state.Attachments:
    ns = volume["metadata"]["namespace"]
    servers = custom().list_namespaced_custom_object(API_GROUP, API_VERSION, ns, "servers")["items"]
    vms = {v["metadata"]["name"]: v for v in
           custom().list_namespaced_custom_object("kubevirt.io", "v1", ns, "virtualmachines")["items"]}
    vmis = {v["metadata"]["name"]: v for v in
            custom().list_namespaced_custom_object("kubevirt.io", "v1", ns, "virtualmachineinstances")["items"]}
    return state.attachments(volume["metadata"]["name"], servers, vms, vmis,
                             previous=(volume.get("status") or {}).get("attachments"), now=_now())


# ------------------------------------------------------------------------------ writing


def _write_status(volume: dict, desired: dict[str, Any], *, event: tuple[str, str, str] | None = None) -> None:
    meta = volume["metadata"]
    current = volume.get("status") or {}
    phase = desired.get("status") or current.get("status") or "creating"
    ready = phase in ("available", "in-use", "reserved", "attaching", "detaching")
    message = desired.get("reason") or (desired.get("attachedTo") if "attachedTo" in desired
                                        else current.get("attachedTo")) or f"Volume is {phase}"
    desired = dict(desired)
    desired["conditions"] = set_condition(current.get("conditions"), "Ready", ready,
                                          "".join(p.capitalize() for p in phase.replace("-", "_").split("_")),
                                          message, meta.get("generation"))
    # a volume in error stays so until it is deleted (error_extending keeps its data: usable)
    desired["conditions"] = with_stalled(desired["conditions"], phase == "error", "Error", message)
    desired["observedGeneration"] = meta.get("generation")
    diff = objects.status_diff(current, desired)
    if not diff:
        return
    objects.patch_status(VOLUME, meta["namespace"], meta["name"], diff)
    if event:
        events.post(volume, *event)
    elif "status" in diff and diff["status"] != current.get("status"):
        kind = events.WARNING if diff["status"].startswith("error") else events.NORMAL
        events.post(volume, kind, "Volume" + "".join(p.capitalize() for p in diff["status"].replace("-", "_").split("_")),
                    desired.get("reason") or f"Volume {meta['name']} is {diff['status']}")


def _refuse(volume: dict, status: str, reason: str) -> None:
    _write_status(volume, {"status": status, "reason": reason},
                  event=(events.WARNING, "VolumeError" if status == "error" else "ExtendFailed", reason))


def _source(volume: dict) -> dict[str, Any]:
    """The DataVolume source, after checking the Volume's source exists and fits."""
    meta, spec = volume["metadata"], volume.get("spec") or {}
    ns = meta["namespace"]
    size = int(spec["size"])
    source = spec.get("source") or {}
    if source.get("image"):
        ins, iname = refs.parse_ref(source["image"], ns)
        image = objects.get(IMAGE, ins, iname)
        if image is None or not refs.image_visible_to(image, ns):
            raise _Refused(f"Image {source['image']} could not be found.")
        istate = (image.get("status") or {}).get("status")
        if istate == "killed":
            raise _Refused(f"Image {source['image']} is killed: {(image.get('status') or {}).get('reason')}")
        if istate != "active":
            raise kopf.TemporaryError(f"waiting for Image {source['image']} to become active ({istate})", delay=3)
        min_disk = int((image.get("spec") or {}).get("minDisk") or 0)
        if min_disk > size:
            raise _Refused(f"Volume size {size} GiB is smaller than the image's minimum disk {min_disk} GiB.")
        ispec = image.get("spec") or {}
        if ispec.get("containerDisk") and (ispec.get("source") or {}).get("registry"):
            # a containerDisk image has no golden PVC: import the registry image itself
            return {"registry": {"url": ispec["source"]["registry"]}}
        return rendering.pvc_source(ins, (image.get("status") or {}).get("pvc") or names.image_pvc(iname))
    if source.get("snapshot"):
        snap = objects.get(objects.VOLUME_SNAPSHOT, ns, source["snapshot"])
        if snap is None:
            raise _Refused(f"VolumeSnapshot {source['snapshot']} could not be found.")
        restore = state.quantity_bytes((snap.get("status") or {}).get("restoreSize"))
        if restore and restore > size * state.GIB:
            raise _Refused(f"Volume size {size} GiB is smaller than the snapshot's size "
                           f"({-(-restore // state.GIB)} GiB).")
        return rendering.snapshot_source(ns, source["snapshot"])
    if source.get("volume"):
        other = objects.get(VOLUME, ns, source["volume"])
        if other is None:
            raise _Refused(f"Volume {source['volume']} could not be found.")
        if int((other.get("spec") or {}).get("size") or 0) > size:
            raise _Refused(f"Volume size {size} GiB is smaller than the source volume's "
                           f"{other['spec']['size']} GiB.")
        return rendering.pvc_source(ns, names.volume_pvc(source["volume"]))
    return rendering.blank_source()


def reconcile_volume(volume: dict) -> None:
    meta, spec = volume["metadata"], volume.get("spec") or {}
    ns, name = meta["namespace"], meta["name"]
    if meta.get("deletionTimestamp"):
        return
    current = volume.get("status") or {}
    dv_name = names.volume_pvc(name)
    dv = objects.get(objects.DATA_VOLUME, ns, dv_name)
    if dv is None:
        if current.get("status") == "error":
            return  # a refused volume stays in error: delete it and create it again
        try:
            sc = _storage_class(spec.get("volumeType"))
            if sc is None:
                raise _Refused(f"Volume type {spec.get('volumeType') or '(default)'} could not be found.")
            sc_name = sc["metadata"]["name"]
            if spec.get("multiattach") and \
                    (sc["metadata"].get("annotations") or {}).get(MULTIATTACH_ANNOTATION) != "true":
                raise _Refused(f"Volume type {sc_name} does not support multiattach.")
            source = _source(volume)
            try:
                _reserve(volume, int(spec["size"]))
            except QuotaExceeded as exc:
                raise _Refused(str(exc)) from exc
        except _Refused as exc:
            _refuse(volume, "error", str(exc))
            return
        body = rendering.volume_data_volume(volume, source, storage_class=sc_name)
        try:
            dv, _ = objects.create(objects.DATA_VOLUME, ns, body)
        except ApiException as exc:
            if exc.status in (400, 403, 422):
                _refuse(volume, "error", f"the DataVolume was refused: {exc.reason}: {exc.body}"[:1000])
                return
            raise kopf.TemporaryError(f"creating DataVolume {dv_name}: {exc.reason}", delay=5)
        # counted against the quota from here on (status.pvc)
        _write_status(volume, {"status": "creating", "pvc": dv_name, "dataVolume": dv_name,
                               "volumeType": sc_name, "size": None},
                      event=(events.NORMAL, "Creating", f"DataVolume {dv_name} created ({next(iter(source))})"))
        volume = objects.get(VOLUME, ns, name) or volume
    _extend_and_refresh(volume, dv)


def _extend_and_refresh(volume: dict, dv: dict | None) -> None:
    meta = volume["metadata"]
    if dv is not None and _extend_if_needed(volume, dv):
        # it wrote error_extending: the refresh keeps it only when it reads it
        volume = objects.get(VOLUME, meta["namespace"], meta["name"]) or volume
    refresh_volume(volume, dv)


def _extend_if_needed(volume: dict, dv: dict) -> bool:
    """Grow the PVC to spec.size; True when it refused and wrote the status instead."""
    if (dv.get("status") or {}).get("phase") != "Succeeded":
        return False
    meta, spec = volume["metadata"], volume.get("spec") or {}
    pvc = _pvc(meta["namespace"], (dv.get("status") or {}).get("claimName") or dv["metadata"]["name"])
    if pvc is None:
        return False
    requested = state.quantity_bytes(((pvc.get("spec") or {}).get("resources") or {}).get("requests", {}).get("storage")) or 0
    wanted = int(spec["size"]) * state.GIB
    if wanted <= requested:
        return False
    ns = meta["namespace"]
    current_size = requested // state.GIB
    sc = _storage_class((pvc.get("spec") or {}).get("storageClassName"))
    if sc is not None and not sc.get("allowVolumeExpansion"):
        _refuse(volume, "error_extending",
                f"Extend refused: volume type {sc['metadata']['name']} does not allow extending volumes.")
        return True
    try:
        _reserve(volume, int(spec["size"]))
    except QuotaExceeded as exc:
        # the volume keeps its size and its quota; "Extend refused:" keeps the message from
        # reading as a refused creation (which would hold no quota)
        _refuse(volume, "error_extending", f"Extend refused: {exc}")
        return True
    core().patch_namespaced_persistent_volume_claim(
        pvc["metadata"]["name"], ns, {"spec": {"resources": {"requests": {"storage": rendering.gib_quantity(spec["size"])}}}},
        field_validation="Strict")
    events.post(volume, events.NORMAL, "Extending", f"Volume {meta['name']} extending from {current_size} "
                f"to {spec['size']} GiB")
    return False


def refresh_volume(volume: dict, dv: dict | None = None) -> None:
    meta = volume["metadata"]
    ns = meta["namespace"]
    current = volume.get("status") or {}
    if meta.get("deletionTimestamp"):
        return
    if dv is None:
        dv = objects.get(objects.DATA_VOLUME, ns, names.volume_pvc(meta["name"]))
    if dv is None and current.get("status") in ("error", None):
        return  # refused (error) or not reconciled yet
    pvc = _pvc(ns, (dv.get("status") or {}).get("claimName") or dv["metadata"]["name"]) if dv else None
    att = _attachments(volume)
    desired = state.volume_status(volume, dv, pvc, att)
    if current.get("status") == "error_extending" and desired["status"] == "extending":
        desired["status"], desired["reason"] = "error_extending", current.get("reason")
    _write_status(volume, desired)


# ------------------------------------------------------------------------------ handlers


def _resync(volume: dict, namespace: str, name: str) -> None:
    """A queued re-sync (under the Volume's lock, the Volume read under it): extend, then the
    status, from the DataVolume, PVC, Servers and VMs as they are now."""
    _extend_and_refresh(volume, objects.get(objects.DATA_VOLUME, namespace, names.volume_pvc(name)))


resyncer = Resyncer(VOLUME, _resync, workers=2)


@kopf.on.resume(API_GROUP, API_VERSION, "volumes")
@kopf.on.create(API_GROUP, API_VERSION, "volumes")
@kopf.on.update(API_GROUP, API_VERSION, "volumes", field="spec")
@instrumented("Volume")
def volume_reconcile(body, **_) -> None:
    ns, name = body["metadata"]["namespace"], body["metadata"]["name"]
    with resyncer.lock(ns, name):
        fresh = objects.get(VOLUME, ns, name)
        if fresh is not None:
            reconcile_volume(fresh)


# The timer and the event handlers only queue (coroutines: a queue add never blocks kopf's loop).


@kopf.timer(API_GROUP, API_VERSION, "volumes", interval=2.0,
            when=lambda status, **_: (status or {}).get("status") in TRANSIENT)
@instrumented("Volume")
async def volume_progress(body, **_) -> None:
    resyncer.add([(body["metadata"]["namespace"], body["metadata"]["name"])])


@kopf.on.event("cdi.kubevirt.io", "v1beta1", "datavolumes", labels={names.LABEL_STORAGE: "volume"})
@instrumented("Volume")
async def volume_data_volume_event(body, type, **_) -> None:  # noqa: A002 (kopf's argument name)
    if type == "DELETED":
        return
    owner = next((r for r in body["metadata"].get("ownerReferences") or [] if r.get("kind") == "Volume"), None)
    if owner is not None:
        resyncer.add([(body["metadata"]["namespace"], owner["name"])])


# the volumes each Server referenced when last seen (namespace, name) -> names
_SERVER_VOLUMES: dict[tuple[str, str], frozenset[str]] = {}
# volumes to refresh for a server, until the refresh queue gets to it
_touched: dict[tuple[str, str], set[str]] = {}
_touched_lock = threading.Lock()


def _refresh_for_server(key: tuple[str, str]) -> None:
    """Queue re-syncs of the Volumes a server referenced and of those listing it as attached
    (the listing is why this is a queue of its own: the informer thread must not wait for it)."""
    ns, sname = key
    with _touched_lock:
        names_ = _touched.pop(key, set())
    try:
        volumes = custom().list_namespaced_custom_object(API_GROUP, API_VERSION, ns, "volumes")["items"]
    except Exception:
        with _touched_lock:  # retried by the queue: keep what it was asked to refresh
            _touched.setdefault(key, set()).update(names_)
        raise
    resyncer.add([(ns, v["metadata"]["name"]) for v in volumes
                  if v["metadata"]["name"] in names_
                  or any(a.get("server") == sname for a in (v.get("status") or {}).get("attachments") or [])])


_server_refresh = WorkQueue("volume-servers", _refresh_for_server, workers=2)


@kopf.on.startup()
def _watch_servers(**_) -> None:
    resyncer.start()
    _server_refresh.start()
    servers = informer.shared(SERVER)
    servers.add_handler(volume_server_event)
    servers.start()


@kopf.on.cleanup()
def _stop_watching_servers(**_) -> None:
    _server_refresh.stop()
    resyncer.stop()


def volume_server_event(type_: str, body: dict, previous: dict | None) -> None:
    """A Server changed: queue a refresh of the Volumes it references or referenced (the
    informer thread must not wait for the listing)."""
    key = (body["metadata"]["namespace"], body["metadata"]["name"])
    referenced = frozenset(u.volume for u in refs.server_volume_uses(body))
    # most servers never touch a volume: skip them without listing (a boot storm brings
    # thousands of Server events)
    before = _SERVER_VOLUMES.get(key, frozenset())
    if type_ == "DELETED":
        _SERVER_VOLUMES.pop(key, None)
    else:
        _SERVER_VOLUMES[key] = referenced
    if not referenced and not before:
        return
    with _touched_lock:
        _touched.setdefault(key, set()).update(referenced | before)
    _server_refresh.add(key)


@kopf.on.delete(API_GROUP, API_VERSION, "volumes")
@instrumented("Volume")
def volume_delete(body, **_) -> None:
    volume = dict(body)
    meta = volume["metadata"]
    # under the Volume's lock: a re-sync that read the Volume before the deletion began cannot
    # write its status over the refusal's reason or over "deleting"
    with resyncer.lock(meta["namespace"], meta["name"]):
        att = _attachments(volume)
        if att.entries:
            why = (f"Volume {meta['name']} is attached to {', '.join(sorted(set(att.servers)))} "
                   f"({att.state}) and cannot be deleted: detach it first.")
            current = volume.get("status") or {}
            if current.get("reason") != why:
                objects.patch_status(VOLUME, meta["namespace"], meta["name"], {"reason": why})
                events.post(volume, events.WARNING, "DeleteRefused", why)
            raise kopf.TemporaryError(why, delay=RETRY_DELETE)
        # "deleting" first: a project recount listing the volume before it is gone then knows the
        # quota is given back (identity.usage.released), and does not take it again
        if (volume.get("status") or {}).get("status") != "deleting":
            objects.patch_status(VOLUME, meta["namespace"], meta["name"], {"status": "deleting", "reason": None})
        runtime_state.quota_ledger().release(quota_key(meta["namespace"], meta["name"]))
    events.post(volume, events.NORMAL, "Deleting", f"Volume {meta['name']} deleted")
