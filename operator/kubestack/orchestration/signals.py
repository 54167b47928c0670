"""What signals say and do (pure).

A signal is an annotation ``kubestack.io/signal-<resource>`` on the Stack (what ``kubestack
stack signal`` writes): one JSON object or a list of them (``id``, ``status`` SUCCESS or
FAILURE, ``reason``, ``data``), or plain text taken as the data of one signal.

* :func:`scale` — a ScalingPolicy's new signals resize its AutoScalingGroup (Heat's
  cooldown drops those that come too soon).
* :func:`wait_condition` — a WaitCondition counts its handle's signals, until enough came,
  one failed or its timeout ran out.
* :func:`handle_attributes`, :func:`policy_attributes` — how to signal, as the attributes of
  a WaitConditionHandle and a ScalingPolicy.

Both keep what they did in the stack's record (the state the Stack controller keeps between
passes): the signal ids taken, the groups' sizes and when each last scaled, when each
WaitCondition started waiting.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Mapping

from kubestack.k8s.conditions import now

from . import realize as rz
from . import scaling
from .lifecycle import age_seconds, wait_condition_timeout

if TYPE_CHECKING:
    from .stack import Stack

SIGNAL_PREFIX = "kubestack.io/signal-"


def parse(annotations: Mapping[str, str] | None, resource: str) -> list[dict[str, Any]]:
    """The signals sent to ``resource``, oldest first, each with an id (its position when
    the sender gave none)."""
    raw = (annotations or {}).get(SIGNAL_PREFIX + resource)
    if not raw:
        return []
    try:
        value = json.loads(raw)
    except ValueError:
        value = {"data": raw}
    items = value if isinstance(value, list) else [value]
    out = []
    for i, s in enumerate(items):
        s = s if isinstance(s, dict) else {"data": s}
        out.append({"id": str(s.get("id") or i + 1), "status": str(s.get("status") or "SUCCESS").upper(),
                    "reason": s.get("reason") or "Signal", "data": s.get("data")})
    return out


def _named(stack: Stack, ref: Any) -> Any:
    """The resource a property names by its object's name (what get_resource gives) or its own."""
    return {stack.physical_name(n): n for n in stack.defs}.get(ref, ref)


def scale(stack: Stack, annotations: Mapping[str, str] | None, record: dict[str, Any]) -> bool:
    """Apply new signals of scaling policies to their groups' capacity (``record``'s
    ``capacity``, ``signals`` taken and ``scaled_at``); True if any."""
    changed = False
    seen = record.setdefault("signals", {})
    capacity = record.setdefault("capacity", {})
    for name, d in stack.defs.items():
        if d.rtype.name != "OS::Heat::ScalingPolicy" or not d.enabled:
            continue
        new = [s for s in parse(annotations, name) if s["id"] not in seen.get(name, [])]
        if not new:
            continue
        props = stack.resolve(name)
        group = _named(stack, props.get("auto_scaling_group_id"))
        if group not in stack.defs:
            seen.setdefault(name, []).extend(s["id"] for s in new)
            changed = True
            continue
        gprops = stack.resolve(group)
        current = capacity.get(group, scaling.initial_capacity(gprops))
        cooldown = props.get("cooldown") if props.get("cooldown") is not None else gprops.get("cooldown")
        scaled_at = record.setdefault("scaled_at", {})
        for _ in new:
            last = scaled_at.get(group)
            if not scaling.cooldown_over(age_seconds(last) if last else None, cooldown):
                continue  # Heat drops a signal that comes while the group cools down
            current = scaling.adjusted_capacity(
                current, float(props["scaling_adjustment"]), props["adjustment_type"],
                int(props.get("min_adjustment_step") or 0), int(gprops["min_size"]), int(gprops["max_size"]))
            scaled_at[group] = now()
        capacity[group] = current
        seen.setdefault(name, []).extend(s["id"] for s in new)
        changed = True
    return changed


def wait_condition(stack: Stack, name: str, attrs: dict[str, dict[str, Any]],
                   annotations: Mapping[str, str] | None, record: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    """A WaitCondition's (readiness state, reason, attributes): complete once its handle has
    ``count`` SUCCESS signals, failed on a FAILURE signal or when its ``timeout`` ran out
    since it started waiting (``record["waiting"]``). Its ``data`` attribute is the
    SUCCESS signals' data by id."""
    props = stack.resolve(name, attrs)
    handle = _named(stack, props.get("handle"))
    signals = parse(annotations, handle)
    data = {s["id"]: s["data"] for s in signals if s["status"] == "SUCCESS"}
    attributes = {"data": json.dumps(data)}
    failed = next((s for s in signals if s["status"] == "FAILURE"), None)
    if failed:
        return rz.FAILED, str(failed.get("reason") or "WaitCondition signalled FAILURE"), attributes
    count = int(props.get("count") or 1)
    waiting = record.setdefault("waiting", {})
    if len(data) >= count:
        waiting.pop(name, None)
        return rz.COMPLETE, f"Signal: {len(data)} received", attributes
    # Heat's timeout property: seconds from when the condition started waiting
    if age_seconds(waiting.setdefault(name, now())) > float(props.get("timeout") or 3600):
        received = [str(s["reason"]) for s in signals if s["status"] == "SUCCESS"]
        return rz.FAILED, wait_condition_timeout(received, count), attributes
    return rz.IN_PROGRESS, f"waiting for {count - len(data)} signal(s) on {handle}", attributes


def handle_attributes(namespace: str, stack: str, name: str) -> dict[str, str]:
    """A WaitConditionHandle's attributes: where its signals go and the command that sends one."""
    return {"endpoint": f"{SIGNAL_PREFIX}{name}", "token": "",
            "curl_cli": f"kubestack stack signal -n {namespace} {stack} {name} --data"}


def policy_attributes(namespace: str, stack: str, name: str) -> dict[str, str]:
    """A ScalingPolicy's alarm_url and signal_url: the command that signals it."""
    hint = f"kubestack stack signal -n {namespace} {stack} {name}"
    return {"alarm_url": hint, "signal_url": hint}


__all__ = ["SIGNAL_PREFIX", "parse", "scale", "wait_condition", "handle_attributes", "policy_attributes"]
