"""FloatingIP (Neutron floating IP): a public address from an external Network,
associated with a server's port; rendered as a Service of type LoadBalancer.

The address is kept across disassociate / re-associate: clear ``server``/``port`` to
disassociate, set them again to re-associate. ``floatingNetwork`` and an address once set
are immutable.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from .common import (
    AGE, IPAddress, KindInfo, KubeModel, ObjectName, ObjectRef, PrinterColumn, Resource, Scope,
    StatusBase, cel, immutable, rule,
)


class FloatingIPState(StrEnum):
    ACTIVE = "ACTIVE"
    DOWN = "DOWN"
    ERROR = "ERROR"


class FloatingIPSpec(KubeModel):
    """A Neutron floating IP."""

    model_config = KubeModel.model_config | {
        "json_schema_extra": cel(
            rule("!(has(self.port) && has(self.server))",
                 "associate with a port or a server, not both", field_path=".port"),
            rule("!has(self.fixedIpAddress) || has(self.port) || has(self.server)",
                 "fixedIpAddress needs a port or a server to associate with",
                 field_path=".fixedIpAddress"),
            rule("!has(oldSelf.floatingIpAddress) || (has(self.floatingIpAddress) && "
                 "self.floatingIpAddress == oldSelf.floatingIpAddress)",
                 "floatingIpAddress cannot change: allocate a new FloatingIP",
                 field_path=".floatingIpAddress", reason="FieldValueForbidden"),
        )
    }

    floating_network: ObjectRef = Field(
        description="The external Network the address comes from (namespace/name allowed).",
        json_schema_extra=cel(immutable("floatingNetwork")))
    floating_ip_address: IPAddress | None = Field(default=None,
                                                  description="Request this address.")
    port: ObjectName | None = None
    server: ObjectName | None = None
    fixed_ip_address: IPAddress | None = Field(
        default=None, description="Which fixed IP of the port (when it has several).")
    description: str | None = Field(default=None, max_length=255)


class FloatingIPStatus(StatusBase):
    status: FloatingIPState | None = None
    floating_ip_address: str | None = None
    fixed_ip_address: str | None = None
    port: str | None = None
    server: str | None = None
    service: str | None = Field(default=None, description="The LoadBalancer Service.")
    reason: str | None = None


class FloatingIP(Resource):
    KIND = "FloatingIP"
    spec: FloatingIPSpec
    status: FloatingIPStatus = Field(default_factory=FloatingIPStatus)


INFO = KindInfo(
    kind="FloatingIP", plural="floatingips", singular="floatingip", short_names=("fip",),
    scope=Scope.NAMESPACED, spec_model=FloatingIPSpec, status_model=FloatingIPStatus,
    resource_model=FloatingIP,
    description="A Neutron floating IP: a public address mapped to a server's fixed IP.",
    printer_columns=(
        PrinterColumn("Floating IP Address", ".status.floatingIpAddress"),
        PrinterColumn("Fixed IP Address", ".status.fixedIpAddress"),
        PrinterColumn("Port", ".status.port"),
        PrinterColumn("Server", ".status.server"),
        PrinterColumn("Network", ".spec.floatingNetwork"),
        PrinterColumn("Status", ".status.status", priority=1),
        AGE,
    ),
)
