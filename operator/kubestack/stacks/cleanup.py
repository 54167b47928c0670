"""Removing what a stack no longer has (see `kubestack.orchestration.removal` for what goes
and in which order): one step per pass, until nothing unwanted is left."""

from __future__ import annotations

from kubestack.orchestration import removal

from .cluster import Cluster, Key


def cleanup(cluster: Cluster, body: dict, children: dict[Key, dict], wanted: set[Key], state: dict,
            keep: dict[str, dict]) -> tuple[bool, list[str]]:
    """Remove stale contributions, then delete (or release) the objects not wanted, one kind
    after the other. ``keep``: the contributions the stack makes now. Returns (finished,
    what is still going)."""
    meta = body["metadata"]
    for name, c in removal.stale_contributions(state.get("contributions") or {}, keep):
        key = (c.kind, c.target)
        if key not in children or key in wanted:  # else the entry goes with its target
            target = children.get(key) or cluster.get(c.kind, c.namespace, c.target)
            patch = c.patch(target, remove=True) if target is not None else None
            if patch is not None:
                cluster.patch(c.kind, c.namespace, c.target, patch)
        state["contributions"].pop(name)
    state.setdefault("contributions", {}).update(keep)
    going = removal.next_removals(children, wanted)
    for (kind, name), obj in going:
        if obj["metadata"].get("deletionTimestamp"):
            continue
        if removal.retained(obj):
            cluster.patch(kind, meta["namespace"], name, removal.release_patch(obj, meta))
            cluster.event(body, "Normal", "Retained", f"{kind} {name} retained (deletion_policy Retain)")
            continue
        cluster.delete(kind, meta["namespace"], name)
    return not going, [f"{kind} {name}" for (kind, name), _ in going]
