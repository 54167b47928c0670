"""Floating IPs follow what they name, as a GitOps apply needs: a FloatingIP applied before
its server (or port) exists is DOWN with the reason, turns ACTIVE with the server's fixed IP
and its Service selecting the server once the server boots, goes DOWN again (keeping its
address) when the server is deleted, and comes back when a server of that name does. One
whose external network goes is ERROR and associated with nothing (status and Service); one
naming a port forwards what the port's own security groups allow in. An ERROR that waits (for
the network, for a free address) is not kstatus' Stalled; one naming a network that is not
external is, until the network is made external."""

from __future__ import annotations

import pytest
from kubernetes import client

from support.compute import (
    create_flavor, create_image, create_server, custom, events_with, get, wait_for, wait_status,
)

G, V = "kubestack.io", "v1alpha1"


def _create(cluster, ns, kind, plural, name, spec):
    return custom(cluster).create_namespaced_custom_object(G, V, ns, plural, {
        "apiVersion": f"{G}/{V}", "kind": kind, "metadata": {"name": name}, "spec": spec})


def _network(cluster, ns, name, cidr, **spec):
    _create(cluster, ns, "Network", "networks", name, {
        "provider": {"networkType": "bridge", "bridge": "br-" + name[:10]},
        "subnets": [{"name": f"{name}-v4", "cidr": cidr, "ipVersion": 4}], **spec})


@pytest.fixture
def public(cluster, admin):
    _network(cluster, admin, "public", "172.24.12.0/24", external=True, shared=True)
    return f"{admin}/public"


def _fip(cluster, ns, name="fip"):
    return get(cluster, ns, "floatingips", name) or {}


def _status(cluster, ns, name="fip"):
    return _fip(cluster, ns, name).get("status") or {}


def _service(cluster, ns, name="fip"):
    return client.CoreV1Api(cluster.api).read_namespaced_service(f"fip-{name}", ns)


def _stalled(status):
    """kstatus' Stalled condition's (status, reason), or None."""
    return next(((c["status"], c["reason"]) for c in status.get("conditions") or [] if c["type"] == "Stalled"), None)


def _down_with(cluster, ns, reason, name="fip"):
    return wait_for(lambda: (s := _status(cluster, ns, name)).get("status") == "DOWN"
                    and reason in (s.get("reason") or "") and s, timeout=60, what=f"DOWN: {reason}")


def _active(cluster, ns, fixed, name="fip"):
    return wait_for(lambda: (s := _status(cluster, ns, name)).get("status") == "ACTIVE"
                    and s.get("fixedIpAddress") == fixed and s, timeout=60, what=f"ACTIVE on {fixed}")


def _fixed_ip(srv, network="private"):
    return srv["status"]["addresses"][network][0]["addr"]


def test_floating_ip_applied_before_its_server_converges(cluster, kubestack, namespace, public):
    _network(cluster, namespace, "private", "10.50.0.0/24")
    _create(cluster, namespace, "SecurityGroup", "securitygroups", "web", {"rules": [
        {"direction": "ingress", "protocol": "tcp", "portRangeMin": 80, "portRangeMax": 80}]})
    flavor = create_flavor(cluster)
    create_image(cluster, namespace)

    # the FloatingIP first: its address is allocated at once, the association waits
    _create(cluster, namespace, "FloatingIP", "floatingips", "fip", {"floatingNetwork": public, "server": "web"})
    st = _down_with(cluster, namespace, "Server web could not be found.")
    address = st["floatingIpAddress"]
    assert address.startswith("172.24.12.") and not st.get("fixedIpAddress") and not st.get("server")
    assert not _service(cluster, namespace).spec.selector

    # the server appears: the FloatingIP follows, with no change of its own
    create_server(cluster, namespace, "web", flavor, networks=[{"network": "private"}],
                  securityGroups=["default", "web"])
    srv = wait_status(cluster, namespace, "web", "ACTIVE")
    fixed = _fixed_ip(srv)
    st = _active(cluster, namespace, fixed)
    assert st["floatingIpAddress"] == address and st["server"] == "web" and st["port"] == "web-0"
    assert not st.get("reason")
    svc = _service(cluster, namespace)
    assert svc.spec.selector == {"vm.kubevirt.io/name": "web"} and svc.spec.load_balancer_ip == address
    assert [(p.protocol, p.port) for p in svc.spec.ports] == [("TCP", 80)]
    events_with(cluster, namespace, "fip", "Down", "Active")
    # and Nova's view shows it next to the fixed IP
    wait_for(lambda: address in ((get(cluster, namespace, "servers", "web") or {}).get("status") or {}).get(
        "networks", ""), what="floating IP in the server's networks")

    # the server goes: DOWN, the address kept, the Service selecting nothing
    custom(cluster).delete_namespaced_custom_object(G, V, namespace, "servers", "web")
    st = _down_with(cluster, namespace, "Server web could not be found.")
    assert st["floatingIpAddress"] == address and not st.get("fixedIpAddress") and not st.get("port")
    svc = _service(cluster, namespace)
    assert not svc.spec.selector and svc.spec.load_balancer_ip == address

    # a new server of that name takes the address again
    wait_for(lambda: not [p for p in custom(cluster).list_namespaced_custom_object(
        G, V, namespace, "ports")["items"] if p["metadata"]["name"] == "web-0"], what="old port gone")
    create_server(cluster, namespace, "web", flavor, networks=[{"network": "private"}])
    srv = wait_status(cluster, namespace, "web", "ACTIVE")
    st = _active(cluster, namespace, _fixed_ip(srv))
    assert st["floatingIpAddress"] == address
    assert _service(cluster, namespace).spec.selector == {"vm.kubevirt.io/name": "web"}


def test_floating_ip_applied_before_its_port_converges(cluster, kubestack, namespace, public):
    _network(cluster, namespace, "private", "10.51.0.0/24")
    flavor = create_flavor(cluster)
    create_image(cluster, namespace)

    _create(cluster, namespace, "FloatingIP", "floatingips", "fip", {"floatingNetwork": public, "port": "vip"})
    address = _down_with(cluster, namespace, "Port vip could not be found.")["floatingIpAddress"]

    # the port appears, not bound yet: still DOWN, now for that reason
    _create(cluster, namespace, "Port", "ports", "vip", {"network": "private",
                                                         "fixedIps": [{"ipAddress": "10.51.0.100"}]})
    _down_with(cluster, namespace, "Port vip is not bound to a server.")

    # a server plugs it: ACTIVE on the port's address
    create_server(cluster, namespace, "app", flavor, networks=[{"port": "vip"}])
    wait_status(cluster, namespace, "app", "ACTIVE")
    st = _active(cluster, namespace, "10.51.0.100")
    assert st["port"] == "vip" and st["server"] == "app" and st["floatingIpAddress"] == address
    assert _service(cluster, namespace).spec.selector == {"vm.kubevirt.io/name": "app"}

    # the server goes (the user's port stays, as in Neutron): DOWN, address kept
    custom(cluster).delete_namespaced_custom_object(G, V, namespace, "servers", "app")
    st = _down_with(cluster, namespace, "Port vip is")
    assert st["floatingIpAddress"] == address and not _service(cluster, namespace).spec.selector

    # the port goes: DOWN for that reason
    custom(cluster).delete_namespaced_custom_object(G, V, namespace, "ports", "vip")
    st = _down_with(cluster, namespace, "Port vip could not be found.")
    assert st["floatingIpAddress"] == address


def test_floating_ip_applied_before_its_external_network_gets_an_address(cluster, kubestack, namespace, admin):
    _create(cluster, namespace, "FloatingIP", "floatingips", "fip", {"floatingNetwork": f"{admin}/public",
                                                                       "server": "web"})
    st = wait_for(lambda: (s := _status(cluster, namespace)).get("status") == "ERROR"
                  and "could not be found" in s.get("reason", "") and s, timeout=60, what="ERROR: no network")
    assert _stalled(st) is None  # a network still to be applied: progress, not failed (Flux)
    _network(cluster, admin, "public", "172.24.13.0/24", external=True, shared=True)
    st = _down_with(cluster, namespace, "Server web could not be found.")
    assert st["floatingIpAddress"].startswith("172.24.13.")

    # a network that is not external: only a spec change cures that (Stalled), and it goes
    # once the network is made external
    _network(cluster, namespace, "internal", "172.24.15.0/24")
    _create(cluster, namespace, "FloatingIP", "floatingips", "inside", {"floatingNetwork": "internal"})
    st = wait_for(lambda: (s := _status(cluster, namespace, "inside")).get("status") == "ERROR" and s,
                  timeout=60, what="ERROR: not external")
    assert "not an external network" in st["reason"] and _stalled(st) == ("True", "AllocationFailed")
    custom(cluster).patch_namespaced_custom_object(G, V, namespace, "networks", "internal",
                                                   {"spec": {"external": True}})
    st = wait_for(lambda: (s := _status(cluster, namespace, "inside")).get("status") == "DOWN" and s,
                  timeout=60, what="inside DOWN once the network is external")
    assert st["floatingIpAddress"].startswith("172.24.15.") and _stalled(st) is None


def test_a_floating_ip_waiting_for_a_full_pool_gets_the_address_another_gives_back(cluster, kubestack,
                                                                                   namespace, admin):
    _create(cluster, admin, "Network", "networks", "tiny", {
        "provider": {"networkType": "bridge", "bridge": "br-tiny"}, "external": True, "shared": True,
        "subnets": [{"name": "tiny-v4", "cidr": "172.24.14.0/24", "ipVersion": 4,
                     "allocationPools": [{"start": "172.24.14.10", "end": "172.24.14.10"}]}]})
    _create(cluster, namespace, "FloatingIP", "floatingips", "first", {"floatingNetwork": f"{admin}/tiny"})
    wait_for(lambda: _status(cluster, namespace, "first").get("floatingIpAddress") == "172.24.14.10",
             timeout=60, what="first has the pool's one address")
    _create(cluster, namespace, "FloatingIP", "floatingips", "second", {"floatingNetwork": f"{admin}/tiny"})
    full = wait_for(lambda: (s := _status(cluster, namespace, "second")).get("status") == "ERROR" and s, timeout=60,
                    what="second ERROR: the pool is full")
    assert _stalled(full) is None
    custom(cluster).delete_namespaced_custom_object(G, V, namespace, "floatingips", "first")
    st = wait_for(lambda: (s := _status(cluster, namespace, "second")).get("status") == "DOWN" and s,
                  timeout=60, what="second gets the freed address")
    assert st["floatingIpAddress"] == "172.24.14.10"


def test_a_floating_ip_whose_external_network_goes_is_error_and_associated_with_nothing(
        cluster, kubestack, namespace, admin, public):
    _network(cluster, namespace, "private", "10.52.0.0/24")
    flavor = create_flavor(cluster)
    create_image(cluster, namespace)
    create_server(cluster, namespace, "web", flavor, networks=[{"network": "private"}])
    _create(cluster, namespace, "FloatingIP", "floatingips", "fip", {"floatingNetwork": public, "server": "web"})
    srv = wait_status(cluster, namespace, "web", "ACTIVE")
    st = _active(cluster, namespace, _fixed_ip(srv))
    address = st["floatingIpAddress"]
    assert _service(cluster, namespace).spec.selector == {"vm.kubevirt.io/name": "web"}

    # the external network goes: ERROR, and nothing associated any more, in the status or the
    # Service (which stays, holding the address, and selects nothing: no traffic flows)
    custom(cluster).delete_namespaced_custom_object(G, V, admin, "networks", "public")
    st = wait_for(lambda: (s := _status(cluster, namespace)).get("status") == "ERROR" and s,
                  timeout=60, what="ERROR: external network gone")
    assert f"Network {public} could not be found." in st["reason"]
    assert not st.get("server") and not st.get("fixedIpAddress") and not st.get("port")
    assert st["floatingIpAddress"] == address
    svc = _service(cluster, namespace)
    assert not svc.spec.selector and svc.spec.load_balancer_ip == address
    assert [(p.protocol, p.port) for p in svc.spec.ports] == [("TCP", 1)]
    events_with(cluster, namespace, "fip", "Active", "AllocationFailed")
    # Nova's view no longer shows it
    wait_for(lambda: address not in ((get(cluster, namespace, "servers", "web") or {}).get("status") or {}).get(
        "networks", ""), what="floating IP gone from the server's networks")


def test_a_port_named_floating_ip_forwards_what_the_port_s_groups_allow(cluster, kubestack, namespace, public):
    _network(cluster, namespace, "private", "10.53.0.0/24")
    _create(cluster, namespace, "SecurityGroup", "securitygroups", "web", {"rules": [
        {"direction": "ingress", "protocol": "tcp", "portRangeMin": 80, "portRangeMax": 80}]})
    _create(cluster, namespace, "SecurityGroup", "securitygroups", "https", {"rules": [
        {"direction": "ingress", "protocol": "tcp", "portRangeMin": 443, "portRangeMax": 443}]})
    flavor = create_flavor(cluster)
    create_image(cluster, namespace)
    # the server's groups open 80; the port it plugs has its own group, opening 443 only
    _create(cluster, namespace, "Port", "ports", "vip", {"network": "private", "securityGroups": ["https"],
                                                         "fixedIps": [{"ipAddress": "10.53.0.100"}]})
    create_server(cluster, namespace, "app", flavor, networks=[{"port": "vip"}], securityGroups=["default", "web"])
    _create(cluster, namespace, "FloatingIP", "floatingips", "fip", {"floatingNetwork": public, "port": "vip"})
    wait_status(cluster, namespace, "app", "ACTIVE")
    _active(cluster, namespace, "10.53.0.100")
    svc = _service(cluster, namespace)
    assert svc.spec.selector == {"vm.kubevirt.io/name": "app"}
    assert [(p.protocol, p.port) for p in svc.spec.ports] == [("TCP", 443)]

    # the port's groups change: the Service follows
    custom(cluster).patch_namespaced_custom_object(G, V, namespace, "ports", "vip",
                                                   {"spec": {"securityGroups": ["https", "web"]}})
    wait_for(lambda: [(p.protocol, p.port) for p in _service(cluster, namespace).spec.ports]
             == [("TCP", 80), ("TCP", 443)], timeout=60, what="the Service forwarding 80 and 443")
