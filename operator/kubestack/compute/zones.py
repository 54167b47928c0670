"""Nova's availability zones as the compute hosts make them, and the summary of them the
operator publishes for users who may not read Nodes.

A compute host (a Node the scheduler parses as one: `kubestack.scheduler.parse_node`) is in
the zone of its `topology.kubernetes.io/zone` label, else the scheduler's default zone (what
the AvailabilityZoneFilter matches). A zone is "available" when at least one of its hosts can
take servers: Node Ready and not cordoned (Nova: a compute service up and enabled).

Nova lets any user list the zones, but reading them from Nodes shows the whole fleet, which
stays admin-only. So the operator publishes the zones alone (name -> status, nothing about
hosts) as the data of the ConfigMap `kubestack-availability-zones` in its own namespace, and
a Role of the chart lets every authenticated user get that one object. `ZoneTally` keeps the
summary current one host change at a time and says when a change alters it, so node churn
that leaves every zone's status as it was costs no work and no write.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the CLI imports this module at start-up; the scheduler package is heavy
    from kubestack.scheduler.host_state import HostState

CONFIGMAP = "kubestack-availability-zones"
# where the operator runs (`kubestack operator --namespace`, the chart's release namespace)
NAMESPACE_ENV = "KUBESTACK_NAMESPACE"
DEFAULT_NAMESPACE = "kubestack-system"
AVAILABLE = "available"
NOT_AVAILABLE = "not available"

Placement = tuple[str, bool]  # a host's zone, and whether it can take servers


def operator_namespace(environ: Mapping[str, str] = os.environ) -> str:
    """The namespace the zones are published in: the operator's."""
    return environ.get(NAMESPACE_ENV) or DEFAULT_NAMESPACE


def zone_of(host: HostState, default_zone: str) -> str:
    return host.zone or default_zone


def host_available(host: HostState) -> bool:
    """The host's compute service is up (Node Ready) and enabled (not cordoned)."""
    return host.ready and not host.unschedulable


def placement(host: HostState | None, default_zone: str) -> Placement | None:
    """What one host adds to the summary (None: not a compute host, or gone)."""
    return None if host is None else (zone_of(host, default_zone), host_available(host))


class ZoneTally:
    """Per zone, how many compute hosts it has and how many of them can take servers."""

    def __init__(self, default_zone: str):
        self.default_zone = default_zone
        self._hosts: dict[str, Placement] = {}
        self._members: Counter[str] = Counter()
        self._available: Counter[str] = Counter()

    def set(self, name: str, host: HostState | None) -> bool:
        """Record host `name` as it is now (None: deleted, or no longer a compute host);
        True when that changes the summary."""
        new = placement(host, self.default_zone)
        old = self._hosts.get(name)
        if new == old:
            return False
        touched = {p[0] for p in (old, new) if p is not None}
        before = [self._status(z) for z in sorted(touched)]
        if old is not None:
            self._count(old, -1)
            del self._hosts[name]
        if new is not None:
            self._count(new, +1)
            self._hosts[name] = new
        return before != [self._status(z) for z in sorted(touched)]

    def summary(self) -> dict[str, str]:
        """Zone name -> "available" / "not available", by name."""
        return {zone: self._status(zone) for zone in sorted(self._members)}

    def _count(self, where: Placement, step: int) -> None:
        zone, available = where
        self._members[zone] += step
        if available:
            self._available[zone] += step
        # an empty zone is no zone: Counter keeps zero entries, the summary must not
        for counter in (self._members, self._available):
            if counter.get(zone) == 0:
                del counter[zone]

    def _status(self, zone: str) -> str | None:
        if zone not in self._members:
            return None
        return AVAILABLE if self._available[zone] else NOT_AVAILABLE


def summary(hosts: Iterable[HostState], default_zone: str) -> dict[str, str]:
    """The zones of `hosts` (compute hosts), each "available" or "not available", by name."""
    tally = ZoneTally(default_zone)
    for host in hosts:
        tally.set(host.name, host)
    return tally.summary()


def configmap(namespace: str, zones: Mapping[str, str]) -> dict[str, Any]:
    """The published view: one key per zone (zone names are label values, which are valid
    ConfigMap keys), its status the value, so `kubectl get -o yaml` reads like the CLI."""
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": CONFIGMAP, "namespace": namespace},
            "data": dict(zones)}


def published(obj: Mapping[str, Any]) -> dict[str, str]:
    """The summary a published ConfigMap holds (an empty one carries no `data`)."""
    return dict(obj.get("data") or {})
