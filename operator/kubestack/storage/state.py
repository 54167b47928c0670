"""Glance's and Cinder's status, read off the objects that realise them (pure).

Image: no DataVolume yet -> `queued`; import/clone scheduled -> `queued`; running -> `importing`
with the DataVolume's progress; an upload waiting for its data -> `uploading`; `Succeeded` ->
`active` (size = the golden PVC's capacity); `Failed` -> `killed` with the importer's message.

Volume: `creating` (or `downloading` while copying an image) until its DataVolume succeeds,
`error` when it fails; then `available`, `extending` while the PVC's capacity is below the
request, and the attachment states computed by `attachments`: `reserved` (a server references
the volume, its VM does not have it yet), `attaching` (the VM has it, the running guest not yet
— or not until the next restart when it was not hotplugged), `in-use`, `detaching` (the server
dropped it or is being deleted, its VM still holds it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kubernetes.utils import parse_quantity

from kubestack.storage import names, refs

GIB = 1024**3

QUEUED_PHASES = ("", "Pending", "ImportScheduled", "CloneScheduled", "SnapshotForSmartCloneInProgress",
                 "CSICloneInProgress", "ExpansionInProgress", "NamespaceTransferInProgress",
                 "PrepClaimInProgress", "RebindInProgress", "WaitForFirstConsumer",
                 "PendingPopulation", "UploadScheduled")
PROGRESS_PHASES = ("ImportInProgress", "CloneInProgress", "CloneFromSnapshotSourceInProgress",
                   "SmartClonePVCInProgress")


def _get(obj: Any, *path: str, default: Any = None) -> Any:
    for p in path:
        if not isinstance(obj, Mapping):
            return default
        obj = obj.get(p)
        if obj is None:
            return default
    return obj


def dv_failure(dv: Mapping[str, Any] | None) -> str | None:
    """The importer's message of a Failed DataVolume (or of one whose Running condition reports
    an error while it cannot proceed), else None."""
    if dv is None:
        return None
    status = dv.get("status") or {}
    conds = {c.get("type"): c for c in status.get("conditions") or []}
    if status.get("phase") == "Failed":
        for t in ("Running", "Ready", "Bound"):
            msg = (conds.get(t) or {}).get("message")
            if msg:
                return msg
        return "the DataVolume failed"
    return None


def quantity_bytes(q: Any) -> int | None:
    if q in (None, ""):
        return None
    return int(parse_quantity(str(q)))


def image_status(dv: Mapping[str, Any] | None, pvc: Mapping[str, Any] | None) -> dict[str, Any]:
    """The Image status fields (a merge-patch fragment; None removes a field)."""
    if dv is None:
        return {"status": "queued", "progress": None, "reason": None}
    status = dv.get("status") or {}
    phase = status.get("phase") or ""
    name = dv["metadata"]["name"]
    out: dict[str, Any] = {"dataVolume": name, "pvc": status.get("claimName") or name, "reason": None}
    failure = dv_failure(dv)
    if failure:
        out.update(status="killed", reason=failure, progress=None)
        return out
    if phase == "Succeeded":
        size = quantity_bytes(_get(pvc, "status", "capacity", "storage")) or \
            quantity_bytes(_get(dv, "spec", "storage", "resources", "requests", "storage"))
        out.update(status="active", progress="100.0%", size=size, virtualSize=size)
        return out
    if phase == "UploadReady":
        out.update(status="uploading", progress=None)
        return out
    if phase in PROGRESS_PHASES:
        progress = status.get("progress")
        out.update(status="importing", progress=progress if progress not in (None, "N/A") else "0.00%")
        return out
    out.update(status="queued", progress=None)
    running = next((c for c in status.get("conditions") or [] if c.get("type") == "Running"), None)
    if running and running.get("reason") in ("Error", "CloneWithoutSource", "SourcePVCNotReady",
                                             "SnapshotNotReady", "ErrExists") and running.get("message"):
        out["reason"] = running["message"]
    return out


# --------------------------------------------------------------------------- attachments


@dataclass
class Attachments:
    """The attachment part of a Volume's status."""

    entries: list[dict[str, Any]] = field(default_factory=list)
    state: str | None = None  # reserved | attaching | in-use | detaching, None: unattached

    @property
    def servers(self) -> list[str]:
        return [e["server"] for e in self.entries]

    def attached_to(self) -> str | None:
        if not self.entries:
            return None
        parts = []
        for e in self.entries:
            text = f"Attached to {e['server']}"
            if e.get("device"):
                text += f" on {e['device']}"
            if e.get("hotplugged") is False and self.state == "attaching":
                text += " (at next restart)"
            parts.append(text)
        return "; ".join(parts)


STATE_ORDER = ("detaching", "reserved", "attaching", "in-use")


def _vm_volume_for_claim(vm: Mapping[str, Any] | None, claim: str) -> Mapping[str, Any] | None:
    for v in _get(vm, "spec", "template", "spec", "volumes", default=[]) or []:
        src = v.get("persistentVolumeClaim") or v.get("dataVolume") or {}
        if src.get("claimName", src.get("name")) == claim:
            return v
    return None


def _vmi_volume_status(vmi: Mapping[str, Any] | None, name: str) -> Mapping[str, Any] | None:
    for s in _get(vmi, "status", "volumeStatus", default=[]) or []:
        if s.get("name") == name:
            return s
    return None


def _vmi_has(vmi: Mapping[str, Any] | None, claim: str) -> bool:
    for v in _get(vmi, "spec", "volumes", default=[]) or []:
        src = v.get("persistentVolumeClaim") or v.get("dataVolume") or {}
        if src.get("claimName", src.get("name")) == claim:
            return True
    return False


def _runs(vm: Mapping[str, Any] | None) -> bool:
    """The VM should be running (KubeVirt's runStrategy, or the older `running` flag)."""
    spec = (vm or {}).get("spec") or {}
    strategy = spec.get("runStrategy") or ("Always" if spec.get("running") else "Halted")
    return strategy in ("Always", "RerunOnFailure")


def vm_name_of(server: Mapping[str, Any]) -> str:
    return _get(server, "status", "virtualMachine") or server["metadata"]["name"]


def attachments(volume_name: str, servers: list[Mapping[str, Any]],
                vms: Mapping[str, Mapping[str, Any]], vmis: Mapping[str, Mapping[str, Any]],
                previous: list[Mapping[str, Any]] | None = None, now: str | None = None) -> Attachments:
    """Who has `volume_name` attached, from the Servers of its namespace and their VMs/VMIs
    (keyed by VM name). `previous` keeps each attachment's attachedAt."""
    claim = names.volume_pvc(volume_name)
    before = {a.get("server"): a for a in previous or []}
    out = Attachments()
    states: list[str] = []
    referenced = set()
    for server, use in refs.volume_users(servers, volume_name):
        sname = server["metadata"]["name"]
        referenced.add(vm_name_of(server))
        vm = vms.get(vm_name_of(server))
        vmi = vmis.get(vm_name_of(server))
        vm_volume = _vm_volume_for_claim(vm, claim)
        entry: dict[str, Any] = {"server": sname}
        if _get(server, "metadata", "deletionTimestamp"):
            state = "detaching" if vm is not None else None
            if state is None:
                continue
        elif vm_volume is None:
            state = "reserved"
        else:
            hot = bool((vm_volume.get("persistentVolumeClaim") or vm_volume.get("dataVolume") or {})
                       .get("hotpluggable"))
            vstatus = _vmi_volume_status(vmi, vm_volume["name"])
            phase = _get(vmi, "status", "phase", default="")
            running = phase == "Running"
            if vmi is None and _runs(vm):
                state = "attaching"  # the guest is about to start with it
            elif vmi is None or phase in ("Succeeded", "Failed"):
                state = "in-use"  # a stopped server still holds its volumes (Cinder: in-use)
            elif not running:
                state = "attaching"  # the guest is starting with it
            elif not _vmi_has(vmi, claim):
                state = "attaching"
                entry["hotplugged"] = False  # only at the next start of the guest
            elif hot and (vstatus or {}).get("phase") != "Ready":
                state = "attaching"
                entry["hotplugged"] = True
            else:
                state = "in-use"
                if hot:
                    entry["hotplugged"] = True
            if vstatus and vstatus.get("target"):
                entry["device"] = f"/dev/{vstatus['target']}"
        if use.device and "device" not in entry:
            entry["device"] = use.device
        old = before.get(sname) or {}
        if state == "in-use":
            attached_at = old.get("attachedAt") or now
            if attached_at:
                entry["attachedAt"] = attached_at
        states.append(state)
        out.entries.append(entry)
    # VMs that still hold the volume although no server references it any more: detaching
    for vm_name, vm in sorted(vms.items()):
        if vm_name in referenced or _vm_volume_for_claim(vm, claim) is None:
            continue
        server = _get(vm, "metadata", "labels", names.LABEL_SERVER) or vm_name
        out.entries.append({"server": server})
        states.append("detaching")
    if states:
        out.state = min(states, key=STATE_ORDER.index)
    return out


def volume_status(volume: Mapping[str, Any], dv: Mapping[str, Any] | None,
                  pvc: Mapping[str, Any] | None, att: Attachments) -> dict[str, Any]:
    """The Volume status fields (merge-patch fragment) apart from conditions."""
    spec = volume.get("spec") or {}
    source = spec.get("source") or {}
    bootable = spec.get("bootable")
    if bootable is None:
        bootable = bool(source.get("image"))
    out: dict[str, Any] = {
        "bootable": bootable,
        "attachments": att.entries,
        "attachedTo": att.attached_to(),
        "reason": None,
    }
    if pvc is not None:
        out["pvc"] = pvc["metadata"]["name"]
        out["volumeType"] = _get(pvc, "spec", "storageClassName")
    if dv is not None:
        out["dataVolume"] = dv["metadata"]["name"]
    failure = dv_failure(dv)
    if failure:
        out.update(status="error", reason=failure)
        return out
    if dv is None or _get(dv, "status", "phase") != "Succeeded" or _get(pvc, "status", "phase") != "Bound":
        phase = _get(dv, "status", "phase", default="")
        out["status"] = "downloading" if source.get("image") and phase in PROGRESS_PHASES else "creating"
        return out
    capacity = quantity_bytes(_get(pvc, "status", "capacity", "storage")) or 0
    requested = quantity_bytes(_get(pvc, "spec", "resources", "requests", "storage")) or 0
    out["size"] = max(capacity // GIB, 1) if capacity else None
    if int(spec.get("size") or 0) * GIB > capacity or requested > capacity:
        out["status"] = "extending"
        return out
    out["status"] = att.state or "available"
    return out
