"""Scheduler configuration: Nova's ``[filter_scheduler]`` options under Nova's names.

Loadable from a plain dict (a ConfigMap's data, environment), where every value may be a
string: ``SchedulerConfig.from_dict({"enabled_filters": "ComputeFilter,RamFilter",
"ram_weight_multiplier": "-1.0"})``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

CONFIG_ENV = "KUBESTACK_SCHEDULER_CONFIG"

__all__ = [
    "DEFAULT_FILTERS", "PLACEMENT_FILTERS", "DEFAULT_WEIGHERS", "PciAlias", "SchedulerConfig",
]

#: The Placement stage: always run first, whatever ``enabled_filters`` says, because the
#: claim must never exceed capacity x allocation ratio and Placement's required/forbidden
#: traits always apply (Nova cannot switch Placement off).
PLACEMENT_FILTERS = ("CoreFilter", "RamFilter", "DiskFilter", "ExtendedResourceFilter", "TraitsFilter")

#: Nova's default filters plus the ones the project enables by default.
DEFAULT_FILTERS = (
    "ComputeFilter",
    "AvailabilityZoneFilter",
    "ComputeCapabilitiesFilter",
    "AggregateInstanceExtraSpecsFilter",
    "ImagePropertiesFilter",
    "ServerGroupAntiAffinityFilter",
    "ServerGroupAffinityFilter",
    "SameHostFilter",
    "DifferentHostFilter",
)

DEFAULT_WEIGHERS = (
    "RAMWeigher", "CPUWeigher", "DiskWeigher", "IoOpsWeigher", "NumInstancesWeigher",
    "ServerGroupSoftAffinityWeigher", "ServerGroupSoftAntiAffinityWeigher",
    "BuildFailureWeigher", "ImagePropertiesWeigher",
)


class PciAlias(BaseModel):
    """Nova's ``[pci] alias``, Kubernetes-style: a device plugin resource and the node
    labels that select the device model (e.g. GPU feature discovery's
    ``nvidia.com/gpu.product``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    resource: str
    labels: dict[str, str] = Field(default_factory=dict)


class SchedulerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled_filters: tuple[str, ...] = DEFAULT_FILTERS
    enabled_weighers: tuple[str, ...] = DEFAULT_WEIGHERS

    # Weigher multipliers (Nova defaults). Negative RAM/CPU/disk multipliers stack.
    ram_weight_multiplier: float = 1.0
    cpu_weight_multiplier: float = 1.0
    disk_weight_multiplier: float = 1.0
    io_ops_weight_multiplier: float = -1.0
    num_instances_weight_multiplier: float = 0.0
    soft_affinity_weight_multiplier: float = Field(default=1.0, ge=0)
    soft_anti_affinity_weight_multiplier: float = Field(default=1.0, ge=0)
    build_failure_weight_multiplier: float = 1000000.0
    image_props_weight_multiplier: float = Field(default=0.0, ge=0)
    #: Multiplier overrides by weigher name (also how third-party weighers get theirs).
    weight_multipliers: dict[str, float] = Field(default_factory=dict)
    #: Per image property weight for ImagePropertiesWeigher (unlisted properties weigh 1).
    image_props_weight_setting: dict[str, float] = Field(default_factory=dict)

    host_subset_size: int = Field(default=1, ge=1)
    #: Nova's ``[scheduler] max_attempts``: the selected host plus ``max_attempts - 1``
    #: alternates per instance.
    max_attempts: int = Field(default=3, ge=1)

    cpu_allocation_ratio: float = Field(default=4.0, gt=0)
    ram_allocation_ratio: float = Field(default=1.0, gt=0)
    disk_allocation_ratio: float = Field(default=1.0, gt=0)
    #: Reserved on every host on top of what kubelet already keeps out of ``allocatable``
    #: (kube-reserved / system-reserved), hence 0 by default rather than Nova's 512 MB.
    reserved_host_cpus: float = Field(default=0.0, ge=0)
    reserved_host_memory_mb: int = Field(default=0, ge=0)
    reserved_host_disk_mb: int = Field(default=0, ge=0)

    default_availability_zone: str = "nova"
    #: Taint keys whose NoSchedule/NoExecute effect ComputeFilter ignores.
    tolerated_taints: tuple[str, ...] = ()

    isolated_hosts: tuple[str, ...] = ()
    isolated_images: tuple[str, ...] = ()
    restrict_isolated_hosts_to_isolated_images: bool = True

    pci_aliases: dict[str, PciAlias] = Field(default_factory=dict)
    #: Placement resource classes in ``resources:<RC>`` extra specs that name a Kubernetes
    #: extended resource; any other ``resources:<name>`` is taken as the resource's own name.
    resource_classes: dict[str, str] = Field(
        default_factory=lambda: {"VGPU": "nvidia.com/gpu", "PGPU": "nvidia.com/gpu"})

    @field_validator("enabled_filters", "enabled_weighers", "tolerated_taints",
                     "isolated_hosts", "isolated_images", mode="before")
    @classmethod
    def _split_csv(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("pci_aliases", "image_props_weight_setting", "resource_classes",
                     "weight_multipliers",
                     mode="before")
    @classmethod
    def _json_mapping(cls, value: Any) -> Any:
        if isinstance(value, str):
            return json.loads(value) if value.strip() else {}
        return value

    @model_validator(mode="after")
    def _known_names(self) -> SchedulerConfig:
        from .filters import FILTERS
        from .weighers import WEIGHERS

        unknown = [n for n in self.enabled_filters if n not in FILTERS]
        if unknown:
            raise ValueError(f"unknown filters {unknown}; known: {sorted(FILTERS)}")
        unknown = [n for n in self.enabled_weighers if n not in WEIGHERS]
        if unknown:
            raise ValueError(f"unknown weighers {unknown}; known: {sorted(WEIGHERS)}")
        if len(set(self.enabled_filters)) != len(self.enabled_filters):
            raise ValueError("enabled_filters lists a filter twice")
        return self

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> SchedulerConfig:
        """Build from a ConfigMap-like mapping (string values are parsed)."""
        return cls.model_validate(dict(data or {}))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> SchedulerConfig:
        """The operator's configuration: the YAML file ``$KUBESTACK_SCHEDULER_CONFIG`` names
        (the chart mounts its ConfigMap there), else the defaults. The CLI reads the same."""
        path = environ.get(CONFIG_ENV)
        if not path or not os.path.exists(path):
            return cls()
        import yaml

        with open(path) as f:
            return cls.model_validate(yaml.safe_load(f) or {})

    @property
    def filter_pipeline(self) -> tuple[str, ...]:
        """The filters in the order they run: the Placement stage, then the enabled ones."""
        rest = tuple(n for n in self.enabled_filters if n not in PLACEMENT_FILTERS)
        return PLACEMENT_FILTERS + rest

    def allocation_key(self) -> tuple:
        """What the host cache needs to turn inventory into capacity."""
        return (self.cpu_allocation_ratio, self.ram_allocation_ratio,
                self.disk_allocation_ratio, self.reserved_host_cpus,
                self.reserved_host_memory_mb, self.reserved_host_disk_mb,
                self.default_availability_zone)
