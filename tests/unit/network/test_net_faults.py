"""Which network faults are kstatus' Stalled (pure): a fault something still to come cures (a
network or subnet not applied yet, a network being deleted) waits, one only a spec change cures
(another project's private network, a network that is not external, invalid pools, an address
its subnet never hands out) is Stalled; the conditions every status write of the network kinds
goes through set Stalled with Ready's reason and message, and drop it once the fault waits or
the object recovers."""

import pytest

from kubestack.api.network import Network
from kubestack.api.port import FixedIP
from kubestack.k8s.conditions import find_condition
from kubestack.network.faults import NetworkFault, error_conditions, ready_conditions
from kubestack.network.ports import PortError, _requests
from kubestack.network.resolve import NetworkRefError, Purpose, check, plans_of

pytestmark = pytest.mark.unit

NS = "demo"


def network(name="private", ns=NS, deleting=False, pools=None, **spec):
    meta = {"name": name, "namespace": ns, "uid": f"n-{ns}-{name}", "generation": 1}
    if deleting:
        meta["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    subnet = {"name": "private-v4", "cidr": "10.0.0.0/24"}
    if pools:
        subnet["allocationPools"] = [{"start": s, "end": e} for s, e in pools]
    return {"apiVersion": "kubestack.io/v1alpha1", "kind": "Network", "metadata": meta,
            "spec": {"subnets": [subnet], **spec}}


def fault(call) -> NetworkFault:
    with pytest.raises(NetworkFault) as info:
        call()
    return info.value


def test_a_network_still_to_come_waits_and_a_refused_one_is_stalled():
    missing = fault(lambda: check(None, "private", NS))
    assert (missing.code, missing.waiting, missing.stalled) == (404, True, False)
    assert fault(lambda: check(network(deleting=True), "private", NS)).waiting
    # who may use a network is its owner's spec: another project's private one, or one that
    # is not external for a floating IP or a router gateway
    private = fault(lambda: check(network(ns="admin"), "admin/private", NS, Purpose.PORT))
    assert isinstance(private, NetworkRefError) and (private.code, private.stalled) == (403, True)
    assert fault(lambda: check(network(ns="admin", shared=True), "admin/private", NS, Purpose.FLOATING)).stalled
    assert fault(lambda: check(network(), "private", NS, Purpose.GATEWAY)).stalled
    # a network named whose pools are invalid is Stalled, for it and for what names it
    bad = network(pools=[("10.0.0.20", "10.0.0.10")])
    assert fault(lambda: plans_of(Network.from_k8s(bad))).stalled
    assert fault(lambda: check(bad, "private", NS)).stalled


def test_a_subnet_still_to_come_waits_and_an_impossible_address_is_stalled():
    net = check(network(), "private", NS)

    def requests(*fixed: FixedIP) -> PortError:
        return fault(lambda: _requests(net, list(fixed)))

    assert requests(FixedIP(subnet="second")).waiting
    # no subnet holds it yet: one holding it may still be added to the network
    assert requests(FixedIP(ip_address="10.9.0.5")).waiting
    for fixed in ([FixedIP(ip_address="10.0.0.1")],  # the gateway
                  [FixedIP(ip_address="10.0.0.255")],  # the broadcast address
                  [FixedIP(subnet="private-v4", ip_address="10.9.0.5")],  # outside that subnet's CIDR
                  [FixedIP(ip_address="10.0.0.5"), FixedIP(ip_address="10.0.0.5")]):
        assert requests(*fixed).stalled, fixed


def test_conditions_carry_stalled_only_for_a_fault_that_does_not_wait():
    def types(conditions):
        return {c["type"]: (c["status"], c["reason"], c["message"]) for c in conditions}

    stalled = error_conditions(None, "PortError", PortError("IP address 10.0.0.1 is the gateway"), 3)
    assert types(stalled) == {"Ready": ("False", "PortError", "IP address 10.0.0.1 is the gateway"),
                              "Stalled": ("True", "PortError", "IP address 10.0.0.1 is the gateway")}
    assert find_condition(stalled, "Ready")["observedGeneration"] == 3
    # the fault turns into one that waits: Stalled goes, Ready stays False
    waiting = error_conditions(stalled, "PortError", PortError("Network private could not be found.", 404,
                                                               waiting=True), 3)
    assert types(waiting) == {"Ready": ("False", "PortError", "Network private could not be found.")}
    # recovered: Ready, no Stalled
    assert types(ready_conditions(stalled, True, "Allocated", "", 4)) == {"Ready": ("True", "Allocated", "")}
