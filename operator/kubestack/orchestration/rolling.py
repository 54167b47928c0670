"""Rolling updates and batched creation of group members, as Heat does them (pure).

Heat writes a group's members in batches when its member definition changes:

* OS::Heat::ResourceGroup — ``update_policy: {rolling_update: {min_in_service,
  max_batch_size, pause_time}}`` (defaults 0, 1, 0) when its ``resource_def`` changes, and
  ``update_policy: {batch_create: {max_batch_size, pause_time}}`` when it is created;
* OS::Heat::AutoScalingGroup — its ``rolling_updates`` property (the same keys and
  defaults, so always on: one member at a time unless it says otherwise) when its
  ``resource`` changes. A HOT AutoScalingGroup has no update_policy (Heat refuses one).

:func:`next_batch` is Heat's arithmetic (heat.scaling.rolling_update): at most
``max_batch_size`` members get the definition at once, and the group grows past its size
(extra members made with the new definition) when that is what keeps ``min_in_service``
members out of the batch. :func:`batches` lists every batch from a state, as Heat's
ResourceGroup counts them; Heat refuses a policy whose pauses alone outlast the stack's
timeout.

:func:`step` is what one pass of the Stack controller does with a group under such a policy.
Which members have the definition is read from their objects (a member is *current* when its
object is what the template gives), so a restarted operator picks up where the last one
stopped; the stack's record keeps the rest (:class:`Rollout`): the batch in flight, the extra
members and when a pause ends. A batch is in flight until each of its members is ready
(`realize.readiness`), then ``pause_time`` passes before the next one; a member of the batch
that fails fails the group. Members with a new definition are updated highest index first
in a ResourceGroup, failed first then oldest in an AutoScalingGroup (Heat's orders); missing
members are created first (they are out of service anyway). Extra members go, and members
the group no longer has are removed, once the stack's other work is done (kubestack removes
after an action completes): until then they count as in service.
"""

from __future__ import annotations

import datetime
import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Mapping, Sequence

from . import realize as rz
from .errors import PropertyError
from .lifecycle import STAMP

ASG = "OS::Heat::AutoScalingGroup"
RESOURCE_GROUP = "OS::Heat::ResourceGroup"
#: Heat's bounds of each policy key
_MINIMUM = {"min_in_service": 0, "max_batch_size": 1, "pause_time": 0}
TIMEOUT = "The current update policy will result in stack update timeout."


@dataclass(frozen=True)
class Policy:
    """How a group's members are written: Heat's rolling_update (or batch_create) keys."""

    min_in_service: int = 0
    max_batch_size: int = 1
    pause_time: float = 0.0
    #: batch_create: only missing members are batched (no member is out of date at create)
    create: bool = False


def check(values: Any, path: list[str]) -> None:
    """Raise Heat's PropertyError for a policy value out of its range (``values``: a
    rolling_update or batch_create map, already checked against its schema)."""
    if not isinstance(values, dict):
        return  # none, or not known before other resources are
    for key, least in _MINIMUM.items():
        value = values.get(key)
        if isinstance(value, (int, float)) and value < least:
            raise PropertyError(f"{value} is out of range (min: {least}, max: None)", path + [key])


def group_policy(type_name: str, props: Mapping[str, Any], update_policy: Mapping[str, Any],
                 action: str) -> Policy | None:
    """The policy a group's members are written with during ``action`` (CREATE, UPDATE,
    ROLLBACK), from its resolved properties and update_policy; None: all at once."""
    if type_name == ASG and action in ("UPDATE", "ROLLBACK"):
        return _policy(props.get("rolling_updates"))
    # an empty map asks for the defaults, as in Heat
    if type_name == RESOURCE_GROUP and action in ("UPDATE", "ROLLBACK") \
            and update_policy.get("rolling_update") is not None:
        return _policy(update_policy["rolling_update"])
    if type_name == RESOURCE_GROUP and action == "CREATE" and update_policy.get("batch_create") is not None:
        return _policy(update_policy["batch_create"], create=True)
    return None


def _policy(values: Mapping[str, Any] | None, create: bool = False) -> Policy:
    v = values or {}
    return Policy(int(v.get("min_in_service") or 0), int(v.get("max_batch_size") or 1),
                  float(v.get("pause_time") or 0), create)


def next_batch(target: int, current: int, up_to_date: int, batch_size: int, min_in_service: int) -> tuple[int, int]:
    """Heat's next batch: (the group's size while it runs, how many members get the new
    definition in it — created or updated). ``target``: the group's size; ``current``: its
    members now; ``up_to_date``: those with the new definition."""
    kept = min(min_in_service, target, current)
    size = min(batch_size, max(target - up_to_date, 0))
    return size + max(min(current, target - size), kept), size


def batches(target: int, current: int, batch_size: int, min_in_service: int,
            up_to_date: int = 0) -> list[tuple[int, int]]:
    """Every batch of a rolling update from a state, as Heat's ResourceGroup counts them: an
    extra member does not count as up to date (it goes), and the last batch shrinks the group
    back to ``target``."""
    out = []
    while not up_to_date >= current == target:
        size, new = next_batch(target, current, up_to_date, batch_size, min_in_service)
        out.append((size, new))
        up_to_date += new - max(size - max(current, target), 0)
        current = size
    return out


@dataclass(frozen=True)
class Member:
    """What a pass found of one member: its id, whether its object exists and is what the
    template gives, and its readiness (`realize.COMPLETE`, ...) with the reason."""

    id: int
    exists: bool
    current: bool
    state: str
    reason: str = ""


@dataclass(frozen=True)
class Group:
    """A group as a pass finds it: ``target``, its members, in the order they are to get a
    new definition (`replace_order`); ``extra``, the extra members the record has;
    ``others``, how many of its other objects are still there (members it no longer has)."""

    name: str
    target: Sequence[Member]
    extra: Sequence[Member] = ()
    others: int = 0

    def label(self, ids: Iterable[int]) -> str:
        return ", ".join(f"{self.name}[{i}]" for i in sorted(ids))


@dataclass(frozen=True)
class Rollout:
    """A group's rolling update as the stack's record keeps it between passes."""

    batch: tuple[int, ...] = ()              # the members written in the batch in flight
    extra: tuple[int, ...] = ()              # members made past the group's size
    pause_until: str | None = None           # the next batch starts then (a `lifecycle.STAMP`)

    def to_dict(self) -> dict[str, Any]:
        return {"batch": list(self.batch), "extra": list(self.extra), "pauseUntil": self.pause_until}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> "Rollout":
        data = data or {}
        return cls(tuple(int(i) for i in data.get("batch") or ()), tuple(int(i) for i in data.get("extra") or ()),
                   data.get("pauseUntil"))


def carry_over(rollouts: Mapping[str, Any] | None) -> dict[str, Any]:
    """The groups' rollouts a new action starts with: only their extra members (they exist,
    and stay in service until the group's rollout ends); the action plans its own batches."""
    out = {}
    for group, data in (rollouts or {}).items():
        extra = Rollout.from_dict(data).extra
        if extra:
            out[group] = Rollout(extra=extra).to_dict()
    return out


@dataclass(frozen=True)
class Step:
    """What a pass does with a group: write ``write`` (member ids: create, or bring to the
    definition), record ``rollout``; the group is ``state`` (IN_PROGRESS or FAILED) for
    ``reason``; ``wake``: seconds until a pause ends."""

    rollout: Rollout
    write: frozenset[int] = field(default_factory=frozenset)
    state: str = rz.IN_PROGRESS
    reason: str = ""
    wake: float | None = None


def replace_order(type_name: str, ids: Sequence[int], failed: Iterable[int] = ()) -> list[int]:
    """The order a group's members get a new definition: a ResourceGroup's highest index
    first; an AutoScalingGroup's failed ones first, then the oldest (Heat's orders)."""
    if type_name == RESOURCE_GROUP:
        return sorted(ids, reverse=True)
    bad = frozenset(failed)
    return [i for i in ids if i in bad] + [i for i in ids if i not in bad]


def step(policy: Policy, group: Group, rollout: Rollout, fresh: Iterator[int], now: datetime.datetime,
         timeout: float) -> Step | None:
    """One pass over ``group`` under ``policy``, ``rollout`` being what the record has.
    ``fresh``: ids no member has, for extra members; ``timeout``: the stack's, in seconds.

    None when there is nothing to roll: no member out of date (a change of size alone, or
    only missing members outside batch_create, is made at once, as Heat does), or the
    rollout is over."""
    target = group.target
    stale = [m for m in target if m.exists and not m.current]
    todo = [m for m in target if not m.current]
    if not (rollout.batch or stale or (policy.create and todo)):
        return None
    members = (*target, *group.extra)
    flying = [m for m in members if (m.id in rollout.batch or (m.exists and m.current))
              and not (m.current and m.state == rz.COMPLETE)]
    done = len(target) - len(todo)
    if flying:
        failed = [m for m in flying if m.current and m.state == rz.FAILED]
        if failed:
            return Step(rollout, state=rz.FAILED,
                        reason="; ".join(f"{group.label([m.id])}: {m.reason}" for m in failed))
        return Step(rollout, frozenset(m.id for m in flying if not m.current),
                    reason=_progress(done, len(target), f"waiting for {group.label(m.id for m in flying)}"))
    if not todo or (not stale and not policy.create):
        return None
    if rollout.batch:  # the batch in flight is over: the pause between batches starts
        pause = math.ceil(policy.pause_time)  # the record's stamps have whole seconds
        until = (now + datetime.timedelta(seconds=pause)).strftime(STAMP) if pause else None
        rollout = Rollout(extra=rollout.extra, pause_until=until)
    if rollout.pause_until and now.strftime(STAMP) < rollout.pause_until:
        left = (datetime.datetime.strptime(rollout.pause_until, STAMP).replace(tzinfo=datetime.timezone.utc)
                - now).total_seconds()
        return Step(rollout, reason=_progress(done, len(target), f"next batch at {rollout.pause_until}"),
                    wake=max(left, 0.0))
    return _next(policy, group, todo, sum(1 for m in members if m.exists) + group.others, rollout, fresh, timeout)


def _next(policy: Policy, group: Group, todo: Sequence[Member], existing: int, rollout: Rollout,
          fresh: Iterator[int], timeout: float) -> Step:
    """Start the next batch: Heat's next_batch says how many members get the definition and
    how big the group gets; missing members are made first, then extra ones if the group is
    to grow further, then members out of date are updated."""
    done = len(group.target) - len(todo)
    plan = batches(len(group.target), existing, policy.max_batch_size, policy.min_in_service, done)
    if policy.pause_time * max(len(plan) - 1, 0) >= timeout:
        return Step(rollout, state=rz.FAILED, reason=TIMEOUT)
    size, new = next_batch(len(group.target), existing, done, policy.max_batch_size, policy.min_in_service)
    missing = sorted(m.id for m in todo if not m.exists)[:new]
    grow = max(0, min(size - existing - len(missing), new - len(missing)))
    added = tuple(next(fresh) for _ in range(grow))
    updated = [m.id for m in todo if m.exists][:new - len(missing) - grow]
    batch = (*missing, *updated, *added)
    return Step(Rollout(batch, rollout.extra + added), frozenset(batch),
                reason=_progress(done, len(group.target), f"waiting for {group.label(batch)}"))


def _progress(done: int, total: int, what: str) -> str:
    return f"rolling update: {done} of {total} members up to date; {what}"


__all__ = ["Policy", "Member", "Group", "Rollout", "Step", "check", "group_policy", "next_batch", "batches",
           "carry_over", "replace_order", "step", "TIMEOUT"]
