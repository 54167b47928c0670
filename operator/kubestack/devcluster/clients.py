"""Kubernetes API clients for a kubeconfig, as the admin or impersonating another user."""

from __future__ import annotations

from pathlib import Path

from kubernetes import client, config


def api_client(kubeconfig: Path | str, *, impersonate: str | None = None,
               group: str | None = None) -> client.ApiClient:
    """A fresh ApiClient for `kubeconfig`; with `impersonate`, every request carries
    Impersonate-User (and Impersonate-Group) headers so RBAC is evaluated for that user, not
    the admin. The client's default headers are a plain dict, so one group at most: a user in
    several groups gets a client certificate instead (DevCluster.issue_user)."""
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    # many controllers and tests share one client: keep enough pooled connections
    configuration.connection_pool_maxsize = 32
    api = client.ApiClient(configuration)
    if impersonate:
        api.set_default_header("Impersonate-User", impersonate)
        if group:
            api.set_default_header("Impersonate-Group", group)
    return api
