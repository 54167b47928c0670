"""`kubestack hypervisor ...`: Nova's hypervisors, which here are the compute Nodes.

    kubestack hypervisor list [--matching HOSTNAME] [--long]
    kubestack hypervisor show NAME|ID

A hypervisor is a Node labelled ``kubestack.io/compute-host=true``, read the way the
scheduler reads it (``kubestack.scheduler.host_state.parse_node``): its size, zone, type,
version and aggregates. Its usage is what the scheduler counts: every Server (all projects)
whose ``status.host`` is the node, put into a HostCache by the operator's own claim recording
(``kubestack.compute.claims.record_claim``), so a resize awaiting confirmation holds room on
both hosts and a shelved-offloaded server holds none, as in Nova.

State ``up`` is the Node's Ready condition; status ``disabled`` is a cordoned Node
(``spec.unschedulable``). Host IP is the Node's InternalIP address.

Like Nova's API (admin only), this reads cluster-scoped objects: Nodes, and Servers in every
namespace. A kubeconfig without that access gets a one-line error, exit code 1.

Allocation ratios and reserved amounts come from the scheduler configuration the operator
reads (``$KUBESTACK_SCHEDULER_CONFIG``, a YAML file), else the defaults.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Mapping
from typing import Any

from kubestack.cli.output import (
    GROUP, VERSION, CliError, api_client, connection_args, list_args, print_list, print_show, run,
    show_args,
)
from kubestack.compute import zones

def register(sub: argparse._SubParsersAction) -> None:
    hyp = sub.add_parser("hypervisor", help="Nova hypervisors (the compute Nodes): list, show")
    verbs = hyp.add_subparsers(dest="hypervisor_command", metavar="VERB")
    verbs.required = True

    lst = verbs.add_parser("list", help="list hypervisors (admin: reads Nodes)")
    lst.add_argument("--matching", metavar="HOSTNAME", help="only hypervisors whose name contains this")
    lst.add_argument("--long", action="store_true", help="add vCPU and memory usage")
    connection_args(lst, namespaced=False)
    list_args(lst)
    lst.set_defaults(func=run(_list))

    show = verbs.add_parser("show", help="show a hypervisor")
    show.add_argument("name", help="hypervisor hostname (Node name) or ID (Node uid)")
    connection_args(show, namespaced=False)
    show_args(show)
    show.set_defaults(func=run(_show))


# ---------------------------------------------------------------------------- pure parts


def operator_config():
    """The scheduler configuration the operator runs with (its ratios and reserved amounts)."""
    from kubestack.scheduler import SchedulerConfig

    return SchedulerConfig.from_env()


def number(value: float) -> int | float:
    """A whole amount as an int (32, not 32.0); a fractional one (3.5 CPUs) as it is."""
    return int(value) if float(value).is_integer() else round(float(value), 2)


def host_ip(node: Mapping[str, Any]) -> str | None:
    for addr in (node.get("status") or {}).get("addresses") or ():
        if addr.get("type") == "InternalIP":
            return addr.get("address")
    return None


def ready_heartbeat(node: Mapping[str, Any]) -> str | None:
    """When the Node last reported (its Ready condition's heartbeat)."""
    for cond in (node.get("status") or {}).get("conditions") or ():
        if cond.get("type") == "Ready":
            return cond.get("lastHeartbeatTime") or cond.get("lastTransitionTime")
    return None


def compute_hosts(nodes: Iterable[Mapping[str, Any]]) -> list[tuple[Mapping[str, Any], Any]]:
    """(node, HostState) for every compute host among `nodes`, by name."""
    from kubestack.scheduler import parse_node

    out = [(n, parse_node(dict(n))) for n in nodes]
    return sorted(((n, h) for n, h in out if h is not None), key=lambda p: p[1].name)


class _Snapshot:
    """The little of the reconciler's `Cluster` port that recording claims reads."""

    def __init__(self, nodes: Iterable[Mapping[str, Any]], flavors: Iterable[Mapping[str, Any]]):
        self.nodes = {n["metadata"]["name"]: dict(n) for n in nodes}
        self.flavors = {f["metadata"]["name"]: dict(f) for f in flavors}

    def node(self, name: str) -> dict | None:
        return self.nodes.get(name)

    def flavor(self, name: str) -> dict | None:
        return self.flavors.get(name)


def host_cache(nodes: list[Mapping[str, Any]], servers: Iterable[Mapping[str, Any]],
               flavors: Iterable[Mapping[str, Any]] = (), config=None):
    """A scheduler HostCache of `nodes` holding the claims of `servers`, recorded exactly as
    the operator records them when it rebuilds its cache."""
    from kubestack.compute.claims import record_claim
    from kubestack.compute.context import Context
    from kubestack.scheduler import HostCache, Scheduler

    cache = HostCache(config)
    ctx = Context(_Snapshot(nodes, flavors), Scheduler(cache, config), actions=None)
    with cache.batch():
        for node in nodes:
            cache.upsert_node(node)
        for server in servers:
            try:
                record_claim(ctx, server)
            except (ValueError, KeyError, TypeError):
                # an object this client's models cannot read (a newer operator's): left out
                # rather than failing the whole listing
                continue
    return cache


def running_vms(cache, name: str) -> int:
    # a resize's source allocation ("<uid>#source") is room, not another guest
    return sum(1 for i in cache.instances_on(name) if "#" not in i)


def hypervisor_fields(node: Mapping[str, Any], host, cache, config) -> dict[str, Any]:
    """`openstack hypervisor show`'s fields for one compute host (Nova's names), plus
    Placement's view of it: capacity x allocation ratio - reserved, and what is free of it."""
    from kubestack.scheduler.request import DISK_GB, MEMORY_MB, VCPU

    name = host.name
    used = cache.used(name)
    limits = cache.limits(name)
    free = cache.free(name)
    return {
        "aggregates": sorted(host.aggregates),
        "availability_zone": zones.zone_of(host, config.default_availability_zone),
        "free_disk_gb": host.disk_gb - used[DISK_GB],
        "free_ram_mb": host.memory_mb - used[MEMORY_MB],
        "host_ip": host_ip(node),
        "hypervisor_hostname": name,
        # what Nova's libvirt driver reports for KVM and plain QEMU hosts alike (the scheduler's
        # kvm/qemu, which image properties match, is the virt type underneath)
        "hypervisor_type": "QEMU",
        "hypervisor_version": host.hypervisor_version,
        "id": (node.get("metadata") or {}).get("uid"),
        "local_gb": host.disk_gb,
        "local_gb_used": used[DISK_GB],
        "memory_mb": host.memory_mb,
        "memory_mb_used": used[MEMORY_MB],
        "placement_capacity": {rc: number(v) for rc, v in sorted(limits.items())},
        "placement_free": {rc: number(v) for rc, v in sorted(free.items())},
        "running_vms": running_vms(cache, name),
        "service_host": name,
        "state": "up" if host.ready else "down",
        "status": "disabled" if host.unschedulable else "enabled",
        "vcpus": number(host.vcpus),
        "vcpus_used": used[VCPU],
    }


def list_rows(nodes: list[Mapping[str, Any]], servers: Iterable[Mapping[str, Any]],
              flavors: Iterable[Mapping[str, Any]] = (), *, long: bool = False,
              matching: str | None = None, config=None) -> tuple[list[str], list[list[Any]]]:
    from kubestack.scheduler import SchedulerConfig

    config = config or SchedulerConfig()
    hosts = compute_hosts(nodes)
    cache = host_cache([n for n, _ in hosts], servers, flavors, config)
    headers = ["ID", "Hypervisor Hostname", "Hypervisor Type", "Host IP", "State"]
    if long:
        headers += ["vCPUs Used", "vCPUs", "Memory MB Used", "Memory MB"]
    rows = []
    for node, host in hosts:
        if matching and matching not in host.name:
            continue
        d = hypervisor_fields(node, host, cache, config)
        row: list[Any] = [d["id"], d["hypervisor_hostname"], d["hypervisor_type"], d["host_ip"], d["state"]]
        if long:
            row += [d["vcpus_used"], d["vcpus"], d["memory_mb_used"], d["memory_mb"]]
        rows.append(row)
    return headers, rows


def show_fields(name_or_id: str, nodes: list[Mapping[str, Any]], servers: Iterable[Mapping[str, Any]],
                flavors: Iterable[Mapping[str, Any]] = (), config=None) -> dict[str, Any]:
    from kubestack.scheduler import SchedulerConfig

    config = config or SchedulerConfig()
    hosts = compute_hosts(nodes)
    match = next(((n, h) for n, h in hosts if h.name == name_or_id), None) or next(
        ((n, h) for n, h in hosts if (n.get("metadata") or {}).get("uid") == name_or_id), None)
    if match is None:
        raise CliError(f"No hypervisor with a name or ID of '{name_or_id}' exists.")
    cache = host_cache([n for n, _ in hosts], servers, flavors, config)
    return hypervisor_fields(match[0], match[1], cache, config)


# ---------------------------------------------------------------------------- API


def get_json(api, path: str, what: str, needs: str) -> dict:
    """GET `path` as a plain dict (the raw request: no typed client to import or models to
    build); a 403 is a one-line CliError saying what access `what` needs."""
    from kubestack.k8s.rest import ApiError, api_request

    try:
        return api_request(api, "GET", path) or {}
    except ApiError as exc:
        if exc.status == 403:
            raise CliError(f"{what} reads {needs}, which needs cluster-scope read access (an admin's "
                           f"kubeconfig): {exc.status} {exc.message}") from None
        raise CliError(f"{exc.status} {exc.message or exc.reason}") from None


def read_nodes(args: argparse.Namespace, what: str, api=None) -> list[dict]:
    """Every Node as the API returns it."""
    return get_json(api or api_client(args), "/api/v1/nodes", what, "the cluster's Nodes").get("items") or []


def read_servers_and_flavors(args: argparse.Namespace, what: str, api=None) -> tuple[list[dict], list[dict]]:
    api = api or api_client(args)
    needs = "the Servers of every project"
    servers = get_json(api, f"/apis/{GROUP}/{VERSION}/servers", what, needs).get("items") or []
    flavors = get_json(api, f"/apis/{GROUP}/{VERSION}/flavors", what, needs).get("items") or []
    return servers, flavors


def _list(args: argparse.Namespace) -> int:
    api = api_client(args)
    nodes = read_nodes(args, "hypervisor list", api)
    servers, flavors = read_servers_and_flavors(args, "hypervisor list", api)
    headers, rows = list_rows(nodes, servers, flavors, long=args.long, matching=args.matching,
                              config=operator_config())
    print_list(args, headers, rows)
    return 0


def _show(args: argparse.Namespace) -> int:
    api = api_client(args)
    nodes = read_nodes(args, "hypervisor show", api)
    servers, flavors = read_servers_and_flavors(args, "hypervisor show", api)
    print_show(args, show_fields(args.name, nodes, servers, flavors, config=operator_config()))
    return 0
