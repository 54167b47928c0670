"""Stack (Heat stack): a HOT template built out of kubestack's own kinds.

The template is given inline (``template``, any HOT document) or, for big ones, in a
ConfigMap (``templateRef``). Parameters are strings, as Heat passes them; hidden ones may
come from a Secret (``parametersSecretRef``). ``rollback: true`` is Heat's
``disable_rollback: false``.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import Field

from .common import (
    KindInfo, KubeModel, ObjectName, PrinterColumn, Resource, Scope, StatusBase, cel, rule,
)


class StackState(StrEnum):
    """Heat's stack_status: ACTION_STATUS."""

    INIT_COMPLETE = "INIT_COMPLETE"
    CREATE_IN_PROGRESS = "CREATE_IN_PROGRESS"
    CREATE_COMPLETE = "CREATE_COMPLETE"
    CREATE_FAILED = "CREATE_FAILED"
    UPDATE_IN_PROGRESS = "UPDATE_IN_PROGRESS"
    UPDATE_COMPLETE = "UPDATE_COMPLETE"
    UPDATE_FAILED = "UPDATE_FAILED"
    DELETE_IN_PROGRESS = "DELETE_IN_PROGRESS"
    DELETE_COMPLETE = "DELETE_COMPLETE"
    DELETE_FAILED = "DELETE_FAILED"
    ROLLBACK_IN_PROGRESS = "ROLLBACK_IN_PROGRESS"
    ROLLBACK_COMPLETE = "ROLLBACK_COMPLETE"
    ROLLBACK_FAILED = "ROLLBACK_FAILED"
    CHECK_IN_PROGRESS = "CHECK_IN_PROGRESS"
    CHECK_COMPLETE = "CHECK_COMPLETE"
    CHECK_FAILED = "CHECK_FAILED"


HOT_VERSIONS = {
    "2013-05-23": "2013-05-23", "2014-10-16": "2014-10-16", "2015-04-30": "2015-04-30",
    "2015-10-15": "2015-10-15", "2016-04-08": "2016-04-08", "2016-10-14": "2016-10-14",
    "newton": "2016-10-14", "2017-02-24": "2017-02-24", "ocata": "2017-02-24",
    "2017-09-01": "2017-09-01", "pike": "2017-09-01", "2018-03-02": "2018-03-02",
    "queens": "2018-03-02", "2018-08-31": "2018-08-31", "rocky": "2018-08-31",
    "2021-04-16": "2021-04-16", "wallaby": "2021-04-16",
}
"""Every heat_template_version Heat accepts (names map to their dates)."""

# Schema of the inline template: free-form, except that heat_template_version is checked.
_TEMPLATE_SCHEMA = {
    "properties": {
        "heat_template_version": {
            "type": "string",
            "enum": list(HOT_VERSIONS),
            "description": "HOT version: a date from 2013-05-23 to 2021-04-16, or its name.",
        },
    },
}


class ConfigMapKeyRef(KubeModel):
    config_map: ObjectName = Field(description="ConfigMap in the stack's namespace.")
    key: str = Field(default="template.yaml", min_length=1, max_length=253)


class SecretRef(KubeModel):
    name: ObjectName = Field(description="Secret whose keys are parameter names.")


class Environment(KubeModel):
    """A Heat environment as an environment file has it, in Heat's words (not camelCase)."""

    model_config = KubeModel.model_config | {"alias_generator": None}

    parameters: dict[str, Any] | None = None
    parameter_defaults: dict[str, Any] | None = None
    resource_registry: dict[str, Any] | None = None


class StackSpec(KubeModel):
    """A Heat stack."""

    model_config = KubeModel.model_config | {
        "json_schema_extra": cel(
            rule("has(self.template) != has(self.templateRef)",
                 "give exactly one of template (an inline HOT template) or templateRef "
                 "(a ConfigMap holding it)"),
            rule("!has(self.template) || has(self.template.heat_template_version)",
                 "template must be a HOT template: heat_template_version is missing",
                 field_path=".template"),
        )
    }

    template: dict[str, Any] | None = Field(default=None, description="The HOT template.",
                                            json_schema_extra=_TEMPLATE_SCHEMA)
    template_ref: ConfigMapKeyRef | None = Field(
        default=None,
        description="A ConfigMap holding the template; its other keys are files for get_file. Read when "
                    "the spec changes (as `openstack stack update` sends a template): to apply an edited "
                    "template, change the spec, e.g. point at a new ConfigMap. A ConfigMap that does not "
                    "exist yet is waited for (the stack is CREATE_FAILED meanwhile).")
    parameters: dict[str, str] = Field(default_factory=dict, max_length=512)
    parameters_secret_ref: SecretRef | None = None
    files: dict[str, str] = Field(default_factory=dict, max_length=256,
                                  description="Contents for get_file, by path.")
    environment: Environment | None = None
    rollback: bool = Field(
        default=True,
        description="Roll back a failed create or update (Heat's disable_rollback: false): a failed create "
                    "deletes what it made (deletion_policy Retain keeps) and ends ROLLBACK_COMPLETE, a failed "
                    "update returns to the last good template. false: the stack stops CREATE_FAILED / "
                    "UPDATE_FAILED and keeps its resources.")
    timeout_minutes: int = Field(
        default=60, ge=1, le=10080,
        description="Heat's timeout_mins: a create, update or rollback not complete within it fails "
                    "(then rolls back, with rollback).")


class StackResource(KubeModel):
    name: str
    type: str
    kind: str | None = Field(default=None, description="The kubestack kind created.")
    object_name: str | None = None
    status: str | None = Field(default=None, description="e.g. CREATE_COMPLETE.")
    status_reason: str | None = None
    depends_on: list[str] = Field(default_factory=list)


class StackOutput(KubeModel):
    key: str
    value: Any = None
    description: str | None = None
    error: str | None = None


class StackStatus(StatusBase):
    stack_status: StackState | None = None
    stack_status_reason: str | None = None
    resources: list[StackResource] = Field(default_factory=list)
    outputs: list[StackOutput] = Field(default_factory=list)
    creation_time: datetime | None = None
    updated_time: datetime | None = None
    parameters: dict[str, str] = Field(default_factory=dict,
                                       description="Effective parameters (hidden ones masked).")
    template_config_map: str | None = Field(
        default=None, description="ConfigMap holding the last applied template (for rollback).")
    state_secret: str | None = Field(
        default=None, description="Secret holding the controller's record: the template being "
                                  "applied, the last good one (for rollback), signals, capacities.")


class Stack(Resource):
    KIND = "Stack"
    spec: StackSpec
    status: StackStatus = Field(default_factory=StackStatus)


INFO = KindInfo(
    kind="Stack", plural="stacks", singular="stack", short_names=("stk",),
    scope=Scope.NAMESPACED, spec_model=StackSpec, status_model=StackStatus,
    resource_model=Stack,
    description="A Heat stack: resources created from a HOT template in dependency order.",
    printer_columns=(
        PrinterColumn("Stack Status", ".status.stackStatus"),
        PrinterColumn("Created", ".status.creationTime", "date"),
        PrinterColumn("Updated", ".status.updatedTime", "date", priority=1),
    ),
)
