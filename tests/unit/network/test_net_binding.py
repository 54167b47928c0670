"""Ports and Routers follow what they name (pure): a Port's binding to the server its deviceId
names (unbound in the status when the server goes, bound again when one plugging it comes), a
Router's check of its networks, and which Ports and Routers a Network, Server, Port or Router
event re-syncs (those whose shown state it changes, and only those); a Port in ERROR for an
address that is taken is re-synced when an IP claim it waits for is deleted."""

import pytest

from kubestack.network import naming
from kubestack.network.binding import (
    NOT_REALISED, UNKNOWN, Binding, Freed, PortIndex, RouterIndex, bind, check_router, freed_address,
    port_facts, router_networks, router_state, server_view, waits_for,
)

pytestmark = pytest.mark.unit

NS = "demo"


def network(name="private", ns=NS, uid=None, generation=1, deleting=False, subnets=("private-v4",),
            **spec):
    meta = {"name": name, "namespace": ns, "uid": uid or f"n-{ns}-{name}", "generation": generation}
    if deleting:
        meta["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    cidrs = iter(f"10.{i}.0.0/24" for i in range(1, 100))
    return {"apiVersion": "kubestack.io/v1alpha1", "kind": "Network", "metadata": meta,
            "spec": {"subnets": [{"name": s, "cidr": next(cidrs)} for s in subnets], **spec},
            "status": {"status": "ACTIVE"}}


def server(name="web", uid="s1", networks=(("private", None),), deleting=False, status=None):
    meta = {"name": name, "namespace": NS, "uid": uid}
    if deleting:
        meta["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    spec = {"flavor": "m1.small", "image": "cirros",
            "networks": [{k: v for k, v in (("network", n), ("port", p)) if v} for n, p in networks]}
    return {"metadata": meta, "spec": spec, "status": status or {}}


def port(name="vip", device=None, owner=None, state=None, shown=None, net="private", deleting=False):
    """A Port; `owner`: (server, uid) of an operator-made one; `state`/`shown`: the status and
    status.server the Port controller wrote (state None: never synced)."""
    meta = {"name": name, "namespace": NS, "uid": f"p-{name}"}
    if owner:
        meta["ownerReferences"] = [{"kind": "Server", "name": owner[0], "uid": owner[1]}]
        meta["labels"] = {naming.LABEL_SERVER: owner[0]}
    if deleting:
        meta["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    spec = {"network": net, "fixedIps": [{"subnet": "private-v4", "ipAddress": "10.0.0.5"}]}
    if device:
        spec["deviceId"] = device
    status = {}
    if state:
        status = {"status": state, "observedGeneration": 1, **({"server": shown} if shown else {})}
    return {"metadata": meta, "spec": spec, "status": status}


# ------------------------------------------------------------------------------ binding


def test_a_port_naming_no_server_is_not_bound_and_says_nothing():
    assert bind(port(), None) == Binding()
    assert bind(port(), server()) == Binding()


def test_a_user_port_is_bound_while_its_server_exists_and_plugs_it():
    srv = server(networks=(("", "vip"),))
    assert bind(port(device="web"), srv) == Binding(server="web")
    # the server is gone: unbound, the spec's deviceId kept, the reason says so
    assert bind(port(device="web"), None) == Binding(
        reason="Server web could not be found: port vip is not bound.")
    assert bind(port(device="web"), server(name="other", networks=(("", "vip"),))).reason == \
        "Server web could not be found: port vip is not bound."
    assert bind(port(device="web"), server(networks=(("", "vip"),), deleting=True)) == Binding(
        reason="Server web is being deleted: port vip is not bound.")
    # a server of that name that does not plug it (a namesake, or the port detached)
    assert bind(port(device="web"), server()) == Binding(
        reason="Server web does not use port vip: it is not bound.")


def test_an_operator_made_port_is_bound_to_its_own_server_only():
    srv = server(uid="s1")
    own = port(naming.port_name("web", 0), device="web", owner=("web", "s1"))
    assert bind(own, srv) == Binding(server="web")
    # a namesake server (another uid): the port was its predecessor's, on its way out
    assert bind(own, server(uid="s2")).reason == "Port web-0 was made for an earlier server web: it is not bound."


# ------------------------------------------------------------------------------ routers


def test_router_is_checked_against_its_networks_as_they_are_now():
    spec = {"externalGateway": {"network": "admin/public"},
            "interfaces": [{"network": "private", "subnet": "private-v4"}]}
    assert router_networks(spec, NS) == {("admin", "public"), (NS, "private")}
    public = network("public", ns="admin", external=True, shared=True)
    private = network("private")
    # nothing exists yet: ERROR naming the gateway network, waiting for it (not Stalled)
    assert router_state(spec, NS, {}) == ("ERROR", "Network admin/public could not be found.", False)
    assert router_state(spec, NS, {("admin", "public"): public}) == (
        "ERROR", "Network private could not be found.", False)
    # both exist: modelled, not realised
    nets = {("admin", "public"): public, (NS, "private"): private}
    assert router_state(spec, NS, nets) == ("DOWN", NOT_REALISED, False)
    # a gateway that is not external (Stalled: the network's spec must change), a missing
    # subnet and a deleting network (waited for)
    not_external = check_router(spec, NS, {**nets, ("admin", "public"): network("public", ns="admin", shared=True)})
    assert "not an external network" in not_external.message and not_external.stalled
    missing = check_router(spec, NS, {**nets, (NS, "private"): network("private", subnets=("other",))})
    assert (missing.message, missing.stalled) == (f"Subnet private-v4 could not be found on network {NS}/private.",
                                                  False)
    deleting = check_router(spec, NS, {**nets, (NS, "private"): network(deleting=True)})
    assert "is being deleted" in deleting.message and not deleting.stalled
    # another project's private network is refused for an interface: Stalled
    other = {"interfaces": [{"network": "admin/secret", "subnet": "private-v4"}]}
    state, reason, stalled = router_state(other, NS, {("admin", "secret"): network("secret", ns="admin")})
    assert (state, stalled) == ("ERROR", True) and "private network of project admin" in reason
    assert router_state({}, NS, {}) == ("DOWN", NOT_REALISED, False)


# ------------------------------------------------------------------------------ the port index


def servers_of(*bodies):
    """A Store-like lookup of the servers that exist."""
    known = {(NS, b["metadata"]["name"]): b for b in bodies}
    return lambda ns, name: known.get((ns, name))


def test_a_port_in_error_is_synced_when_its_network_appears():
    index = PortIndex(servers_of())
    assert index.port_event("ADDED", port()) is False  # not synced yet: kopf's handler is on it
    assert index.port_event("MODIFIED", port(state="ERROR")) is False  # no network yet
    assert index.network_event("ADDED", network()) == {(NS, "vip")}
    # a status write of the network (its usage timer) changes nothing ports read
    refreshed = network()
    refreshed["status"]["subnets"] = [{"name": "private-v4", "allocated": 3}]
    assert index.network_event("MODIFIED", refreshed) == set()
    # the port showed ERROR only after the network event: it is synced on its own event
    late = PortIndex(servers_of())
    late.port_event("ADDED", port())
    assert late.network_event("ADDED", network()) == {(NS, "vip")}  # unsynced: queued (kopf may be mid-sync)
    assert late.port_event("MODIFIED", port(state="ERROR")) is True
    # a port of another network is not concerned
    assert late.network_event("ADDED", network("other")) == set()


def test_a_network_listed_at_a_restart_queues_only_the_ports_waiting_for_it():
    index = PortIndex(servers_of(server(networks=(("", "vip"),))))
    index.port_event(None, port("vip", device="web", state="ACTIVE", shown="web"))
    index.port_event(None, port("free", state="DOWN"))
    index.port_event(None, port("waiting", state="ERROR", net="later"))
    assert index.network_event(None, network()) == set()
    assert index.network_event(None, network("later")) == {(NS, "waiting")}


def test_a_network_that_goes_or_changes_resyncs_every_port_on_it_but_deleting_ones():
    index = PortIndex(servers_of())
    index.network_event(None, network())
    index.port_event(None, port("a", state="DOWN"))
    index.port_event(None, port("b", state="ERROR"))
    index.port_event(None, port("c", state="DOWN", deleting=True))
    assert index.network_event("MODIFIED", network(generation=2)) == {(NS, "a"), (NS, "b")}
    assert index.network_event("MODIFIED", network(generation=2, deleting=True)) == {(NS, "a"), (NS, "b")}
    assert index.network_event("DELETED", network(generation=2, deleting=True)) == {(NS, "a"), (NS, "b")}
    index.port_event("DELETED", port("a", state="DOWN"))
    assert index.network_event("ADDED", network(uid="new")) == {(NS, "b")}


def test_deleting_a_server_unbinds_the_users_ports_not_its_own():
    srv = server(networks=(("private", None), ("", "vip")))
    index = PortIndex(servers_of(srv))
    index.port_event(None, port("vip", device="web", state="ACTIVE", shown="web"))
    index.port_event(None, port("web-0", device="web", owner=("web", "s1"), state="ACTIVE", shown="web"))
    # the boot writes the server's status many times: nothing to do
    assert index.server_event("MODIFIED", server(networks=(("private", None), ("", "vip")),
                                                 status={"status": "ACTIVE"}), srv) == set()
    # being deleted, then deleted: the user's port is unbound; web-0 goes with the server
    deleting = server(networks=(("private", None), ("", "vip")), deleting=True)
    assert index.server_event("MODIFIED", deleting, srv) == {(NS, "vip")}
    assert index.server_event("DELETED", deleting, deleting) == {(NS, "vip")}


def test_a_server_plugging_a_port_binds_it_again():
    index = PortIndex(servers_of())
    index.port_event(None, port("vip", device="web", state="DOWN"))
    index.port_event(None, port("spare", device="web", state="DOWN"))
    srv = server(networks=(("", "vip"),))
    assert index.server_event("ADDED", srv, None) == {(NS, "vip")}  # spare is not plugged: stays
    # a server no port names costs a lookup, nothing else
    assert index.server_event("ADDED", server("db"), None) == set()
    # the listing at a restart queues nothing when every port shows its binding
    quiet = PortIndex(servers_of())
    quiet.port_event(None, port("vip", device="web", state="ACTIVE", shown="web"))
    quiet.port_event(None, port("spare", device="web", state="DOWN"))
    assert quiet.server_event("ADDED", srv, None) == set()


def test_a_port_event_catches_a_server_change_the_index_saw_first():
    srv = server(networks=(("", "vip"),))
    # the server went before the port's ACTIVE status was seen: the port's event queues it
    index = PortIndex(servers_of())
    index.port_event("ADDED", port("vip", device="web"))
    assert index.server_event("DELETED", srv, srv) == {(NS, "vip")}  # unsynced: queued, then skipped
    assert index.port_event("MODIFIED", port("vip", device="web", state="ACTIVE", shown="web")) is True
    # the server came before the port's DOWN status was seen
    back = PortIndex(servers_of(srv))
    assert back.port_event("MODIFIED", port("vip", device="web", state="DOWN")) is True
    # in step, or the servers not listed yet: nothing
    assert back.port_event("MODIFIED", port("vip", device="web", state="ACTIVE", shown="web")) is False
    assert PortIndex(lambda ns, name: UNKNOWN).port_event(
        "MODIFIED", port("vip", device="web", state="DOWN")) is False
    # an operator-made port whose server is gone is the garbage collector's
    assert PortIndex(servers_of()).port_event(
        "MODIFIED", port("web-0", device="web", owner=("web", "s1"), state="ACTIVE", shown="web")) is False


def test_server_view_ignores_status_writes():
    srv = server()
    assert server_view(srv) == server_view(server(status={"status": "ACTIVE", "host": "compute-1"}))
    assert server_view(srv) != server_view(server(uid="s2"))
    assert server_view(srv) != server_view(server(networks=(("private", None), ("", "vip"))))
    assert server_view(None) is None


# ------------------------------------------------------------------------------ the router index


def router(name="r1", state=None, deleting=False, **spec):
    meta = {"name": name, "namespace": NS, "uid": f"r-{name}"}
    if deleting:
        meta["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    status = {"status": state, "observedGeneration": 1} if state else {}
    return {"metadata": meta, "spec": spec, "status": status}


GW = {"externalGateway": {"network": "admin/public"},
      "interfaces": [{"network": "private", "subnet": "private-v4"}]}


def test_a_router_is_checked_again_when_its_networks_appear_or_go():
    index = RouterIndex()
    assert index.router_event("ADDED", router(**GW)) is False
    assert index.router_event("MODIFIED", router(state="ERROR", **GW)) is False  # nothing exists
    assert index.network_event("ADDED", network("public", ns="admin", external=True)) == {(NS, "r1")}
    # still ERROR (the interface's network is missing): the router's event alone does not queue it
    assert index.router_event("MODIFIED", router(state="ERROR", **GW)) is False
    assert index.network_event("ADDED", network()) == {(NS, "r1")}
    index.router_event("MODIFIED", router(state="DOWN", **GW))
    # a status write changes nothing; a network that goes, or changes, does
    assert index.network_event("MODIFIED", network()) == set()
    assert index.network_event("MODIFIED", network(generation=2)) == {(NS, "r1")}
    assert index.network_event("DELETED", network(generation=2)) == {(NS, "r1")}
    # a router deleted is forgotten
    index.router_event("DELETED", router(state="DOWN", **GW))
    assert index.network_event("ADDED", network()) == set()


def test_a_router_showing_error_after_its_networks_appeared_is_queued_by_its_own_event():
    index = RouterIndex()
    index.network_event(None, network("public", ns="admin", external=True))
    index.network_event(None, network())
    assert index.router_event("MODIFIED", router(state="ERROR", **GW)) is True
    # at a restart, valid routers are not queued by the networks' listing
    quiet = RouterIndex()
    quiet.router_event(None, router(state="DOWN", **GW))
    assert quiet.network_event(None, network()) == set()
    assert quiet.router_event(None, router("gone", state="DOWN", deleting=True, **GW)) is False


# ------------------------------------------------------------------------------ addresses given back


def claim(address, subnet="private-v4", net="private", ns=NS):
    """An IP claim as `ports._claim_body` writes it (in the network's namespace)."""
    return {"metadata": {"name": naming.claim_name(net, address), "namespace": ns,
                         "labels": {naming.LABEL_IP_CLAIM: "true", naming.LABEL_SUBNET: subnet}},
            "data": {"address": address, "subnet": subnet, "network": f"{ns}/{net}"}}


def asking(name, *fixed_ips, state="ERROR", net="private", deleting=False):
    """A user's Port whose spec asks for `fixed_ips` ((subnet, address) pairs), as written."""
    body = port(name, state=state, net=net, deleting=deleting)
    body["spec"]["fixedIps"] = [{k: v for k, v in (("subnet", s), ("ipAddress", a)) if v} for s, a in fixed_ips]
    return body


def test_a_claim_deleted_gives_back_its_address():
    assert freed_address("DELETED", claim("10.0.0.5")) == Freed((NS, "private"), "private-v4", "10.0.0.5")
    assert freed_address("ADDED", claim("10.0.0.5")) is None  # a boot's claim: nothing given back
    assert freed_address(None, claim("10.0.0.5")) is None
    assert freed_address("DELETED", {"metadata": {"name": "x", "namespace": NS}}) is None
    # a shared network's claim names its network with the namespace
    assert freed_address("DELETED", claim("10.9.0.5", net="shared", ns="admin")).network == ("admin", "shared")


def test_a_port_waits_for_the_address_it_asks_for_or_any_of_its_subnet():
    freed = Freed((NS, "private"), "private-v4", "10.0.0.5")
    assert waits_for(port_facts(asking("a", (None, "10.0.0.5"))), freed)
    assert waits_for(port_facts(asking("a", ("private-v4", "10.0.0.5"))), freed)
    assert not waits_for(port_facts(asking("a", (None, "10.0.0.6"))), freed)
    assert waits_for(port_facts(asking("a", ("private-v4", None))), freed)  # its pool was full
    assert not waits_for(port_facts(asking("a", ("other-v4", None))), freed)
    assert waits_for(port_facts(asking("a")), freed)  # no fixedIps: the first subnet's, any
    v6 = Freed((NS, "private"), "private-v6", "fd00::5")
    assert waits_for(port_facts(asking("a", (None, "fd00:0::0005"))), v6)


def test_ports_in_error_are_synced_when_an_address_they_wait_for_is_given_back():
    index = PortIndex(servers_of())
    index.network_event(None, network(subnets=("private-v4", "other-v4")))
    index.port_event(None, port("holder", state="DOWN"))
    index.port_event(None, asking("same-ip", (None, "10.0.0.5")))
    index.port_event(None, asking("pool-full", ("private-v4", None)))
    index.port_event(None, asking("any"))
    index.port_event(None, asking("other-ip", (None, "10.0.0.6")))
    index.port_event(None, asking("other-subnet", ("other-v4", None)))
    index.port_event(None, asking("elsewhere", (None, "10.0.0.5"), net="later"))
    index.port_event(None, asking("going", (None, "10.0.0.5"), deleting=True))
    index.port_event("ADDED", asking("new", (None, "10.0.0.5"), state=None))  # kopf's create handler's
    # a claim made (a boot) gives nothing back; the holder's claim deleted does
    assert index.claim_event("ADDED", claim("10.0.0.9")) == set()
    assert index.claim_event("DELETED", claim("10.0.0.5")) == \
        {(NS, "same-ip"), (NS, "pool-full"), (NS, "any")}
    assert index.claim_event("DELETED", claim("10.1.0.7", subnet="other-v4")) == \
        {(NS, "any"), (NS, "other-subnet")}
    assert index.claim_event("DELETED", claim("10.0.0.5", net="other")) == set()
    # a port no longer in ERROR, or gone, no longer waits
    index.port_event("MODIFIED", asking("same-ip", (None, "10.0.0.5"), state="DOWN"))
    index.port_event("DELETED", asking("any"))
    assert index.claim_event("DELETED", claim("10.0.0.5")) == {(NS, "pool-full")}


def test_a_port_on_a_shared_network_waits_for_that_network_s_addresses():
    index = PortIndex(servers_of())
    index.port_event(None, asking("vip", (None, "10.9.0.5"), net="admin/shared"))
    assert index.claim_event("DELETED", claim("10.9.0.5", net="shared", ns="admin")) == {(NS, "vip")}
    assert index.claim_event("DELETED", claim("10.9.0.5", net="shared")) == set()
