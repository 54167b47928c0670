"""IP address management as Neutron does it: allocation pools, next free address, requested
addresses. Pure: the lock that makes an allocation unique lives in :mod:`.ports` (a claim
object whose name encodes the address).

Rules (Neutron's):

* the default allocation pool of a subnet is every host address of its CIDR except the
  gateway: for IPv4 the network and broadcast addresses are excluded (not for /31 and /32,
  RFC 3021), for IPv6 the subnet-router anycast address (the network address) is excluded;
* explicit ``allocationPools`` replace the default; the gateway and the network/broadcast
  addresses are never handed out even when a pool covers them;
* a requested address may be anywhere in the CIDR (not only in the pools), but never the
  gateway, the network address or the IPv4 broadcast address;
* no two subnets of a network overlap.

Everything works on large IPv6 subnets: pools are ranges of integers, nothing is
enumerated beyond what is allocated.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddr = ipaddress.IPv4Address | ipaddress.IPv6Address


class IPAMError(ValueError):
    """A requested address is unusable, or a subnet has no free address left."""


@dataclass(frozen=True)
class SubnetPlan:
    """A subnet reduced to what IPAM needs: CIDR, gateway, pools (inclusive int ranges)."""

    name: str
    cidr: IPNetwork
    gateway: IPAddr | None
    pools: tuple[tuple[int, int], ...]
    dns: tuple[str, ...] = ()
    routes: tuple[tuple[str, str], ...] = ()  # (destination CIDR, nexthop)
    enable_dhcp: bool = True
    reserved: frozenset[int] = field(default_factory=frozenset)

    @property
    def version(self) -> int:
        return self.cidr.version

    @property
    def prefixlen(self) -> int:
        return self.cidr.prefixlen


def reserved_addresses(cidr: IPNetwork, gateway: IPAddr | None) -> frozenset[int]:
    """Addresses never allocated: network address, IPv4 broadcast, the gateway."""
    out: set[int] = set()
    if cidr.version == 4:
        if cidr.prefixlen < 31:
            out.add(int(cidr.network_address))
            out.add(int(cidr.broadcast_address))
    elif cidr.prefixlen < 127:
        out.add(int(cidr.network_address))  # subnet-router anycast
    if gateway is not None:
        out.add(int(gateway))
    return frozenset(out)


def default_pools(cidr: IPNetwork, gateway: IPAddr | None) -> tuple[tuple[int, int], ...]:
    """Neutron's default pools: the host range, split around the gateway."""
    first, last = int(cidr.network_address), int(cidr.broadcast_address)
    if cidr.version == 4 and cidr.prefixlen < 31:
        first, last = first + 1, last - 1
    elif cidr.version == 6 and cidr.prefixlen < 127:
        first += 1
    if first > last:
        return ()
    if gateway is None or not first <= int(gateway) <= last:
        return ((first, last),)
    g = int(gateway)
    return tuple(r for r in ((first, g - 1), (g + 1, last)) if r[0] <= r[1])


def plan(subnet) -> SubnetPlan:
    """A :class:`SubnetPlan` from a ``kubestack.api.network.Subnet`` model."""
    cidr = ipaddress.ip_network(subnet.cidr, strict=False)
    gw_text = subnet.gateway()
    gateway = ipaddress.ip_address(gw_text) if gw_text else None
    if subnet.allocation_pools:
        pools = tuple(sorted((int(ipaddress.ip_address(p.start)), int(ipaddress.ip_address(p.end)))
                             for p in subnet.allocation_pools))
    else:
        pools = default_pools(cidr, gateway)
    return SubnetPlan(
        name=subnet.name, cidr=cidr, gateway=gateway, pools=pools,
        dns=tuple(subnet.dns_nameservers),
        routes=tuple((r.destination, r.nexthop) for r in subnet.host_routes),
        enable_dhcp=subnet.enable_dhcp,
        reserved=reserved_addresses(cidr, gateway),
    )


def _addr(version: int, value: int) -> IPAddr:
    return ipaddress.IPv4Address(value) if version == 4 else ipaddress.IPv6Address(value)


def check_pools(p: SubnetPlan) -> str | None:
    """Why the pools are unusable (overlapping, outside the CIDR, start after end), or None."""
    lo, hi = int(p.cidr.network_address), int(p.cidr.broadcast_address)
    previous_end = None
    for start, end in p.pools:
        if start > end:
            return (f"allocation pool {_addr(p.version, start)}-{_addr(p.version, end)} of subnet "
                    f"{p.name} starts after it ends")
        if start < lo or end > hi:
            return (f"allocation pool {_addr(p.version, start)}-{_addr(p.version, end)} is outside "
                    f"subnet {p.name} ({p.cidr})")
        if previous_end is not None and start <= previous_end:
            return f"allocation pools of subnet {p.name} overlap"
        previous_end = end
    return None


def check_overlaps(plans: Iterable[SubnetPlan]) -> str | None:
    """Why a network's subnets are unusable together (a CIDR overlapping an earlier subnet's:
    Neutron's refusal, with the message the CRD's admission rule gives), or None. Admission
    refuses it; this is for a Network stored before that rule."""
    seen: list[SubnetPlan] = []
    for p in plans:
        for earlier in seen:
            if earlier.version == p.version and earlier.cidr.overlaps(p.cidr):
                return (f"Invalid input for operation: Requested subnet with cidr: {p.cidr} (subnet "
                        f"{p.name}) overlaps with another subnet of this network "
                        f"({earlier.name}: {earlier.cidr}).")
        seen.append(p)
    return None


def pool_size(p: SubnetPlan) -> int:
    """How many addresses the pools can hand out (reserved addresses inside them excluded)."""
    total = sum(end - start + 1 for start, end in p.pools)
    total -= sum(1 for r in p.reserved if in_pools(p, r))
    return total


def in_pools(p: SubnetPlan, value: int) -> bool:
    return any(start <= value <= end for start, end in p.pools)


def iter_free(p: SubnetPlan, taken: Iterable[str | IPAddr | int] = ()) -> Iterator[str]:
    """Free pool addresses, lowest first (lazy: fine for a /64)."""
    used = {_as_int(t) for t in taken} | set(p.reserved)
    for start, end in p.pools:
        value = start
        while value <= end:
            if value not in used:
                yield str(_addr(p.version, value))
            value += 1


def next_free(p: SubnetPlan, taken: Iterable[str | IPAddr | int] = ()) -> str | None:
    return next(iter_free(p, taken), None)


def _as_int(value: str | IPAddr | int) -> int:
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        return int(ipaddress.ip_address(value.split("/")[0]))
    return int(value)


def check_requested(p: SubnetPlan, address: str) -> str:
    """The canonical form of a requested fixed IP on subnet `p`; IPAMError when unusable."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise IPAMError(f"{address!r} is not a valid IP address") from None
    if ip.version != p.version or ip not in p.cidr:
        raise IPAMError(f"IP address {ip} is not a valid IP for the specified subnet "
                        f"{p.name} ({p.cidr})")
    if p.gateway is not None and ip == p.gateway:
        raise IPAMError(f"IP address {ip} is the gateway of subnet {p.name} and cannot be "
                        f"assigned to a port")
    if int(ip) in p.reserved:
        raise IPAMError(f"IP address {ip} is the network or broadcast address of subnet "
                        f"{p.name} ({p.cidr})")
    return str(ip)


def subnet_for(plans: Iterable[SubnetPlan], address: str) -> SubnetPlan | None:
    """The subnet whose CIDR holds `address`."""
    ip = ipaddress.ip_address(address)
    for p in plans:
        if ip.version == p.version and ip in p.cidr:
            return p
    return None


def with_prefix(p: SubnetPlan, address: str) -> str:
    """`address` in CIDR notation with the subnet's prefix length, e.g. 10.0.0.5/24."""
    return f"{address}/{p.prefixlen}"
