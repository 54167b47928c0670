"""Network (Neutron network with its subnets), rendered as NetworkAttachmentDefinitions.

Subnets are keyed by ``name``; a subnet's ``cidr`` and ``ipVersion`` are immutable (remove
the subnet and add a new one instead), and no two subnets of a network overlap (Neutron's
rule, checked at admission). ``gatewayIp`` takes an address, ``auto`` (the
default: the first host of the CIDR, as Neutron does) or ``none`` (no gateway), like
``openstack subnet create --gateway``.
"""

from __future__ import annotations

import ipaddress
from enum import IntEnum, StrEnum
from typing import Annotated

from pydantic import AfterValidator, Field

from .common import (
    AGE, CIDR, DNSLabel, IPAddress, KindInfo, KubeModel, PrinterColumn, Resource, Scope,
    StatusBase, check_cidr, cel, immutable, rule,
)


class IPVersion(IntEnum):
    V4 = 4
    V6 = 6


class NetworkType(StrEnum):
    BRIDGE = "bridge"
    FLAT = "flat"
    VLAN = "vlan"
    LAYER2 = "layer2"


class NetworkState(StrEnum):
    ACTIVE = "ACTIVE"
    BUILD = "BUILD"
    DOWN = "DOWN"
    ERROR = "ERROR"


class AllocationPool(KubeModel):
    start: IPAddress
    end: IPAddress


class HostRoute(KubeModel):
    destination: CIDR
    nexthop: IPAddress


class Subnet(KubeModel):
    """A Neutron subnet."""

    model_config = KubeModel.model_config | {
        "json_schema_extra": cel(
            rule("!isCIDR(self.cidr) || cidr(self.cidr).ip().family() == self.ipVersion",
                 "cidr must match ipVersion (an IPv4 CIDR needs ipVersion 4, IPv6 needs 6)",
                 field_path=".cidr"),
            rule("!isCIDR(self.cidr) || cidr(self.cidr) == cidr(self.cidr).masked()",
                 "cidr must be a network address with the host bits zero, e.g. 10.0.0.0/24 "
                 "rather than 10.0.0.1/24", field_path=".cidr"),
            rule("!has(self.gatewayIp) || !isCIDR(self.cidr) || !isIP(self.gatewayIp) || "
                 "cidr(self.cidr).containsIP(self.gatewayIp)",
                 "gatewayIp must be inside the subnet's cidr", field_path=".gatewayIp"),
            rule("!has(self.allocationPools) || !isCIDR(self.cidr) || self.allocationPools.all(p, "
                 "!isIP(p.start) || !isIP(p.end) || "
                 "(cidr(self.cidr).containsIP(p.start) && cidr(self.cidr).containsIP(p.end)))",
                 "allocationPools must lie inside the subnet's cidr",
                 field_path=".allocationPools"),
        )
    }

    name: DNSLabel
    cidr: Annotated[str, AfterValidator(check_cidr)] = Field(
        max_length=49, description="e.g. 10.0.0.0/24 or fd00:10::/64.",
        json_schema_extra=cel(
            rule("isCIDR(self)", "must be a valid CIDR, e.g. 10.0.0.0/24 or fd00::/64"),
            immutable("a subnet's cidr")))
    ip_version: IPVersion = Field(default=IPVersion.V4,
                                  json_schema_extra=cel(immutable("a subnet's ipVersion")))
    gateway_ip: str | None = Field(
        default=None, max_length=45,
        description="An address inside cidr, 'auto' (first host; the default) or 'none'.",
        json_schema_extra=cel(rule("self == 'auto' || self == 'none' || isIP(self)",
                                   "gatewayIp must be an IP address, 'auto' or 'none'")))
    allocation_pools: list[AllocationPool] = Field(default_factory=list, max_length=16)
    dns_nameservers: list[IPAddress] = Field(default_factory=list, max_length=8)
    host_routes: list[HostRoute] = Field(default_factory=list, max_length=32)
    enable_dhcp: bool = True
    description: str | None = Field(default=None, max_length=255)

    def gateway(self) -> str | None:
        """The effective gateway address (None when the subnet has none)."""
        if self.gateway_ip == "none":
            return None
        if self.gateway_ip in (None, "auto"):
            net = ipaddress.ip_network(self.cidr, strict=False)
            if net.num_addresses < 4:
                return None
            return str(net.network_address + 1)
        return self.gateway_ip


# Neutron refuses a subnet whose CIDR overlaps another subnet of the same network ("Invalid
# input for operation: Requested subnet with cidr: X for network: Y overlaps with another
# subnet."). Two CIDRs overlap when one contains the other (an IPv4 and an IPv6 CIDR never
# do). Each subnet is checked against the ones before it (two-variable comprehensions,
# Kubernetes 1.32 on; the cidr library 1.30 on), so the message names the later one as the
# requested subnet, as Neutron does for the subnet being added. On the list, not the
# Network, so ratcheting exempts a Network stored before the rule while its subnets are
# unchanged (its status writes go through; the controller reports it:
# kubestack.network.ipam.check_overlaps, with the same message).
_OVERLAP = ("isCIDR(a.cidr) && (cidr(a.cidr).containsCIDR(b.cidr) || "
            "cidr(b.cidr).containsCIDR(a.cidr))")
SUBNETS_DO_NOT_OVERLAP = {
    **rule(f"self.all(j, b, !isCIDR(b.cidr) || !self.exists(i, a, i < j && {_OVERLAP}))",
           "Invalid input for operation: a subnet's cidr overlaps with another subnet of this "
           "network.", reason="FieldValueInvalid"),
    "messageExpression": (
        f"self.transformList(j, b, isCIDR(b.cidr) && self.exists(i, a, i < j && {_OVERLAP}), "
        "'Invalid input for operation: Requested subnet with cidr: ' + b.cidr + ' (subnet ' + "
        "b.name + ') overlaps with another subnet of this network (' + "
        f"self.transformList(i, a, i < j && {_OVERLAP}, a.name + ': ' + a.cidr)[0] + ').')[0]"),
}


class ProviderNetwork(KubeModel):
    """Neutron provider attributes: how the network is realised on the hosts."""

    model_config = KubeModel.model_config | {
        "json_schema_extra": cel(
            rule("self.networkType != 'vlan' || has(self.segmentationId)",
                 "a vlan network needs segmentationId (a VLAN id between 1 and 4094)",
                 field_path=".segmentationId"),
            rule("!has(self.segmentationId) || self.networkType == 'vlan'",
                 "segmentationId is only valid for networkType vlan",
                 field_path=".segmentationId"),
            rule("!(self.networkType in ['flat', 'vlan']) || has(self.physicalNetwork)",
                 "flat and vlan networks need physicalNetwork (the host interface or bridge)",
                 field_path=".physicalNetwork"),
        )
    }

    network_type: NetworkType = NetworkType.BRIDGE
    physical_network: str | None = Field(default=None, max_length=64)
    segmentation_id: int | None = Field(default=None, ge=1, le=4094, description="VLAN id.")
    bridge: str | None = Field(default=None, max_length=15,
                               description="Linux bridge on the hosts (networkType bridge).")


class NetworkSpec(KubeModel):
    """A Neutron network."""

    model_config = KubeModel.model_config | {
        "json_schema_extra": cel(
            rule("has(self.provider) == has(oldSelf.provider) && "
                 "(!has(self.provider) || self.provider == oldSelf.provider)",
                 "provider attributes are immutable", field_path=".provider",
                 reason="FieldValueForbidden"),
        )
    }

    subnets: list[Subnet] = Field(
        default_factory=list, max_length=16,
        json_schema_extra=cel(SUBNETS_DO_NOT_OVERLAP, **{"x-kubernetes-list-type": "map",
                                                         "x-kubernetes-list-map-keys": ["name"]}))
    mtu: int | None = Field(default=None, ge=68, le=9216)
    provider: ProviderNetwork | None = None
    shared: bool = Field(default=False, description="Usable by every project.")
    external: bool = Field(default=False, description="Floating IPs come from this network.")
    port_security_enabled: bool = True
    admin_state_up: bool = True
    description: str | None = Field(default=None, max_length=255)


class SubnetStatus(KubeModel):
    name: str
    cidr: str | None = None
    gateway_ip: str | None = None
    allocated: int | None = Field(default=None, description="Addresses in use.")
    available: int | None = Field(default=None, description="Addresses left in the pools.")


class NetworkStatus(StatusBase):
    status: NetworkState | None = None
    subnets: list[SubnetStatus] = Field(default_factory=list)
    subnet_summary: str | None = Field(default=None, description="e.g. 'private-v4=10.0.0.0/24'.")
    attachment_definitions: list[str] = Field(
        default_factory=list, description="namespace/name of each NetworkAttachmentDefinition.")
    reason: str | None = None


class Network(Resource):
    KIND = "Network"
    spec: NetworkSpec = Field(default_factory=NetworkSpec)
    status: NetworkStatus = Field(default_factory=NetworkStatus)


INFO = KindInfo(
    kind="Network", plural="networks", singular="network", short_names=("net",),
    scope=Scope.NAMESPACED, spec_model=NetworkSpec, status_model=NetworkStatus,
    resource_model=Network,
    description="A Neutron network and its subnets.",
    printer_columns=(
        PrinterColumn("Subnets", ".status.subnetSummary"),
        PrinterColumn("Shared", ".spec.shared", "boolean"),
        PrinterColumn("External", ".spec.external", "boolean"),
        PrinterColumn("Status", ".status.status"),
        AGE,
    ),
)
