"""Scheduler filters by Nova name. ``FILTERS`` maps each name to its class."""

from __future__ import annotations

from .affinity import (
    DifferentHostFilter, SameHostFilter, ServerGroupAffinityFilter,
    ServerGroupAntiAffinityFilter,
)
from .base import BaseFilter, StaticFilter
from .compute import AvailabilityZoneFilter, ComputeFilter
from .devices import NUMATopologyFilter, PciPassthroughFilter
from .extra_specs import AggregateInstanceExtraSpecsFilter, ComputeCapabilitiesFilter
from .image_properties import ImagePropertiesFilter
from .isolation import AggregateMultiTenancyIsolation, IsolatedHostsFilter
from .resources import CoreFilter, DiskFilter, ExtendedResourceFilter, RamFilter
from .traits import TraitsFilter

FILTERS: dict[str, type[BaseFilter]] = {
    cls.name: cls for cls in (
        CoreFilter, RamFilter, DiskFilter, ExtendedResourceFilter, TraitsFilter, ComputeFilter,
        AvailabilityZoneFilter, ComputeCapabilitiesFilter, AggregateInstanceExtraSpecsFilter,
        ImagePropertiesFilter, ServerGroupAffinityFilter, ServerGroupAntiAffinityFilter,
        SameHostFilter, DifferentHostFilter, AggregateMultiTenancyIsolation,
        IsolatedHostsFilter, PciPassthroughFilter, NUMATopologyFilter,
    )
}


def register_filter(cls: type[BaseFilter]) -> type[BaseFilter]:
    """Make a third-party filter available to ``enabled_filters`` (usable as decorator)."""
    FILTERS[cls.name] = cls
    return cls


__all__ = ["FILTERS", "BaseFilter", "StaticFilter", "register_filter", *sorted(FILTERS)]
