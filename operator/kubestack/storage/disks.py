"""A server's block devices, created on demand: the one storage module with effects.

    disks = ensure_server_disks(api, server_body, image_body=None, root_size_gib=flavor.disk)
    disks.disks, disks.volumes   # KubeVirt domain.devices.disks[] and volumes[] entries
    disks.ready                  # every PVC bound / DataVolume Succeeded / Volume usable
    disks.waiting_reason         # what it waits for, when not ready

Called by the Server controller on every reconcile: it is idempotent (deterministic names,
create-or-get). Every reference is resolved and checked before anything is created, so a bad
one raises `DiskError` and leaves nothing behind:

* boot from an Image (`spec.image`, or a mapping with bootIndex 0, sourceType image,
  destinationType local): the Image must exist, be visible to the server's project and be
  `active`; the root disk is the DataVolume `<server>-root`, a CDI clone of the image's golden
  PVC, owned by the Server unless `retainRootDisk` (the owner reference follows the flag when it
  changes later). A `<server>-root` of a deleted namesake is never taken over: one still being
  deleted is waited for, one it kept is a `DiskError`. A registry image with
  `containerDisk: true` boots as a KubeVirt containerDisk instead (no PVC).
* rebuild (Nova's `server rebuild`): the Server reconciler records the name of the new root
  disk's generation in `status.rootDisk` (`names.root_disk(server, key)`) before anything is
  made, and this function then clones *that* one, so a rebuild gets a fresh copy of the image
  under a name of its own. While the Server is REBUILD, the root disks of earlier generations
  are deleted once neither the VM's template nor its VMI uses them (`superseded_root_disks`),
  so the old disk goes only after the VM points at the new one. Never deleted: a disk the
  Server does not own (made with `retainRootDisk`), or any while `retainRootDisk` is set.
* boot from a Volume (`bootVolume.volume`, or bootIndex 0 with sourceType volume): the Volume
  must exist, not be in error, and not be attached to another server unless multiattach.
* boot from a new Volume (`bootVolume.image`, or bootIndex 0 with sourceType
  image/snapshot/blank and destinationType volume): the Volume `<server>-boot` is created (the
  Volume controller enforces the project's quota); it is owned by the Server — deleted with it
  — only when deleteOnTermination is true.
* data volumes (mappings without bootIndex or -1): sourceType volume attaches an existing
  Volume; image/snapshot/blank with destinationType volume create `<server>-bdm<i>` (owned by
  the Server when deleteOnTermination); blank with destinationType local is an emptyDisk
  (Nova's ephemeral disk). Attached volumes are hotpluggable (SCSI bus), so they can be detached
  from the running guest later.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

from kubestack import API_GROUP, API_VERSION
from kubestack.storage import names, refs, rendering

CDI = ("cdi.kubevirt.io", "v1beta1", "datavolumes")
USABLE_VOLUME_STATES = ("available", "in-use", "reserved", "attaching", "extending")


class DiskError(Exception):
    """A bad block-device reference: the server cannot be built as specified."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass
class ServerDisks:
    disks: list[dict[str, Any]] = field(default_factory=list)
    volumes: list[dict[str, Any]] = field(default_factory=list)
    ready: bool = True
    waiting_reason: str | None = None
    root_disk: str | None = None          # the root PVC/DataVolume name (status.rootDisk)
    image: dict[str, Any] | None = None    # the Image booted (for imageName / properties)
    created: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    # root disks of earlier generations (a rebuild's) still in use by the VM or its VMI: they
    # are deleted by a later call, once nothing uses them
    superseded: list[str] = field(default_factory=list)

    def wait(self, reason: str) -> None:
        if self.ready:
            self.ready, self.waiting_reason = False, reason


# ------------------------------------------------------------------------------ API access


class _Api:
    def __init__(self, api: client.ApiClient):
        self.custom = client.CustomObjectsApi(api)

    def get(self, group: str, version: str, plural: str, namespace: str, name: str) -> dict | None:
        try:
            return self.custom.get_namespaced_custom_object(group, version, namespace, plural, name)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def list(self, group: str, version: str, plural: str, namespace: str,
             label_selector: str | None = None) -> list[dict]:
        kwargs = {"label_selector": label_selector} if label_selector else {}
        return self.custom.list_namespaced_custom_object(group, version, namespace, plural, **kwargs)["items"]

    def delete(self, group: str, version: str, plural: str, namespace: str, name: str,
               uid: str | None = None) -> bool:
        """Delete (only the object with `uid`, when given); False when it was gone already."""
        body = client.V1DeleteOptions(preconditions=client.V1Preconditions(uid=uid)) if uid else None
        try:
            self.custom.delete_namespaced_custom_object(group, version, namespace, plural, name, body=body)
            return True
        except ApiException as exc:
            if exc.status in (404, 409):  # gone, or a namesake that is not the one we saw
                return False
            raise

    def create(self, group: str, version: str, plural: str, body: dict) -> tuple[dict, bool]:
        """Create, or get the one already there: (object, created)."""
        ns, name = body["metadata"]["namespace"], body["metadata"]["name"]
        for _ in range(3):  # one already there may be on its way out (a deleted namesake's)
            try:
                return self.custom.create_namespaced_custom_object(
                    group, version, ns, plural, body, field_validation="Strict"), True
            except ApiException as exc:
                if exc.status != 409:
                    raise
            existing = self.get(group, version, plural, ns, name)
            if existing is not None:
                return existing, False
        raise ApiException(status=409, reason=f"{name} keeps vanishing while creating")

    def patch(self, group: str, version: str, plural: str, namespace: str, name: str, body: dict) -> dict:
        """A JSON merge patch."""
        return self.custom.patch_namespaced_custom_object(group, version, namespace, plural, name, body)

    def image(self, namespace: str, name: str) -> dict | None:
        return self.get(API_GROUP, API_VERSION, "images", namespace, name)

    def volume(self, namespace: str, name: str) -> dict | None:
        return self.get(API_GROUP, API_VERSION, "volumes", namespace, name)


# ------------------------------------------------------------------------------ checks


def check_image(image: Mapping[str, Any] | None, ref: str, namespace: str) -> Mapping[str, Any]:
    """The Image `ref` as the project `namespace` may boot it, or DiskError."""
    if image is None:
        raise DiskError(f"Image {ref} could not be found.")
    if not refs.image_visible_to(image, namespace):
        raise DiskError(refs.image_invisible_reason(image, namespace))
    state = (image.get("status") or {}).get("status")
    if state != "active":
        raise DiskError(f"Image {ref} is not active (status {state or 'queued'}).")
    return image


def check_min_disk(image: Mapping[str, Any], size_gib: int | None, what: str) -> None:
    min_disk = int((image.get("spec") or {}).get("minDisk") or 0)
    if size_gib and min_disk and size_gib < min_disk:
        raise DiskError(f"{what} of {size_gib} GiB is smaller than the minimum size specified in "
                        f"image metadata ({min_disk} GiB).")


def check_volume(volume: Mapping[str, Any] | None, name: str, server: Mapping[str, Any],
                 servers: list[Mapping[str, Any]]) -> Mapping[str, Any]:
    """An existing Volume `server` may attach, or DiskError."""
    if volume is None:
        raise DiskError(f"Volume {name} could not be found.")
    status = volume.get("status") or {}
    if status.get("status") == "error":
        raise DiskError(f"Volume {name} is in error: {status.get('reason') or 'unknown reason'}")
    if (volume.get("metadata") or {}).get("deletionTimestamp"):
        raise DiskError(f"Volume {name} is being deleted.")
    me = server["metadata"]["name"]
    others = [s["metadata"]["name"] for s, _ in refs.volume_users(list(servers), name)
              if s["metadata"]["name"] != me]
    if others and not (volume.get("spec") or {}).get("multiattach"):
        raise DiskError(f"Volume {name} is already attached to {', '.join(sorted(others))} and is "
                        f"not multiattach.")
    return volume


def _volume_wait(volume: Mapping[str, Any] | None, name: str) -> str | None:
    if volume is None:
        return f"Volume {name} is being created"
    state = (volume.get("status") or {}).get("status")
    if state == "error":
        raise DiskError(f"Volume {name} is in error: {(volume.get('status') or {}).get('reason')}")
    if state not in USABLE_VOLUME_STATES:
        return f"Volume {name} is {state or 'creating'}"
    return None


def _dv_wait(dv: Mapping[str, Any] | None, name: str) -> str | None:
    status = (dv or {}).get("status") or {}
    phase = status.get("phase") or "Pending"
    if phase == "Failed":
        raise DiskError(f"root disk {name} failed: "
                        + next((c.get("message") for c in status.get("conditions") or []
                                if c.get("type") == "Running" and c.get("message")), "DataVolume Failed"))
    if phase != "Succeeded":
        progress = status.get("progress")
        return f"root disk {name} is {phase}" + (f" ({progress})" if progress not in (None, "N/A") else "")
    return None


# ------------------------------------------------------------------------------ root disk generations


def current_root_disk(server: Mapping[str, Any]) -> str:
    """The root disk generation a server boots from: the one its status records (a rebuild
    records the new one there before it is made), else the first, `<server>-root`. A recorded
    name that is not one of this server's root disks is ignored."""
    name = server["metadata"]["name"]
    recorded = (server.get("status") or {}).get("rootDisk")
    return recorded if names.is_root_disk_of(name, recorded) else names.root_disk(name)


def root_disk_holder(server: Mapping[str, Any], dv: Mapping[str, Any]) -> str:
    """Whose disk the DataVolume `dv`, found under `server`'s root disk name, is:

    * "ours": made for this Server (its uid in the annotation, or an owner reference to it);
    * "deleting": a deleted namesake's, owned by it or already being deleted: the garbage
      collector removes it, and the new server's disk is made after that;
    * "kept": a deleted namesake kept it (`retainRootDisk`): someone's data, never reused as
      this server's disk nor deleted by it."""
    uid = server["metadata"].get("uid")
    if not uid:
        return "ours"  # a Server not stored (played by hand): its disks carry no uid to tell apart
    dmeta = dv.get("metadata") or {}
    owners = {o.get("uid") for o in dmeta.get("ownerReferences") or []}
    made_for = (dmeta.get("annotations") or {}).get(names.ANN_SERVER_UID)
    if made_for == uid or uid in owners:
        return "ours"
    if dmeta.get("deletionTimestamp") or owners:
        return "deleting"
    return "kept"


def root_disk_owner_patch(server: Mapping[str, Any], dv: Mapping[str, Any]) -> dict[str, Any] | None:
    """The merge patch that makes this server's root disk `dv` follow `retainRootDisk` as it is
    now: owned by the Server (so deleted with it) unless retained. The flag can change after
    the disk was made, and the owner reference is what the garbage collector acts on. None
    when nothing is to change. The resourceVersion makes it fail rather than overwrite an
    owner list changed meanwhile."""
    uid = server["metadata"].get("uid")
    if not uid:
        return None  # a Server not stored cannot own anything
    dmeta = dv["metadata"]
    current = list(dmeta.get("ownerReferences") or [])
    others = [o for o in current if o.get("uid") != uid]
    retain = bool((server.get("spec") or {}).get("retainRootDisk"))
    wanted = others if retain else others + [rendering.owner_reference(server)]
    if len(wanted) == len(current):
        return None
    return {"metadata": {"resourceVersion": dmeta.get("resourceVersion"), "ownerReferences": wanted or None}}


def claims_used_by(*objs: Mapping[str, Any] | None) -> set[str]:
    """The PVC / DataVolume names a VM's template or a VMI's spec uses (a DataVolume's PVC
    has its name)."""
    used: set[str] = set()
    for obj in objs:
        spec = (obj or {}).get("spec") or {}
        if "template" in spec:
            spec = (spec.get("template") or {}).get("spec") or {}
        for volume in spec.get("volumes") or []:
            claim = (volume.get("dataVolume") or {}).get("name") or \
                (volume.get("persistentVolumeClaim") or {}).get("claimName")
            if claim:
                used.add(claim)
    return used


def superseded_root_disks(server: Mapping[str, Any], data_volumes: list[Mapping[str, Any]],
                          keep: str | None, used: set[str]) -> tuple[list[str], list[str]]:
    """(to delete now, to delete later) among `server`'s root disk DataVolumes other than
    `keep`: only those the Server owns, never while it retains its root disks; those the VM or
    its VMI still use (`used`) wait. Pure: the caller lists and deletes."""
    meta = server["metadata"]
    if (server.get("spec") or {}).get("retainRootDisk"):
        return [], []
    now, later = [], []
    for dv in data_volumes:
        dmeta = dv.get("metadata") or {}
        name = dmeta.get("name")
        if name == keep or not names.is_root_disk_of(meta["name"], name) or dmeta.get("deletionTimestamp"):
            continue
        if not any(o.get("uid") == meta.get("uid") for o in dmeta.get("ownerReferences") or []):
            continue  # retained (made with retainRootDisk), or not this Server's
        (later if name in used else now).append(name)
    return sorted(now), sorted(later)


def _sweep_root_disks(k: _Api, server: Mapping[str, Any], keep: str | None, out: ServerDisks) -> None:
    meta = server["metadata"]
    ns, sname = meta["namespace"], meta["name"]
    if (server.get("spec") or {}).get("retainRootDisk"):
        return
    selector = f"{names.LABEL_STORAGE}=root-disk,{names.LABEL_SERVER}={sname}"
    dvs = k.list(*CDI[:2], CDI[2], ns, label_selector=selector)
    if all(dv["metadata"]["name"] == keep for dv in dvs):
        return  # the usual case: nothing but the current disk, no need to read the VM
    used = claims_used_by(k.get("kubevirt.io", "v1", "virtualmachines", ns, sname),
                          k.get("kubevirt.io", "v1", "virtualmachineinstances", ns, sname))
    now, later = superseded_root_disks(server, dvs, keep, used)
    uids = {dv["metadata"]["name"]: dv["metadata"].get("uid") for dv in dvs}
    for name in now:
        if k.delete(*CDI[:2], CDI[2], ns, name, uid=uids.get(name)):
            out.deleted.append(f"DataVolume/{name}")
    out.superseded = later


# ------------------------------------------------------------------------------ plan


@dataclass
class _NewVolume:
    name: str
    size: int | None
    source: dict[str, Any] | None
    volume_type: str | None
    owned: bool
    boot: bool


def _new_volume_body(server: Mapping[str, Any], nv: _NewVolume) -> dict[str, Any]:
    meta = server["metadata"]
    spec: dict[str, Any] = {"size": nv.size}
    if nv.source:
        spec["source"] = nv.source
    if nv.volume_type:
        spec["volumeType"] = nv.volume_type
    if nv.boot:
        spec["bootable"] = True
    metadata: dict[str, Any] = {"name": nv.name, "namespace": meta["namespace"],
                                "labels": {names.LABEL_SERVER: meta["name"]}}
    if nv.owned and meta.get("uid"):
        metadata["ownerReferences"] = [rendering.owner_reference(server, controller=False)]
    return {"apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": "Volume", "metadata": metadata, "spec": spec}


def ensure_server_disks(api: client.ApiClient, server_body: Mapping[str, Any], *,
                        image_body: Mapping[str, Any] | None = None,
                        root_size_gib: int | None = None) -> ServerDisks:
    """Create what `server_body`'s boot source and block device mappings need (see the module
    docstring) and return its KubeVirt disks/volumes and readiness. `image_body` saves a GET of
    the boot Image; `root_size_gib` is the flavor's root disk size (0/None: the image's size)."""
    k = _Api(api)
    meta = server_body["metadata"]
    ns, sname = meta["namespace"], meta["name"]
    spec = server_body.get("spec") or {}
    bdms = list(spec.get("blockDeviceMapping") or [])
    boot_bdm = next((b for b in bdms if b.get("bootIndex") == 0), None)
    servers: list[dict] | None = None

    def all_servers() -> list[dict]:
        nonlocal servers
        if servers is None:
            servers = k.list(API_GROUP, API_VERSION, "servers", ns)
        return servers

    def image_for(ref: str) -> Mapping[str, Any]:
        ins, iname = refs.parse_ref(ref, ns)
        body = image_body if image_body is not None and \
            (image_body["metadata"].get("namespace"), image_body["metadata"]["name"]) == (ins, iname) \
            else k.image(ins, iname)
        return check_image(body, ref, ns)

    # ---- pass 1: resolve and check everything, create nothing
    root_image: Mapping[str, Any] | None = None
    root_claim_volume: str | None = None       # existing Volume booted from
    new_volumes: list[_NewVolume] = []
    attach: list[tuple[str, Mapping[str, Any] | None]] = []  # (volume name, body or None: new)
    ephemerals: list[tuple[int, int]] = []

    if refs.boots_from_image(server_body):
        ref = spec.get("image") or boot_bdm["name"]
        root_image = image_for(ref)
        check_min_disk(root_image, root_size_gib, "Flavor's disk")
    elif spec.get("bootVolume"):
        bv = spec["bootVolume"]
        if bv.get("volume"):
            root_claim_volume = bv["volume"]
            check_volume(k.volume(ns, bv["volume"]), bv["volume"], server_body, all_servers())
        else:
            image = image_for(bv["image"])
            size = bv.get("size") or max(int(image["spec"].get("minDisk") or 0), int(root_size_gib or 0)) \
                or rendering.DEFAULT_IMAGE_GIB
            check_min_disk(image, size, "Volume size")
            new_volumes.append(_NewVolume(names.boot_volume(sname), size, {"image": bv["image"]},
                                          bv.get("volumeType"), bool(bv.get("deleteOnTermination")), True))
    elif boot_bdm is not None:
        new = _bdm_volume(boot_bdm, names.boot_volume(sname), True, image_for)
        if new is None:  # sourceType volume
            root_claim_volume = boot_bdm["name"]
            check_volume(k.volume(ns, boot_bdm["name"]), boot_bdm["name"], server_body, all_servers())
        else:
            new_volumes.append(new)
    else:
        raise DiskError("The server has no boot source (spec.image, spec.bootVolume, or a block "
                        "device mapping with bootIndex 0).")

    for i, bdm in enumerate(bdms):
        if bdm is boot_bdm:
            continue
        if bdm.get("destinationType", "volume") == "local":
            if bdm.get("sourceType") != "blank":
                raise DiskError(f"blockDeviceMapping[{i}]: only a blank local disk can be added "
                                f"besides the boot disk (use destinationType volume for an image)")
            ephemerals.append((i, int(bdm.get("volumeSize") or 1)))
            continue
        new = _bdm_volume(bdm, names.bdm_volume(sname, i), False, image_for)
        if new is None:
            body = check_volume(k.volume(ns, bdm["name"]), bdm["name"], server_body, all_servers())
            attach.append((bdm["name"], body))
        else:
            new_volumes.append(new)
            attach.append((new.name, None))

    # ---- pass 2: create and collect
    out = ServerDisks()
    if root_image is not None:
        out.image = dict(root_image)
        bus = (root_image.get("spec") or {}).get("properties", {}).get("hw_disk_bus", "virtio")
        bus = bus if bus in ("virtio", "scsi", "sata") else "virtio"
        ispec = root_image.get("spec") or {}
        if ispec.get("containerDisk") and (ispec.get("source") or {}).get("registry"):
            disk, vol = rendering.root_disk_entries(container_disk=ispec["source"]["registry"], bus=bus)
        else:
            dv_body = rendering.root_disk_data_volume(
                server_body, root_image, size_gib=root_size_gib or None,
                owned=not spec.get("retainRootDisk"), name=current_root_disk(server_body))
            dv, created = k.create(*CDI[:2], CDI[2], dv_body)
            if created:
                out.created.append(f"DataVolume/{dv_body['metadata']['name']}")
            out.root_disk = dv_body["metadata"]["name"]
            reason = _own_root_disk(k, server_body, dv) or _dv_wait(dv, out.root_disk)
            if reason:
                out.wait(reason)
            disk, vol = rendering.root_disk_entries(data_volume=out.root_disk, bus=bus)
        out.disks.append(disk)
        out.volumes.append(vol)

    created_volumes: dict[str, dict] = {}
    for nv in new_volumes:
        body, created = k.create(API_GROUP, API_VERSION, "volumes", _new_volume_body(server_body, nv))
        created_volumes[nv.name] = body
        if created:
            out.created.append(f"Volume/{nv.name}")
        if nv.boot:
            root_claim_volume = nv.name

    if root_claim_volume is not None:
        body = created_volumes.get(root_claim_volume) or k.volume(ns, root_claim_volume)
        reason = _volume_wait(body, root_claim_volume)
        if reason:
            out.wait(reason)
        out.root_disk = names.volume_pvc(root_claim_volume)
        disk, vol = rendering.root_disk_entries(claim=out.root_disk)
        out.disks.append(disk)
        out.volumes.append(vol)

    for vname, body in attach:
        body = body if body is not None else created_volumes.get(vname)
        reason = _volume_wait(body, vname)
        if reason:
            out.wait(reason)
        serial = ((body or {}).get("metadata") or {}).get("uid")
        disk, vol = rendering.data_volume_entries(vname, names.volume_pvc(vname), serial=serial)
        out.disks.append(disk)
        out.volumes.append(vol)

    for index, size in ephemerals:
        disk, vol = rendering.ephemeral_disk_entries(index, size)
        out.disks.append(disk)
        out.volumes.append(vol)

    if (server_body.get("status") or {}).get("status") == "REBUILD":
        # only a rebuild (or an evacuation) leaves earlier root disks behind: look for them
        # then, and not on every boot
        _sweep_root_disks(k, server_body, out.root_disk, out)
    return out


def _own_root_disk(k: _Api, server: Mapping[str, Any], dv: Mapping[str, Any]) -> str | None:
    """Check that the root disk found under the server's name is its own, and make its owner
    reference follow `retainRootDisk`. Returns what to wait for, if anything; raises DiskError
    for a disk a deleted namesake kept."""
    name = dv["metadata"]["name"]
    holder = root_disk_holder(server, dv)
    if holder == "deleting":
        return f"root disk {name} of a deleted server of the same name is being deleted"
    if holder == "kept":
        raise DiskError(f"DataVolume {name} exists and is not this server's root disk: a deleted server "
                        f"of the same name kept it (retainRootDisk). Delete it or boot this server "
                        f"under another name; it is neither reused nor deleted.")
    patch = root_disk_owner_patch(server, dv)
    if patch is not None:
        k.patch(*CDI[:2], CDI[2], server["metadata"]["namespace"], name, patch)
    return None


def _bdm_volume(bdm: Mapping[str, Any], name: str, boot: bool, image_for) -> _NewVolume | None:
    """The Volume a mapping creates (None for sourceType volume: an existing one)."""
    source_type = bdm.get("sourceType")
    if source_type == "volume":
        return None
    size = bdm.get("volumeSize")
    source: dict[str, Any] | None = None
    if source_type == "image":
        image = image_for(bdm["name"])
        check_min_disk(image, size, "Volume size")
        source = {"image": bdm["name"]}
    elif source_type == "snapshot":
        source = {"snapshot": bdm["name"]}
    if not size:
        if source_type == "snapshot":
            raise DiskError("a volume from a snapshot needs volumeSize")
        raise DiskError("a new volume needs volumeSize")
    return _NewVolume(name, int(size), source, bdm.get("volumeType"),
                      bool(bdm.get("deleteOnTermination")), boot)
