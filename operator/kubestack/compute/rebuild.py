"""Nova's `server rebuild [--image X]`: the root disk is replaced by a fresh copy of the
image (the new one, or the same one for a bare rebuild request); attached volumes, ports,
host and flavor stay. Steps, each read back from status and the VM on the next look:

1. (`begin_rebuild`) a changed spec.image or a new spec.rebuild.requestId: status says
   REBUILD and records the image, the request id and the name of the new root disk,
   `<server>-root-<key>` with a key from the Server's uid and the generation asking for the
   rebuild (storage.names.rebuild_key): a distinct, deterministic name per rebuild, so a
   repeated step makes the same disk, and the name is kept in status.rootDisk while later
   spec changes move the generation on.
2. (`machine.ensure_vm`) the storage service clones the new disk and the VM's template is
   pointed at it at once, though it is still being cloned; then (`rebuild`) the VMI is
   deleted: the guest stops, and KubeVirt starts it again from the template, on the same
   pinned host, only once the new DataVolume is ready. The VM never points at the old disk
   again, so the guest cannot come back on it.
3. while REBUILD, the storage service deletes the server's earlier root disks once
   neither the VM's template nor a VMI uses them (never one made with retainRootDisk, or
   any while it is set), and the rebuild ends only when none is left and the new guest
   runs on the new disk (for a stopped server: once the disk is ready; it stays SHUTOFF,
   as Nova leaves it).

A crash anywhere repeats a step: before the status write, step 1 is taken again with the
same name (same generation) or, if the spec moved on meanwhile, a new one, and the disk
made for the lost name is then an earlier root disk like any other, deleted in step 3.
So a server ends with exactly one root disk (plus those it was asked to retain).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubestack.api.server import DesiredPowerState, Server, ServerState, TaskState
from kubestack.compute import state
from kubestack.compute.context import Context, Outcome, instance_id
from kubestack.compute.errors import REFUSED_CONDITION, VOLUME_BACKED, error
from kubestack.compute.references import Resolved
from kubestack.compute.render import ROOT_DISK
from kubestack.k8s.conditions import set_condition
from kubestack.storage import names as storage_names
from kubestack.storage.disks import DiskError
from kubestack.storage.refs import boots_from_image

# Nova's task state while a rebuild waits for its block devices (not in api.TaskState, whose
# values are a subset: status.taskState is free text)
REBUILD_BLOCK_DEVICE_MAPPING = "rebuild_block_device_mapping"


def begin_rebuild(ctx: Context, server, model: Server, resolved: Resolved, out: Outcome) -> bool:
    """Record a newly asked rebuild in status; True when one starts in this reconcile."""
    st = out.status
    req = model.spec.rebuild
    image_changed = resolved.image_name is not None and st.get("imageName") not in (None, resolved.image_name)
    requested = req is not None and req.request_id != st.get("lastRebuildRequestId")
    if not (image_changed or requested):
        return False
    name = model.metadata.name
    generation = server["metadata"].get("generation")
    if not boots_from_image(server):
        refuse_volume_backed_rebuild(server, model, out)
        return False
    key = storage_names.rebuild_key(instance_id(server), generation)
    st.update(status=ServerState.REBUILD, taskState=TaskState.REBUILDING, imageName=resolved.image_name,
              rootDisk=storage_names.root_disk(name, key))
    if req is not None:
        st["lastRebuildRequestId"] = req.request_id
    image = resolved.image_name or "its boot image"
    st["conditions"] = set_condition(st.get("conditions"), "Ready", False, str(ServerState.REBUILD),
                                     f"rebuilding from image {image}", generation=generation)
    out.events.append(("Normal", "Rebuilding", f"Rebuilding from image {image}"))
    return True


def refuse_volume_backed_rebuild(server, model: Server, out: Outcome) -> None:
    """A volume-backed server is not rebuilt: it stays as it is (ACTIVE, no fault), and
    the RequestRefused condition (reason VolumeBackedServer) and a Warning Event say why.
    The request is answered once: status.lastRebuildRequestId records it, so the Event is
    not repeated; the condition stays until the spec changes (`errors.drop_lapsed_refusal`).

    Why not reimage the boot volume, as Nova does since API 2.93: Nova asks Cinder to
    reimage the volume in place (os-reimage). Here the volume's data is the PVC the Volume
    controller owns and reconciles; rewriting it from the Server reconciler would give one
    PVC two writers behind the Volume's back (its status, snapshots and quota), and a
    reimage belongs to the Volume kind, which has no such action yet. Before 2.93 Nova
    refused a volume-backed rebuild to another image and "rebuilt" one on the same image
    without touching the volume, so the guest came back on its old data: a silent no-op is
    what this refusal avoids. It is no failure of the server, so no ERROR and no fault."""
    st = out.status
    req = model.spec.rebuild
    if req is not None:
        st["lastRebuildRequestId"] = req.request_id  # answered: not asked again each look
    message = (f"Rebuild of volume-backed server {model.metadata.name} is not supported: its root disk is "
               "a Volume, which kubestack cannot reimage in place (Nova API 2.93 reimage); the server "
               "was left unchanged. Boot a new server from the image, or from a new Volume made from it.")
    st["conditions"] = set_condition(st.get("conditions"), REFUSED_CONDITION, True, VOLUME_BACKED, message,
                                     generation=server["metadata"].get("generation"))
    out.events.append(("Warning", "RebuildRefused", message))


def rebuild(ctx: Context, server, model: Server, vm, vmi, out: Outcome, *, starting: bool) -> bool:
    """Drive the rebuild status records (also an evacuation's, Nova's rebuild on another
    host) to its end: True while it is in progress."""
    st = out.status
    if st.get("status") != ServerState.REBUILD:
        return False
    ns, name = model.metadata.namespace, model.metadata.name
    uid = instance_id(server)
    if starting:
        # the VM's template now carries the new root disk (machine.ensure_vm): stop the guest;
        # the new VMI boots from the new disk once it is ready
        if vmi is not None and not (vmi.get("metadata") or {}).get("deletionTimestamp"):
            ctx.cluster.delete_vmi(ns, name)
            ctx.rebuilds[uid] = (vmi.get("metadata") or {}).get("uid")
        out.requeue_after = 1.0
        return True
    disks = out.disks
    if disks is not None and not disks.ready:
        st["taskState"] = REBUILD_BLOCK_DEVICE_MAPPING
        out.requeue_after = 1.0
        return True
    wanted = _root_source(vm)
    vmi_uid = ((vmi or {}).get("metadata") or {}).get("uid")
    if model.spec.power_state == DesiredPowerState.STOPPED:
        done = vmi is None  # a stopped server is rebuilt and stays stopped (Nova)
    else:
        done = state.vmi_phase(vmi) == "Running" and _root_source(vmi) == wanted and \
            vmi_uid != ctx.rebuilds.get(uid, "")
    if not done or (disks is not None and disks.superseded):
        st["taskState"] = TaskState.REBUILD_SPAWNING
        out.requeue_after = 1.0
        return True
    ctx.rebuilds.pop(uid, None)
    st["taskState"] = None
    return False


def rebuild_failed(ctx: Context, server, model: Server, out: Outcome, exc: DiskError, starting: bool) -> None:
    """The new root disk (or another block device) cannot be made: ERROR, as Nova leaves
    a server whose rebuild failed. When it fails as the rebuild starts, nothing has been
    touched yet: the request is not recorded as done, so it is tried again when the server
    or what it references changes."""
    st = out.status
    if starting:
        stored = server.get("status") or {}
        for key in ("imageName", "lastRebuildRequestId", "rootDisk"):
            st[key] = stored.get(key)
    ctx.rebuilds.pop(instance_id(server), None)
    error(out, 500, f"Rebuild of {model.metadata.name} failed: {exc.message}", reason="RebuildFailed")


def _root_source(obj: Mapping[str, Any] | None) -> str | None:
    """What a VM's template (or a VMI) boots from: the root DataVolume / PVC name, or the
    containerDisk image (compared by name only: KubeVirt adds defaults to a VMI's volumes)."""
    spec = (obj or {}).get("spec") or {}
    if "template" in spec:
        spec = spec["template"].get("spec") or {}
    for volume in spec.get("volumes") or []:
        if volume.get("name") == ROOT_DISK:
            return (volume.get("dataVolume") or {}).get("name") or \
                (volume.get("persistentVolumeClaim") or {}).get("claimName") or \
                (volume.get("containerDisk") or {}).get("image")
    return None
