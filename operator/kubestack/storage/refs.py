"""Who references what, and who may see what (pure).

A Server references Volumes through Nova's block device mappings: `spec.bootVolume.volume`
(its boot disk), `blockDeviceMapping` entries with `sourceType: volume` (bootIndex 0: the boot
disk; none or -1: an attached data volume), and the Volumes the operator created for it
(`<server>-boot`, `<server>-bdm<i>`). It references Images through `spec.image`,
`bootVolume.image` and `sourceType: image` mappings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kubestack.identity.access import may_reference, reference_fault, split_ref
from kubestack.storage import names


def parse_ref(ref: str, default_namespace: str) -> tuple[str, str]:
    """`name` or `namespace/name` -> (namespace, name)."""
    return split_ref(ref, default_namespace)


def image_visible_to(image: Mapping[str, Any], namespace: str) -> bool:
    """Glance's rule (`identity.access.may_reference`): the owner project always; public and
    community images everyone; shared images the projects in `members`; private images
    nobody else."""
    meta = image.get("metadata") or {}
    spec = image.get("spec") or {}
    return may_reference(namespace, meta.get("namespace", ""),
                         visibility=spec.get("visibility", "private"),
                         members=tuple(spec.get("members") or ()))


def image_invisible_reason(image: Mapping[str, Any], namespace: str) -> str:
    meta = image.get("metadata") or {}
    return reference_fault("Image", meta.get("name", ""), meta.get("namespace", ""),
                           visibility=(image.get("spec") or {}).get("visibility", "private"),
                           requester_namespace=namespace)


@dataclass(frozen=True)
class VolumeUse:
    """One Volume a Server references."""

    volume: str
    boot: bool
    device: str | None = None       # the BDM's deviceName, as Nova reports it
    created_for_server: bool = False
    delete_on_termination: bool = False


def _is_boot(bdm: Mapping[str, Any]) -> bool:
    return bdm.get("bootIndex") == 0


def server_volume_uses(server: Mapping[str, Any]) -> list[VolumeUse]:
    """The Volumes (in the server's namespace) `server` attaches, boot volume first."""
    spec = server.get("spec") or {}
    name = (server.get("metadata") or {}).get("name", "")
    out: list[VolumeUse] = []
    boot = spec.get("bootVolume")
    if boot:
        if boot.get("volume"):
            out.append(VolumeUse(boot["volume"], True, "/dev/vda", False,
                                 bool(boot.get("deleteOnTermination"))))
        elif boot.get("image"):
            out.append(VolumeUse(names.boot_volume(name), True, "/dev/vda", True,
                                 bool(boot.get("deleteOnTermination"))))
    for i, bdm in enumerate(spec.get("blockDeviceMapping") or []):
        if bdm.get("destinationType", "volume") != "volume":
            continue
        source = bdm.get("sourceType")
        device = _device(bdm.get("deviceName"))
        dot = bool(bdm.get("deleteOnTermination"))
        boot_entry = _is_boot(bdm)
        if source == "volume" and bdm.get("name"):
            out.append(VolumeUse(bdm["name"], boot_entry, device or ("/dev/vda" if boot_entry else None),
                                 False, dot))
        elif source in ("image", "snapshot", "blank"):
            vol = names.boot_volume(name) if boot_entry else names.bdm_volume(name, i)
            out.append(VolumeUse(vol, boot_entry, device or ("/dev/vda" if boot_entry else None), True, dot))
    out.sort(key=lambda u: not u.boot)
    return out


def _device(name: str | None) -> str | None:
    if not name:
        return None
    return name if name.startswith("/dev/") else f"/dev/{name}"


def boots_from_image(server: Mapping[str, Any]) -> bool:
    """Whether the server's root disk is a local copy of an Image (`spec.image`, or a mapping
    with bootIndex 0, sourceType image, destinationType local) rather than a Volume: what
    Nova calls an image-backed server, whose rebuild replaces the root disk."""
    spec = server.get("spec") or {}
    if spec.get("image"):
        return True
    boot = next((b for b in spec.get("blockDeviceMapping") or [] if _is_boot(b)), None)
    return bool(boot) and boot.get("sourceType") == "image" and boot.get("destinationType", "volume") == "local"


def server_image_refs(server: Mapping[str, Any]) -> set[tuple[str, str]]:
    """(namespace, name) of every Image `server` boots or builds a volume from."""
    meta = server.get("metadata") or {}
    ns = meta.get("namespace", "")
    spec = server.get("spec") or {}
    refs: list[str] = []
    if spec.get("image"):
        refs.append(spec["image"])
    boot = spec.get("bootVolume") or {}
    if boot.get("image"):
        refs.append(boot["image"])
    for bdm in spec.get("blockDeviceMapping") or []:
        if bdm.get("sourceType") == "image" and bdm.get("name"):
            refs.append(bdm["name"])
    return {parse_ref(r, ns) for r in refs}


def server_uses_image(server: Mapping[str, Any], namespace: str, name: str) -> bool:
    return (namespace, name) in server_image_refs(server)


def volume_users(servers: list[Mapping[str, Any]], volume: str) -> list[tuple[Mapping[str, Any], VolumeUse]]:
    """The servers (of the volume's namespace) that reference `volume`, with how."""
    out = []
    for server in servers:
        for use in server_volume_uses(server):
            if use.volume == volume:
                out.append((server, use))
                break
    return out
