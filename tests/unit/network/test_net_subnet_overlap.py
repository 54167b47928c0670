"""Neutron refuses a subnet whose CIDR overlaps another subnet of the same network. The CRD's
admission rule refuses it (tests/integration/test_crd_admission.py); a Network stored before
that rule is refused by the pure plan validation instead: ERROR with the admission's message,
Stalled (only its spec cures it), for it and for the ports that name it."""

from __future__ import annotations

import copy
import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubestack.api.network import Network, Subnet
from kubestack.controllers import network as network_ctl
from kubestack.k8s import objects
from kubestack.k8s.conditions import find_condition
from kubestack.network import ipam
from kubestack.network.resolve import NetworkRefError, check, plans_of

pytestmark = pytest.mark.unit

NS = "demo"


def plan(name: str, cidr: str) -> ipam.SubnetPlan:
    version = ipaddress.ip_network(cidr).version
    return ipam.plan(Subnet.model_validate({"name": name, "cidr": cidr, "ipVersion": version}))


def plans(*cidrs: str) -> list[ipam.SubnetPlan]:
    return [plan(f"s{i}", c) for i, c in enumerate(cidrs)]


def overlap_message(requested: str, name: str, other: str, other_name: str) -> str:
    """The admission rule's message (its messageExpression), word for word."""
    return (f"Invalid input for operation: Requested subnet with cidr: {requested} (subnet {name}) "
            f"overlaps with another subnet of this network ({other_name}: {other}).")


def network(*cidrs: str) -> dict:
    return {"apiVersion": "kubestack.io/v1alpha1", "kind": "Network",
            "metadata": {"name": "private", "namespace": NS, "uid": "n1", "generation": 3},
            "spec": {"subnets": [{"name": f"s{i}", "cidr": c, "ipVersion": ipaddress.ip_network(c).version}
                                 for i, c in enumerate(cidrs)]}}


@pytest.mark.parametrize(("cidrs", "expected"), [
    (("10.0.0.0/24", "10.0.0.128/25"), ("10.0.0.128/25", "s1", "10.0.0.0/24", "s0")),
    (("10.0.0.128/25", "10.0.0.0/24"), ("10.0.0.0/24", "s1", "10.0.0.128/25", "s0")),
    (("10.0.0.0/24", "10.0.0.0/24"), ("10.0.0.0/24", "s1", "10.0.0.0/24", "s0")),
    (("fd00:10::/64", "10.0.0.0/24", "fd00:10::/48"), ("fd00:10::/48", "s2", "fd00:10::/64", "s0")),
    # the first subnet that overlaps an earlier one is the requested one
    (("10.0.0.0/16", "10.1.0.0/16", "10.1.2.0/24", "10.0.3.0/24"), ("10.1.2.0/24", "s2", "10.1.0.0/16", "s1")),
], ids=["inside", "around", "identical", "ipv6", "first-pair"])
def test_overlapping_subnets_are_refused_with_neutrons_words(cidrs, expected):
    assert ipam.check_overlaps(plans(*cidrs)) == overlap_message(*expected)


@pytest.mark.parametrize("cidrs", [
    ("10.0.0.0/24", "10.0.1.0/24"),
    ("10.0.0.0/25", "10.0.0.128/25"),
    ("10.0.0.0/24", "fd00:10::/64"),
    ("0.0.0.0/0", "::/0"),
    tuple(f"10.{i}.0.0/16" for i in range(16)),
    (),
], ids=["adjacent", "halves", "ipv4-ipv6", "defaults", "sixteen", "none"])
def test_subnets_apart_are_fine(cidrs):
    assert ipam.check_overlaps(plans(*cidrs)) is None


@st.composite
def cidr_lists(draw):
    out = []
    for _ in range(draw(st.integers(0, 6))):
        v6 = draw(st.booleans())
        bits = 128 if v6 else 32
        prefix = draw(st.integers(bits - 12, bits))  # small address space: overlaps are common
        base = draw(st.integers(0, 2**12 - 1))
        net = ipaddress.IPv6Network if v6 else ipaddress.IPv4Network
        out.append(str(net((base, prefix), strict=False)))
    return out


@given(cidr_lists())
def test_refused_exactly_when_two_subnets_share_an_address(cidrs):
    def span(c):
        n = ipaddress.ip_network(c)
        return n.version, int(n.network_address), int(n.broadcast_address)

    spans = [span(c) for c in cidrs]
    share = any(a[0] == b[0] and a[1] <= b[2] and b[1] <= a[2]
                for i, a in enumerate(spans) for b in spans[:i])
    assert (ipam.check_overlaps(plans(*cidrs)) is not None) == share


def test_a_network_stored_before_the_rule_is_stalled_for_it_and_its_ports():
    bad = network("10.0.0.0/24", "10.0.0.128/25")
    with pytest.raises(NetworkRefError) as info:
        plans_of(Network.from_k8s(bad))
    assert info.value.stalled and info.value.message == \
        "Network demo/private: " + overlap_message("10.0.0.128/25", "s1", "10.0.0.0/24", "s0")
    with pytest.raises(NetworkRefError) as info:
        check(bad, "private", NS)  # a port naming it
    assert info.value.stalled
    assert len(plans_of(Network.from_k8s(network("10.0.0.0/24", "10.0.1.0/24")))) == 2


class FakeAPI:
    """One Network; the controller's status patches applied to it (its ERROR path reads
    nothing else)."""

    def __init__(self, body: dict) -> None:
        self.body = copy.deepcopy(body)
        self.events: list[tuple] = []

    def get(self, gvr, namespace, name):
        return copy.deepcopy(self.body)

    def patch_status(self, plural, ns, name, patch):
        status = self.body.setdefault("status", {})
        for key, value in patch.items():
            if value is None:
                status.pop(key, None)
            else:
                status[key] = copy.deepcopy(value)


def test_the_controller_puts_such_a_network_in_error_stalled(monkeypatch):
    api = FakeAPI(network("10.0.0.0/24", "10.0.0.0/24"))
    monkeypatch.setattr(objects, "get", api.get)
    monkeypatch.setattr(network_ctl.k8s, "api", lambda: None)
    monkeypatch.setattr(network_ctl, "Kube", lambda _api: api)
    monkeypatch.setattr(network_ctl, "post", lambda *a: api.events.append(a[1:]))
    network_ctl.network_sync(namespace=NS, name="private", body=api.body, logger=None)
    status = api.body["status"]
    message = "Network demo/private: " + overlap_message("10.0.0.0/24", "s1", "10.0.0.0/24", "s0")
    assert (status["status"], status["reason"], status["observedGeneration"]) == ("ERROR", message, 3)
    ready, stalled = (find_condition(status["conditions"], t) for t in ("Ready", "Stalled"))
    assert (ready["status"], ready["reason"], ready["message"]) == ("False", "InvalidSubnet", message)
    assert (stalled["status"], stalled["reason"]) == ("True", "InvalidSubnet")
    assert api.events == [("Warning", "InvalidSubnet", message)]
