"""Ports and Routers follow what they name, as a GitOps apply needs: a Port applied before its
Network (or its subnet) is ERROR, then gets its fixed IPs and turns DOWN once the network has
them; a Router applied before its networks is ERROR, then modelled-but-not-realised once they
exist, and ERROR again when one goes; a pre-created Port plugged by a server is unbound (status
only: DOWN, no server, deviceId kept) when the server is deleted, keeps its address, and is
bound again by a server that plugs it; a Port in ERROR for an address that is taken (a fixed IP
another port holds, a full pool) gets it once the address is given back. A Port waiting so is
not kstatus' Stalled; a Network with invalid pools, and a Port on it, are, until it is fixed."""

from __future__ import annotations

from kubernetes import client

from support.compute import (
    create_flavor, create_image, create_server, custom, events_for, events_with, get, vm, wait_for,
    wait_status,
)

G, V = "kubestack.io", "v1alpha1"


def _create(cluster, ns, kind, plural, name, spec):
    return custom(cluster).create_namespaced_custom_object(G, V, ns, plural, {
        "apiVersion": f"{G}/{V}", "kind": kind, "metadata": {"name": name}, "spec": spec})


def _network(cluster, ns, name, *subnets, **spec):
    _create(cluster, ns, "Network", "networks", name, {
        "provider": {"networkType": "bridge", "bridge": "br-" + name[:10]},
        "subnets": [{"name": s, "cidr": c, "ipVersion": 4} for s, c in subnets], **spec})


def _status(cluster, ns, plural, name):
    return (get(cluster, ns, plural, name) or {}).get("status") or {}


def _port_in(cluster, ns, name, state, reason=""):
    return wait_for(lambda: (s := _status(cluster, ns, "ports", name)).get("status") == state
                    and reason in (s.get("reason") or "") and s, timeout=60, what=f"port {name} {state} {reason}")


def _router_in(cluster, ns, name, state, reason=""):
    return wait_for(lambda: (s := _status(cluster, ns, "routers", name)).get("status") == state
                    and reason in (s.get("reason") or "") and s, timeout=60, what=f"router {name} {state} {reason}")


def _stalled(status):
    """kstatus' Stalled condition's (status, reason), or None."""
    return next(((c["status"], c["reason"]) for c in status.get("conditions") or [] if c["type"] == "Stalled"), None)


def _claims(cluster, ns):
    items = client.CoreV1Api(cluster.api).list_namespaced_config_map(
        ns, label_selector="kubestack.io/ip-claim=true").items
    return sorted(i.data["address"] for i in items)


def test_port_applied_before_its_network_gets_its_addresses(cluster, kubestack, namespace):
    _create(cluster, namespace, "Port", "ports", "vip", {"network": "private"})
    _create(cluster, namespace, "Port", "ports", "extra", {"network": "private",
                                                            "fixedIps": [{"subnet": "second"}]})
    waiting = _port_in(cluster, namespace, "vip", "ERROR", "Network private could not be found.")
    # Flux's health checks read Stalled as failed at once: a network still to be applied is not
    assert _stalled(waiting) is None

    # the network appears (without the second subnet): vip is given an address, DOWN (no server)
    _network(cluster, namespace, "private", ("private-v4", "10.61.0.0/24"))
    st = _port_in(cluster, namespace, "vip", "DOWN")
    assert st["fixedIpSummary"] == "10.61.0.2" and not st.get("reason") and not st.get("server")
    assert st["macAddress"].startswith("fa:16:3e:")
    port = get(cluster, namespace, "ports", "vip")
    assert port["spec"]["fixedIps"] == [{"subnet": "private-v4", "ipAddress": "10.61.0.2"}]
    assert st["networkAttachment"] == f"{namespace}/private"
    events_with(cluster, namespace, "vip", "PortError", "Allocated")
    # the port asking for a subnet the network does not have yet is still ERROR, for that
    waiting = _port_in(cluster, namespace, "extra", "ERROR", "Subnet second could not be found on network private.")
    assert _stalled(waiting) is None

    # the subnet is added: the port gets its address there
    custom(cluster).patch_namespaced_custom_object(G, V, namespace, "networks", "private", {"spec": {"subnets": [
        {"name": "private-v4", "cidr": "10.61.0.0/24", "ipVersion": 4},
        {"name": "second", "cidr": "10.62.0.0/24", "ipVersion": 4}]}})
    st = _port_in(cluster, namespace, "extra", "DOWN")
    assert st["fixedIps"] == [{"subnet": "second", "ipAddress": "10.62.0.2"}]
    assert _claims(cluster, namespace) == ["10.61.0.2", "10.62.0.2"]


def test_a_network_with_invalid_pools_is_stalled_and_so_is_a_port_on_it_until_it_is_fixed(
        cluster, kubestack, namespace):
    # a pool that starts after it ends: admission lets it through, only a spec change cures it
    _create(cluster, namespace, "Network", "networks", "broken", {"subnets": [
        {"name": "broken-v4", "cidr": "10.67.0.0/24", "ipVersion": 4,
         "allocationPools": [{"start": "10.67.0.20", "end": "10.67.0.10"}]}]})
    _create(cluster, namespace, "Port", "ports", "on-broken", {"network": "broken"})
    net = wait_for(lambda: (s := _status(cluster, namespace, "networks", "broken")).get("status") == "ERROR"
                   and _stalled(s) and s, timeout=60, what="network broken ERROR, Stalled")
    assert "starts after it ends" in net["reason"] and _stalled(net) == ("True", "InvalidSubnet")
    port = wait_for(lambda: (s := _status(cluster, namespace, "ports", "on-broken")).get("status") == "ERROR"
                    and _stalled(s) and s, timeout=60, what="port on-broken ERROR, Stalled")
    assert "starts after it ends" in port["reason"] and _stalled(port) == ("True", "PortError")

    # fixed: both recover, and Stalled goes with the ERROR
    custom(cluster).patch_namespaced_custom_object(G, V, namespace, "networks", "broken", {"spec": {"subnets": [
        {"name": "broken-v4", "cidr": "10.67.0.0/24", "ipVersion": 4,
         "allocationPools": [{"start": "10.67.0.10", "end": "10.67.0.20"}]}]}})
    net = wait_for(lambda: (s := _status(cluster, namespace, "networks", "broken")).get("status") == "ACTIVE" and s,
                   timeout=60, what="network broken ACTIVE")
    assert _stalled(net) is None
    port = _port_in(cluster, namespace, "on-broken", "DOWN")
    assert port["fixedIpSummary"] == "10.67.0.10" and _stalled(port) is None


def test_router_applied_before_its_networks_converges(cluster, kubestack, namespace, admin):
    _create(cluster, namespace, "Router", "routers", "r1", {
        "externalGateway": {"network": f"{admin}/public"},
        "interfaces": [{"network": "private", "subnet": "private-v4"}]})
    waiting = _router_in(cluster, namespace, "r1", "ERROR", f"Network {admin}/public could not be found.")
    assert _stalled(waiting) is None

    _network(cluster, admin, "public", ("public-v4", "172.24.20.0/24"), external=True, shared=True)
    _router_in(cluster, namespace, "r1", "ERROR", "Network private could not be found.")
    _network(cluster, namespace, "private", ("private-v4", "10.63.0.0/24"))
    st = _router_in(cluster, namespace, "r1", "DOWN", "not realised")
    ready = next(c for c in st["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "NotRealised"
    events_with(cluster, namespace, "r1", "InvalidReference", "NotRealised")

    # an interface's network goes: ERROR again, and back once it is recreated
    custom(cluster).delete_namespaced_custom_object(G, V, namespace, "networks", "private")
    _router_in(cluster, namespace, "r1", "ERROR", "Network private")
    _network(cluster, namespace, "private", ("private-v4", "10.63.0.0/24"))
    _router_in(cluster, namespace, "r1", "DOWN", "not realised")


def test_deleting_a_server_unbinds_its_pre_created_port(cluster, kubestack, namespace):
    _network(cluster, namespace, "private", ("private-v4", "10.64.0.0/24"))
    flavor = create_flavor(cluster)
    create_image(cluster, namespace)
    _create(cluster, namespace, "Port", "ports", "vip", {"network": "private",
                                                         "fixedIps": [{"ipAddress": "10.64.0.100"}]})
    _port_in(cluster, namespace, "vip", "DOWN")

    create_server(cluster, namespace, "app", flavor, networks=[{"port": "vip"}])
    wait_status(cluster, namespace, "app", "ACTIVE")
    st = _port_in(cluster, namespace, "vip", "ACTIVE")
    assert st["server"] == "app" and st["fixedIpSummary"] == "10.64.0.100"
    mac = st["macAddress"]

    # the server goes: the port stays (it is the user's), unbound in its status; its spec is
    # left as written (a controller clearing spec.deviceId would fight a GitOps tool)
    custom(cluster).delete_namespaced_custom_object(G, V, namespace, "servers", "app")
    st = _port_in(cluster, namespace, "vip", "DOWN", "Server app could not be found")
    assert not st.get("server") and st["fixedIpSummary"] == "10.64.0.100" and st["macAddress"] == mac
    assert get(cluster, namespace, "ports", "vip")["spec"]["deviceId"] == "app"
    assert _claims(cluster, namespace) == ["10.64.0.100"]
    events_with(cluster, namespace, "vip", "Unbound")

    # a server of that name plugging it again (a GitOps re-apply) binds it, with no port change
    wait_for(lambda: vm(cluster, namespace, "app") is None, what="the old server's VM gone")
    create_server(cluster, namespace, "app", flavor, networks=[{"port": "vip"}])
    wait_status(cluster, namespace, "app", "ACTIVE")
    st = _port_in(cluster, namespace, "vip", "ACTIVE")
    assert st["server"] == "app" and not st.get("reason") and st["macAddress"] == mac
    wait_for(lambda: [e.reason for e in events_for(cluster, namespace, "vip")].count("Bound") >= 2,
             timeout=30, what="a second Bound Event")

    # gone again, the port is free: another server takes it (no "still in use by app")
    custom(cluster).delete_namespaced_custom_object(G, V, namespace, "servers", "app")
    _port_in(cluster, namespace, "vip", "DOWN", "Server app could not be found")
    create_server(cluster, namespace, "db", flavor, networks=[{"port": "vip"}])
    srv = wait_status(cluster, namespace, "db", "ACTIVE")
    assert srv["status"]["addresses"]["private"][0]["addr"] == "10.64.0.100"
    st = _port_in(cluster, namespace, "vip", "ACTIVE")
    assert st["server"] == "db" and get(cluster, namespace, "ports", "vip")["spec"]["deviceId"] == "db"


def test_a_port_waiting_for_a_taken_fixed_ip_gets_it_once_it_is_given_back(cluster, kubestack, namespace):
    _network(cluster, namespace, "private", ("private-v4", "10.65.0.0/24"))
    _create(cluster, namespace, "Port", "ports", "first", {"network": "private",
                                                           "fixedIps": [{"ipAddress": "10.65.0.50"}]})
    _port_in(cluster, namespace, "first", "DOWN")
    # Neutron would refuse the second create; here it exists, ERROR, until the address is free
    _create(cluster, namespace, "Port", "ports", "second", {"network": "private",
                                                            "fixedIps": [{"ipAddress": "10.65.0.50"}]})
    assert _stalled(_port_in(cluster, namespace, "second", "ERROR", "IP address 10.65.0.50 already allocated")) is None

    # the first port goes (its claim with it, by the garbage collector): the second takes it
    custom(cluster).delete_namespaced_custom_object(G, V, namespace, "ports", "first")
    st = _port_in(cluster, namespace, "second", "DOWN")
    assert st["fixedIpSummary"] == "10.65.0.50" and not st.get("reason")
    assert _claims(cluster, namespace) == ["10.65.0.50"]
    events_with(cluster, namespace, "second", "PortError", "Allocated")


def test_a_port_waiting_for_a_full_pool_gets_the_address_a_deleted_server_gives_back(cluster, kubestack,
                                                                                     namespace):
    _network(cluster, namespace, "private", ("private-v4", "10.66.0.0/24"))
    custom(cluster).patch_namespaced_custom_object(G, V, namespace, "networks", "private", {"spec": {"subnets": [
        {"name": "private-v4", "cidr": "10.66.0.0/24", "ipVersion": 4,
         "allocationPools": [{"start": "10.66.0.10", "end": "10.66.0.10"}]}]}})
    flavor = create_flavor(cluster)
    create_image(cluster, namespace)
    create_server(cluster, namespace, "app", flavor, networks=[{"network": "private"}])
    srv = wait_status(cluster, namespace, "app", "ACTIVE")
    assert srv["status"]["addresses"]["private"][0]["addr"] == "10.66.0.10"

    _create(cluster, namespace, "Port", "ports", "late", {"network": "private"})
    assert _stalled(_port_in(cluster, namespace, "late", "ERROR",
                             "No more IP addresses available on network private")) is None

    # the server goes, and its port's address with it (claims owned by the Server): late gets it
    custom(cluster).delete_namespaced_custom_object(G, V, namespace, "servers", "app")
    st = _port_in(cluster, namespace, "late", "DOWN")
    assert st["fixedIpSummary"] == "10.66.0.10"
    wait_for(lambda: _claims(cluster, namespace) == ["10.66.0.10"], what="one claim, the late port's")
