"""Select and claim: filter, weigh, pick among the best, record the claim.

One decision (per instance of a request), under the cache lock:

1. filters, in ``config.filter_pipeline`` order, each intersecting a host bitmask; the
   per-filter host counts are kept for the NoValidHost message;
2. weighers, Nova-normalised over the surviving hosts. Normalisation makes the total a
   linear function of each weigher's raw value, so the best hosts are found with the
   threshold algorithm over the cache's sorted indexes: walk every active weigher's index
   from its best end, score each new surviving host exactly, stop as soon as no unseen host
   can beat the current top ``host_subset_size + max_attempts - 1``. Small host sets, and
   third-party weighers without an index, are scored exhaustively;
3. a random pick (seeded) among the top ``host_subset_size``; the next best hosts become
   the alternates;
4. the claim: the instance is recorded in the cache (building) before the lock is
   released, so the next decision already sees it.
"""

from __future__ import annotations

import heapq
import random
import uuid
from dataclasses import dataclass

from .bitset import Members, bits
from .cache import HostCache
from .config import SchedulerConfig
from .context import SchedulingContext
from .filters import FILTERS, BaseFilter
from .request import RequestSpec, Usage
from .weighers import WEIGHERS, BaseWeigher

__all__ = ["Scheduler", "Selection", "FilterStep", "FilterResult", "NoValidHost",
           "WeighedHost"]

#: Below this many surviving hosts every one is scored (cheaper than walking indexes).
EXHAUSTIVE_BELOW = 512


@dataclass(frozen=True)
class Selection:
    """Where one instance goes: the claimed host, its alternates and the usage claimed."""

    instance_id: str
    host: str
    alternates: tuple[str, ...]
    usage: Usage
    weight: float


@dataclass(frozen=True)
class WeighedHost:
    host: str
    weight: float


@dataclass(frozen=True)
class FilterStep:
    name: str
    hosts_in: int
    hosts_out: int
    description: str

    def __str__(self) -> str:
        return f"Filter {self.name} returned {self.hosts_out} hosts"


@dataclass(frozen=True)
class FilterResult:
    """How the filters narrowed the hosts for the instance that found no host."""

    total_hosts: int
    steps: tuple[FilterStep, ...]
    instance_index: int = 0
    placed: int = 0
    min_count: int = 1

    @property
    def failed_filter(self) -> FilterStep | None:
        for step in self.steps:
            if step.hosts_out == 0:
                return step
        return None

    def summary(self) -> str:
        """Nova's compact form: ``['ComputeFilter: (start: 10, end: 8)', ...]``."""
        return str([f"{s.name}: (start: {s.hosts_in}, end: {s.hosts_out})" for s in self.steps])


class NoValidHost(Exception):
    """No host passed the filters (for at least ``min_count`` instances)."""

    def __init__(self, result: FilterResult):
        super().__init__(result)
        self.result = result

    def __str__(self) -> str:
        result = self.result
        lines = ["No valid host was found. There are not enough hosts available."]
        if result.total_hosts == 0:
            lines.append("There are no compute hosts.")
        for step in result.steps:
            line = str(step)
            if step.hosts_out == 0:
                line += f" ({step.description})"
            lines.append(line)
        if result.min_count > 1 or result.placed:
            lines.append(f"Placed {result.placed} of the {result.min_count} instances "
                         f"required (min_count); none were kept.")
        return "\n".join(lines)


class Scheduler:
    """Nova's filter scheduler over a :class:`HostCache`."""

    def __init__(self, cache: HostCache, config: SchedulerConfig | None = None,
                 seed: int | None = None):
        self.cache = cache
        self.config = config or cache.config
        cache.configure(self.config)
        self.filters: list[BaseFilter] = [FILTERS[n]() for n in self.config.filter_pipeline]
        self.weighers: list[BaseWeigher] = [WEIGHERS[n]() for n in self.config.enabled_weighers]
        self.rng = random.Random(seed)

    # ------------------------------------------------------------------ public API
    def select_and_claim(self, spec: RequestSpec) -> list[Selection]:
        """Place every instance of ``spec`` (at least ``min_count``, up to ``max_count``)
        and claim each host before the next decision; all-or-nothing below min_count."""
        config = self.config
        cache = self.cache
        want = self.config.host_subset_size + self.config.max_attempts - 1
        with cache.lock:
            usage = spec.usage(config)
            ids = list(spec.instance_ids) or [
                str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
                for _ in range(spec.max_instances)]
            group = spec.server_group.name if spec.server_group is not None else None
            selections: list[Selection] = []
            for index in range(spec.max_instances):
                ctx = SchedulingContext(cache, config, spec, usage)
                mask, steps = self._filter(ctx)
                if not mask:
                    if len(selections) >= spec.min_instances:
                        break
                    for done in selections:
                        cache.remove_instance(done.instance_id)
                    raise NoValidHost(FilterResult(
                        total_hosts=len(cache), steps=tuple(steps), instance_index=index,
                        placed=len(selections), min_count=spec.min_instances))
                ranked = self._rank(ctx, mask, want)
                k = min(config.host_subset_size, len(ranked))
                choice = self.rng.randrange(k) if k > 1 else 0
                weight, slot = ranked[choice]
                host = cache.host(slot).name
                alternates = tuple(cache.host(s).name for i, (_w, s) in enumerate(ranked)
                                   if i != choice)[:config.max_attempts - 1]
                cache.claim(host, ids[index], usage, project=spec.project, building=True,
                            group=group, image_properties=spec.image_properties)
                selections.append(Selection(instance_id=ids[index], host=host,
                                            alternates=alternates, usage=usage,
                                            weight=weight))
            return selections

    def release(self, instance_id: str) -> bool:
        """Drop a claim (failed build, deleted server). True if there was one."""
        return self.cache.remove_instance(instance_id) is not None

    def filter_hosts(self, spec: RequestSpec) -> tuple[list[str], FilterResult]:
        """The hosts passing every filter for one instance of ``spec`` (no claim)."""
        with self.cache.lock:
            ctx = SchedulingContext(self.cache, self.config, spec)
            mask, steps = self._filter(ctx)
            names = [self.cache.host(s).name for s in bits(mask)]
            return names, FilterResult(total_hosts=len(self.cache), steps=tuple(steps))

    def weigh_hosts(self, spec: RequestSpec, limit: int | None = None) -> list[WeighedHost]:
        """Surviving hosts, best first, with their Nova-normalised weights (no claim)."""
        with self.cache.lock:
            ctx = SchedulingContext(self.cache, self.config, spec)
            mask, _steps = self._filter(ctx)
            if not mask:
                return []
            ranked = self._rank_exhaustive(ctx, mask, limit or mask.bit_count())
            return [WeighedHost(self.cache.host(s).name, w) for w, s in ranked]

    def explain(self, spec: RequestSpec, host: str) -> list[tuple[str, bool, str]]:
        """For one host: (filter, passed, reason) per filter, evaluated host by host."""
        with self.cache.lock:
            state = self.cache.get_host(host)
            if state is None:
                return [("HostCache", False, f"{host!r} is not a known compute host")]
            ctx = SchedulingContext(self.cache, self.config, spec)
            out = []
            for flt in self.filters:
                ok = flt.host_passes(state, ctx)
                out.append((flt.name, ok, "" if ok else flt.reason(state, ctx)))
            return out

    # ------------------------------------------------------------------ filtering
    def _filter(self, ctx: SchedulingContext) -> tuple[int, list[FilterStep]]:
        candidates = self.cache.all_mask
        count = candidates.bit_count()
        steps = []
        for flt in self.filters:
            if flt.applies(ctx):
                candidates &= flt.mask(ctx, candidates)
                after = candidates.bit_count()
            else:
                after = count
            steps.append(FilterStep(flt.name, count, after, flt.description))
            count = after
            if not candidates:
                break
        return candidates, steps

    # ------------------------------------------------------------------ weighing
    def _terms(self, ctx: SchedulingContext, mask: int, count: int, members: Members | None):
        """Per active weigher: (a, b, source) with contribution = a * value + b, where the
        min-max normalisation over ``mask`` is folded into a and b."""
        cache = self.cache
        terms = []
        for weigher in self.weighers:
            if not weigher.active(ctx):
                continue
            mult = weigher.multiplier(ctx)
            if weigher.attribute is not None:
                values = cache.values(weigher.attribute)
                if members is None:
                    raw = [values[s] for s in bits(mask)]
                    vmin, vmax = min(raw), max(raw)
                else:
                    index = cache.sorted_index(weigher.attribute)
                    vmin = next(index.ascending_in(mask, members))[0]
                    vmax = next(index.descending_in(mask, members))[0]
                sign = weigher.sign
                lo, hi = (sign * vmin, sign * vmax) if sign > 0 else (sign * vmax, sign * vmin)
                if lo == hi:
                    continue
                coef = mult / (hi - lo)
                terms.append((coef * sign, -coef * lo, ("dense", weigher.attribute, values)))
                continue
            sparse = weigher.sparse(ctx)
            if sparse is None:
                slots = bits(mask)
                sparse = {s: weigher.weigh(cache.host(s), ctx) for s in slots}
                inside = sparse
            elif members is None:
                member_slots = set(bits(mask))
                inside = {s: v for s, v in sparse.items() if s in member_slots}
            else:
                inside = {s: v for s, v in sparse.items() if s in members}
            observed = list(inside.values())
            if len(inside) < count:
                observed.append(0.0)
            lo, hi = min(observed), max(observed)
            if lo == hi:
                continue
            coef = mult / (hi - lo)
            terms.append((coef, -coef * lo, ("sparse", inside, len(inside) < count)))
        return terms

    @staticmethod
    def _score(terms, slot: int) -> float:
        total = 0.0
        for a, b, (kind, _name_or_map, data) in terms:
            if kind == "dense":
                total += a * data[slot] + b
            else:
                total += a * _name_or_map.get(slot, 0.0) + b
        return total

    def _rank(self, ctx: SchedulingContext, mask: int, want: int) -> list[tuple[float, int]]:
        count = mask.bit_count()
        if count <= EXHAUSTIVE_BELOW:
            return self._rank_exhaustive(ctx, mask, want)
        members = Members(mask)
        terms = self._terms(ctx, mask, count, members)
        if not terms:
            out = []
            rest = mask
            while rest and len(out) < want:
                low = rest & -rest
                out.append((0.0, low.bit_length() - 1))
                rest ^= low
            return out
        if not any(kind == "dense" for _a, _b, (kind, _x, _y) in terms):
            return self._rank_exhaustive(ctx, mask, want)
        ranked = self._threshold_top(terms, mask, members, want,
                                     budget=max(2048, count // 4))
        if ranked is None:
            return self._rank_exhaustive(ctx, mask, want)
        return ranked

    def _threshold_top(self, terms, mask: int, members: Members, want: int,
                       budget: int) -> list[tuple[float, int]] | None:
        """Fagin's threshold algorithm over the weighers' sorted indexes; None when it
        would not beat an exhaustive scan (pathological anti-correlated weights)."""
        cache = self.cache
        streams = []  # [iterator, a, b, is_dense, bound, default_bound]
        for a, b, (kind, name_or_map, data) in terms:
            if kind == "dense":
                index = cache.sorted_index(name_or_map)
                it = index.descending_in(mask, members) if a > 0 \
                    else index.ascending_in(mask, members)
                streams.append([it, a, b, True, float("inf"), None])
            else:
                entries = sorted(((a * v + b, s) for s, v in name_or_map.items()), reverse=True)
                default = b if data else float("-inf")
                streams.append([iter(entries), a, b, False, float("inf"), default])
        heap: list[tuple[float, int]] = []  # (score, -slot): the root is the worst kept
        seen: set[int] = set()
        score = self._score
        steps = 0
        while True:
            for stream in streams:
                it, a, b, dense, _bound, default = stream
                item = next(it, None)
                if item is None:
                    if dense:
                        return self._sorted(heap)  # every host has been seen
                    stream[4] = default
                    continue
                if dense:
                    value, slot = item
                    stream[4] = a * value + b
                else:
                    contribution, slot = item
                    stream[4] = max(contribution, default)
                if slot in seen:
                    continue
                seen.add(slot)
                entry = (score(terms, slot), -slot)
                if len(heap) < want:
                    heapq.heappush(heap, entry)
                elif entry > heap[0]:
                    heapq.heapreplace(heap, entry)
            steps += 1
            if len(heap) >= want:
                threshold = sum(stream[4] for stream in streams)
                if heap[0][0] >= threshold:
                    return self._sorted(heap)
            if steps > budget:
                return None

    @staticmethod
    def _sorted(heap: list[tuple[float, int]]) -> list[tuple[float, int]]:
        return [(score, -neg) for score, neg in sorted(heap, reverse=True)]

    def _rank_exhaustive(self, ctx: SchedulingContext, mask: int,
                         want: int) -> list[tuple[float, int]]:
        slots = bits(mask)
        terms = self._terms(ctx, mask, len(slots), None)
        score = self._score
        scored = [(score(terms, s), -s) for s in slots]
        return self._sorted(heapq.nlargest(want, scored))

