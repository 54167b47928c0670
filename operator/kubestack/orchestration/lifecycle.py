"""A stack's resource list, and what its failures and timeouts say and do to it (pure).

The Stack controller keeps one row per resource (``name``, ``type``, ``status`` such as
``CREATE_IN_PROGRESS``, ``statusReason``); these helpers make the rows a pass finds, word
the stack's reason the way Heat does and settle the rows of a stack that stopped.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any, Sequence

from . import realize as rz

if TYPE_CHECKING:
    from .stack import Stack

IN_PROGRESS_SUFFIX = "_IN_PROGRESS"
STAMP = "%Y-%m-%dT%H:%M:%SZ"  # the timestamps the controller records (kubestack.k8s.conditions.now)


def age_seconds(stamp: str | None) -> float:
    """Seconds since ``stamp``; 0 without one."""
    if not stamp:
        return 0.0
    t = datetime.datetime.strptime(stamp, STAMP).replace(tzinfo=datetime.timezone.utc)
    return (datetime.datetime.now(datetime.timezone.utc) - t).total_seconds()


def resource_row(stack: Stack, name: str) -> dict[str, Any]:
    """A resource's row before the pass looks at it: what it is, its object's name and
    kind (a group's: its members' kind), what it depends on."""
    d = stack.defs[name]
    row = {"name": name, "type": d.rtype.name, "kind": d.rtype.kind,
           "objectName": stack.physical_name(name) if d.rtype.kind else None, "dependsOn": stack.dependencies(name)}
    if d.rtype.group:
        mt = stack.member_type(name)
        row["kind"] = mt.kind if mt else None
    return row


def waiting_row(row: dict[str, Any], previous: dict[str, Any], action: str, waiting: Sequence[str]) -> dict[str, Any]:
    """The row of a resource waiting for others (``waiting``): an update leaves one that was
    complete (``previous``, its row of the last pass) as it was; anything else is
    INIT_COMPLETE, not yet begun."""
    status = previous.get("status") if previous.get("status", "").endswith("COMPLETE") and action != "CREATE" \
        else "INIT_COMPLETE"
    return {**row, "status": status, "statusReason": f"waiting for {', '.join(waiting)}"}


def result_row(row: dict[str, Any], action: str, state: str, reason: str) -> dict[str, Any]:
    """The row of a resource the pass realised: ``<ACTION>_<RESULT>`` for its readiness
    ``state`` (`realize.COMPLETE`, ...)."""
    suffix = {rz.COMPLETE: "COMPLETE", rz.IN_PROGRESS: "IN_PROGRESS", rz.FAILED: "FAILED"}[state]
    return {**row, "status": f"{action}_{suffix}",
            "statusReason": reason or ("state changed" if state == rz.COMPLETE else "")}


def unfinished(rows: Sequence[dict[str, Any]]) -> frozenset[str]:
    """The resources whose rows say they are not COMPLETE: in progress, failed, or not begun
    (INIT_COMPLETE)."""
    return frozenset(str(r.get("name")) for r in rows
                     if not str(r.get("status") or "").endswith("_COMPLETE") or r.get("status") == "INIT_COMPLETE")


def resource_failed(action: str, row: dict[str, Any], reason: str) -> str:
    """The stack's reason when the resource of ``row`` failed, as Heat words it."""
    return f"Resource {action} failed: {row['type']} \"{row['name']}\": {reason}"


def _in_progress(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if str(r.get("status") or "").endswith(IN_PROGRESS_SUFFIX)]


def timed_out(action: str, minutes: float, rows: Sequence[dict[str, Any]], removing: Sequence[str] = ()) -> str:
    """The stack's reason when ``timeoutMinutes`` (Heat's timeout_mins) ran out: Heat's
    "Create timed out", with the limit and what was still going (resources in progress, or
    objects still being removed), so the user knows where to look."""
    reason = f"{action.title()} timed out after {minutes:g} minute{'' if minutes == 1 else 's'}"
    pending = [f'{r.get("type")} "{r.get("name")}"' + (f" ({r['statusReason']})" if r.get("statusReason") else "")
               for r in _in_progress(rows)]
    if pending:
        reason += ": still in progress: " + "; ".join(pending)
    elif removing:
        reason += ": still removing " + ", ".join(sorted(removing)[:10])
    return reason


def abort_in_progress(rows: Sequence[dict[str, Any]], action: str, reason: str) -> list[dict[str, Any]]:
    """The rows once the stack stopped: a resource still in progress is marked
    ``<ACTION>_FAILED`` (Heat stops waiting for it and says so), as no later pass will
    look at it again. Its object is left as it is."""
    out = []
    for row in rows:
        if row in _in_progress(rows):
            row = {**row, "status": f"{action}_FAILED", "statusReason": reason}
        out.append(row)
    return out


def wait_condition_timeout(received: Sequence[str], count: int) -> str:
    """Heat's WaitConditionTimeout reason: how many signals came of how many needed, and
    their reasons."""
    message = f"WaitConditionTimeout: {len(received)} of {count} received"
    if received:
        message += " - " + ";".join(received)
    return message


__all__ = ["age_seconds", "resource_row", "waiting_row", "result_row", "unfinished", "resource_failed", "timed_out",
           "abort_in_progress", "wait_condition_timeout"]
