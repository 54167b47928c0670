"""Plan and result types (pydantic) the Stack controller and the CLI consume."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

DeletionPolicy = Literal["Delete", "Retain", "Snapshot"]
Action = Literal["create", "update", "replace", "delete", "retain", "keep"]


class PlannedResource(BaseModel):
    """One resource of a create plan.

    ``properties`` are resolved where resolvable; a value still waiting for another
    resource is left as its HOT snippet (e.g. ``{"get_attr": ["db", "first_address"]}``),
    which the controller resolves with ``Stack.resolve`` once those resources are ready.
    """

    name: str
    type: str
    kind: str | None = Field(description="Kubernetes kind of the child object; None when the "
                                         "Stack controller realises the resource itself")
    physical_name: str
    properties: dict[str, Any]
    metadata: dict[str, Any] = {}
    depends_on: list[str] = []
    deletion_policy: DeletionPolicy = "Delete"
    update_policy: dict[str, Any] = {}
    admin_only: bool = False
    resolved: bool = True
    waiting_for: list[str] = Field(default=[], description="resources whose attributes are still needed")
    members: list["PlannedResource"] = Field(default=[], description="group members (ResourceGroup, AutoScalingGroup)")


class CreatePlan(BaseModel):
    stack_name: str
    levels: list[list[str]]
    resources: list[PlannedResource]
    outputs: dict[str, Any]
    unchecked_constraints: list[str] = Field(
        default=[], description="custom constraints not checked (no lookup callback given)")


class ResourceChange(BaseModel):
    name: str
    action: Action
    type: str
    kind: str | None = None
    reason: str = ""
    changed_properties: list[str] = []
    physical_name: str | None = None
    new_physical_name: str | None = Field(default=None, description="replace: the new object's name")


class UpdatePlan(BaseModel):
    """Steps in order: creates, in-place updates and replacements (the new object first) in
    the new template's dependency order, then deletions (and the replaced objects' old
    copies) in the old template's reverse dependency order."""

    changes: list[ResourceChange]

    def by_action(self, action: Action) -> list[str]:
        return [c.name for c in self.changes if c.action == action]

    @property
    def is_noop(self) -> bool:
        return all(c.action == "keep" for c in self.changes)


class DeletePlan(BaseModel):
    levels: list[list[str]] = Field(description="delete order: each level after the one before")
    delete: list[str]
    retain: list[str]
    snapshot: list[str]


class DryRunResource(BaseModel):
    name: str
    type: str
    properties: dict[str, Any]
    depends_on: list[str]


class DryRunResult(BaseModel):
    """What ``kubestack stack create --dry-run -f json`` prints (keys are a contract)."""

    valid: bool
    error: str | None
    resources: list[DryRunResource]
    outputs: dict[str, Any]
