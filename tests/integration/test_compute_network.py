"""Servers on tenant networks: fixed IPs and MACs from the operator's IPAM, kept across
stop/start, live migration and shelve/unshelve; an exhausted subnet is a clean ERROR."""

from __future__ import annotations

import json

from support.compute import (
    create_flavor, create_image, create_server, custom, patch_server, server, vm, vmi, wait_for, wait_status,
)
from support.schemas import assert_valid


def _network(cluster, namespace, name, cidr, **spec):
    custom(cluster).create_namespaced_custom_object("kubestack.io", "v1alpha1", namespace, "networks", {
        "apiVersion": "kubestack.io/v1alpha1", "kind": "Network", "metadata": {"name": name},
        "spec": {"provider": {"networkType": "bridge", "bridge": "br-" + name[:10]},
                 "subnets": [{"name": f"{name}-v4", "cidr": cidr, "ipVersion": 4}], **spec}})


def _addresses(s) -> tuple[str, str]:
    entry = s["status"]["addresses"]["private"][0]
    return entry["addr"], entry["macAddr"]


def test_fixed_ip_and_mac_survive_stop_start_migrate_and_shelve(cluster, kubestack, namespace):
    _network(cluster, namespace, "private", "10.20.0.0/24")
    flavor = create_flavor(cluster)
    create_image(cluster, namespace)
    create_server(cluster, namespace, "app", flavor,
                  networks=[{"network": "private", "fixedIp": "10.20.0.50"}])
    s = wait_status(cluster, namespace, "app", "ACTIVE")
    assert _addresses(s)[0] == "10.20.0.50"
    assert s["status"]["networks"] == "private=10.20.0.50"
    first = _addresses(s)

    machine = vm(cluster, namespace, "app")
    assert_valid(machine)
    tpl = machine["spec"]["template"]["spec"]
    assert tpl["networks"] == [{"name": "net0", "multus": {"networkName": f"{namespace}/private"}}]
    assert tpl["domain"]["devices"]["interfaces"][0]["macAddress"] == first[1]
    cloud = next(v for v in tpl["volumes"] if v["name"] == "cloudinitdisk")["cloudInitNoCloud"]
    assert "10.20.0.50/24" in cloud["networkData"]
    reported = vmi(cluster, namespace, "app")["status"]["interfaces"][0]
    assert reported["ipAddress"] == "10.20.0.50" and reported["mac"] == first[1]

    patch_server(cluster, namespace, "app", {"powerState": "Stopped"})
    wait_status(cluster, namespace, "app", "SHUTOFF")
    patch_server(cluster, namespace, "app", {"powerState": "Running"})
    assert _addresses(wait_status(cluster, namespace, "app", "ACTIVE")) == first

    host = server(cluster, namespace, "app")["status"]["host"]
    patch_server(cluster, namespace, "app", {"migrate": {"requestId": "m1"}})
    s = wait_for(lambda: (x := server(cluster, namespace, "app"))["status"].get("lastMigrateRequestId") == "m1"
                 and x, what="migrated")
    assert s["status"]["host"] != host and _addresses(s) == first

    patch_server(cluster, namespace, "app", {"powerState": "Shelved"})
    wait_status(cluster, namespace, "app", "SHELVED_OFFLOADED")
    patch_server(cluster, namespace, "app", {"powerState": "Running"})
    s = wait_status(cluster, namespace, "app", "ACTIVE")
    assert _addresses(s) == first
    annotation = json.loads(vm(cluster, namespace, "app")["spec"]["template"]["metadata"]["annotations"][
        "kubestack.io/interface-addresses"])
    assert annotation["net0"]["ips"] == ["10.20.0.50/24"]


def test_exhausted_subnet_is_an_error_without_a_half_built_server(cluster, kubestack, namespace):
    _network(cluster, namespace, "tiny", "10.30.0.0/29")  # .1 gateway, .2-.6 for servers
    flavor = create_flavor(cluster)
    create_image(cluster, namespace)
    for i in range(5):
        create_server(cluster, namespace, f"t{i}", flavor, networks=[{"network": "tiny"}])
    for i in range(5):
        wait_status(cluster, namespace, f"t{i}", "ACTIVE")
    create_server(cluster, namespace, "one-too-many", flavor, networks=[{"network": "tiny"}])
    s = wait_status(cluster, namespace, "one-too-many", "ERROR")
    assert "No more IP addresses available on network" in s["status"]["fault"]["message"]
    assert "host" not in s["status"]
    assert vm(cluster, namespace, "one-too-many") is None
    ips = {server(cluster, namespace, f"t{i}")["status"]["addresses"]["tiny"][0]["addr"] for i in range(5)}
    assert len(ips) == 5
    # an exhausted pool waits for an address (not Stalled): a server deleted gives its back
    # (its port goes with it), and the waiting server boots with nobody touching it
    assert not [c for c in s["status"]["conditions"] if c["type"] == "Stalled"]
    custom(cluster).delete_namespaced_custom_object("kubestack.io", "v1alpha1", namespace, "servers", "t0")
    s = wait_status(cluster, namespace, "one-too-many", "ACTIVE")
    others = {server(cluster, namespace, f"t{i}")["status"]["addresses"]["tiny"][0]["addr"] for i in range(1, 5)}
    freed = s["status"]["addresses"]["tiny"][0]["addr"]
    assert freed in ips and freed not in others  # the deleted server's address


def test_a_server_applied_before_its_network_boots_once_the_network_is_applied(cluster, kubestack, namespace):
    """GitOps applies a Server and its Network in any order: a server whose network is not
    there yet is in ERROR saying so, not Stalled (kstatus reads it as progress), and boots
    once the network is applied."""
    flavor = create_flavor(cluster)
    create_image(cluster, namespace)
    create_server(cluster, namespace, "early", flavor, networks=[{"network": "later"}])
    s = wait_status(cluster, namespace, "early", "ERROR")
    assert s["status"]["fault"]["message"] == "Network later could not be found."
    ready = next(c for c in s["status"]["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "PortNotReady"
    assert not [c for c in s["status"]["conditions"] if c["type"] == "Stalled"]
    assert vm(cluster, namespace, "early") is None
    _network(cluster, namespace, "later", "10.50.0.0/24")
    s = wait_status(cluster, namespace, "early", "ACTIVE")
    assert s["status"]["addresses"]["later"][0]["addr"].startswith("10.50.0.")


def test_floating_ip_shows_in_the_networks_column(cluster, kubestack, namespace):
    """openstack server list shows a floating IP after the fixed IP it maps to."""
    import uuid

    from kubernetes import client

    public = f"pub-{uuid.uuid4().hex[:6]}"
    client.CoreV1Api(cluster.api).create_namespace({"metadata": {"name": public}})
    try:
        _network(cluster, public, "public", "172.24.8.0/24", external=True, shared=True)
        _network(cluster, namespace, "private", "10.40.0.0/24")
        flavor = create_flavor(cluster)
        create_image(cluster, namespace)
        create_server(cluster, namespace, "web", flavor, networks=[{"network": "private"}])
        wait_status(cluster, namespace, "web", "ACTIVE")
        custom(cluster).create_namespaced_custom_object("kubestack.io", "v1alpha1", namespace, "floatingips", {
            "apiVersion": "kubestack.io/v1alpha1", "kind": "FloatingIP", "metadata": {"name": "fip"},
            "spec": {"floatingNetwork": f"{public}/public", "server": "web"}})
        s = wait_for(lambda: (x := server(cluster, namespace, "web")) and
                     "172.24.8." in (x["status"].get("networks") or "") and x, what="floating IP listed")
        fixed, floating = s["status"]["addresses"]["private"]
        assert (fixed["type"], floating["type"]) == ("fixed", "floating")
        assert s["status"]["networks"] == f"private={fixed['addr']}, {floating['addr']}"
    finally:
        client.CoreV1Api(cluster.api).delete_namespace(public)
