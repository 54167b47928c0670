"""Deterministic names of what the storage code creates, so a retried handler never creates
twice. Suffixes keep the families apart: a name ending in `-root` never ends in `-volume`."""

from __future__ import annotations

import hashlib

MAX_NAME = 253
MAX_LABEL = 63

LABEL_STORAGE = "kubestack.io/storage"     # image | volume | root-disk
LABEL_SERVER = "kubestack.io/server"
ANN_IMAGE = "kubestack.io/image"           # namespace/name of the Image a disk was made from
ANN_VOLUME = "kubestack.io/volume"
ANN_SERVER = "kubestack.io/server"
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


def root_disk(server: str) -> str:
    """The root disk DataVolume/PVC of a server booted from an image."""
    return _fit(server, "-root", MAX_NAME)


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
