"""The per-decision view filters and weighers read: request, config, cache, derived facts."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from functools import cached_property

from .cache import HostCache
from .config import SchedulerConfig
from .request import RequestSpec, Usage

__all__ = ["SchedulingContext"]


class SchedulingContext:
    """Everything one placement decision (one instance of a request) may look at.

    Built under the cache lock; derived facts are computed once, on first use.
    """

    def __init__(self, cache: HostCache, config: SchedulerConfig, spec: RequestSpec,
                 usage: Usage | None = None):
        self.cache = cache
        self.config = config
        self.spec = spec
        self.usage = usage if usage is not None else spec.usage(config)

    @cached_property
    def resources(self) -> dict[str, int]:
        return self.usage.resources()

    @cached_property
    def extra_specs(self) -> Mapping[str, str]:
        return self.spec.flavor.extra_specs

    def hosts_of(self, instance_ids: Iterable[str]) -> set[str]:
        """Hosts currently holding any of ``instance_ids`` (unknown ids are ignored)."""
        out = set()
        for iid in instance_ids:
            host = self.cache.instance_host(iid)
            if host is not None:
                out.add(host)
        return out

    @cached_property
    def group_host_counts(self) -> Mapping[str, int]:
        """Members of the request's server group per host.

        Instances the cache tagged with the group, plus members named in the request that
        the cache places elsewhere, plus hosts the request lists for members the cache does
        not know (each such host counts at least one).
        """
        group = self.spec.server_group
        if group is None:
            return {}
        counts = Counter(self.cache.group_host_counts(group.name))
        tagged = self.cache.group_members(group.name)
        for member in group.members:
            if member not in tagged:
                host = self.cache.instance_host(member)
                if host is not None:
                    counts[host] += 1
        for host in group.hosts:
            if counts[host] == 0:
                counts[host] = 1
        return {h: c for h, c in counts.items() if c > 0}
