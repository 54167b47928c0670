"""A Stack's status (pure): ``stackStatus`` and its reason, the Ready condition, the resource
rows, the outputs and the parameters, with what is secret masked (hidden parameters, values
derived from them, from a generated secret or from an output a nested stack masks), and the
Event a new ``stackStatus`` posts. A nested stack masks as hidden the parameters its parent
gave a secret (`secret_parameters`)."""

from __future__ import annotations

import copy
import json
from typing import TYPE_CHECKING, Any, Iterable

from kubestack.k8s.conditions import now, set_condition, with_stalled

from . import realize as rz
from .errors import HeatError
from .parameters import masked
from .stack import dns_name
from .template import Template
from .versions import ALL_FUNCTIONS

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
        "conditions": with_stalled(
            set_condition(st.get("conditions"), "Ready", result == "COMPLETE" and action in ("CREATE", "UPDATE"),
                          stack_status.title().replace("_", ""), reason[:1024], gen),
            # Heat: a failed or rolled back stack stays so until it is updated (or deleted)
            result == "FAILED" or (action == "ROLLBACK" and result == "COMPLETE"),
            stack_status.title().replace("_", ""), reason[:1024]),
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


def input_parameters(inputs: dict | None, secret: Iterable[str] = ()) -> dict | None:
    """The parameters of a record's inputs as status shows them, hidden ones (and ``secret``:
    those the parent stack passed a secret in) masked; every one masked when the template does
    not parse (which are hidden cannot be told then, and status must never show a secret);
    None without inputs."""
    if inputs is None:
        return None
    try:
        tmpl = Template.parse(inputs["template"])
    except HeatError:
        return {k: "******" for k in inputs["parameters"]}
    secret = frozenset(secret)
    return {k: rz.MASK if k in secret else str(v) for k, v in masked(tmpl.parameters, inputs["parameters"]).items()}


def parameters(stack: Stack) -> dict[str, str]:
    """The stack's resolved parameters as status shows them: hidden ones (and those its parent
    passed a secret in) masked, values that are not strings as JSON."""
    return {k: rz.MASK if k in stack.secret_parameters else v if isinstance(v, str) else json.dumps(v)
            for k, v in masked(stack.template.parameters, stack.params).items()}


_SECRET = "\x00secret\x00"
#: (resource, attribute, key within the attribute...): where a secret attribute is
Path = tuple[str, ...]


def _hidden(stack: Stack) -> set[str]:
    return {n for n, s in stack.template.parameters.items() if s.hidden} | set(stack.secret_parameters)


def _marked(attrs: dict[str, dict[str, Any]], secret_attrs: Iterable[Path]) -> dict[str, dict[str, Any]]:
    """``attrs`` with the values at ``secret_attrs`` (in each member, for a group) replaced by
    a marker: what changes with them derives from a secret."""
    marked = copy.deepcopy(attrs)
    for res, *path in secret_attrs:
        entry = marked.get(res) or {}
        for target in entry["members"] if "members" in entry else [entry]:
            for key in path[:-1]:
                target = target.get(key) if isinstance(target, dict) else None
            if isinstance(target, dict) and path and path[-1] in target:
                target[path[-1]] = _SECRET
    return marked


def outputs_and_secrets(stack: Stack, attrs: dict[str, dict[str, Any]],
                        secret_attrs: Iterable[Path]) -> tuple[list[dict], dict[str, Any]]:
    """The stack's outputs for status, and the real values of those it masks. One is masked
    when its value comes from a secret attribute (``secret_attrs``: (resource, attribute,
    [key...]) — `realize.SECRET_ATTRIBUTES`, a nested stack's masked outputs), a hidden
    parameter or one the parent passed a secret in."""
    secret_attrs = set(secret_attrs)
    values = stack.outputs(attrs)
    probe = stack.outputs(_marked(attrs, secret_attrs)) if secret_attrs else values
    hidden = _hidden(stack)
    descriptions = stack.output_descriptions()
    out, secrets = [], {}
    for key, value in values.items():
        secret = probe.get(key) != value or _uses_params(stack.template.outputs[key].get("value"), hidden)
        entry: dict[str, Any] = {"key": key, "description": descriptions.get(key) or None}
        if secret:
            entry["value"] = rz.MASK
            entry["error"] = rz.SECRET_OUTPUT
            secrets[key] = value
        else:
            entry["value"] = value
        out.append({k: v for k, v in entry.items() if v is not None})
    return out, secrets


def outputs(stack: Stack, attrs: dict[str, dict[str, Any]], secret_attrs: Iterable[Path]) -> list[dict]:
    """The stack's outputs for status (see `outputs_and_secrets`)."""
    return outputs_and_secrets(stack, attrs, secret_attrs)[0]


def secret_parameters(stack: Stack, name: str, attrs: dict[str, dict[str, Any]],
                      secret_attrs: Iterable[Path]) -> frozenset[str]:
    """The parameters of the nested stack ``name`` (of each member, for a group of nested
    stacks) that are given a secret: a value that derives from a hidden parameter, one the
    parent was passed a secret in, or a secret attribute (see `outputs_and_secrets`). The
    nested stack masks them as it masks its hidden ones."""
    d = stack.defs[name]
    rtype = stack.member_type(name) if d.rtype.group else d.rtype
    if rtype is None or rtype.kind != "Stack":
        return frozenset()
    secret_attrs = set(secret_attrs)
    hidden = _hidden(stack)
    if not secret_attrs and not hidden:
        return frozenset()
    raw = d.raw.get("properties") or {}
    if d.rtype.group:
        spec = raw.get("resource_def", raw.get("resource"))
        raw = spec.get("properties") if isinstance(spec, dict) else spec
    heat_stack = rtype.name == "OS::Heat::Stack"
    if heat_stack:
        raw = raw.get("parameters") if isinstance(raw, dict) else raw

    def values(with_attrs: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
        if d.rtype.group:
            found = [m.properties for m in stack.members(name, with_attrs)]
        else:
            found = [stack.resolve(name, with_attrs)]
        return [(p.get("parameters") if heat_stack else p) or {} for p in found]

    real = values(attrs)
    names = {k for p in real if isinstance(p, dict) for k in p}
    out: set[str] = set()
    if isinstance(raw, dict) and not (len(raw) == 1 and next(iter(raw)) in ALL_FUNCTIONS):
        out = {k for k, v in raw.items() if _uses_params(v, hidden)}
    elif _uses_params(raw, hidden):  # the whole map from a function of a hidden parameter
        return frozenset(names)
    if secret_attrs:
        try:
            probe = values(_marked(attrs, secret_attrs))
        except HeatError:
            return frozenset(names)
        if len(probe) != len(real):
            return frozenset(names)
        for r, p in zip(real, probe):
            if not isinstance(r, dict) or not isinstance(p, dict):
                return frozenset(names)
            out |= {k for k in set(r) | set(p) if r.get(k) != p.get(k)}
    return frozenset(out)


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


__all__ = ["state_secret_name", "status_for", "transition_event", "input_parameters", "parameters", "outputs",
           "outputs_and_secrets", "secret_parameters"]
