"""Image controller (Glance): fills the golden PVC through a CDI DataVolume and reports
queued -> importing (with progress) -> active, or killed with the importer's reason.

Deleting a `protected` image is refused at admission (the ValidatingAdmissionPolicy crdgen
makes from the kind's deletion rule: Glance's 403). Deletion is held (the finalizer stays,
status.reason and a Warning Event say why, retried every few seconds) while a Server references
the image (spec.image, bootVolume.image or an image block device mapping, in any project) or a
Volume is still being copied from it, as Kubernetes holds a PVC in use; the protected check
stays here too, for a cluster where the policy is not installed. The golden DataVolume/PVC is
owned by the Image and goes with it.

One Image's status is written by one thread at a time, from the Image and DataVolume as they
are then: kopf's handlers (create/resume, delete) run under the Image's lock (`resyncer`), and a
DataVolume event only queues the Image for a re-sync that reads both again under it. kopf does
not serialise handlers of different streams, and the create handler computing `queued` from the
DataVolume it had just created used to write after the DataVolume event's `active` (an import
that finished at once): Succeeded is final, no event came again, the Image stayed `queued`.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf
from kubernetes.client.rest import ApiException

from kubestack import API_GROUP, API_VERSION
from kubestack.k8s import events, objects
from kubestack.k8s.client import core, custom
from kubestack.k8s.conditions import set_condition, with_stalled
from kubestack.runtime.metrics import instrumented
from kubestack.runtime.resync import Resyncer
from kubestack.storage import names, refs, rendering, state

log = logging.getLogger(__name__)

IMAGE = objects.kubestack("images", "Image")
SERVER = objects.kubestack("servers", "Server")
VOLUME = objects.kubestack("volumes", "Volume")
RETRY_DELETE = 5.0


# ------------------------------------------------------------------------------ reconcile


def _kill(image: dict, reason: str) -> None:
    _write_status(image, {"status": "killed", "reason": reason, "progress": None})


def _write_status(image: dict, desired: dict[str, Any]) -> None:
    meta = image["metadata"]
    current = image.get("status") or {}
    merged = {**current, **{k: v for k, v in desired.items()}}
    phase = merged.get("status") or "queued"
    ready = phase == "active"
    message = merged.get("reason") or (f"Image is {phase}" + (f" ({merged['progress']})"
                                                              if phase == "importing" and merged.get("progress") else ""))
    desired = dict(desired)
    desired["conditions"] = set_condition(current.get("conditions"), "Ready", ready,
                                          {"active": "Active", "killed": "Killed"}.get(phase, "Importing"),
                                          message, meta.get("generation"))
    # Glance: a killed image stays killed until it is deleted and created again
    desired["conditions"] = with_stalled(desired["conditions"], phase == "killed", "Killed", message)
    desired["observedGeneration"] = meta.get("generation")
    diff = objects.status_diff(current, desired)
    if not diff:
        return
    objects.patch_status(IMAGE, meta["namespace"], meta["name"], diff)
    old_phase = current.get("status")
    if desired.get("status") and desired["status"] != old_phase:
        if desired["status"] == "killed":
            events.post(image, events.WARNING, "ImportFailed", desired.get("reason") or "import failed")
        else:
            events.post(image, events.NORMAL, desired["status"].capitalize(),
                        f"Image {meta['name']} is {desired['status']}")


def _source_pvc(image: dict) -> tuple[str, str] | str | None:
    """(namespace, pvc) of a volume / server-snapshot source, or an error message."""
    ns = image["metadata"]["namespace"]
    source = (image.get("spec") or {}).get("source") or {}
    if source.get("volume"):
        name = source["volume"]["name"]
        vol = objects.get(VOLUME, ns, name)
        if vol is None:
            return f"Volume {name} could not be found."
        return ns, (vol.get("status") or {}).get("pvc") or names.volume_pvc(name)
    if source.get("serverSnapshot"):
        name = source["serverSnapshot"]["server"]
        server = objects.get(SERVER, ns, name)
        if server is None:
            return f"Server {name} could not be found."
        root = (server.get("status") or {}).get("rootDisk")
        if not root:
            boot = [u for u in refs.server_volume_uses(server) if u.boot]
            root = names.volume_pvc(boot[0].volume) if boot else names.root_disk(name)
        return ns, root
    return None


def reconcile_image(image: dict) -> None:
    meta = image["metadata"]
    if meta.get("deletionTimestamp"):
        return
    current = (image.get("status") or {}).get("status")
    if current == "killed":
        return  # Glance: a killed image stays killed; delete and re-create it
    spec = image.get("spec") or {}
    registry = (spec.get("source") or {}).get("registry")
    if spec.get("containerDisk") and registry:
        # booted straight from the registry as a KubeVirt containerDisk: no golden PVC to fill
        _write_status(image, {"status": "active", "containerDisk": rendering.container_disk_image(registry),
                              "progress": None, "reason": None})
        return
    dv_name = names.image_pvc(meta["name"])
    dv = objects.get(objects.DATA_VOLUME, meta["namespace"], dv_name)
    if dv is None:
        source_pvc = _source_pvc(image)
        if isinstance(source_pvc, str):
            _kill(image, source_pvc)
            return
        body = rendering.image_data_volume(image, source_pvc=source_pvc)
        try:
            dv, _ = objects.create(objects.DATA_VOLUME, meta["namespace"], body)
        except ApiException as exc:
            if exc.status in (400, 403, 422):
                _kill(image, f"the DataVolume was refused: {exc.reason}: {exc.body}"[:1000])
                return
            raise kopf.TemporaryError(f"creating DataVolume {dv_name}: {exc.reason}", delay=5)
        events.post(image, events.NORMAL, "Importing",
                    f"DataVolume {dv_name} created from {next(iter(body['spec']['source']))}")
    refresh_image(image, dv)


def refresh_image(image: dict, dv: dict | None) -> None:
    meta = image["metadata"]
    pvc = None
    if dv is not None and (dv.get("status") or {}).get("phase") == "Succeeded":
        try:
            pvc = core().read_namespaced_persistent_volume_claim(
                (dv.get("status") or {}).get("claimName") or dv["metadata"]["name"], meta["namespace"])
            pvc = core().api_client.sanitize_for_serialization(pvc)
        except ApiException as exc:
            if exc.status != 404:
                raise
    desired = state.image_status(dv, pvc)
    if (image.get("status") or {}).get("status") == "killed":
        return
    _write_status(image, desired)


# ------------------------------------------------------------------------------ handlers


def _sync_from_data_volume(image: dict, namespace: str, name: str) -> None:
    """The queued re-sync after a DataVolume event (under the Image's lock, the Image read
    under it): the status from the DataVolume as it is now, not as the event carried it."""
    dv = objects.get(objects.DATA_VOLUME, namespace, names.image_pvc(name))
    if dv is None:
        return  # deleted (its DELETED event changes nothing either)
    owner = next((r for r in dv["metadata"].get("ownerReferences") or [] if r.get("kind") == "Image"), None)
    if owner is None or owner.get("uid") != image["metadata"].get("uid"):
        return  # a deleted namesake's, going with it
    refresh_image(image, dv)


resyncer = Resyncer(IMAGE, _sync_from_data_volume, workers=2)


@kopf.on.startup()
def _start_image_resyncs(**_) -> None:
    resyncer.start()


@kopf.on.cleanup()
def _stop_image_resyncs(**_) -> None:
    resyncer.stop()


@kopf.on.resume(API_GROUP, API_VERSION, "images")
@kopf.on.create(API_GROUP, API_VERSION, "images")
@instrumented("Image")
def image_create(body, **_) -> None:
    ns, name = body["metadata"]["namespace"], body["metadata"]["name"]
    with resyncer.lock(ns, name):
        reconcile_image(objects.get(IMAGE, ns, name) or dict(body))


@kopf.on.event("cdi.kubevirt.io", "v1beta1", "datavolumes", labels={names.LABEL_STORAGE: "image"})
@instrumented("Image")
async def image_data_volume_event(body, type, **_) -> None:  # noqa: A002 (kopf's argument name)
    """Only queues the owning Image (a coroutine: a queue add never blocks kopf's loop)."""
    if type == "DELETED":
        return
    owner = next((r for r in body["metadata"].get("ownerReferences") or []
                  if r.get("kind") == "Image"), None)
    if owner is not None:
        resyncer.add([(body["metadata"]["namespace"], owner["name"])])


def image_users(image: dict) -> list[str]:
    """Why the image cannot go: Servers booting from it, Volumes still being copied from it."""
    ns, name = image["metadata"]["namespace"], image["metadata"]["name"]
    users: list[str] = []
    servers = custom().list_cluster_custom_object(API_GROUP, API_VERSION, "servers")["items"]
    for s in servers:
        if refs.server_uses_image(s, ns, name):
            users.append(f"server {s['metadata']['namespace']}/{s['metadata']['name']}")
    volumes = custom().list_cluster_custom_object(API_GROUP, API_VERSION, "volumes")["items"]
    for v in volumes:
        ref = ((v.get("spec") or {}).get("source") or {}).get("image")
        if not ref or refs.parse_ref(ref, v["metadata"]["namespace"]) != (ns, name):
            continue
        if (v.get("status") or {}).get("status") in (None, "creating", "downloading"):
            users.append(f"volume {v['metadata']['namespace']}/{v['metadata']['name']} (copying)")
    return sorted(users)


@kopf.on.delete(API_GROUP, API_VERSION, "images")
@instrumented("Image")
def image_delete(body, **_) -> None:
    image = dict(body)
    meta = image["metadata"]
    spec = image.get("spec") or {}
    why = None
    if spec.get("protected"):
        why = f"Image {meta['name']} is protected and cannot be deleted (unset protected first)."
    else:
        users = image_users(image)
        if users:
            why = f"Image {meta['name']} is in use by {', '.join(users)} and cannot be deleted."
    if why:
        # under the Image's lock: a re-sync that read the Image before the deletion began
        # cannot write its status (reason: None) over this one
        with resyncer.lock(meta["namespace"], meta["name"]):
            current = image.get("status") or {}
            if current.get("reason") != why:
                objects.patch_status(IMAGE, meta["namespace"], meta["name"], {"reason": why})
                events.post(image, events.WARNING, "DeleteRefused", why)
        raise kopf.TemporaryError(why, delay=RETRY_DELETE)
    events.post(image, events.NORMAL, "Deleted", f"Image {meta['name']} deleted")
