"""The weigher plug-in contract and Nova's normalisation.

Each weigher yields a raw value per host; the engine min-max normalises the raw values over
the hosts that passed the filters (all equal -> all 0), multiplies by the weigher's
multiplier and sums (Nova's ``weights.normalize`` + ``BaseWeightHandler``).

So that weighing 10,000 hosts does not mean 10,000 Python calls per weigher, a weigher
says where its raw value lives:

* ``attribute`` - a dense per-host attribute the cache keeps sorted (free RAM ...), raw =
  ``sign x value``;
* ``sparse(ctx)`` - a dict {slot: raw} for the few hosts whose raw value is not 0 (server
  group members, failed builds ...);
* otherwise ``weigh(host, ctx)`` is called for every host (third-party weighers).
"""

from __future__ import annotations

from typing import ClassVar

from ..context import SchedulingContext
from ..host_state import HostState

__all__ = ["BaseWeigher", "normalize"]


def normalize(values: list[float], minval: float | None = None,
              maxval: float | None = None) -> list[float]:
    """Nova's min-max normalisation to 0..1 (a constant list becomes all zeros)."""
    if not values:
        return []
    lo = min(values) if minval is None else minval
    hi = max(values) if maxval is None else maxval
    if lo == hi:
        return [0.0] * len(values)
    span = hi - lo
    return [(v - lo) / span for v in values]


class BaseWeigher:
    name: ClassVar[str]
    #: The SchedulerConfig field holding the multiplier.
    option: ClassVar[str | None] = None
    attribute: ClassVar[str | None] = None
    sign: ClassVar[float] = 1.0

    def multiplier(self, ctx: SchedulingContext) -> float:
        override = ctx.config.weight_multipliers.get(self.name)
        if override is not None:
            return float(override)
        return float(getattr(ctx.config, self.option)) if self.option else 1.0

    def active(self, ctx: SchedulingContext) -> bool:
        return self.multiplier(ctx) != 0

    def sparse(self, ctx: SchedulingContext) -> dict[int, float] | None:
        """{slot: raw} for hosts with non-zero raw values, or None if not sparse."""
        return None

    def weigh(self, host: HostState, ctx: SchedulingContext) -> float:
        """The raw value for one host."""
        if self.attribute is not None:
            slot = ctx.cache.slot_of(host.name)
            return self.sign * ctx.cache.values(self.attribute)[slot]
        sparse = self.sparse(ctx)
        if sparse is not None:
            return sparse.get(ctx.cache.slot_of(host.name), 0.0)
        raise TypeError(f"{type(self).__name__} must implement weigh")
