"""Admission of kubestack's own kinds by a real kube-apiserver: every example in examples/
is accepted, and invalid manifests (at least five per kind) and forbidden updates are
rejected with a message a person understands."""

from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubestack.api.registry import ALL_KINDS, BY_KIND

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DELETE = object()


def example(kind: str) -> dict[str, Any]:
    return yaml.safe_load((EXAMPLES / f"{kind.lower()}.yaml").read_text())


def mutate(obj: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """A copy of obj with dotted paths set (or removed with DELETE); `a.0.b` indexes lists."""
    out = copy.deepcopy(obj)
    for path, value in changes.items():
        keys = path.split(".")
        node: Any = out
        for k in keys[:-1]:
            node = node[int(k)] if isinstance(node, list) else node.setdefault(k, {})
        last: Any = int(keys[-1]) if isinstance(node, list) else keys[-1]
        if value is DELETE:
            del node[last]
        else:
            node[last] = value
    return out


class Api:
    """Create / patch any of our kinds in the test namespace; cluster-scoped names get a
    unique suffix so tests never collide."""

    def __init__(self, cluster, namespace: str):
        from kubernetes import client

        self.co = client.CustomObjectsApi(cluster.api)
        self.namespace = namespace
        self.created: list[tuple[Any, str]] = []

    def _name(self, obj: dict[str, Any]) -> None:
        info = BY_KIND[obj["kind"]]
        if not info.namespaced and not obj["metadata"].get("x-fixed-name"):
            obj["metadata"]["name"] = f"{obj['metadata']['name']}-{uuid.uuid4().hex[:6]}"
        obj["metadata"].pop("x-fixed-name", None)

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        obj = json.loads(json.dumps(obj, default=str))
        self._name(obj)
        info = BY_KIND[obj["kind"]]
        if info.namespaced:
            out = self.co.create_namespaced_custom_object(
                info.group, info.version, self.namespace, info.plural, obj)
        else:
            out = self.co.create_cluster_custom_object(info.group, info.version, info.plural, obj)
            self.created.append((info, out["metadata"]["name"]))
        return out

    def patch(self, obj: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
        info = BY_KIND[obj["kind"]]
        name = obj["metadata"]["name"]
        if info.namespaced:
            return self.co.patch_namespaced_custom_object(
                info.group, info.version, self.namespace, info.plural, name, patch)
        return self.co.patch_cluster_custom_object(info.group, info.version, info.plural, name, patch)

    def cleanup(self) -> None:
        from kubernetes.client.rest import ApiException

        for info, name in self.created:
            try:
                self.co.delete_cluster_custom_object(info.group, info.version, info.plural, name)
            except ApiException as exc:
                if exc.status != 404:
                    raise


@pytest.fixture
def api(cluster, namespace):
    a = Api(cluster, namespace)
    yield a
    a.cleanup()


def rejection(call) -> str:
    from kubernetes.client.rest import ApiException

    with pytest.raises(ApiException) as info:
        call()
    assert info.value.status == 422, info.value.body
    return json.loads(info.value.body)["message"]


# ------------------------------------------------------------------------------ valid


@pytest.mark.parametrize("kind", [k.kind for k in ALL_KINDS])
def test_example_is_accepted(api, kind):
    obj = example(kind)
    created = api.create(obj)
    assert created["kind"] == kind
    # and what the API server stored parses back into the model
    model = BY_KIND[kind].resource_model.from_k8s(created)
    assert model.metadata.name == created["metadata"]["name"]


def test_defaults_are_applied(api):
    created = api.create({"apiVersion": "kubestack.io/v1alpha1", "kind": "Project",
                          "metadata": {"name": "defaults"}, "spec": {}})
    assert created["spec"]["enabled"] is True
    assert created["spec"]["quotas"]["instances"] == 10
    assert created["spec"]["quotas"]["ram"] == 51200
    server = api.create({"apiVersion": "kubestack.io/v1alpha1", "kind": "Server",
                         "metadata": {"name": "tiny"},
                         "spec": {"flavor": "m1.tiny", "image": "cirros"}})
    assert server["spec"]["powerState"] == "Running"
    assert server["spec"]["securityGroups"] == ["default"]
    assert server["spec"]["minCount"] == 1


def test_generated_keypair_and_blank_network_are_accepted(api):
    api.create({"apiVersion": "kubestack.io/v1alpha1", "kind": "KeyPair",
                "metadata": {"name": "generated"}, "spec": {}})
    api.create({"apiVersion": "kubestack.io/v1alpha1", "kind": "Network",
                "metadata": {"name": "empty"}, "spec": {}})


# ---------------------------------------------------------------------- invalid creates

BIG = "x" * 70000
V = "kubestack.io/v1alpha1"

INVALID: list[tuple[str, str, dict[str, Any], str]] = [
    # (kind, case id, changes to the example, expected message substring)
    ("Server", "no-boot-source", {"spec.image": DELETE}, "exactly one boot source is required"),
    ("Server", "image-and-boot-volume", {"spec.bootVolume": {"volume": "root"}},
     "exactly one boot source is required"),
    ("Server", "network-entry-empty", {"spec.networks": [{}]},
     "each networks entry needs network or port"),
    ("Server", "bad-fixed-ip", {"spec.networks.1.fixedIp": "10.0.0.300"},
     "must be a valid IPv4 or IPv6 address"),
    ("Server", "port-with-fixed-ip", {"spec.networks": [{"port": "p1", "fixedIp": "10.0.0.9"}]},
     "fixedIp cannot be combined with port"),
    ("Server", "max-below-min", {"spec.minCount": 3, "spec.maxCount": 2},
     "maxCount must be greater than or equal to minCount"),
    ("Server", "bad-power-state", {"spec.powerState": "Off"}, 'Unsupported value: "Off"'),
    ("Server", "name-not-dns-label", {"metadata.name": "web.1"},
     "metadata.name must be a DNS label"),
    ("Server", "user-data-too-big", {"spec.userData": BIG}, "Too long"),
    ("Server", "boot-volume-both", {"spec.image": DELETE,
                                    "spec.bootVolume": {"volume": "a", "image": "cirros"}},
     "bootVolume needs exactly one of volume"),
    ("Server", "blank-bdm-without-size",
     {"spec.blockDeviceMapping": [{"sourceType": "blank", "destinationType": "local"}]},
     "a blank block device needs volumeSize"),
    ("Server", "two-boot-sources-bdm",
     {"spec.blockDeviceMapping": [{"sourceType": "volume", "name": "root", "bootIndex": 0}]},
     "exactly one boot source is required"),
    ("Server", "reboot-type", {"spec.reboot": {"type": "WARM", "requestId": "1"}},
     'Unsupported value: "WARM"'),
    ("Flavor", "zero-vcpus", {"spec.vcpus": 0}, "spec.vcpus"),
    ("Flavor", "missing-ram", {"spec.ram": DELETE}, "spec.ram: Required value"),
    ("Flavor", "projects-on-public", {"spec.projects": ["demo"]},
     "may only be set on a private flavor"),
    ("Flavor", "bad-extra-spec-key", {"spec.extraSpecs": {"hw cpu policy": "dedicated"}},
     "extraSpecs keys must be"),
    ("Flavor", "bad-trait-value", {"spec.extraSpecs": {"trait:HW_CPU_X86_AVX2": "preferred"}},
     "must be 'required' or 'forbidden'"),
    ("Flavor", "zero-rxtx", {"spec.rxtxFactor": 0}, "spec.rxtxFactor"),
    ("Flavor", "negative-disk", {"spec.disk": -1}, "spec.disk"),
    ("KeyPair", "not-a-key", {"spec.publicKey": "hello world"}, "one OpenSSH public key line"),
    ("KeyPair", "bad-type", {"spec.type": "rsa"}, 'Unsupported value: "rsa"'),
    ("KeyPair", "x509-not-pem", {"spec.type": "x509"}, "must be a PEM certificate"),
    ("KeyPair", "empty-key", {"spec.publicKey": ""}, "spec.publicKey"),
    ("KeyPair", "key-too-long", {"spec.publicKey": "ssh-rsa " + "A" * 17000}, "Too long"),
    ("ServerGroup", "bad-policy", {"spec.policy": "spread"}, 'Unsupported value: "spread"'),
    ("ServerGroup", "missing-policy", {"spec.policy": DELETE}, "spec.policy: Required value"),
    ("ServerGroup", "rules-with-affinity", {"spec.policy": "affinity"},
     "only allowed with policy anti-affinity"),
    ("ServerGroup", "rules-with-soft-anti", {"spec.policy": "soft-anti-affinity"},
     "only allowed with policy anti-affinity"),
    ("ServerGroup", "zero-per-host", {"spec.rules.maxServerPerHost": 0},
     "spec.rules.maxServerPerHost"),
    ("Image", "forbidden-trait", {"spec.properties": {"trait:CUSTOM_GOLD": "forbidden"}},
     "an image can only require a trait"),
    ("Image", "no-source", {"spec.source": {}}, "source needs exactly one of url, registry"),
    ("Image", "two-sources", {"spec.source.registry": "docker://quay.io/a/b:1"},
     "source needs exactly one of url, registry"),
    ("Image", "ftp-url", {"spec.source.url": "ftp://example.com/a.img"},
     "url must be an absolute http:// or https:// URL"),
    ("Image", "registry-without-scheme",
     {"spec.source": {"registry": "quay.io/containerdisks/fedora:40"}},
     "registry must start with docker://"),
    ("Image", "members-not-shared", {"spec.members": ["other"]},
     "members may only be set when visibility is shared"),
    ("Image", "bad-disk-format", {"spec.diskFormat": "qcow3"}, 'Unsupported value: "qcow3"'),
    ("Image", "container-disk-from-url", {"spec.containerDisk": True},
     "containerDisk is only possible for a registry source"),
    ("Image", "bad-visibility", {"spec.visibility": "everyone"}, 'Unsupported value: "everyone"'),
    ("Volume", "zero-size", {"spec.size": 0}, "spec.size"),
    ("Volume", "missing-size", {"spec.size": DELETE}, "spec.size: Required value"),
    ("Volume", "two-sources", {"spec.source.snapshot": "snap1"},
     "source needs exactly one of image, snapshot or volume"),
    ("Volume", "empty-source", {"spec.source": {}},
     "source needs exactly one of image, snapshot or volume"),
    ("Volume", "long-metadata-key", {"spec.metadata": {"k" * 300: "v"}},
     "metadata keys must be 1-255 characters"),
    ("Network", "bad-cidr", {"spec.subnets.0.cidr": "10.0.0.0/33"}, "must be a valid CIDR"),
    ("Network", "host-bits", {"spec.subnets.0.cidr": "10.0.0.1/24"},
     "cidr must be a network address with the host bits zero"),
    ("Network", "version-mismatch", {"spec.subnets.0.ipVersion": 6},
     "cidr must match ipVersion"),
    ("Network", "gateway-outside", {"spec.subnets.0.gatewayIp": "10.1.0.1"},
     "gatewayIp must be inside the subnet's cidr"),
    ("Network", "pool-outside", {"spec.subnets.0.allocationPools.0.end": "10.0.1.5"},
     "allocationPools must lie inside the subnet's cidr"),
    ("Network", "gateway-word", {"spec.subnets.0.gatewayIp": "router"},
     "gatewayIp must be an IP address, 'auto' or 'none'"),
    ("Network", "vlan-without-id", {"spec.provider": {"networkType": "vlan",
                                                      "physicalNetwork": "physnet1"}},
     "a vlan network needs segmentationId"),
    ("Network", "vlan-id-range", {"spec.provider": {"networkType": "vlan", "physicalNetwork": "p",
                                                    "segmentationId": 5000}},
     "spec.provider.segmentationId"),
    ("Network", "segmentation-not-vlan", {"spec.provider.segmentationId": 10},
     "segmentationId is only valid for networkType vlan"),
    ("Network", "duplicate-subnet", {"spec.subnets.1.name": "private-v4"}, "Duplicate value"),
    ("Network", "bad-mtu", {"spec.mtu": 10}, "spec.mtu"),
    ("Port", "empty-fixed-ip", {"spec.fixedIps": [{}]}, "each fixedIps entry needs subnet or ipAddress"),
    ("Port", "upper-case-mac", {"spec.macAddress": "FA:16:3E:00:00:64"},
     "macAddress must be six lower-case hex pairs"),
    ("Port", "missing-network", {"spec.network": DELETE}, "spec.network: Required value"),
    ("Port", "bad-address-pair", {"spec.allowedAddressPairs.0.ipAddress": "ten.0.0.1"},
     "ipAddress must be an IP address or a CIDR"),
    ("Port", "groups-without-port-security", {"spec.portSecurityEnabled": False},
     "securityGroups must be empty when portSecurityEnabled is false"),
    ("Port", "bad-fixed-ip", {"spec.fixedIps.0.ipAddress": "10.0.0.256"},
     "must be a valid IPv4 or IPv6 address"),
    ("Router", "duplicate-interface",
     {"spec.interfaces": [{"network": "private", "subnet": "a"},
                          {"network": "private", "subnet": "a"}]},
     "a subnet can be attached to a router only once"),
    ("Router", "gateway-without-network", {"spec.externalGateway.network": DELETE},
     "spec.externalGateway.network: Required value"),
    ("Router", "bad-external-ip", {"spec.externalGateway.externalFixedIps": ["172.24.4"]},
     "must be a valid IPv4 or IPv6 address"),
    ("Router", "bad-route-destination",
     {"spec.routes": [{"destination": "10.0.0.0/40", "nexthop": "10.0.0.1"}]},
     "must be a valid CIDR"),
    ("Router", "bad-route-nexthop",
     {"spec.routes": [{"destination": "10.9.0.0/16", "nexthop": "gw"}]},
     "must be a valid IPv4 or IPv6 address"),
    ("SecurityGroup", "min-above-max", {"spec.rules.0.portRangeMin": 90},
     "portRangeMin must be less than or equal to portRangeMax"),
    ("SecurityGroup", "ports-with-icmp", {"spec.rules.0.protocol": "icmp"},
     "a port range is only allowed with protocol tcp, udp or sctp"),
    ("SecurityGroup", "prefix-and-group", {"spec.rules.2.remoteGroup": "web"},
     "give remoteIpPrefix or remoteGroup, not both"),
    ("SecurityGroup", "unknown-protocol", {"spec.rules.0.protocol": "http"},
     "protocol must be tcp, udp, icmp, icmpv6, sctp, any or a number 0-255"),
    ("SecurityGroup", "protocol-number-range", {"spec.rules.4.protocol": 300},
     "protocol must be tcp, udp, icmp, icmpv6, sctp, any or a number 0-255"),
    ("SecurityGroup", "prefix-family", {"spec.rules.2.remoteIpPrefix": "2001:db8::/32"},
     "remoteIpPrefix must match ethertype"),
    ("SecurityGroup", "bad-direction", {"spec.rules.0.direction": "inbound"},
     'Unsupported value: "inbound"'),
    ("SecurityGroup", "port-too-high", {"spec.rules.0.portRangeMax": 70000},
     "spec.rules[0].portRangeMax"),
    ("SecurityGroup", "icmpv6-on-ipv4", {"spec.rules.3.protocol": "icmpv6"},
     "protocol icmpv6 needs ethertype IPv6"),
    ("FloatingIP", "missing-network", {"spec.floatingNetwork": DELETE},
     "spec.floatingNetwork: Required value"),
    ("FloatingIP", "port-and-server", {"spec.port": "web-vip"},
     "associate with a port or a server, not both"),
    ("FloatingIP", "bad-address", {"spec.floatingIpAddress": "172.24.4"},
     "must be a valid IPv4 or IPv6 address"),
    ("FloatingIP", "fixed-without-target", {"spec.server": DELETE,
                                            "spec.fixedIpAddress": "10.0.0.5"},
     "fixedIpAddress needs a port or a server"),
    ("FloatingIP", "bad-fixed-address", {"spec.fixedIpAddress": "10.0.0.500"},
     "must be a valid IPv4 or IPv6 address"),
    ("Project", "user-and-group", {"spec.members.0.group": "admins"},
     "each member needs exactly one of user or group"),
    ("Project", "neither-user-nor-group", {"spec.members": [{"role": "member"}]},
     "each member needs exactly one of user or group"),
    ("Project", "bad-role", {"spec.members.0.role": "owner"}, 'Unsupported value: "owner"'),
    ("Project", "quota-below-unlimited", {"spec.quotas.cores": -2}, "spec.quotas.cores"),
    ("Project", "reserved-name", {"metadata.name": "kube-demo", "metadata.x-fixed-name": True},
     "project names starting with 'kube-' are reserved"),
    ("Project", "own-parent", {"metadata.name": "selfish", "metadata.x-fixed-name": True,
                               "spec.parent": "selfish"},
     "a project cannot be its own parent"),
    ("Project", "name-not-dns-label", {"metadata.name": "demo.example", "metadata.x-fixed-name": True},
     "metadata.name must be a DNS label"),
    ("Stack", "no-template", {"spec.template": DELETE},
     "give exactly one of template (an inline HOT template) or templateRef"),
    ("Stack", "template-and-ref", {"spec.templateRef": {"configMap": "tpl"}},
     "give exactly one of template (an inline HOT template) or templateRef"),
    ("Stack", "not-hot", {"spec.template.heat_template_version": DELETE},
     "heat_template_version is missing"),
    ("Stack", "unknown-version", {"spec.template.heat_template_version": "2099-01-01"},
     'Unsupported value: "2099-01-01"'),
    ("Stack", "zero-timeout", {"spec.timeoutMinutes": 0}, "spec.timeoutMinutes"),
    ("Stack", "non-string-parameter", {"spec.parameters.count": 3}, "must be of type string"),
]


@pytest.mark.parametrize(("kind", "case", "changes", "message"), INVALID,
                         ids=[f"{k}-{c}" for k, c, _, _ in INVALID])
def test_invalid_manifest_is_rejected(api, kind, case, changes, message):
    obj = mutate(example(kind), changes)
    got = rejection(lambda: api.create(obj))
    assert message in got, got


def test_every_kind_has_five_invalid_manifests():
    counts = {k.kind: 0 for k in ALL_KINDS}
    for kind, *_ in INVALID:
        counts[kind] += 1
    assert all(n >= 5 for n in counts.values()), counts


# ------------------------------------------------------------------- overlapping subnets


def network(name: str, *cidrs: str) -> dict[str, Any]:
    return {"apiVersion": V, "kind": "Network", "metadata": {"name": name},
            "spec": {"subnets": [{"name": f"s{i}", "cidr": c, "ipVersion": 6 if ":" in c else 4}
                                 for i, c in enumerate(cidrs)]}}


def overlap_message(requested: str, name: str, other: str, other_name: str) -> str:
    return (f"Invalid input for operation: Requested subnet with cidr: {requested} (subnet {name}) "
            f"overlaps with another subnet of this network ({other_name}: {other}).")


def test_the_subnet_overlap_rule_was_accepted_by_the_api_server(cluster):
    """The rule compiled and passed the API server's CEL cost estimate (maxItems 16): the
    session's install_crds would have failed otherwise; the stored CRD carries it."""
    from kubernetes import client

    crd = cluster.api.sanitize_for_serialization(
        client.ApiextensionsV1Api(cluster.api).read_custom_resource_definition("networks.kubestack.io"))
    subnets = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["subnets"]
    assert subnets["maxItems"] == 16
    assert any("containsCIDR" in v["rule"] for v in subnets["x-kubernetes-validations"])


@pytest.mark.parametrize(("cidrs", "requested", "other"), [
    (("10.0.0.0/24", "10.0.0.128/25"), "10.0.0.128/25", "10.0.0.0/24"),   # inside an earlier one
    (("10.0.0.128/25", "10.0.0.0/24"), "10.0.0.0/24", "10.0.0.128/25"),   # around an earlier one
    (("10.0.0.0/24", "10.0.0.0/24"), "10.0.0.0/24", "10.0.0.0/24"),       # identical
    (("fd00:10::/64", "10.0.0.0/24", "fd00:10::/48"), "fd00:10::/48", "fd00:10::/64"),
], ids=["inside", "around", "identical", "ipv6"])
def test_overlapping_subnets_are_rejected(api, cidrs, requested, other):
    got = rejection(lambda: api.create(network("overlap", *cidrs)))
    i, j = cidrs.index(other), len(cidrs) - 1
    assert "spec.subnets" in got and overlap_message(requested, f"s{j}", other, f"s{i}") in got, got


@pytest.mark.parametrize("cidrs", [
    ("10.0.0.0/24", "10.0.1.0/24"),              # adjacent
    ("10.0.0.0/25", "10.0.0.128/25"),            # the two halves of a /24
    ("10.0.0.0/24", "fd00:10::/64"),             # IPv4 and IPv6
    ("0.0.0.0/0", "::/0"),                       # everything of each family
    tuple(f"10.{i}.0.0/16" for i in range(16)),  # maxItems subnets, none overlapping
], ids=["adjacent", "halves", "ipv4-ipv6", "defaults", "sixteen"])
def test_subnets_that_do_not_overlap_are_accepted(api, cidrs):
    created = api.create(network("apart", *cidrs))
    assert [s["cidr"] for s in created["spec"]["subnets"]] == list(cidrs)


def test_adding_an_overlapping_subnet_is_rejected(api):
    created = api.create(example("Network"))
    subnets = example("Network")["spec"]["subnets"]
    got = rejection(lambda: api.patch(created, {"spec": {"subnets": [
        *subnets, {"name": "extra", "cidr": "10.0.0.64/26"}]}}))
    assert overlap_message("10.0.0.64/26", "extra", "10.0.0.0/24", "private-v4") in got, got
    # sixteen subnets, the last inside the first: evaluated in full, within the runtime cost limit
    got = rejection(lambda: api.create(network("many", *(f"10.{i}.0.0/16" for i in range(15)), "10.0.7.0/24")))
    assert overlap_message("10.0.7.0/24", "s15", "10.0.0.0/16", "s0") in got, got


# ---------------------------------------------------------------------- forbidden updates

UPDATES: list[tuple[str, str, dict[str, Any], str]] = [
    ("Flavor", "vcpus", {"spec": {"vcpus": 4}}, "vcpus is immutable"),
    ("Flavor", "ram", {"spec": {"ram": 8192}}, "ram is immutable"),
    ("Flavor", "disk", {"spec": {"disk": 40}}, "disk is immutable"),
    ("KeyPair", "public-key", {"spec": {"publicKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAother"}},
     "publicKey is immutable once set"),
    ("KeyPair", "public-key-removed", {"spec": {"publicKey": None}},
     "publicKey is immutable once set"),
    ("ServerGroup", "policy", {"spec": {"policy": "soft-anti-affinity", "rules": None}},
     "policy is immutable"),
    ("ServerGroup", "rules", {"spec": {"rules": {"maxServerPerHost": 3}}}, "rules are immutable"),
    ("Image", "source", {"spec": {"source": {"url": "https://example.com/other.img"}}},
     "source is immutable"),
    ("Volume", "shrink", {"spec": {"size": 5}}, "size may only grow"),
    ("Volume", "source", {"spec": {"source": {"image": "fedora"}}}, "source is immutable"),
    ("Volume", "type", {"spec": {"volumeType": "fast"}}, "volumeType is immutable"),
    ("Network", "subnet-cidr", {"spec": {"subnets": [
        {"name": "private-v4", "cidr": "10.9.0.0/24"},
        {"name": "private-v6", "cidr": "fd00:10::/64", "ipVersion": 6}]}},
     "a subnet's cidr is immutable"),
    ("Network", "provider", {"spec": {"provider": {"networkType": "flat",
                                                   "physicalNetwork": "physnet1"}}},
     "provider attributes are immutable"),
    ("Port", "network", {"spec": {"network": "other"}}, "network is immutable"),
    ("Port", "mac", {"spec": {"macAddress": "fa:16:3e:00:00:65"}}, "macAddress cannot change"),
    ("FloatingIP", "address", {"spec": {"floatingIpAddress": "172.24.4.11"}},
     "floatingIpAddress cannot change"),
    ("FloatingIP", "network", {"spec": {"floatingNetwork": "admin/other"}},
     "floatingNetwork is immutable"),
]


@pytest.mark.parametrize(("kind", "case", "patch", "message"), UPDATES,
                         ids=[f"{k}-{c}" for k, c, _, _ in UPDATES])
def test_forbidden_update_is_rejected(api, kind, case, patch, message):
    created = api.create(example(kind))
    got = rejection(lambda: api.patch(created, patch))
    assert message in got, got


def test_allowed_updates_are_accepted(api):
    volume = api.create(example("Volume"))
    assert api.patch(volume, {"spec": {"size": 20}})["spec"]["size"] == 20
    flavor = api.create(example("Flavor"))
    assert api.patch(flavor, {"spec": {"description": "new words"}})["spec"]["description"] == "new words"
    server = api.create(example("Server"))
    patched = api.patch(server, {"spec": {"flavor": "m1.large", "powerState": "Stopped",
                                          "reboot": {"type": "HARD", "requestId": "r1"}}})
    assert patched["spec"]["flavor"] == "m1.large"
    network = api.create(example("Network"))
    added = {"name": "extra", "cidr": "10.5.0.0/24"}
    patched = api.patch(network, {"spec": {"subnets": [*example("Network")["spec"]["subnets"], added]}})
    assert [s["name"] for s in patched["spec"]["subnets"]] == ["private-v4", "private-v6", "extra"]
    floating = api.create(example("FloatingIP"))
    assert "server" not in api.patch(floating, {"spec": {"server": None}})["spec"]
    keypair = api.create({"apiVersion": V, "kind": "KeyPair", "metadata": {"name": "later"},
                          "spec": {}})
    key = example("KeyPair")["spec"]["publicKey"]
    assert api.patch(keypair, {"spec": {"publicKey": key}})["spec"]["publicKey"] == key
