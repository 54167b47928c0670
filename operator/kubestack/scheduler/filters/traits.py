"""TraitsFilter: Placement's required and forbidden traits (see ``scheduler.traits``)."""

from __future__ import annotations

from ..context import SchedulingContext
from ..host_state import HostState
from ..traits import requested_traits
from .base import StaticFilter

__all__ = ["TraitsFilter"]


class TraitsFilter(StaticFilter):
    """The host has every trait the flavor or image requires and none the flavor forbids."""

    name = "TraitsFilter"
    description = "host lacks a required trait or has a forbidden one"

    def key(self, ctx: SchedulingContext):
        required, forbidden = requested_traits(ctx.extra_specs, ctx.spec.image_properties)
        if not (required or forbidden):
            return None
        return tuple(sorted(required)), tuple(sorted(forbidden))

    def check(self, host: HostState, key, config) -> bool:
        required, forbidden = key
        return host.traits.issuperset(required) and host.traits.isdisjoint(forbidden)

    def reason(self, host: HostState, ctx: SchedulingContext) -> str:
        required, forbidden = self.key(ctx) or ((), ())
        missing = sorted(set(required) - host.traits)
        if missing:
            return f"host lacks required trait(s) {', '.join(missing)}"
        present = sorted(host.traits & set(forbidden))
        if present:
            return f"host has forbidden trait(s) {', '.join(present)}"
        return self.description
