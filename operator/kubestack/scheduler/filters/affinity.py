"""Server group (anti-)affinity and the same_host / different_host scheduler hints."""

from __future__ import annotations

from ..context import SchedulingContext
from ..host_state import HostState
from .base import BaseFilter

__all__ = ["ServerGroupAffinityFilter", "ServerGroupAntiAffinityFilter", "SameHostFilter",
           "DifferentHostFilter"]


def _policy(ctx: SchedulingContext) -> str | None:
    group = ctx.spec.server_group
    return group.policy if group is not None else None


class ServerGroupAffinityFilter(BaseFilter):
    """Policy ``affinity``: once a member is placed, every other member goes to its host."""

    name = "ServerGroupAffinityFilter"
    description = "host does not hold the members of the affinity server group"

    def applies(self, ctx):
        return _policy(ctx) == "affinity" and bool(ctx.group_host_counts)

    def mask(self, ctx, candidates):
        return ctx.cache.mask_of_hosts(ctx.group_host_counts)

    def host_passes(self, host: HostState, ctx) -> bool:
        return not self.applies(ctx) or host.name in ctx.group_host_counts


class ServerGroupAntiAffinityFilter(BaseFilter):
    """Policy ``anti-affinity``: at most ``max_server_per_host`` (default 1) members per
    host."""

    name = "ServerGroupAntiAffinityFilter"
    description = "host already holds max_server_per_host members of the anti-affinity group"

    def _limit(self, ctx) -> int:
        return ctx.spec.server_group.max_server_per_host or 1

    def applies(self, ctx):
        return _policy(ctx) == "anti-affinity" and bool(ctx.group_host_counts)

    def mask(self, ctx, candidates):
        limit = self._limit(ctx)
        full = [h for h, n in ctx.group_host_counts.items() if n >= limit]
        return candidates & ~ctx.cache.mask_of_hosts(full)

    def host_passes(self, host: HostState, ctx) -> bool:
        if not self.applies(ctx):
            return True
        return ctx.group_host_counts.get(host.name, 0) < self._limit(ctx)


class SameHostFilter(BaseFilter):
    """Hint ``same_host``: the host holds at least one of the listed instances."""

    name = "SameHostFilter"
    description = "host holds none of the instances in the same_host hint"

    def applies(self, ctx):
        return bool(ctx.spec.scheduler_hints.same_host)

    def mask(self, ctx, candidates):
        return ctx.cache.mask_of_hosts(ctx.hosts_of(ctx.spec.scheduler_hints.same_host))

    def host_passes(self, host: HostState, ctx) -> bool:
        return not self.applies(ctx) or \
            host.name in ctx.hosts_of(ctx.spec.scheduler_hints.same_host)


class DifferentHostFilter(BaseFilter):
    """Hint ``different_host``: the host holds none of the listed instances."""

    name = "DifferentHostFilter"
    description = "host holds an instance from the different_host hint"

    def applies(self, ctx):
        return bool(ctx.spec.scheduler_hints.different_host)

    def mask(self, ctx, candidates):
        hosts = ctx.hosts_of(ctx.spec.scheduler_hints.different_host)
        return candidates & ~ctx.cache.mask_of_hosts(hosts)

    def host_passes(self, host: HostState, ctx) -> bool:
        return not self.applies(ctx) or \
            host.name not in ctx.hosts_of(ctx.spec.scheduler_hints.different_host)
