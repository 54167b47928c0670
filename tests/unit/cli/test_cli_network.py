"""The Neutron verbs (kubestack.cli.network): argument parsing, the exact objects and patches
each command sends (to an in-memory CustomObjectsApi), and list / show output."""

from __future__ import annotations

import copy
import json
import re

import pytest
from kubernetes.client.rest import ApiException

from kubestack.cli import build_parser, main
from kubestack.cli import network as net_cli
from kubestack.cli.output import CliError

NS = "demo"


def merge(target: dict, patch: dict) -> dict:
    """RFC 7386 JSON merge patch, what the API server applies to a dict patch body."""
    out = copy.deepcopy(target)
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


class FakeCustom:
    """CustomObjectsApi over a dict: resourceVersions, merge patches with the resourceVersion
    precondition (409 on a stale one), 404s; every write recorded in `calls`."""

    def __init__(self, *objects: tuple[str, dict]):
        self.store: dict[tuple[str, str, str], dict] = {}
        self.calls: list[tuple] = []
        self.before_patch: list = []  # callables run before the next patches (a concurrent writer)
        self.rv = 0
        for plural, obj in objects:
            self.put(plural, obj)

    def put(self, plural: str, obj: dict) -> dict:
        self.rv += 1
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        meta.setdefault("namespace", NS)
        meta.setdefault("uid", f"uid-{meta['name']}")
        meta["resourceVersion"] = str(self.rv)
        self.store[(plural, meta["namespace"], meta["name"])] = obj
        return copy.deepcopy(obj)

    def get_namespaced_custom_object(self, group, version, ns, plural, name):
        assert (group, version) == ("kubestack.io", "v1alpha1")
        if (plural, ns, name) not in self.store:
            raise ApiException(status=404, reason="Not Found")
        return copy.deepcopy(self.store[(plural, ns, name)])

    def list_namespaced_custom_object(self, group, version, ns, plural):
        return {"items": [copy.deepcopy(o) for (p, n, _), o in sorted(self.store.items()) if (p, n) == (plural, ns)]}

    def create_namespaced_custom_object(self, group, version, ns, plural, body, field_validation=None):
        assert field_validation == "Strict"
        self.calls.append(("create", plural, copy.deepcopy(body)))
        if (plural, ns, body["metadata"]["name"]) in self.store:
            raise ApiException(status=409, reason="AlreadyExists")
        return self.put(plural, body)

    def patch_namespaced_custom_object(self, group, version, ns, plural, name, body, field_validation=None):
        assert field_validation == "Strict"
        self.calls.append(("patch", plural, name, copy.deepcopy(body)))
        if self.before_patch:
            self.before_patch.pop(0)(self)
        current = self.get_namespaced_custom_object(group, version, ns, plural, name)
        wanted = (body.get("metadata") or {}).get("resourceVersion")
        if wanted and wanted != current["metadata"]["resourceVersion"]:
            raise ApiException(status=409, reason="Conflict")
        return self.put(plural, merge(current, body))

    def delete_namespaced_custom_object(self, group, version, ns, plural, name, **kwargs):
        self.calls.append(("delete", plural, name))
        if self.store.pop((plural, ns, name), None) is None:
            raise ApiException(status=404, reason="Not Found")

    def writes(self) -> list[tuple]:
        return list(self.calls)


@pytest.fixture
def cli(monkeypatch, capsys):
    """Run `kubestack ...` against a FakeCustom: cli(fake, *argv) -> (exit code, stdout, stderr)."""
    def invoke(fake: FakeCustom, *argv: str):
        monkeypatch.setattr(net_cli, "custom_api", lambda args: fake)
        code = main([*argv, "-n", NS])
        out, err = capsys.readouterr()
        return code, out, err
    return invoke


def parse(*argv: str):
    return build_parser().parse_args(list(argv))


def network(name: str, subnets: list[dict] | None = None, **spec) -> tuple[str, dict]:
    return "networks", {"apiVersion": "kubestack.io/v1alpha1", "kind": "Network",
                        "metadata": {"name": name, "creationTimestamp": "2024-01-01T00:00:00Z"},
                        "spec": {"subnets": subnets or [], **spec}}


def obj(plural: str, kind: str, name: str, spec: dict, status: dict | None = None) -> tuple[str, dict]:
    return plural, {"apiVersion": "kubestack.io/v1alpha1", "kind": kind, "metadata": {"name": name},
                    "spec": spec, **({"status": status} if status else {})}


V4 = {"name": "private-v4", "cidr": "10.0.0.0/24", "ipVersion": 4}


# ---------------------------------------------------------------------------- network


def test_network_create_sends_the_network(cli):
    fake = FakeCustom()
    code, out, _ = cli(fake, "network", "create", "physnet", "--provider-network-type", "vlan",
                       "--provider-physical-network", "eth1", "--provider-segment", "42", "--share", "--external",
                       "--mtu", "1450", "-f", "json")
    assert code == 0
    assert fake.writes() == [("create", "networks", {
        "apiVersion": "kubestack.io/v1alpha1", "kind": "Network", "metadata": {"name": "physnet", "namespace": NS},
        "spec": {"provider": {"networkType": "vlan", "physicalNetwork": "eth1", "segmentationId": 42},
                 "shared": True, "external": True, "mtu": 1450}})]
    shown = json.loads(out)
    assert shown["provider:segmentation_id"] == 42 and shown["router:external"] == "External"
    assert shown["shared"] is True and shown["subnets"] == [] and shown["project_id"] == NS


def test_network_manifest_matches_the_model():
    from kubestack.api.network import NetworkSpec

    body = net_cli.network_manifest(parse("network", "create", "n", "--provider-network-type", "flat",
                                          "--provider-physical-network", "br-ex", "--no-share"), NS)
    assert body["spec"] == {"provider": {"networkType": "flat", "physicalNetwork": "br-ex"}, "shared": False}
    spec = NetworkSpec.model_validate(body["spec"])
    assert spec.provider.physical_network == "br-ex" and spec.shared is False
    assert net_cli.network_manifest(parse("network", "create", "plain"), NS)["spec"] == {}


@pytest.mark.parametrize("argv, message", [
    (["--provider-network-type", "vlan", "--provider-physical-network", "eth1"], "needs --provider-segment"),
    (["--provider-network-type", "flat", "--provider-segment", "3", "--provider-physical-network", "e"],
     "only valid with --provider-network-type vlan"),
    (["--provider-network-type", "flat"], "needs --provider-physical-network"),
    (["--provider-physical-network", "eth1"], "need --provider-network-type"),
    (["--provider-network-type", "vlan", "--provider-physical-network", "e", "--provider-segment", "4095"],
     "between 1 and 4094"),
    (["--mtu", "60"], "between 68 and 9216"),
])
def test_network_create_bad_input(argv, message):
    with pytest.raises(CliError, match=message):
        net_cli.network_manifest(parse("network", "create", "n", *argv), NS)


def test_network_create_rejects_unknown_type():
    with pytest.raises(SystemExit):
        parse("network", "create", "n", "--provider-network-type", "vxlan")


def test_network_list_and_show(cli):
    fake = FakeCustom(network("private", [V4, {"name": "private-v6", "cidr": "fd00::/64", "ipVersion": 6}]),
                      network("public", external=True))
    code, out, _ = cli(fake, "network", "list")
    assert code == 0
    assert out.splitlines()[1:4] == [
        "| ID          | Name    | Subnets                |",
        "+-------------+---------+------------------------+",
        "| uid-private | private | private-v4, private-v6 |"]
    code, out, _ = cli(fake, "network", "list", "-f", "json")
    assert json.loads(out)[1] == {"ID": "uid-public", "Name": "public", "Subnets": []}
    # by ID as well as by name
    code, out, _ = cli(fake, "network", "show", "uid-public", "-f", "value", "-c", "name", "-c", "router:external")
    assert out == "public\nExternal\n"
    code, _, err = cli(fake, "network", "show", "nope")
    assert code == 1 and err == "error: No Network found for nope\n"


def test_network_set_and_delete(cli):
    fake = FakeCustom(network("private", shared=True))
    assert cli(fake, "network", "set", "private", "--no-share", "--description", "mine")[0] == 0
    assert fake.writes() == [("patch", "networks", "private", {"spec": {"shared": False, "description": "mine"}})]
    code, _, err = cli(fake, "network", "set", "private")
    assert code == 1 and "nothing to set" in err
    code, _, err = cli(fake, "network", "delete", "uid-private", "ghost")
    assert code == 1
    assert ("delete", "networks", "private") in fake.calls
    assert "Failed to delete network with name or ID 'ghost': No Network found for ghost" in err
    assert "1 of 2 networks failed to delete." in err


# ---------------------------------------------------------------------------- subnet


def test_subnet_create_patches_the_network_with_its_resource_version(cli):
    fake = FakeCustom(network("private", [V4]))
    rv = fake.store[("networks", NS, "private")]["metadata"]["resourceVersion"]
    code, out, _ = cli(fake, "subnet", "create", "extra", "--network", "private", "--subnet-range", "10.1.0.0/24",
                       "--gateway", "10.1.0.254", "--allocation-pool", "start=10.1.0.10,end=10.1.0.99",
                       "--dns-nameserver", "1.1.1.1", "--host-route", "destination=192.168.0.0/16,gateway=10.1.0.1",
                       "--no-dhcp", "-f", "json")
    assert code == 0
    entry = {"name": "extra", "cidr": "10.1.0.0/24", "ipVersion": 4, "gatewayIp": "10.1.0.254",
             "allocationPools": [{"start": "10.1.0.10", "end": "10.1.0.99"}], "dnsNameservers": ["1.1.1.1"],
             "hostRoutes": [{"destination": "192.168.0.0/16", "nexthop": "10.1.0.1"}], "enableDhcp": False}
    assert fake.writes() == [("patch", "networks", "private",
                              {"metadata": {"resourceVersion": rv}, "spec": {"subnets": [V4, entry]}})]
    shown = json.loads(out)
    assert shown["id"] == "private/extra" and shown["network_id"] == "private"
    assert shown["gateway_ip"] == "10.1.0.254" and shown["enable_dhcp"] is False
    assert shown["allocation_pools"] == [{"start": "10.1.0.10", "end": "10.1.0.99"}]
    assert shown["host_routes"] == [{"destination": "192.168.0.0/16", "nexthop": "10.1.0.1"}]


def test_subnet_create_refuses_a_duplicate_name(cli):
    fake = FakeCustom(network("private", [V4]))
    code, _, err = cli(fake, "subnet", "create", "private-v4", "--network", "private", "--subnet-range", "10.9.0.0/24")
    assert code == 1 and "already has a subnet named private-v4" in err
    assert fake.writes() == []


def test_subnet_create_keeps_a_concurrently_added_subnet(cli):
    """A write between our read and our patch makes the patch conflict; the retry keeps both."""
    fake = FakeCustom(network("private", [V4]))
    other = {"name": "theirs", "cidr": "10.2.0.0/24", "ipVersion": 4}
    fake.before_patch.append(lambda f: f.put("networks", merge(f.store[("networks", NS, "private")],
                                                               {"spec": {"subnets": [V4, other]}})))
    assert cli(fake, "subnet", "create", "mine", "--network", "private", "--subnet-range", "10.3.0.0/24")[0] == 0
    patches = [c for c in fake.writes() if c[0] == "patch"]
    assert len(patches) == 2
    assert [s["name"] for s in fake.store[("networks", NS, "private")]["spec"]["subnets"]] == \
        ["private-v4", "theirs", "mine"]


def test_subnet_entry_infers_ipv6_and_validates():
    args = parse("subnet", "create", "v6", "--network", "n", "--subnet-range", "fd00:10::/64", "--gateway", "none")
    assert net_cli.subnet_entry(args) == {"name": "v6", "cidr": "fd00:10::/64", "ipVersion": 6, "gatewayIp": "none"}


@pytest.mark.parametrize("argv, message", [
    (["--subnet-range", "10.0.0.1/24"], "host bits set: did you mean 10.0.0.0/24"),
    (["--subnet-range", "banana"], "is not a CIDR"),
    (["--subnet-range", "10.0.0.0/24", "--ip-version", "6"], "IPv4 CIDR but --ip-version is 6"),
    (["--subnet-range", "10.0.0.0/24", "--gateway", "10.9.9.9"], "not inside 10.0.0.0/24"),
    (["--subnet-range", "10.0.0.0/24", "--allocation-pool", "start=10.0.0.5"], "end required"),
    (["--subnet-range", "10.0.0.0/24", "--allocation-pool", "first=1,end=2"], "unknown key 'first'"),
    (["--subnet-range", "10.0.0.0/24", "--allocation-pool", "start=10.0.1.5,end=10.0.1.9"], "inside 10.0.0.0/24"),
    (["--subnet-range", "10.0.0.0/24", "--allocation-pool", "start=10.0.0.9,end=10.0.0.5"], "starts after it ends"),
    (["--subnet-range", "10.0.0.0/24", "--host-route", "destination=10.1.0.0/16"], "gateway required"),
    (["--subnet-range", "10.0.0.0/24", "--dns-nameserver", "dns.example"], "not an IP address"),
])
def test_subnet_create_bad_input(argv, message):
    with pytest.raises(CliError, match=message):
        net_cli.subnet_entry(parse("subnet", "create", "s", "--network", "n", *argv))


def test_subnet_create_needs_network_and_range():
    with pytest.raises(SystemExit):
        parse("subnet", "create", "s", "--network", "n")
    with pytest.raises(SystemExit):
        parse("subnet", "create", "s", "--subnet-range", "10.0.0.0/24")


def test_subnet_list_and_show(cli):
    fake = FakeCustom(network("private", [V4]), network("other", [{"name": "private-v4", "cidr": "10.5.0.0/24",
                                                                   "ipVersion": 4}]))
    code, out, _ = cli(fake, "subnet", "list", "-f", "json")
    assert json.loads(out) == [
        {"ID": "other/private-v4", "Name": "private-v4", "Network": "other", "Subnet": "10.5.0.0/24"},
        {"ID": "private/private-v4", "Name": "private-v4", "Network": "private", "Subnet": "10.0.0.0/24"}]
    code, out, _ = cli(fake, "subnet", "list", "--network", "private", "-f", "value")
    assert out == "private/private-v4 private-v4 private 10.0.0.0/24\n"
    code, _, err = cli(fake, "subnet", "show", "private-v4")
    assert code == 1 and "give NETWORK/private-v4" in err
    code, out, _ = cli(fake, "subnet", "show", "private/private-v4", "-f", "json")
    shown = json.loads(out)
    assert shown["gateway_ip"] == "10.0.0.1" and shown["cidr"] == "10.0.0.0/24" and shown["ip_version"] == 4
    assert shown["allocation_pools"] == [{"start": "10.0.0.2", "end": "10.0.0.254"}]
    assert shown["enable_dhcp"] is True and list(shown) == sorted(shown)


def test_subnet_delete(cli):
    in_use = obj("ports", "Port", "p1", {"network": "private"},
                 {"fixedIps": [{"subnet": "private-v4", "ipAddress": "10.0.0.5"}]})
    fake = FakeCustom(network("private", [V4, {"name": "spare", "cidr": "10.7.0.0/24", "ipVersion": 4}]), in_use)
    code, _, err = cli(fake, "subnet", "delete", "private-v4")
    assert code == 1 and "subnet private/private-v4 is in use by port p1" in err
    assert fake.writes() == []
    rv = fake.store[("networks", NS, "private")]["metadata"]["resourceVersion"]
    assert cli(fake, "subnet", "delete", "private/spare")[0] == 0
    assert fake.writes() == [("patch", "networks", "private",
                              {"metadata": {"resourceVersion": rv}, "spec": {"subnets": [V4]}})]


# ---------------------------------------------------------------------------- port


def test_port_create(cli):
    from kubestack.api.port import PortSpec

    fake = FakeCustom(network("private", [V4]))
    code, out, _ = cli(fake, "port", "create", "vip", "--network", "uid-private",
                       "--fixed-ip", "subnet=private-v4,ip-address=10.0.0.50", "--fixed-ip", "subnet=private-v4",
                       "--mac-address", "FA:16:3E:00:00:01", "--security-group", "web", "--security-group", "default",
                       "-f", "json")
    assert code == 0
    ((_, plural, body),) = fake.writes()
    assert plural == "ports" and body["metadata"] == {"name": "vip", "namespace": NS}
    assert body["spec"] == {"network": "private",
                            "fixedIps": [{"subnet": "private-v4", "ipAddress": "10.0.0.50"}, {"subnet": "private-v4"}],
                            "macAddress": "fa:16:3e:00:00:01", "securityGroups": ["default", "web"]}
    PortSpec.model_validate(body["spec"])
    assert json.loads(out)["network_id"] == "private"
    # another project's shared network is passed through as namespace/name
    body = net_cli.port_manifest(parse("port", "create", "p", "--network", "admin/shared", "--no-security-group"),
                                 NS, "admin/shared")
    assert body["spec"] == {"network": "admin/shared", "securityGroups": []}
    body = net_cli.port_manifest(parse("port", "create", "p", "--network", "n", "--disable-port-security"), NS, "n")
    assert body["spec"] == {"network": "n", "portSecurityEnabled": False, "securityGroups": []}


@pytest.mark.parametrize("argv, message", [
    (["--mac-address", "fa:16:3e:00:01"], "not a MAC address"),
    (["--fixed-ip", "subnet=s,ip=1.2.3.4"], "unknown key 'ip'"),
    (["--fixed-ip", "ip-address=10.0.0.300"], "not an IP address"),
    (["--security-group", "web", "--disable-port-security"], "needs port security"),
])
def test_port_create_bad_input(argv, message):
    with pytest.raises(CliError, match=message):
        net_cli.port_manifest(parse("port", "create", "p", "--network", "n", *argv), NS, "n")


def test_port_create_unknown_network(cli):
    code, _, err = cli(FakeCustom(), "port", "create", "p", "--network", "ghost")
    assert code == 1 and err == "error: No Network found for ghost\n"


def test_port_list_and_show(cli):
    fake = FakeCustom(
        obj("ports", "Port", "web-1-0", {"network": "private", "deviceId": "web-1", "securityGroups": ["default"]},
            {"status": "ACTIVE", "macAddress": "fa:16:3e:aa:bb:cc", "server": "web-1",
             "fixedIps": [{"subnet": "private-v4", "ipAddress": "10.0.0.5"}]}),
        obj("ports", "Port", "spare", {"network": "private"}),
        obj("ports", "Port", "vip", {"network": "private", "deviceId": "gone"},
            {"status": "DOWN", "reason": "Server gone could not be found: port vip is not bound."}),
        obj("servers", "Server", "web-1", {"flavor": "f"}))
    code, out, _ = cli(fake, "port", "list", "--server", "uid-web-1")
    lines = out.splitlines()
    assert lines[1] == "| ID          | Name    | MAC Address       | Fixed IP Addresses                        " \
                       "      | Status |"
    assert lines[3] == "| uid-web-1-0 | web-1-0 | fa:16:3e:aa:bb:cc | {ip_address='10.0.0.5', " \
                       "subnet_id='private-v4'} | ACTIVE |"
    assert len(lines) == 5
    code, out, _ = cli(fake, "port", "list", "-f", "json")
    assert [r["Name"] for r in json.loads(out)] == ["spare", "vip", "web-1-0"]
    assert json.loads(out)[0]["Status"] == "DOWN"
    code, out, _ = cli(fake, "port", "show", "web-1-0", "-f", "json")
    shown = json.loads(out)
    assert shown["device_id"] == "web-1" and shown["security_group_ids"] == ["default"]
    assert shown["fixed_ips"] == [{"ip_address": "10.0.0.5", "subnet_id": "private-v4"}]
    # unbound when its server went: the spec still names it, the port is nobody's
    code, out, _ = cli(fake, "port", "show", "vip", "-f", "json")
    assert json.loads(out)["device_id"] == ""
    assert cli(fake, "port", "delete", "spare")[0] == 0 and ("delete", "ports", "spare") in fake.calls


# ---------------------------------------------------------------------------- security group


def group(name: str, rules: list[dict]) -> tuple[str, dict]:
    return obj("securitygroups", "SecurityGroup", name, {"rules": rules})


def test_security_group_create_allows_egress_like_neutron(cli):
    from kubestack.api.securitygroup import SecurityGroupSpec

    fake = FakeCustom()
    code, out, _ = cli(fake, "security", "group", "create", "web", "--description", "web tier", "-f", "json")
    assert code == 0
    ((_, plural, body),) = fake.writes()
    assert plural == "securitygroups"
    assert body["spec"] == {"rules": [{"direction": "egress", "ethertype": "IPv4"},
                                      {"direction": "egress", "ethertype": "IPv6"}], "description": "web tier"}
    SecurityGroupSpec.model_validate(body["spec"])
    assert json.loads(out)["rules"] == [
        {"direction": "egress", "ethertype": "IPv4", "id": 0, "security_group_id": "web"},
        {"direction": "egress", "ethertype": "IPv6", "id": 1, "security_group_id": "web"}]


def test_security_group_rule_create(cli):
    from kubestack.api.securitygroup import SecurityGroupRule

    fake = FakeCustom(group("web", [{"direction": "egress", "ethertype": "IPv4"}]), group("lb", []))
    rv = fake.store[("securitygroups", NS, "web")]["metadata"]["resourceVersion"]
    code, out, _ = cli(fake, "security", "group", "rule", "create", "web", "--protocol", "TCP", "--dst-port",
                       "8000:8080", "--remote-group", "uid-lb", "-f", "json")
    assert code == 0
    rule = {"direction": "ingress", "ethertype": "IPv4", "protocol": "tcp", "portRangeMin": 8000,
            "portRangeMax": 8080, "remoteGroup": "lb"}
    assert fake.writes() == [("patch", "securitygroups", "web", {
        "metadata": {"resourceVersion": rv},
        "spec": {"rules": [{"direction": "egress", "ethertype": "IPv4"}, rule]}})]
    SecurityGroupRule.model_validate(rule)
    shown = json.loads(out)
    assert shown["id"] == 1 and shown["remote_group_id"] == "lb" and shown["port_range_max"] == 8080
    code, _, err = cli(fake, "security", "group", "rule", "create", "web", "--protocol", "tcp", "--dst-port",
                       "8000:8080", "--remote-group", "lb", "--description", "again")
    assert code == 1 and "Security group rule already exists" in err


def rule_args(*argv: str):
    return parse("security", "group", "rule", "create", "g", *argv)


def test_rule_entry():
    assert net_cli.rule_entry(rule_args("--egress", "--remote-ip", "fd00::/8", "--protocol", "icmpv6",
                                        "--icmp-type", "128")) == {
        "direction": "egress", "ethertype": "IPv6", "protocol": "icmpv6", "icmpType": 128,
        "remoteIpPrefix": "fd00::/8"}
    assert net_cli.rule_entry(rule_args("--protocol", "47")) == {"direction": "ingress", "ethertype": "IPv4",
                                                                 "protocol": 47}
    assert net_cli.rule_entry(rule_args("--protocol", "any", "--ethertype", "IPv6")) == {
        "direction": "ingress", "ethertype": "IPv6"}
    assert net_cli.rule_entry(rule_args("--protocol", "udp", "--dst-port", "53"))["portRangeMax"] == 53


@pytest.mark.parametrize("argv, message", [
    (["--dst-port", "22"], "needs --protocol tcp, udp or sctp"),
    (["--protocol", "icmp", "--dst-port", "22"], "needs --protocol tcp, udp or sctp"),
    (["--protocol", "tcp", "--dst-port", "90:80"], "must not be reversed"),
    (["--protocol", "tcp", "--dst-port", "http"], "expected N or N:M"),
    (["--protocol", "gre"], "use tcp, udp"),
    (["--protocol", "300"], "0-255"),
    (["--remote-ip", "10.0.0.0/8", "--ethertype", "IPv6"], "is IPv4 but --ethertype is IPv6"),
    (["--protocol", "icmpv6", "--ethertype", "IPv4"], "needs --ethertype IPv6"),
    (["--protocol", "tcp", "--icmp-type", "8"], "need --protocol icmp"),
    (["--protocol", "icmp", "--icmp-code", "0"], "--icmp-code needs --icmp-type"),
])
def test_rule_entry_bad_input(argv, message):
    with pytest.raises(CliError, match=message):
        net_cli.rule_entry(rule_args(*argv))


def test_rule_create_needs_one_remote():
    with pytest.raises(SystemExit):
        rule_args("--remote-ip", "10.0.0.0/8", "--remote-group", "g")


def test_rule_create_keeps_a_concurrently_added_rule(cli):
    fake = FakeCustom(group("web", []))
    theirs = {"direction": "ingress", "ethertype": "IPv4", "protocol": "tcp", "portRangeMin": 22, "portRangeMax": 22}
    fake.before_patch.append(lambda f: f.put("securitygroups", merge(f.store[("securitygroups", NS, "web")],
                                                                     {"spec": {"rules": [theirs]}})))
    code, out, _ = cli(fake, "security", "group", "rule", "create", "web", "--protocol", "icmp", "-f", "value",
                       "-c", "id")
    assert code == 0 and out == "1\n"
    assert fake.store[("securitygroups", NS, "web")]["spec"]["rules"] == [
        theirs, {"direction": "ingress", "ethertype": "IPv4", "protocol": "icmp"}]


def test_rule_create_gives_up_after_repeated_conflicts(cli):
    fake = FakeCustom(group("web", []))
    bump = lambda f: f.put("securitygroups", f.store[("securitygroups", NS, "web")])  # noqa: E731
    fake.before_patch.extend([bump] * net_cli.CONFLICT_RETRIES)
    code, _, err = cli(fake, "security", "group", "rule", "create", "web")
    assert code == 1 and "kept changing" in err


def test_rule_list_and_delete(cli):
    rules = [{"direction": "egress", "ethertype": "IPv6"},
             {"direction": "ingress", "ethertype": "IPv4", "protocol": "tcp", "portRangeMin": 22, "portRangeMax": 22,
              "remoteIpPrefix": "192.168.0.0/16"},
             {"direction": "ingress", "ethertype": "IPv4", "remoteGroup": "web"}]
    fake = FakeCustom(group("web", rules))
    code, out, _ = cli(fake, "security", "group", "rule", "list", "web", "-f", "csv")
    assert out.splitlines() == [
        '"Index","IP Protocol","Ethertype","IP Range","Port Range","Direction","Remote Security Group"',
        '0,"","IPv6","::/0","","egress",""',
        '1,"tcp","IPv4","192.168.0.0/16","22:22","ingress",""',
        '2,"","IPv4","","","ingress","web"']
    rv = fake.store[("securitygroups", NS, "web")]["metadata"]["resourceVersion"]
    assert cli(fake, "security", "group", "rule", "delete", "web", "1")[0] == 0
    assert fake.writes() == [("patch", "securitygroups", "web",
                              {"metadata": {"resourceVersion": rv}, "spec": {"rules": [rules[0], rules[2]]}})]
    code, _, err = cli(fake, "security", "group", "rule", "delete", "web", "2")
    assert code == 1 and "has no rule 2 (it has 2" in err


def test_security_group_list_show_delete(cli):
    fake = FakeCustom(obj("securitygroups", "SecurityGroup", "web", {"description": "web tier", "rules": []}))
    code, out, _ = cli(fake, "security", "group", "list", "-f", "value")
    assert out == f"uid-web web web tier {NS}\n"
    code, out, _ = cli(fake, "security", "group", "show", "uid-web", "-f", "shell", "-c", "description",
                       "-c", "stateful")
    assert out == 'description="web tier"\nstateful="True"\n'
    assert cli(fake, "security", "group", "delete", "web")[0] == 0
    assert fake.store == {}


# ---------------------------------------------------------------------------- floating ip


def test_floating_ip_create(cli):
    from kubestack.api.floatingip import FloatingIPSpec

    fake = FakeCustom(obj("servers", "Server", "web-1", {"flavor": "f"}))
    code, out, _ = cli(fake, "floating", "ip", "create", "admin/public", "--server", "uid-web-1",
                       "--floating-ip-address", "203.0.113.10", "-f", "json")
    assert code == 0
    ((_, plural, body),) = fake.writes()
    assert plural == "floatingips" and re.fullmatch(r"fip-[0-9a-f]{8}", body["metadata"]["name"])
    assert body["spec"] == {"floatingNetwork": "admin/public", "floatingIpAddress": "203.0.113.10", "server": "web-1"}
    FloatingIPSpec.model_validate(body["spec"])
    shown = json.loads(out)
    assert shown["floating_ip_address"] == "203.0.113.10" and shown["server"] == "web-1"
    assert shown["floating_network_id"] == "admin/public" and shown["status"] == "DOWN"


def test_floating_ip_create_named_and_checked(cli):
    fake = FakeCustom(network("public", external=True), obj("ports", "Port", "vip", {"network": "private"}))
    assert cli(fake, "floating", "ip", "create", "uid-public", "--name", "web", "--port", "vip",
               "--fixed-ip-address", "10.0.0.50")[0] == 0
    assert fake.writes()[0][2]["metadata"]["name"] == "web"
    assert fake.writes()[0][2]["spec"] == {"floatingNetwork": "public", "port": "vip", "fixedIpAddress": "10.0.0.50"}
    with pytest.raises(SystemExit):
        parse("floating", "ip", "create", "public", "--port", "p", "--server", "s")
    with pytest.raises(CliError, match="needs --port or --server"):
        net_cli.fip_manifest(parse("floating", "ip", "create", "public", "--fixed-ip-address", "10.0.0.5"), NS, "f")
    code, _, err = cli(fake, "floating", "ip", "create", "public", "--server", "ghost")
    assert code == 1 and "No Server found for ghost" in err


def fip(name: str, spec: dict, status: dict | None = None) -> tuple[str, dict]:
    return obj("floatingips", "FloatingIP", name, {"floatingNetwork": "admin/public", **spec}, status)


def test_floating_ip_set_unset(cli):
    fake = FakeCustom(fip("fip-0a1b2c3d", {"server": "web-1"}, {"floatingIpAddress": "203.0.113.7"}),
                      obj("ports", "Port", "vip", {"network": "private"}))
    assert cli(fake, "floating", "ip", "set", "203.0.113.7", "--port", "uid-vip")[0] == 0
    assert fake.writes() == [("patch", "floatingips", "fip-0a1b2c3d",
                              {"spec": {"port": "vip", "server": None, "fixedIpAddress": None}})]
    assert fake.store[("floatingips", NS, "fip-0a1b2c3d")]["spec"] == {"floatingNetwork": "admin/public",
                                                                       "port": "vip"}
    assert cli(fake, "floating", "ip", "unset", "fip-0a1b2c3d", "--port")[0] == 0
    assert fake.writes()[-1] == ("patch", "floatingips", "fip-0a1b2c3d",
                                 {"spec": {"port": None, "server": None, "fixedIpAddress": None}})
    with pytest.raises(SystemExit):
        parse("floating", "ip", "set", "f")
    with pytest.raises(SystemExit):
        parse("floating", "ip", "unset", "f")


def test_floating_ip_list_show_delete(cli):
    fake = FakeCustom(
        fip("fip-0a1b2c3d", {"server": "web-1"}, {"floatingIpAddress": "203.0.113.7", "fixedIpAddress": "10.0.0.5",
                                                  "port": "web-1-0", "server": "web-1", "status": "ACTIVE"}),
        fip("fip-ffffffff", {}))
    code, out, _ = cli(fake, "floating", "ip", "list")
    lines = out.splitlines()
    assert lines[1] == "| ID               | Floating IP Address | Fixed IP Address | Port    | Server |"
    assert lines[3] == "| uid-fip-0a1b2c3d | 203.0.113.7         | 10.0.0.5         | web-1-0 | web-1  |"
    assert lines[4] == "| uid-fip-ffffffff |                     |                  |         |        |"
    code, out, _ = cli(fake, "floating", "ip", "show", "203.0.113.7", "-f", "value", "-c", "name", "-c", "status")
    assert out == "fip-0a1b2c3d\nACTIVE\n"
    assert cli(fake, "floating", "ip", "delete", "203.0.113.7", "uid-fip-ffffffff")[0] == 0
    assert fake.store == {}


# ---------------------------------------------------------------------------- router


def test_router_create(cli):
    from kubestack.api.router import RouterSpec

    fake = FakeCustom(network("public", external=True))
    code, out, _ = cli(fake, "router", "create", "r1", "--external-gateway", "public", "--disable-snat", "-f", "json")
    assert code == 0
    ((_, plural, body),) = fake.writes()
    assert plural == "routers" and body["spec"] == {"externalGateway": {"network": "public", "enableSnat": False}}
    RouterSpec.model_validate(body["spec"])
    assert json.loads(out)["external_gateway_info"] == {"network_id": "public", "enable_snat": False,
                                                       "external_fixed_ips": []}
    with pytest.raises(CliError, match="--disable-snat needs --external-gateway"):
        net_cli.router_manifest(parse("router", "create", "r", "--disable-snat"), NS, None)
    assert net_cli.router_manifest(parse("router", "create", "r"), NS, None)["spec"] == {}


def test_router_add_and_remove_subnet(cli):
    fake = FakeCustom(network("private", [V4]), obj("routers", "Router", "r1", {}))
    rv = fake.store[("routers", NS, "r1")]["metadata"]["resourceVersion"]
    assert cli(fake, "router", "add", "subnet", "r1", "private-v4")[0] == 0
    assert fake.writes() == [("patch", "routers", "r1", {"metadata": {"resourceVersion": rv}, "spec": {
        "interfaces": [{"network": "private", "subnet": "private-v4"}]}})]
    code, _, err = cli(fake, "router", "add", "subnet", "r1", "private/private-v4")
    assert code == 1 and "already has an interface on subnet private/private-v4" in err
    code, out, _ = cli(fake, "router", "show", "r1", "-f", "json")
    assert json.loads(out)["interfaces_info"] == [{"subnet_id": "private/private-v4"}]
    assert cli(fake, "router", "remove", "subnet", "r1", "private-v4")[0] == 0
    assert fake.writes()[-1][3]["spec"] == {"interfaces": []}
    code, _, err = cli(fake, "router", "remove", "subnet", "r1", "private-v4")
    assert code == 1 and "has no interface" in err
    code, _, err = cli(fake, "router", "add", "subnet", "r1", "ghost")
    assert code == 1 and "No Subnet found for ghost" in err


def test_router_list_show_delete(cli):
    fake = FakeCustom(obj("routers", "Router", "r1", {"externalGateway": {"network": "admin/public"}},
                          {"status": "DOWN", "reason": "not realisable on this network provider"}))
    code, out, _ = cli(fake, "router", "list", "-f", "json")
    assert json.loads(out) == [{"ID": "uid-r1", "Name": "r1", "Status": "DOWN", "State": "UP", "Project": NS}]
    code, out, _ = cli(fake, "router", "show", "r1", "-f", "json")
    shown = json.loads(out)
    assert shown["status_reason"] == "not realisable on this network provider"
    assert shown["external_gateway_info"]["enable_snat"] is True and list(shown) == sorted(shown)
    assert cli(fake, "router", "delete", "uid-r1")[0] == 0 and fake.store == {}


def test_every_verb_parses():
    assert parse("network", "list", "-f", "yaml").format == "yaml"
    assert parse("subnet", "list", "--network", "n").network == "n"
    assert parse("port", "list", "--server", "s").server == "s"
    assert parse("security", "group", "rule", "list", "g").group == "g"
    assert parse("security", "group", "rule", "delete", "g", "3").index == 3
    assert parse("security", "group", "rule", "create", "g", "--egress").direction == "egress"
    assert parse("security", "group", "rule", "create", "g").direction == "ingress"
    assert parse("floating", "ip", "list", "-c", "ID").columns == ["ID"]
    assert parse("router", "add", "subnet", "r", "s").subnet == "s"
    assert parse("subnet", "create", "s", "--network", "n", "--subnet-range", "10.0.0.0/24").dhcp is True
