"""The Kubernetes objects a Project is realised as (pure renderers, no API calls).

- Namespace ``<project>`` labelled ``kubestack.io/project=<project>`` (and
  ``kubestack.io/parent=<parent>`` in a hierarchy). No owner reference: deleting a Project
  must never let the garbage collector delete its data; the controller's finalizer decides.
- One RoleBinding per role in use, ``kubestack-project-<role>``, binding that role's users
  and groups to the chart's ClusterRole of the same name. A disabled project has none.
- Two ClusterRoles per project (with their ClusterRoleBindings), because the Project itself
  is cluster-scoped and a RoleBinding cannot grant it: ``kubestack:project:<p>:viewer`` lets
  every member get the Project (and read Flavors, which are cluster-scoped too);
  ``kubestack:project:<p>:admin`` lets the project's admins update and patch it — members
  and quotas live in its spec. Both are owned by the Project (garbage collected with it)
  and deleted explicitly when it is finalised.
- A ResourceQuota ``kubestack-quota`` for what Kubernetes can count itself. Object counts
  (``count/<plural>.kubestack.io``) enforce the per-object quotas at admission, race-free,
  as Neutron and Nova refuse the create: networks, ports, routers, floating IPs, security
  groups, key pairs, server groups, images; VolumeSnapshot objects = snapshots. Subnets and
  security group rules live inside their objects, so Kubernetes cannot count them (the
  Project's status still shows them). Under the operator's ledger (which enforces instances,
  cores, ram, volumes and gigabytes, with Nova's and Cinder's messages) it is a backstop:
  ``persistentvolumeclaims`` = volumes + instances + images (every Volume, every Server's
  root disk and every project Image is one PVC).
  ``requests.storage`` is deliberately not set to ``gigabytes``: gigabytes is Cinder's
  quota on Volumes, while root disks (sized by the flavor, which Nova does not bound) and
  image PVCs live in the same namespace and Kubernetes cannot tell them apart; a storage
  ceiling there would make the API server refuse a root disk of a Server the ledger had
  admitted, a half-built server. Members cannot create PVCs themselves (the project roles
  grant read only), so only the operator's own objects are counted.
- A default SecurityGroup ``default`` (Neutron's): all egress over IPv4 and IPv6, ingress
  only from members of the same group. Created once; a user's later edits are kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from kubestack.identity import MANAGED_LABEL, MANAGED_VALUE, PARENT_LABEL, PROJECT_LABEL

ROLES = ("admin", "member", "reader")
RBAC_GROUP = "rbac.authorization.k8s.io"
QUOTA_NAME = "kubestack-quota"
DEFAULT_SECURITY_GROUP = "default"

# the namespaced kinds members work with (the chart's project ClusterRoles list the same)
TENANT_KINDS = (
    "servers", "keypairs", "servergroups", "images", "volumes", "networks", "ports", "routers",
    "securitygroups", "floatingips", "stacks",
)


def role_binding_name(role: str) -> str:
    return f"kubestack-project-{role}"


def cluster_role_name(role: str) -> str:
    """The chart's ClusterRole for a project role."""
    return f"kubestack-project-{role}"


def project_cluster_role_name(project: str, which: str) -> str:
    """Per-project ClusterRole (and ClusterRoleBinding) name, `which` viewer or admin."""
    return f"kubestack:project:{project}:{which}"


def _labels(project: str) -> dict[str, str]:
    return {PROJECT_LABEL: project, MANAGED_LABEL: MANAGED_VALUE}


def namespace(project: str, parent: str | None) -> dict[str, Any]:
    labels = {PROJECT_LABEL: project}
    if parent:
        labels[PARENT_LABEL] = parent
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": project, "labels": labels}}


def namespace_labels_patch(project: str, parent: str | None, current: Mapping[str, str] | None
                           ) -> dict[str, Any] | None:
    """The labels patch that brings an existing namespace in line; None when it is."""
    current = current or {}
    want: dict[str, str | None] = {PROJECT_LABEL: project, PARENT_LABEL: parent or None}
    patch = {k: v for k, v in want.items() if current.get(k) != v and not (v is None and k not in current)}
    return {"metadata": {"labels": patch}} if patch else None


def subject(member: Mapping[str, Any]) -> dict[str, str]:
    if member.get("user"):
        return {"kind": "User", "apiGroup": RBAC_GROUP, "name": member["user"]}
    return {"kind": "Group", "apiGroup": RBAC_GROUP, "name": member["group"]}


def subjects_by_role(members: Iterable[Mapping[str, Any]]) -> dict[str, list[dict[str, str]]]:
    """role -> sorted, de-duplicated subjects (a user listed twice with different roles
    holds both)."""
    out: dict[str, list[dict[str, str]]] = {role: [] for role in ROLES}
    for m in members:
        role = str(m.get("role") or "member")
        s = subject(m)
        if s not in out[role]:
            out[role].append(s)
    return {role: sorted(subs, key=lambda s: (s["kind"], s["name"])) for role, subs in out.items()}


def role_bindings(project: str, members: Iterable[Mapping[str, Any]], enabled: bool
                  ) -> dict[str, dict[str, Any] | None]:
    """RoleBinding name -> desired body, or None where none should exist."""
    by_role = subjects_by_role(members)
    out: dict[str, dict[str, Any] | None] = {}
    for role in ROLES:
        name = role_binding_name(role)
        subs = by_role[role] if enabled else []
        out[name] = None if not subs else {
            "apiVersion": f"{RBAC_GROUP}/v1", "kind": "RoleBinding",
            "metadata": {"name": name, "namespace": project, "labels": _labels(project)},
            "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": cluster_role_name(role)},
            "subjects": subs,
        }
    return out


def project_cluster_roles(project: str, members: Iterable[Mapping[str, Any]], enabled: bool,
                          owner: Mapping[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
    """[(ClusterRole, ClusterRoleBinding or None)] for the viewer and admin rules."""
    by_role = subjects_by_role(members)
    everyone = [s for role in ROLES for s in by_role[role]]
    everyone = sorted({(s["kind"], s["name"]): s for s in everyone}.values(),
                      key=lambda s: (s["kind"], s["name"]))
    spec = {
        "viewer": (everyone, [
            {"apiGroups": ["kubestack.io"], "resources": ["projects"], "resourceNames": [project],
             "verbs": ["get", "watch"]},
            {"apiGroups": ["kubestack.io"], "resources": ["flavors"], "verbs": ["get", "list", "watch"]},
        ]),
        "admin": (by_role["admin"], [
            {"apiGroups": ["kubestack.io"], "resources": ["projects"], "resourceNames": [project],
             "verbs": ["get", "watch", "update", "patch"]},
        ]),
    }
    out = []
    for which, (subs, rules) in spec.items():
        name = project_cluster_role_name(project, which)
        meta = {"name": name, "labels": _labels(project), "ownerReferences": [dict(owner)]}
        role = {"apiVersion": f"{RBAC_GROUP}/v1", "kind": "ClusterRole", "metadata": meta, "rules": rules}
        binding = None
        if subs and enabled:
            binding = {
                "apiVersion": f"{RBAC_GROUP}/v1", "kind": "ClusterRoleBinding",
                "metadata": dict(meta),
                "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": name},
                "subjects": subs,
            }
        out.append((role, binding))
    return out


# Project quota (wire name) -> the kubestack.io resource whose objects it counts
COUNTED_OBJECTS = {
    "networks": "networks", "ports": "ports", "routers": "routers", "floatingIps": "floatingips",
    "securityGroups": "securitygroups", "keyPairs": "keypairs", "serverGroups": "servergroups",
    "images": "images",
}


def quota_hard(quotas: Mapping[str, int]) -> dict[str, str]:
    """ResourceQuota ``spec.hard`` from the Project's quotas (wire names); see the module
    docstring for what is and is not counted by Kubernetes."""
    from kubestack import API_GROUP

    hard: dict[str, str] = {}
    for quota, plural in COUNTED_OBJECTS.items():
        limit = int(quotas.get(quota, -1))
        if limit >= 0:
            hard[f"count/{plural}.{API_GROUP}"] = str(limit)
    pvc_parts = [int(quotas.get(k, -1)) for k in ("volumes", "instances", "images")]
    if all(v >= 0 for v in pvc_parts):
        hard["persistentvolumeclaims"] = str(sum(pvc_parts))
    snapshots = int(quotas.get("snapshots", -1))
    if snapshots >= 0:
        hard["count/volumesnapshots.snapshot.storage.k8s.io"] = str(snapshots)
    return hard


def resource_quota(project: str, quotas: Mapping[str, int]) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "ResourceQuota",
        "metadata": {"name": QUOTA_NAME, "namespace": project, "labels": _labels(project)},
        "spec": {"hard": quota_hard(quotas)},
    }


def default_security_group(project: str) -> dict[str, Any]:
    from kubestack import API_GROUP, API_VERSION

    from kubestack.network.policy import default_group_rules

    rules = default_group_rules()
    return {
        "apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": "SecurityGroup",
        "metadata": {"name": DEFAULT_SECURITY_GROUP, "namespace": project, "labels": _labels(project)},
        "spec": {"description": "Default security group", "rules": rules},
    }
