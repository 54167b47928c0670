"""Tenant isolation for references between projects (Glance visibility, Neutron sharing).

A Server, Volume, Port... may reference an object by ``name`` (its own project) or by
``namespace/name`` (another project's). The operator resolves every reference itself, so
this check — not RBAC, which only governs what the *user* may read — decides whether one
project may use another project's object:

- the same namespace: always;
- an Image: ``public`` and ``community`` to every project, ``shared`` to the projects in its
  ``members`` list, ``private`` to its own project only (Glance);
- a Network: ``shared`` (or ``external``, for floating IPs and router gateways) to every
  project (Neutron);
- anything else (Volumes, KeyPairs, ServerGroups, SecurityGroups, Ports): never across
  projects.
"""

from __future__ import annotations

VISIBLE_TO_ALL = frozenset({"public", "community"})


def split_ref(ref: str, default_namespace: str) -> tuple[str, str]:
    """``name`` or ``namespace/name`` -> (namespace, name)."""
    if "/" in ref:
        namespace, name = ref.split("/", 1)
        return namespace, name
    return default_namespace, ref


def may_reference(requester_namespace: str, target_namespace: str, *, visibility: str | None = None,
                  members: list[str] | tuple[str, ...] = (), shared: bool = False) -> bool:
    """May an object in `requester_namespace` use one in `target_namespace`?

    `visibility` is an Image's (public/community/shared/private), `members` the projects a
    shared image is shared with, `shared` a Network's shared/external flag. A kind with
    neither (a Volume, a KeyPair...) passes only within its own project."""
    if requester_namespace == target_namespace:
        return True
    if shared:
        return True
    if visibility in VISIBLE_TO_ALL:
        return True
    if visibility == "shared":
        return requester_namespace in members
    return False


def reference_fault(kind: str, name: str, target_namespace: str, *, visibility: str | None = None,
                    requester_namespace: str | None = None) -> str:
    """The fault for a refused cross-project reference, e.g.
    ``Image cirros in project b is private to that project``."""
    where = f"{kind} {name} in project {target_namespace}"
    if visibility == "shared":
        who = f" and not shared with project {requester_namespace}" if requester_namespace else ""
        return f"{where} is shared only with its member projects{who}"
    if kind == "Network":
        return f"{where} is not shared: only that project may use it"
    if visibility == "private" or kind == "Image":
        return f"{where} is private to that project"
    return f"{where} belongs to that project: a {kind} cannot be used from another project"
