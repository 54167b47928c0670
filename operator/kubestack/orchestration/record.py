"""A stack's record: what the Stack controller keeps between passes (pure).

The record (a dict, kept as JSON in the stack's state Secret) holds the action (CREATE,
UPDATE, ROLLBACK), its result (IN_PROGRESS, COMPLETE, FAILED) and reason, the spec
generation it is for, when it started, and the inputs — template, parameters, files,
environment, replacement names (``overrides``) and, in a nested stack's, its parent resource's
data for resource_facade (``facade``) — being applied (``target``) and of the last action that
completed (``good``, what a rollback returns to). With them: the signals taken, the
AutoScalingGroups' sizes (``capacity``), members and when their cooldowns end, the member names
ResourceGroups gave up (``blacklist``), the groups' rolling updates (``rollouts``: the batch in
flight, extra members, when a pause ends; see `rolling`), the entries contributed to other
objects, when each WaitCondition started waiting and, in a nested stack's, the real values of
the outputs its status masks (``secret_outputs``, which its parent's ``get_attr`` reads).

This module reads a record's inputs into the engine's :class:`Stack` (:func:`load`) and
moves the record along: a new spec generation (:func:`start`, :func:`plan`), an action
completed (:func:`complete`) or failed (:func:`fail`).
"""

from __future__ import annotations

import copy
import logging
from typing import Any, Mapping

from kubestack.k8s.conditions import now

from . import nested, rolling, scaling
from . import realize as rz
from .parameters import Exists
from .stack import Stack, diff, load_stack

log = logging.getLogger(__name__)

#: the stack's name when it is not the object's (``kubestack stack create`` gives a name
#: that is not a DNS name; OS::stack_name stays what the user gave)
STACK_NAME_ANNOTATION = "kubestack.io/stack-name"


def stack_name(meta: Mapping[str, Any]) -> str:
    return (meta.get("annotations") or {}).get(STACK_NAME_ANNOTATION) or meta["name"]


def load(meta: Mapping[str, Any], inputs: dict, record: dict | None = None, exists: Exists | None = None) -> Stack:
    """The engine's stack for ``inputs``, of the Stack object with metadata ``meta``. From
    ``record``: the sizes scaling signals gave AutoScalingGroups (over their
    desired_capacity), their members as last resized, and the member names ResourceGroups'
    removal_policies took. ``exists``: looks up what custom constraints name."""
    record = record or {}
    template = copy.deepcopy(inputs["template"])
    for group, size in (record.get("capacity") or {}).items():
        res = (template.get("resources") or {}).get(group)
        if isinstance(res, dict):
            res.setdefault("properties", {})["desired_capacity"] = size
    facade = inputs.get("facade")
    stack = load_stack(template, inputs["parameters"], inputs["files"], inputs["environment"] or None,
                       stack_name=stack_name(meta), stack_id=meta.get("uid"), project_id=meta["namespace"],
                       exists=exists, facade=nested.ResourceFacade.model_validate(facade) if facade else None)
    for name, d in stack.defs.items():
        if d.rtype.name == "OS::Nova::Flavor" and name not in stack.name_overrides:
            stack.name_overrides[name] = rz.flavor_name(meta["namespace"], meta["name"], name)
    stack.name_overrides.update(inputs.get("overrides") or {})
    stack.nested_depth = nested.depth(meta)
    stack.secret_parameters = nested.secret_parameters(meta)
    stack.group_members = {g: scaling.Members.from_dict(m) for g, m in (record.get("members") or {}).items()}
    stack.group_blacklist = {g: frozenset(names) for g, names in (record.get("blacklist") or {}).items()}
    return stack


def start(record: dict | None, generation: int) -> dict:
    """The record for a new generation of the spec, before it is planned: an update of what
    the stack has, or a create when it has nothing yet."""
    previous_target = (record or {}).get("target")
    good = (record or {}).get("good")
    if record is not None and record.get("result") == "COMPLETE" and record.get("action") != "DELETE":
        good = previous_target
    # a stack that has nothing yet (its create was refused, e.g. a template error) is created
    created = record is not None and not (record.get("action") == "CREATE" and previous_target is None)
    return {"action": "UPDATE" if created else "CREATE", "generation": generation, "good": good,
            "target": previous_target,
            "signals": (record or {}).get("signals") or {}, "capacity": (record or {}).get("capacity") or {},
            "members": (record or {}).get("members") or {}, "blacklist": (record or {}).get("blacklist") or {},
            # a group cools down across updates, as Heat keeps it in the group's metadata
            "cooldown_end": (record or {}).get("cooldown_end") or {},
            "rollouts": rolling.carry_over((record or {}).get("rollouts")),
            "contributions": (record or {}).get("contributions") or {}}


def plan(meta: Mapping[str, Any], record: dict, want: dict, exists: Exists | None) -> None:
    """Plan the spec's inputs ``want`` against what the stack has (``record["target"]``) and
    start the action: the engine's diff names replacements (their new object names go into
    ``want``'s overrides), groups are sized and ResourceGroups' removal_policies resolved.
    Raises HeatError, leaving ``record`` as it was, when the inputs are not a valid stack."""
    nested.take_facade(want)
    previous_target = record.get("target")
    new = load(meta, want, exists=exists)
    capacity: dict[str, int] = {}
    old = None
    if previous_target is not None:
        old = load(meta, previous_target, record)
        for n in list(new.name_overrides):
            if n not in new.defs:
                new.name_overrides.pop(n)
        changes = diff(old, new)
        log.info("stack %s/%s update: %s", meta["namespace"], meta["name"], {c.name: c.action for c in changes.changes})
        want["overrides"] = {k: v for k, v in new.name_overrides.items() if k in new.defs}
        # the old definitions are the template's own, without the sizes signals set
        capacity = scaling.capacities_after_update(load(meta, previous_target), new, record.get("capacity") or {})
    blacklist = scaling.removal_blacklists(new, old, record.get("blacklist") or {})
    record.update(target=want, capacity=capacity, blacklist=blacklist, result="IN_PROGRESS",
                  reason=f"Stack {record['action']} started", started=now(), retry=False)


COMPLETED = {"CREATE": "Stack CREATE completed successfully", "UPDATE": "Stack UPDATE completed successfully",
             "ROLLBACK": "Stack ROLLBACK completed successfully"}


def complete(record: dict) -> None:
    """The action completed: what it applied is now the stack's good template (a rollback
    to nothing leaves the good one as it was)."""
    action, target = record["action"], record.get("target")
    record.update(result="COMPLETE", reason=COMPLETED.get(action, "completed"))
    if action != "ROLLBACK" or target is not None:
        record["good"] = target


def fail(record: dict, failure: str, rollback: bool) -> bool:
    """The action failed: roll back (``rollback``: spec.rollback, Heat's disable_rollback
    false) to the last good template, or to nothing for a create; else stop, keeping what
    was made. True when it rolls back."""
    action = record["action"]
    if rollback and action in ("CREATE", "UPDATE") and (action == "CREATE" or record.get("good") is not None):
        record.update(action="ROLLBACK", result="IN_PROGRESS", reason=f"{failure}; rolling back",
                      target=record.get("good") if action == "UPDATE" else None, started=now(),
                      rollouts=rolling.carry_over(record.get("rollouts")))
        return True
    record.update(result="FAILED", reason=failure)
    return False


__all__ = ["STACK_NAME_ANNOTATION", "stack_name", "load", "start", "plan", "complete", "fail"]
