"""Deterministic names of what the storage code creates, so a retried handler never creates
twice. Suffixes keep the families apart: a name ending in `-root` never ends in `-volume`.

A server's root disk has one name per generation: `<server>-root` as first built, then
`<server>-root-<key>` for each rebuild, `<key>` being 8 hex digits derived from the Server's
uid and the metadata.generation that asked for the rebuild (`rebuild_key`). Only root disks
end in `-root` or `-root-<8 hex>`, so the families stay apart."""

from __future__ import annotations

import hashlib
import re

MAX_NAME = 253
MAX_LABEL = 63

LABEL_STORAGE = "kubestack.io/storage"     # image | volume | root-disk
LABEL_SERVER = "kubestack.io/server"
ANN_IMAGE = "kubestack.io/image"           # namespace/name of the Image a disk was made from
ANN_VOLUME = "kubestack.io/volume"
ANN_SERVER = "kubestack.io/server"
# on a root disk: the uid of the Server it was made for. The name alone cannot tell a new
# server's disk from one a deleted namesake kept (retainRootDisk) or is still deleting.
ANN_SERVER_UID = "kubestack.io/server-uid"
LABEL_SNAPSHOT_VOLUME = "kubestack.io/volume"  # on a VolumeSnapshot: the Volume it was taken of


def _fit(base: str, suffix: str, limit: int) -> str:
    name = f"{base}{suffix}"
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(base.encode()).hexdigest()[:10]
    keep = limit - len(suffix) - len(digest) - 1
    return f"{base[:keep].rstrip('-.')}-{digest}{suffix}"


def image_pvc(image: str) -> str:
    """The golden PVC (and its DataVolume) of an Image."""
    return _fit(image, "-image", MAX_NAME)


def volume_pvc(volume: str) -> str:
    """The PVC (and DataVolume) of a Volume."""
    return _fit(volume, "-volume", MAX_NAME)


def root_disk(server: str, rebuild: str | None = None) -> str:
    """The root disk DataVolume/PVC of a server booted from an image: `<server>-root`, or
    `<server>-root-<rebuild>` for the disk a rebuild made (`rebuild` from `rebuild_key`)."""
    if rebuild is not None and not _REBUILD_KEY.fullmatch(rebuild):
        raise ValueError(f"not a rebuild key: {rebuild!r}")
    return _fit(server, f"-root-{rebuild}" if rebuild else "-root", MAX_NAME)


_REBUILD_KEY = re.compile(r"[0-9a-f]{8}")


def rebuild_key(server_uid: str, generation: int | str | None) -> str:
    """The key of the root disk a rebuild makes: one per (Server uid, spec generation that
    asked for the rebuild). The generation makes every rebuild's disk new (a rebuild is always
    a spec change), the uid keeps a retained disk of a deleted namesake apart."""
    return hashlib.sha256(f"{server_uid}/{generation}".encode()).hexdigest()[:8]


def is_root_disk_of(server: str, name: str | None) -> bool:
    """Whether `name` is one of `server`'s root disk generations (and no other object's)."""
    if not name:
        return False
    if name == root_disk(server):
        return True
    key = name.rsplit("-", 1)[-1]
    return bool(_REBUILD_KEY.fullmatch(key)) and name == root_disk(server, key)


def boot_volume(server: str) -> str:
    """The Volume created for a server that boots from a new volume (bootVolume.image)."""
    return _fit(server, "-boot", MAX_NAME)


def bdm_volume(server: str, index: int) -> str:
    """The Volume created for blockDeviceMapping entry `index` (blank/image/snapshot source)."""
    return _fit(server, f"-bdm{index}", MAX_NAME)


def vm_volume_name(volume: str) -> str:
    """The disk/volume name of an attached Volume inside the KubeVirt VM (a DNS label)."""
    base = "vol-" + volume
    if "." in base:  # a DNS subdomain is not a label: keep it unique with a digest
        digest = hashlib.sha256(base.encode()).hexdigest()[:10]
        base = f"{base.replace('.', '-')[:MAX_LABEL - 11]}-{digest}"
    return _fit(base, "", MAX_LABEL)


ROOT_DISK_NAME = "rootdisk"
