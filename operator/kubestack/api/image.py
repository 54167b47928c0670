"""Image (Glance image): a bootable disk image, backed by a golden PVC filled by CDI.

Exactly one ``spec.source``: an http(s) ``url``, a container ``registry`` image
(``docker://...``), an ``upload`` (``kubestack image create --file``), a ``serverSnapshot``
or a ``volume``. The source is immutable. ``visibility`` decides who may boot it: private
(this project), shared (also the projects in ``members``), community or public (everyone).
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from .common import (
    AGE, DNSLabel, KindInfo, KubeModel, ObjectName, PrinterColumn, Resource, Scope,
    StatusBase, cel, immutable, rule,
)


class DiskFormat(StrEnum):
    QCOW2 = "qcow2"
    RAW = "raw"
    ISO = "iso"
    VMDK = "vmdk"
    VDI = "vdi"
    VHD = "vhd"
    VHDX = "vhdx"
    AMI = "ami"
    ARI = "ari"
    AKI = "aki"
    PLOOP = "ploop"


class ContainerFormat(StrEnum):
    BARE = "bare"
    OVF = "ovf"
    OVA = "ova"
    DOCKER = "docker"
    AMI = "ami"
    ARI = "ari"
    AKI = "aki"
    COMPRESSED = "compressed"


class Visibility(StrEnum):
    PRIVATE = "private"
    SHARED = "shared"
    COMMUNITY = "community"
    PUBLIC = "public"


class ImageState(StrEnum):
    """Glance's image status."""

    QUEUED = "queued"
    SAVING = "saving"
    IMPORTING = "importing"
    UPLOADING = "uploading"
    ACTIVE = "active"
    KILLED = "killed"
    DELETED = "deleted"
    DEACTIVATED = "deactivated"
    PENDING_DELETE = "pending_delete"


class UploadSource(KubeModel):
    """Data is streamed in by ``kubestack image create --file`` (CDI's upload proxy)."""

    expected_size: int | None = Field(default=None, ge=1, description="Bytes, if known.")


class ServerSnapshotSource(KubeModel):
    server: ObjectName = Field(description="The Server whose root disk is snapshotted.")


class VolumeImageSource(KubeModel):
    name: ObjectName = Field(description="The Volume to copy (openstack image create --volume).")


class ImageSource(KubeModel):
    """Where the image's data comes from: exactly one field."""

    model_config = KubeModel.model_config | {
        "json_schema_extra": cel(rule(
            "(has(self.url) ? 1 : 0) + (has(self.registry) ? 1 : 0) + (has(self.upload) ? 1 : 0)"
            " + (has(self.serverSnapshot) ? 1 : 0) + (has(self.volume) ? 1 : 0) == 1",
            "source needs exactly one of url, registry, upload, serverSnapshot or volume")),
    }

    url: str | None = Field(
        default=None, max_length=2048, description="http(s) URL to import from.",
        json_schema_extra=cel(rule(
            "isURL(self) && url(self).getScheme() in ['http', 'https'] && url(self).getHost() != ''",
            "url must be an absolute http:// or https:// URL")))
    registry: str | None = Field(
        default=None, max_length=2048,
        description="Container disk image, e.g. docker://quay.io/containerdisks/fedora:40.",
        json_schema_extra=cel(rule(
            "self.startsWith('docker://') || self.startsWith('oci-archive://')",
            "registry must start with docker:// (or oci-archive://), e.g. "
            "docker://quay.io/containerdisks/fedora:40")))
    upload: UploadSource | None = None
    server_snapshot: ServerSnapshotSource | None = None
    volume: VolumeImageSource | None = None


class ImageSpec(KubeModel):
    """A Glance image."""

    model_config = KubeModel.model_config | {
        "json_schema_extra": cel(
            rule("!has(self.members) || size(self.members) == 0 || self.visibility == 'shared'",
                 "members may only be set when visibility is shared", field_path=".members"),
            rule("!has(self.containerDisk) || !self.containerDisk || has(self.source.registry)",
                 "containerDisk is only possible for a registry source", field_path=".containerDisk"),
        )
    }

    source: ImageSource = Field(json_schema_extra=cel(immutable("source")))
    disk_format: DiskFormat = DiskFormat.QCOW2
    container_format: ContainerFormat = ContainerFormat.BARE
    min_disk: int = Field(default=0, ge=0, le=65536, description="GiB the root disk needs.")
    min_ram: int = Field(default=0, ge=0, le=2**31 - 1, description="MiB of RAM needed.")
    visibility: Visibility = Visibility.PRIVATE
    members: list[DNSLabel] = Field(
        default_factory=list, max_length=512,
        description="Projects an image with visibility shared is shared with.",
        json_schema_extra={"x-kubernetes-list-type": "set"})
    protected: bool = Field(default=False, description="Refuse deletion while set.")
    tags: list[str] = Field(
        default_factory=list, max_length=128,
        json_schema_extra={"x-kubernetes-list-type": "set",
                           **cel(rule("self.all(t, t.size() >= 1 && t.size() <= 255)",
                                      "tags must be 1-255 characters"))})
    properties: dict[str, str] = Field(
        default_factory=dict, max_length=128,
        description="Glance properties: architecture, os_distro, os_version, hw_disk_bus, "
                    "hw_firmware_type, hw_machine_type, hypervisor_type, ...",
        json_schema_extra=cel(rule(
            "self.all(k, k.size() >= 1 && k.size() <= 255 && self[k].size() <= 65535)",
            "property names must be 1-255 characters"),
            rule("self.all(k, !k.startsWith('trait:') || self[k] == 'required')",
                 "an image can only require a trait: trait:<NAME> must be 'required'")))
    container_disk: bool = Field(
        default=False,
        description="Boot a registry image directly as a KubeVirt containerDisk (no PVC).")
    description: str | None = Field(default=None, max_length=1024)


class ImageStatus(StatusBase):
    status: ImageState | None = None
    size: int | None = Field(default=None, description="Bytes of image data.")
    virtual_size: int | None = Field(default=None, description="Bytes of the virtual disk.")
    checksum: str | None = None
    os_hash_algo: str | None = None
    os_hash_value: str | None = None
    progress: str | None = Field(default=None, description="Import progress, e.g. '45.2%'.")
    reason: str | None = Field(default=None, description="Why the image was killed.")
    pvc: str | None = Field(default=None, description="The golden PVC holding the data.")
    data_volume: str | None = None
    container_disk: str | None = Field(default=None, description="Registry image booted directly.")


class Image(Resource):
    KIND = "Image"
    spec: ImageSpec
    status: ImageStatus = Field(default_factory=ImageStatus)


INFO = KindInfo(
    kind="Image", plural="images", singular="image", short_names=("img",),
    scope=Scope.NAMESPACED, spec_model=ImageSpec, status_model=ImageStatus,
    resource_model=Image,
    description="A Glance image: a disk image servers and volumes are created from.",
    # Glance answers 403 to deleting a protected image: refused at admission here too, rather
    # than left Terminating by the finalizer and deleted the moment protected is unset
    deletion_rules=({
        "expression": "!(has(oldObject.spec.protected) && oldObject.spec.protected)",
        "messageExpression": "'Image ' + oldObject.metadata.name + ' is protected and cannot be deleted "
                             "(unset spec.protected first).'",
    },),
    printer_columns=(
        PrinterColumn("Status", ".status.status"),
        PrinterColumn("Visibility", ".spec.visibility"),
        PrinterColumn("Disk Format", ".spec.diskFormat"),
        PrinterColumn("Size", ".status.size", "integer", "Bytes"),
        PrinterColumn("Progress", ".status.progress", priority=1),
        AGE,
    ),
)
