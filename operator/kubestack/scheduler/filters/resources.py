"""The Placement stage: VCPU, MEMORY_MB, DISK_GB and extended resources must fit.

Free = (allocatable - reserved) x allocation ratio - used; extended resources (GPUs, ...)
have ratio 1. Named after Nova's pre-Placement filters so that "Filter RamFilter returned 0
hosts" reads as Nova operators expect.
"""

from __future__ import annotations

from ..context import SchedulingContext
from ..host_state import HostState
from ..request import DISK_GB, MEMORY_MB, VCPU
from .base import BaseFilter

__all__ = ["CoreFilter", "RamFilter", "DiskFilter", "ExtendedResourceFilter"]


class _ResourceFilter(BaseFilter):
    def amounts(self, ctx: SchedulingContext) -> list[tuple[str, int]]:
        raise TypeError("resource filters define amounts")

    def applies(self, ctx: SchedulingContext) -> bool:
        return bool(self.amounts(ctx))

    def mask(self, ctx: SchedulingContext, candidates: int) -> int:
        out = candidates
        for rc, amount in self.amounts(ctx):
            out &= ctx.cache.fit_mask(rc, amount)
        return out

    def host_passes(self, host: HostState, ctx: SchedulingContext) -> bool:
        free = ctx.cache.free(host.name)
        return all(free.get(rc, 0) >= amount for rc, amount in self.amounts(ctx))

    def reason(self, host: HostState, ctx: SchedulingContext) -> str:
        free = ctx.cache.free(host.name)
        short = [f"{rc}: {amount} requested, {free.get(rc, 0):g} free"
                 for rc, amount in self.amounts(ctx) if free.get(rc, 0) < amount]
        return "; ".join(short) or self.description


class CoreFilter(_ResourceFilter):
    name = "CoreFilter"
    description = "not enough free VCPU (vCPUs x cpu_allocation_ratio)"

    def amounts(self, ctx):
        amount = ctx.resources.get(VCPU, 0)
        return [(VCPU, amount)] if amount else []


class RamFilter(_ResourceFilter):
    name = "RamFilter"
    description = "not enough free MEMORY_MB (memory x ram_allocation_ratio)"

    def amounts(self, ctx):
        amount = ctx.resources.get(MEMORY_MB, 0)
        return [(MEMORY_MB, amount)] if amount else []


class DiskFilter(_ResourceFilter):
    name = "DiskFilter"
    description = "not enough free DISK_GB (ephemeral-storage x disk_allocation_ratio)"

    def amounts(self, ctx):
        amount = ctx.resources.get(DISK_GB, 0)
        return [(DISK_GB, amount)] if amount else []


class ExtendedResourceFilter(_ResourceFilter):
    name = "ExtendedResourceFilter"
    description = "not enough free extended resources (e.g. nvidia.com/gpu)"

    def amounts(self, ctx):
        return [(rc, n) for rc, n in ctx.resources.items()
                if rc not in (VCPU, MEMORY_MB, DISK_GB)]
