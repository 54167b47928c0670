"""The reconcile of one Stack: the state machine of its actions.

A new spec generation starts a CREATE or UPDATE (`kubestack.orchestration.record`); every
pass then lists the stack's children, converges them (`converge.Pass`) and, when every
resource is complete, removes what the template no longer has (`cleanup`). Updates use the
engine's ``diff()`` for replacements (a replaced resource gets a new object name; the old
object goes once the new one is complete). A failure — a resource failing, or the action
outlasting ``spec.timeoutMinutes`` — rolls back to the good template when ``spec.rollback``
(a failed create rolls back to nothing, keeping what ``deletion_policy: Retain`` keeps);
without it the stack stops ``<ACTION>_FAILED`` and keeps what it made. Inputs naming
something that does not exist yet (the templateRef ConfigMap, the parameters Secret, an
image a constraint looks up) fail the action and are tried again every ``RETRY`` seconds,
as ``kubectl apply`` may create the Stack before them. Deletion is held by the finalizer
``kubestack.io/stack`` until every child is gone.
"""

from __future__ import annotations

import json

from kubestack.k8s.objects import status_diff
from kubestack.orchestration import HeatError, lifecycle, nested, record, scaling, signals, status
from kubestack.runtime.workqueue import Requeue

from . import inputs, state_secret
from .cleanup import cleanup
from .cluster import Cluster, Conflict
from .converge import Pass

FINALIZER = "kubestack.io/stack"
POLL = 3.0  # seconds between passes while something is in progress (events come sooner)
#: seconds between tries of a stack whose inputs name something that does not exist yet (its
#: template's ConfigMap, an image): nothing tells the controller when it appears
RETRY = 10.0


def reconcile(cluster: Cluster, key: tuple[str, str]) -> None:
    """Reconcile the Stack ``key`` (namespace, name); raises `Requeue` to be called again (soon,
    when a write met a newer version of its object)."""
    try:
        _reconcile(cluster, key)
    except Conflict:
        raise Requeue(0.2) from None


def _reconcile(cluster: Cluster, key: tuple[str, str]) -> None:
    ns, name = key
    body = cluster.stack(ns, name)
    if body is None:
        return
    if body["metadata"].get("deletionTimestamp"):
        _reconcile_delete(cluster, body)
        return
    if FINALIZER not in (body["metadata"].get("finalizers") or []):
        body = cluster.patch_stack(ns, name, {"metadata": {
            "finalizers": list(body["metadata"].get("finalizers") or []) + [FINALIZER],
            "resourceVersion": body["metadata"]["resourceVersion"]}})
        if body is None:
            return
    gen = body["metadata"].get("generation")
    try:
        state = state_secret.read(cluster, body)
    except state_secret.ForeignStateSecret as exc:
        st = body.get("status") or {}
        action = (st.get("stackStatus") or "CREATE_FAILED").split("_")[0]
        _report(cluster, body, action, "FAILED", str(exc))
        raise Requeue(RETRY) from None
    if state is None or state.get("generation") != gen:
        state = record.start(state, gen)
        _prepare(cluster, body, state)
        state_secret.write(cluster, body, state)
    elif state.get("result") == "FAILED" and state.get("retry"):
        before = json.dumps(state, sort_keys=True)
        _prepare(cluster, body, state)
        if json.dumps(state, sort_keys=True) != before:
            state_secret.write(cluster, body, state)
    _drive(cluster, body, state)


def _prepare(cluster: Cluster, body: dict, state: dict) -> None:
    """Read the spec's inputs and plan them against what the stack has (``state["target"]``).
    On success the action starts; on an error the state is FAILED, and ``retry`` says whether
    the error names an object that may yet appear (a ConfigMap, an image applied after the
    stack), so that the controller tries again."""
    meta = body["metadata"]
    try:
        record.plan(meta, state, inputs.read(cluster, body), exists=inputs.lookup(cluster, meta["namespace"]))
    except (HeatError, inputs.InputError) as exc:
        state.update(result="FAILED", reason=str(exc), retry=exc.missing)


def _drive(cluster: Cluster, body: dict, state: dict) -> None:
    ns, name = body["metadata"]["namespace"], body["metadata"]["name"]
    action, result = state["action"], state["result"]
    target = state.get("target")
    params = status.input_parameters(target, nested.secret_parameters(body["metadata"]))
    if result == "FAILED":
        # nothing moves until the spec changes (or the stack is deleted)...
        _report(cluster, body, action, "FAILED", state.get("reason") or "", params=params)
        if state.get("retry"):
            raise Requeue(RETRY)  # ...or what its inputs name appears
        return
    recorded = json.dumps(state, sort_keys=True)

    def save() -> None:
        nonlocal recorded
        now = json.dumps(state, sort_keys=True)
        if now != recorded:
            state_secret.write(cluster, body, state)
            recorded = now

    children = cluster.children(ns, name)
    if target is not None:
        stack = record.load(body["metadata"], target, state)
        # a signal adjusts the members that did not fail, as Heat's does, of a group that is
        # COMPLETE (its row of the last pass)
        stack.group_failed = scaling.failed_members(stack, children)
        stack.unfinished = lifecycle.unfinished((body.get("status") or {}).get("resources") or [])
        if signals.scale(stack, body["metadata"].get("annotations"), state):
            stack = record.load(body["metadata"], target, state)
        params = status.parameters(stack)
    if target is None:
        p = None
        wanted: set = set()
        keep: dict = {}
        done, failure = True, None
    else:
        p = Pass(cluster, body, stack, state, children, action)
        p.run()
        wanted, keep, done, failure = p.wanted, p.contributions, p.done, p.failure
    # a nested stack keeps the real values of the outputs its status masks, for its parent
    secrets = p.secret_outputs() if p is not None and stack.nested_depth else {}
    if secrets:
        state["secret_outputs"] = secrets
    else:
        state.pop("secret_outputs", None)
    save()  # signals taken, wait conditions' start times, secret outputs
    rows = p.rows if p else []
    outputs = p.outputs() if p else []
    minutes = float((body.get("spec") or {}).get("timeoutMinutes") or 60)
    timed_out = result == "IN_PROGRESS" and lifecycle.age_seconds(state.get("started")) > minutes * 60
    if result == "IN_PROGRESS" and failure is not None:
        _fail(cluster, body, state, failure, rows, outputs, params, "the stack failed")
        raise Requeue(POLL)
    if not done and timed_out:
        _fail(cluster, body, state, lifecycle.timed_out(action, minutes, rows), rows, outputs, params, "timed out")
        raise Requeue(POLL)
    if not done:
        _report(cluster, body, action, "COMPLETE" if result == "COMPLETE" else "IN_PROGRESS",
                state.get("reason") or "", rows, outputs, params)
        # sooner when a group's pause between batches ends sooner (never sleeping in a worker)
        raise Requeue(min(POLL, p.wake) if p is not None else POLL)
    finished, going = cleanup(cluster, body, children, wanted, state, keep)
    save()
    if not finished:
        if timed_out:
            _fail(cluster, body, state, lifecycle.timed_out(action, minutes, rows, removing=going), rows, outputs,
                  params, "timed out")
            raise Requeue(POLL)
        _report(cluster, body, action, "IN_PROGRESS", f"removing {', '.join(sorted(going)[:10])}", rows, outputs,
                params)
        raise Requeue(POLL)
    # every group has the members it should: the next resize starts from these
    state["members"] = {g: m.to_dict() for g, m in (p.members if p else {}).items()}
    if result == "IN_PROGRESS":
        record.complete(state)
    save()
    _report(cluster, body, action, "COMPLETE", state["reason"], rows, outputs, params)


def _fail(cluster: Cluster, body: dict, state: dict, failure: str, rows, outputs, params, cause: str) -> None:
    """The action failed: roll back or stop (`record.fail`)."""
    action = state["action"]
    # what was still going is no longer waited for (Heat: "CREATE aborted")
    rows = lifecycle.abort_in_progress(rows, action, f"{action} aborted ({cause})")
    if record.fail(state, failure, rollback=bool((body.get("spec") or {}).get("rollback", True))):
        cluster.event(body, "Warning", f"{action.title()}Failed", failure)
        state_secret.write(cluster, body, state)
        _report(cluster, body, "ROLLBACK", "IN_PROGRESS", state["reason"], rows, outputs, params)
        return
    state_secret.write(cluster, body, state)
    _report(cluster, body, action, "FAILED", failure, rows, outputs, params)


def _reconcile_delete(cluster: Cluster, body: dict) -> None:
    ns, name = body["metadata"]["namespace"], body["metadata"]["name"]
    if FINALIZER not in (body["metadata"].get("finalizers") or []):
        return
    try:
        state = state_secret.read(cluster, body) or {}
    except state_secret.ForeignStateSecret:
        state = {}  # not the stack's: deleting the stack goes on without it (and leaves it)
    children = cluster.children(ns, name)
    finished, going = cleanup(cluster, body, children, set(), state, {})
    if not finished:
        _report(cluster, body, "DELETE", "IN_PROGRESS", f"deleting {', '.join(sorted(going)[:10])}",
                rows=[r for r in (body.get("status") or {}).get("resources") or []])
        if state:
            state_secret.write(cluster, body, state)
        raise Requeue(POLL)
    _report(cluster, body, "DELETE", "COMPLETE", "Stack DELETE completed successfully", rows=[])
    finalizers = [f for f in body["metadata"].get("finalizers") or [] if f != FINALIZER]
    cluster.patch_stack(ns, name, {"metadata": {"finalizers": finalizers or None,
                                                "resourceVersion": body["metadata"]["resourceVersion"]}})


def _report(cluster: Cluster, body: dict, action: str, result: str, reason: str, rows=None, outputs=None,
            params: dict | None = None) -> None:
    """Write the stack's status (`status.status_for`) when it changed, with an Event when
    ``stackStatus`` did."""
    current = body.get("status") or {}
    desired = status.status_for(body, action, result, reason, rows, outputs, params)
    patch = status_diff(current, desired)
    if not patch:
        return
    if "conditions" in patch and set(patch) == {"conditions"}:
        return  # only lastTransitionTime bookkeeping: nothing changed
    if cluster.patch_status(body["metadata"]["namespace"], body["metadata"]["name"], patch) is None:
        return
    event = status.transition_event(current, desired)
    if event is not None:
        cluster.event(body, *event)
