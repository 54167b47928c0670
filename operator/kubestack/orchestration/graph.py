"""The dependency graph of a stack's resources: edges from get_resource, get_attr and
depends_on; a topological order in parallel levels; cycles rejected."""

from __future__ import annotations

from typing import Mapping

from .errors import CircularDependency


def levels(deps: Mapping[str, set[str] | frozenset[str] | list[str]]) -> list[list[str]]:
    """Resources grouped into levels: every resource's dependencies are in earlier levels, so
    the resources of one level can be created in parallel. Names are sorted in a level."""
    remaining = {name: set(d) for name, d in deps.items()}
    for name, d in remaining.items():
        unknown = d - remaining.keys()
        if unknown:
            raise KeyError(f"{name} depends on unknown resource(s) {sorted(unknown)}")
    done: set[str] = set()
    out: list[list[str]] = []
    while remaining:
        ready = sorted(n for n, d in remaining.items() if d <= done)
        if not ready:
            raise CircularDependency(find_cycle(remaining))
        out.append(ready)
        done.update(ready)
        for n in ready:
            del remaining[n]
    return out


def order(deps: Mapping[str, set[str] | frozenset[str] | list[str]]) -> list[str]:
    return [n for level in levels(deps) for n in level]


def find_cycle(deps: Mapping[str, set[str]]) -> list[str]:
    """One cycle among ``deps`` as a path that starts and ends at the same resource."""
    color: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        color[node] = 1
        stack.append(node)
        for nxt in sorted(deps.get(node, ())):
            if nxt not in deps:
                continue
            if color.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if color.get(nxt) is None:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        color[node] = 2
        return None

    for start in sorted(deps):
        if color.get(start) is None:
            found = visit(start)
            if found:
                return found
    return sorted(deps)


def dependents(deps: Mapping[str, set[str]]) -> dict[str, set[str]]:
    """The reverse edges: for each resource, the resources that depend on it."""
    rev: dict[str, set[str]] = {n: set() for n in deps}
    for n, d in deps.items():
        for x in d:
            rev.setdefault(x, set()).add(n)
    return rev


def reverse_levels(deps: Mapping[str, set[str]]) -> list[list[str]]:
    """Delete order: dependents before what they depend on, in parallel levels."""
    return levels(dependents(deps))
