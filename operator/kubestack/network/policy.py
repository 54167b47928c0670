"""Security groups as NetworkPolicy (pod network) and MultiNetworkPolicy (tenant networks).

Neutron's semantics map onto Kubernetes policies almost one to one:

* a port in at least one group is default-deny in both directions, and the allowed traffic
  is the union of its groups' rules — exactly how several policies selecting one pod add up,
  so each group is one policy with ``policyTypes: [Ingress, Egress]``;
* rules are stateful (replies pass), as NetworkPolicy is.

A group's policy selects the virt-launcher pods of its member servers by KubeVirt's own
label ``vm.kubevirt.io/name`` (``In`` the member list), not by a label on the VM template:
attaching a group to, or detaching it from, a running server only rewrites the policies,
with no restart (KubeVirt copies template labels to the pod only at start). A group without
members renders no policy.

Peers: ``remoteIpPrefix`` -> ``ipBlock``; no remote -> ``ipBlock`` 0.0.0.0/0 (IPv4) or ::/0
(IPv6), so the ethertype holds; ``remoteGroup`` -> on the pod network a podSelector on the
remote group's member servers, on tenant networks ``ipBlock``s of the member ports' fixed
IPs of that ethertype (a guest's tenant address is not a pod address, so a podSelector
could not match it; Neutron itself matches remote groups by member addresses).

Protocols: tcp/udp/sctp (by name or number 6/17/132) with a port range -> ``ports`` with
``port``/``endPort`` (MultiNetworkPolicy v1beta1 has no ``endPort``: ranges of up to 64
ports are listed port by port, wider ones are unsupported there); no protocol or ``any`` -> all traffic from the peer. NetworkPolicy
cannot express other protocols (icmp, icmpv6, numbers such as 47): such a rule is not
rendered — the failure is closed, never an over-broad allow — and is listed as unsupported
(the SecurityGroup's status and a Warning Event say so).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from . import naming

PORT_PROTOCOLS = {"tcp": "TCP", "6": "TCP", "udp": "UDP", "17": "UDP", "sctp": "SCTP",
                  "132": "SCTP"}
MNP_API_VERSION = "k8s.cni.cncf.io/v1beta1"
MAX_EXPANDED_PORTS = 64


@dataclass
class Rendered:
    network_policy: dict[str, Any] | None = None
    multi_network_policies: list[dict[str, Any]] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)


def _value(v: Any) -> str:
    return str(getattr(v, "value", v))


def describe(rule) -> str:
    """A rule as ``openstack security group rule list`` would show it, on one line."""
    proto = "any" if rule.protocol is None else _value(rule.protocol)
    ports = ""
    if rule.port_range_min is not None or rule.port_range_max is not None:
        lo = rule.port_range_min or rule.port_range_max
        hi = rule.port_range_max or rule.port_range_min
        ports = f" {lo}:{hi}"
    remote = (f" remote {rule.remote_ip_prefix}" if rule.remote_ip_prefix else
              f" remote group {rule.remote_group}" if rule.remote_group else "")
    return f"{_value(rule.direction)} {_value(rule.ethertype)} {proto}{ports}{remote}"


def _ports(rule, end_port: bool = True) -> list[dict[str, Any]] | None:
    """None: all traffic; a list: those ports; raises ValueError when not expressible."""
    if rule.protocol is None:
        return None
    proto = _value(rule.protocol).lower()
    if proto == "any":
        return None
    if proto not in PORT_PROTOCOLS:
        raise ValueError(f"protocol {proto} cannot be expressed by NetworkPolicy")
    entry: dict[str, Any] = {"protocol": PORT_PROTOCOLS[proto]}
    lo, hi = rule.port_range_min, rule.port_range_max
    if lo is None and hi is not None:
        lo = hi
    if lo is None:
        return [entry]
    hi = lo if hi is None else hi
    if hi == lo:
        return [{**entry, "port": int(lo)}]
    if end_port:
        return [{**entry, "port": int(lo), "endPort": int(hi)}]
    if hi - lo + 1 > MAX_EXPANDED_PORTS:
        raise ValueError(f"port range {lo}:{hi} is wider than {MAX_EXPANDED_PORTS} ports and "
                         f"MultiNetworkPolicy v1beta1 has no endPort")
    return [{**entry, "port": p} for p in range(int(lo), int(hi) + 1)]


def _any_block(ethertype: str) -> dict[str, Any]:
    return {"ipBlock": {"cidr": "::/0" if ethertype == "IPv6" else "0.0.0.0/0"}}


def _members_selector(members: list[str]) -> dict[str, Any]:
    return {"matchExpressions": [{"key": naming.VM_NAME_LABEL, "operator": "In",
                                  "values": sorted(set(members))}]}


def _host_block(address: str) -> dict[str, Any]:
    ip = ipaddress.ip_address(address.split("/")[0])
    return {"ipBlock": {"cidr": f"{ip}/{ip.max_prefixlen}"}}


def _peers(rule, tenant: bool, group_members: dict[str, list[str]],
           group_ips: dict[str, list[str]]) -> list[dict[str, Any]]:
    """The peers of a rule; an empty list means the rule matches nobody (skip it)."""
    ethertype = _value(rule.ethertype)
    if rule.remote_ip_prefix:
        net = ipaddress.ip_network(rule.remote_ip_prefix, strict=False)
        return [{"ipBlock": {"cidr": str(net)}}]
    if rule.remote_group:
        if tenant:
            want = 6 if ethertype == "IPv6" else 4
            return [_host_block(a) for a in sorted(set(group_ips.get(rule.remote_group, [])))
                    if ipaddress.ip_address(a.split("/")[0]).version == want]
        members = group_members.get(rule.remote_group, [])
        return [{"podSelector": _members_selector(members)}] if members else []
    return [_any_block(ethertype)]


def _spec(rules, members: list[str], tenant: bool, group_members, group_ips,
          unsupported: list[str]) -> dict[str, Any]:
    ingress: list[dict[str, Any]] = []
    egress: list[dict[str, Any]] = []
    for rule in rules:
        try:
            ports = _ports(rule, end_port=not tenant)
        except ValueError as exc:
            text = f"{describe(rule)}: {exc}"
            if text not in unsupported:
                unsupported.append(text)
            continue
        peers = _peers(rule, tenant, group_members, group_ips)
        if not peers:
            continue
        entry: dict[str, Any] = {}
        key = "from" if _value(rule.direction) == "ingress" else "to"
        entry[key] = peers
        if ports is not None:
            entry["ports"] = ports
        if entry not in (ingress if key == "from" else egress):
            (ingress if key == "from" else egress).append(entry)
    return {"podSelector": _members_selector(members), "policyTypes": ["Ingress", "Egress"],
            "ingress": ingress, "egress": egress}


def render(namespace: str, group: str, rules, members: list[str],
           group_members: dict[str, list[str]], group_ips: dict[str, list[str]],
           nads: list[str], owner_references: list[dict[str, Any]] | None = None) -> Rendered:
    """The policies of SecurityGroup `namespace/group`.

    members: servers (VM names) in the group; group_members: every group's members (for
    remoteGroup on the pod network); group_ips: every group's member fixed IPs (for
    remoteGroup on tenant networks); nads: ``ns/name`` of the NADs tenant interfaces in
    this namespace use: one MultiNetworkPolicy per NAD, with ``policy-for: <ns>/<nad>``."""
    out = Rendered()
    if not members:
        return out
    meta = {
        "name": naming.policy_name(group), "namespace": namespace,
        "labels": {naming.LABEL_MANAGED: naming.MANAGED_BY, naming.LABEL_SECURITY_GROUP: naming.label_value(group)},
    }
    if owner_references:
        meta["ownerReferences"] = owner_references
    out.network_policy = {
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": dict(meta),
        "spec": _spec(rules, members, False, group_members, group_ips, out.unsupported),
    }
    if nads:
        spec = _spec(rules, members, True, group_members, group_ips, out.unsupported)
        for nad in sorted(set(nads)):
            out.multi_network_policies.append({
                "apiVersion": MNP_API_VERSION, "kind": "MultiNetworkPolicy",
                "metadata": {**meta, "name": naming.mnp_name(group, nad.split("/", 1)[1]),
                             "labels": {**meta["labels"], naming.LABEL_NAD: naming.label_value(nad.split("/", 1)[1])},
                             "annotations": {naming.POLICY_FOR: nad}},
                "spec": spec,
            })
    return out


def default_group_rules() -> list[dict[str, Any]]:
    """Neutron's ``default`` group: all egress, ingress from members of the same group."""
    return [
        {"direction": "egress", "ethertype": "IPv4"},
        {"direction": "egress", "ethertype": "IPv6"},
        {"direction": "ingress", "ethertype": "IPv4", "remoteGroup": "default"},
        {"direction": "ingress", "ethertype": "IPv6", "remoteGroup": "default"},
    ]
