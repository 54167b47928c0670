"""Nova's weighers, by Nova's names, with Nova's default multipliers."""

from __future__ import annotations

from ..context import SchedulingContext
from .base import BaseWeigher

__all__ = [
    "RAMWeigher", "CPUWeigher", "DiskWeigher", "IoOpsWeigher", "NumInstancesWeigher",
    "ServerGroupSoftAffinityWeigher", "ServerGroupSoftAntiAffinityWeigher",
    "BuildFailureWeigher", "ImagePropertiesWeigher",
]


class RAMWeigher(BaseWeigher):
    """Free RAM in MiB (positive multiplier spreads, negative stacks)."""

    name, option, attribute = "RAMWeigher", "ram_weight_multiplier", "free_ram_mb"


class CPUWeigher(BaseWeigher):
    """Free vCPUs (vCPUs x cpu_allocation_ratio - reserved - used)."""

    name, option, attribute = "CPUWeigher", "cpu_weight_multiplier", "free_vcpus"


class DiskWeigher(BaseWeigher):
    """Free local disk in MiB."""

    name, option, attribute = "DiskWeigher", "disk_weight_multiplier", "free_disk_mb"


class IoOpsWeigher(BaseWeigher):
    """Servers still building on the host (Nova's num_io_ops); default -1.0 prefers idle
    hosts."""

    name, option, attribute = "IoOpsWeigher", "io_ops_weight_multiplier", "num_io_ops"


class NumInstancesWeigher(BaseWeigher):
    """Number of servers on the host (default multiplier 0.0: off)."""

    name, option, attribute = "NumInstancesWeigher", "num_instances_weight_multiplier", \
        "num_instances"


def _group_sparse(ctx: SchedulingContext, policy: str, sign: float) -> dict[int, float]:
    group = ctx.spec.server_group
    if group is None or group.policy != policy:
        return {}
    slot_of = ctx.cache.slot_of
    out = {}
    for host, count in ctx.group_host_counts.items():
        slot = slot_of(host)
        if slot is not None:
            out[slot] = sign * count
    return out


class ServerGroupSoftAffinityWeigher(BaseWeigher):
    """Policy soft-affinity: more group members on the host weigh more."""

    name, option = "ServerGroupSoftAffinityWeigher", "soft_affinity_weight_multiplier"

    def active(self, ctx):
        group = ctx.spec.server_group
        return super().active(ctx) and group is not None and group.policy == "soft-affinity"

    def sparse(self, ctx):
        return _group_sparse(ctx, "soft-affinity", 1.0)


class ServerGroupSoftAntiAffinityWeigher(BaseWeigher):
    """Policy soft-anti-affinity: raw = -(group members on the host)."""

    name, option = "ServerGroupSoftAntiAffinityWeigher", "soft_anti_affinity_weight_multiplier"

    def active(self, ctx):
        group = ctx.spec.server_group
        return super().active(ctx) and group is not None \
            and group.policy == "soft-anti-affinity"

    def sparse(self, ctx):
        return _group_sparse(ctx, "soft-anti-affinity", -1.0)


class BuildFailureWeigher(BaseWeigher):
    """raw = -(recent failed builds on the host); the huge default multiplier (1e6) puts
    failing hosts last. Failures are cleared when a build on the host succeeds."""

    name, option = "BuildFailureWeigher", "build_failure_weight_multiplier"

    def sparse(self, ctx):
        return {slot: -float(n) for slot, n in ctx.cache.failed_builds_by_slot().items()}


class ImagePropertiesWeigher(BaseWeigher):
    """Servers already on the host whose image has the request's image properties:
    raw = sum over properties of weight x matching servers (weights from
    ``image_props_weight_setting``; when that is empty every property weighs 1, when not
    only listed properties count). Default multiplier 0.0 (off); positive packs alike
    images together."""

    name, option = "ImagePropertiesWeigher", "image_props_weight_multiplier"

    def sparse(self, ctx):
        setting = ctx.config.image_props_weight_setting
        slot_of = ctx.cache.slot_of
        out: dict[int, float] = {}
        for key, value in ctx.spec.image_properties.items():
            weight = setting.get(key, 0.0 if setting else 1.0)
            if not weight:
                continue
            for host, count in ctx.cache.image_property_hosts(key, value).items():
                slot = slot_of(host)
                if slot is not None:
                    out[slot] = out.get(slot, 0.0) + weight * count
        return {s: v for s, v in out.items() if v}
