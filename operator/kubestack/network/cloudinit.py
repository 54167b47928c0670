"""cloud-init network configuration version 2 (netplan-like) from allocated interfaces.

Each interface is matched by MAC address (names inside the guest are the guest's business)
and configured statically: the operator already chose the addresses, so no DHCP runs on a
tenant network. The first interface with an IPv4 (IPv6) gateway gets the default route of
that family; a second default route would leave the guest with two competing ones. Subnet
host routes become routes; nameservers are merged per interface.
"""

from __future__ import annotations

import ipaddress
from typing import Any


def _is_v6(address: str) -> bool:
    return ipaddress.ip_address(address.split("/")[0]).version == 6


def network_config(interfaces) -> dict[str, Any]:
    ethernets: dict[str, Any] = {}
    default_taken = {4: False, 6: False}
    for iface in interfaces:
        entry: dict[str, Any] = {
            "match": {"macaddress": iface.mac},
            "dhcp4": False,
            "dhcp6": False,
            "addresses": list(iface.ips),
        }
        routes: list[dict[str, Any]] = []
        for gw in iface.gateways or ((iface.gateway,) if iface.gateway else ()):
            family = 6 if _is_v6(gw) else 4
            if not default_taken[family]:
                default_taken[family] = True
                routes.append({"to": "::/0" if family == 6 else "0.0.0.0/0", "via": gw})
        for route in iface.routes:
            routes.append({"to": route.destination, "via": route.nexthop})
        if routes:
            entry["routes"] = routes
        if iface.dns:
            entry["nameservers"] = {"addresses": list(iface.dns)}
        if iface.mtu:
            entry["mtu"] = int(iface.mtu)
        ethernets[iface.name] = entry
    return {"version": 2, "ethernets": ethernets}
