"""How a server says what went wrong: a fault (ERROR, or kept on a server that stays as it
is), and Nova's 400/403 to a request a built server cannot take (RequestRefused)."""

from __future__ import annotations

from typing import Any

from kubestack.api.common import Fault
from kubestack.api.server import PowerState, ServerState, VmState
from kubestack.compute.context import Outcome, now
from kubestack.compute.references import RETRYABLE, ReferenceError, ReferenceWaiting
from kubestack.k8s.conditions import STALLED, find_condition, set_condition, with_stalled

# Nova's 400/403 to a request on a built server: the server keeps running as it was, and this
# condition (True, carrying the refused generation) says why. Its reason names the refusal: a
# ReferenceError's (ImageNotFound, FlavorNotFound, QuotaExceeded, ...: `refuse`) or
# VolumeBackedServer (`rebuild.refuse_volume_backed_rebuild`). When it goes: `drop_lapsed_refusal`.
REFUSED_CONDITION = "RequestRefused"
VOLUME_BACKED = "VolumeBackedServer"  # its reason for a rebuild of a volume-backed server


def error(out: Outcome, code: int, message: str, *, details: str | None = None,
          reason: str = "Error", keep_status: bool = False) -> None:
    st = out.status
    previous = (st.get("fault") or {}).get("message")
    fault = Fault(code=code, message=message, details=details).to_k8s()
    old_created = (st.get("fault") or {}).get("created")
    fault["created"] = old_created if previous == message and old_created else now()
    st["fault"] = fault
    if not keep_status:
        st.update(status=ServerState.ERROR, vmState=VmState.ERROR, taskState=None)
        st["conditions"] = set_condition(st.get("conditions"), "Ready", False, reason, message)
    if previous != message:
        out.events.append(("Warning", reason, message + (f"\n{details}" if details else "")))


def mark_stalled(status: dict[str, Any]) -> None:
    """kstatus' Stalled (`with_stalled`) while the server is in ERROR for a reason no object
    appearing would cure (`RETRYABLE` ones: a flavor or image applied later, quota freed, are
    progress still to come), with the Ready condition's reason and message."""
    conditions = status.get("conditions") or []
    ready = find_condition(conditions, "Ready") or {}
    stalled = status.get("status") == ServerState.ERROR and ready.get("reason") not in RETRYABLE
    if stalled or any(c.get("type") == STALLED for c in conditions):
        status["conditions"] = with_stalled(conditions, stalled, ready.get("reason") or "Error",
                                            ready.get("message") or "")


def wait_for(out: Outcome, exc: ReferenceWaiting) -> None:
    """A server not built yet whose reference is on its way stays in BUILD, unscheduled (no
    claim, no quota held), saying what it waits for; a Normal Event says so once."""
    st = out.status
    before = find_condition(st.get("conditions"), "Ready") or {}
    message = f"waiting: {exc}"
    st.update(status=ServerState.BUILD, vmState=VmState.BUILDING, taskState=None,
              powerState=PowerState.NOSTATE, fault=None)
    st["conditions"] = set_condition(st.get("conditions"), "Ready", False, exc.reason, message)
    if before.get("message") != message:
        out.events.append(("Normal", "Waiting", f"{exc} The server is built once it is."))


def refuse(current: dict, exc: ReferenceError, generation: int | None) -> Outcome:
    """Nova answers a rebuild or resize to a missing image or flavor with a 400 (over quota:
    403) and the server stays as it was. Here too: nothing changes (the guest keeps running, no fault:
    the server is fine), a condition and a Warning Event say why (once), and observedGeneration
    stays behind the refused spec. Every reconcile checks the spec again: it may go through
    later (the image appears, quota is freed), and then the condition goes."""
    out = Outcome(status=dict(current), pending=True)
    before = next((c for c in current.get("conditions") or [] if c.get("type") == REFUSED_CONDITION), {})
    out.status["conditions"] = set_condition(current.get("conditions"), REFUSED_CONDITION, True,
                                             exc.reason, str(exc), generation=generation)
    if before.get("message") != str(exc):
        out.events.append(("Warning", exc.reason, f"{exc} The server is left as it was."))
    return out


def drop_lapsed_refusal(status: dict[str, Any], generation: int | None) -> None:
    """Remove the RequestRefused condition before a reconcile looks, unless it still stands.

    A refused rebuild of a volume-backed server answered a one-time request (its request id is
    recorded, so it is not looked at again): its condition stands until the spec changes. Any
    other refusal is of the spec as it is (a missing image or flavor, quota), which this
    reconcile checks again: `refuse` sets the condition again if the refusal still applies,
    else it is gone (the spec was fixed, or the image appeared, or quota was freed)."""
    conditions = status.get("conditions") or []
    refused = next((c for c in conditions if c.get("type") == REFUSED_CONDITION), None)
    if refused is None or (refused.get("reason") == VOLUME_BACKED
                           and refused.get("observedGeneration") == generation):
        return
    status["conditions"] = [c for c in conditions if c is not refused]
