"""Neutron's verbs, like `openstack network|subnet|port|security group|floating ip|router ...`.

    kubestack network create NAME [--provider-network-type bridge|flat|vlan|layer2]
                             [--provider-physical-network P] [--provider-segment N]
                             [--share | --no-share] [--external | --internal] [--mtu N] [--description D]
    kubestack network list | show NAME | delete NAME...
    kubestack network set NAME [--share | --no-share] [--external | --internal] [--mtu N] [--description D]

    kubestack subnet create NAME --network N --subnet-range CIDR [--gateway IP|auto|none]
                            [--allocation-pool start=A,end=B ...] [--dns-nameserver IP ...]
                            [--host-route destination=D,gateway=G ...] [--ip-version 4|6]
                            [--dhcp | --no-dhcp] [--description D]
    kubestack subnet list [--network N] | show SUBNET | delete SUBNET...

    kubestack port create NAME --network N [--fixed-ip subnet=S,ip-address=IP ...] [--mac-address M]
                          [--security-group G ... | --no-security-group] [--disable-port-security]
    kubestack port list [--server S] [--network N] | show NAME | delete NAME...

    kubestack security group create NAME [--description D]
    kubestack security group list | show NAME | delete NAME...
    kubestack security group rule create GROUP [--ingress | --egress] [--ethertype IPv4|IPv6]
                                       [--protocol P] [--dst-port N[:M]] [--icmp-type T [--icmp-code C]]
                                       [--remote-ip CIDR | --remote-group G] [--description D]
    kubestack security group rule list GROUP | delete GROUP INDEX

    kubestack floating ip create EXTERNAL_NETWORK [--name N] [--floating-ip-address IP]
                                 [--port P | --server S] [--fixed-ip-address IP]
    kubestack floating ip list | show FIP | delete FIP...
    kubestack floating ip set FIP (--port P | --server S) [--fixed-ip-address IP]
    kubestack floating ip unset FIP --port

    kubestack router create NAME [--external-gateway NET [--disable-snat]] [--description D]
    kubestack router list | show NAME | delete NAME...
    kubestack router add subnet ROUTER SUBNET
    kubestack router remove subnet ROUTER SUBNET

A subnet is not an object of its own: it is an entry of its Network's ``spec.subnets``, and
its ID is ``NETWORK/SUBNET``; a bare subnet name works wherever it is unique in the project.
Security group rules are entries of the group's ``spec.rules`` and are addressed by their
index (``security group rule list`` shows it). Every edit of such a list reads the object,
changes the list and writes it back with the resourceVersion it read, retrying on a conflict,
so two concurrent edits never lose each other's entries.

Floating IPs are named ``fip-`` and 8 hex digits unless ``--name`` is given; `show`, `set`,
`unset` and `delete` take that name, the ID or the floating address. Networks, ports, groups
and routers are taken by name or ID; ``namespace/name`` refers to another project's shared
or external network.
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
import uuid
from collections.abc import Callable
from typing import Any

from kubestack.cli.output import (
    GROUP, VERSION, CliError, connection_args, custom_api, get_or_none, list_args, manifest,
    namespace_of, print_list, print_show, run, show_args, updated_at,
)

NETWORKS, PORTS, SECURITY_GROUPS, FLOATING_IPS, ROUTERS, SERVERS = (
    "networks", "ports", "securitygroups", "floatingips", "routers", "servers")
NETWORK_TYPES = ("bridge", "flat", "vlan", "layer2")
PROTOCOL_NAMES = ("tcp", "udp", "icmp", "icmpv6", "sctp", "any")
PORT_PROTOCOLS = ("tcp", "udp", "sctp", "6", "17", "132")
ICMP_PROTOCOLS = ("icmp", "icmpv6", "1", "58")
CONFLICT_RETRIES = 5


# ---------------------------------------------------------------------------- parser


def _verbs(parser: argparse.ArgumentParser, dest: str) -> argparse._SubParsersAction:
    verbs = parser.add_subparsers(dest=dest, metavar="VERB")
    verbs.required = True
    return verbs


def _show_verb(verbs, what: str, fn) -> None:
    p = verbs.add_parser("show", help=f"show a {what}")
    p.add_argument("name")
    connection_args(p)
    show_args(p)
    p.set_defaults(func=run(fn))


def _delete_verb(verbs, what: str, fn) -> None:
    p = verbs.add_parser("delete", help=f"delete {what}s")
    p.add_argument("names", nargs="+")
    connection_args(p)
    p.set_defaults(func=run(fn))


def _bool_pair(p: argparse.ArgumentParser, dest: str, on: str, off: str, help_on: str, help_off: str) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument(on, dest=dest, action="store_true", default=None, help=help_on)
    g.add_argument(off, dest=dest, action="store_false", help=help_off)


def register(sub: argparse._SubParsersAction) -> None:
    _register_network(sub)
    _register_subnet(sub)
    _register_port(sub)
    _register_security_group(sub)
    _register_floating_ip(sub)
    _register_router(sub)


def _register_network(sub) -> None:
    verbs = _verbs(sub.add_parser("network", help="Neutron networks: create, list, show, set, delete"),
                   "network_command")
    create = verbs.add_parser("create", help="create a network (openstack network create)")
    create.add_argument("name")
    create.add_argument("--provider-network-type", choices=NETWORK_TYPES)
    create.add_argument("--provider-physical-network", metavar="P",
                        help="host interface or bridge (flat and vlan networks)")
    create.add_argument("--provider-segment", type=int, metavar="N", help="VLAN id (vlan networks)")
    _network_flags(create)
    connection_args(create)
    show_args(create)
    create.set_defaults(func=run(_network_create))

    lst = verbs.add_parser("list", help="list networks")
    connection_args(lst)
    list_args(lst)
    lst.set_defaults(func=run(_network_list))

    _show_verb(verbs, "network", _network_show)
    _delete_verb(verbs, "network", _network_delete)

    set_ = verbs.add_parser("set", help="change a network's sharing, external flag, MTU or description")
    set_.add_argument("name")
    _network_flags(set_)
    connection_args(set_)
    set_.set_defaults(func=run(_network_set))


def _network_flags(p: argparse.ArgumentParser) -> None:
    _bool_pair(p, "shared", "--share", "--no-share", "usable by every project", "this project only")
    _bool_pair(p, "external", "--external", "--internal", "floating IPs and router gateways come from it",
               "an ordinary tenant network")
    p.add_argument("--mtu", type=int)
    p.add_argument("--description")


def _register_subnet(sub) -> None:
    verbs = _verbs(sub.add_parser("subnet", help="Neutron subnets (entries of a network): create, list, show, "
                                                 "delete"), "subnet_command")
    create = verbs.add_parser("create", help="add a subnet to a network (openstack subnet create)")
    create.add_argument("name")
    create.add_argument("--network", required=True)
    create.add_argument("--subnet-range", required=True, metavar="CIDR")
    create.add_argument("--gateway", metavar="IP|auto|none", help="default auto: the first host address")
    create.add_argument("--allocation-pool", action="append", default=[], metavar="start=A,end=B")
    create.add_argument("--dns-nameserver", action="append", default=[], metavar="IP")
    create.add_argument("--host-route", action="append", default=[], metavar="destination=CIDR,gateway=IP")
    create.add_argument("--ip-version", type=int, choices=(4, 6), help="default: the CIDR's")
    dhcp = create.add_mutually_exclusive_group()
    dhcp.add_argument("--dhcp", dest="dhcp", action="store_true", default=True)
    dhcp.add_argument("--no-dhcp", dest="dhcp", action="store_false")
    create.add_argument("--description")
    connection_args(create)
    show_args(create)
    create.set_defaults(func=run(_subnet_create))

    lst = verbs.add_parser("list", help="list subnets")
    lst.add_argument("--network", help="only this network's subnets")
    connection_args(lst)
    list_args(lst)
    lst.set_defaults(func=run(_subnet_list))

    _show_verb(verbs, "subnet (NAME or NETWORK/NAME)", _subnet_show)
    _delete_verb(verbs, "subnet", _subnet_delete)


def _register_port(sub) -> None:
    verbs = _verbs(sub.add_parser("port", help="Neutron ports: create, list, show, delete"), "port_command")
    create = verbs.add_parser("create", help="create a port (openstack port create)")
    create.add_argument("name")
    create.add_argument("--network", required=True)
    create.add_argument("--fixed-ip", action="append", default=[], metavar="subnet=S,ip-address=IP")
    create.add_argument("--mac-address", metavar="M")
    groups = create.add_mutually_exclusive_group()
    groups.add_argument("--security-group", action="append", default=[], help="repeatable; default: default")
    groups.add_argument("--no-security-group", action="store_true")
    create.add_argument("--disable-port-security", action="store_true")
    create.add_argument("--description")
    connection_args(create)
    show_args(create)
    create.set_defaults(func=run(_port_create))

    lst = verbs.add_parser("list", help="list ports")
    lst.add_argument("--server", help="only this server's ports")
    lst.add_argument("--network", help="only ports on this network")
    connection_args(lst)
    list_args(lst)
    lst.set_defaults(func=run(_port_list))

    _show_verb(verbs, "port", _port_show)
    _delete_verb(verbs, "port", _port_delete)


def _register_security_group(sub) -> None:
    security = _verbs(sub.add_parser("security", help="Neutron security groups: `security group ...`"),
                      "security_command")
    verbs = _verbs(security.add_parser("group", help="security groups: create, list, show, delete, rule"),
                   "group_command")
    create = verbs.add_parser("create", help="create a security group (egress allowed, as in Neutron)")
    create.add_argument("name")
    create.add_argument("--description")
    connection_args(create)
    show_args(create)
    create.set_defaults(func=run(_group_create))

    lst = verbs.add_parser("list", help="list security groups")
    connection_args(lst)
    list_args(lst)
    lst.set_defaults(func=run(_group_list))

    _show_verb(verbs, "security group", _group_show)
    _delete_verb(verbs, "security group", _group_delete)

    rverbs = _verbs(verbs.add_parser("rule", help="security group rules: create, list, delete"), "rule_command")
    rcreate = rverbs.add_parser("create", help="add a rule to a group (openstack security group rule create)")
    rcreate.add_argument("group")
    direction = rcreate.add_mutually_exclusive_group()
    direction.add_argument("--ingress", dest="direction", action="store_const", const="ingress", default="ingress")
    direction.add_argument("--egress", dest="direction", action="store_const", const="egress")
    rcreate.add_argument("--ethertype", choices=("IPv4", "IPv6"), help="default: the remote IP's, else IPv4")
    rcreate.add_argument("--protocol", help="tcp, udp, icmp, icmpv6, sctp, any or a number 0-255")
    rcreate.add_argument("--dst-port", metavar="N[:M]", help="port or port range (tcp, udp, sctp)")
    rcreate.add_argument("--icmp-type", type=int)
    rcreate.add_argument("--icmp-code", type=int)
    remote = rcreate.add_mutually_exclusive_group()
    remote.add_argument("--remote-ip", metavar="CIDR")
    remote.add_argument("--remote-group", metavar="G")
    rcreate.add_argument("--description")
    connection_args(rcreate)
    show_args(rcreate)
    rcreate.set_defaults(func=run(_rule_create))

    rlist = rverbs.add_parser("list", help="list a group's rules")
    rlist.add_argument("group")
    connection_args(rlist)
    list_args(rlist)
    rlist.set_defaults(func=run(_rule_list))

    rdelete = rverbs.add_parser("delete", help="remove a rule (by its index in `rule list`)")
    rdelete.add_argument("group")
    rdelete.add_argument("index", type=int)
    connection_args(rdelete)
    rdelete.set_defaults(func=run(_rule_delete))


def _register_floating_ip(sub) -> None:
    floating = _verbs(sub.add_parser("floating", help="Neutron floating IPs: `floating ip ...`"),
                      "floating_command")
    verbs = _verbs(floating.add_parser("ip", help="floating IPs: create, list, show, set, unset, delete"),
                   "fip_command")
    create = verbs.add_parser("create", help="allocate a floating IP (openstack floating ip create)")
    create.add_argument("network", metavar="EXTERNAL_NETWORK")
    create.add_argument("--name", help="object name (default fip-XXXXXXXX)")
    create.add_argument("--floating-ip-address", metavar="IP")
    target = create.add_mutually_exclusive_group()
    target.add_argument("--port")
    target.add_argument("--server")
    create.add_argument("--fixed-ip-address", metavar="IP", help="which fixed IP of the port / server")
    create.add_argument("--description")
    connection_args(create)
    show_args(create)
    create.set_defaults(func=run(_fip_create))

    lst = verbs.add_parser("list", help="list floating IPs")
    connection_args(lst)
    list_args(lst)
    lst.set_defaults(func=run(_fip_list))

    _show_verb(verbs, "floating IP", _fip_show)
    _delete_verb(verbs, "floating IP", _fip_delete)

    set_ = verbs.add_parser("set", help="associate a floating IP with a port or a server")
    set_.add_argument("name")
    target = set_.add_mutually_exclusive_group(required=True)
    target.add_argument("--port")
    target.add_argument("--server")
    set_.add_argument("--fixed-ip-address", metavar="IP")
    connection_args(set_)
    set_.set_defaults(func=run(_fip_set))

    unset = verbs.add_parser("unset", help="disassociate a floating IP (it keeps its address)")
    unset.add_argument("name")
    unset.add_argument("--port", action="store_true", required=True, help="remove the association")
    connection_args(unset)
    unset.set_defaults(func=run(_fip_unset))


def _register_router(sub) -> None:
    verbs = _verbs(sub.add_parser("router", help="Neutron routers: create, list, show, add/remove subnet, "
                                                 "delete"), "router_command")
    create = verbs.add_parser("create", help="create a router (openstack router create)")
    create.add_argument("name")
    create.add_argument("--external-gateway", metavar="NET")
    create.add_argument("--disable-snat", action="store_true")
    create.add_argument("--description")
    connection_args(create)
    show_args(create)
    create.set_defaults(func=run(_router_create))

    lst = verbs.add_parser("list", help="list routers")
    connection_args(lst)
    list_args(lst)
    lst.set_defaults(func=run(_router_list))

    _show_verb(verbs, "router", _router_show)
    _delete_verb(verbs, "router", _router_delete)

    for verb, fn in (("add", _router_add_subnet), ("remove", _router_remove_subnet)):
        action = _verbs(verbs.add_parser(verb, help=f"{verb} a router interface"), f"router_{verb}_command")
        p = action.add_parser("subnet", help=f"{verb} an interface on a subnet (NAME or NETWORK/NAME)")
        p.add_argument("router")
        p.add_argument("subnet")
        connection_args(p)
        p.set_defaults(func=run(fn))


# ---------------------------------------------------------------------------- pure parts: input


def parse_pairs(text: str, option: str, keys: dict[str, str], required: tuple[str, ...] = ()) -> dict[str, str]:
    """`k=v,k2=v2` as the options of openstackclient take it, renamed by `keys`."""
    out: dict[str, str] = {}
    for part in text.split(","):
        k, sep, v = part.partition("=")
        if not sep or not v:
            raise CliError(f"{option} {text!r}: expected {','.join(f'{k}=...' for k in keys)}")
        if k not in keys:
            raise CliError(f"{option} {text!r}: unknown key {k!r} (known: {', '.join(keys)})")
        out[keys[k]] = v
    missing = [k for k in required if keys[k] not in out]
    if missing:
        raise CliError(f"{option} {text!r}: {' and '.join(missing)} required")
    return out


def ip_address(text: str, what: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise CliError(f"{what} {text!r} is not an IP address") from None


def ip_network(text: str, what: str, strict: bool = True) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(text, strict=strict)
    except ValueError as exc:
        if "host bits set" in str(exc):
            fixed = ipaddress.ip_network(text, strict=False)
            raise CliError(f"{what} {text!r} has host bits set: did you mean {fixed}?") from None
        raise CliError(f"{what} {text!r} is not a CIDR (e.g. 10.0.0.0/24 or fd00::/64)") from None


def split_ref(ref: str, namespace: str) -> tuple[str, str]:
    ns, sep, name = ref.rpartition("/")
    return (ns, name) if sep else (namespace, ref)


def network_manifest(args: argparse.Namespace, namespace: str) -> dict:
    spec: dict[str, Any] = {}
    kind, physical, segment = args.provider_network_type, args.provider_physical_network, args.provider_segment
    if (physical or segment is not None) and not kind:
        raise CliError("--provider-physical-network and --provider-segment need --provider-network-type")
    if kind:
        if segment is not None and kind != "vlan":
            raise CliError("--provider-segment is only valid with --provider-network-type vlan")
        if kind == "vlan" and segment is None:
            raise CliError("a vlan network needs --provider-segment (a VLAN id between 1 and 4094)")
        if segment is not None and not 1 <= segment <= 4094:
            raise CliError(f"--provider-segment {segment}: a VLAN id is between 1 and 4094")
        if kind in ("flat", "vlan") and not physical:
            raise CliError(f"a {kind} network needs --provider-physical-network (the host interface or bridge)")
        provider: dict[str, Any] = {"networkType": kind}
        if physical:
            provider["physicalNetwork"] = physical
        if segment is not None:
            provider["segmentationId"] = segment
        spec["provider"] = provider
    spec.update(network_flags(args))
    return manifest("Network", args.name, spec, namespace)


def network_flags(args: argparse.Namespace) -> dict[str, Any]:
    """The spec fields `network create` / `network set` take from --share, --external, --mtu..."""
    out: dict[str, Any] = {}
    if args.shared is not None:
        out["shared"] = args.shared
    if args.external is not None:
        out["external"] = args.external
    if args.mtu is not None:
        if not 68 <= args.mtu <= 9216:
            raise CliError(f"--mtu {args.mtu}: the MTU is between 68 and 9216")
        out["mtu"] = args.mtu
    if args.description is not None:
        out["description"] = args.description
    return out


def subnet_entry(args: argparse.Namespace) -> dict[str, Any]:
    """The `spec.subnets` entry `subnet create` adds (validated as the operator will)."""
    from pydantic import ValidationError

    from kubestack.api.network import Subnet
    from kubestack.network import ipam

    cidr = ip_network(args.subnet_range, "--subnet-range")
    version = args.ip_version or cidr.version
    if version != cidr.version:
        raise CliError(f"--subnet-range {cidr} is an IPv{cidr.version} CIDR but --ip-version is {version}")
    entry: dict[str, Any] = {"name": args.name, "cidr": str(cidr), "ipVersion": version}
    if args.gateway is not None:
        gateway = args.gateway.lower()
        if gateway not in ("auto", "none"):
            gateway = str(ip_address(args.gateway, "--gateway"))
            if ipaddress.ip_address(gateway) not in cidr:
                raise CliError(f"--gateway {gateway} is not inside {cidr}")
        entry["gatewayIp"] = gateway
    pools = []
    for text in args.allocation_pool:
        pool = parse_pairs(text, "--allocation-pool", {"start": "start", "end": "end"}, ("start", "end"))
        start, end = ip_address(pool["start"], "pool start"), ip_address(pool["end"], "pool end")
        if start not in cidr or end not in cidr:
            raise CliError(f"--allocation-pool {text}: the pool must lie inside {cidr}")
        pools.append({"start": str(start), "end": str(end)})
    if pools:
        entry["allocationPools"] = pools
    if args.dns_nameserver:
        entry["dnsNameservers"] = [str(ip_address(a, "--dns-nameserver")) for a in args.dns_nameserver]
    routes = []
    for text in args.host_route:
        route = parse_pairs(text, "--host-route", {"destination": "destination", "gateway": "nexthop"},
                            ("destination", "gateway"))
        routes.append({"destination": str(ip_network(route["destination"], "host route destination")),
                       "nexthop": str(ip_address(route["nexthop"], "host route gateway"))})
    if routes:
        entry["hostRoutes"] = routes
    if not args.dhcp:
        entry["enableDhcp"] = False
    if args.description:
        entry["description"] = args.description
    try:
        model = Subnet.model_validate(entry)
    except ValidationError as exc:
        raise CliError("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())) from None
    problem = ipam.check_pools(ipam.plan(model))
    if problem:
        raise CliError(problem)
    return entry


def port_manifest(args: argparse.Namespace, namespace: str, network: str) -> dict:
    spec: dict[str, Any] = {"network": network}
    fixed = []
    for text in args.fixed_ip:
        item = parse_pairs(text, "--fixed-ip", {"subnet": "subnet", "ip-address": "ipAddress"})
        if "ipAddress" in item:
            item["ipAddress"] = str(ip_address(item["ipAddress"], "--fixed-ip ip-address"))
        fixed.append(item)
    if fixed:
        spec["fixedIps"] = fixed
    if args.mac_address:
        mac = args.mac_address.lower().replace("-", ":")
        parts = mac.split(":")
        if len(parts) != 6 or not all(len(p) == 2 and all(c in "0123456789abcdef" for c in p) for p in parts):
            raise CliError(f"--mac-address {args.mac_address!r} is not a MAC address (e.g. fa:16:3e:12:34:56)")
        spec["macAddress"] = mac
    if args.disable_port_security:
        if args.security_group:
            raise CliError("--security-group needs port security: drop --disable-port-security")
        spec["portSecurityEnabled"] = False
        spec["securityGroups"] = []
    elif args.no_security_group:
        spec["securityGroups"] = []
    elif args.security_group:
        spec["securityGroups"] = sorted(set(args.security_group))
    if args.description:
        spec["description"] = args.description
    return manifest("Port", args.name, spec, namespace)


def default_group_rules() -> list[dict[str, Any]]:
    """A new Neutron group allows all egress, IPv4 and IPv6, and no ingress."""
    return [{"direction": "egress", "ethertype": "IPv4"}, {"direction": "egress", "ethertype": "IPv6"}]


def group_manifest(name: str, namespace: str, description: str | None) -> dict:
    spec: dict[str, Any] = {"rules": default_group_rules()}
    if description:
        spec["description"] = description
    return manifest("SecurityGroup", name, spec, namespace)


def rule_entry(args: argparse.Namespace) -> dict[str, Any]:
    """The `spec.rules` entry `security group rule create` adds (remote group already resolved)."""
    rule: dict[str, Any] = {"direction": args.direction}
    protocol: int | str | None = None
    if args.protocol is not None:
        text = args.protocol.lower()
        if text.isdigit():
            if not 0 <= int(text) <= 255:
                raise CliError(f"--protocol {args.protocol}: an IP protocol number is 0-255")
            protocol = int(text)
        elif text in PROTOCOL_NAMES:
            protocol = None if text == "any" else text
        else:
            raise CliError(f"--protocol {args.protocol!r}: use tcp, udp, icmp, icmpv6, sctp, any or a number 0-255")
    remote = ip_network(args.remote_ip, "--remote-ip", strict=False) if args.remote_ip else None
    ethertype = args.ethertype
    if ethertype is None:
        ethertype = "IPv6" if (remote and remote.version == 6) or protocol in ("icmpv6", 58) else "IPv4"
    if remote and f"IPv{remote.version}" != ethertype:
        raise CliError(f"--remote-ip {args.remote_ip} is IPv{remote.version} but --ethertype is {ethertype}")
    if protocol == "icmpv6" and ethertype != "IPv6":
        raise CliError("protocol icmpv6 needs --ethertype IPv6")
    rule["ethertype"] = ethertype
    if protocol is not None:
        rule["protocol"] = protocol
    if args.dst_port:
        if str(protocol) not in PORT_PROTOCOLS:
            raise CliError("--dst-port needs --protocol tcp, udp or sctp")
        low, sep, high = args.dst_port.partition(":")
        try:
            lo, hi = int(low), int(high if sep else low)
        except ValueError:
            raise CliError(f"--dst-port {args.dst_port!r}: expected N or N:M") from None
        if not (1 <= lo <= 65535 and 1 <= hi <= 65535) or lo > hi:
            raise CliError(f"--dst-port {args.dst_port}: ports are 1-65535 and the range must not be reversed")
        rule["portRangeMin"], rule["portRangeMax"] = lo, hi
    if args.icmp_type is not None or args.icmp_code is not None:
        if str(protocol) not in ICMP_PROTOCOLS:
            raise CliError("--icmp-type and --icmp-code need --protocol icmp or icmpv6")
        if args.icmp_type is None:
            raise CliError("--icmp-code needs --icmp-type")
        for option, value in (("--icmp-type", args.icmp_type), ("--icmp-code", args.icmp_code)):
            if value is not None and not 0 <= value <= 255:
                raise CliError(f"{option} {value}: must be 0-255")
        rule["icmpType"] = args.icmp_type
        if args.icmp_code is not None:
            rule["icmpCode"] = args.icmp_code
    if remote is not None:
        rule["remoteIpPrefix"] = str(remote)
    if args.remote_group:
        rule["remoteGroup"] = args.remote_group
    if args.description:
        rule["description"] = args.description
    return rule


def same_rule(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Neutron's duplicate test: every field but the description."""
    def key(r: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in r.items() if k != "description" and v is not None}
        out.setdefault("direction", "ingress")
        out.setdefault("ethertype", "IPv4")
        if out.get("protocol") == "any":
            del out["protocol"]
        return out
    return key(a) == key(b)


def new_fip_name() -> str:
    return "fip-" + uuid.uuid4().hex[:8]


def fip_manifest(args: argparse.Namespace, namespace: str, name: str) -> dict:
    spec: dict[str, Any] = {"floatingNetwork": args.network}
    if args.floating_ip_address:
        spec["floatingIpAddress"] = str(ip_address(args.floating_ip_address, "--floating-ip-address"))
    spec.update(fip_target(args))
    if args.description:
        spec["description"] = args.description
    return manifest("FloatingIP", name, spec, namespace)


def fip_target(args: argparse.Namespace) -> dict[str, Any]:
    """The association fields of `floating ip create` / `set` (port and server exclude each other)."""
    out: dict[str, Any] = {}
    if args.port:
        out["port"] = args.port
    if args.server:
        out["server"] = args.server
    if args.fixed_ip_address:
        if not out:
            raise CliError("--fixed-ip-address needs --port or --server")
        out["fixedIpAddress"] = str(ip_address(args.fixed_ip_address, "--fixed-ip-address"))
    return out


def router_manifest(args: argparse.Namespace, namespace: str, gateway: str | None) -> dict:
    spec: dict[str, Any] = {}
    if args.disable_snat and not gateway:
        raise CliError("--disable-snat needs --external-gateway")
    if gateway:
        spec["externalGateway"] = {"network": gateway, **({"enableSnat": False} if args.disable_snat else {})}
    if args.description:
        spec["description"] = args.description
    return manifest("Router", args.name, spec, namespace)


# ---------------------------------------------------------------------------- pure parts: output


def _common(obj: dict) -> dict[str, Any]:
    meta = obj["metadata"]
    return {"created_at": meta.get("creationTimestamp"), "id": meta.get("uid"), "name": meta["name"],
            "project_id": meta.get("namespace"), "updated_at": updated_at(obj)}


def _with_reason(fields: dict[str, Any], obj: dict) -> dict[str, Any]:
    reason = (obj.get("status") or {}).get("reason")
    if reason:
        fields["status_reason"] = reason
    return dict(sorted(fields.items()))


def network_fields(net: dict) -> dict[str, Any]:
    """`openstack network show`'s fields."""
    spec, st = net.get("spec") or {}, net.get("status") or {}
    provider = spec.get("provider") or {}
    fields = {
        **_common(net),
        "admin_state_up": "UP" if spec.get("adminStateUp", True) else "DOWN",
        "description": spec.get("description") or "",
        "mtu": spec.get("mtu"),
        "port_security_enabled": spec.get("portSecurityEnabled", True),
        "provider:network_type": provider.get("networkType") or "bridge",
        "provider:physical_network": provider.get("physicalNetwork"),
        "provider:segmentation_id": provider.get("segmentationId"),
        "router:external": "External" if spec.get("external") else "Internal",
        "shared": bool(spec.get("shared")),
        "status": st.get("status") or "BUILD",
        "subnets": [s["name"] for s in spec.get("subnets") or []],
    }
    return _with_reason(fields, net)


def network_rows(nets: list[dict]) -> tuple[list[str], list[list[Any]]]:
    rows = [[n["metadata"].get("uid"), n["metadata"]["name"], [s["name"] for s in (n.get("spec") or {}).get(
        "subnets") or []]] for n in sorted(nets, key=lambda n: n["metadata"]["name"])]
    return ["ID", "Name", "Subnets"], rows


def subnet_id(net: dict, name: str) -> str:
    return f"{net['metadata']['name']}/{name}"


def subnet_fields(net: dict, entry: dict) -> dict[str, Any]:
    """`openstack subnet show`'s fields; gateway and pools are the effective ones."""
    from kubestack.api.network import Subnet
    from kubestack.network import ipam

    plan = ipam.plan(Subnet.model_validate(entry))
    version = plan.version
    addr = ipaddress.IPv4Address if version == 4 else ipaddress.IPv6Address
    used = next((s for s in (net.get("status") or {}).get("subnets") or [] if s.get("name") == entry["name"]), {})
    fields = {
        "allocation_pools": [{"start": str(addr(a)), "end": str(addr(b))} for a, b in plan.pools],
        "cidr": str(plan.cidr),
        "created_at": net["metadata"].get("creationTimestamp"),
        "description": entry.get("description") or "",
        "dns_nameservers": list(entry.get("dnsNameservers") or []),
        "enable_dhcp": entry.get("enableDhcp", True),
        "gateway_ip": str(plan.gateway) if plan.gateway else None,
        "host_routes": [{"destination": r["destination"], "nexthop": r["nexthop"]}
                        for r in entry.get("hostRoutes") or []],
        "id": subnet_id(net, entry["name"]),
        "ip_version": version,
        "name": entry["name"],
        "network_id": net["metadata"]["name"],
        "project_id": net["metadata"].get("namespace"),
        "updated_at": updated_at(net),
    }
    if used.get("allocated") is not None:
        fields["used_ips"] = used["allocated"]
    if used.get("available") is not None:
        fields["available_ips"] = used["available"]
    return dict(sorted(fields.items()))


def subnet_rows(nets: list[dict], network: str | None = None) -> tuple[list[str], list[list[Any]]]:
    rows = []
    for n in sorted(nets, key=lambda n: n["metadata"]["name"]):
        if network and network not in (n["metadata"]["name"], n["metadata"].get("uid")):
            continue
        for s in (n.get("spec") or {}).get("subnets") or []:
            rows.append([subnet_id(n, s["name"]), s["name"], n["metadata"]["name"], s.get("cidr")])
    return ["ID", "Name", "Network", "Subnet"], rows


def _fixed_ips(port: dict) -> list[dict[str, str]]:
    return [{"ip_address": f.get("ipAddress"), "subnet_id": f.get("subnet")}
            for f in (port.get("status") or {}).get("fixedIps") or []]


def port_fields(port: dict) -> dict[str, Any]:
    """`openstack port show`'s fields."""
    spec, st = port.get("spec") or {}, port.get("status") or {}
    fields = {
        **_common(port),
        "admin_state_up": "UP" if spec.get("adminStateUp", True) else "DOWN",
        "allowed_address_pairs": [{"ip_address": p.get("ipAddress"), "mac_address": p.get("macAddress")}
                                  for p in spec.get("allowedAddressPairs") or []],
        "description": spec.get("description") or "",
        # the server it is bound to now: a pre-created port keeps spec.deviceId when its server
        # is deleted (the operator unbinds it in status only); not synced yet, the spec's
        "device_id": (st.get("server") or "") if st.get("status") else (spec.get("deviceId") or ""),
        "device_owner": spec.get("deviceOwner") or "",
        "fixed_ips": _fixed_ips(port),
        "mac_address": st.get("macAddress") or spec.get("macAddress"),
        "network_id": spec.get("network"),
        "port_security_enabled": spec.get("portSecurityEnabled", True),
        "security_group_ids": list(spec.get("securityGroups", ["default"])),
        "status": st.get("status") or "DOWN",
    }
    return _with_reason(fields, port)


def port_rows(ports: list[dict]) -> tuple[list[str], list[list[Any]]]:
    rows = []
    for p in sorted(ports, key=lambda p: p["metadata"]["name"]):
        d = port_fields(p)
        rows.append([d["id"], d["name"], d["mac_address"], d["fixed_ips"], d["status"]])
    return ["ID", "Name", "MAC Address", "Fixed IP Addresses", "Status"], rows


def port_of_server(port: dict, server: str) -> bool:
    spec, st = port.get("spec") or {}, port.get("status") or {}
    labels = port["metadata"].get("labels") or {}
    return server in (spec.get("deviceId"), st.get("server"), labels.get("kubestack.io/server"))


def rule_fields(group: dict, index: int, rule: dict) -> dict[str, Any]:
    """`openstack security group rule show`'s fields; the ID is the rule's index in the group."""
    protocol = rule.get("protocol")
    return {
        "description": rule.get("description") or "",
        "direction": rule.get("direction", "ingress"),
        "ethertype": rule.get("ethertype", "IPv4"),
        "icmp_code": rule.get("icmpCode"),
        "icmp_type": rule.get("icmpType"),
        "id": index,
        "port_range_max": rule.get("portRangeMax"),
        "port_range_min": rule.get("portRangeMin"),
        "protocol": None if protocol in (None, "any") else protocol,
        "remote_group_id": rule.get("remoteGroup"),
        "remote_ip_prefix": rule.get("remoteIpPrefix"),
        "security_group_id": group["metadata"]["name"],
    }


def rule_rows(group: dict) -> tuple[list[str], list[list[Any]]]:
    headers = ["Index", "IP Protocol", "Ethertype", "IP Range", "Port Range", "Direction", "Remote Security Group"]
    rows = []
    for i, r in enumerate((group.get("spec") or {}).get("rules") or []):
        d = rule_fields(group, i, r)
        ip_range = d["remote_ip_prefix"]
        if not ip_range and not d["remote_group_id"]:
            ip_range = "0.0.0.0/0" if d["ethertype"] == "IPv4" else "::/0"
        ports = f"{d['port_range_min']}:{d['port_range_max']}" if d["port_range_min"] is not None else ""
        rows.append([i, d["protocol"], d["ethertype"], ip_range, ports, d["direction"], d["remote_group_id"]])
    return headers, rows


def group_fields(group: dict) -> dict[str, Any]:
    """`openstack security group show`'s fields."""
    spec = group.get("spec") or {}
    fields = {
        **_common(group),
        "description": spec.get("description") or "",
        "rules": [{k: v for k, v in rule_fields(group, i, r).items() if v not in (None, "")}
                  for i, r in enumerate(spec.get("rules") or [])],
        "stateful": spec.get("stateful", True),
    }
    return dict(sorted(fields.items()))


def group_rows(groups: list[dict]) -> tuple[list[str], list[list[Any]]]:
    rows = [[g["metadata"].get("uid"), g["metadata"]["name"], (g.get("spec") or {}).get("description") or "",
             g["metadata"].get("namespace")] for g in sorted(groups, key=lambda g: g["metadata"]["name"])]
    return ["ID", "Name", "Description", "Project"], rows


def fip_fields(fip: dict) -> dict[str, Any]:
    """`openstack floating ip show`'s fields (what the operator reports, else what was asked)."""
    spec, st = fip.get("spec") or {}, fip.get("status") or {}
    fields = {
        **_common(fip),
        "description": spec.get("description") or "",
        "fixed_ip_address": st.get("fixedIpAddress"),
        "floating_ip_address": st.get("floatingIpAddress") or spec.get("floatingIpAddress"),
        "floating_network_id": spec.get("floatingNetwork"),
        "port_id": st.get("port") or spec.get("port"),
        "server": st.get("server") or spec.get("server"),
        "status": st.get("status") or "DOWN",
    }
    return _with_reason(fields, fip)


def fip_rows(fips: list[dict]) -> tuple[list[str], list[list[Any]]]:
    rows = []
    for f in sorted(fips, key=lambda f: f["metadata"]["name"]):
        d = fip_fields(f)
        rows.append([d["id"], d["floating_ip_address"], d["fixed_ip_address"], d["port_id"], d["server"]])
    return ["ID", "Floating IP Address", "Fixed IP Address", "Port", "Server"], rows


def router_fields(router: dict) -> dict[str, Any]:
    """`openstack router show`'s fields."""
    spec, st = router.get("spec") or {}, router.get("status") or {}
    gw = spec.get("externalGateway")
    fields = {
        **_common(router),
        "admin_state_up": "UP" if spec.get("adminStateUp", True) else "DOWN",
        "description": spec.get("description") or "",
        "distributed": bool(spec.get("distributed")),
        "external_gateway_info": {
            "network_id": gw["network"], "enable_snat": gw.get("enableSnat", True),
            "external_fixed_ips": list(st.get("externalGatewayIps") or gw.get("externalFixedIps") or []),
        } if gw else None,
        "interfaces_info": [{"subnet_id": f"{i['network']}/{i['subnet']}",
                             **({"ip_address": i["ipAddress"]} if i.get("ipAddress") else {})}
                            for i in spec.get("interfaces") or []],
        "routes": [{"destination": r["destination"], "nexthop": r["nexthop"]} for r in spec.get("routes") or []],
        "status": st.get("status") or "BUILD",
    }
    return _with_reason(fields, router)


def router_rows(routers: list[dict]) -> tuple[list[str], list[list[Any]]]:
    rows = []
    for r in sorted(routers, key=lambda r: r["metadata"]["name"]):
        d = router_fields(r)
        rows.append([d["id"], d["name"], d["status"], d["admin_state_up"], d["project_id"]])
    return ["ID", "Name", "Status", "State", "Project"], rows


# ---------------------------------------------------------------------------- API helpers


def find(custom, ns: str, plural: str, what: str, ref: str,
         also: Callable[[dict], bool] | None = None) -> dict:
    """An object by name or ID (or what `also` accepts), as openstackclient finds one."""
    found = get_or_none(lambda: custom.get_namespaced_custom_object(GROUP, VERSION, ns, plural, ref))
    if found is not None:
        return found
    for obj in custom.list_namespaced_custom_object(GROUP, VERSION, ns, plural)["items"]:
        if obj["metadata"].get("uid") == ref or (also is not None and also(obj)):
            return obj
    raise CliError(f"No {what} found for {ref}")


def network_ref(custom, ns: str, ref: str) -> str:
    """A network reference for a spec: a local name or ID becomes the name; `namespace/name` stays."""
    if "/" in ref:
        return ref
    return find(custom, ns, NETWORKS, "Network", ref)["metadata"]["name"]


def find_subnet(custom, ns: str, ref: str) -> tuple[dict, dict]:
    """(network, subnet entry) for `SUBNET` or `NETWORK/SUBNET`."""
    network, _, name = ref.rpartition("/")
    nets = [find(custom, ns, NETWORKS, "Network", network)] if network else \
        custom.list_namespaced_custom_object(GROUP, VERSION, ns, NETWORKS)["items"]
    hits = [(n, s) for n in nets for s in (n.get("spec") or {}).get("subnets") or [] if s.get("name") == name]
    if not hits:
        raise CliError(f"No Subnet found for {ref}")
    if len(hits) > 1:
        raise CliError(f"More than one Subnet exists with the name '{name}' (networks "
                       f"{', '.join(sorted(n['metadata']['name'] for n, _ in hits))}): give NETWORK/{name}")
    return hits[0]


def update(custom, ns: str, plural: str, name: str, change: Callable[[dict], dict]) -> dict:
    """Read-modify-write: `change(obj)` returns the spec fields to write (whole lists), sent with
    the resourceVersion read, so a concurrent writer makes the write fail (409) instead of being
    overwritten; then read again and redo the change."""
    from kubernetes.client.rest import ApiException

    for _ in range(CONFLICT_RETRIES):
        obj = custom.get_namespaced_custom_object(GROUP, VERSION, ns, plural, name)
        body = {"metadata": {"resourceVersion": obj["metadata"]["resourceVersion"]}, "spec": change(obj)}
        try:
            return custom.patch_namespaced_custom_object(GROUP, VERSION, ns, plural, name, body,
                                                         field_validation="Strict")
        except ApiException as exc:
            if exc.status != 409:
                raise
    raise CliError(f"{plural[:-1]} {name} kept changing while being updated ({CONFLICT_RETRIES} conflicts); "
                   f"try again")


def patch_spec(custom, ns: str, plural: str, name: str, spec: dict) -> dict:
    return custom.patch_namespaced_custom_object(GROUP, VERSION, ns, plural, name, {"spec": spec},
                                                 field_validation="Strict")


def create(custom, ns: str, plural: str, body: dict) -> dict:
    return custom.create_namespaced_custom_object(GROUP, VERSION, ns, plural, body, field_validation="Strict")


def delete_all(args: argparse.Namespace, plural: str, what: str,
               resolve: Callable[[Any, str, str], str]) -> int:
    """Delete each named object (`resolve` gives its name), reporting failures as openstack does."""
    from kubernetes.client.rest import ApiException

    custom = custom_api(args)
    ns = namespace_of(args)
    failed = 0
    for ref in args.names:
        try:
            custom.delete_namespaced_custom_object(GROUP, VERSION, ns, plural, resolve(custom, ns, ref))
        except (CliError, ApiException) as exc:
            failed += 1
            reason = exc if isinstance(exc, CliError) else exc.reason
            print(f"Failed to delete {what} with name or ID '{ref}': {reason}", file=sys.stderr)
    if failed:
        raise CliError(f"{failed} of {len(args.names)} {what}s failed to delete.")
    return 0


def _finder(plural: str, what: str, also: Callable[[str], Callable[[dict], bool]] | None = None):
    return lambda custom, ns, ref: find(custom, ns, plural, what, ref,
                                        also(ref) if also else None)["metadata"]["name"]


# ---------------------------------------------------------------------------- network verbs


def _network_create(args: argparse.Namespace) -> int:
    custom, ns = custom_api(args), namespace_of(args)
    print_show(args, network_fields(create(custom, ns, NETWORKS, network_manifest(args, ns))))
    return 0


def _network_list(args: argparse.Namespace) -> int:
    custom, ns = custom_api(args), namespace_of(args)
    print_list(args, *network_rows(custom.list_namespaced_custom_object(GROUP, VERSION, ns, NETWORKS)["items"]))
    return 0


def _network_show(args: argparse.Namespace) -> int:
    print_show(args, network_fields(find(custom_api(args), namespace_of(args), NETWORKS, "Network", args.name)))
    return 0


def _network_delete(args: argparse.Namespace) -> int:
    return delete_all(args, NETWORKS, "network", _finder(NETWORKS, "Network"))


def _network_set(args: argparse.Namespace) -> int:
    spec = network_flags(args)
    if not spec:
        raise CliError("nothing to set: give --share/--no-share, --external/--internal, --mtu or --description")
    custom, ns = custom_api(args), namespace_of(args)
    patch_spec(custom, ns, NETWORKS, find(custom, ns, NETWORKS, "Network", args.name)["metadata"]["name"], spec)
    return 0


# ---------------------------------------------------------------------------- subnet verbs


def _subnet_create(args: argparse.Namespace) -> int:
    entry = subnet_entry(args)
    custom, ns = custom_api(args), namespace_of(args)
    net_ns, net = split_ref(args.network, ns)
    name = find(custom, net_ns, NETWORKS, "Network", net)["metadata"]["name"]

    def add(obj: dict) -> dict:
        subnets = list((obj.get("spec") or {}).get("subnets") or [])
        if any(s.get("name") == entry["name"] for s in subnets):
            raise CliError(f"network {name} already has a subnet named {entry['name']}: subnet names are unique "
                           f"within a network (delete it first, or pick another name)")
        return {"subnets": subnets + [entry]}

    updated = update(custom, net_ns, NETWORKS, name, add)
    print_show(args, subnet_fields(updated, entry))
    return 0


def _subnet_list(args: argparse.Namespace) -> int:
    custom, ns = custom_api(args), namespace_of(args)
    nets = custom.list_namespaced_custom_object(GROUP, VERSION, ns, NETWORKS)["items"]
    if args.network:
        find(custom, ns, NETWORKS, "Network", args.network)
    print_list(args, *subnet_rows(nets, args.network))
    return 0


def _subnet_show(args: argparse.Namespace) -> int:
    print_show(args, subnet_fields(*find_subnet(custom_api(args), namespace_of(args), args.name)))
    return 0


def subnet_users(ports: list[dict], routers: list[dict], network: str, subnet: str) -> list[str]:
    """What keeps a subnet from being deleted: ports with an address in it, router interfaces on it."""
    out = []
    for p in ports:
        ref = (p.get("spec") or {}).get("network")
        if ref in (network, f"{p['metadata'].get('namespace')}/{network}") and any(
                f.get("subnet") == subnet for f in (p.get("status") or {}).get("fixedIps") or []):
            out.append(f"port {p['metadata']['name']}")
    for r in routers:
        if any(i.get("subnet") == subnet and i.get("network") in (network, f"{r['metadata'].get('namespace')}/"
                                                                           f"{network}")
               for i in (r.get("spec") or {}).get("interfaces") or []):
            out.append(f"router {r['metadata']['name']}")
    return out


def _subnet_delete(args: argparse.Namespace) -> int:
    from kubernetes.client.rest import ApiException

    custom, ns = custom_api(args), namespace_of(args)
    failed = 0
    for ref in args.names:
        try:
            net, entry = find_subnet(custom, ns, ref)
            network, name = net["metadata"]["name"], entry["name"]
            users = subnet_users(custom.list_namespaced_custom_object(GROUP, VERSION, ns, PORTS)["items"],
                                 custom.list_namespaced_custom_object(GROUP, VERSION, ns, ROUTERS)["items"],
                                 network, name)
            if users:
                raise CliError(f"subnet {network}/{name} is in use by {', '.join(users)}")

            def remove(obj: dict, name=name) -> dict:
                return {"subnets": [s for s in (obj.get("spec") or {}).get("subnets") or [] if s.get("name") != name]}

            update(custom, ns, NETWORKS, network, remove)
        except (CliError, ApiException) as exc:
            failed += 1
            reason = exc if isinstance(exc, CliError) else exc.reason
            print(f"Failed to delete subnet with name or ID '{ref}': {reason}", file=sys.stderr)
    if failed:
        raise CliError(f"{failed} of {len(args.names)} subnets failed to delete.")
    return 0


# ---------------------------------------------------------------------------- port verbs


def _port_create(args: argparse.Namespace) -> int:
    custom, ns = custom_api(args), namespace_of(args)
    body = port_manifest(args, ns, network_ref(custom, ns, args.network))
    print_show(args, port_fields(create(custom, ns, PORTS, body)))
    return 0


def _port_list(args: argparse.Namespace) -> int:
    custom, ns = custom_api(args), namespace_of(args)
    ports = custom.list_namespaced_custom_object(GROUP, VERSION, ns, PORTS)["items"]
    if args.server:
        server = find(custom, ns, SERVERS, "Server", args.server)["metadata"]["name"]
        ports = [p for p in ports if port_of_server(p, server)]
    if args.network:
        network = network_ref(custom, ns, args.network)
        ports = [p for p in ports if (p.get("spec") or {}).get("network") in (network, f"{ns}/{network}")]
    print_list(args, *port_rows(ports))
    return 0


def _port_show(args: argparse.Namespace) -> int:
    print_show(args, port_fields(find(custom_api(args), namespace_of(args), PORTS, "Port", args.name)))
    return 0


def _port_delete(args: argparse.Namespace) -> int:
    return delete_all(args, PORTS, "port", _finder(PORTS, "Port"))


# ---------------------------------------------------------------------------- security group verbs


def _group_create(args: argparse.Namespace) -> int:
    custom, ns = custom_api(args), namespace_of(args)
    created = create(custom, ns, SECURITY_GROUPS, group_manifest(args.name, ns, args.description))
    print_show(args, group_fields(created))
    return 0


def _group_list(args: argparse.Namespace) -> int:
    custom, ns = custom_api(args), namespace_of(args)
    print_list(args, *group_rows(custom.list_namespaced_custom_object(GROUP, VERSION, ns, SECURITY_GROUPS)["items"]))
    return 0


def _find_group(custom, ns: str, ref: str) -> dict:
    return find(custom, ns, SECURITY_GROUPS, "SecurityGroup", ref)


def _group_show(args: argparse.Namespace) -> int:
    print_show(args, group_fields(_find_group(custom_api(args), namespace_of(args), args.name)))
    return 0


def _group_delete(args: argparse.Namespace) -> int:
    return delete_all(args, SECURITY_GROUPS, "security group", _finder(SECURITY_GROUPS, "SecurityGroup"))


def _rule_create(args: argparse.Namespace) -> int:
    custom, ns = custom_api(args), namespace_of(args)
    name = _find_group(custom, ns, args.group)["metadata"]["name"]
    if args.remote_group:
        args.remote_group = _find_group(custom, ns, args.remote_group)["metadata"]["name"]
    rule = rule_entry(args)
    index: list[int] = []

    def add(obj: dict) -> dict:
        rules = list((obj.get("spec") or {}).get("rules") or [])
        if any(same_rule(r, rule) for r in rules):
            raise CliError(f"Security group rule already exists in group {name}")
        index[:] = [len(rules)]
        return {"rules": rules + [rule]}

    updated = update(custom, ns, SECURITY_GROUPS, name, add)
    print_show(args, rule_fields(updated, index[0], rule))
    return 0


def _rule_list(args: argparse.Namespace) -> int:
    print_list(args, *rule_rows(_find_group(custom_api(args), namespace_of(args), args.group)))
    return 0


def _rule_delete(args: argparse.Namespace) -> int:
    custom, ns = custom_api(args), namespace_of(args)
    name = _find_group(custom, ns, args.group)["metadata"]["name"]

    def remove(obj: dict) -> dict:
        rules = list((obj.get("spec") or {}).get("rules") or [])
        if not 0 <= args.index < len(rules):
            raise CliError(f"security group {name} has no rule {args.index} (it has {len(rules)}: "
                           f"see `kubestack security group rule list {name}`)")
        return {"rules": rules[:args.index] + rules[args.index + 1:]}

    update(custom, ns, SECURITY_GROUPS, name, remove)
    return 0


# ---------------------------------------------------------------------------- floating IP verbs


def _resolve_target(custom, ns: str, args: argparse.Namespace) -> None:
    """`--port` / `--server` given by name or ID become names."""
    if args.port:
        args.port = find(custom, ns, PORTS, "Port", args.port)["metadata"]["name"]
    if args.server:
        args.server = find(custom, ns, SERVERS, "Server", args.server)["metadata"]["name"]


def _find_fip(custom, ns: str, ref: str) -> dict:
    def by_address(f: dict) -> bool:
        return ref in ((f.get("status") or {}).get("floatingIpAddress"), (f.get("spec") or {}).get(
            "floatingIpAddress"))
    return find(custom, ns, FLOATING_IPS, "FloatingIP", ref, by_address)


def _fip_create(args: argparse.Namespace) -> int:
    custom, ns = custom_api(args), namespace_of(args)
    _resolve_target(custom, ns, args)
    args.network = network_ref(custom, ns, args.network)
    body = fip_manifest(args, ns, args.name or new_fip_name())
    print_show(args, fip_fields(create(custom, ns, FLOATING_IPS, body)))
    return 0


def _fip_list(args: argparse.Namespace) -> int:
    custom, ns = custom_api(args), namespace_of(args)
    print_list(args, *fip_rows(custom.list_namespaced_custom_object(GROUP, VERSION, ns, FLOATING_IPS)["items"]))
    return 0


def _fip_show(args: argparse.Namespace) -> int:
    print_show(args, fip_fields(_find_fip(custom_api(args), namespace_of(args), args.name)))
    return 0


def _fip_delete(args: argparse.Namespace) -> int:
    return delete_all(args, FLOATING_IPS, "floating IP", lambda c, ns, ref: _find_fip(c, ns, ref)["metadata"]["name"])


def _fip_set(args: argparse.Namespace) -> int:
    custom, ns = custom_api(args), namespace_of(args)
    name = _find_fip(custom, ns, args.name)["metadata"]["name"]
    _resolve_target(custom, ns, args)
    target = fip_target(args)
    # one association at a time: the other target and a stale fixed address are cleared
    spec = {"port": None, "server": None, "fixedIpAddress": None, **target}
    patch_spec(custom, ns, FLOATING_IPS, name, spec)
    return 0


def _fip_unset(args: argparse.Namespace) -> int:
    custom, ns = custom_api(args), namespace_of(args)
    name = _find_fip(custom, ns, args.name)["metadata"]["name"]
    patch_spec(custom, ns, FLOATING_IPS, name, {"port": None, "server": None, "fixedIpAddress": None})
    return 0


# ---------------------------------------------------------------------------- router verbs


def _router_create(args: argparse.Namespace) -> int:
    custom, ns = custom_api(args), namespace_of(args)
    gateway = network_ref(custom, ns, args.external_gateway) if args.external_gateway else None
    print_show(args, router_fields(create(custom, ns, ROUTERS, router_manifest(args, ns, gateway))))
    return 0


def _router_list(args: argparse.Namespace) -> int:
    custom, ns = custom_api(args), namespace_of(args)
    print_list(args, *router_rows(custom.list_namespaced_custom_object(GROUP, VERSION, ns, ROUTERS)["items"]))
    return 0


def _router_show(args: argparse.Namespace) -> int:
    print_show(args, router_fields(find(custom_api(args), namespace_of(args), ROUTERS, "Router", args.name)))
    return 0


def _router_delete(args: argparse.Namespace) -> int:
    return delete_all(args, ROUTERS, "router", _finder(ROUTERS, "Router"))


def _router_interface(args: argparse.Namespace, attach: bool) -> int:
    custom, ns = custom_api(args), namespace_of(args)
    name = find(custom, ns, ROUTERS, "Router", args.router)["metadata"]["name"]
    net, entry = find_subnet(custom, ns, args.subnet)
    network, subnet = net["metadata"]["name"], entry["name"]

    def change(obj: dict) -> dict:
        interfaces = list((obj.get("spec") or {}).get("interfaces") or [])
        mine = [i for i in interfaces if i.get("network") in (network, f"{ns}/{network}") and i.get("subnet") == subnet]
        if attach:
            if mine:
                raise CliError(f"router {name} already has an interface on subnet {network}/{subnet}")
            return {"interfaces": interfaces + [{"network": network, "subnet": subnet}]}
        if not mine:
            raise CliError(f"router {name} has no interface on subnet {network}/{subnet}")
        return {"interfaces": [i for i in interfaces if i not in mine]}

    update(custom, ns, ROUTERS, name, change)
    return 0


def _router_add_subnet(args: argparse.Namespace) -> int:
    return _router_interface(args, attach=True)


def _router_remove_subnet(args: argparse.Namespace) -> int:
    return _router_interface(args, attach=False)
