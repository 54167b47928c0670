"""Server (Nova server): a virtual machine, realised as a KubeVirt VirtualMachine.

Lifecycle is declarative: ``spec.powerState`` starts/stops/pauses/suspends/shelves; a new
``spec.reboot.requestId`` asks for one reboot, a new ``spec.rebuild.requestId`` (or a
changed ``spec.image``) for a rebuild, a new ``spec.migrate.requestId`` for a (live)
migration; changing ``spec.flavor`` resizes, waiting in VERIFY_RESIZE until
``spec.confirmedFlavor == spec.flavor`` (or automatically with ``resizeConfirmation:
Auto``), and setting ``flavor`` back to the old one reverts.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from .common import (
    AGE, DNSLabel, Fault, IPAddress, KindInfo, KubeModel, ObjectName, ObjectRef, PrinterColumn,
    RequestId, Resource, Scope, StatusBase, cel, name_is_dns_label, rule,
)

USER_DATA_MAX = 65536  # Nova: 64 KiB of user data


class ServerState(StrEnum):
    """Nova's server status (``openstack server list`` Status column)."""

    BUILD = "BUILD"
    ACTIVE = "ACTIVE"
    SHUTOFF = "SHUTOFF"
    PAUSED = "PAUSED"
    SUSPENDED = "SUSPENDED"
    SHELVED = "SHELVED"
    SHELVED_OFFLOADED = "SHELVED_OFFLOADED"
    RESIZE = "RESIZE"
    VERIFY_RESIZE = "VERIFY_RESIZE"
    REVERT_RESIZE = "REVERT_RESIZE"
    REBOOT = "REBOOT"
    HARD_REBOOT = "HARD_REBOOT"
    MIGRATING = "MIGRATING"
    REBUILD = "REBUILD"
    ERROR = "ERROR"
    DELETED = "DELETED"


class TaskState(StrEnum):
    """Nova's task states (``OS-EXT-STS:task_state``); ``status.taskState`` is free text."""

    SCHEDULING = "scheduling"
    NETWORKING = "networking"
    BLOCK_DEVICE_MAPPING = "block_device_mapping"
    SPAWNING = "spawning"
    POWERING_OFF = "powering-off"
    POWERING_ON = "powering-on"
    PAUSING = "pausing"
    UNPAUSING = "unpausing"
    SUSPENDING = "suspending"
    RESUMING = "resuming"
    REBOOTING = "rebooting"
    REBOOTING_HARD = "rebooting_hard"
    REBUILDING = "rebuilding"
    REBUILD_SPAWNING = "rebuild_spawning"
    RESIZE_PREP = "resize_prep"
    RESIZE_MIGRATING = "resize_migrating"
    RESIZE_MIGRATED = "resize_migrated"
    RESIZE_FINISH = "resize_finish"
    RESIZE_REVERTING = "resize_reverting"
    RESIZE_CONFIRMING = "resize_confirming"
    MIGRATING = "migrating"
    SHELVING = "shelving"
    SHELVING_OFFLOADING = "shelving_offloading"
    UNSHELVING = "unshelving"
    DELETING = "deleting"


class PowerState(StrEnum):
    """Nova's power state (``OS-EXT-STS:power_state``) as names."""

    NOSTATE = "NOSTATE"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    SHUTDOWN = "SHUTDOWN"
    CRASHED = "CRASHED"
    SUSPENDED = "SUSPENDED"


class VmState(StrEnum):
    """Nova's vm_state (``OS-EXT-STS:vm_state``)."""

    BUILDING = "building"
    ACTIVE = "active"
    STOPPED = "stopped"
    PAUSED = "paused"
    SUSPENDED = "suspended"
    SHELVED = "shelved"
    SHELVED_OFFLOADED = "shelved_offloaded"
    RESIZED = "resized"
    RESCUED = "rescued"
    SOFT_DELETED = "soft-delete"
    DELETED = "deleted"
    ERROR = "error"


class DesiredPowerState(StrEnum):
    RUNNING = "Running"
    STOPPED = "Stopped"
    PAUSED = "Paused"
    SUSPENDED = "Suspended"
    SHELVED = "Shelved"


class RebootType(StrEnum):
    SOFT = "SOFT"
    HARD = "HARD"


class ResizeConfirmation(StrEnum):
    MANUAL = "Manual"
    AUTO = "Auto"


class SourceType(StrEnum):
    IMAGE = "image"
    VOLUME = "volume"
    SNAPSHOT = "snapshot"
    BLANK = "blank"


class DestinationType(StrEnum):
    VOLUME = "volume"
    LOCAL = "local"


class DiskBus(StrEnum):
    VIRTIO = "virtio"
    SCSI = "scsi"
    SATA = "sata"


class DeviceType(StrEnum):
    DISK = "disk"
    CDROM = "cdrom"


class AddressType(StrEnum):
    FIXED = "fixed"
    FLOATING = "floating"


# ------------------------------------------------------------------------------ spec parts


class BootVolume(KubeModel):
    """Boot from a Cinder volume: an existing Volume, or a new one made from an Image."""

    model_config = KubeModel.model_config | {
        "json_schema_extra": cel(rule(
            "has(self.volume) != has(self.image)",
            "bootVolume needs exactly one of volume (an existing Volume) or image "
            "(create a new volume from this Image)")),
    }

    volume: ObjectName | None = Field(default=None, description="An existing Volume to boot from.")
    image: ObjectRef | None = Field(default=None, description="Create the boot volume from this Image.")
    size: int | None = Field(default=None, ge=1, le=65536,
                             description="Size in GiB of a volume created from an image.")
    volume_type: ObjectName | None = Field(default=None, description="StorageClass of a new volume.")
    delete_on_termination: bool = Field(
        default=False, description="Delete the volume with the server.")


class BlockDeviceMapping(KubeModel):
    """Nova block device mapping v2."""

    model_config = KubeModel.model_config | {
        "json_schema_extra": cel(
            rule("self.sourceType == 'blank' || has(self.name) || has(self.uuid)",
                 "a block device with sourceType image, volume or snapshot needs name (or uuid)"),
            rule("!(has(self.name) && has(self.uuid))",
                 "give either name or uuid of the source, not both"),
            rule("self.sourceType != 'blank' || has(self.volumeSize)",
                 "a blank block device needs volumeSize"),
            rule("self.destinationType != 'local' || self.sourceType in ['image', 'blank']",
                 "destinationType local is only possible with sourceType image or blank"),
            rule("self.sourceType != 'image' || self.destinationType != 'volume' || has(self.volumeSize)",
                 "volumeSize is required to create a volume from an image"),
        )
    }

    boot_index: int | None = Field(default=None, ge=-1, le=64,
                                   description="0 = the boot disk; absent or -1 = not bootable.")
    source_type: SourceType
    destination_type: DestinationType = DestinationType.VOLUME
    name: ObjectRef | None = Field(
        default=None, description="Name of the Image, Volume or VolumeSnapshot (per sourceType).")
    uuid: str | None = Field(default=None, max_length=64,
                             description="metadata.uid of the source object, as Nova's uuid.")
    volume_size: int | None = Field(default=None, ge=1, le=65536, description="GiB.")
    volume_type: ObjectName | None = None
    delete_on_termination: bool = False
    device_name: str | None = Field(default=None, max_length=32,
                                    pattern=r"^(/dev/)?[a-z]{2,3}[a-z]+$")
    device_type: DeviceType | None = None
    disk_bus: DiskBus | None = None
    guest_format: str | None = Field(default=None, max_length=16,
                                     description="Filesystem for a blank local disk, or 'swap'.")


class ServerNetwork(KubeModel):
    """One interface: on a Network (a new port), or an existing port."""

    model_config = KubeModel.model_config | {
        "json_schema_extra": cel(
            rule("has(self.network) || has(self.port)",
                 "each networks entry needs network or port"),
            rule("!(has(self.port) && has(self.fixedIp))",
                 "fixedIp cannot be combined with port: the port already has its addresses"),
        )
    }

    network: ObjectRef | None = Field(default=None, description="Network name (or namespace/name).")
    port: ObjectName | None = Field(default=None, description="An existing port to plug.")
    fixed_ip: IPAddress | None = Field(default=None, description="Request this fixed IP.")
    tag: str | None = Field(default=None, max_length=60, description="Device tag (Nova 2.32).")


class SecretKeyRef(KubeModel):
    name: ObjectName
    key: str = Field(default="userdata", min_length=1, max_length=253)


class SchedulerHints(KubeModel):
    same_host: list[ObjectName] = Field(default_factory=list, max_length=64,
                                        description="Servers to share a host with.")
    different_host: list[ObjectName] = Field(default_factory=list, max_length=64,
                                             description="Servers to avoid the hosts of.")
    group: ObjectName | None = Field(default=None, description="A ServerGroup (as spec.serverGroup).")
    query: str | None = Field(default=None, max_length=4096,
                              description="JsonFilter query, a JSON string as Nova takes it.")
    build_near_host_ip: IPAddress | None = None
    cidr: str | None = Field(default=None, max_length=4, pattern=r"^/[0-9]{1,3}$")


class RebootRequest(KubeModel):
    type: RebootType = RebootType.SOFT
    request_id: RequestId = Field(description="A new value asks for one more reboot.")


class RebuildRequest(KubeModel):
    request_id: RequestId = Field(description="A new value asks for one rebuild.")


class MigrateRequest(KubeModel):
    request_id: RequestId = Field(description="A new value asks for one migration.")
    live: bool = True
    host: str | None = Field(default=None, max_length=253, description="Target host; none = scheduler picks.")


class ServerSpec(KubeModel):
    """A Nova server."""

    model_config = KubeModel.model_config | {
        "json_schema_extra": cel(
            rule("(has(self.image) ? 1 : 0) + (has(self.bootVolume) ? 1 : 0) + "
                 "((has(self.blockDeviceMapping) && self.blockDeviceMapping.exists(b, "
                 "has(b.bootIndex) && b.bootIndex == 0)) ? 1 : 0) == 1",
                 "exactly one boot source is required: spec.image, spec.bootVolume, or a "
                 "blockDeviceMapping entry with bootIndex 0"),
            rule("!has(self.maxCount) || self.maxCount >= self.minCount",
                 "maxCount must be greater than or equal to minCount", field_path=".maxCount"),
            rule("!(has(self.userData) && has(self.userDataSecretRef))",
                 "give userData or userDataSecretRef, not both", field_path=".userData"),
            rule("!has(self.blockDeviceMapping) || "
                 "self.blockDeviceMapping.filter(b, has(b.bootIndex) && b.bootIndex == 0).size() <= 1",
                 "only one blockDeviceMapping entry may have bootIndex 0",
                 field_path=".blockDeviceMapping"),
        )
    }

    flavor: ObjectName = Field(description="Flavor name.")
    image: ObjectRef | None = Field(
        default=None,
        description="Image name, or namespace/name for another project's public or shared image. "
                    "Changing it rebuilds the server.")
    boot_volume: BootVolume | None = None
    block_device_mapping: list[BlockDeviceMapping] = Field(default_factory=list, max_length=26)
    networks: list[ServerNetwork] = Field(
        default_factory=list, max_length=16,
        description="Interfaces; empty means the pod network only.")
    security_groups: list[DNSLabel] = Field(
        default=["default"], max_length=32,
        json_schema_extra={"x-kubernetes-list-type": "set"})
    key_name: ObjectName | None = Field(default=None, description="A KeyPair in this project.")
    user_data: str | None = Field(
        default=None, max_length=USER_DATA_MAX,
        description="Plain-text cloud-config or script (at most 64 KiB, like Nova).")
    user_data_secret_ref: SecretKeyRef | None = None
    metadata: dict[str, str] = Field(
        default_factory=dict, max_length=128,
        description="Nova server metadata (key/value pairs visible to the guest).",
        json_schema_extra=cel(rule(
            "self.all(k, k.size() >= 1 && k.size() <= 255 && self[k].size() <= 255)",
            "metadata keys must be 1-255 characters and values at most 255 characters")))
    config_drive: bool = False
    hostname: DNSLabel | None = Field(default=None, description="Guest hostname; default: the name.")
    availability_zone: str | None = Field(default=None, max_length=255,
                                          description="Zone, or zone:host / zone::node as in Nova.")
    server_group: ObjectName | None = Field(default=None, description="A ServerGroup in this project.")
    scheduler_hints: SchedulerHints | None = None
    min_count: int = Field(default=1, ge=1, le=1000)
    max_count: int | None = Field(default=None, ge=1, le=1000)
    power_state: DesiredPowerState = DesiredPowerState.RUNNING
    reboot: RebootRequest | None = None
    rebuild: RebuildRequest | None = None
    migrate: MigrateRequest | None = None
    resize_confirmation: ResizeConfirmation = ResizeConfirmation.MANUAL
    confirmed_flavor: ObjectName | None = Field(
        default=None, description="Set equal to flavor to confirm a resize in VERIFY_RESIZE.")
    retain_root_disk: bool = Field(default=False, description="Keep the root disk PVC on delete.")
    description: str | None = Field(default=None, max_length=255)


# ---------------------------------------------------------------------------- status parts


class Address(KubeModel):
    addr: str
    version: int = 4
    type: AddressType = AddressType.FIXED
    mac_addr: str | None = None


class FlavorSnapshot(KubeModel):
    """The flavor in use, embedded as Nova does (microversion 2.47)."""

    name: str | None = None
    vcpus: int
    ram: int
    disk: int = 0
    ephemeral: int = 0
    swap: int = 0
    extra_specs: dict[str, str] = Field(default_factory=dict)


class ResizeStatus(KubeModel):
    old_flavor: str | None = None
    old_host: str | None = None
    new_flavor: str | None = None


class ServerStatus(StatusBase):
    status: ServerState | None = None
    task_state: str | None = None
    power_state: PowerState | None = None
    vm_state: VmState | None = None
    fault: Fault | None = None
    host: str | None = None
    availability_zone: str | None = None
    hypervisor_hostname: str | None = None
    addresses: dict[str, list[Address]] = Field(default_factory=dict)
    networks: str | None = Field(default=None, description="e.g. 'private=10.0.0.5, 172.24.4.3'.")
    image_name: str | None = None
    flavor_name: str | None = None
    flavor: FlavorSnapshot | None = None
    launched_at: datetime | None = None
    terminated_at: datetime | None = None
    virtual_machine: str | None = None
    root_disk: str | None = None
    resize: ResizeStatus | None = None
    last_reboot_request_id: str | None = None
    last_rebuild_request_id: str | None = None
    last_migrate_request_id: str | None = None
    migration_target: str | None = Field(
        default=None, description="The host a live migration in progress moves the server to: "
                                  "its room there stays claimed until the migration ends.")
    key_name: str | None = Field(default=None, description="The key pair whose key the server was given.")
    key_data: str | None = Field(
        default=None, max_length=16384,
        description="The public key injected at boot (Nova's key_data): the server keeps it, through "
                    "rebuild and unshelve too, when the key pair is deleted later.")


class Server(Resource):
    KIND = "Server"
    spec: ServerSpec
    status: ServerStatus = Field(default_factory=ServerStatus)


INFO = KindInfo(
    kind="Server", plural="servers", singular="server", short_names=("srv",),
    scope=Scope.NAMESPACED, spec_model=ServerSpec, status_model=ServerStatus,
    resource_model=Server,
    description="A Nova server: a virtual machine booted from an image or a volume.",
    root_validations=(name_is_dns_label("the VirtualMachine's name and the guest hostname"),),
    printer_columns=(
        PrinterColumn("Status", ".status.status"),
        PrinterColumn("Networks", ".status.networks"),
        PrinterColumn("Image", ".status.imageName"),
        PrinterColumn("Flavor", ".spec.flavor"),
        PrinterColumn("Host", ".status.host"),
        PrinterColumn("Task State", ".status.taskState", priority=1),
        PrinterColumn("Power State", ".status.powerState", priority=1),
        PrinterColumn("Zone", ".status.availabilityZone", priority=1),
        AGE,
    ),
)
