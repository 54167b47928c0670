"""Ports and fixed IPs against the real API server: `allocate_server_ports` with real Server,
Port, Network and claim objects (no compute controller needed), the garbage collector
releasing addresses, and the network controllers run by the operator."""

from __future__ import annotations

import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from kubernetes import client

from kubestack.network import cni, naming
from kubestack.network.ports import PortError, allocate_server_ports, release_port_claims
from support.schemas import assert_valid

G, V = "kubestack.io", "v1alpha1"


def co(cluster):
    return client.CustomObjectsApi(cluster.api)


def create(cluster, ns, kind, plural, name, spec):
    return co(cluster).create_namespaced_custom_object(G, V, ns, plural, {
        "apiVersion": f"{G}/{V}", "kind": kind, "metadata": {"name": name}, "spec": spec})


def network(cluster, ns, name="private", cidr="10.0.0.0/24", **spec):
    subnet = {"name": f"{name}-v4", "cidr": cidr}
    subnet.update(spec.pop("subnet", {}))
    return create(cluster, ns, "Network", "networks", name, {"subnets": [subnet], **spec})


def server(cluster, ns, name, networks, groups=("default",)):
    return create(cluster, ns, "Server", "servers", name, {
        "flavor": "m1.small", "image": "cirros", "networks": networks,
        "securityGroups": list(groups)})


def claims(cluster, ns):
    items = client.CoreV1Api(cluster.api).list_namespaced_config_map(
        ns, label_selector="kubestack.io/ip-claim=true").items
    return sorted(i.data["address"] for i in items)


def ports(cluster, ns):
    return co(cluster).list_namespaced_custom_object(G, V, ns, "ports")["items"]


@pytest.fixture
def project(cluster):
    """Fresh project namespaces (labelled as a Project's), deleted after the test."""
    core = client.CoreV1Api(cluster.api)
    made = []

    def make(prefix="p"):
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        core.create_namespace({"metadata": {"name": name, "labels": {
            "kubestack.io/project": name, "kubestack.io/test": "true"}}})
        made.append(name)
        return name

    yield make
    for name in made:
        core.delete_namespace(name)


def test_automatic_and_requested_fixed_ips_overlapping_cidrs(cluster, project):
    a, b = project("a"), project("b")
    for ns in (a, b):  # both projects use 10.0.0.0/24 on their own network
        network(cluster, ns, mtu=1450, subnet={"dnsNameservers": ["10.0.0.2"], "hostRoutes": [
            {"destination": "192.168.0.0/16", "nexthop": "10.0.0.254"}]})
    srv_a = server(cluster, a, "web", [{"network": "private"}, {"network": "private", "fixedIp": "10.0.0.50"}])
    srv_b = server(cluster, b, "web", [{"network": "private"}])

    ifaces = allocate_server_ports(cluster.api, srv_a)
    assert [i.ips for i in ifaces] == [("10.0.0.2/24",), ("10.0.0.50/24",)] or \
        [i.ips for i in ifaces] == [("10.0.0.3/24",), ("10.0.0.50/24",)]
    first = ifaces[0]
    assert first.name == "net0" and first.nad == f"{a}/private" and first.network == f"{a}/private"
    assert first.gateway == "10.0.0.1" and first.dns == ("10.0.0.2",) and first.mtu == 1450
    assert first.routes[0].destination == "192.168.0.0/16"
    assert first.mac.startswith("fa:16:3e:") and first.security_groups == ("default",)
    # project b allocates the same addresses on its own network: no clash, no leak
    ifaces_b = allocate_server_ports(cluster.api, srv_b)
    assert ifaces_b[0].ips[0].split("/")[0] in ("10.0.0.2", "10.0.0.3")

    # idempotent: a second call (a restart, a migration, a shelve) gives the same port, IP, MAC
    again = allocate_server_ports(cluster.api, srv_a)
    assert [(i.ips, i.mac, i.port) for i in again] == [(i.ips, i.mac, i.port) for i in ifaces]
    assert len(claims(cluster, a)) == 2 and len(ports(cluster, a)) == 2

    # the Port records what Neutron would show; the default group was made on demand
    port = co(cluster).get_namespaced_custom_object(G, V, a, "ports", "web-1")
    assert port["spec"]["fixedIps"] == [{"subnet": "private-v4", "ipAddress": "10.0.0.50"}]
    assert port["spec"]["deviceId"] == "web" and port["metadata"]["ownerReferences"][0]["name"] == "web"
    assert co(cluster).get_namespaced_custom_object(G, V, a, "securitygroups", "default")
    nad = co(cluster).get_namespaced_custom_object("k8s.cni.cncf.io", "v1", a,
                                                   "network-attachment-definitions", "private")
    assert cni.check_config(nad["spec"]["config"]) == []

    # a taken requested IP is a clear fault and leaves nothing behind
    other = server(cluster, a, "other", [{"network": "private"}, {"network": "private", "fixedIp": "10.0.0.50"}])
    with pytest.raises(PortError, match="IP address 10.0.0.50 already allocated"):
        allocate_server_ports(cluster.api, other)
    bad = server(cluster, a, "bad", [{"network": "private", "fixedIp": "10.9.0.5"}])
    with pytest.raises(PortError, match="not inside any subnet"):
        allocate_server_ports(cluster.api, bad)
    gw = server(cluster, a, "gw", [{"network": "private", "fixedIp": "10.0.0.1"}])
    with pytest.raises(PortError, match="gateway"):
        allocate_server_ports(cluster.api, gw)
    assert len(claims(cluster, a)) == 2 and len(ports(cluster, a)) == 2


def test_exhausted_subnet_is_a_clear_error_without_half_built_ports(cluster, project):
    ns = project()
    network(cluster, ns, cidr="10.9.0.0/29")  # 5 addresses: .2 - .6
    for i in range(5):
        allocate_server_ports(cluster.api, server(cluster, ns, f"s{i}", [{"network": "private"}]))
    assert claims(cluster, ns) == [f"10.9.0.{i}" for i in range(2, 7)]
    network(cluster, ns, name="second", cidr="10.10.0.0/24")
    late = server(cluster, ns, "late", [{"network": "second"}, {"network": "private"}])
    with pytest.raises(PortError) as err:
        allocate_server_ports(cluster.api, late)
    assert "No more IP addresses available on network private" in err.value.message
    assert err.value.code == 500
    # the interface on "second" that succeeded first was undone: no port, no claim
    assert [p["metadata"]["name"] for p in ports(cluster, ns) if p["metadata"]["name"].startswith("late")] == []
    assert len(claims(cluster, ns)) == 5


def test_fifty_concurrent_boots_never_share_an_ip(cluster, project):
    ns = project()
    network(cluster, ns, cidr="10.20.0.0/24")
    servers = [server(cluster, ns, f"vm{i}", [{"network": "private"}]) for i in range(50)]
    start = threading.Barrier(50)

    def boot(body):
        start.wait()
        return allocate_server_ports(cluster.api, body)[0]

    with ThreadPoolExecutor(50) as pool:
        results = list(pool.map(boot, servers))
    ips = [r.ips[0] for r in results]
    macs = [r.mac for r in results]
    assert len(set(ips)) == 50 and len(set(macs)) == 50
    assert sorted(claims(cluster, ns)) == sorted(ip.split("/")[0] for ip in ips)
    assert all(ip.startswith("10.20.0.") and ip != "10.20.0.1/24" for ip in ips)


def test_cross_project_private_network_refused_shared_allowed(cluster, project):
    admin, demo = project("admin"), project("demo")
    network(cluster, admin, name="private", cidr="10.30.0.0/24")
    network(cluster, admin, name="public", cidr="172.24.4.0/24", shared=True)
    bad = server(cluster, demo, "bad", [{"network": f"{admin}/private"}])
    with pytest.raises(PortError, match=f"private network of project {admin}"):
        allocate_server_ports(cluster.api, bad)
    missing = server(cluster, demo, "missing", [{"network": "nope"}])
    with pytest.raises(PortError, match="Network nope could not be found"):
        allocate_server_ports(cluster.api, missing)

    ok = server(cluster, demo, "ok", [{"network": f"{admin}/public"}])
    [iface] = allocate_server_ports(cluster.api, ok)
    assert iface.nad == f"{demo}/{admin}.public" and iface.ips == ("172.24.4.2/24",)
    nad = co(cluster).get_namespaced_custom_object("k8s.cni.cncf.io", "v1", demo,
                                                   "network-attachment-definitions", f"{admin}.public")
    assert json.loads(nad["spec"]["config"])["name"] == f"kubestack.{admin}.public"
    assert_valid(nad)
    # the claim lives in the network's namespace; the port is marked for release by the
    # Port controller (no cross-namespace owner references exist)
    assert claims(cluster, admin) == ["172.24.4.2"]
    port = co(cluster).get_namespaced_custom_object(G, V, demo, "ports", "ok-0")
    assert port["metadata"]["labels"][naming.LABEL_REMOTE_CLAIMS] == "true"
    assert release_port_claims(cluster.api, port) == 1
    assert claims(cluster, admin) == []


def test_user_port_and_release_by_garbage_collector(cluster, project):
    ns = project()
    network(cluster, ns, cidr="10.40.0.0/24")
    create(cluster, ns, "Port", "ports", "vip", {"network": "private",
                                                   "fixedIps": [{"ipAddress": "10.40.0.100"}]})
    srv = server(cluster, ns, "web", [{"port": "vip"}, {"network": "private"}])
    ifaces = allocate_server_ports(cluster.api, srv)
    assert ifaces[0].ips == ("10.40.0.100/24",) and ifaces[0].port == "vip"
    vip = co(cluster).get_namespaced_custom_object(G, V, ns, "ports", "vip")
    assert vip["spec"]["deviceId"] == "web" and vip["spec"]["macAddress"] == ifaces[0].mac
    # another server may not take a port in use
    other = server(cluster, ns, "other", [{"port": "vip"}])
    with pytest.raises(PortError, match="still in use by server web"):
        allocate_server_ports(cluster.api, other)

    # deleting the Server releases its own port and address through the garbage collector;
    # the user's port and its address stay, as in Neutron
    co(cluster).delete_namespaced_custom_object(G, V, ns, "servers", "web")
    for _ in range(300):  # the collector deletes the port and its claims in any order
        if claims(cluster, ns) == ["10.40.0.100"] and len(ports(cluster, ns)) == 1:
            break
        time.sleep(0.1)
    assert claims(cluster, ns) == ["10.40.0.100"]
    assert [p["metadata"]["name"] for p in ports(cluster, ns)] == ["vip"]
    # its server gone, the port is free (its spec still names web: only the status unbinds,
    # see network.binding): another server takes it, address and MAC kept
    assert co(cluster).get_namespaced_custom_object(G, V, ns, "ports", "vip")["spec"]["deviceId"] == "web"
    [iface] = allocate_server_ports(cluster.api, other)
    assert iface.ips == ("10.40.0.100/24",) and iface.mac == ifaces[0].mac
    assert co(cluster).get_namespaced_custom_object(G, V, ns, "ports", "vip")["spec"]["deviceId"] == "other"


def wait(fn, what, tries=600):
    for _ in range(tries):
        value = fn()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"never happened: {what}")


def test_controllers_render_nads_policies_floating_ips_and_routers(cluster, kubestack, project):
    admin, demo = project("admin"), project("demo")
    network(cluster, admin, name="public", cidr="172.24.4.0/24", external=True, shared=True,
            provider={"networkType": "flat", "physicalNetwork": "physnet1"})
    network(cluster, demo, provider={"networkType": "vlan", "physicalNetwork": "physnet1",
                                     "segmentationId": 42})
    get = lambda ns, plural, name: co(cluster).get_namespaced_custom_object(G, V, ns, plural, name)
    net = wait(lambda: (get(demo, "networks", "private").get("status") or {}).get("status") == "ACTIVE"
               and get(demo, "networks", "private"), "network ACTIVE")
    assert net["status"]["subnetSummary"] == "private-v4=10.0.0.0/24"
    assert net["status"]["attachmentDefinitions"] == [f"{demo}/private"]
    nad = co(cluster).get_namespaced_custom_object("k8s.cni.cncf.io", "v1", demo,
                                                   "network-attachment-definitions", "private")
    assert_valid(nad)
    assert json.loads(nad["spec"]["config"])["vlan"] == 42

    create(cluster, demo, "SecurityGroup", "securitygroups", "web", {"rules": [
        {"direction": "ingress", "protocol": "tcp", "portRangeMin": 22, "portRangeMax": 22}]})
    srv = server(cluster, demo, "web", [{"network": "private"}], groups=("default", "web"))
    [iface] = allocate_server_ports(cluster.api, srv)
    netpol = client.NetworkingV1Api(cluster.api)
    np = wait(lambda: next((p for p in netpol.list_namespaced_network_policy(demo).items
                            if p.metadata.name == "sg-web"), None), "sg-web NetworkPolicy")
    assert np.spec.ingress[0].ports[0].port == 22
    mnp = wait(lambda: next((m for m in co(cluster).list_namespaced_custom_object(
        "k8s.cni.cncf.io", "v1beta1", demo, "multi-networkpolicies")["items"]
        if m["metadata"]["name"] == "sg-web.private"), None), "sg-web MultiNetworkPolicy")
    assert mnp["metadata"]["annotations"]["k8s.v1.cni.cncf.io/policy-for"] == f"{demo}/private"
    assert_valid(mnp)
    # changing the group rewrites the policy (no server restart involved)
    co(cluster).patch_namespaced_custom_object(G, V, demo, "securitygroups", "web", {"spec": {"rules": [
        {"direction": "ingress", "protocol": "tcp", "portRangeMin": 443, "portRangeMax": 443}]}})
    wait(lambda: netpol.read_namespaced_network_policy("sg-web", demo).spec.ingress[0].ports[0].port == 443,
         "policy updated")
    port = wait(lambda: (get(demo, "ports", "web-0").get("status") or {}).get("status") == "ACTIVE"
                and get(demo, "ports", "web-0"), "port ACTIVE")
    assert port["status"]["fixedIpSummary"] == iface.ips[0].split("/")[0]

    # floating IP: allocated from the external network, associated, disassociated, kept
    create(cluster, demo, "FloatingIP", "floatingips", "fip", {"floatingNetwork": f"{admin}/public",
                                                                 "server": "web"})
    fip = wait(lambda: (get(demo, "floatingips", "fip").get("status") or {}).get("status") == "ACTIVE"
               and get(demo, "floatingips", "fip"), "floating IP ACTIVE")
    address = fip["status"]["floatingIpAddress"]
    assert address.startswith("172.24.4.") and fip["status"]["fixedIpAddress"] == iface.ips[0].split("/")[0]
    svc = client.CoreV1Api(cluster.api).read_namespaced_service("fip-fip", demo)
    assert svc.spec.type == "LoadBalancer" and svc.spec.load_balancer_ip == address
    assert svc.spec.selector == {"vm.kubevirt.io/name": "web"}
    assert [(p.protocol, p.port) for p in svc.spec.ports] == [("TCP", 443)]
    co(cluster).patch_namespaced_custom_object(G, V, demo, "floatingips", "fip", {"spec": {"server": None}})
    wait(lambda: get(demo, "floatingips", "fip")["status"]["status"] == "DOWN", "disassociated")
    assert get(demo, "floatingips", "fip")["status"]["floatingIpAddress"] == address
    assert not client.CoreV1Api(cluster.api).read_namespaced_service("fip-fip", demo).spec.selector
    co(cluster).patch_namespaced_custom_object(G, V, demo, "floatingips", "fip", {"spec": {"server": "web"}})
    wait(lambda: get(demo, "floatingips", "fip")["status"]["status"] == "ACTIVE", "re-associated")
    assert get(demo, "floatingips", "fip")["status"]["floatingIpAddress"] == address
    co(cluster).delete_namespaced_custom_object(G, V, demo, "floatingips", "fip")
    wait(lambda: address not in claims(cluster, admin), "floating IP released")

    # a router is modelled, checked, and honestly reported as not realised
    create(cluster, demo, "Router", "routers", "r1", {"externalGateway": {"network": f"{admin}/public"},
                                                       "interfaces": [{"network": "private", "subnet": "private-v4"}]})
    r = wait(lambda: (get(demo, "routers", "r1").get("status") or {}).get("status") and get(demo, "routers", "r1"),
             "router status")
    assert r["status"]["status"] == "DOWN" and "not realised" in r["status"]["reason"]
