"""What signals say and do (pure).

A signal is an annotation ``kubestack.io/signal-<resource>`` on the Stack (what ``kubestack
stack signal`` writes): one JSON object or a list of them (``id``, ``status`` SUCCESS or
FAILURE, ``reason``, ``data``), or plain text taken as the data of one signal.

* :func:`scale` — a ScalingPolicy's new signals resize its AutoScalingGroup from the members
  it has that did not fail, within its bounds (Heat's cooldown drops those that come too soon,
  and so does a group that is not COMPLETE: being created, updated — a rolling update — or
  resized).
* :func:`wait_condition` — a WaitCondition counts its handle's signals, until enough came,
  one failed or its timeout ran out.
* :func:`handle_attributes`, :func:`policy_attributes` — how to signal, as the attributes of
  a WaitConditionHandle and a ScalingPolicy.

Both keep what they did in the stack's record (the state the Stack controller keeps between
passes): the signal ids taken, the groups' sizes and when each one's cooldown ends, when each
WaitCondition started waiting.
"""

from __future__ import annotations

import datetime
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
    ``capacity``, ``signals`` taken and ``cooldown_end``); True if any. The failed members
    the controller found (``stack.group_failed``) do not count in the size a signal adjusts;
    a group the controller found not COMPLETE (``stack.unfinished``) takes none: they are
    taken and dropped, as Heat's adjust raises NoActionRequired then."""
    changed = False
    seen = record.setdefault("signals", {})
    for name, d in stack.defs.items():
        if d.rtype.name != "OS::Heat::ScalingPolicy" or not d.enabled:
            continue
        new = [s["id"] for s in parse(annotations, name) if s["id"] not in seen.get(name, [])]
        if not new:
            continue
        seen.setdefault(name, []).extend(new)
        changed = True
        props = stack.resolve(name)
        group = _named(stack, props.get("auto_scaling_group_id"))
        target = stack.defs.get(group)
        if target is None or not target.enabled or target.rtype.name != "OS::Heat::AutoScalingGroup":
            continue  # Heat: the policy finds no group to adjust
        if group in stack.unfinished:
            continue
        for _ in new:
            _adjust(stack, group, props, record)
    return changed


def _adjust(stack: Stack, group: str, policy: Mapping[str, Any], record: dict[str, Any]) -> None:
    """One signal of a policy (``policy``: its properties) to ``group``, as Heat's adjust: no
    change in size does nothing (nor starts a cooldown); one while the group cools down is
    dropped."""
    gprops = stack.resolve(group)
    capacity = record.setdefault("capacity", {})
    members = stack.resized_members(group, capacity.get(group, scaling.initial_capacity(gprops)))
    current = scaling.healthy(members, stack.group_failed.get(group, frozenset()))
    size = scaling.adjusted_capacity(
        current, float(policy["scaling_adjustment"]), policy["adjustment_type"],
        int(policy.get("min_adjustment_step") or 0), int(gprops["min_size"]), int(gprops["max_size"]))
    if size == current:
        return
    moment = datetime.datetime.now(datetime.timezone.utc)
    ends = record.setdefault("cooldown_end", {})
    if scaling.cooling_down(ends.get(group), moment):
        return
    cooldown = policy["cooldown"] if policy.get("cooldown") is not None else gprops.get("cooldown")
    capacity[group] = size
    ends[group] = scaling.cooldown_end(ends.get(group), cooldown, moment)


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
