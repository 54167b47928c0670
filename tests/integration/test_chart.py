"""The Helm chart lints and installs into the local control plane, and the local control plane
has the chart's cluster-side RBAC that `kubestack dev up` installs from it (no drift)."""

from __future__ import annotations

import subprocess

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from conftest import REPO_ROOT
from kubestack.compute.zones import CONFIGMAP
from kubestack.devcluster import rbac as dev_rbac
from kubestack.identity.rbac import ROLES, cluster_role_name
from support.processes import OPERATOR_NAMESPACE


def _helm(cluster, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(cluster.bin_dir / "helm"), *args, "--kubeconfig", str(cluster.kubeconfig)],
                          capture_output=True, text=True, cwd=REPO_ROOT)


def _rendered(cluster, namespace: str) -> list[dict]:
    """The whole chart, as `helm install kubestack -n namespace` would create it."""
    version = client.VersionApi(cluster.api).get_code().git_version
    proc = _helm(cluster, "template", "kubestack", "charts/kubestack", "--namespace", namespace,
                 "--kube-version", version)
    assert proc.returncode == 0, proc.stderr
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


def test_chart_lints(cluster):
    proc = _helm(cluster, "lint", "charts/kubestack")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 chart(s) failed" in proc.stdout


def test_dev_cluster_has_the_charts_project_roles_and_zone_reader(cluster):
    """What `kubestack dev up` installed (as the session's cluster did) is what the chart
    renders: the project ClusterRoles the Project controller binds, and the Role letting any
    user read the published zones; nothing of the operator's own (it runs as the admin)."""
    docs = _rendered(cluster, OPERATOR_NAMESPACE)
    api = client.RbacAuthorizationV1Api(cluster.api)
    plain = cluster.api.sanitize_for_serialization

    roles = {d["metadata"]["name"]: d for d in docs
             if d["kind"] == "ClusterRole" and d["metadata"]["name"].startswith("kubestack-project-")}
    assert set(roles) == {cluster_role_name(r) for r in ROLES}
    live = {r.metadata.name: plain(r) for r in api.list_cluster_role().items
            if r.metadata.name.startswith("kubestack-project-")}
    assert set(live) == set(roles)
    for name, doc in roles.items():
        assert live[name]["rules"] == doc["rules"], name
        assert doc["metadata"]["labels"].items() <= live[name]["metadata"]["labels"].items()

    zone_docs = {d["kind"]: d for d in docs if d["metadata"]["name"] == "kubestack-availability-zones"}
    assert set(zone_docs) == {"Role", "RoleBinding"}
    role = plain(api.read_namespaced_role("kubestack-availability-zones", OPERATOR_NAMESPACE))
    assert role["rules"] == zone_docs["Role"]["rules"]
    assert role["rules"][0]["resourceNames"] == [CONFIGMAP]
    binding = plain(api.read_namespaced_role_binding("kubestack-availability-zones", OPERATOR_NAMESPACE))
    assert (binding["roleRef"], binding["subjects"]) == \
        (zone_docs["RoleBinding"]["roleRef"], zone_docs["RoleBinding"]["subjects"])

    with pytest.raises(ApiException) as err:
        api.read_cluster_role("kubestack-operator")
    assert err.value.status == 404


def test_chart_installs_over_what_dev_up_installed(cluster):
    """`helm install` into the dev operator's namespace adopts the RBAC `kubestack dev up`
    installed (Helm's ownership annotations) instead of refusing it as foreign."""
    proc = _helm(cluster, "install", "kubestack", "charts/kubestack", "--namespace", OPERATOR_NAMESPACE,
                 "--create-namespace", "--set", "replicas=2")
    try:
        assert proc.returncode == 0, proc.stdout + proc.stderr
        apps = client.AppsV1Api(cluster.api)
        deploy = apps.read_namespaced_deployment("kubestack-operator", OPERATOR_NAMESPACE)
        assert deploy.spec.replicas == 2
        container = deploy.spec.template.spec.containers[0]
        assert container.liveness_probe.http_get.path == "/healthz"
        assert container.readiness_probe.http_get.path == "/readyz"
        rbac = client.RbacAuthorizationV1Api(cluster.api)
        for role in ("kubestack-operator", "kubestack-project-admin", "kubestack-project-member",
                     "kubestack-project-reader"):
            assert rbac.read_cluster_role(role).rules
        assert rbac.read_namespaced_role("kubestack-availability-zones", OPERATOR_NAMESPACE).rules
        svc = client.CoreV1Api(cluster.api).read_namespaced_service("kubestack-metrics", OPERATOR_NAMESPACE)
        assert svc.spec.ports[0].port == 8080
        ext = client.ApiextensionsV1Api(cluster.api)
        assert ext.read_custom_resource_definition("servers.kubestack.io").spec.group == "kubestack.io"
    finally:
        _helm(cluster, "uninstall", "kubestack", "--namespace", OPERATOR_NAMESPACE)
        # the uninstall took the adopted RBAC with it: put back what the session's tests rely on
        dev_rbac.install(cluster.dev, OPERATOR_NAMESPACE)
