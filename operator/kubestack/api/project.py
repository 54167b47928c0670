"""Project (Keystone project): a Namespace with role bindings, quotas and isolation.

Members are users or groups (exactly one per entry) with a role: admin, member or reader.
Quotas use Nova/Cinder/Neutron's names and defaults; -1 means unlimited. A project may name a
parent (Keystone's hierarchy, shown as the namespace label ``kubestack.io/parent``). A parent's
instances, cores, ram, volumes and gigabytes quotas bound the usage of its whole subtree
(Keystone's strict-two-level unified limits); the per-object counts Kubernetes enforces stay
per project.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from .common import (
    AGE, DNSLabel, KindInfo, KubeModel, PrinterColumn, Resource, Scope, StatusBase, cel,
    name_is_dns_label, rule,
)


class Role(StrEnum):
    ADMIN = "admin"
    MEMBER = "member"
    READER = "reader"


class ProjectPhase(StrEnum):
    PENDING = "Pending"
    ACTIVE = "Active"
    DISABLED = "Disabled"
    TERMINATING = "Terminating"
    ERROR = "Error"


class ProjectMember(KubeModel):
    """A role assignment: one user or one group."""

    model_config = KubeModel.model_config | {
        "json_schema_extra": cel(rule("has(self.user) != has(self.group)",
                                      "each member needs exactly one of user or group")),
    }

    user: str | None = Field(default=None, min_length=1, max_length=253)
    group: str | None = Field(default=None, min_length=1, max_length=253)
    role: Role = Role.MEMBER


def _q(default: int, what: str) -> int:
    return Field(default=default, ge=-1, description=f"{what}; -1 means unlimited.")


class Quotas(KubeModel):
    """Per-project limits (Nova, Cinder, Neutron and Glance names, OpenStack's defaults)."""

    instances: int = _q(10, "Servers")
    cores: int = _q(20, "vCPUs")
    ram: int = _q(51200, "RAM in MiB")
    key_pairs: int = _q(100, "Key pairs")
    server_groups: int = _q(10, "Server groups")
    server_group_members: int = _q(10, "Servers per server group")
    metadata_items: int = _q(128, "Metadata items per server")
    volumes: int = _q(10, "Volumes")
    gigabytes: int = _q(1000, "Volume GiB")
    snapshots: int = _q(10, "Volume snapshots")
    networks: int = _q(100, "Networks")
    subnets: int = _q(100, "Subnets")
    ports: int = _q(500, "Ports")
    routers: int = _q(10, "Routers")
    floating_ips: int = _q(50, "Floating IPs")
    security_groups: int = _q(10, "Security groups")
    security_group_rules: int = _q(100, "Security group rules")
    images: int = _q(-1, "Images")


class QuotaUsage(KubeModel):
    """Usage per quota (same names as Quotas)."""

    instances: int | None = None
    cores: int | None = None
    ram: int | None = None
    key_pairs: int | None = None
    server_groups: int | None = None
    server_group_members: int | None = None
    metadata_items: int | None = None
    volumes: int | None = None
    gigabytes: int | None = None
    snapshots: int | None = None
    networks: int | None = None
    subnets: int | None = None
    ports: int | None = None
    routers: int | None = None
    floating_ips: int | None = None
    security_groups: int | None = None
    security_group_rules: int | None = None
    images: int | None = None


class ProjectSpec(KubeModel):
    """A Keystone project."""

    description: str | None = Field(default=None, max_length=1024)
    enabled: bool = Field(default=True, description="A disabled project's users cannot act.")
    parent: DNSLabel | None = Field(
        default=None,
        description="Parent Project (hierarchy, like Keystone's parent_id). The parent's instances, "
                    "cores, ram, volumes and gigabytes quotas bound its usage and all its "
                    "descendants' together.")
    domain: str | None = Field(default=None, max_length=64)
    members: list[ProjectMember] = Field(default_factory=list, max_length=256)
    quotas: Quotas = Field(default_factory=Quotas, json_schema_extra={"default": {}})
    cascade_delete: bool = Field(
        default=False,
        description="Delete the project's servers, volumes, images... with it. Without it "
                    "deletion waits until the project is empty.")


class ProjectStatus(StatusBase):
    phase: ProjectPhase | None = None
    namespace: str | None = None
    usage: QuotaUsage | None = None
    reason: str | None = Field(default=None, description="Why the project is not Active, e.g. "
                               "what still blocks its deletion.")


class Project(Resource):
    KIND = "Project"
    spec: ProjectSpec = Field(default_factory=ProjectSpec)
    status: ProjectStatus = Field(default_factory=ProjectStatus)


INFO = KindInfo(
    kind="Project", plural="projects", singular="project", short_names=("proj",),
    scope=Scope.CLUSTER, spec_model=ProjectSpec, status_model=ProjectStatus,
    resource_model=Project,
    description="A Keystone project: a tenant with members, roles and quotas.",
    root_validations=(
        name_is_dns_label("the project's Namespace"),
        rule("!self.metadata.name.startsWith('kube-')",
             "project names starting with 'kube-' are reserved for Kubernetes",
             reason="FieldValueInvalid"),
        rule("!has(self.spec) || !has(self.spec.parent) || self.spec.parent != self.metadata.name",
             "a project cannot be its own parent", field_path=".spec.parent"),
    ),
    printer_columns=(
        PrinterColumn("Enabled", ".spec.enabled", "boolean"),
        PrinterColumn("Phase", ".status.phase"),
        PrinterColumn("Description", ".spec.description"),
        PrinterColumn("Parent", ".spec.parent", priority=1),
        PrinterColumn("Namespace", ".status.namespace", priority=1),
        PrinterColumn("Reason", ".status.reason", priority=1),
        AGE,
    ),
)
