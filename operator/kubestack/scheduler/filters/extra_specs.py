"""ComputeCapabilitiesFilter and AggregateInstanceExtraSpecsFilter (Nova semantics).

Both read the flavor's extra specs with :func:`~kubestack.scheduler.extra_specs_ops.match`.
Keys without a scope (no ``:``) are checked by both filters, as in Nova; keys with another
scope (``hw:``, ``resources:`` ...) by neither.
"""

from __future__ import annotations

from ..context import SchedulingContext
from ..extra_specs_ops import match
from ..host_state import IDENTITY_CAPABILITIES, HostState
from .base import StaticFilter

__all__ = ["ComputeCapabilitiesFilter", "AggregateInstanceExtraSpecsFilter"]


def _scoped(extra_specs, scope: str) -> tuple[tuple[str, str], ...] | None:
    out = []
    for key, req in extra_specs.items():
        parts = key.split(":", 1)
        if len(parts) > 1:
            if parts[0] != scope:
                continue
            key = parts[1]
        out.append((key, req))
    return tuple(sorted(out)) or None


class ComputeCapabilitiesFilter(StaticFilter):
    """``capabilities:<name>`` extra specs against the host's capabilities.

    Capabilities are the derived ``hypervisor_type``, ``hypervisor_version``, ``cpu_arch``,
    ``vcpus``, ``memory_mb``, ``disk_gb``, ``cpu_info:features`` (KubeVirt CPU feature
    labels, use ``<all-in>``) and, for any other name, the node label of that name
    (``capabilities:nvidia.com/gpu.product``).
    """

    name = "ComputeCapabilitiesFilter"
    description = "host capabilities do not match the flavor's extra specs"

    def key(self, ctx: SchedulingContext):
        return _scoped(ctx.extra_specs, "capabilities")

    def reads_identity(self, key) -> bool:
        return any(name in IDENTITY_CAPABILITIES for name, _req in key)

    def check(self, host: HostState, key, config) -> bool:
        for name, req in key:
            value = host.capability(name.split(":"))
            if value is None or not match(value, req):
                return False
        return True

    def reason(self, host: HostState, ctx: SchedulingContext) -> str:
        for name, req in self.key(ctx) or ():
            value = host.capability(name.split(":"))
            if value is None:
                return f"capability {name!r} is not reported by the host"
            if not match(value, req):
                return f"capability {name}={value!r} does not satisfy {req!r}"
        return self.description


class AggregateInstanceExtraSpecsFilter(StaticFilter):
    """``aggregate_instance_extra_specs:<key>`` (and unscoped) extra specs against the
    metadata of the host's aggregates (annotations ``aggregate.kubestack.io/<key>``); a
    key absent from the host's aggregates rejects the host."""

    name = "AggregateInstanceExtraSpecsFilter"
    description = "host aggregate metadata does not match the flavor's extra specs"

    def key(self, ctx: SchedulingContext):
        return _scoped(ctx.extra_specs, "aggregate_instance_extra_specs")

    def check(self, host: HostState, key, config) -> bool:
        metadata = host.aggregate_metadata
        for name, req in key:
            values = metadata.get(name)
            if not values or not any(match(v, req) for v in values):
                return False
        return True

    def reason(self, host: HostState, ctx: SchedulingContext) -> str:
        for name, req in self.key(ctx) or ():
            values = host.aggregate_metadata.get(name)
            if not values:
                return f"extra spec {name!r} is not in the host's aggregate metadata"
            if not any(match(v, req) for v in values):
                return f"aggregate metadata {name}={sorted(values)} does not satisfy {req!r}"
        return self.description
