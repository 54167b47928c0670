"""A Stack's status (pure): ``stackStatus`` and its reason, the Ready condition, the resource
rows, the outputs and the parameters, with what is secret masked (hidden parameters, values
derived from them or from a generated secret), and the Event a new ``stackStatus`` posts."""

from __future__ import annotations

import copy
import json
from typing import TYPE_CHECKING, Any

from kubestack.k8s.conditions import now, set_condition

from . import realize as rz
from .errors import HeatError
from .parameters import masked
from .stack import dns_name
from .template import Template

if TYPE_CHECKING:
    from .stack import Stack


def state_secret_name(stack: str) -> str:
    """The Secret the Stack controller keeps the stack's record in."""
    return dns_name(stack, "stack-state")


def status_for(body: dict, action: str, result: str, reason: str, rows: list[dict] | None = None,
               outputs: list[dict] | None = None, params: dict | None = None) -> dict:
    """The status of the Stack ``body`` at ``<action>_<result>``; rows, outputs and
    parameters as given (None: left as they are)."""
    st = body.get("status") or {}
    gen = body["metadata"].get("generation")
    stack_status = f"{action}_{result}"
    out: dict[str, Any] = {
        "stackStatus": stack_status, "stackStatusReason": reason[:4096],
        "observedGeneration": gen,
        "stateSecret": state_secret_name(body["metadata"]["name"]),
        # a rolled back stack is not what its spec asks for (nothing, after a failed create)
        "conditions": set_condition(st.get("conditions"), "Ready",
                                    result == "COMPLETE" and action in ("CREATE", "UPDATE"),
                                    stack_status.title().replace("_", ""), reason[:1024], gen),
        "creationTime": st.get("creationTime") or now(),
    }
    if action in ("UPDATE", "ROLLBACK") and st.get("stackStatus") != stack_status:
        out["updatedTime"] = now()
    if rows is not None:
        out["resources"] = rows
    if outputs is not None:
        out["outputs"] = outputs
    if params is not None:
        out["parameters"] = params
    return out


def transition_event(current: dict, desired: dict) -> tuple[str, str, str] | None:
    """The Event (type, reason, message) of a status going from ``current`` to ``desired``:
    one for each new ``stackStatus``, a Warning when it failed."""
    if desired.get("stackStatus") == current.get("stackStatus"):
        return None
    failed = desired["stackStatus"].endswith("FAILED")
    return ("Warning" if failed else "Normal", desired["stackStatus"].title().replace("_", ""),
            f"Stack {desired['stackStatus']}: {desired.get('stackStatusReason') or ''}".strip(": "))


def input_parameters(inputs: dict | None) -> dict | None:
    """The parameters of a record's inputs as status shows them, hidden ones masked; every one
    masked when the template does not parse (which are hidden cannot be told then, and status
    must never show a secret); None without inputs."""
    if inputs is None:
        return None
    try:
        tmpl = Template.parse(inputs["template"])
    except HeatError:
        return {k: "******" for k in inputs["parameters"]}
    return {k: str(v) for k, v in masked(tmpl.parameters, inputs["parameters"]).items()}


def parameters(stack: Stack) -> dict[str, str]:
    """The stack's resolved parameters as status shows them: hidden ones masked, values that
    are not strings as JSON."""
    return {k: v if isinstance(v, str) else json.dumps(v)
            for k, v in masked(stack.template.parameters, stack.params).items()}


def outputs(stack: Stack, attrs: dict[str, dict[str, Any]], secret_attrs: set[tuple[str, str]]) -> list[dict]:
    """The stack's outputs for status. One whose value comes from a secret attribute
    (``secret_attrs``: (resource, attribute), see `realize.SECRET_ATTRIBUTES`) or a hidden
    parameter is masked."""
    values = stack.outputs(attrs)
    marked = copy.deepcopy(attrs)
    for res, attr in secret_attrs:
        entry = marked.get(res) or {}
        if "members" in entry:
            for m in entry["members"]:
                if attr in m:
                    m[attr] = "\x00secret\x00"
        elif attr in entry:
            entry[attr] = "\x00secret\x00"
    probe = stack.outputs(marked) if secret_attrs else values
    hidden = {n for n, s in stack.template.parameters.items() if s.hidden}
    descriptions = stack.output_descriptions()
    out = []
    for key, value in values.items():
        secret = probe.get(key) != value or _uses_params(stack.template.outputs[key].get("value"), hidden)
        entry: dict[str, Any] = {"key": key, "description": descriptions.get(key) or None}
        if secret:
            entry["value"] = rz.MASK
            entry["error"] = "secret: derived from a hidden parameter or a generated secret"
        else:
            entry["value"] = value
        out.append({k: v for k, v in entry.items() if v is not None})
    return out


def _uses_params(value: Any, names: set[str]) -> bool:
    if not names:
        return False
    if isinstance(value, dict):
        for k, v in value.items():
            if k in ("get_param", "Ref"):
                first = v[0] if isinstance(v, list) and v else v
                if isinstance(first, str) and first in names:
                    return True
            if _uses_params(v, names):
                return True
        return False
    if isinstance(value, list):
        return any(_uses_params(v, names) for v in value)
    return False


__all__ = ["state_secret_name", "status_for", "transition_event", "input_parameters", "parameters", "outputs"]
