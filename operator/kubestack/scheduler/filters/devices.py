"""PciPassthroughFilter (GPUs and other device-plugin resources) and NUMATopologyFilter
(dedicated CPUs / NUMA), both off by default like Nova's."""

from __future__ import annotations

from ..context import SchedulingContext
from ..host_state import CPU_DEDICATED_LABEL, HOSTNAME_LABEL, NUMA_NODES_LABEL, HostState
from ..request import parse_pci_alias_spec
from .base import BaseFilter, StaticFilter

__all__ = ["PciPassthroughFilter", "NUMATopologyFilter"]


class PciPassthroughFilter(BaseFilter):
    """``pci_passthrough:alias=<alias>:<count>``: the host carries the alias's node labels
    (the device model) and has ``count`` of its device-plugin resource free."""

    name = "PciPassthroughFilter"
    description = "host lacks the requested PCI devices (model labels or free count)"

    def _wanted(self, ctx: SchedulingContext) -> list[tuple[str, tuple, int]]:
        value = ctx.extra_specs.get("pci_passthrough:alias")
        if not value:
            return []
        out = []
        for alias, count in parse_pci_alias_spec(value):
            spec = ctx.config.pci_aliases[alias]
            out.append((spec.resource, tuple(sorted(spec.labels.items())), count))
        return out

    def applies(self, ctx):
        return bool(self._wanted(ctx))

    @staticmethod
    def _labelled(host: HostState, labels: tuple) -> bool:
        return all(host.labels.get(k) == v for k, v in labels)

    def mask(self, ctx, candidates):
        totals: dict[str, int] = {}
        out = candidates
        for resource, labels, count in self._wanted(ctx):
            totals[resource] = totals.get(resource, 0) + count
            if labels:
                out &= ctx.cache.static_mask(
                    (self.name, labels), lambda h, labels=labels: self._labelled(h, labels),
                    reads_identity=any(k == HOSTNAME_LABEL for k, _v in labels))
        for resource, count in totals.items():
            out &= ctx.cache.fit_mask(resource, count)
        return out

    def host_passes(self, host: HostState, ctx) -> bool:
        free = ctx.cache.free(host.name)
        totals: dict[str, int] = {}
        for resource, labels, count in self._wanted(ctx):
            if not self._labelled(host, labels):
                return False
            totals[resource] = totals.get(resource, 0) + count
        return all(free.get(r, 0) >= n for r, n in totals.items())


class NUMATopologyFilter(StaticFilter):
    """``hw:cpu_policy=dedicated`` (or image ``hw_cpu_policy``) needs a host labelled
    ``kubestack.io/cpu-dedicated=true``; ``hw:numa_nodes=N`` (or ``hw_numa_nodes``) needs
    ``kubestack.io/numa-nodes >= N``.

    Pinned guests should go to hosts whose cpu allocation ratio is 1.0 (an aggregate with
    ``cpu_allocation_ratio=1.0`` metadata), as Nova required before PCPU inventories.
    """

    name = "NUMATopologyFilter"
    description = "host lacks dedicated CPUs or enough NUMA nodes"

    def key(self, ctx: SchedulingContext):
        specs, props = ctx.extra_specs, ctx.spec.image_properties
        policy = (specs.get("hw:cpu_policy") or props.get("hw_cpu_policy") or "").lower()
        try:
            numa = int(specs.get("hw:numa_nodes") or props.get("hw_numa_nodes") or 0)
        except ValueError:
            numa = 0
        dedicated = policy == "dedicated"
        if not dedicated and numa <= 1:
            return None
        return (dedicated, numa)

    def check(self, host: HostState, key, config) -> bool:
        dedicated, numa = key
        if dedicated and host.labels.get(CPU_DEDICATED_LABEL, "").lower() != "true":
            return False
        if numa > 1:
            try:
                return int(host.labels.get(NUMA_NODES_LABEL, "1")) >= numa
            except ValueError:
                return False
        return True
