"""The local control plane is real: RBAC, garbage collection, namespace deletion, quota usage,
registered compute Nodes; `up` is idempotent and recovers after a crash."""

from __future__ import annotations

import os
import signal
import time

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException


def _eventually(check, timeout=60.0, interval=0.2):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


def test_compute_nodes_are_registered(cluster):
    nodes = client.CoreV1Api(cluster.api).list_node(label_selector="kubestack.io/compute-host=true").items
    assert sorted(n.metadata.name for n in nodes) == ["compute-0", "compute-1", "compute-2", "compute-3"]
    for node in nodes:
        assert node.status.allocatable["cpu"] == "32"
        assert node.status.allocatable["memory"] == "128Gi"
        assert {"ephemeral-storage", "pods"} <= set(node.status.allocatable)
        assert node.metadata.labels["topology.kubernetes.io/zone"] in ("az1", "az2")
        assert node.metadata.labels["kubernetes.io/arch"] == "amd64"
        ready = [c for c in node.status.conditions if c.type == "Ready"]
        assert ready and ready[0].status == "True"
        assert not node.spec.taints


def test_rbac_is_enforced_for_non_admin_users(cluster, namespace):
    core = client.CoreV1Api(cluster.impersonate("alice"))
    with pytest.raises(ApiException) as err:
        core.list_namespaced_config_map(namespace)
    assert err.value.status == 403


def test_garbage_collector_deletes_dependents(cluster, namespace):
    core = client.CoreV1Api(cluster.api)
    owner = core.create_namespaced_config_map(namespace, {"metadata": {"name": "owner"}})
    core.create_namespaced_config_map(namespace, {"metadata": {
        "name": "dependent",
        "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner",
                             "uid": owner.metadata.uid}],
    }})
    core.delete_namespaced_config_map("owner", namespace)

    def gone():
        try:
            core.read_namespaced_config_map("dependent", namespace)
        except ApiException as exc:
            return exc.status == 404
        return False

    _eventually(gone)


def test_resource_quota_usage_is_counted(cluster, namespace):
    core = client.CoreV1Api(cluster.api)
    core.create_namespaced_resource_quota(namespace, {
        "metadata": {"name": "q"}, "spec": {"hard": {"configmaps": "10"}}})
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "counted"}})

    def used():
        status = core.read_namespaced_resource_quota("q", namespace).status
        return status and status.used and int(status.used.get("configmaps", "0")) >= 2

    _eventually(used)  # kube-root-ca.crt + ours


def test_namespace_deletion_completes(cluster):
    core = client.CoreV1Api(cluster.api)
    core.create_namespace({"metadata": {"name": "doomed"}})
    core.create_namespaced_config_map("doomed", {"metadata": {"name": "x"}})
    core.delete_namespace("doomed")

    def gone():
        try:
            core.read_namespace("doomed")
        except ApiException as exc:
            return exc.status == 404
        return False

    _eventually(gone)


def test_up_is_idempotent_and_recovers_from_a_crash(cluster, tmp_path):
    from kubestack.devcluster.cluster import DevCluster, node_specs

    dev = DevCluster(tmp_path / "cp", cluster.bin_dir)
    try:
        dev.up(node_specs(1, ["z"]))
        ports = dev.ports()
        pids = {p: int((dev.run / f"{p}.pid").read_text()) for p in ("etcd", "kube-apiserver")}
        dev.up()  # second start: nothing restarted
        assert dev.ports() == ports
        assert {p: int((dev.run / f"{p}.pid").read_text()) for p in pids} == pids

        os.kill(pids["kube-apiserver"], signal.SIGKILL)  # a crash leaves a stale pid file
        _eventually(lambda: not dev.running("kube-apiserver"), timeout=10)
        dev.up()
        assert dev.running("kube-apiserver")
        nodes = client.CoreV1Api(_admin(dev)).list_node().items
        assert [n.metadata.name for n in nodes] == ["compute-0"]  # etcd data survived
    finally:
        dev.down()
    assert not any(dev.status().values())


def _admin(dev):
    from kubestack.devcluster.clients import api_client

    return api_client(dev.kubeconfig)
