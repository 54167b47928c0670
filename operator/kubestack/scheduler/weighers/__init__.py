"""Scheduler weighers by Nova name. ``WEIGHERS`` maps each name to its class."""

from __future__ import annotations

from .base import BaseWeigher, normalize
from .builtin import (
    BuildFailureWeigher, CPUWeigher, DiskWeigher, ImagePropertiesWeigher, IoOpsWeigher,
    NumInstancesWeigher, RAMWeigher, ServerGroupSoftAffinityWeigher,
    ServerGroupSoftAntiAffinityWeigher,
)

WEIGHERS: dict[str, type[BaseWeigher]] = {
    cls.name: cls for cls in (
        RAMWeigher, CPUWeigher, DiskWeigher, IoOpsWeigher, NumInstancesWeigher,
        ServerGroupSoftAffinityWeigher, ServerGroupSoftAntiAffinityWeigher,
        BuildFailureWeigher, ImagePropertiesWeigher,
    )
}


def register_weigher(cls: type[BaseWeigher]) -> type[BaseWeigher]:
    """Make a third-party weigher available to ``enabled_weighers``."""
    WEIGHERS[cls.name] = cls
    return cls


__all__ = ["WEIGHERS", "BaseWeigher", "normalize", "register_weigher", *sorted(WEIGHERS)]
