"""How Heat sizes its groups (pure).

OS::Heat::AutoScalingGroup:

* :func:`adjusted_capacity` — the size a scaling policy's signal asks for (Heat's
  ``calculate_new_capacity``), always within ``min_size..max_size``, from the group's current
  size: its members less the failed ones (:func:`healthy`), as Heat counts it.
  :func:`check_policy` — a policy's properties as Heat validates them.
* :func:`cooling_down`, :func:`cooldown_end` — Heat's cooldown: a resize (one that changed
  the size) sets when the group's cooldown ends, ``cooldown`` seconds (the policy's, else the
  group's) later, never earlier than an end set before; until then every signal to the group,
  whichever policy it is for, is dropped.
* :func:`capacity_after_update` — what a stack update does to a size set by signals: nothing
  when the group's definition did not change; ``desired_capacity`` when the new definition
  gives one; otherwise the current size, moved into the new bounds.
* :class:`Members` — which members a group keeps when it is resized. Heat removes the
  failed members first, then the oldest, and gives new ones new names, so members carry ids
  in creation order and an id is never given twice (an old member may still be going away);
  :func:`failed_members` finds the failed ones among the stack's objects.
* :func:`capacities_after_update` — capacity_after_update for every group of a stack.

OS::Heat::ResourceGroup:

* :func:`removal_blacklist` and :func:`group_indices` — ``removal_policies``: the members
  named in ``resource_list`` are removed and their names (indices) never used again, so a
  group of ``count`` members has the first ``count`` indices not blacklisted;
  :func:`removal_blacklists` resolves them for every group of a stack. A smaller ``count``
  keeps the first ``count`` names whatever state their members are in: unlike an
  AutoScalingGroup, Heat's ResourceGroup does not remove failed members first (name them in
  ``removal_policies`` for that).
"""

from __future__ import annotations

import datetime
import itertools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from . import realize as rz
from .errors import StackValidationFailed
from .lifecycle import STAMP

if TYPE_CHECKING:
    from .stack import Stack

CHANGE_IN_CAPACITY = "change_in_capacity"
EXACT_CAPACITY = "exact_capacity"
PERCENT_CHANGE_IN_CAPACITY = "percent_change_in_capacity"


def adjusted_capacity(current: int, adjustment: float, adjustment_type: str, min_adjustment_step: int | None,
                      minimum: int, maximum: int) -> int:
    """The group's size after one scaling signal, as Heat computes it."""
    if adjustment_type == EXACT_CAPACITY:
        new = int(adjustment)
    elif adjustment_type == PERCENT_CHANGE_IN_CAPACITY:
        delta = current * adjustment / 100.0
        # a change of less than one member still moves by one; more is rounded toward zero
        if abs(delta) < 1.0:
            step = math.ceil(delta) if delta > 0 else math.floor(delta)
        else:
            step = math.floor(delta) if delta > 0 else math.ceil(delta)
        if min_adjustment_step and min_adjustment_step > abs(step):
            step = min_adjustment_step if step > 0 else -min_adjustment_step
        new = current + int(step)
    else:
        new = current + int(adjustment)
    return max(minimum, min(maximum, new))


def check_policy(props: Mapping[str, Any], path: list[str]) -> None:
    """Raise StackValidationFailed, as Heat's validation of a ScalingPolicy does, when it gives
    ``min_adjustment_step`` with another ``adjustment_type`` than percent_change_in_capacity
    (the only one it rounds)."""
    kind = props.get("adjustment_type")
    if props.get("min_adjustment_step") is not None and isinstance(kind, str) and kind != PERCENT_CHANGE_IN_CAPACITY:
        raise StackValidationFailed("min_adjustment_step property should only be specified for adjustment_type "
                                    f"with value {PERCENT_CHANGE_IN_CAPACITY}.", path)


def healthy(members: Members, failed: Iterable[int]) -> int:
    """The size a scaling signal adjusts: the members not failed (Heat's group size leaves
    failed members out)."""
    bad = frozenset(failed)
    return sum(1 for i in members.ids if i not in bad)


def cooling_down(end: str | None, now: datetime.datetime) -> bool:
    """Whether a group whose cooldown ends at ``end`` (a `lifecycle.STAMP`; None: it never
    scaled) still cools down at ``now``."""
    return end is not None and now.strftime(STAMP) < end


def cooldown_end(previous: str | None, cooldown: int | None, now: datetime.datetime) -> str:
    """When a group's cooldown ends once it resized at ``now``: ``cooldown`` seconds later (None
    or less than 0: none), or at ``previous``, the end set before, when that is later."""
    end = (now + datetime.timedelta(seconds=max(0, cooldown or 0))).strftime(STAMP)
    return max(end, previous) if previous else end


def initial_capacity(props: Mapping[str, Any]) -> int:
    """The size a group's properties ask for: desired_capacity, else min_size."""
    desired = props.get("desired_capacity")
    return int(desired) if desired is not None else int(props["min_size"])


def capacity_after_update(old: Mapping[str, Any], new: Mapping[str, Any], current: int | None) -> int | None:
    """The size recorded for a group (set by scaling signals) once a stack update changed
    ``old`` properties into ``new``; None when the template's own size applies.

    Heat only touches a group whose definition changed; it then resizes it to
    desired_capacity when given, else keeps its current size within the new bounds."""
    if dict(old) == dict(new):
        return current
    if new.get("desired_capacity") is not None:
        return None
    size = current if current is not None else initial_capacity(old)
    return max(int(new["min_size"]), min(int(new["max_size"]), size))


def capacities_after_update(old: Stack, new: Stack, capacity: Mapping[str, int]) -> dict[str, int]:
    """The sizes of the AutoScalingGroups after an update from ``old`` to ``new``, as Heat
    resizes a group whose definition changed (see capacity_after_update). ``capacity``: the
    sizes signals set; ``old`` has the template's own definitions, without those sizes."""
    out: dict[str, int] = {}
    for group, d in new.defs.items():
        if d.rtype.name != "OS::Heat::AutoScalingGroup" or not d.enabled or group not in old.defs \
                or not old.defs[group].enabled or old.defs[group].rtype.name != d.rtype.name:
            continue
        size = capacity_after_update(old.resolve(group), new.resolve(group), capacity.get(group))
        if size is not None:
            out[group] = size
    return out


@dataclass(frozen=True)
class Members:
    """The member ids of a group, oldest first, and the id the next new member gets."""

    ids: tuple[int, ...] = ()
    next_id: int = 0

    def resized(self, size: int, failed: Iterable[int] = ()) -> "Members":
        """The members after resizing to ``size``: the ``failed`` ones go first, then the
        oldest (Heat orders a group's members failed first, then by creation, and keeps the
        last); those kept stay in creation order, and new ones get new ids."""
        size = max(0, size)
        if size >= len(self.ids):
            kept = self.ids
        else:
            bad = frozenset(failed)
            order = [i for i in self.ids if i in bad] + [i for i in self.ids if i not in bad]
            keep = frozenset(order[len(order) - size:]) if size else frozenset()
            kept = tuple(i for i in self.ids if i in keep)
        start = max([self.next_id] + [i + 1 for i in self.ids])
        added = tuple(range(start, start + size - len(kept)))
        return Members(kept + added, start + len(added))

    def to_dict(self) -> dict[str, Any]:
        return {"ids": list(self.ids), "next": self.next_id}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> "Members":
        data = data or {}
        return cls(tuple(int(i) for i in data.get("ids") or ()), int(data.get("next") or 0))


def failed_members(stack: Stack, children: Mapping[tuple[str, str], dict]) -> dict[str, frozenset[int]]:
    """The ids of each AutoScalingGroup's members (as last resized) whose objects, among the
    stack's ``children`` (by (kind, name)), failed (`realize.readiness`): the members Heat
    removes first when the group shrinks and leaves out of the group's attributes."""
    out: dict[str, frozenset[int]] = {}
    for group, d in stack.defs.items():
        if d.rtype.name != "OS::Heat::AutoScalingGroup" or not d.enabled or group not in stack.group_members:
            continue
        mtype = stack.member_type(group)
        if mtype is None or mtype.kind is None:
            continue
        failed = frozenset(i for i in stack.group_members[group].ids
                           if rz.readiness(mtype.name, children.get((mtype.kind, stack.physical_name(group, i))))
                           .state == rz.FAILED)
        if failed:
            out[group] = failed
    return out


def removal_blacklist(policies: Sequence[Mapping[str, Any]] | None, mode: str, current: Iterable[str],
                      members: Mapping[str, str] | None) -> frozenset[str]:
    """The member names a ResourceGroup no longer uses once its ``removal_policies`` apply.

    ``members`` maps the names (indices) of the members the group has to their references
    (object names); None while the group has none yet, when every name listed is taken as
    it is. An entry of ``resource_list`` is a member's name or its reference; one naming no
    member is ignored, as Heat does. With mode ``append`` (Heat's default) names
    blacklisted before stay so; with ``update`` the list starts over."""
    current = frozenset(current)
    out = set() if mode == "update" else set(current)
    by_ref = {ref: name for name, ref in (members or {}).items()}
    for policy in policies or []:
        for entry in policy.get("resource_list") or []:
            key = str(entry)
            if members is None or key in current or key in members:
                out.add(key)
            elif key in by_ref:
                out.add(by_ref[key])
    return frozenset(out)


def removal_blacklists(new: Stack, old: Stack | None, current: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """The member names each ResourceGroup of ``new`` gives up, its removal_policies resolved
    against the members it has (those of ``old``, the stack before the update; None at
    create). ``current``: the names given up before."""
    out: dict[str, list[str]] = {}
    for group, d in new.defs.items():
        if d.rtype.name != "OS::Heat::ResourceGroup" or not d.enabled:
            continue
        props = new.resolve(group)
        members = None
        od = old.defs.get(group) if old is not None else None
        if od is not None and od.enabled and od.rtype.name == d.rtype.name:
            count = old.resolve(group).get("count")
            ids = old.member_ids(group, count) if isinstance(count, int) else []
            members = {str(i): old.physical_name(group, i) for i in ids}
        names = removal_blacklist(props.get("removal_policies"), props.get("removal_policies_mode") or "append",
                                  current.get(group) or (), members)
        if names:
            out[group] = sorted(names, key=lambda n: (len(n), n))
    return out


def group_indices(count: int, blacklist: Iterable[str] = ()) -> list[int]:
    """The indices of a ResourceGroup's ``count`` members: the first not blacklisted."""
    skip = frozenset(blacklist)
    return list(itertools.islice((i for i in itertools.count() if str(i) not in skip), max(0, count)))


__all__ = ["adjusted_capacity", "check_policy", "healthy", "cooling_down", "cooldown_end", "capacity_after_update",
           "capacities_after_update", "initial_capacity", "Members", "failed_members", "removal_blacklist", "removal_blacklists", "group_indices",
           "CHANGE_IN_CAPACITY", "EXACT_CAPACITY", "PERCENT_CHANGE_IN_CAPACITY"]
