"""What a stack's failures and timeouts say and do to its resource list (pure).

The Stack controller keeps one row per resource (``name``, ``type``, ``status`` such as
``CREATE_IN_PROGRESS``, ``statusReason``); these helpers word the stack's reason the way Heat
does and settle the rows of a stack that stopped.
"""

from __future__ import annotations

from typing import Any, Sequence

IN_PROGRESS_SUFFIX = "_IN_PROGRESS"


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


__all__ = ["timed_out", "abort_in_progress", "wait_condition_timeout"]
