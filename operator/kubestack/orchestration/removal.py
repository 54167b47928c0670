"""What a stack removes, and in which order (pure).

Once every resource is complete, what the template no longer has goes: first the entries
the stack contributed to other objects and no longer contributes (unless their object goes
too), then the objects no longer wanted (removed resources, replaced copies, shrunk groups)
in reverse dependency order — by kind, `realize.DELETE_TIERS`: floating IPs, servers, nested
stacks, ports, volumes, images, security groups, key pairs, server groups, routers, networks,
secrets, flavors; each kind only refers to kinds after it, so one kind is removed after the other.
An object with ``deletion_policy: Retain`` is released instead: its owner reference to the
stack and the stack's labels come off, and it stays.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable, Mapping

from . import realize as rz

if TYPE_CHECKING:
    from .stack import Stack

Key = tuple[str, str]  # (kind, object name) of a stack's child


def tier(kind: str) -> int:
    """Where ``kind`` comes in the delete order."""
    return rz.DELETE_TIERS.index(kind) if kind in rz.DELETE_TIERS else len(rz.DELETE_TIERS)


def next_removals(children: Mapping[Key, dict], wanted: Iterable[Key]) -> list[tuple[Key, dict]]:
    """The children not wanted of the first kind, in delete order, that has any: they go
    before the kinds after it. Empty when every child is wanted."""
    wanted = set(wanted)
    stale = [(k, o) for k, o in children.items() if k not in wanted]
    if not stale:
        return []
    first = min(tier(k[0]) for k, _ in stale)
    return [(k, o) for k, o in stale if tier(k[0]) == first]


def stale_contributions(recorded: Mapping[str, dict], keep: Mapping[str, dict]) -> list[tuple[str, rz.Contribution]]:
    """The contributions recorded (resource name -> `Contribution.to_dict`) that this pass
    did not make again as they are (``keep``), by resource name."""
    return [(name, rz.Contribution.from_dict(cd)) for name, cd in sorted(recorded.items())
            if not (name in keep and keep[name] == cd)]


def retained(obj: dict) -> bool:
    """The object's resource has ``deletion_policy: Retain``."""
    return (obj["metadata"].get("annotations") or {}).get(rz.POLICY_ANNOTATION) == "Retain"


def release_patch(obj: dict, stack: Mapping[str, Any]) -> dict:
    """The patch that releases a retained object from the Stack with metadata ``stack``: no
    owner reference to it, none of its labels, an annotation saying where it came from."""
    owners = [o for o in obj["metadata"].get("ownerReferences") or [] if o.get("uid") != stack["uid"]]
    return {"metadata": {
        "ownerReferences": owners or None,
        "labels": {rz.STACK_LABEL: None, rz.RESOURCE_LABEL: None, rz.STACK_NAMESPACE_LABEL: None,
                   rz.MEMBER_LABEL: None},
        "annotations": {"kubestack.io/retained-from-stack": f"{stack['namespace']}/{stack['name']}"}}}


def kept_while_waiting(stack: Stack, ctx: rz.Context, name: str, children: Mapping[Key, dict]) -> set[Key]:
    """The objects of resource ``name`` that exist already: they stay wanted while it waits
    for others (a group's members, else its own object)."""
    label = rz.labels(ctx, name)[rz.RESOURCE_LABEL]
    out: set[Key] = set()
    for key, obj in children.items():
        if (obj["metadata"].get("labels") or {}).get(rz.RESOURCE_LABEL) == label:
            if stack.defs[name].rtype.group or key[1] == stack.physical_name(name):
                out.add(key)
    return out


__all__ = ["tier", "next_removals", "stale_contributions", "retained", "release_patch", "kept_while_waiting"]
