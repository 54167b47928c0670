"""Router (Neutron router): connects tenant subnets to an external Network.

Realised only where the cluster's network provider can do it (OVN-Kubernetes layer2
overlays); elsewhere the router is accepted and modelled, and its status says it is not
realised (``status.status: DOWN`` with ``reason``).
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from .common import (
    AGE, CIDR, DNSLabel, IPAddress, KindInfo, KubeModel, ObjectRef, PrinterColumn, Resource,
    Scope, StatusBase, cel, rule,
)


class RouterState(StrEnum):
    ACTIVE = "ACTIVE"
    BUILD = "BUILD"
    DOWN = "DOWN"
    ERROR = "ERROR"


class ExternalGateway(KubeModel):
    network: ObjectRef = Field(description="An external Network (namespace/name allowed).")
    enable_snat: bool = True
    external_fixed_ips: list[IPAddress] = Field(default_factory=list, max_length=4)


class RouterInterface(KubeModel):
    network: ObjectRef
    subnet: DNSLabel = Field(description="Subnet name within the network.")
    ip_address: IPAddress | None = Field(default=None,
                                         description="Default: the subnet's gateway address.")


class Route(KubeModel):
    destination: CIDR
    nexthop: IPAddress


class RouterSpec(KubeModel):
    """A Neutron router."""

    model_config = KubeModel.model_config | {
        "json_schema_extra": cel(rule(
            "!has(self.interfaces) || self.interfaces.all(i, "
            "self.interfaces.exists_one(j, j.network == i.network && j.subnet == i.subnet))",
            "a subnet can be attached to a router only once", field_path=".interfaces")),
    }

    external_gateway: ExternalGateway | None = None
    interfaces: list[RouterInterface] = Field(default_factory=list, max_length=32)
    routes: list[Route] = Field(default_factory=list, max_length=32)
    admin_state_up: bool = True
    distributed: bool | None = None
    description: str | None = Field(default=None, max_length=255)


class RouterStatus(StatusBase):
    status: RouterState | None = None
    external_gateway_ips: list[str] = Field(default_factory=list)
    reason: str | None = Field(default=None,
                               description="Why the router is DOWN (e.g. not realisable).")


class Router(Resource):
    KIND = "Router"
    spec: RouterSpec = Field(default_factory=RouterSpec)
    status: RouterStatus = Field(default_factory=RouterStatus)


INFO = KindInfo(
    kind="Router", plural="routers", singular="router", short_names=("rtr",),
    scope=Scope.NAMESPACED, spec_model=RouterSpec, status_model=RouterStatus,
    resource_model=Router,
    description="A Neutron router between tenant subnets and an external network. Modelled "
                "everywhere; realised only on OVN-Kubernetes, elsewhere status.reason says so.",
    printer_columns=(
        PrinterColumn("Status", ".status.status"),
        PrinterColumn("External Gateway", ".spec.externalGateway.network"),
        PrinterColumn("SNAT", ".spec.externalGateway.enableSnat", "boolean", priority=1),
        AGE,
    ),
)
