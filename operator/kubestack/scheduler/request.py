"""What a boot asks of the scheduler: Nova's RequestSpec, and the usage a claim records."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["Flavor", "ServerGroup", "SchedulerHints", "RequestSpec", "Usage",
           "VCPU", "MEMORY_MB", "DISK_GB"]

VCPU, MEMORY_MB, DISK_GB = "VCPU", "MEMORY_MB", "DISK_GB"


@dataclass(frozen=True)
class Usage:
    """Resources one instance holds on its host (what Placement would allocate)."""

    vcpus: int = 0
    ram_mb: int = 0
    disk_gb: int = 0
    #: Kubernetes extended resources, e.g. ``(("nvidia.com/gpu", 1),)``, sorted by name.
    extended: tuple[tuple[str, int], ...] = ()

    @classmethod
    def of(cls, value: Usage | Flavor | Mapping[str, Any]) -> Usage:
        """Accept a Usage, a Flavor (its plain size) or a mapping with the same keys."""
        if isinstance(value, Usage):
            return value
        if isinstance(value, Flavor):
            return RequestSpec(flavor=value).usage()
        data = dict(value)
        ext = data.pop("extended", {}) or {}
        items = ext.items() if isinstance(ext, Mapping) else ext
        return cls(vcpus=int(data.pop("vcpus", 0)), ram_mb=int(data.pop("ram_mb", 0)),
                   disk_gb=int(data.pop("disk_gb", 0)),
                   extended=tuple(sorted((str(k), int(v)) for k, v in items if int(v))))

    def resources(self) -> dict[str, int]:
        """Placement-style amounts by resource class (zero amounts omitted)."""
        out = {VCPU: self.vcpus, MEMORY_MB: self.ram_mb, DISK_GB: self.disk_gb}
        out.update(self.extended)
        return {k: v for k, v in out.items() if v}


class Flavor(BaseModel):
    """Nova flavor fields the scheduler reads."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "custom"
    vcpus: int = Field(ge=0)
    ram_mb: int = Field(ge=0)
    disk_gb: int = Field(default=0, ge=0)
    ephemeral_gb: int = Field(default=0, ge=0)
    swap_mb: int = Field(default=0, ge=0)
    extra_specs: dict[str, str] = Field(default_factory=dict)

    @field_validator("extra_specs", mode="before")
    @classmethod
    def _stringify(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            return {str(k): str(v) for k, v in value.items()}
        return value


class ServerGroup(BaseModel):
    """A Nova server group as the Server controller resolved it.

    ``name`` is the group's identity inside the host cache (use something unique across
    namespaces, e.g. ``"<namespace>/<name>"`` or the object's uid). ``members`` are instance
    ids; ``hosts`` are hosts of members the cache may not know about (one entry per member).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    policy: Literal["affinity", "anti-affinity", "soft-affinity", "soft-anti-affinity"]
    max_server_per_host: int | None = Field(default=None, ge=1)
    members: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _rules(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and "rules" in data:
            data = dict(data)
            rules = data.pop("rules") or {}
            if "max_server_per_host" in rules:
                data.setdefault("max_server_per_host", int(rules["max_server_per_host"]))
        return data

    @model_validator(mode="after")
    def _rule_only_for_anti_affinity(self) -> ServerGroup:
        if self.max_server_per_host is not None and self.policy != "anti-affinity":
            raise ValueError("max_server_per_host is only allowed with policy anti-affinity")
        return self


class SchedulerHints(BaseModel):
    """``openstack server create --hint``: same_host / different_host / group."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    same_host: tuple[str, ...] = ()
    different_host: tuple[str, ...] = ()
    group: str | None = None

    @field_validator("same_host", "different_host", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        if isinstance(value, str):
            return (value,)
        return value


class RequestSpec(BaseModel):
    """One boot request (possibly a multi-create of ``min_count..max_count`` instances)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    flavor: Flavor
    image_id: str | None = None
    image_properties: dict[str, str] = Field(default_factory=dict)
    project: str = ""
    availability_zone: str | None = None
    server_group: ServerGroup | None = None
    scheduler_hints: SchedulerHints = Field(default_factory=SchedulerHints)
    num_instances: int = Field(default=1, ge=1)
    min_count: int | None = Field(default=None, ge=1)
    max_count: int | None = Field(default=None, ge=1)
    instance_ids: tuple[str, ...] = ()
    #: Boot from volume: the root disk is a Cinder volume, not local disk (Nova excludes
    #: root_gb from DISK_GB then).
    is_bfv: bool = False

    @field_validator("image_properties", mode="before")
    @classmethod
    def _stringify(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            return {str(k): str(v) for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _counts_and_group(self) -> RequestSpec:
        if self.min_count is not None and self.max_count is not None \
                and self.min_count > self.max_count:
            raise ValueError("min_count must not exceed max_count")
        if self.instance_ids and len(self.instance_ids) < self.max_instances:
            raise ValueError(f"{self.max_instances} instances requested but only "
                             f"{len(self.instance_ids)} instance_ids given")
        if len(set(self.instance_ids)) != len(self.instance_ids):
            raise ValueError("instance_ids must be unique")
        hint = self.scheduler_hints.group
        if hint is not None:
            if self.server_group is None:
                raise ValueError("scheduler hint 'group' needs the resolved server_group "
                                 "(policy and members)")
            if hint != self.server_group.name:
                raise ValueError(f"scheduler hint group {hint!r} does not match "
                                 f"server_group {self.server_group.name!r}")
        return self

    @property
    def max_instances(self) -> int:
        if self.max_count is not None:
            return self.max_count
        return max(self.num_instances, self.min_count or 0)

    @property
    def min_instances(self) -> int:
        return self.min_count if self.min_count is not None else self.max_instances

    def usage(self, config: Any = None) -> Usage:
        """Resources one instance claims (Nova's ``resources_from_request_spec``).

        DISK_GB is root (unless boot-from-volume) + ephemeral + swap rounded up to GiB.
        ``resources:VCPU|MEMORY_MB|DISK_GB=N`` override the flavor; other ``resources:X=N``
        request extended resource X (or the one ``config.resource_classes`` maps X to);
        ``pci_passthrough:alias=name:count[,name:count]`` requests each alias's resource.
        """
        flavor = self.flavor
        vcpus, ram = flavor.vcpus, flavor.ram_mb
        disk = (0 if self.is_bfv else flavor.disk_gb) + flavor.ephemeral_gb \
            + int(math.ceil(flavor.swap_mb / 1024))
        extended: dict[str, int] = {}
        classes = getattr(config, "resource_classes", None) or {}
        aliases = getattr(config, "pci_aliases", None) or {}
        for key, value in flavor.extra_specs.items():
            if key.startswith("resources:"):
                rc = key.split(":", 1)[1]
                amount = int(value)
                if rc == VCPU:
                    vcpus = amount
                elif rc == MEMORY_MB:
                    ram = amount
                elif rc == DISK_GB:
                    disk = amount
                else:
                    name = classes.get(rc, rc)
                    extended[name] = extended.get(name, 0) + amount
            elif key == "pci_passthrough:alias":
                for alias, count in parse_pci_alias_spec(value):
                    spec = aliases.get(alias)
                    if spec is None:
                        raise ValueError(f"unknown PCI alias {alias!r}")
                    extended[spec.resource] = extended.get(spec.resource, 0) + count
        return Usage(vcpus=vcpus, ram_mb=ram, disk_gb=disk,
                     extended=tuple(sorted((k, v) for k, v in extended.items() if v)))


def parse_pci_alias_spec(value: str) -> list[tuple[str, int]]:
    """``"a1:2,a2"`` -> ``[("a1", 2), ("a2", 1)]`` (Nova's ``pci_passthrough:alias``)."""
    out = []
    for part in value.split(","):
        part = part.strip()
        if not part:
            continue
        name, _, count = part.partition(":")
        out.append((name.strip(), int(count) if count.strip() else 1))
    return out

