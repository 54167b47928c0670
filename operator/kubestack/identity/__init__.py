"""Identity (Keystone's role): projects, role assignments, quotas and tenant isolation.

Pure domain logic, no kubernetes client and no kopf:

- `quota`: the in-memory quota ledger every controller reserves against before it creates
  anything (Nova's count-then-claim, serialised in the single leader operator).
- `access`: may a request in one project reference an object of another project?
- `usage`: what a project uses, counted from the objects in its namespace.
- `rbac`: the Kubernetes objects a Project is realised as (Namespace, RoleBindings, the
  per-project ClusterRoles, ResourceQuota, the default SecurityGroup).

A Project `p` owns namespace `p`, labelled `kubestack.io/project=p`; a namespace without that
label belongs to no project and no quota applies there.
"""

from __future__ import annotations

from collections.abc import Mapping

PROJECT_LABEL = "kubestack.io/project"
PARENT_LABEL = "kubestack.io/parent"
MANAGED_LABEL = "kubestack.io/managed-by"
MANAGED_VALUE = "project-controller"


def project_of_namespace(namespace_labels: Mapping[str, str] | None) -> str | None:
    """The Project a namespace belongs to, from its labels; None for a namespace that
    belongs to no Project (no quota applies there)."""
    if not namespace_labels:
        return None
    return namespace_labels.get(PROJECT_LABEL) or None
