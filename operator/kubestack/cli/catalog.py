"""Keystone's service catalog and Nova's availability zones, as this cluster has them.

    kubestack endpoint list [--service TYPE|NAME] [--interface public|internal|admin]
    kubestack availability zone list [--long]

`endpoint list`: one row per OpenStack service. Each is served here by the kube-apiserver
(the URL of the kubeconfig's cluster) under the path of its kubestack.io kinds; the URL is the
collection of the service's main kind, across projects. Region is the kubeconfig context's
cluster name, the interface is "public" (there is one API server, no internal/admin
endpoints), and a service is enabled when every one of its kinds is served (API discovery).
The ID is derived from the URL, so it is stable.

`availability zone list`: the zones of the compute hosts (label topology.kubernetes.io/zone,
else the scheduler's default zone). A zone is available when at least one of its hosts can
take servers (Node Ready and not cordoned); `--long` adds a row per host with the state of its
compute service: enabled/disabled (cordoned) and :-) / XXX (Ready or not) with the last heartbeat.
Listing zones reads Nodes: cluster-scope access, as for `hypervisor list`.
"""

from __future__ import annotations

import argparse
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from kubestack.cli.hypervisor import compute_hosts, operator_config, read_nodes, ready_heartbeat, zone_of
from kubestack.cli.output import GROUP, VERSION, CliError, api_client, connection_args, list_args, print_list, run

# Keystone's catalog on this cluster: (service type, service name, the kinds serving it); the
# endpoint's URL is the collection of the first kind. Every kubestack.io kind is in one row.
SERVICES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("compute", "nova", ("Server", "Flavor", "KeyPair", "ServerGroup")),
    ("image", "glance", ("Image",)),
    ("volume", "cinder", ("Volume",)),
    ("network", "neutron", ("Network", "Port", "Router", "SecurityGroup", "FloatingIP")),
    ("orchestration", "heat", ("Stack",)),
    ("identity", "keystone", ("Project",)),
)
INTERFACES = ("public", "internal", "admin")
COMPUTE_SERVICE = "nova-compute"


def register(sub: argparse._SubParsersAction) -> None:
    endpoint = sub.add_parser("endpoint", help="Keystone's service catalog on this cluster: list")
    everbs = endpoint.add_subparsers(dest="endpoint_command", metavar="VERB")
    everbs.required = True
    lst = everbs.add_parser("list", help="list the services' endpoints (their API paths on the kube-apiserver)")
    lst.add_argument("--service", help="only this service (type or name: compute, nova, ...)")
    lst.add_argument("--interface", choices=INTERFACES, help="only this interface")
    connection_args(lst, namespaced=False)
    list_args(lst)
    lst.set_defaults(func=run(_endpoint_list))

    availability = sub.add_parser("availability", help="Nova availability zones: `availability zone list`")
    averbs = availability.add_subparsers(dest="availability_command", metavar="OBJECT")
    averbs.required = True
    zone = averbs.add_parser("zone", help="availability zones: list")
    zverbs = zone.add_subparsers(dest="zone_command", metavar="VERB")
    zverbs.required = True
    zlist = zverbs.add_parser("list", help="list the compute hosts' availability zones (admin: reads Nodes)")
    zlist.add_argument("--compute", action="store_true",
                       help="compute zones only (the only kind there is here; accepted for openstack's sake)")
    zlist.add_argument("--long", action="store_true", help="a row per host with its compute service's state")
    connection_args(zlist, namespaced=False)
    list_args(zlist)
    zlist.set_defaults(func=run(_zone_list))


# ---------------------------------------------------------------------------- pure parts


def service_kinds() -> list[tuple[str, str, list[Any]]]:
    """SERVICES with each kind's KindInfo (plural, group, version) from the API registry."""
    from kubestack.api.registry import BY_KIND

    return [(stype, name, [BY_KIND[k] for k in kinds]) for stype, name, kinds in SERVICES]


def endpoint_id(url: str) -> str:
    return uuid.uuid5(uuid.NAMESPACE_URL, url).hex


def endpoint_rows(server_url: str, region: str | None, served: Iterable[str], *, service: str | None = None,
                  interface: str | None = None) -> tuple[list[str], list[list[Any]]]:
    """`openstack endpoint list`'s rows: `served` is the resource names API discovery lists
    under kubestack.io/v1alpha1 (plurals)."""
    served = set(served)
    headers = ["ID", "Region", "Service Name", "Service Type", "Enabled", "Interface", "URL"]
    rows: list[list[Any]] = []
    if interface not in (None, "public"):
        return headers, rows
    base = server_url.rstrip("/")
    for stype, name, kinds in service_kinds():
        if service and service not in (stype, name):
            continue
        main = kinds[0]
        url = f"{base}/apis/{main.group}/{main.version}/{main.plural}"
        enabled = all(k.plural in served for k in kinds)
        rows.append([endpoint_id(url), region, name, stype, enabled, "public", url])
    return headers, rows


def host_available(host) -> bool:
    """The host's compute service is up (Node Ready) and enabled (not cordoned)."""
    return host.ready and not host.unschedulable


def zone_rows(nodes: Iterable[Mapping[str, Any]], *, long: bool = False,
              config=None) -> tuple[list[str], list[list[Any]]]:
    """`openstack availability zone list [--long]`'s rows for the compute hosts among `nodes`."""
    from kubestack.scheduler import SchedulerConfig

    config = config or SchedulerConfig()
    zones: dict[str, list[tuple[Mapping[str, Any], Any]]] = {}
    for node, host in compute_hosts(nodes):
        zones.setdefault(zone_of(host, config), []).append((node, host))
    headers = ["Zone Name", "Zone Status"]
    if long:
        headers += ["Zone Resource", "Host Name", "Service Name", "Service Status"]
    rows: list[list[Any]] = []
    for zone in sorted(zones):
        members = zones[zone]
        status = "available" if any(host_available(h) for _, h in members) else "not available"
        if not long:
            rows.append([zone, status])
            continue
        for node, host in members:
            service_status = " ".join(p for p in (
                "disabled" if host.unschedulable else "enabled",
                ":-)" if host.ready else "XXX",
                ready_heartbeat(node) or "") if p)
            rows.append([zone, status, "", host.name, COMPUTE_SERVICE, service_status])
    return headers, rows


def region_of(kubeconfig: str | None) -> str | None:
    """The current kubeconfig context's cluster name (our Keystone region)."""
    from kubernetes import config

    try:
        _, current = config.list_kube_config_contexts(config_file=kubeconfig)
    except (config.ConfigException, OSError, TypeError):
        return None
    return (current.get("context") or {}).get("cluster")


# ---------------------------------------------------------------------------- API


def served_resources(api) -> set[str]:
    """The kubestack.io/v1alpha1 resources API discovery lists (none when the group is absent)."""
    from kubestack.k8s.rest import ApiError, api_request

    try:
        found = api_request(api, "GET", f"/apis/{GROUP}/{VERSION}") or {}
    except ApiError as exc:
        if exc.status == 404:
            return set()
        raise CliError(f"{exc.status} {exc.message or exc.reason}") from None
    return {r["name"] for r in found.get("resources") or () if "/" not in r["name"]}


def _endpoint_list(args: argparse.Namespace) -> int:
    api = api_client(args)
    headers, rows = endpoint_rows(api.configuration.host, region_of(args.kubeconfig), served_resources(api),
                                  service=args.service, interface=args.interface)
    if args.service and not rows and args.interface in (None, "public"):
        raise CliError(f"No service with a type, name or ID of '{args.service}' exists.")
    print_list(args, headers, rows)
    return 0


def _zone_list(args: argparse.Namespace) -> int:
    headers, rows = zone_rows(read_nodes(args, "availability zone list"), long=args.long,
                              config=operator_config())
    print_list(args, headers, rows)
    return 0
