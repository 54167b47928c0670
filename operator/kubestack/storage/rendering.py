"""Manifests of what Glance and Cinder become on Kubernetes (pure: bodies in, bodies out).

* `image_data_volume`  the golden DataVolume of an Image: http -> `source.http.url`,
  registry -> `source.registry.url` (docker://...), upload -> `source.upload` (filled through
  CDI's upload proxy), from a volume or a server snapshot -> `source.pvc` (a CDI clone of that
  PVC). Sized from min_disk (or the upload's expected size), else `DEFAULT_IMAGE_GIB`.
* `root_disk_data_volume`  a server's root disk: a CDI clone of the image's golden PVC, across
  namespaces when the image belongs to another project (`source.pvc: {namespace, name}`);
  a rebuild makes a new one under its own name (`names.root_disk`).
* `volume_data_volume`  a Volume: blank, from an image (clone of the golden PVC), from a
  VolumeSnapshot (`source.snapshot`) or a clone of another Volume (`source.pvc`).
* `root_disk_entries` / `data_volume_entries`  KubeVirt `domain.devices.disks[]` and
  `volumes[]` entries: the root disk (dataVolume, persistentVolumeClaim or containerDisk) and
  attached volumes (persistentVolumeClaim with `hotpluggable: true` on a SCSI disk, KubeVirt's
  requirement for hotplug).

Every DataVolume asks for immediate binding (an image or a detached volume has no consumer
pod, so WaitForFirstConsumer classes would never provision it) and to be kept after completion
(the controllers read its phase and progress).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from kubestack.storage import names

CDI_API_VERSION = "cdi.kubevirt.io/v1beta1"
DEFAULT_IMAGE_GIB = 10
ANN_BIND_IMMEDIATE = "cdi.kubevirt.io/storage.bind.immediate.requested"
ANN_DELETE_AFTER_COMPLETION = "cdi.kubevirt.io/storage.deleteAfterCompletion"
GIB = 1024**3


class RenderError(ValueError):
    """The object cannot be rendered (e.g. an Image without a source)."""


def owner_reference(owner: Mapping[str, Any], controller: bool = True) -> dict[str, Any]:
    return {
        "apiVersion": owner["apiVersion"], "kind": owner["kind"],
        "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"],
        "controller": controller, "blockOwnerDeletion": True,
    }


def gib_quantity(size_gib: int) -> str:
    return f"{int(size_gib)}Gi"


def _data_volume(name: str, namespace: str, source: dict[str, Any], *, size_gib: int | None,
                 storage_class: str | None, labels: dict[str, str], annotations: dict[str, str],
                 owner: Mapping[str, Any] | None, content_type: str | None = None) -> dict[str, Any]:
    storage: dict[str, Any] = {}
    if size_gib:
        storage["resources"] = {"requests": {"storage": gib_quantity(size_gib)}}
    if storage_class:
        storage["storageClassName"] = storage_class
    metadata: dict[str, Any] = {
        "name": name, "namespace": namespace, "labels": labels,
        "annotations": {ANN_BIND_IMMEDIATE: "true", ANN_DELETE_AFTER_COMPLETION: "false", **annotations},
    }
    if owner is not None:
        metadata["ownerReferences"] = [owner_reference(owner)]
    spec: dict[str, Any] = {"source": source, "storage": storage}
    if content_type:
        spec["contentType"] = content_type
    return {"apiVersion": CDI_API_VERSION, "kind": "DataVolume", "metadata": metadata, "spec": spec}


# ------------------------------------------------------------------------------- images


def image_size_gib(spec: Mapping[str, Any]) -> int | None:
    """The golden PVC's size: min_disk, or the upload's expected size rounded up to GiB, else
    the default. None for a clone (CDI sizes a clone from its source)."""
    source = spec.get("source") or {}
    if source.get("volume") or source.get("serverSnapshot"):
        return int(spec["minDisk"]) if spec.get("minDisk") else None
    sizes = [int(spec.get("minDisk") or 0)]
    expected = (source.get("upload") or {}).get("expectedSize")
    if expected:
        sizes.append(math.ceil(int(expected) / GIB))
    size = max(sizes)
    return size if size > 0 else DEFAULT_IMAGE_GIB


def image_source(spec: Mapping[str, Any], source_pvc: tuple[str, str] | None = None) -> dict[str, Any]:
    """The DataVolume `source` for an Image spec. `source_pvc` (namespace, name) is the resolved
    PVC of a volume or server-snapshot source."""
    source = spec.get("source") or {}
    if source.get("url"):
        return {"http": {"url": source["url"]}}
    if source.get("registry"):
        return {"registry": {"url": source["registry"]}}
    if "upload" in source:
        return {"upload": {}}
    if source.get("volume") or source.get("serverSnapshot"):
        if source_pvc is None:
            raise RenderError("a volume or server snapshot source needs its PVC resolved")
        return {"pvc": {"namespace": source_pvc[0], "name": source_pvc[1]}}
    raise RenderError("the image has no source")


def image_data_volume(image: Mapping[str, Any], *, source_pvc: tuple[str, str] | None = None,
                      storage_class: str | None = None) -> dict[str, Any]:
    """The golden DataVolume `<image>-image`, owned by the Image."""
    meta = image["metadata"]
    spec = image.get("spec") or {}
    return _data_volume(
        names.image_pvc(meta["name"]), meta["namespace"], image_source(spec, source_pvc),
        size_gib=image_size_gib(spec), storage_class=storage_class,
        labels={names.LABEL_STORAGE: "image"},
        annotations={names.ANN_IMAGE: f"{meta['namespace']}/{meta['name']}"},
        owner=image if meta.get("uid") else None,
        content_type="kubevirt",
    )


# ------------------------------------------------------------------------------- server disks


def root_disk_data_volume(server: Mapping[str, Any], image: Mapping[str, Any], *,
                          size_gib: int | None = None, storage_class: str | None = None,
                          owned: bool = True, name: str | None = None) -> dict[str, Any]:
    """`<server>-root` (or `name`, a rebuilt root disk's): a clone of the image's golden PVC
    (cross-namespace when needed), at least the image's min_disk and `size_gib` (the flavor's
    root disk), owned by the Server unless it keeps its root disk (`retainRootDisk`)."""
    smeta = server["metadata"]
    imeta = image["metadata"]
    golden = (image.get("status") or {}).get("pvc") or names.image_pvc(imeta["name"])
    wanted = max(int((image.get("spec") or {}).get("minDisk") or 0), int(size_gib or 0))
    return _data_volume(
        name or names.root_disk(smeta["name"]), smeta["namespace"],
        {"pvc": {"namespace": imeta["namespace"], "name": golden}},
        size_gib=wanted or None, storage_class=storage_class,
        labels={names.LABEL_STORAGE: "root-disk", names.LABEL_SERVER: smeta["name"]},
        annotations={names.ANN_IMAGE: f"{imeta['namespace']}/{imeta['name']}",
                     **({names.ANN_SERVER_UID: smeta["uid"]} if smeta.get("uid") else {})},
        owner=server if owned and smeta.get("uid") else None,
    )


# ------------------------------------------------------------------------------- volumes


def blank_source() -> dict[str, Any]:
    return {"blank": {}}


def pvc_source(namespace: str, name: str) -> dict[str, Any]:
    return {"pvc": {"namespace": namespace, "name": name}}


def snapshot_source(namespace: str, name: str) -> dict[str, Any]:
    return {"snapshot": {"namespace": namespace, "name": name}}


def volume_data_volume(volume: Mapping[str, Any], source: dict[str, Any], *,
                       storage_class: str | None = None) -> dict[str, Any]:
    """`<volume>-volume`, owned by the Volume, of `spec.size` GiB in `storage_class` (the
    volume type; None: the cluster's default class)."""
    meta = volume["metadata"]
    spec = volume.get("spec") or {}
    annotations = {names.ANN_VOLUME: f"{meta['namespace']}/{meta['name']}"}
    image_ref = (spec.get("source") or {}).get("image")
    if image_ref:
        annotations[names.ANN_IMAGE] = image_ref if "/" in image_ref else f"{meta['namespace']}/{image_ref}"
    return _data_volume(
        names.volume_pvc(meta["name"]), meta["namespace"], source,
        size_gib=int(spec["size"]), storage_class=storage_class or spec.get("volumeType"),
        labels={names.LABEL_STORAGE: "volume"}, annotations=annotations,
        owner=volume if meta.get("uid") else None,
    )


# ------------------------------------------------------------------------------- KubeVirt


def root_disk_entries(*, data_volume: str | None = None, claim: str | None = None,
                      container_disk: str | None = None, bus: str = "virtio"
                      ) -> tuple[dict[str, Any], dict[str, Any]]:
    """(disk, volume) of the boot disk: exactly one of a DataVolume, a PVC (a boot Volume) or a
    registry image booted as containerDisk (`docker://` is dropped: KubeVirt takes the image
    reference itself)."""
    if sum(x is not None for x in (data_volume, claim, container_disk)) != 1:
        raise RenderError("the root disk needs exactly one of data_volume, claim, container_disk")
    disk = {"name": names.ROOT_DISK_NAME, "disk": {"bus": bus}, "bootOrder": 1}
    volume: dict[str, Any] = {"name": names.ROOT_DISK_NAME}
    if data_volume is not None:
        volume["dataVolume"] = {"name": data_volume}
    elif claim is not None:
        volume["persistentVolumeClaim"] = {"claimName": claim}
    else:
        volume["containerDisk"] = {"image": container_disk_image(container_disk)}
    return disk, volume


def container_disk_image(registry: str) -> str:
    """The image reference KubeVirt's containerDisk takes for a `docker://` registry source."""
    for prefix in ("docker://", "oci-archive://"):
        if registry.startswith(prefix):
            return registry[len(prefix):]
    return registry


def data_volume_entries(volume_name: str, claim: str, *, serial: str | None = None,
                        hotpluggable: bool = True) -> tuple[dict[str, Any], dict[str, Any]]:
    """(disk, volume) of an attached Volume. Hotpluggable volumes sit on the SCSI bus (the only
    bus KubeVirt hotplugs onto); the serial is the Volume's uid as Nova exposes the volume id,
    so the guest finds it under /dev/disk/by-id."""
    name = names.vm_volume_name(volume_name)
    disk: dict[str, Any] = {"name": name, "disk": {"bus": "scsi" if hotpluggable else "virtio"}}
    if serial:
        disk["serial"] = serial[:20]
    source: dict[str, Any] = {"claimName": claim}
    if hotpluggable:
        source["hotpluggable"] = True
    return disk, {"name": name, "persistentVolumeClaim": source}


def ephemeral_disk_entries(index: int, size_gib: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """(disk, volume) of a blank local block device (Nova's ephemeral disk): an emptyDisk."""
    name = f"ephemeral{index}"
    return ({"name": name, "disk": {"bus": "virtio"}},
            {"name": name, "emptyDisk": {"capacity": gib_quantity(size_gib)}})
