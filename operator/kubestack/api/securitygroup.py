"""SecurityGroup (Neutron security group), rendered as (Multi)NetworkPolicy.

Rules follow Neutron's model: direction, ethertype, protocol (a name or an IP protocol
number), a port range (tcp, udp and sctp only), and a remote: a CIDR (``remoteIpPrefix``)
or another SecurityGroup (``remoteGroup``); neither means any. ICMP type and code go in
``icmpType`` / ``icmpCode``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field

from .common import (
    AGE, CIDR, DNSLabel, KindInfo, KubeModel, PrinterColumn, Resource, Scope, StatusBase, cel,
    rule,
)

PROTOCOL_NAMES = ("tcp", "udp", "icmp", "icmpv6", "sctp", "any")
PORT_PROTOCOLS = ("tcp", "udp", "sctp", "6", "17", "132")


class Direction(StrEnum):
    INGRESS = "ingress"
    EGRESS = "egress"


class EtherType(StrEnum):
    IPV4 = "IPv4"
    IPV6 = "IPv6"


class SecurityGroupRule(KubeModel):
    """A Neutron security group rule."""

    model_config = KubeModel.model_config | {
        "json_schema_extra": cel(
            rule("!has(self.portRangeMin) || !has(self.portRangeMax) || "
                 "self.portRangeMin <= self.portRangeMax",
                 "portRangeMin must be less than or equal to portRangeMax"),
            rule("(!has(self.portRangeMin) && !has(self.portRangeMax)) || (has(self.protocol) && "
                 "string(self.protocol) in ['tcp', 'udp', 'sctp', '6', '17', '132'])",
                 "a port range is only allowed with protocol tcp, udp or sctp"),
            rule("!(has(self.remoteIpPrefix) && has(self.remoteGroup))",
                 "give remoteIpPrefix or remoteGroup, not both"),
            rule("!has(self.remoteIpPrefix) || !isCIDR(self.remoteIpPrefix) || "
                 "cidr(self.remoteIpPrefix).ip().family() == (self.ethertype == 'IPv4' ? 4 : 6)",
                 "remoteIpPrefix must match ethertype (an IPv4 CIDR for IPv4, IPv6 for IPv6)"),
            rule("(!has(self.icmpType) && !has(self.icmpCode)) || (has(self.protocol) && "
                 "string(self.protocol) in ['icmp', 'icmpv6', '1', '58'])",
                 "icmpType and icmpCode are only allowed with protocol icmp or icmpv6"),
            rule("!has(self.icmpCode) || has(self.icmpType)", "icmpCode needs icmpType"),
            rule("!has(self.protocol) || string(self.protocol) != 'icmpv6' || self.ethertype == 'IPv6'",
                 "protocol icmpv6 needs ethertype IPv6"),
        )
    }

    direction: Direction = Direction.INGRESS
    ethertype: EtherType = EtherType.IPV4
    protocol: int | Annotated[str, Field(max_length=8)] | None = Field(
        default=None,
        description="tcp, udp, icmp, icmpv6, sctp, any, or an IP protocol number 0-255; "
                    "absent means any.",
        json_schema_extra=cel(rule(
            "type(self) == int ? (int(self) >= 0 && int(self) <= 255) : "
            "string(self) in ['tcp', 'udp', 'icmp', 'icmpv6', 'sctp', 'any']",
            "protocol must be tcp, udp, icmp, icmpv6, sctp, any or a number 0-255")))
    port_range_min: int | None = Field(default=None, ge=1, le=65535)
    port_range_max: int | None = Field(default=None, ge=1, le=65535)
    icmp_type: int | None = Field(default=None, ge=0, le=255)
    icmp_code: int | None = Field(default=None, ge=0, le=255)
    remote_ip_prefix: CIDR | None = None
    remote_group: DNSLabel | None = Field(default=None,
                                          description="Another SecurityGroup in this project.")
    description: str | None = Field(default=None, max_length=255)


class SecurityGroupSpec(KubeModel):
    description: str | None = Field(default=None, max_length=255)
    rules: list[SecurityGroupRule] = Field(default_factory=list, max_length=256)
    stateful: bool = True


class SecurityGroupStatus(StatusBase):
    rule_count: int | None = Field(default=None, ge=0)
    policies: list[str] = Field(default_factory=list,
                                description="(Multi)NetworkPolicies rendered from the rules.")


class SecurityGroup(Resource):
    KIND = "SecurityGroup"
    spec: SecurityGroupSpec = Field(default_factory=SecurityGroupSpec)
    status: SecurityGroupStatus = Field(default_factory=SecurityGroupStatus)


INFO = KindInfo(
    kind="SecurityGroup", plural="securitygroups", singular="securitygroup",
    short_names=("secgroup", "secgrp"),
    scope=Scope.NAMESPACED, spec_model=SecurityGroupSpec, status_model=SecurityGroupStatus,
    resource_model=SecurityGroup,
    description="A Neutron security group: stateful packet filtering rules for ports.",
    printer_columns=(
        PrinterColumn("Description", ".spec.description"),
        PrinterColumn("Rules", ".status.ruleCount", "integer"),
        AGE,
    ),
)
