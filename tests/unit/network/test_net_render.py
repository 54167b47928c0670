"""Renderers: NAD CNI configs per provider type, cloud-init network-config v2, security
group policies, the interfaces annotation and Nova's addresses summary. Every NAD and
MultiNetworkPolicy is validated against the third-party CRD schema."""

import json

import pytest

from kubestack.api.network import NetworkSpec
from kubestack.api.securitygroup import SecurityGroupRule
from kubestack.network import cni, mac, naming, policy
from kubestack.network.interfaces import (
    AllocatedInterface, Route, addresses_summary, interface_addresses_annotation, network_data,
)
from support.schemas import assert_valid

pytestmark = pytest.mark.unit

SUBNETS = [{"name": "v4", "cidr": "10.0.0.0/24"}]


@pytest.mark.parametrize("provider, expect", [
    (None, {"type": "bridge", "bridge": cni.default_bridge("demo", "private"), "ipam": {}}),
    ({"networkType": "bridge", "bridge": "br-private"}, {"type": "bridge", "bridge": "br-private"}),
    ({"networkType": "flat", "physicalNetwork": "physnet1"}, {"type": "bridge", "bridge": "physnet1"}),
    ({"networkType": "vlan", "physicalNetwork": "physnet1", "segmentationId": 101},
     {"type": "bridge", "bridge": "physnet1", "vlan": 101}),
    ({"networkType": "layer2"}, {"type": "ovn-k8s-cni-overlay", "topology": "layer2",
                                 "netAttachDefName": "demo/private"}),
])
def test_nad_config_per_type(provider, expect):
    spec = NetworkSpec.model_validate({"subnets": SUBNETS, "mtu": 1450,
                                       **({"provider": provider} if provider else {})})
    nad = cni.nad("demo", "private", spec, "demo")
    assert_valid(nad)
    conf = json.loads(nad["spec"]["config"])
    assert cni.check_config(nad["spec"]["config"]) == []
    assert conf["cniVersion"] == "0.3.1" and conf["mtu"] == 1450
    assert conf["name"] == "kubestack.demo.private"
    for key, value in expect.items():
        assert conf[key] == value
    if conf["type"] == "bridge":
        assert conf["ipam"] == {} and len(conf["bridge"]) <= 15
        assert "vlan" in conf or provider is None or provider["networkType"] != "vlan"
    else:
        assert "subnets" not in conf and "ipam" not in conf


def test_shared_network_nad_in_another_namespace_keeps_the_logical_name():
    spec = NetworkSpec.model_validate({"subnets": SUBNETS, "shared": True,
                                       "provider": {"networkType": "layer2"}})
    nad = cni.nad("admin", "public", spec, "demo")
    assert_valid(nad)
    assert nad["metadata"] == {**nad["metadata"], "name": "admin.public", "namespace": "demo"}
    conf = json.loads(nad["spec"]["config"])
    assert conf["name"] == "kubestack.admin.public"
    assert conf["netAttachDefName"] == "demo/admin.public"


def test_check_config_catches_broken_configs():
    assert cni.check_config("{") != []
    assert "bridge must be" in " ".join(cni.check_config(json.dumps(
        {"cniVersion": "0.3.1", "name": "x", "type": "bridge", "bridge": "a-very-long-bridge-name", "ipam": {}})))


def iface(**kw):
    base = dict(name="net0", network="demo/private", network_name="private", nad="demo/private",
                port="web-0", mac="fa:16:3e:00:00:01", ips=("10.0.0.5/24", "fd00::5/64"),
                gateway="10.0.0.1", gateways=("10.0.0.1", "fd00::1"),
                routes=(Route("192.168.0.0/16", "10.0.0.254"),), dns=("10.0.0.2",), mtu=1450,
                security_groups=("default",))
    base.update(kw)
    return AllocatedInterface(**base)


def test_cloud_init_v2():
    doc = network_data([iface(), iface(name="net1", mac="fa:16:3e:00:00:02", ips=("10.1.0.5/24",),
                                       gateway="10.1.0.1", gateways=("10.1.0.1",), routes=(), dns=(),
                                       mtu=None)])
    assert doc["version"] == 2
    net0, net1 = doc["ethernets"]["net0"], doc["ethernets"]["net1"]
    assert net0["match"] == {"macaddress": "fa:16:3e:00:00:01"}
    assert net0["addresses"] == ["10.0.0.5/24", "fd00::5/64"]
    assert net0["dhcp4"] is False and net0["mtu"] == 1450
    assert {"to": "0.0.0.0/0", "via": "10.0.0.1"} in net0["routes"]
    assert {"to": "::/0", "via": "fd00::1"} in net0["routes"]
    assert {"to": "192.168.0.0/16", "via": "10.0.0.254"} in net0["routes"]
    assert net0["nameservers"] == {"addresses": ["10.0.0.2"]}
    # one default route per family: the second interface gets none
    assert "routes" not in net1 and "nameservers" not in net1 and "mtu" not in net1


def test_annotation_and_summary():
    ann = json.loads(interface_addresses_annotation([iface()]))
    assert ann == {"net0": {"ips": ["10.0.0.5/24", "fd00::5/64"], "mac": "fa:16:3e:00:00:01"}}
    addresses, summary = addresses_summary([iface()], {"10.0.0.5": ["172.24.4.10"]})
    assert summary == "private=10.0.0.5, 172.24.4.10, fd00::5"
    assert addresses["private"][1] == {"addr": "172.24.4.10", "version": 4, "type": "floating",
                                       "macAddr": "fa:16:3e:00:00:01"}
    assert addresses["private"][2]["version"] == 6


def test_mac_is_stable_local_unicast():
    a = mac.derive_mac("uid-1/0")
    assert a == mac.derive_mac("uid-1/0") != mac.derive_mac("uid-1/1")
    assert a.startswith("fa:16:3e:") and mac.is_locally_administered_unicast(a)
    assert mac.normalise("FA-16-3E-00-00-01") == "fa:16:3e:00:00:01"


def rules(*items):
    return [SecurityGroupRule.model_validate(r) for r in items]


def test_policy_rendering_per_rule_type():
    r = rules(
        {"direction": "ingress", "protocol": "tcp", "portRangeMin": 80, "portRangeMax": 80},
        {"direction": "ingress", "protocol": "tcp", "portRangeMin": 8000, "portRangeMax": 8010,
         "remoteIpPrefix": "203.0.113.7/24"},
        {"direction": "ingress", "ethertype": "IPv6", "protocol": "udp"},
        {"direction": "ingress", "remoteGroup": "db"},
        {"direction": "ingress", "protocol": "icmp"},
        {"direction": "egress", "ethertype": "IPv4"},
    )
    out = policy.render("demo", "web", r, ["web-1", "web-2"], {"db": ["db-1"]},
                        {"db": ["10.0.0.9/24", "fd00::9/64"]}, ["demo/private", "demo/admin.public"])
    np = out.network_policy
    assert np["metadata"]["name"] == "sg-web"
    assert np["spec"]["podSelector"] == {"matchExpressions": [
        {"key": "vm.kubevirt.io/name", "operator": "In", "values": ["web-1", "web-2"]}]}
    assert np["spec"]["policyTypes"] == ["Ingress", "Egress"]
    ingress = np["spec"]["ingress"]
    assert ingress[0] == {"from": [{"ipBlock": {"cidr": "0.0.0.0/0"}}],
                          "ports": [{"protocol": "TCP", "port": 80}]}
    assert ingress[1] == {"from": [{"ipBlock": {"cidr": "203.0.113.0/24"}}],
                          "ports": [{"protocol": "TCP", "port": 8000, "endPort": 8010}]}
    assert ingress[2] == {"from": [{"ipBlock": {"cidr": "::/0"}}], "ports": [{"protocol": "UDP"}]}
    assert ingress[3] == {"from": [{"podSelector": {"matchExpressions": [
        {"key": "vm.kubevirt.io/name", "operator": "In", "values": ["db-1"]}]}}]}
    assert len(ingress) == 4  # icmp is not expressible: not rendered (closed), reported
    assert out.unsupported == ["ingress IPv4 icmp: protocol icmp cannot be expressed by NetworkPolicy"]
    assert np["spec"]["egress"] == [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]

    assert [m["metadata"]["annotations"][naming.POLICY_FOR] for m in out.multi_network_policies] \
        == ["demo/admin.public", "demo/private"]
    for mnp in out.multi_network_policies:
        assert_valid(mnp)
        assert len(mnp["spec"]["ingress"][1]["ports"]) == 11  # 8000-8010, one by one
        # remote group on a tenant network: the member ports addresses of that ethertype
        assert mnp["spec"]["ingress"][3] == {"from": [{"ipBlock": {"cidr": "10.0.0.9/32"}}]}


def test_group_without_members_renders_nothing_and_default_group():
    assert policy.render("demo", "web", [], [], {}, {}, ["demo/private"]).network_policy is None
    r = rules(*policy.default_group_rules())
    out = policy.render("demo", "default", r, ["a"], {"default": ["a"]}, {"default": ["10.0.0.3"]},
                        ["demo/private"])
    spec = out.network_policy["spec"]
    assert spec["egress"] == [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]},
                              {"to": [{"ipBlock": {"cidr": "::/0"}}]}]
    assert spec["ingress"] == [{"from": [{"podSelector": {"matchExpressions": [
        {"key": "vm.kubevirt.io/name", "operator": "In", "values": ["a"]}]}}]}]
    assert_valid(out.multi_network_policies[0])
    assert out.multi_network_policies[0]["spec"]["ingress"] == [
        {"from": [{"ipBlock": {"cidr": "10.0.0.3/32"}}]}]


def test_claim_names_encode_the_address():
    assert naming.claim_name("private", "10.0.0.5") == "ip-10-0-0-5.private"
    assert naming.claim_name("private", "fd00:10::5") == "ip-fd00-10--5.private"
    assert naming.claim_name("private", "fd00:10:0::5") == naming.claim_name("private", "fd00:10::5")
