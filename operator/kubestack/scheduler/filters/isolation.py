"""AggregateMultiTenancyIsolation and IsolatedHostsFilter (not enabled by default)."""

from __future__ import annotations

from ..context import SchedulingContext
from ..host_state import ISOLATED_LABEL, HostState
from .base import StaticFilter

__all__ = ["AggregateMultiTenancyIsolation", "IsolatedHostsFilter"]


def tenant_allow_list(host: HostState) -> set[str]:
    """Projects named by aggregate metadata keys ``filter_tenant_id*`` on the host."""
    out: set[str] = set()
    for key, values in host.aggregate_metadata.items():
        if key.startswith("filter_tenant_id"):
            out.update(values)
    return out


class AggregateMultiTenancyIsolation(StaticFilter):
    """Hosts in aggregates with ``filter_tenant_id`` metadata take only those projects'
    servers; other hosts take anyone's."""

    name = "AggregateMultiTenancyIsolation"
    description = "host's aggregate is reserved for other projects (filter_tenant_id)"

    def key(self, ctx: SchedulingContext):
        return (ctx.spec.project,)

    def check(self, host: HostState, key, config) -> bool:
        allowed = tenant_allow_list(host)
        return not allowed or key[0] in allowed

    def mask(self, ctx: SchedulingContext, candidates: int) -> int:
        index = ctx.cache.keyed_masks(self.name, _tenant_keys)
        return index.get(None, 0) | index.get(("project", ctx.spec.project), 0)


def _tenant_keys(host: HostState) -> list:
    allowed = tenant_allow_list(host)
    return [("project", p) for p in allowed] if allowed else [None]


class IsolatedHostsFilter(StaticFilter):
    """Isolated images run only on isolated hosts; with
    ``restrict_isolated_hosts_to_isolated_images`` isolated hosts run only isolated images.
    Isolated hosts are ``isolated_hosts`` in the config or nodes labelled
    ``kubestack.io/isolated=true``."""

    name = "IsolatedHostsFilter"
    description = "isolated image / isolated host mismatch"

    def key(self, ctx: SchedulingContext):
        cfg = ctx.config
        image_isolated = ctx.spec.image_id is not None and ctx.spec.image_id in cfg.isolated_images
        return (bool(cfg.isolated_images), image_isolated, cfg.isolated_hosts,
                cfg.restrict_isolated_hosts_to_isolated_images)

    def reads_identity(self, key) -> bool:
        return bool(key[2])  # isolated_hosts names hosts

    def check(self, host: HostState, key, config) -> bool:
        any_images, image_isolated, isolated_hosts, restrict = key
        host_isolated = host.name in isolated_hosts or \
            host.labels.get(ISOLATED_LABEL, "").lower() == "true"
        if not any_images:
            return (not restrict) or not host_isolated
        if restrict:
            return image_isolated == host_isolated
        return (not image_isolated) or host_isolated
