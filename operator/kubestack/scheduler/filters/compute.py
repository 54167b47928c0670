"""ComputeFilter and AvailabilityZoneFilter."""

from __future__ import annotations

from ..context import SchedulingContext
from ..host_state import HostState
from .base import StaticFilter

__all__ = ["ComputeFilter", "AvailabilityZoneFilter"]

_BLOCKING = ("NoSchedule", "NoExecute")


class ComputeFilter(StaticFilter):
    """The compute service is up and enabled: node Ready, not cordoned, no NoSchedule /
    NoExecute taint (except keys in ``tolerated_taints``)."""

    name = "ComputeFilter"
    description = "host is not Ready, cordoned, or tainted NoSchedule/NoExecute"

    def key(self, ctx: SchedulingContext):
        return tuple(ctx.config.tolerated_taints)

    def check(self, host: HostState, key, config) -> bool:
        if not host.ready or host.unschedulable:
            return False
        return not any(effect in _BLOCKING and tkey not in key
                       for tkey, _value, effect in host.taints)

    def reason(self, host: HostState, ctx: SchedulingContext) -> str:
        if not host.ready:
            return "host is not Ready"
        if host.unschedulable:
            return "host is cordoned (unschedulable)"
        tolerated = set(ctx.config.tolerated_taints)
        taints = [f"{k}:{e}" for k, _v, e in host.taints if e in _BLOCKING and k not in tolerated]
        return f"host is tainted {', '.join(taints)}" if taints else self.description


def split_zone(value: str) -> tuple[str | None, str | None]:
    """Nova's ``--availability-zone zone[:host]``: zone and optional forced host."""
    zone, _, host = value.partition(":")
    return (zone or None), (host or None)


class AvailabilityZoneFilter(StaticFilter):
    """The host's zone (``topology.kubernetes.io/zone``, else the default AZ) is the
    requested one; ``zone:host`` also pins the host, as Nova's ``--availability-zone``."""

    name = "AvailabilityZoneFilter"
    description = "host is in another availability zone"

    def key(self, ctx: SchedulingContext):
        az = ctx.spec.availability_zone
        if not az:
            return None
        zone, host = split_zone(az)
        return (zone, host, ctx.config.default_availability_zone)

    def mask(self, ctx: SchedulingContext, candidates: int) -> int:
        zone, pinned, default = self.key(ctx)
        if pinned is not None:
            return super().mask(ctx, candidates)
        index = ctx.cache.keyed_masks(f"{self.name}:{default}",
                                      lambda h: (h.zone or default,))
        return index.get(zone, 0)

    def reads_identity(self, key) -> bool:
        return key[1] is not None  # zone:host pins a host by name

    def check(self, host: HostState, key, config) -> bool:
        zone, pinned, default = key
        if pinned is not None and host.name != pinned:
            return False
        return zone is None or (host.zone or default) == zone

    def reason(self, host: HostState, ctx: SchedulingContext) -> str:
        return (f"host is in availability zone "
                f"{host.zone or ctx.config.default_availability_zone!r}, "
                f"{ctx.spec.availability_zone!r} requested")
