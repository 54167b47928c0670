"""The chart's cluster-side RBAC that the rest of kubestack relies on, in a dev cluster.

A real install (`helm install kubestack charts/kubestack -n kubestack-system`) creates, besides
the operator's own Deployment, ServiceAccount and ClusterRole, two things users depend on:

- the ClusterRoles `kubestack-project-{admin,member,reader}` (rbac-project-roles.yaml), which
  the RoleBindings the Project controller makes in every project namespace point at
  (`kubestack.identity.rbac`): without them a project member is bound to roles that do not
  exist and may do nothing;
- the Role and RoleBinding `kubestack-availability-zones` (rbac-availability-zones.yaml),
  which let every authenticated user get the ConfigMap the operator publishes its zones in
  (`kubestack.compute.zones`): without them `availability zone list` fails for project users.

`kubestack dev up` (and the integration tests' session cluster) runs the operator as a local
process with the admin kubeconfig, so the operator's Deployment and RBAC are not wanted there;
only these templates are rendered, by the `helm` built with the control plane
(`hack/build-controlplane.sh`), with the chart's own values and the operator's namespace as the
release namespace, so the dev cluster cannot drift from the chart. They are applied with
server-side apply (creates, or updates to what the chart says; a second `dev up` changes
nothing) and carry Helm's ownership annotations for release `kubestack` in that namespace, so a
later `helm install kubestack charts/kubestack -n <namespace>` adopts them instead of refusing.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from kubestack.devcluster.cluster import ControlPlaneError, DevCluster

REPO_ROOT = Path(__file__).resolve().parents[3]
CHART = REPO_ROOT / "charts" / "kubestack"
RELEASE = "kubestack"
TEMPLATES = ("templates/rbac-project-roles.yaml", "templates/rbac-availability-zones.yaml")
FIELD_MANAGER = "kubestack-dev"

# kind -> (namespaced, the RbacAuthorizationV1Api method suffix)
_KINDS = {
    "ClusterRole": (False, "cluster_role"),
    "ClusterRoleBinding": (False, "cluster_role_binding"),
    "Role": (True, "namespaced_role"),
    "RoleBinding": (True, "namespaced_role_binding"),
}


def helm_binary(bin_dir: Path) -> Path:
    helm = bin_dir / "helm"
    if not helm.exists():
        raise ControlPlaneError(
            f"{helm} is missing: the chart's RBAC is rendered with the helm that "
            "hack/build-controlplane.sh builds with the control plane (run it, or set "
            "KUBESTACK_BIN_DIR to a directory that has helm)"
        )
    return helm


def render(helm: Path, namespace: str, kube_version: str | None = None,
           templates: tuple[str, ...] = TEMPLATES) -> list[dict]:
    """`templates` of the chart as `helm install kubestack -n namespace` would create them."""
    cmd = [str(helm), "template", RELEASE, str(CHART), "--namespace", namespace,
           *(["--kube-version", kube_version] if kube_version else []),
           *(arg for t in templates for arg in ("--show-only", t))]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise ControlPlaneError(f"helm template of {', '.join(templates)} failed:\n{proc.stderr.strip()}")
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


def owned(doc: dict, namespace: str) -> dict:
    """`doc` with the annotations by which Helm recognises it as release kubestack's."""
    meta = doc["metadata"]
    annotations = {**(meta.get("annotations") or {}),
                   "meta.helm.sh/release-name": RELEASE, "meta.helm.sh/release-namespace": namespace}
    return {**doc, "metadata": {**meta, "annotations": annotations}}


def install(cluster: DevCluster, namespace: str) -> list[str]:
    """Render and server-side apply the chart's project ClusterRoles and availability-zones
    Role/RoleBinding, the latter in `namespace` (the operator's, created if missing); returns
    "Kind/name" of each object applied."""
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    from kubestack.devcluster.clients import api_client

    helm = helm_binary(cluster.bin)
    api = api_client(cluster.kubeconfig)
    version = client.VersionApi(api).get_code().git_version
    docs = render(helm, namespace, version)
    try:
        client.CoreV1Api(api).create_namespace({"metadata": {"name": namespace}})
    except ApiException as exc:
        if exc.status != 409:
            raise ControlPlaneError(f"namespace {namespace} was refused: {exc.body}") from exc
    rbac = client.RbacAuthorizationV1Api(api)
    applied = []
    for doc in docs:
        kind, name = doc.get("kind"), doc["metadata"]["name"]
        if kind not in _KINDS:
            raise ControlPlaneError(f"{kind} {name}: not RBAC, dev up applies only the chart's RBAC templates")
        namespaced, method = _KINDS[kind]
        args = (name, namespace) if namespaced else (name,)
        try:
            getattr(rbac, f"patch_{method}")(*args, owned(doc, namespace), field_manager=FIELD_MANAGER,
                                             force=True, _content_type="application/apply-patch+yaml")
        except ApiException as exc:
            raise ControlPlaneError(f"{kind} {name} was refused: {exc.body}") from exc
        applied.append(f"{kind}/{name}")
    return applied
