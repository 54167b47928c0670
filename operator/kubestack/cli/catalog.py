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
As in Nova, any user may list the zones, but only an admin sees the hosts: the zones are read
from Nodes when the kubeconfig may (an admin's), else from the summary the operator publishes
for everyone (ConfigMap kubestack-availability-zones in its namespace: `kubestack.compute.zones`),
which has the same zones and statuses and no hosts, so `--long` there says it needs an admin
and lists the zones alone, as openstackclient does when Nova's policy refuses the details.
"""

from __future__ import annotations

import argparse
import sys
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from kubestack.cli.hypervisor import compute_hosts, operator_config, ready_heartbeat
from kubestack.cli.output import GROUP, VERSION, CliError, api_client, connection_args, list_args, print_list, run
from kubestack.compute import zones as az

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
    zlist = zverbs.add_parser("list", help="list the compute hosts' availability zones")
    zlist.add_argument("--compute", action="store_true",
                       help="compute zones only (the only kind there is here; accepted for openstack's sake)")
    zlist.add_argument("--long", action="store_true",
                       help="a row per host with its compute service's state (admin: reads Nodes)")
    zlist.add_argument("--operator-namespace", metavar="NAMESPACE", default=None,
                       help="where the operator publishes the zones for non-admins "
                            f"(default ${az.NAMESPACE_ENV}, else {az.DEFAULT_NAMESPACE})")
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


ZONE_HEADERS = ["Zone Name", "Zone Status"]
LONG_HEADERS = [*ZONE_HEADERS, "Zone Resource", "Host Name", "Service Name", "Service Status"]


def summary_rows(summary: Mapping[str, str]) -> list[list[Any]]:
    """A row per zone of a zone summary (`kubestack.compute.zones`): the admin's listing and
    the published one are the same rows."""
    return [[zone, status] for zone, status in sorted(summary.items())]


def service_status(node: Mapping[str, Any], host) -> str:
    """Nova's compute service state: enabled/disabled, :-)/XXX, the last heartbeat."""
    return " ".join(p for p in (
        "disabled" if host.unschedulable else "enabled",
        ":-)" if host.ready else "XXX",
        ready_heartbeat(node) or "") if p)


def zone_rows(nodes: Iterable[Mapping[str, Any]], *, long: bool = False,
              config=None) -> tuple[list[str], list[list[Any]]]:
    """`openstack availability zone list [--long]`'s rows for the compute hosts among `nodes`."""
    from kubestack.scheduler import SchedulerConfig

    default = (config or SchedulerConfig()).default_availability_zone
    hosts = compute_hosts(nodes)
    summary = az.summary((h for _, h in hosts), default)
    if not long:
        return ZONE_HEADERS, summary_rows(summary)
    rows: list[list[Any]] = []
    for node, host in sorted(hosts, key=lambda p: (az.zone_of(p[1], default), p[1].name)):
        zone = az.zone_of(host, default)
        rows.append([zone, summary[zone], "", host.name, COMPUTE_SERVICE, service_status(node, host)])
    return LONG_HEADERS, rows


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


def read_published_zones(api, namespace: str, nodes_refused: str) -> dict[str, str]:
    """The zone summary the operator publishes for users who may not read Nodes."""
    from kubestack.k8s.rest import ApiError, api_request

    where = f"ConfigMap {namespace}/{az.CONFIGMAP}"
    try:
        return az.published(api_request(api, "GET", f"/api/v1/namespaces/{namespace}/configmaps/{az.CONFIGMAP}")
                            or {})
    except ApiError as exc:
        if exc.status == 403:
            raise CliError(f"availability zone list reads the cluster's Nodes (an admin's kubeconfig: "
                           f"{nodes_refused}) or the zones the operator publishes ({where}: "
                           f"{exc.status} {exc.message}); this user may read neither") from None
        if exc.status == 404:
            raise CliError(f"the operator has not published the availability zones ({where} not found): "
                           f"is it running in namespace {namespace}? (--operator-namespace)") from None
        raise CliError(f"{exc.status} {exc.message or exc.reason}") from None


def _zone_list(args: argparse.Namespace) -> int:
    from kubestack.k8s.rest import ApiError, api_request

    api = api_client(args)
    try:
        nodes = (api_request(api, "GET", "/api/v1/nodes") or {}).get("items") or []
    except ApiError as exc:
        if exc.status != 403:
            raise CliError(f"{exc.status} {exc.message or exc.reason}") from None
        # not an admin: the published zones, which name no hosts
        namespace = args.operator_namespace or az.operator_namespace()
        rows = summary_rows(read_published_zones(api, namespace, f"{exc.status} {exc.message}"))
        if args.long:
            print("note: --long lists the compute hosts, which only an admin may see (Nova's policy): "
                  "zones only", file=sys.stderr)
        print_list(args, ZONE_HEADERS, rows)
        return 0
    headers, rows = zone_rows(nodes, long=args.long, config=operator_config())
    print_list(args, headers, rows)
    return 0
