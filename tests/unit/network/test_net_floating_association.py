"""Floating IP association (pure): what a FloatingIP maps to given the Port/Server it names
as they are now, and which FloatingIPs a Port, Server or SecurityGroup event affects (a
FloatingIP applied before its server or port converges once they appear, and goes DOWN
when they go); what its status shows of the association (nothing unless ACTIVE), which
security groups its Service forwards (the port's for a port-named one) and the Service patch."""

import pytest

from kubestack.network import naming
from kubestack.network.association import (
    Association, FloatingIPIndex, associate, server_view, service_groups, status_fields,
)
from kubestack.network.floating import HOLD_ADDRESS, service_patch

pytestmark = pytest.mark.unit

NS = "demo"


def server(name="web", uid="u1", networks=(("private", None),), groups=None, pod=None, **meta):
    spec = {"flavor": "m1.small", "image": "cirros",
            "networks": [{k: v for k, v in (("network", n), ("port", p)) if v} for n, p in networks]}
    if groups is not None:
        spec["securityGroups"] = list(groups)
    body = {"metadata": {"name": name, "namespace": NS, "uid": uid, **meta}, "spec": spec, "status": {}}
    if pod:
        body["status"]["addresses"] = {"pod": [{"addr": a, "type": "fixed"} for a in pod]}
    return body


def port(name, ips=(), device=None, label=None, owner_uid=None, uid=None, **status):
    meta = {"name": name, "namespace": NS, "uid": uid or f"p-{name}", "labels": {}}
    if label:
        meta["labels"][naming.LABEL_SERVER] = label
    if owner_uid:
        meta["ownerReferences"] = [{"kind": "Server", "name": label or device, "uid": owner_uid}]
    spec = {"network": "private", "fixedIps": [{"subnet": "s", "ipAddress": ip} for ip in ips]}
    if device:
        spec["deviceId"] = device
    return {"metadata": meta, "spec": spec, "status": status}


def own_port(srv, i, *ips):
    name = srv["metadata"]["name"]
    return port(naming.port_name(name, i), ips, device=name, label=name, owner_uid=srv["metadata"]["uid"])


def fip(name="fip", uid="f1", **spec):
    return {"metadata": {"name": name, "namespace": NS, "uid": uid},
            "spec": {"floatingNetwork": "admin/public", **spec}}


# ------------------------------------------------------------------------------ associate


def test_nothing_named_is_down_without_a_reason():
    assert associate({}, None, {}) == Association()
    assert not Association().active


def test_server_missing_then_without_ports_then_associated():
    spec = {"server": "web"}
    assert associate(spec, None, {}) == Association(reason="Server web could not be found.")
    srv = server()
    assert associate(spec, srv, {}) == Association(reason="Server web has no port yet.")
    p = own_port(srv, 0, "10.0.0.5")
    a = associate(spec, srv, {"web-0": p})
    assert a == Association(server="web", port="web-0", fixed_ip="10.0.0.5") and a.active


def test_server_prefers_first_ipv4_across_ports_in_interface_order():
    srv = server(networks=(("v6only", None), ("private", None)))
    ports = {"web-0": own_port(srv, 0, "fd00::5"), "web-1": own_port(srv, 1, "10.0.0.7", "fd00::7")}
    assert associate({"server": "web"}, srv, ports) == Association("web", "web-1", "10.0.0.7")
    # an asked address picks its port; one no port has keeps it DOWN
    assert associate({"server": "web", "fixedIpAddress": "fd00::5"}, srv, ports) == \
        Association("web", "web-0", "fd00::5")
    assert associate({"server": "web", "fixedIpAddress": "10.0.0.9"}, srv, ports) == \
        Association(reason="Server web does not have fixed IP 10.0.0.9.")
    # ports without any address yet (a network without subnets, or still allocating)
    bare = {"web-0": own_port(srv, 0), "web-1": own_port(srv, 1)}
    assert associate({"server": "web"}, srv, bare).reason == "Server web has no fixed IP address yet."


def test_server_with_a_plugged_user_port():
    srv = server(networks=((None, "vip"),))
    vip = port("vip", ["10.0.0.100"], device="web")
    assert associate({"server": "web"}, srv, {"vip": vip}) == Association("web", "vip", "10.0.0.100")
    # not plugged (yet): not this server's port
    assert associate({"server": "web"}, srv, {"vip": port("vip", ["10.0.0.100"])}).reason == \
        "Server web has no port yet."


def test_port_left_by_an_earlier_server_of_the_same_name_is_not_the_new_ones():
    old = server(uid="old")
    new = server(uid="new")
    stale = own_port(old, 0, "10.0.0.5")
    assert associate({"server": "web"}, new, {"web-0": stale}).reason == "Server web has no port yet."
    assert associate({"server": "web"}, old, {"web-0": stale}).active


def test_pod_network_server_uses_its_pod_address():
    srv = server(networks=())
    assert associate({"server": "web"}, srv, {}) == Association(server="web")  # selects the pod
    srv = server(networks=(), pod=["10.244.1.9"])
    assert associate({"server": "web"}, srv, {}) == Association(server="web", fixed_ip="10.244.1.9")
    assert associate({"server": "web", "fixedIpAddress": "10.244.1.8"}, srv, {}).reason == \
        "Server web does not have fixed IP 10.244.1.8."


def test_deleting_server_is_down():
    srv = server(deletionTimestamp="2026-01-01T00:00:00Z")
    assert associate({"server": "web"}, srv, {"web-0": own_port(srv, 0, "10.0.0.5")}).reason == \
        "Server web is being deleted."


def test_port_missing_unbound_orphaned_then_associated():
    spec = {"port": "vip"}
    assert associate(spec, None, {}).reason == "Port vip could not be found."
    assert associate(spec, None, {"vip": port("vip", ["10.0.0.100"])}).reason == \
        "Port vip is not bound to a server."
    bound = port("vip", ["10.0.0.100"], device="web")
    assert associate(spec, None, {"vip": bound}).reason == \
        "Port vip is bound to server web, which could not be found."
    assert associate(spec, server(name="other"), {"vip": bound}).reason == \
        "Port vip is bound to server web, which could not be found."
    assert associate(spec, server(networks=((None, "vip"),)), {"vip": bound}) == \
        Association("web", "vip", "10.0.0.100")
    assert associate({**spec, "fixedIpAddress": "10.0.0.1"}, server(), {"vip": bound}).reason == \
        "Port vip does not have fixed IP 10.0.0.1."


# ------------------------------------------------------------------------------ the index


def test_port_events_affect_floating_ips_naming_the_port_or_its_server():
    idx = FloatingIPIndex()
    assert idx.floating_ip_event("ADDED", fip("by-server", server="web"), None)
    assert idx.floating_ip_event("ADDED", fip("by-port", uid="f2", port="vip"), None)
    assert idx.floating_ip_event("ADDED", fip("free", uid="f3"), None)
    srv = server()
    created = own_port(srv, 0, "10.0.0.5")
    assert idx.port_event("ADDED", created) == {(NS, "by-server")}
    # the Port controller writing its status changes nothing a floating IP reads
    assert idx.port_event("MODIFIED", {**created, "status": {"status": "ACTIVE"}}) == set()
    # kopf's initial listing (type None) of a port already seen: nothing
    assert idx.port_event(None, created) == set()
    assert idx.port_event("MODIFIED", own_port(srv, 0, "10.0.0.6")) == {(NS, "by-server")}
    assert idx.port_event("DELETED", own_port(srv, 0, "10.0.0.6")) == {(NS, "by-server")}
    # a user port: named directly, then plugged into the server (both affected)
    assert idx.port_event("ADDED", port("vip", ["10.0.0.100"])) == {(NS, "by-port")}
    assert idx.port_event("MODIFIED", port("vip", ["10.0.0.100"], device="web")) == \
        {(NS, "by-port"), (NS, "by-server")}
    # other namespaces and other servers' ports: nothing
    other = port("db-0", ["10.0.0.9"], device="db", label="db")
    assert idx.port_event("ADDED", other) == set()
    assert idx.port_event("ADDED", {**other, "metadata": {**other["metadata"], "namespace": "x",
                                                          "name": "web-0"}}) == set()


def test_server_events_only_when_it_comes_goes_or_changes_what_is_read():
    idx = FloatingIPIndex()
    idx.floating_ip_event("ADDED", fip(server="web"), None)
    srv = server()
    assert idx.server_event("ADDED", srv, None) == {(NS, "fip")}
    # a boot writes the status many times: none of it matters on a tenant network
    booting = {**srv, "status": {"status": "BUILD", "addresses": {"pod": [{"addr": "10.244.0.1"}]}}}
    assert idx.server_event("MODIFIED", booting, srv) == set()
    # the groups decide the Service's ports
    regrouped = server(groups=["default", "web"])
    assert idx.server_event("MODIFIED", regrouped, srv) == {(NS, "fip")}
    assert idx.server_event("DELETED", regrouped, regrouped) == {(NS, "fip")}
    assert idx.server_event("DELETED", regrouped, None) == {(NS, "fip")}
    # recreated under the same name (a new uid)
    assert idx.server_event("MODIFIED", server(uid="u2"), srv) == {(NS, "fip")}
    # servers nobody names cost a lookup, nothing more
    assert idx.server_event("ADDED", server(name="db"), None) == set()


def test_pod_network_server_address_change_matters():
    idx = FloatingIPIndex()
    idx.floating_ip_event("ADDED", fip(server="web"), None)
    before = server(networks=())
    after = server(networks=(), pod=["10.244.0.7"])
    assert server_view(before) != server_view(after)
    assert idx.server_event("MODIFIED", after, before) == {(NS, "fip")}
    assert idx.server_event("MODIFIED", {**after, "status": {**after["status"], "status": "ACTIVE"}},
                            after) == set()


def test_deleting_the_server_of_a_port_affects_floating_ips_naming_the_port():
    idx = FloatingIPIndex()
    idx.floating_ip_event("ADDED", fip(port="vip"), None)
    idx.port_event("ADDED", port("vip", ["10.0.0.100"], device="web"))
    srv = server(networks=((None, "vip"),))
    assert idx.server_event("ADDED", srv, None) == {(NS, "fip")}
    assert idx.server_event("DELETED", srv, srv) == {(NS, "fip")}
    # once the port is unplugged, that server no longer matters to it
    idx.port_event("MODIFIED", port("vip", ["10.0.0.100"]))
    assert idx.server_event("ADDED", srv, None) == set()


def test_floating_ip_events_keep_the_index_and_say_when_to_sync():
    idx = FloatingIPIndex()
    body = fip(server="web")
    assert idx.floating_ip_event("ADDED", body, None)  # new to the index
    synced = {**body, "status": {"status": "DOWN"}}
    assert not idx.floating_ip_event("MODIFIED", synced, body)  # its own status write
    moved = fip(server="db")
    assert idx.floating_ip_event("MODIFIED", moved, synced)  # names something else now
    assert idx.server_event("ADDED", server(), None) == set()
    assert idx.server_event("ADDED", server(name="db"), None) == {(NS, "fip")}
    assert idx.floating_ip_event("MODIFIED", fip(uid="f9", server="db"), moved)  # recreated
    assert not idx.floating_ip_event("DELETED", moved, moved)
    assert idx.server_event("DELETED", server(name="db"), server(name="db")) == set()


def test_security_group_changes_resync_the_namespace_floating_ips():
    idx = FloatingIPIndex()
    idx.floating_ip_event("ADDED", fip("a", server="web"), None)
    idx.floating_ip_event("ADDED", fip("b", uid="f2", port="vip"), None)
    idx.floating_ip_event("ADDED", fip("c", uid="f3"), None)  # names nothing
    sg = {"metadata": {"name": "web", "namespace": NS, "generation": 1}}
    assert idx.security_group_event(None, sg) == {(NS, "a"), (NS, "b")}
    assert idx.security_group_event("MODIFIED", sg) == set()  # a status write
    sg2 = {"metadata": {**sg["metadata"], "generation": 2}}
    assert idx.security_group_event("MODIFIED", sg2) == {(NS, "a"), (NS, "b")}
    assert idx.security_group_event("DELETED", sg2) == {(NS, "a"), (NS, "b")}
    assert idx.security_group_event("DELETED", sg2) == set()
    other = {"metadata": {"name": "web", "namespace": "elsewhere", "generation": 1}}
    assert idx.security_group_event("ADDED", other) == set()


def test_network_events_resync_the_floating_ips_taking_their_address_from_it():
    idx = FloatingIPIndex()
    idx.floating_ip_event("ADDED", fip("a"), None)  # admin/public
    idx.floating_ip_event("ADDED", fip("b", uid="f2", floatingNetwork="public"), None)  # demo/public
    public = {"metadata": {"name": "public", "namespace": "admin", "generation": 1}}
    assert idx.network_event(None, public) == {(NS, "a")}
    assert idx.network_event("MODIFIED", public) == set()  # the Network controller's status writes
    assert idx.network_event("MODIFIED", {"metadata": {**public["metadata"], "generation": 2}}) == {(NS, "a")}
    assert idx.network_event("ADDED", {"metadata": {"name": "public", "namespace": NS}}) == {(NS, "b")}
    idx.floating_ip_event("DELETED", fip("a"), None)
    assert idx.network_event("DELETED", public) == set()


def test_a_freed_address_resyncs_the_floating_ips_in_error_on_its_network():
    idx = FloatingIPIndex()
    full = {**fip("full", uid="f3"), "status": {"status": "ERROR", "reason": "No more IP addresses"}}
    idx.floating_ip_event("ADDED", full, None)  # admin/public, waiting for room
    idx.floating_ip_event("ADDED", fip("fine", uid="f4"), None)  # admin/public, not in ERROR
    idx.floating_ip_event("ADDED", {**fip("elsewhere", uid="f5", floatingNetwork="other"),
                                    "status": {"status": "ERROR"}}, None)

    def claim(network="public", ns="admin"):
        return {"metadata": {"name": "c", "namespace": ns},
                "data": {"network": network, "subnet": "public-v4", "address": "172.24.4.9"}}

    assert idx.claim_event("DELETED", claim()) == {(NS, "full")}
    assert idx.claim_event("ADDED", claim()) == set()  # taking an address frees nothing
    assert idx.claim_event("DELETED", claim("private", NS)) == set()
    # once it has its address it is no longer waiting
    idx.floating_ip_event("MODIFIED", {**full, "status": {"status": "DOWN"}}, full)
    assert idx.claim_event("DELETED", claim()) == set()


def test_a_floating_ip_coming_to_show_error_is_synced_again():
    """Its sync found the pool full, then another FloatingIP's claim was deleted before the
    ERROR it wrote reached the index: the claim event queued nothing, so the ERROR event itself
    must queue a re-sync (which writes nothing if the pool is still full: no loop)."""
    idx = FloatingIPIndex()
    body = fip("late", uid="f6")
    assert idx.floating_ip_event("ADDED", body, None)
    freed = {"metadata": {"name": "c", "namespace": "admin"},
             "data": {"network": "public", "subnet": "public-v4", "address": "172.24.4.9"}}
    assert idx.claim_event("DELETED", freed) == set()  # not shown in ERROR yet
    error = {**body, "status": {"status": "ERROR", "reason": "No more IP addresses", "observedGeneration": 1}}
    assert idx.floating_ip_event("MODIFIED", error, body)
    # still ERROR (the re-sync found it full again and wrote nothing, or another write): no more
    assert not idx.floating_ip_event("MODIFIED", {**error, "status": {**error["status"], "conditions": []}}, error)
    assert idx.claim_event("DELETED", freed) == {(NS, "late")}
    # DOWN, then ERROR again: synced again
    down = {**body, "status": {"status": "DOWN"}}
    assert not idx.floating_ip_event("MODIFIED", down, error)
    assert idx.floating_ip_event("MODIFIED", error, down)
    assert not idx.floating_ip_event("DELETED", error, error)


# ------------------------------------------------------------------------------ status and Service


def test_only_an_active_association_shows_in_the_status():
    assert status_fields(Association("web", "web-0", "10.0.0.5")) == \
        {"server": "web", "port": "web-0", "fixedIpAddress": "10.0.0.5"}
    # DOWN (a reason) and ERROR (no association at all) clear all three
    cleared = {"server": None, "port": None, "fixedIpAddress": None}
    assert status_fields(Association("web", "web-0", "10.0.0.5", reason="Server web is being deleted.")) == cleared
    assert status_fields(Association()) == cleared


def grouped(body, groups=None, port_security=None):
    body["spec"] = dict(body["spec"])
    if groups is not None:
        body["spec"]["securityGroups"] = list(groups)
    if port_security is not None:
        body["spec"]["portSecurityEnabled"] = port_security
    return body


def test_a_port_named_floating_ip_forwards_what_the_port_s_groups_allow():
    srv = server(networks=((None, "vip"),), groups=["default", "web"])
    vip = grouped(port("vip", ["10.0.0.100"], device="web"), groups=["https"])
    assert service_groups({"port": "vip"}, srv, {"vip": vip}) == ["https"]
    # a port naming no groups has Neutron's default; one with port security off, none
    assert service_groups({"port": "vip"}, srv, {"vip": port("vip", device="web")}) == ["default"]
    assert service_groups({"port": "vip"}, srv, {"vip": grouped(port("vip"), groups=[])}) == []
    assert service_groups({"port": "vip"}, srv, {"vip": grouped(port("vip"), port_security=False)}) == []
    assert service_groups({"port": "vip"}, srv, {}) == []
    # a server-named one: the server's groups
    assert service_groups({"server": "web"}, srv, {"vip": vip}) == ["default", "web"]
    assert service_groups({"server": "web"}, server(), {}) == ["default"]
    assert service_groups({"server": "web"}, None, {}) == []


def test_a_port_s_groups_changing_resyncs_the_floating_ips_naming_it():
    idx = FloatingIPIndex()
    idx.floating_ip_event("ADDED", fip(port="vip"), None)
    vip = port("vip", ["10.0.0.100"], device="web")
    assert idx.port_event("ADDED", vip) == {(NS, "fip")}
    assert idx.port_event("MODIFIED", grouped(port("vip", ["10.0.0.100"], device="web"), groups=["default"])) == set()
    assert idx.port_event("MODIFIED", grouped(port("vip", ["10.0.0.100"], device="web"), groups=["https"])) == \
        {(NS, "fip")}


def test_service_patch_selects_the_server_and_forwards_the_ports_or_holds_the_address():
    web = [{"name": "tcp-80", "protocol": "TCP", "port": 80, "targetPort": 80}]
    selecting = {"selector": {naming.VM_NAME_LABEL: "web"}, "ports": web}
    assert service_patch(selecting, "web", web) == []
    # associated from DOWN: the selector added, the ports replaced
    assert service_patch({"ports": HOLD_ADDRESS}, "web", web) == [
        {"op": "replace", "path": "/spec/ports", "value": web},
        {"op": "add", "path": "/spec/selector", "value": {naming.VM_NAME_LABEL: "web"}}]
    assert service_patch(selecting, "db", web) == [
        {"op": "add", "path": "/spec/selector", "value": {naming.VM_NAME_LABEL: "db"}}]
    # DOWN or ERROR: nothing selected, only the address held
    assert service_patch(selecting, None, []) == [
        {"op": "replace", "path": "/spec/ports", "value": HOLD_ADDRESS},
        {"op": "remove", "path": "/spec/selector"}]
    assert service_patch({"ports": HOLD_ADDRESS, "selector": {}}, None, []) == []
