"""What a Server's interfaces look like once their ports are allocated, and the views the
compute side needs of them (pure): the simulator annotation, cloud-init network data, and
``openstack server list``'s Networks column.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from . import cloudinit


@dataclass(frozen=True)
class Route:
    destination: str  # CIDR; 0.0.0.0/0 or ::/0 for a default route
    nexthop: str


@dataclass(frozen=True)
class AllocatedInterface:
    """One tenant interface of a Server, with its port's addresses.

    name: the KubeVirt interface/network name (``net0``...); network: ``ns/name``; nad:
    ``ns/name`` of the NetworkAttachmentDefinition for ``multus.networkName``; ips: CIDR
    notation (``10.0.0.5/24``); gateway: the first subnet gateway per family, in ips order
    (``gateways`` has all of them); routes: the subnets' host routes; dns: nameservers.
    """

    name: str
    network: str
    network_name: str
    nad: str
    port: str
    mac: str
    ips: tuple[str, ...]
    gateway: str | None = None
    gateways: tuple[str, ...] = ()
    routes: tuple[Route, ...] = ()
    dns: tuple[str, ...] = ()
    mtu: int | None = None
    security_groups: tuple[str, ...] = ()
    port_security_enabled: bool = True
    subnets: tuple[str, ...] = field(default=())

    def addresses(self) -> list[str]:
        return [ip.split("/")[0] for ip in self.ips]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def interface_addresses_annotation(interfaces: list[AllocatedInterface]) -> str:
    """``kubestack.io/interface-addresses`` for the VM template: what the guest configures
    (the simulator reports it on the VMI as a real guest agent would)."""
    doc = {i.name: {"ips": list(i.ips), "mac": i.mac} for i in interfaces}
    return json.dumps(doc, sort_keys=True, separators=(",", ":"))


def network_data(interfaces: list[AllocatedInterface]) -> dict[str, Any]:
    """cloud-init network-config version 2 for the interfaces."""
    return cloudinit.network_config(interfaces)


def addresses_summary(interfaces: list[AllocatedInterface],
                      floating: dict[str, list[str]] | None = None
                      ) -> tuple[dict[str, list[dict[str, Any]]], str]:
    """Nova's ``addresses`` (network name -> [{addr, version, type, macAddr}]) and the
    Networks column (``private=10.0.0.5, 172.24.4.10; other=192.168.0.3``).

    `floating` maps a fixed IP to the floating IPs associated with it; they are listed after
    the fixed IP they map to, with ``type: floating``."""
    floating = floating or {}
    addresses: dict[str, list[dict[str, Any]]] = {}
    for iface in interfaces:
        entries = addresses.setdefault(iface.network_name, [])
        for addr in iface.addresses():
            version = ipaddress.ip_address(addr).version
            entries.append({"addr": addr, "version": version, "type": "fixed", "macAddr": iface.mac})
            for fip in floating.get(addr, []):
                entries.append({"addr": fip, "version": ipaddress.ip_address(fip).version,
                                "type": "floating", "macAddr": iface.mac})
    summary = "; ".join(f"{net}=" + ", ".join(e["addr"] for e in entries)
                        for net, entries in addresses.items() if entries)
    return addresses, summary
