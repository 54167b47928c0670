"""Port (Neutron port): an interface on a Network with its fixed IPs and MAC address.

The operator creates a port for every ``Server.spec.networks`` entry that names a network;
a user may create one beforehand (to reserve an address, or set allowed address pairs) and
plug it with ``Server.spec.networks[].port``. The MAC address and the network are immutable.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from .common import (
    AGE, DNSLabel, IPAddress, KindInfo, KubeModel, ObjectRef, PrinterColumn, Resource, Scope,
    StatusBase, cel, immutable, rule,
)

MAC_RE = r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$"


class PortState(StrEnum):
    ACTIVE = "ACTIVE"
    BUILD = "BUILD"
    DOWN = "DOWN"
    ERROR = "ERROR"


class FixedIP(KubeModel):
    """A requested address: a subnet (any free address in it) and/or an exact address."""

    model_config = KubeModel.model_config | {
        "json_schema_extra": cel(rule("has(self.subnet) || has(self.ipAddress)",
                                      "each fixedIps entry needs subnet or ipAddress")),
    }

    subnet: DNSLabel | None = Field(default=None, description="Subnet name in the port's network.")
    ip_address: IPAddress | None = None


class AllowedAddressPair(KubeModel):
    ip_address: str = Field(
        max_length=49, description="An address or a CIDR the port may also send from.",
        json_schema_extra=cel(rule("isIP(self) || isCIDR(self)",
                                   "ipAddress must be an IP address or a CIDR")))
    mac_address: str | None = Field(default=None, pattern=MAC_RE, max_length=17)


class PortSpec(KubeModel):
    """A Neutron port."""

    model_config = KubeModel.model_config | {
        "json_schema_extra": cel(
            rule("!has(oldSelf.macAddress) || (has(self.macAddress) && "
                 "self.macAddress == oldSelf.macAddress)",
                 "macAddress cannot change once set", field_path=".macAddress",
                 reason="FieldValueForbidden"),
            rule("self.portSecurityEnabled || !has(self.securityGroups) || "
                 "size(self.securityGroups) == 0",
                 "securityGroups must be empty when portSecurityEnabled is false",
                 field_path=".securityGroups"),
        )
    }

    network: ObjectRef = Field(description="The Network (namespace/name for a shared one).",
                               json_schema_extra=cel(immutable("network")))
    fixed_ips: list[FixedIP] = Field(default_factory=list, max_length=16)
    mac_address: str | None = Field(
        default=None, max_length=17, description="Lower-case, e.g. fa:16:3e:12:34:56.",
        json_schema_extra=cel(rule(
            "self.matches('^[0-9a-f]{2}(:[0-9a-f]{2}){5}$')",
            "macAddress must be six lower-case hex pairs separated by ':', e.g. fa:16:3e:12:34:56")))
    security_groups: list[DNSLabel] = Field(
        default=["default"], max_length=32,
        json_schema_extra={"x-kubernetes-list-type": "set"})
    port_security_enabled: bool = True
    allowed_address_pairs: list[AllowedAddressPair] = Field(default_factory=list, max_length=16)
    admin_state_up: bool = True
    device_owner: str | None = Field(default=None, max_length=255,
                                     description="e.g. compute:az1, network:floatingip.")
    device_id: str | None = Field(default=None, max_length=255,
                                  description="The Server (or other owner) using the port.")
    description: str | None = Field(default=None, max_length=255)


class PortFixedIP(KubeModel):
    subnet: str
    ip_address: str


class PortStatus(StatusBase):
    status: PortState | None = None
    mac_address: str | None = None
    fixed_ips: list[PortFixedIP] = Field(default_factory=list)
    fixed_ip_summary: str | None = Field(default=None, description="e.g. '10.0.0.5, fd00::5'.")
    server: str | None = None
    network_attachment: str | None = Field(default=None,
                                           description="namespace/name of the NAD used.")
    reason: str | None = None


class Port(Resource):
    KIND = "Port"
    spec: PortSpec
    status: PortStatus = Field(default_factory=PortStatus)


INFO = KindInfo(
    kind="Port", plural="ports", singular="port", short_names=("prt",),
    scope=Scope.NAMESPACED, spec_model=PortSpec, status_model=PortStatus,
    resource_model=Port,
    description="A Neutron port: a network interface with fixed IPs and a MAC address.",
    printer_columns=(
        PrinterColumn("MAC Address", ".status.macAddress"),
        PrinterColumn("Fixed IP Addresses", ".status.fixedIpSummary"),
        PrinterColumn("Network", ".spec.network"),
        PrinterColumn("Status", ".status.status"),
        PrinterColumn("Server", ".status.server", priority=1),
        AGE,
    ),
)
