"""ServerGroup (Nova server group): affinity / anti-affinity input to the scheduler.

A group's policy and rules are immutable, as in Nova. Members (servers naming the group in
``spec.serverGroup``) and their hosts are listed in status.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from .common import (
    AGE, KindInfo, KubeModel, PrinterColumn, Resource, Scope, StatusBase, cel, immutable, rule,
)


class ServerGroupPolicy(StrEnum):
    AFFINITY = "affinity"
    ANTI_AFFINITY = "anti-affinity"
    SOFT_AFFINITY = "soft-affinity"
    SOFT_ANTI_AFFINITY = "soft-anti-affinity"


class ServerGroupRules(KubeModel):
    max_server_per_host: int | None = Field(
        default=None, ge=1, description="At most this many members per host (anti-affinity only).")


class ServerGroupSpec(KubeModel):
    model_config = KubeModel.model_config | {
        "json_schema_extra": cel(
            rule("!has(self.rules) || !has(self.rules.maxServerPerHost) || self.policy == 'anti-affinity'",
                 "rules.maxServerPerHost is only allowed with policy anti-affinity",
                 field_path=".rules.maxServerPerHost"),
            rule("has(self.rules) == has(oldSelf.rules) && (!has(self.rules) || self.rules == oldSelf.rules)",
                 "rules are immutable: create a new ServerGroup", field_path=".rules",
                 reason="FieldValueForbidden"),
        )
    }

    policy: ServerGroupPolicy = Field(json_schema_extra=cel(immutable("policy")))
    rules: ServerGroupRules | None = None


class ServerGroupMember(KubeModel):
    name: str
    host: str | None = None


class ServerGroupStatus(StatusBase):
    members: list[ServerGroupMember] = Field(default_factory=list)
    member_count: int = Field(default=0, ge=0)


class ServerGroup(Resource):
    KIND = "ServerGroup"
    spec: ServerGroupSpec
    status: ServerGroupStatus = Field(default_factory=ServerGroupStatus)


INFO = KindInfo(
    kind="ServerGroup", plural="servergroups", singular="servergroup", short_names=("srvgrp",),
    scope=Scope.NAMESPACED, spec_model=ServerGroupSpec, status_model=ServerGroupStatus,
    resource_model=ServerGroup,
    description="A Nova server group: (soft-)affinity or anti-affinity between servers.",
    printer_columns=(
        PrinterColumn("Policy", ".spec.policy"),
        PrinterColumn("Members", ".status.memberCount", "integer"),
        AGE,
    ),
)
