"""IPAM properties: never a duplicate, always inside the pools, never the gateway or the
network/broadcast address; requested addresses validated as Neutron does."""

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubestack.api.network import Subnet
from kubestack.network import ipam

pytestmark = pytest.mark.unit


def subnet(cidr, **kw):
    version = ipaddress.ip_network(cidr).version
    return ipam.plan(Subnet.model_validate({"name": "s", "cidr": cidr, "ipVersion": version, **kw}))


@st.composite
def subnets(draw):
    v6 = draw(st.booleans())
    if v6:
        prefix = draw(st.integers(min_value=122, max_value=126))
        base = draw(st.integers(min_value=0, max_value=2**32 - 1)) << (128 - 32)
        net = ipaddress.ip_network((base, prefix), strict=False)
    else:
        prefix = draw(st.integers(min_value=26, max_value=30))
        base = draw(st.integers(min_value=0, max_value=2**32 - 1))
        net = ipaddress.ip_network((base, prefix), strict=False)
    hosts = net.num_addresses
    kw = {}
    gw = draw(st.sampled_from(["auto", "none", "pick"]))
    if gw == "pick":
        kw["gatewayIp"] = str(net.network_address + draw(st.integers(1, hosts - 2)))
    else:
        kw["gatewayIp"] = gw
    if draw(st.booleans()):
        a = draw(st.integers(1, hosts - 2))
        b = draw(st.integers(a, hosts - 2))
        kw["allocationPools"] = [{"start": str(net.network_address + a),
                                  "end": str(net.network_address + b)}]
    return subnet(str(net), **kw)


@settings(max_examples=150, deadline=None)
@given(subnets(), st.data())
def test_allocation_is_unique_inside_pools_and_never_reserved(plan, data):
    taken: set[str] = set()
    # some addresses already taken by others, anywhere in the pools
    pool_ips = list(ipam.iter_free(plan))
    if pool_ips:
        taken |= set(data.draw(st.lists(st.sampled_from(pool_ips), max_size=8)))
    allocated = []
    while True:
        ip = ipam.next_free(plan, taken)
        if ip is None:
            break
        assert ip not in taken
        value = int(ipaddress.ip_address(ip))
        assert ipam.in_pools(plan, value)
        assert ipaddress.ip_address(ip) in plan.cidr
        assert value not in plan.reserved
        if plan.gateway is not None:
            assert ip != str(plan.gateway)
        taken.add(ip)
        allocated.append(ip)
    assert len(allocated) == len(set(allocated))
    # exhausted: every pool address except reserved ones is taken
    assert len(taken) == ipam.pool_size(plan)


def test_default_pool_excludes_network_broadcast_and_gateway():
    p = subnet("10.0.0.0/29")
    assert list(ipam.iter_free(p)) == [f"10.0.0.{i}" for i in range(2, 7)]
    assert ipam.pool_size(p) == 5
    assert str(p.gateway) == "10.0.0.1"


def test_gateway_in_the_middle_splits_the_pool():
    p = subnet("10.0.0.0/29", gatewayIp="10.0.0.4")
    assert list(ipam.iter_free(p)) == ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.5", "10.0.0.6"]


def test_no_gateway_and_explicit_pools():
    p = subnet("192.168.1.0/24", gatewayIp="none",
               allocationPools=[{"start": "192.168.1.200", "end": "192.168.1.201"}])
    assert p.gateway is None
    assert list(ipam.iter_free(p)) == ["192.168.1.200", "192.168.1.201"]


def test_ipv6_excludes_subnet_router_anycast_and_is_lazy_on_a_64():
    p = subnet("fd00:10::/64")
    assert str(p.gateway) == "fd00:10::1"
    assert ipam.next_free(p) == "fd00:10::2"
    assert ipam.next_free(p, {"fd00:10::2"}) == "fd00:10::3"
    assert ipam.pool_size(p) == 2**64 - 2


def test_requested_addresses():
    p = subnet("10.0.0.0/24")
    assert ipam.check_requested(p, "10.0.0.50") == "10.0.0.50"
    for bad, why in [("10.0.1.5", "not a valid IP for the specified subnet"),
                     ("10.0.0.1", "gateway"), ("10.0.0.0", "network or broadcast"),
                     ("10.0.0.255", "network or broadcast"), ("fd00::5", "not a valid IP"),
                     ("nonsense", "not a valid IP address")]:
        with pytest.raises(ipam.IPAMError, match=why):
            ipam.check_requested(p, bad)


def test_bad_pools_are_reported():
    p = subnet("10.0.0.0/24", allocationPools=[{"start": "10.0.0.50", "end": "10.0.0.60"},
                                               {"start": "10.0.0.55", "end": "10.0.0.70"}])
    assert "overlap" in ipam.check_pools(p)
    p = subnet("10.0.0.0/24", allocationPools=[{"start": "10.0.0.60", "end": "10.0.0.50"}])
    assert "starts after it ends" in ipam.check_pools(p)


def test_subnet_for_and_prefix():
    v4, v6 = subnet("10.0.0.0/24"), subnet("fd00::/64")
    assert ipam.subnet_for([v4, v6], "fd00::9") is v6
    assert ipam.subnet_for([v4, v6], "10.1.0.1") is None
    assert ipam.with_prefix(v4, "10.0.0.9") == "10.0.0.9/24"
