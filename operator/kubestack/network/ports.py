"""Ports and fixed IPs for Servers, as Neutron allocates them (effects; explicit ApiClient).

The lock: every fixed IP in use is an *IP claim*, an immutable ConfigMap in the network's
namespace named after the address (:func:`naming.claim_name`). Creating it is the
allocation; the API server refuses a second object of the same name, so two ports never get
one address however many boots race. A claim's labels say which network, subnet and port
(``port-key``) hold it, its data the address.

Ownership (what releases an address):

* a port the operator makes for ``Server.spec.networks[i]`` is ``<server>-<i>``, owned by
  the Server; its claims are owned by the Server too when they live in the same namespace,
  so deleting the Server releases everything through the garbage collector, and a
  stop/start, migrate or shelve — which keep the Server — keep the port, its IP and its MAC;
* a port a user made is not owned by the Server (it outlives it, like a Neutron port
  passed with ``--port``); its claims are owned by the Port;
* a claim on another project's (shared) network cannot carry an owner reference (they are
  namespace-local), so the Port is labelled ``kubestack.io/remote-claims`` and the Port
  controller releases those claims when the Port goes (:func:`release_port_claims`).

Every step is idempotent: a retried call finds the port, or the claims an interrupted call
left (by ``port-key``), and reuses them. A :class:`PortError` (unknown or refused network,
unknown security group, bad or taken requested IP, exhausted subnet) is raised after
undoing whatever this call created, so a failed boot leaves no half-built ports or claims; it
says whether it waits for something that may still come (:mod:`.faults`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from kubernetes.client.rest import ApiException

from kubestack.api.port import FixedIP, PortSpec
from kubestack.api.server import ServerSpec

from . import cni, ipam, mac, naming, policy
from .binding import bind
from .faults import NetworkFault
from .interfaces import AllocatedInterface, Route
from .kube import Kube, owner_ref
from .resolve import NetworkRefError, Purpose, ResolvedNetwork, resolve

log = logging.getLogger(__name__)

CLAIM_SELECTOR = f"{naming.LABEL_IP_CLAIM}=true"


class PortError(NetworkFault):
    """A port cannot be made: the message is the fault users see (Nova's fault message)."""


@dataclass
class _Txn:
    """What this call created, to undo on failure."""

    claims: list[tuple[str, str]] = field(default_factory=list)
    ports: list[tuple[str, str]] = field(default_factory=list)

    def rollback(self, kube: Kube) -> None:
        for ns, name in reversed(self.ports):
            try:
                kube.delete("kubestack.io", "v1alpha1", "ports", ns, name)
            except ApiException as exc:
                log.warning("rollback: could not delete port %s/%s: %s", ns, name, exc.reason)
        for ns, name in reversed(self.claims):
            try:
                kube.delete_configmap(ns, name)
            except ApiException as exc:
                log.warning("rollback: could not release claim %s/%s: %s", ns, name, exc.reason)


@dataclass
class _Request:
    subnet: ipam.SubnetPlan
    address: str | None  # None: any free address of the subnet


@dataclass
class _Iface:
    index: int
    port_name: str
    net: ResolvedNetwork
    requests: list[_Request]
    port: dict | None  # the Port as it exists now (None: to be created)
    user_port: bool


# ------------------------------------------------------------------------------- helpers


def _requests(net: ResolvedNetwork, fixed_ips: list[FixedIP]) -> list[_Request]:
    """Which addresses a port wants: explicit ones, or one from the first subnet of each
    IP version (a port on a network without subnets gets none, as in Neutron)."""
    by_name = {p.name: p for p in net.plans}
    if not fixed_ips:
        out = []
        for version in (4, 6):
            first = next((p for p in net.plans if p.version == version), None)
            if first is not None:
                out.append(_Request(first, None))
        return out
    out = []
    for fip in fixed_ips:
        subnet = None
        if fip.subnet:
            subnet = by_name.get(fip.subnet)
            if subnet is None:
                raise PortError(f"Subnet {fip.subnet} could not be found on network {net.name}.", 404,
                                waiting=True)
        if fip.ip_address:
            if subnet is None:
                subnet = ipam.subnet_for(net.plans, fip.ip_address)
                if subnet is None:
                    cidrs = ", ".join(str(p.cidr) for p in net.plans) or "no subnets"
                    # a subnet holding it may still be added to the network
                    raise PortError(f"IP address {fip.ip_address} is not inside any subnet of "
                                    f"network {net.name} ({cidrs}).", waiting=True)
            try:
                address = ipam.check_requested(subnet, fip.ip_address)
            except ipam.IPAMError as exc:
                raise PortError(str(exc)) from None
            out.append(_Request(subnet, address))
        else:
            out.append(_Request(subnet, None))
    seen = set()
    for r in out:
        if r.address and r.address in seen:
            raise PortError(f"IP address {r.address} is requested twice on one port.")
        seen.add(r.address)
    return out


def _claim_body(net: ResolvedNetwork, subnet: ipam.SubnetPlan, address: str, holder_ns: str,
                holder: str, holder_kind: str, owners: list[dict] | None) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": naming.claim_name(net.name, address),
        "namespace": net.namespace,
        "labels": {
            naming.LABEL_MANAGED: naming.MANAGED_BY,
            naming.LABEL_IP_CLAIM: "true",
            naming.LABEL_NETWORK: naming.label_value(net.name),
            naming.LABEL_SUBNET: subnet.name,
            naming.LABEL_PORT_KEY: naming.port_key(holder_ns, holder),
            naming.LABEL_HOLDER_KIND: holder_kind,
        },
    }
    if owners:
        meta["ownerReferences"] = owners
    return {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "immutable": True,
        "data": {"address": address, "cidr": str(subnet.cidr), "subnet": subnet.name,
                 "network": net.ref, "holder": f"{holder_ns}/{holder}", "holderKind": holder_kind},
    }


def _holder_key(claim: dict) -> str | None:
    return ((claim.get("metadata") or {}).get("labels") or {}).get(naming.LABEL_PORT_KEY)


def network_claims(kube: Kube, net: ResolvedNetwork) -> list[dict]:
    selector = f"{CLAIM_SELECTOR},{naming.LABEL_NETWORK}={naming.label_value(net.name)}"
    return [c for c in kube.list_configmaps(net.namespace, selector)
            if (c.get("data") or {}).get("network") == net.ref]


def claim_address(kube: Kube, txn: _Txn, net: ResolvedNetwork, subnet: ipam.SubnetPlan,
                  address: str, holder_ns: str, holder: str, holder_kind: str,
                  owners: list[dict] | None) -> None:
    """Hold `address` for the holder: reuse its own claim, create a missing one, or fail
    when another port holds it."""
    name = naming.claim_name(net.name, address)
    key = naming.port_key(holder_ns, holder)
    for _ in range(3):
        existing = kube.get_configmap(net.namespace, name)
        if existing is not None:
            if _holder_key(existing) == key:
                return
            raise PortError(f"IP address {address} already allocated in subnet {subnet.name}.", 409,
                            waiting=True)
        body = _claim_body(net, subnet, address, holder_ns, holder, holder_kind, owners)
        if kube.create_configmap(net.namespace, body):
            txn.claims.append((net.namespace, name))
            return
    raise PortError(f"IP address {address} on network {net.name} is changing hands; try again.", 409,
                    waiting=True)


def allocate_address(kube: Kube, txn: _Txn, net: ResolvedNetwork, subnet: ipam.SubnetPlan,
                     taken: set[str], holder_ns: str, holder: str, holder_kind: str,
                     owners: list[dict] | None) -> str:
    """The lowest free pool address of `subnet`, claimed for the holder."""
    for candidate in ipam.iter_free(subnet, taken):
        body = _claim_body(net, subnet, candidate, holder_ns, holder, holder_kind, owners)
        if kube.create_configmap(net.namespace, body):
            txn.claims.append((net.namespace, body["metadata"]["name"]))
            taken.add(candidate)
            return candidate
        taken.add(candidate)  # someone else was faster: try the next one
    raise PortError(f"No more IP addresses available on network {net.name} "
                    f"(subnet {subnet.name}, {subnet.cidr}).", 500, waiting=True)


def realise_addresses(kube: Kube, txn: _Txn, net: ResolvedNetwork, requests: list[_Request],
                      holder_ns: str, holder: str, holder_kind: str,
                      owners: list[dict] | None) -> list[tuple[str, str]]:
    """Claims for every request; returns [(subnet name, address)] in request order."""
    out: list[tuple[str, str]] = []
    fixed = [r for r in requests if r.address]
    for r in fixed:
        claim_address(kube, txn, net, r.subnet, r.address, holder_ns, holder, holder_kind, owners)
    auto = [r for r in requests if not r.address]
    taken_by_subnet: dict[str, set[str]] = {}
    mine: dict[str, list[str]] = {}
    if auto:
        key = naming.port_key(holder_ns, holder)
        requested = {r.address for r in fixed}
        for claim in network_claims(kube, net):
            data = claim.get("data") or {}
            subnet_name, address = data.get("subnet", ""), data.get("address", "")
            taken_by_subnet.setdefault(subnet_name, set()).add(address)
            if _holder_key(claim) == key and address not in requested:
                mine.setdefault(subnet_name, []).append(address)  # left by an interrupted call
    for r in requests:
        if r.address:
            out.append((r.subnet.name, r.address))
            continue
        reuse = sorted(mine.get(r.subnet.name, []), key=lambda a: ipam._as_int(a))
        if reuse:
            address = reuse[0]
            mine[r.subnet.name].remove(address)
        else:
            taken = taken_by_subnet.setdefault(r.subnet.name, set())
            address = allocate_address(kube, txn, net, r.subnet, taken, holder_ns, holder,
                                       holder_kind, owners)
        out.append((r.subnet.name, address))
    return out


def ensure_nad(kube: Kube, net: ResolvedNetwork, target_ns: str) -> str:
    """The NAD of `net` in `target_ns` (created on demand); returns ``ns/name``."""
    name = naming.nad_name(net.namespace, net.name, target_ns)
    if kube.get("k8s.cni.cncf.io", "v1", "network-attachment-definitions", target_ns, name) is None:
        owners = [owner_ref(net.body, controller=True)] if target_ns == net.namespace else None
        body = cni.nad(net.namespace, net.name, net.model.spec, target_ns, owner_references=owners)
        kube.create("k8s.cni.cncf.io", "v1", "network-attachment-definitions", target_ns, body)
    return f"{target_ns}/{name}"


def ensure_security_groups(kube: Kube, namespace: str, groups: list[str]) -> None:
    """Every group must exist in the project; Neutron's ``default`` is made on demand."""
    for group in groups:
        if kube.ours("securitygroups", namespace, group) is not None:
            continue
        if group == "default":
            kube.create_ours("securitygroups", namespace, default_security_group(namespace))
            continue
        raise PortError(f"Security group {group} not found for project {namespace}.", 404, waiting=True)


def default_security_group(namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "kubestack.io/v1alpha1", "kind": "SecurityGroup",
        "metadata": {"name": "default", "namespace": namespace,
                     "labels": {naming.LABEL_MANAGED: naming.MANAGED_BY}},
        "spec": {"description": "Default security group", "rules": policy.default_group_rules()},
    }


def _interface(iface: _Iface, port: dict, nad: str) -> AllocatedInterface:
    spec = PortSpec.model_validate(port["spec"])
    plans = {p.name: p for p in iface.net.plans}
    ips, gateways, routes, dns = [], [], [], []
    subnets = []
    for fip in spec.fixed_ips:
        subnet = plans.get(fip.subnet) if fip.subnet else ipam.subnet_for(iface.net.plans, fip.ip_address)
        if subnet is None or not fip.ip_address:
            continue
        subnets.append(subnet.name)
        ips.append(ipam.with_prefix(subnet, fip.ip_address))
        if subnet.gateway is not None and str(subnet.gateway) not in gateways:
            gateways.append(str(subnet.gateway))
        for dest, hop in subnet.routes:
            route = Route(dest, hop)
            if route not in routes:
                routes.append(route)
        for server in subnet.dns:
            if server not in dns:
                dns.append(server)
    return AllocatedInterface(
        name=naming.interface_name(iface.index), network=iface.net.ref,
        network_name=iface.net.name, nad=nad, port=port["metadata"]["name"],
        mac=spec.mac_address or "", ips=tuple(ips), gateway=gateways[0] if gateways else None,
        gateways=tuple(gateways), routes=tuple(routes), dns=tuple(dns),
        mtu=iface.net.model.spec.mtu,
        security_groups=tuple(spec.security_groups) if spec.port_security_enabled else (),
        port_security_enabled=spec.port_security_enabled, subnets=tuple(subnets),
    )


def _fixed_ips(addresses: list[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"subnet": s, "ipAddress": a} for s, a in addresses]


def _has_all_addresses(port: dict) -> bool:
    fixed = (port.get("spec") or {}).get("fixedIps") or []
    return all(f.get("ipAddress") for f in fixed)


# ------------------------------------------------------------------------------- the API


def allocate_server_ports(api, server: dict) -> list[AllocatedInterface]:
    """Ensure a port with fixed IPs and a MAC for every ``spec.networks`` entry of `server`
    (a Server body) and return its interfaces, in order. Idempotent; raises
    :class:`PortError` after undoing this call's writes."""
    kube = Kube(api)
    meta = server["metadata"]
    ns, sname = meta["namespace"], meta["name"]
    spec = ServerSpec.model_validate(server.get("spec") or {})
    txn = _Txn()
    try:
        if spec.networks:
            ensure_security_groups(kube, ns, list(spec.security_groups))
        plan = _plan(kube, ns, sname, spec)
        out = []
        for iface in plan:
            port = _realise(kube, txn, server, spec, iface)
            nad = ensure_nad(kube, iface.net, ns)
            out.append(_interface(iface, port, nad))
        return out
    except NetworkRefError as exc:
        txn.rollback(kube)
        raise PortError(exc.message, exc.code, waiting=exc.waiting) from None
    except PortError:
        txn.rollback(kube)
        raise
    except Exception:
        txn.rollback(kube)
        raise


def _plan(kube: Kube, ns: str, sname: str, spec: ServerSpec) -> list[_Iface]:
    """Resolve every interface before writing anything (reads only)."""
    out = []
    used_ports = set()
    for i, entry in enumerate(spec.networks):
        if entry.port:
            if entry.port in used_ports:
                raise PortError(f"Port {entry.port} is given twice.")
            used_ports.add(entry.port)
            port = kube.ours("ports", ns, entry.port)
            if port is None:
                raise PortError(f"Port {entry.port} could not be found.", 404, waiting=True)
            pspec = PortSpec.model_validate(port["spec"])
            if pspec.device_id and pspec.device_id != sname and \
                    bind(port, kube.ours("servers", ns, pspec.device_id)).server:
                # a port whose server is gone (or no longer plugs it) is free, as in Neutron,
                # where deleting the server cleared its device_id (here only its status says
                # so: see binding.bind); this server takes it by writing its own deviceId
                raise PortError(f"Port {entry.port} is still in use by server {pspec.device_id}.", 409,
                                waiting=True)
            net = _resolve(kube, pspec.network, ns)
            out.append(_Iface(i, entry.port, net, _requests(net, pspec.fixed_ips), port, True))
            continue
        name = naming.port_name(sname, i)
        port = kube.ours("ports", ns, name)
        net = _resolve(kube, entry.network, ns)
        if port is not None:
            labels = port["metadata"].get("labels") or {}
            if labels.get(naming.LABEL_SERVER) != sname:
                raise PortError(f"A port named {name} exists and does not belong to server {sname}.", 409)
            pspec = PortSpec.model_validate(port["spec"])
            pns, pnet = naming.split_ref(pspec.network, ns)
            if (pns, pnet) != (net.namespace, net.name):
                raise PortError(f"Port {name} is on network {pns}/{pnet}, not {net.ref}: "
                                f"interface {i} cannot change its network.", 409)
            requests = _requests(net, pspec.fixed_ips)
        else:
            requests = _requests(net, [FixedIP(ip_address=entry.fixed_ip)] if entry.fixed_ip else [])
        out.append(_Iface(i, name, net, requests, port, False))
    return out


def _resolve(kube: Kube, ref: str, ns: str) -> ResolvedNetwork:
    try:
        return resolve(kube, ref, ns, Purpose.PORT)
    except NetworkRefError as exc:
        raise PortError(exc.message, exc.code, waiting=exc.waiting) from None


def _network_ref(net: ResolvedNetwork, ns: str) -> str:
    return net.name if net.namespace == ns else net.ref


def _realise(kube: Kube, txn: _Txn, server: dict, spec: ServerSpec, iface: _Iface) -> dict:
    meta = server["metadata"]
    ns, sname = meta["namespace"], meta["name"]
    remote = iface.net.namespace != ns
    port_security = iface.net.model.spec.port_security_enabled
    groups = sorted(spec.security_groups) if port_security else []
    device_owner = f"compute:{spec.availability_zone or 'nova'}"
    if iface.user_port:
        return ensure_port(kube, txn, iface.port, iface.net, device=(sname, device_owner),
                           requests=iface.requests)
    if iface.port is not None:
        port = iface.port
        if not _has_all_addresses(port):
            port = ensure_port(kube, txn, port, iface.net, requests=iface.requests,
                               owners=[owner_ref(server)] if not remote else None)
        else:
            for fip in PortSpec.model_validate(port["spec"]).fixed_ips:
                subnet = {p.name: p for p in iface.net.plans}.get(fip.subnet) or \
                    ipam.subnet_for(iface.net.plans, fip.ip_address)
                if subnet is None:  # the subnet was removed from the network
                    continue
                claim_address(kube, txn, iface.net, subnet, fip.ip_address, ns, iface.port_name,
                              "Port", None if remote else [owner_ref(server)])
        current = sorted((port.get("spec") or {}).get("securityGroups") or [])
        if current != groups:  # the server's groups changed: the port follows
            port = kube.patch_ours("ports", ns, iface.port_name, {"spec": {"securityGroups": groups}})
        return port
    owners = None if remote else [owner_ref(server)]
    addresses = realise_addresses(kube, txn, iface.net, iface.requests, ns, iface.port_name,
                                  "Port", owners)
    labels = {naming.LABEL_MANAGED: naming.MANAGED_BY, naming.LABEL_SERVER: sname,
              naming.LABEL_NETWORK: naming.label_value(iface.net.name),
              naming.LABEL_NETWORK_NS: iface.net.namespace}
    if remote:
        labels[naming.LABEL_REMOTE_CLAIMS] = "true"
    body = {
        "apiVersion": "kubestack.io/v1alpha1", "kind": "Port",
        "metadata": {"name": iface.port_name, "namespace": ns, "labels": labels,
                     "ownerReferences": [owner_ref(server, controller=True)]},
        "spec": {
            "network": _network_ref(iface.net, ns),
            "fixedIps": _fixed_ips(addresses),
            "macAddress": mac.derive_mac(f"{meta['uid']}/{iface.index}"),
            "securityGroups": groups,
            "portSecurityEnabled": port_security,
            "deviceOwner": device_owner,
            "deviceId": sname,
        },
    }
    port, created = kube.create_ours("ports", ns, body)
    if created:
        txn.ports.append((ns, iface.port_name))
    return port


def ensure_port(kube: Kube, txn: _Txn, port: dict, net: ResolvedNetwork,
                device: tuple[str, str] | None = None, requests: list[_Request] | None = None,
                owners: list[dict] | None = None) -> dict:
    """Give an existing Port (a user's, or one without addresses) its claims, addresses and
    MAC. The Port's spec is written with a resourceVersion precondition, so two writers
    (the Port controller and a boot plugging the port) never give it two sets of addresses:
    the loser undoes its claims and takes the winner's."""
    ns, name = port["metadata"]["namespace"], port["metadata"]["name"]
    remote = net.namespace != ns
    for _ in range(5):
        spec = PortSpec.model_validate(port["spec"])
        reqs = requests if requests is not None else _requests(net, spec.fixed_ips)
        claim_owners = owners if owners is not None else (None if remote else [owner_ref(port)])
        local = _Txn()
        addresses = realise_addresses(kube, local, net, reqs, ns, name, "Port", claim_owners)
        patch: dict[str, Any] = {}
        if _fixed_ips(addresses) != [f.to_k8s() for f in spec.fixed_ips]:
            patch["fixedIps"] = _fixed_ips(addresses)
        if not spec.mac_address:
            patch["macAddress"] = mac.derive_mac(port["metadata"]["uid"])
        if device and (spec.device_id != device[0] or spec.device_owner != device[1]):
            patch["deviceId"], patch["deviceOwner"] = device
        labels = port["metadata"].get("labels") or {}
        body: dict[str, Any] = {}
        if remote and labels.get(naming.LABEL_REMOTE_CLAIMS) != "true":
            body["metadata"] = {"labels": {naming.LABEL_REMOTE_CLAIMS: "true"}}
        if patch:
            body["spec"] = patch
        if not body:
            txn.claims.extend(local.claims)
            return port
        body.setdefault("metadata", {})["resourceVersion"] = port["metadata"]["resourceVersion"]
        try:
            updated = kube.patch_ours("ports", ns, name, body)
        except ApiException as exc:
            if exc.status != 409:
                local.rollback(kube)
                raise
            local.rollback(kube)  # someone else wrote the port first: take theirs
            port = kube.ours("ports", ns, name)
            if port is None:
                raise PortError(f"Port {name} was deleted.", 404) from None
            requests = None
            continue
        txn.claims.extend(local.claims)
        return updated
    raise PortError(f"Port {name} keeps changing; try again.", 409, waiting=True)


def release_port_claims(api, port: dict) -> int:
    """Release the claims a Port holds on another namespace's network (same-namespace
    claims go with their owner through the garbage collector). Returns how many."""
    kube = Kube(api)
    ns, name = port["metadata"]["namespace"], port["metadata"]["name"]
    net_ns, _ = naming.split_ref((port.get("spec") or {}).get("network", ""), ns)
    selector = f"{CLAIM_SELECTOR},{naming.LABEL_PORT_KEY}={naming.port_key(ns, name)}"
    count = 0
    for claim in kube.list_configmaps(net_ns, selector):
        if (claim.get("data") or {}).get("holder") != f"{ns}/{name}":
            continue
        if kube.delete_configmap(net_ns, claim["metadata"]["name"], claim["metadata"].get("uid")):
            count += 1
    return count


def port_addresses(kube: Kube, net: ResolvedNetwork) -> dict[str, int]:
    """Claims per subnet name (for the Network's status)."""
    counts: dict[str, int] = {}
    for claim in network_claims(kube, net):
        subnet = (claim.get("data") or {}).get("subnet", "")
        counts[subnet] = counts.get(subnet, 0) + 1
    return counts
