"""Shared building blocks of the kubestack API models.

Every kind is a pydantic v2 model pair (``<Kind>Spec`` / ``<Kind>Status``) wrapped in a
``<Kind>`` resource model. Python attributes are snake_case; the wire form (YAML, the API
server) is camelCase through an alias generator, as Kubernetes users expect.

Reading an object the API server returned::

    server = Server.from_k8s(body)            # whole object
    spec = ServerSpec.model_validate(body["spec"])

Writing a status patch::

    patch = {"status": status.to_k8s()}       # by_alias, exclude_none, mode="json"

Unknown keys are ignored when parsing (the CRD prunes them on write anyway), so a newer
operator's status never breaks an older reader.

Admission rules (CEL) live next to the fields they guard, in ``json_schema_extra`` under
``x-kubernetes-validations``; :mod:`kubestack.api.schema` turns the models into structural
OpenAPI v3 and :mod:`kubestack.api.crdgen` writes the CRDs.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from kubestack import API_GROUP, API_VERSION

# --------------------------------------------------------------------------------------
# CEL helpers
# --------------------------------------------------------------------------------------


def rule(expr: str, message: str, *, field_path: str | None = None, reason: str | None = None
         ) -> dict[str, str]:
    """One ``x-kubernetes-validations`` entry."""
    out = {"rule": expr, "message": message}
    if field_path:
        out["fieldPath"] = field_path
    if reason:
        out["reason"] = reason
    return out


def cel(*rules: dict[str, str], **extra: Any) -> dict[str, Any]:
    """``json_schema_extra`` carrying CEL rules (and any other schema keys)."""
    out: dict[str, Any] = dict(extra)
    if rules:
        out["x-kubernetes-validations"] = list(rules)
    return out


def immutable(what: str) -> dict[str, str]:
    """Transition rule: the field may not change once set."""
    return rule("self == oldSelf", f"{what} is immutable", reason="FieldValueForbidden")


# --------------------------------------------------------------------------------------
# Base models
# --------------------------------------------------------------------------------------


class KubeModel(BaseModel):
    """Base of every spec/status part: camelCase on the wire, unknown keys ignored."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
        use_enum_values=False,
        validate_default=False,
    )

    def to_k8s(self) -> dict[str, Any]:
        """The wire form for a patch or a create: camelCase, no unset ``None`` values."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


def check_ip(value: str) -> str:
    ipaddress.ip_address(value)
    return value


def check_cidr(value: str) -> str:
    ipaddress.ip_network(value, strict=False)
    return value


DNS_LABEL_RE = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN_RE = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
# An object reference: ``name`` or ``namespace/name`` (another project's shared object).
REF_RE = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?/)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"

DNSLabel = Annotated[str, Field(min_length=1, max_length=63, pattern=DNS_LABEL_RE)]
ObjectName = Annotated[str, Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN_RE)]
ObjectRef = Annotated[str, Field(min_length=1, max_length=317, pattern=REF_RE)]
ShortText = Annotated[str, Field(max_length=255)]
Description = Annotated[str, Field(max_length=1024)]
LabelKey = Annotated[str, Field(min_length=1, max_length=255)]
IPAddress = Annotated[
    str,
    Field(max_length=45, json_schema_extra=cel(
        rule("isIP(self)", "must be a valid IPv4 or IPv6 address, e.g. 10.0.0.5"))),
    AfterValidator(check_ip),
]
CIDR = Annotated[
    str,
    Field(max_length=49, json_schema_extra=cel(
        rule("isCIDR(self)", "must be a valid CIDR, e.g. 10.0.0.0/24 or fd00::/64"))),
    AfterValidator(check_cidr),
]
RequestId = Annotated[str, Field(min_length=1, max_length=128)]
StringMap = dict[str, str]


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(KubeModel):
    """A Kubernetes-style condition (kstatus compatible)."""

    type: str = Field(max_length=316)
    status: ConditionStatus
    reason: str | None = Field(default=None, max_length=1024)
    message: str | None = Field(default=None, max_length=32768)
    last_transition_time: datetime | None = None
    observed_generation: int | None = Field(default=None, ge=0)


class Fault(KubeModel):
    """Nova's instance fault: why a resource is in ERROR."""

    code: int = Field(description="HTTP-like code, e.g. 500 for no valid host, 400 for bad input.")
    message: str = Field(max_length=4096)
    details: str | None = Field(default=None, max_length=65536)
    created: datetime | None = None


class StatusBase(KubeModel):
    """Fields every status carries."""

    conditions: list[Condition] = Field(
        default_factory=list, json_schema_extra={
            "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]})
    observed_generation: int | None = Field(default=None, ge=0)

    def condition(self, type_: str) -> Condition | None:
        for c in self.conditions:
            if c.type == type_:
                return c
        return None

    def is_ready(self) -> bool:
        c = self.condition("Ready")
        return c is not None and c.status == ConditionStatus.TRUE


class ObjectMeta(BaseModel):
    """The parts of ``metadata`` our code reads; everything else is kept as is."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, alias_generator=to_camel)

    name: str | None = None
    namespace: str | None = None
    generate_name: str | None = None
    uid: str | None = None
    generation: int | None = None
    resource_version: str | None = None
    creation_timestamp: str | None = None
    deletion_timestamp: str | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    finalizers: list[str] | None = None
    owner_references: list[dict[str, Any]] | None = None


def plain(value: Any) -> Any:
    """Deep copy of Mappings / sequences (e.g. kopf's Body views) as dicts and lists."""
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


class Resource(BaseModel):
    """A whole custom object: apiVersion, kind, metadata, spec, status.

    Subclasses set ``spec`` and ``status`` to their own models.
    """

    model_config = ConfigDict(extra="ignore", populate_by_name=True, alias_generator=to_camel)

    KIND: ClassVar[str] = ""

    api_version: str = f"{API_GROUP}/{API_VERSION}"
    kind: str = ""
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)

    @classmethod
    def from_k8s(cls, obj: Mapping[str, Any]) -> Self:
        """Parse an object as the API server (or kopf's ``body``, a Mapping view) returns it."""
        data = plain(obj)
        data.setdefault("spec", {})
        if data.get("status") is None:
            data.pop("status", None)
        return cls.model_validate(data)

    def to_k8s(self) -> dict[str, Any]:
        out = self.model_dump(by_alias=True, exclude_none=True, mode="json")
        out["kind"] = out.get("kind") or self.KIND
        return out


# --------------------------------------------------------------------------------------
# Kind descriptors
# --------------------------------------------------------------------------------------


class Scope(StrEnum):
    NAMESPACED = "Namespaced"
    CLUSTER = "Cluster"


@dataclass(frozen=True)
class PrinterColumn:
    name: str
    json_path: str
    type: str = "string"  # string | integer | number | boolean | date
    description: str = ""
    priority: int = 0
    format: str | None = None

    def to_crd(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.type, "jsonPath": self.json_path}
        if self.description:
            out["description"] = self.description
        if self.priority:
            out["priority"] = self.priority
        if self.format:
            out["format"] = self.format
        return out


AGE = PrinterColumn("Age", ".metadata.creationTimestamp", "date")


@dataclass(frozen=True)
class KindInfo:
    """Everything the CRD generator needs to know about a kind."""

    kind: str
    plural: str
    singular: str
    short_names: tuple[str, ...]
    scope: Scope
    spec_model: type[KubeModel]
    status_model: type[StatusBase]
    resource_model: type[Resource]
    printer_columns: tuple[PrinterColumn, ...]
    description: str
    categories: tuple[str, ...] = ("kubestack",)
    # CEL rules on the whole object (may read metadata.name).
    root_validations: tuple[dict[str, str], ...] = ()
    # CEL rules a DELETE must pass, on `oldObject` (a CRD's own rules never see a delete):
    # {"expression": ..., "messageExpression": ...}; crdgen makes a ValidatingAdmissionPolicy
    deletion_rules: tuple[dict[str, str], ...] = ()
    group: str = API_GROUP
    version: str = API_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{self.group}"

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"

    @property
    def namespaced(self) -> bool:
        return self.scope == Scope.NAMESPACED


def name_is_dns_label(what: str) -> dict[str, str]:
    """Root rule: the object's name becomes a DNS label (a VM, a hostname, a namespace)."""
    return rule(
        "self.metadata.name.size() <= 63 && self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",
        f"metadata.name must be a DNS label (at most 63 lower-case letters, digits or '-') "
        f"because it becomes {what}",
        reason="FieldValueInvalid",
    )
