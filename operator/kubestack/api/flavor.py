"""Flavor (Nova flavor): a cluster-scoped size of server.

Like Nova, a flavor's size is immutable once created (vcpus, ram, disk, ephemeral, swap,
rxtxFactor); create a new flavor to offer a new size. A private flavor (``isPublic: false``)
is visible only to the projects in ``projects`` (Nova's flavor access list).
"""

from __future__ import annotations

from pydantic import Field

from .common import (
    AGE, DNSLabel, KindInfo, KubeModel, PrinterColumn, Resource, Scope, StatusBase, cel,
    immutable, rule,
)

EXTRA_SPEC_KEY_RE = r"^[a-zA-Z0-9_.:-]+$"


class FlavorSpec(KubeModel):
    """A Nova flavor: virtual CPUs, memory, disks and scheduling extra specs."""

    model_config = KubeModel.model_config | {
        "json_schema_extra": cel(
            rule("!has(self.projects) || size(self.projects) == 0 || (has(self.isPublic) && !self.isPublic)",
                 "projects (the flavor access list) may only be set on a private flavor "
                 "(isPublic: false)", field_path=".projects"),
        )
    }

    vcpus: int = Field(ge=1, le=4096, description="Number of virtual CPUs.",
                       json_schema_extra=cel(immutable("vcpus")))
    ram: int = Field(ge=1, le=2**31 - 1, description="Memory in MiB.",
                     json_schema_extra=cel(immutable("ram")))
    disk: int = Field(default=0, ge=0, le=2**31 - 1,
                      description="Root disk size in GiB; 0 means the image's own size.",
                      json_schema_extra=cel(immutable("disk")))
    ephemeral: int = Field(default=0, ge=0, le=2**31 - 1,
                           description="Ephemeral (second, local) disk in GiB.",
                           json_schema_extra=cel(immutable("ephemeral")))
    swap: int = Field(default=0, ge=0, le=2**31 - 1, description="Swap disk in MiB.",
                      json_schema_extra=cel(immutable("swap")))
    rxtx_factor: float = Field(default=1.0, gt=0, description="Relative network bandwidth.",
                               json_schema_extra=cel(immutable("rxtxFactor")))
    is_public: bool = Field(default=True, description="Visible to every project.")
    projects: list[DNSLabel] = Field(
        default_factory=list, max_length=1024,
        description="Projects that may use a private flavor (Nova's flavor access list).",
        json_schema_extra={"x-kubernetes-list-type": "set"})
    extra_specs: dict[str, str] = Field(
        default_factory=dict, max_length=256,
        description="Scheduler and virt-driver hints, e.g. hw:cpu_policy: dedicated, "
                    "aggregate_instance_extra_specs:ssd: 'true', resources:VGPU: '1', "
                    "capabilities:cpu_arch: x86_64, trait:HW_CPU_X86_AVX2: required.",
        json_schema_extra=cel(rule(
            "self.all(k, k.size() <= 255 && k.matches('^[a-zA-Z0-9_.:-]+$') && self[k].size() <= 255)",
            "extraSpecs keys must be at most 255 characters of letters, digits, '_', '.', "
            "':' or '-', and values at most 255 characters"),
            rule("self.all(k, !k.startsWith('trait:') || self[k] in ['required', 'forbidden'])",
                 "a trait:<NAME> extra spec must be 'required' or 'forbidden'")))
    description: str | None = Field(default=None, max_length=65535)


class FlavorStatus(StatusBase):
    """Flavors have no provisioning; Ready says the flavor was accepted."""


class Flavor(Resource):
    KIND = "Flavor"
    spec: FlavorSpec
    status: FlavorStatus = Field(default_factory=FlavorStatus)


INFO = KindInfo(
    kind="Flavor", plural="flavors", singular="flavor", short_names=("flv",),
    scope=Scope.CLUSTER, spec_model=FlavorSpec, status_model=FlavorStatus,
    resource_model=Flavor,
    description="A Nova flavor: the size (vCPUs, RAM, disks) and scheduling hints of a server.",
    printer_columns=(
        PrinterColumn("RAM", ".spec.ram", "integer", "Memory in MiB"),
        PrinterColumn("Disk", ".spec.disk", "integer", "Root disk in GiB"),
        PrinterColumn("Ephemeral", ".spec.ephemeral", "integer", "Ephemeral disk in GiB"),
        PrinterColumn("VCPUs", ".spec.vcpus", "integer"),
        PrinterColumn("Is Public", ".spec.isPublic", "boolean"),
        PrinterColumn("Swap", ".spec.swap", "integer", "Swap in MiB", priority=1),
        AGE,
    ),
)
