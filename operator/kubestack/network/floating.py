"""Floating IPs (effects): an address claimed from an external network's pool with the same
claim lock as fixed IPs, realised as a Service of type LoadBalancer asking for that address
and selecting the server's virt-launcher pod (``vm.kubevirt.io/name``).

Kubernetes Services forward ports, not whole addresses (a Service with none is refused, so
an address with nothing to forward holds it with port 1/TCP, which no rule opens): the Service lists the TCP/UDP/SCTP
ports the security groups allow in (the port's when the FloatingIP names a port, the server's
otherwise: :func:`.association.service_groups`; single ports and ranges of up to 64 ports;
traffic the groups do not allow would be dropped anyway). Disassociating drops the selector
and the ports but keeps the Service and the claim, so the address survives a re-associate;
so does a FloatingIP whose server or port is missing (see :mod:`.association`, which decides
what the Service selects and which fixed IP the FloatingIP maps to), and one in ERROR.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubestack.api.securitygroup import SecurityGroup

from . import ipam, naming, policy
from .kube import Kube
from .ports import PortError, _Txn, allocate_address, claim_address, network_claims
from .resolve import NetworkRefError, Purpose, ResolvedNetwork, resolve


def allocate(api, fip: dict) -> tuple[ResolvedNetwork, str]:
    """The FloatingIP's address (requested or the next free one), claimed. Idempotent."""
    kube = Kube(api)
    ns, name = fip["metadata"]["namespace"], fip["metadata"]["name"]
    spec = fip.get("spec") or {}
    try:
        net = resolve(kube, spec["floatingNetwork"], ns, Purpose.FLOATING)
    except NetworkRefError as exc:
        raise PortError(exc.message, exc.code, waiting=exc.waiting) from None
    owners = None
    if net.namespace == ns:
        owners = [{"apiVersion": fip["apiVersion"], "kind": fip["kind"], "name": name,
                   "uid": fip["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}]
    txn = _Txn()
    wanted = spec.get("floatingIpAddress") or (fip.get("status") or {}).get("floatingIpAddress")
    v4 = [p for p in net.plans if p.version == 4] or net.plans
    # a subnet (holding the address asked for) may still be added to the network
    if not v4:
        raise PortError(f"Network {net.ref} has no subnet to allocate floating IPs from.", waiting=True)
    if wanted:
        subnet = ipam.subnet_for(net.plans, wanted)
        if subnet is None:
            raise PortError(f"Floating IP {wanted} is not inside any subnet of network {net.ref}.",
                            waiting=True)
        try:
            ipam.check_requested(subnet, wanted)
        except ipam.IPAMError as exc:
            raise PortError(str(exc)) from None
        claim_address(kube, txn, net, subnet, wanted, ns, name, "FloatingIP", owners)
        return net, wanted
    key = naming.port_key(ns, name)
    taken = set()
    for claim in network_claims(kube, net):
        data = claim.get("data") or {}
        if (claim["metadata"].get("labels") or {}).get(naming.LABEL_PORT_KEY) == key:
            return net, data["address"]
        taken.add(data.get("address"))
    last_error = None
    for subnet in v4:
        try:
            return net, allocate_address(kube, txn, net, subnet, set(taken), ns, name, "FloatingIP", owners)
        except PortError as exc:
            last_error = exc
    raise last_error


HOLD_ADDRESS = [{"name": "hold-address", "protocol": "TCP", "port": 1, "targetPort": 1}]


def service_ports(api, ns: str, groups: list[str]) -> list[dict[str, Any]]:
    """TCP/UDP/SCTP ports the security groups `groups` of namespace `ns` allow in."""
    kube = Kube(api)
    seen, out = set(), []
    for g in groups:
        body = kube.ours("securitygroups", ns, g)
        if body is None:
            continue
        for rule in SecurityGroup.from_k8s(body).spec.rules:
            if str(getattr(rule.direction, "value", rule.direction)) != "ingress":
                continue
            try:
                ports = policy._ports(rule, end_port=False)
            except ValueError:
                continue
            for p in ports or []:
                if "port" not in p or (p["protocol"], p["port"]) in seen:
                    continue
                seen.add((p["protocol"], p["port"]))
                out.append({"name": f"{p['protocol'].lower()}-{p['port']}", "protocol": p["protocol"],
                            "port": p["port"], "targetPort": p["port"]})
    return sorted(out, key=lambda p: (p["protocol"], p["port"]))[:100]


def service(fip: dict, address: str, server: str | None, ports: list[dict]) -> dict[str, Any]:
    ns, name = fip["metadata"]["namespace"], fip["metadata"]["name"]
    spec: dict[str, Any] = {"type": "LoadBalancer", "loadBalancerIP": address,
                            "externalTrafficPolicy": "Local", "ports": ports or HOLD_ADDRESS}
    if server:
        spec["selector"] = {naming.VM_NAME_LABEL: server}
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": naming.floating_service_name(name), "namespace": ns,
                     "labels": {naming.LABEL_MANAGED: naming.MANAGED_BY,
                                naming.LABEL_FLOATING_IP: naming.label_value(name)},
                     "annotations": {"kubestack.io/floating-ip": address},
                     "ownerReferences": [{"apiVersion": fip["apiVersion"], "kind": fip["kind"],
                                          "name": name, "uid": fip["metadata"]["uid"],
                                          "controller": True, "blockOwnerDeletion": True}]},
        "spec": spec,
    }


def service_patch(current: Mapping[str, Any], server: str | None, ports: list[dict]) -> list[dict[str, Any]]:
    """The JSON patch turning a FloatingIP Service's `current` spec into one selecting
    `server`'s launcher pod (None: nothing) and forwarding `ports` (none: only the address
    held); empty when it already does."""
    want_ports = ports or HOLD_ADDRESS
    selector = {naming.VM_NAME_LABEL: server} if server else None
    ops: list[dict[str, Any]] = []
    if [(p["protocol"], p["port"]) for p in current.get("ports") or []] != \
            [(p["protocol"], p["port"]) for p in want_ports]:
        ops.append({"op": "replace", "path": "/spec/ports", "value": want_ports})
    if (current.get("selector") or None) != selector:
        ops.append({"op": "add", "path": "/spec/selector", "value": selector} if selector
                   else {"op": "remove", "path": "/spec/selector"})
    return ops


def release(api, fip: dict) -> int:
    kube = Kube(api)
    ns, name = fip["metadata"]["namespace"], fip["metadata"]["name"]
    net_ns, _ = naming.split_ref((fip.get("spec") or {}).get("floatingNetwork", ""), ns)
    selector = f"kubestack.io/ip-claim=true,{naming.LABEL_PORT_KEY}={naming.port_key(ns, name)}"
    count = 0
    for claim in kube.list_configmaps(net_ns, selector):
        if (claim.get("data") or {}).get("holder") == f"{ns}/{name}":
            count += kube.delete_configmap(net_ns, claim["metadata"]["name"], claim["metadata"].get("uid"))
    return count
