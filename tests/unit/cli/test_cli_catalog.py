"""The pure parts of `hypervisor list/show`, `endpoint list`, `availability zone list`,
`console log show` and `--no-headers`: rows from Node, Server and Flavor dicts."""

from __future__ import annotations

import argparse
import json

import pytest

from kubestack.cli import build_parser, main
from kubestack.cli import catalog as catalog_cli
from kubestack.cli import hypervisor as hyp_cli
from kubestack.cli import server as server_cli
from kubestack.cli.output import CliError, format_list
from kubestack.compute import zones
from kubestack.scheduler import SchedulerConfig

pytestmark = pytest.mark.unit

ZONE = "topology.kubernetes.io/zone"


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


def node(name, zone="az1", cpu="8", memory="16Gi", disk="100Gi", ready=True, cordoned=False, compute=True,
         ip=None, labels=None, annotations=None, heartbeat="2025-05-01T10:00:00Z"):
    lab = {"kubernetes.io/hostname": name, **(labels or {})}
    if compute:
        lab["kubestack.io/compute-host"] = "true"
    if zone:
        lab[ZONE] = zone
    addresses = [{"type": "Hostname", "address": name}]
    if ip:
        addresses.append({"type": "InternalIP", "address": ip})
    return {
        "metadata": {"name": name, "uid": f"uid-{name}", "labels": lab, "annotations": annotations or {}},
        "spec": {"unschedulable": True} if cordoned else {},
        "status": {
            "allocatable": {"cpu": cpu, "memory": memory, "ephemeral-storage": disk, "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                            "lastHeartbeatTime": heartbeat}],
            "addresses": addresses,
        },
    }


def server(name, host, vcpus=1, ram=1024, disk=10, ephemeral=0, status="ACTIVE", ns="p1", **st):
    return {
        "apiVersion": "kubestack.io/v1alpha1", "kind": "Server",
        "metadata": {"name": name, "namespace": ns, "uid": f"uid-{ns}-{name}"},
        "spec": {"flavor": "f", "image": "cirros"},
        "status": {"host": host, "status": status, **st,
                   "flavor": {"name": "f", "vcpus": vcpus, "ram": ram, "disk": disk, "ephemeral": ephemeral}},
    }


def flavor(name, vcpus, ram, disk=0):
    return {"metadata": {"name": name}, "spec": {"vcpus": vcpus, "ram": ram, "disk": disk}}


# ---------------------------------------------------------------------------- hypervisors


def test_hypervisor_list_columns_like_openstack_and_only_compute_hosts():
    nodes = [node("compute-1", ip="10.0.0.11"), node("compute-0", ready=False), node("master", compute=False)]
    headers, rows = hyp_cli.list_rows(nodes, [])
    assert headers == ["ID", "Hypervisor Hostname", "Hypervisor Type", "Host IP", "State"]
    assert rows == [["uid-compute-0", "compute-0", "QEMU", None, "down"],
                    ["uid-compute-1", "compute-1", "QEMU", "10.0.0.11", "up"]]
    headers, rows = hyp_cli.list_rows(nodes, [], long=True, matching="-1")
    assert headers[5:] == ["vCPUs Used", "vCPUs", "Memory MB Used", "Memory MB"]
    assert rows == [["uid-compute-1", "compute-1", "QEMU", "10.0.0.11", "up", 0, 8, 0, 16384]]


def test_hypervisor_usage_is_the_sum_of_the_servers_on_it():
    nodes = [node("compute-0"), node("compute-1")]
    servers = [server("a", "compute-0", vcpus=2, ram=2048, disk=20, ephemeral=5),
               server("b", "compute-0", vcpus=1, ram=512, disk=1, ns="p2"),
               server("c", "compute-1", vcpus=4, ram=4096),
               server("building", None, status="BUILD"),
               server("shelved", "compute-1", vcpus=8, ram=8192, status="SHELVED_OFFLOADED")]
    _, rows = hyp_cli.list_rows(nodes, servers, long=True)
    assert [r[5:] for r in rows] == [[3, 8, 2560, 16384], [4, 8, 4096, 16384]]
    shown = hyp_cli.show_fields("compute-0", nodes, servers)
    assert (shown["vcpus_used"], shown["memory_mb_used"], shown["local_gb_used"], shown["running_vms"]) == \
        (3, 2560, 26, 2)
    assert shown["free_ram_mb"] == 16384 - 2560 and shown["free_disk_gb"] == 100 - 26
    assert hyp_cli.show_fields("compute-1", nodes, servers)["running_vms"] == 1  # shelved holds no room


def test_a_resize_awaiting_confirmation_holds_room_on_both_hosts():
    nodes = [node("compute-0"), node("compute-1")]
    moving = server("r", "compute-1", vcpus=4, ram=4096, status="VERIFY_RESIZE",
                    resize={"oldFlavor": "small", "oldHost": "compute-0", "newFlavor": "f"})
    flavors = [flavor("small", 1, 1024, 5)]
    source = hyp_cli.show_fields("compute-0", nodes, [moving], flavors)
    assert (source["vcpus_used"], source["memory_mb_used"], source["running_vms"]) == (1, 1024, 0)
    target = hyp_cli.show_fields("compute-1", nodes, [moving], flavors)
    assert (target["vcpus_used"], target["running_vms"]) == (4, 1)


def test_hypervisor_show_fields():
    n = node("compute-0", zone=None, cpu="4", ip="192.168.1.4", cordoned=True,
             labels={"aggregate.kubestack.io/ssd": "true", "aggregate.kubestack.io/gpu": "true",
                     "kubestack.io/hypervisor-type": "KVM", "kubestack.io/hypervisor-version": "8002000"},
             annotations={"kubestack.io/ram-allocation-ratio": "1.5"})
    shown = hyp_cli.show_fields("uid-compute-0", [n], [server("a", "compute-0", vcpus=2, ram=1024)],
                                config=SchedulerConfig(cpu_allocation_ratio=2.0, default_availability_zone="zz"))
    assert shown["hypervisor_hostname"] == shown["service_host"] == "compute-0"
    assert shown["id"] == "uid-compute-0" and shown["host_ip"] == "192.168.1.4"
    assert (shown["hypervisor_type"], shown["hypervisor_version"]) == ("QEMU", 8002000)
    assert (shown["state"], shown["status"]) == ("up", "disabled")  # cordoned
    assert shown["aggregates"] == ["gpu", "ssd"] and shown["availability_zone"] == "zz"
    assert (shown["vcpus"], shown["memory_mb"], shown["local_gb"]) == (4, 16384, 100)
    # Placement's view: capacity x allocation ratio (config, or the node's own override)
    assert shown["placement_capacity"] == {"DISK_GB": 100, "MEMORY_MB": 24576, "VCPU": 8}
    assert shown["placement_free"] == {"DISK_GB": 90, "MEMORY_MB": 23552, "VCPU": 6}
    with pytest.raises(CliError, match="No hypervisor with a name or ID of 'nope' exists."):
        hyp_cli.show_fields("nope", [n], [])


def test_fractional_cpus_stay_fractional():
    assert hyp_cli.show_fields("c", [node("c", cpu="3500m")], [])["vcpus"] == 3.5


def test_scheduler_config_is_the_operators(tmp_path, monkeypatch):
    from kubestack.scheduler.config import CONFIG_ENV

    path = tmp_path / "scheduler.yaml"
    path.write_text("cpu_allocation_ratio: 16\ndefault_availability_zone: zone-x\n")
    monkeypatch.setenv(CONFIG_ENV, str(path))
    cfg = hyp_cli.operator_config()
    assert cfg.cpu_allocation_ratio == 16 and cfg.default_availability_zone == "zone-x"
    monkeypatch.delenv(CONFIG_ENV)
    assert hyp_cli.operator_config() == SchedulerConfig()


def user_kubeconfig(tmp_path):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: k, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "users: [{name: alice, user: {token: t}}]\n"
        "contexts: [{name: c, context: {cluster: k, user: alice}}]\n")
    return kubeconfig


NODES_FORBIDDEN = ('nodes is forbidden: User "alice" cannot list resource "nodes" in API group "" '
                   'at the cluster scope')


def test_a_project_user_gets_one_line_not_a_traceback(tmp_path, monkeypatch, capsys):
    from kubestack.k8s import rest

    kubeconfig = user_kubeconfig(tmp_path)

    def refuse(api, method, path, **kw):
        assert (method, path) == ("GET", "/api/v1/nodes")
        raise rest.ApiError(403, NODES_FORBIDDEN, "Forbidden")

    monkeypatch.setattr(rest, "api_request", refuse)
    for argv in (["hypervisor", "list"], ["hypervisor", "show", "compute-0"]):
        assert main([*argv, "--kubeconfig", str(kubeconfig)]) == 1
        out, err = capsys.readouterr()
        verb = " ".join(argv[:2])
        assert out == "" and err.count("\n") == 1
        assert err.startswith(f"error: {verb} reads the cluster's Nodes, which needs cluster-scope read access")
        assert 'User "alice" cannot list resource "nodes"' in err


# ---------------------------------------------------------------------------- availability zones


def test_zone_list_from_the_compute_hosts():
    nodes = [node("c0", zone="az1"), node("c1", zone="az2", ready=False), node("c2", zone="az2", cordoned=True),
             node("c3", zone=None), node("m", zone="control", compute=False)]
    headers, rows = catalog_cli.zone_rows(nodes)
    assert headers == ["Zone Name", "Zone Status"]
    # a zone whose hosts are all down or disabled takes no servers
    assert rows == [["az1", "available"], ["az2", "not available"], ["nova", "available"]]
    headers, rows = catalog_cli.zone_rows(nodes, long=True, config=SchedulerConfig(default_availability_zone="dflt"))
    assert headers == ["Zone Name", "Zone Status", "Zone Resource", "Host Name", "Service Name", "Service Status"]
    assert rows == [
        ["az1", "available", "", "c0", "nova-compute", "enabled :-) 2025-05-01T10:00:00Z"],
        ["az2", "not available", "", "c1", "nova-compute", "enabled XXX 2025-05-01T10:00:00Z"],
        ["az2", "not available", "", "c2", "nova-compute", "disabled :-) 2025-05-01T10:00:00Z"],
        ["dflt", "available", "", "c3", "nova-compute", "enabled :-) 2025-05-01T10:00:00Z"],
    ]


def published_zones_api(published: dict | None = None, refused: int | None = None):
    """A stand-in for the API server as a project user meets it: Nodes forbidden, the
    operator's published zones readable (or answering `refused`)."""
    from kubestack.k8s import rest

    asked: list[str] = []

    def request(api, method, path, **kw):
        asked.append(path)
        if path == "/api/v1/nodes":
            raise rest.ApiError(403, NODES_FORBIDDEN, "Forbidden")
        if refused:
            raise rest.ApiError(refused, f"configmaps {zones.CONFIGMAP!r} refused", "Refused")
        return {"metadata": {"name": zones.CONFIGMAP}, "data": published}

    return request, asked


def test_a_project_user_lists_the_published_zones(tmp_path, monkeypatch, capsys):
    from kubestack.k8s import rest

    nodes = [node("c0", zone="az1"), node("c1", zone="az2", ready=False), node("c2", zone=None)]
    admin_rows = catalog_cli.zone_rows(nodes)[1]
    summary = zones.summary([h for _, h in hyp_cli.compute_hosts(nodes)], "nova")
    request, asked = published_zones_api(summary)
    monkeypatch.setattr(rest, "api_request", request)
    monkeypatch.setenv(zones.NAMESPACE_ENV, "cloud")
    kubeconfig = str(user_kubeconfig(tmp_path))

    # the same zones and statuses an admin lists
    assert main(["availability", "zone", "list", "-f", "json", "--kubeconfig", kubeconfig]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out) == [{"Zone Name": z, "Zone Status": s} for z, s in admin_rows] and err == ""
    assert asked[-1] == f"/api/v1/namespaces/cloud/configmaps/{zones.CONFIGMAP}"

    # --long shows hosts, which a project user may not see: one line says so, the zones follow
    assert main(["availability", "zone", "list", "--long", "-f", "json", "--kubeconfig", kubeconfig,
                 "--operator-namespace", "elsewhere"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out) == [{"Zone Name": z, "Zone Status": s} for z, s in admin_rows]
    assert err.count("\n") == 1 and err.startswith("note: --long lists the compute hosts, which only an admin")
    assert asked[-1] == f"/api/v1/namespaces/elsewhere/configmaps/{zones.CONFIGMAP}"


@pytest.mark.parametrize("refused, says", [
    (403, "reads the cluster's Nodes (an admin's kubeconfig: 403 nodes is forbidden"),
    (404, "the operator has not published the availability zones (ConfigMap kubestack-system/"),
])
def test_no_published_zones_is_one_line(tmp_path, monkeypatch, capsys, refused, says):
    from kubestack.k8s import rest

    monkeypatch.setattr(rest, "api_request", published_zones_api(refused=refused)[0])
    monkeypatch.delenv(zones.NAMESPACE_ENV, raising=False)
    assert main(["availability", "zone", "list", "--kubeconfig", str(user_kubeconfig(tmp_path))]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and says in err


# ---------------------------------------------------------------------------- endpoints


def test_every_kind_is_in_exactly_one_service():
    from kubestack.api.registry import ALL_KINDS

    listed = [k for _, _, kinds in catalog_cli.SERVICES for k in kinds]
    assert sorted(listed) == sorted(k.kind for k in ALL_KINDS)


def test_endpoint_rows():
    from kubestack.api.registry import ALL_KINDS

    served = [k.plural for k in ALL_KINDS] + ["servers/status"]
    headers, rows = catalog_cli.endpoint_rows("https://127.0.0.1:6443/", "kubestack", served)
    assert headers == ["ID", "Region", "Service Name", "Service Type", "Enabled", "Interface", "URL"]
    by_type = {r[3]: r for r in rows}
    assert list(by_type) == ["compute", "image", "volume", "network", "orchestration", "identity"]
    assert [by_type[t][2] for t in by_type] == ["nova", "glance", "cinder", "neutron", "heat", "keystone"]
    assert by_type["compute"][6] == "https://127.0.0.1:6443/apis/kubestack.io/v1alpha1/servers"
    assert by_type["identity"][6] == "https://127.0.0.1:6443/apis/kubestack.io/v1alpha1/projects"
    assert all(r[1] == "kubestack" and r[4] is True and r[5] == "public" for r in rows)
    assert len({r[0] for r in rows}) == 6 and all(len(r[0]) == 32 for r in rows)
    assert catalog_cli.endpoint_rows("https://127.0.0.1:6443", "kubestack", served)[1] == rows  # stable IDs

    # a kind the API server does not serve disables its service only
    _, rows = catalog_cli.endpoint_rows("https://h", None, [p for p in served if p != "floatingips"])
    assert {r[3]: r[4] for r in rows} == {"compute": True, "image": True, "volume": True, "network": False,
                                          "orchestration": True, "identity": True}
    _, rows = catalog_cli.endpoint_rows("https://h", None, [], service="nova")
    assert [(r[2], r[4]) for r in rows] == [("nova", False)]
    assert catalog_cli.endpoint_rows("https://h", None, served, interface="admin")[1] == []


def test_region_is_the_contexts_cluster(tmp_path):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: RegionOne, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: c, context: {cluster: RegionOne, user: u}}]\n")
    assert catalog_cli.region_of(str(kubeconfig)) == "RegionOne"
    assert catalog_cli.region_of(str(tmp_path / "missing")) is None


# ---------------------------------------------------------------------------- console, --no-headers


def test_console_log_show_is_server_console_log():
    args = parse("console", "log", "show", "web", "--lines", "5", "-n", "demo")
    assert (args.name, args.lines, args.namespace) == ("web", 5, "demo")
    wrapped = [c.cell_contents for c in args.func.__closure__]
    assert server_cli.console_log in wrapped


def test_no_headers_on_lists():
    assert parse("server", "list", "--no-headers").no_headers
    assert parse("hypervisor", "list", "--no-headers").no_headers
    rows = [["u1", "web-1"], ["u2", "db"]]
    assert format_list(["ID", "Name"], rows, no_headers=True).splitlines() == [
        "+----+-------+", "| u1 | web-1 |", "| u2 | db    |", "+----+-------+"]
    assert format_list(["ID", "Name"], [], no_headers=True) == ""
    assert format_list(["ID", "Name"], rows, "csv", no_headers=True) == '"u1","web-1"\n"u2","db"\n'
    assert format_list(["ID", "Name"], rows, "value", no_headers=True) == "u1 web-1\nu2 db\n"
    # the lecture's loop: names, one a line
    names = [line.split("|")[2].strip() for line in format_list(["ID", "Name"], rows, no_headers=True).splitlines()
             if line.startswith("|")]
    assert names == ["web-1", "db"]
