"""The filter plug-in contract.

A filter answers "which hosts may take this request?" as a bitmask over host slots
(``mask``); the engine intersects the answers in the configured order and counts hosts in
and out of every filter. ``host_passes`` answers the same question for one host (used by
``Scheduler.explain`` and by the tests, which check both answers agree on every host).

Three kinds keep the answer cheap at 10,000+ hosts:

* :class:`StaticFilter` - depends only on node facts and on the part of the request named
  by ``key``; answered from the cache's per-key masks, kept current node by node.
* resource filters - answered from the cache's free-capacity masks.
* relation filters (server groups, same/different host) - a handful of hosts, built from
  the instance records.

A third-party filter may implement ``host_passes`` alone: the default ``mask`` loops over
the hosts still in play (correct, only slower).
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any, ClassVar

from ..bitset import bits
from ..context import SchedulingContext
from ..host_state import HostState

__all__ = ["BaseFilter", "StaticFilter"]


class BaseFilter:
    name: ClassVar[str]
    #: One line saying why a host is rejected (``reason`` may refine it per host).
    description: ClassVar[str]

    def applies(self, ctx: SchedulingContext) -> bool:
        """False when the request asks nothing of this filter (every host passes)."""
        return True

    def mask(self, ctx: SchedulingContext, candidates: int) -> int:
        """The hosts among ``candidates`` that pass (a superset of that is fine too:
        the engine intersects)."""
        cache = ctx.cache
        out = 0
        for slot in bits(candidates):
            if self.host_passes(cache.host(slot), ctx):
                out |= 1 << slot
        return out

    def host_passes(self, host: HostState, ctx: SchedulingContext) -> bool:
        raise TypeError(f"{type(self).__name__} must implement host_passes")

    def reason(self, host: HostState, ctx: SchedulingContext) -> str:
        return self.description


class StaticFilter(BaseFilter):
    """A filter over node facts only: cached per ``key``, maintained per node change.

    ``check(host, key, config)`` must depend on nothing but its arguments, and ``key`` must
    include every config value ``check`` reads. A check that reads the host's identity (its
    name, its hostname label) says so in ``reads_identity``: the others are run once per class
    of hosts alike but for their names.
    """

    def key(self, ctx: SchedulingContext) -> Hashable | None:
        raise TypeError(f"{type(self).__name__} must implement key")

    def check(self, host: HostState, key: Any, config: Any) -> bool:
        raise TypeError(f"{type(self).__name__} must implement check")

    def reads_identity(self, key: Any) -> bool:
        return False

    def applies(self, ctx: SchedulingContext) -> bool:
        return self.key(ctx) is not None

    def mask(self, ctx: SchedulingContext, candidates: int) -> int:
        key = self.key(ctx)
        config = ctx.config
        check = self.check
        return ctx.cache.static_mask((self.name, key), lambda h: check(h, key, config),
                                     reads_identity=self.reads_identity(key))

    def host_passes(self, host: HostState, ctx: SchedulingContext) -> bool:
        key = self.key(ctx)
        return key is None or self.check(host, key, ctx.config)
