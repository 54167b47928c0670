"""Volume (Cinder volume): a PVC (a CDI DataVolume when made from an Image).

``size`` (GiB) may only grow (extend). ``source`` (an Image, a CSI VolumeSnapshot, or
another Volume to clone) is immutable; no source means a blank volume. ``volumeType`` is a
StorageClass (none: the default class).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from .common import (
    AGE, KindInfo, KubeModel, ObjectName, ObjectRef, PrinterColumn, Resource, Scope,
    StatusBase, cel, rule,
)


class VolumeState(StrEnum):
    """Cinder's volume status."""

    CREATING = "creating"
    AVAILABLE = "available"
    RESERVED = "reserved"
    ATTACHING = "attaching"
    IN_USE = "in-use"
    DETACHING = "detaching"
    EXTENDING = "extending"
    ERROR = "error"
    DELETING = "deleting"
    ERROR_DELETING = "error_deleting"
    ERROR_EXTENDING = "error_extending"
    DOWNLOADING = "downloading"
    MAINTENANCE = "maintenance"


class VolumeSource(KubeModel):
    """Exactly one of image, snapshot or volume."""

    model_config = KubeModel.model_config | {
        "json_schema_extra": cel(rule(
            "(has(self.image) ? 1 : 0) + (has(self.snapshot) ? 1 : 0) + (has(self.volume) ? 1 : 0) == 1",
            "source needs exactly one of image, snapshot or volume")),
    }

    image: ObjectRef | None = Field(default=None, description="Image to copy (bootable volume).")
    snapshot: ObjectName | None = Field(default=None, description="A CSI VolumeSnapshot's name.")
    volume: ObjectName | None = Field(default=None, description="A Volume to clone.")


class VolumeSpec(KubeModel):
    """A Cinder volume."""

    model_config = KubeModel.model_config | {
        "json_schema_extra": cel(
            rule("has(self.source) == has(oldSelf.source) && "
                 "(!has(self.source) || self.source == oldSelf.source)",
                 "source is immutable", field_path=".source", reason="FieldValueForbidden"),
            rule("has(self.volumeType) == has(oldSelf.volumeType) && "
                 "(!has(self.volumeType) || self.volumeType == oldSelf.volumeType)",
                 "volumeType is immutable (a PVC cannot change its StorageClass)",
                 field_path=".volumeType", reason="FieldValueForbidden"),
        )
    }

    size: int = Field(ge=1, le=65536, description="Size in GiB; may grow (extend), never shrink.",
                      json_schema_extra=cel(rule(
                          "self >= oldSelf", "size may only grow: volumes can be extended, not shrunk")))
    volume_type: ObjectName | None = Field(default=None, description="StorageClass name.")
    source: VolumeSource | None = None
    bootable: bool | None = Field(default=None,
                                  description="Default: true when created from an image.")
    multiattach: bool = False
    availability_zone: str | None = Field(default=None, max_length=255)
    description: str | None = Field(default=None, max_length=255)
    metadata: dict[str, str] = Field(
        default_factory=dict, max_length=128,
        json_schema_extra=cel(rule(
            "self.all(k, k.size() >= 1 && k.size() <= 255 && self[k].size() <= 255)",
            "metadata keys must be 1-255 characters and values at most 255 characters")))


class VolumeAttachment(KubeModel):
    server: str
    device: str | None = None
    attached_at: datetime | None = None
    hotplugged: bool | None = Field(default=None,
                                    description="False: attached at the server's next start.")


class VolumeStatus(StatusBase):
    status: VolumeState | None = None
    size: int | None = Field(default=None, description="Current size in GiB.")
    volume_type: str | None = None
    attachments: list[VolumeAttachment] = Field(default_factory=list)
    attached_to: str | None = Field(default=None, description="e.g. \"Attached to web on /dev/vdb\".")
    pvc: str | None = None
    data_volume: str | None = None
    bootable: bool | None = None
    reason: str | None = None


class Volume(Resource):
    KIND = "Volume"
    spec: VolumeSpec
    status: VolumeStatus = Field(default_factory=VolumeStatus)


INFO = KindInfo(
    kind="Volume", plural="volumes", singular="volume", short_names=("vol",),
    scope=Scope.NAMESPACED, spec_model=VolumeSpec, status_model=VolumeStatus,
    resource_model=Volume,
    description="A Cinder volume: block storage attachable to servers.",
    printer_columns=(
        PrinterColumn("Status", ".status.status"),
        PrinterColumn("Size", ".spec.size", "integer", "GiB"),
        PrinterColumn("Type", ".status.volumeType"),
        PrinterColumn("Bootable", ".status.bootable", "boolean"),
        PrinterColumn("Attached to", ".status.attachedTo"),
        AGE,
    ),
)
