"""Nova's filter scheduler as a pure-Python library (no cluster, no Kubernetes client).

Placement narrows hosts by free resources, filters reject hosts, weighers rank the
survivors, the winner is claimed in memory before the next decision. The Server controller
feeds a :class:`HostCache` from Node watches and Server objects and calls a
:class:`Scheduler`::

    cache = HostCache(config)
    cache.upsert_node(node_dict)                 # every Node event; remove_node(name)
    cache.add_instance(host, server_uid, usage,  # every placed Server (idempotent)
                       project=ns, building=..., group=group_key, image_properties=...)
    cache.set_building(server_uid, False)        # build finished (clears build failures)
    cache.record_build_failure(host)             # build failed there (BuildFailureWeigher)
    cache.remove_instance(server_uid)            # server deleted

    scheduler = Scheduler(cache, config, seed=None)
    try:
        selections = scheduler.select_and_claim(RequestSpec(flavor=Flavor(...), ...))
    except NoValidHost as exc:
        fault = str(exc)       # Nova's message + "Filter RamFilter returned 0 hosts" lines
        exc.result.steps       # FilterStep(name, hosts_in, hosts_out, description) each
    selections[0].host, selections[0].alternates, selections[0].usage
    scheduler.release(server_uid)               # failed build / delete before ACTIVE

Also: ``Scheduler.filter_hosts``, ``weigh_hosts`` (no claim), ``explain(spec, host)``
(per-filter pass/fail with a one-line reason for one host), ``HostCache.free / used /
limits / usage_snapshot / check_consistency``.

Node scheme: see :mod:`kubestack.scheduler.host_state` (compute-host label, zone, arch,
``aggregate.kubestack.io/<name>=true`` labels for membership and
``aggregate.kubestack.io/<key>=<v1>[,<v2>]`` annotations for aggregate metadata, allocation
ratio and reserved annotations, ``kubestack.io/cpu-dedicated``, ``kubestack.io/numa-nodes``).
Quantities: :mod:`kubestack.scheduler.quantity`.

Filters (``SchedulerConfig.enabled_filters``, run in order after the always-on Placement
stage CoreFilter, RamFilter, DiskFilter, ExtendedResourceFilter): ComputeFilter,
AvailabilityZoneFilter, ComputeCapabilitiesFilter, AggregateInstanceExtraSpecsFilter,
ImagePropertiesFilter, ServerGroupAntiAffinityFilter, ServerGroupAffinityFilter,
SameHostFilter, DifferentHostFilter (default); AggregateMultiTenancyIsolation,
IsolatedHostsFilter, PciPassthroughFilter, NUMATopologyFilter (opt-in). Weighers: RAMWeigher,
CPUWeigher, DiskWeigher, IoOpsWeigher, NumInstancesWeigher, ServerGroupSoftAffinityWeigher,
ServerGroupSoftAntiAffinityWeigher, BuildFailureWeigher, ImagePropertiesWeigher, with Nova's
multiplier options. Plug-ins: subclass ``filters.BaseFilter`` / ``StaticFilter`` or
``weighers.BaseWeigher`` and register with ``register_filter`` / ``register_weigher``.

Concurrency: the cache's re-entrant lock is held for a whole ``select_and_claim``, so
concurrent requests are serialised at the claim and never overcommit a host.
"""

from __future__ import annotations

from .cache import ClaimError, HostCache, InstanceRecord
from .config import DEFAULT_FILTERS, DEFAULT_WEIGHERS, PLACEMENT_FILTERS, PciAlias, SchedulerConfig
from .filters import BaseFilter, StaticFilter, register_filter
from .host_state import HostState, parse_node
from .request import Flavor, RequestSpec, SchedulerHints, ServerGroup, Usage
from .scheduler import FilterResult, FilterStep, NoValidHost, Scheduler, Selection, WeighedHost
from .weighers import BaseWeigher, register_weigher

__all__ = [
    "BaseFilter", "BaseWeigher", "ClaimError", "DEFAULT_FILTERS", "DEFAULT_WEIGHERS",
    "FilterResult", "FilterStep", "Flavor", "HostCache", "HostState", "InstanceRecord",
    "NoValidHost", "PLACEMENT_FILTERS", "PciAlias", "RequestSpec", "Scheduler",
    "SchedulerConfig", "SchedulerHints", "Selection", "ServerGroup", "StaticFilter", "Usage",
    "WeighedHost", "parse_node", "register_filter", "register_weigher",
]
