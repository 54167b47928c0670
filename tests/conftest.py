"""Shared fixtures. Integration tests get a real control plane (etcd + kube-apiserver +
kube-controller-manager, built once into the cache by hack/build-controlplane.sh), started
once per test session with what `kubestack dev up` installs (every CRD, the chart's project
roles and zone-reader Role); unit tests need none of it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def pytest_collection_modifyitems(config, items):
    # the directory decides the marker, so `pytest -m unit` runs without any binaries
    for item in items:
        parts = Path(str(item.fspath)).relative_to(REPO_ROOT).parts
        if len(parts) > 1 and parts[1] in ("unit", "integration", "e2e"):
            item.add_marker(getattr(pytest.mark, parts[1]))


@dataclass
class TestCluster:
    __test__ = False  # not a test class, despite the name

    kubeconfig: Path
    bin_dir: Path
    dev: object  # kubestack.devcluster.cluster.DevCluster

    @property
    def api(self):
        if not hasattr(self, "_api"):
            from kubestack.devcluster.clients import api_client

            self._api = api_client(self.kubeconfig)
        return self._api

    def impersonate(self, user: str, group: str | None = None):
        """An ApiClient whose every request is authorised as `user` (never system:masters)."""
        from kubestack.devcluster.clients import api_client

        return api_client(self.kubeconfig, impersonate=user, group=group)


@pytest.fixture(scope="session")
def cluster(tmp_path_factory) -> TestCluster:
    from kubestack.devcluster import rbac
    from kubestack.devcluster.cluster import DevCluster, find_bin_dir, node_specs
    from kubestack.devcluster.crds import install_crds
    from support.processes import OPERATOR_NAMESPACE

    bin_dir = find_bin_dir(REPO_ROOT)
    dev = DevCluster(tmp_path_factory.mktemp("controlplane"), bin_dir)
    dev.up(node_specs(4, ["az1", "az2"]))
    try:
        install_crds(dev.kubeconfig)
        rbac.install(dev, OPERATOR_NAMESPACE)  # in the namespace of the session's operator
        yield TestCluster(kubeconfig=dev.kubeconfig, bin_dir=bin_dir, dev=dev)
    finally:
        dev.down()


def _fresh_namespace(cluster, prefix: str):
    from kubernetes import client

    core = client.CoreV1Api(cluster.api)
    name = f"{prefix}-{uuid.uuid4().hex[:10]}"
    core.create_namespace({"metadata": {"name": name, "labels": {"kubestack.io/test": "true"}}})
    yield name
    core.delete_namespace(name)


@pytest.fixture
def namespace(cluster) -> str:
    """A fresh namespace for one test, deleted (by the real namespace controller) after it."""
    yield from _fresh_namespace(cluster, "t")


@pytest.fixture
def admin(cluster) -> str:
    """A second fresh namespace, for what the admin project holds in OpenStack terms (an
    external network the test's project takes floating IPs from)."""
    yield from _fresh_namespace(cluster, "pub")


@pytest.fixture(scope="session")
def kubestack(cluster, tmp_path_factory):
    """The operator and the simulator running against the session's control plane. One per
    session: two operators would both act (each test must not start its own with controllers)."""
    from support.processes import Stack

    stack = Stack(cluster.kubeconfig, tmp_path_factory.mktemp("kubestack-logs"))
    yield stack
    stack.stop()
