"""Many servers at once: 50 boots, capacity races, and an operator killed mid-boot."""

from __future__ import annotations

import signal
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from kubernetes import client

from support.compute import create_flavor, create_image, create_server, custom, wait_for
from support.schemas import assert_valid


def _servers(cluster, namespace) -> list[dict]:
    return custom(cluster).list_namespaced_custom_object("kubestack.io", "v1alpha1", namespace, "servers")["items"]


def _vms(cluster, namespace) -> list[dict]:
    return custom(cluster).list_namespaced_custom_object("kubevirt.io", "v1", namespace, "virtualmachines")["items"]


def _count(cluster, namespace, state) -> int:
    return sum(1 for s in _servers(cluster, namespace) if (s.get("status") or {}).get("status") == state
               and not s["status"].get("taskState"))


def _create_many(cluster, namespace, names, flavor, **spec):
    with ThreadPoolExecutor(max_workers=10) as pool:
        list(pool.map(lambda n: create_server(cluster, namespace, n, flavor, **spec), names))


def test_fifty_servers_boot_to_active(cluster, kubestack, namespace):
    flavor = create_flavor(cluster, vcpus=1, ram=512)
    create_image(cluster, namespace)
    _create_many(cluster, namespace, [f"s-{i:02d}" for i in range(50)], flavor)
    wait_for(lambda: _count(cluster, namespace, "ACTIVE") == 50, timeout=240, what="50 ACTIVE")
    vms = _vms(cluster, namespace)
    assert len(vms) == 50
    for vm in vms:
        assert_valid(vm)


def test_concurrent_boots_never_overcommit_a_host(cluster, kubestack, namespace):
    """Two hosts with room for 10 servers each, 30 boots at once: 20 ACTIVE, 10 ERROR."""
    from kubestack.devcluster.cluster import NodeSpec

    zone = f"cap-{uuid.uuid4().hex[:6]}"
    hosts = [NodeSpec(name=f"{zone}-{i}", zone=zone, cpu="64", memory="10Gi") for i in range(2)]
    cluster.dev.register_nodes(hosts)
    flavor = create_flavor(cluster, vcpus=1, ram=1024)
    create_image(cluster, namespace)
    _create_many(cluster, namespace, [f"c-{i:02d}" for i in range(30)], flavor, availabilityZone=zone)
    wait_for(lambda: _count(cluster, namespace, "ACTIVE") + _count(cluster, namespace, "ERROR") == 30,
             timeout=180, what="30 servers settled")
    servers = _servers(cluster, namespace)
    active = [s for s in servers if s["status"]["status"] == "ACTIVE"]
    errors = [s for s in servers if s["status"]["status"] == "ERROR"]
    assert len(active) == 20 and len(errors) == 10
    per_host = Counter(s["status"]["host"] for s in active)
    assert per_host == {h.name: 10 for h in hosts}
    assert all(e["status"]["fault"]["message"].startswith("No valid host") for e in errors)
    assert len(_vms(cluster, namespace)) == 20
    for h in hosts:
        client.CoreV1Api(cluster.api).delete_node(h.name)


def test_operator_killed_mid_boot_leaves_exactly_twenty_servers(cluster, kubestack, namespace):
    flavor = create_flavor(cluster, vcpus=1, ram=512)
    create_image(cluster, namespace)
    _create_many(cluster, namespace, [f"k-{i:02d}" for i in range(20)], flavor)
    wait_for(lambda: _count(cluster, namespace, "ACTIVE") >= 3, timeout=120, what="some ACTIVE")
    kubestack.restart_operator(signal.SIGKILL)
    wait_for(lambda: _count(cluster, namespace, "ACTIVE") == 20, timeout=180, what="20 ACTIVE")
    vms = _vms(cluster, namespace)
    assert sorted(v["metadata"]["name"] for v in vms) == [f"k-{i:02d}" for i in range(20)]
    vmis = custom(cluster).list_namespaced_custom_object(
        "kubevirt.io", "v1", namespace, "virtualmachineinstances")["items"]
    assert len(vmis) == 20
    hosts = {s["metadata"]["name"]: s["status"]["host"] for s in _servers(cluster, namespace)}
    assert all(v["spec"]["template"]["spec"]["nodeSelector"]["kubernetes.io/hostname"] == hosts[v["metadata"]["name"]]
               for v in vms)
