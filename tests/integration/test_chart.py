"""The Helm chart lints and installs into the local control plane."""

from __future__ import annotations

import subprocess

from kubernetes import client

from conftest import REPO_ROOT


def _helm(cluster, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(cluster.bin_dir / "helm"), *args, "--kubeconfig", str(cluster.kubeconfig)],
                          capture_output=True, text=True, cwd=REPO_ROOT)


def test_chart_lints(cluster):
    proc = _helm(cluster, "lint", "charts/kubestack")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 chart(s) failed" in proc.stdout


def test_chart_installs(cluster):
    proc = _helm(cluster, "install", "kubestack", "charts/kubestack", "--namespace", "kubestack-chart",
                 "--create-namespace", "--set", "replicas=2")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    try:
        apps = client.AppsV1Api(cluster.api)
        deploy = apps.read_namespaced_deployment("kubestack-operator", "kubestack-chart")
        assert deploy.spec.replicas == 2
        container = deploy.spec.template.spec.containers[0]
        assert container.liveness_probe.http_get.path == "/healthz"
        assert container.readiness_probe.http_get.path == "/readyz"
        rbac = client.RbacAuthorizationV1Api(cluster.api)
        for role in ("kubestack-operator", "kubestack-project-admin", "kubestack-project-member",
                     "kubestack-project-reader"):
            assert rbac.read_cluster_role(role).rules
        svc = client.CoreV1Api(cluster.api).read_namespaced_service("kubestack-metrics", "kubestack-chart")
        assert svc.spec.ports[0].port == 8080
        ext = client.ApiextensionsV1Api(cluster.api)
        assert ext.read_custom_resource_definition("servers.kubestack.io").spec.group == "kubestack.io"
    finally:
        _helm(cluster, "uninstall", "kubestack", "--namespace", "kubestack-chart")
