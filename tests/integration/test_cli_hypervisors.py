"""The lecture's discovery verbs against the running stack: `hypervisor list/show`,
`console log show`, `endpoint list`, `availability zone list` (an admin's from Nodes, a project
user's from the zones the operator publishes), `server list --no-headers`."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from kubernetes import client

from kubestack.cli import main
from kubestack.compute import zones
from kubestack.devcluster.cluster import NodeSpec
from support.access import forbidden
from support.compute import create_flavor, create_image, create_server, custom, server, wait_for, wait_status
from support.processes import OPERATOR_NAMESPACE


def get_url(api, url: str) -> dict:
    """GET a full URL with the admin's credentials (client certificate)."""
    resp = api.rest_client.request("GET", url, headers={"Accept": "application/json"})
    data = resp.read()
    assert resp.status == 200, (url, resp.status, data[:300])
    return json.loads(data)


@pytest.fixture(scope="module")
def zone_view(cluster, kubestack):
    """The namespace of the session's operator, where it publishes the zones and where the
    session's cluster has the chart's Role and RoleBinding that let every authenticated user
    read them (installed as `kubestack dev up` installs them: kubestack.devcluster.rbac)."""
    return OPERATOR_NAMESPACE


@pytest.fixture
def cli(cluster, capsys):
    def run(*argv: str, expect: int = 0, kubeconfig=None) -> str:
        code = main([*argv, "--kubeconfig", str(kubeconfig or cluster.kubeconfig)])
        out, err = capsys.readouterr()
        assert code == expect, f"kubestack {' '.join(argv)} -> {code}\nstdout:\n{out}\nstderr:\n{err}"
        return out if expect == 0 else err
    return run


def test_hypervisors_endpoints_zones_and_console(cluster, kubestack, namespace, cli, tmp_path):
    core = client.CoreV1Api(cluster.api)
    zone = f"cat-{uuid.uuid4().hex[:6]}"
    host = NodeSpec(name=f"{zone}-0", zone=zone, cpu="8", memory="16Gi", ephemeral_storage="200Gi")
    flavor = create_flavor(cluster, vcpus=2, ram=1024, disk=5)
    cluster.dev.register_nodes([host])
    try:
        core.patch_node_status(host.name, {"status": {"addresses": [
            {"type": "InternalIP", "address": "10.99.0.7"}, {"type": "Hostname", "address": host.name}]}})
        create_image(cluster, namespace)
        for name in ("vm-1", "vm-2"):
            create_server(cluster, namespace, name, flavor, availabilityZone=zone)
        for name in ("vm-1", "vm-2"):
            assert wait_status(cluster, namespace, name, "ACTIVE")["status"]["host"] == host.name

        # hypervisors: every compute Node, usage of the servers on it
        rows = json.loads(cli("hypervisor", "list", "--long", "-f", "json"))
        names = [r["Hypervisor Hostname"] for r in rows]
        assert {f"compute-{i}" for i in range(4)} | {host.name} <= set(names)
        mine = next(r for r in rows if r["Hypervisor Hostname"] == host.name)
        uid = core.read_node(host.name).metadata.uid
        assert mine == {"ID": uid, "Hypervisor Hostname": host.name, "Hypervisor Type": "QEMU",
                        "Host IP": "10.99.0.7", "State": "up", "vCPUs Used": 4, "vCPUs": 8,
                        "Memory MB Used": 2048, "Memory MB": 16384}
        assert cli("hypervisor", "list", "--matching", zone, "-f", "value", "-c", "Hypervisor Hostname") == \
            f"{host.name}\n"
        shown = json.loads(cli("hypervisor", "show", host.name, "-f", "json"))
        assert (shown["vcpus_used"], shown["memory_mb_used"], shown["local_gb_used"], shown["running_vms"]) == \
            (4, 2048, 10, 2)
        assert (shown["vcpus"], shown["memory_mb"], shown["local_gb"]) == (8, 16384, 200)
        assert (shown["state"], shown["status"], shown["availability_zone"]) == ("up", "enabled", zone)
        assert shown["placement_free"]["VCPU"] == 8 * 4 - 4  # the default cpu_allocation_ratio
        assert json.loads(cli("hypervisor", "show", uid, "-f", "json"))["hypervisor_hostname"] == host.name
        assert "No hypervisor with a name or ID of 'nope'" in cli("hypervisor", "show", "nope", expect=1)

        # console log show = server console log
        log = cli("console", "log", "show", "vm-1", "-n", namespace)
        assert log.startswith("No console log for server vm-1: ")
        assert log.splitlines()[0] == cli("server", "console", "log", "vm-1", "-n", namespace).splitlines()[0]
        assert len(cli("console", "log", "show", "vm-1", "-n", namespace, "--lines", "2").splitlines()) == 2
        assert "No server with a name or ID of 'nope'" in cli("console", "log", "show", "nope", "-n", namespace,
                                                              expect=1)

        # the service catalog: URLs on this API server that answer
        endpoints = json.loads(cli("endpoint", "list", "-f", "json"))
        assert [(e["Service Type"], e["Service Name"]) for e in endpoints] == [
            ("compute", "nova"), ("image", "glance"), ("volume", "cinder"), ("network", "neutron"),
            ("orchestration", "heat"), ("identity", "keystone")]
        for e in endpoints:
            assert (e["Region"], e["Enabled"], e["Interface"]) == ("kubestack", True, "public")
            assert e["URL"].startswith(cluster.dev.server + "/apis/kubestack.io/v1alpha1/")
            answer = get_url(cluster.api, e["URL"])
            assert answer["kind"].endswith("List")
        assert {"vm-1", "vm-2"} <= {s["metadata"]["name"] for s in get_url(cluster.api, endpoints[0]["URL"])["items"]}

        # availability zones: the test nodes' zones
        zones = {z["Zone Name"]: z["Zone Status"] for z in json.loads(cli("availability", "zone", "list", "-f", "json"))}
        assert {"az1": "available", "az2": "available", zone: "available"}.items() <= zones.items()
        long = json.loads(cli("availability", "zone", "list", "--long", "-f", "json"))
        assert [(z["Host Name"], z["Service Name"]) for z in long if z["Zone Name"] == zone] == \
            [(host.name, "nova-compute")]
        # a cordoned host: its hypervisor disabled, its only zone not available
        core.patch_node(host.name, {"spec": {"unschedulable": True}})
        assert json.loads(cli("hypervisor", "show", host.name, "-f", "json", "-c", "status")) == {"status": "disabled"}
        long = json.loads(cli("availability", "zone", "list", "--long", "-f", "json"))
        mine = next(z for z in long if z["Zone Name"] == zone)
        assert mine["Zone Status"] == "not available" and mine["Service Status"].startswith("disabled :-) ")

        # a project user: no Nodes to read, a one-line error; the catalog is public (discovery)
        alice = cluster.dev.write_kubeconfig(tmp_path / "alice", "alice", cluster.dev.issue_user("alice"))
        err = cli("hypervisor", "list", expect=1, kubeconfig=alice)
        assert err.count("\n") == 1 and "reads the cluster's Nodes" in err and "Traceback" not in err
        assert len(json.loads(cli("endpoint", "list", "-f", "json", kubeconfig=alice))) == 6

        # the lecture's loop: `server list --no-headers`
        table = cli("server", "list", "--no-headers", "-n", namespace, "-c", "Name")
        assert sorted(line.strip("| ") for line in table.splitlines() if line.startswith("|")) == ["vm-1", "vm-2"]
        assert "Name" not in table
    finally:
        for name in ("vm-1", "vm-2"):
            if server(cluster, namespace, name) is not None:
                custom(cluster).delete_namespaced_custom_object("kubestack.io", "v1alpha1", namespace, "servers", name)
        wait_for(lambda: all(server(cluster, namespace, n) is None for n in ("vm-1", "vm-2")), what="servers gone")
        core.delete_node(host.name)
        custom(cluster).delete_cluster_custom_object("kubestack.io", "v1alpha1", "flavors", flavor)


def set_ready(core, name: str, ready: bool) -> None:
    """What a kubelet reports (the dev cluster runs none, nor the node lifecycle controller)."""
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    core.patch_node_status(name, {"status": {"conditions": [{
        "type": "Ready", "status": str(ready), "reason": "KubeletReady" if ready else "KubeletStopped",
        "message": "set by the test", "lastHeartbeatTime": now, "lastTransitionTime": now}]}})


def test_project_users_list_the_zones_the_operator_publishes(cluster, kubestack, zone_view, cli, capsys,
                                                             tmp_path):
    core = client.CoreV1Api(cluster.api)
    alice = cluster.dev.write_kubeconfig(tmp_path / "alice", "alice", cluster.dev.issue_user("alice"))
    zone = f"pub-{uuid.uuid4().hex[:6]}"
    host = NodeSpec(name=f"{zone}-0", zone=zone, cpu="8", memory="16Gi", ephemeral_storage="200Gi")

    def listed(kubeconfig=None) -> dict[str, str]:
        rows = json.loads(cli("availability", "zone", "list", "-f", "json", kubeconfig=kubeconfig))
        return {r["Zone Name"]: r["Zone Status"] for r in rows}

    def alice_sees(status: str | None) -> dict[str, str]:
        """alice's listing once the operator has published the test zone as `status` (None: gone)."""
        def check() -> dict[str, str] | None:
            seen = listed(alice)
            return seen if seen.get(zone) == status else None
        return wait_for(check, what=f"zone {zone} {status or 'gone'} in the published view")

    cluster.dev.register_nodes([host])
    try:
        # alice reads no Nodes, nor any other ConfigMap of the operator's namespace...
        as_alice = client.CoreV1Api(cluster.impersonate("alice"))
        assert forbidden(as_alice.list_node)
        assert forbidden(lambda: as_alice.list_namespaced_config_map(zone_view))
        assert forbidden(lambda: as_alice.read_namespaced_config_map("kube-root-ca.crt", zone_view))
        # ...yet lists the zones, the same names and statuses as an admin reading Nodes
        alice_sees("available")
        assert wait_for(lambda: listed(alice) == listed(), what="alice's zones are the admin's")
        published = core.read_namespaced_config_map(zones.CONFIGMAP, zone_view).data
        assert published == listed() and published[zone] == "available"

        # --long would show hosts: for alice, one line says it needs an admin, and the zones follow
        assert main(["availability", "zone", "list", "--long", "-f", "json", "--kubeconfig", str(alice)]) == 0
        out, err = capsys.readouterr()
        assert {r["Zone Name"]: r["Zone Status"] for r in json.loads(out)}[zone] == "available"
        assert all(set(r) == {"Zone Name", "Zone Status"} for r in json.loads(out))
        assert err.count("\n") == 1 and "--long lists the compute hosts, which only an admin" in err

        # the zone's only host goes NotReady, comes back, is cordoned: the published view follows
        set_ready(core, host.name, False)
        assert alice_sees("not available")[zone] == listed()[zone]
        set_ready(core, host.name, True)
        alice_sees("available")
        core.patch_node(host.name, {"spec": {"unschedulable": True}})
        assert alice_sees("not available")[zone] == listed()[zone]
    finally:
        core.delete_node(host.name)
    alice_sees(None)  # a zone without hosts is no zone
