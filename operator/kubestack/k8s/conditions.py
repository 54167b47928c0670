"""kstatus-compatible conditions: lastTransitionTime moves only when status flips."""

from __future__ import annotations

import datetime
from typing import Any


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def find_condition(conditions: list[dict[str, Any]] | None, type_: str) -> dict[str, Any] | None:
    """The condition of type `type_` in `conditions`, or None."""
    return next((c for c in conditions or [] if c.get("type") == type_), None)


def set_condition(conditions: list[dict[str, Any]] | None, type_: str, status: bool | str,
                  reason: str, message: str = "", generation: int | None = None) -> list[dict[str, Any]]:
    """A new conditions list with `type_` set; the old entry's lastTransitionTime is kept
    when the status did not change, so rewriting the same condition is not a change."""
    value = status if isinstance(status, str) else ("True" if status else "False")
    out = [dict(c) for c in (conditions or []) if c.get("type") != type_]
    old = find_condition(conditions, type_)
    cond = {
        "type": type_, "status": value, "reason": reason, "message": message,
        "lastTransitionTime": old["lastTransitionTime"] if old and old.get("status") == value
        and old.get("lastTransitionTime") else now(),
    }
    if generation is not None:
        cond["observedGeneration"] = generation
    out.append(cond)
    return sorted(out, key=lambda c: c["type"])


STALLED = "Stalled"


def with_stalled(conditions: list[dict[str, Any]] | None, stalled: bool, reason: str = "",
                 message: str = "") -> list[dict[str, Any]]:
    """kstatus' ``Stalled`` condition set (True, with why) on an object stuck in a failed state
    that only a change of its spec, or deleting it, gets out of; removed otherwise. kstatus-
    based tools (Flux's health checks) read it as Failed and report a bad apply at once, where
    ``Ready=False`` alone reads as still in progress until their timeout."""
    if stalled:
        return set_condition(conditions, STALLED, True, reason or "Failed", message)
    return [c for c in conditions or [] if c.get("type") != STALLED]
