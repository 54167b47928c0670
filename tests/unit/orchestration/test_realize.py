"""HOT resources as kubestack manifests, readiness, and Heat attributes from child status."""

import pytest

from kubestack.api.registry import BY_KIND
from kubestack.orchestration import load_stack
from kubestack.orchestration import realize as rz

CTX = rz.Context(namespace="demo", stack="shop",
                 owner={"apiVersion": "kubestack.io/v1alpha1", "kind": "Stack", "name": "shop", "uid": "u1",
                        "controller": True, "blockOwnerDeletion": True},
                 subnet_networks={"shop-subnet": "shop-net"})


def _valid(child: rz.Child):
    """The manifest fits the kind's model: only fields the CRD knows, and values it accepts."""
    info = BY_KIND[child.kind]
    known = {f.alias or n for n, f in info.spec_model.model_fields.items()}
    assert set(child.spec) <= known, set(child.spec) - known
    return info.resource_model.model_validate(child.body)


def test_server_manifest():
    child = rz.realize("OS::Nova::Server", "web", "shop-web", {
        "image": "cirros", "flavor": "m1.small", "key_name": "k", "user_data": "#!/bin/sh\n",
        "networks": [{"network": "shop-net", "fixed_ip": "10.0.0.5"}, {"port": "shop-p"}, {"subnet": "shop-subnet"}],
        "metadata": {"a": 1, "b": "x"}, "security_groups": ["default", "web"],
        "scheduler_hints": {"group": "g", "different_host": "other"},
        "block_device_mapping_v2": [{"volume_id": "data", "device_name": "/dev/vdb"}],
    }, CTX)
    assert child.kind == "Server" and child.namespace == "demo" and child.name == "shop-web"
    assert child.body["metadata"]["labels"] == {"kubestack.io/stack": "shop", "kubestack.io/stack-resource": "web",
                                                "kubestack.io/stack-namespace": "demo"}
    assert child.body["metadata"]["ownerReferences"][0]["uid"] == "u1"
    spec = child.spec
    assert spec["networks"] == [{"network": "shop-net", "fixedIp": "10.0.0.5"}, {"port": "shop-p"},
                                {"network": "shop-net"}]
    assert spec["keyName"] == "k" and spec["userData"] == "#!/bin/sh\n" and spec["resizeConfirmation"] == "Auto"
    assert spec["metadata"] == {"a": "1", "b": "x"}
    assert spec["serverGroup"] == "g" and spec["schedulerHints"] == {"group": "g", "differentHost": ["other"]}
    assert spec["blockDeviceMapping"] == [{"sourceType": "volume", "destinationType": "volume", "name": "data",
                                           "deviceName": "vdb"}]
    _valid(child)


def test_server_without_boot_source_is_an_error():
    with pytest.raises(rz.RealizeError, match="needs image"):
        rz.realize("OS::Nova::Server", "web", "shop-web", {"flavor": "f"}, CTX)
    child = rz.realize("OS::Nova::Server", "web", "shop-web", {"flavor": "f", "block_device_mapping": [
        {"volume_id": "root", "device_name": "vda"}]}, CTX)
    assert child.spec["blockDeviceMapping"][0]["bootIndex"] == 0


def test_neutron_manifests():
    net = rz.realize("OS::Neutron::Net", "net", "shop-net", {"value_specs": {
        "provider:network_type": "vlan", "provider:physical_network": "physnet1",
        "provider:segmentation_id": "42", "router:external": True}, "shared": True}, CTX)
    assert net.spec["provider"] == {"networkType": "vlan", "physicalNetwork": "physnet1", "segmentationId": 42}
    assert net.spec["external"] is True and net.spec["shared"] is True
    _valid(net)
    sg = rz.realize("OS::Neutron::SecurityGroup", "sg", "shop-sg", {"rules": [
        {"protocol": "tcp", "port_range_min": 22, "port_range_max": 22, "remote_ip_prefix": "10.0.0.1/8",
         "direction": "ingress", "ethertype": "IPv4"},
        {"protocol": "icmp", "port_range_min": 8, "port_range_max": 0},
        {"protocol": "6", "remote_group_id": "other"}]}, CTX)
    r = sg.spec["rules"]
    assert r[0] == {"direction": "ingress", "ethertype": "IPv4", "protocol": "tcp", "portRangeMin": 22,
                    "portRangeMax": 22, "remoteIpPrefix": "10.0.0.0/8"}
    assert r[1]["icmpType"] == 8 and r[1]["icmpCode"] == 0 and "portRangeMin" not in r[1]
    assert r[2]["protocol"] == 6 and r[2]["remoteGroup"] == "other"
    _valid(sg)
    port = rz.realize("OS::Neutron::Port", "p", "shop-p", {"network": "shop-net", "fixed_ips": [
        {"subnet": "shop-subnet", "ip_address": "10.0.0.9"}], "mac_address": "FA:16:3E:00:00:01",
        "allowed_address_pairs": [{"ip_address": "10.0.0.0/24"}]}, CTX)
    assert port.spec["fixedIps"] == [{"subnet": "shop-subnet", "ipAddress": "10.0.0.9"}]
    assert port.spec["macAddress"] == "fa:16:3e:00:00:01"
    _valid(port)
    fip = rz.realize("OS::Neutron::FloatingIP", "fip", "shop-fip", {"floating_network": "public", "port_id": "shop-p"}, CTX)
    assert fip.spec == {"floatingNetwork": "public", "port": "shop-p"}
    router = rz.realize("OS::Neutron::Router", "r", "shop-r", {"external_gateway_info": {"network": "public"}}, CTX)
    assert router.spec["externalGateway"] == {"network": "public", "enableSnat": True}
    _valid(router)


def test_other_kinds():
    vol = rz.realize("OS::Cinder::Volume", "v", "shop-v", {"size": 2, "image": "cirros", "metadata": {"k": "v"}}, CTX)
    assert vol.spec == {"size": 2, "source": {"image": "cirros"}, "metadata": {"k": "v"}}
    _valid(vol)
    with pytest.raises(rz.RealizeError, match="size is required"):
        rz.realize("OS::Cinder::Volume", "v", "shop-v", {}, CTX)
    kp = rz.realize("OS::Nova::KeyPair", "k", "shop-k", {"name": "k"}, CTX)
    assert kp.spec == {}
    sg = rz.realize("OS::Nova::ServerGroup", "g", "shop-g", {"policies": ["affinity"]}, CTX)
    assert sg.spec == {"policy": "affinity"}
    flavor = rz.realize("OS::Nova::Flavor", "f", rz.flavor_name("demo", "shop", "f"),
                        {"ram": 512, "vcpus": 1, "is_public": False, "extra_specs": {"hw:cpu_policy": "dedicated"}}, CTX)
    assert flavor.namespace is None and flavor.name == "demo-shop-f"
    assert "ownerReferences" not in flavor.body["metadata"] and "namespace" not in flavor.body["metadata"]
    assert flavor.spec["projects"] == ["demo"] and flavor.spec["isPublic"] is False
    _valid(flavor)
    img = rz.realize("OS::Glance::WebImage", "i", "shop-i", {"location": "https://example.com/x.qcow2",
                                                             "disk_format": "qcow2", "os_distro": "cirros"}, CTX)
    assert img.spec["source"] == {"url": "https://example.com/x.qcow2"} and img.spec["properties"] == {"os_distro": "cirros"}
    _valid(img)
    secret = rz.realize("OS::Heat::RandomString", "pw", "shop-pw", {"length": 8}, CTX, secret_value="abcdefgh")
    assert secret.kind == "Secret" and secret.body["stringData"] == {"value": "abcdefgh"}
    assert rz.realize("OS::Heat::WaitConditionHandle", "h", "shop-h", {}, CTX) is None


def test_deletion_policy_and_managed_fields_recorded():
    child = rz.realize("OS::Neutron::SecurityGroup", "sg", "shop-sg", {"description": "d"}, CTX, "Retain")
    ann = child.body["metadata"]["annotations"]
    assert ann[rz.POLICY_ANNOTATION] == "Retain" and ann[rz.FIELDS_ANNOTATION] == "description,rules"


def test_contributions_are_idempotent_and_removable():
    sub = rz.realize("OS::Neutron::Subnet", "subnet", "shop-subnet",
                     {"network": "shop-net", "cidr": "10.0.0.0/24", "gateway_ip": "", "ip_version": 4}, CTX)
    assert isinstance(sub, rz.Contribution) and sub.kind == "Network" and sub.target == "shop-net"
    spec = {"subnets": [{"name": "other", "cidr": "10.1.0.0/24"}]}
    once = sub.apply(spec)
    assert once["subnets"][1] == {"name": "shop-subnet", "cidr": "10.0.0.0/24", "ipVersion": 4,
                                  "gatewayIp": "none", "enableDhcp": True}
    assert sub.apply(once) == once and sub.present(once) and not sub.present(spec)
    assert sub.remove(once) == spec
    att = rz.realize("OS::Cinder::VolumeAttachment", "a", "shop-a",
                     {"instance_uuid": "shop-db", "volume_id": "shop-data", "mountpoint": "/dev/vdc"}, CTX)
    assert att.target == "shop-db" and att.entry == {"sourceType": "volume", "destinationType": "volume",
                                                     "name": "shop-data", "deviceName": "vdc"}
    with_defaults = {"blockDeviceMapping": [{**att.entry, "deleteOnTermination": False}]}
    assert att.present(with_defaults)
    assoc = rz.realize("OS::Neutron::FloatingIPAssociation", "x", "shop-x",
                       {"floatingip_id": "shop-fip", "port_id": "shop-p"}, CTX)
    applied = assoc.apply({"floatingNetwork": "public"})
    assert applied == {"floatingNetwork": "public", "port": "shop-p"} and assoc.remove(applied)["port"] is None
    ri = rz.realize("OS::Neutron::RouterInterface", "ri", "shop-ri", {"router": "shop-r", "subnet": "shop-subnet"}, CTX)
    assert ri.entry == {"network": "shop-net", "subnet": "shop-subnet"}
    assert rz.Contribution.from_dict(ri.to_dict()) == ri


def test_merge_contributed_keeps_other_resources_entries():
    desired = {"flavor": "big", "image": "cirros"}
    current = {"flavor": "small", "image": "cirros", "blockDeviceMapping": [
        {"sourceType": "volume", "destinationType": "volume", "name": "data"}]}
    merged = rz.merge_contributed("Server", desired, current)
    assert merged["blockDeviceMapping"] == current["blockDeviceMapping"]
    assert rz.spec_patch(current, merged, {"flavor", "image", "userData"}) == {"flavor": "big"}
    assert rz.spec_patch({"userData": "x", "flavor": "big"}, {"flavor": "big"}, {"flavor", "userData"}) == {"userData": None}
    net = rz.merge_contributed("Network", {"shared": False}, {"subnets": [{"name": "s"}]})
    assert net == {"shared": False, "subnets": [{"name": "s"}]}


def test_update_patch_brings_an_existing_child_to_the_template():
    child = rz.realize("OS::Nova::Server", "web", "shop-web", {"image": "cirros", "flavor": "m1.large"}, CTX)
    ann = child.body["metadata"]["annotations"]
    attached = {"sourceType": "volume", "destinationType": "volume", "name": "data"}
    obj = {"metadata": {"name": "shop-web", "annotations": dict(ann)},
           "spec": {**child.spec, "flavor": "m1.small", "userData": "old", "blockDeviceMapping": [attached]}}
    # what differs is set, what the template no longer gives cleared, contributed entries kept
    obj["metadata"]["annotations"][rz.FIELDS_ANNOTATION] += ",userData"
    assert rz.update_patch(child, obj) == {"spec": {"flavor": "m1.large", "userData": None},
                                           "metadata": {"annotations": {rz.FIELDS_ANNOTATION: ann[rz.FIELDS_ANNOTATION]}}}
    same = {"metadata": {"annotations": dict(ann)}, "spec": {**child.spec, "blockDeviceMapping": [attached]}}
    assert rz.update_patch(child, same) is None
    retained = rz.realize("OS::Nova::Server", "web", "shop-web", {"image": "cirros", "flavor": "m1.large"}, CTX,
                          "Retain")
    assert rz.update_patch(retained, same) == {"metadata": {"annotations": {rz.POLICY_ANNOTATION: "Retain"}}}


def test_contribution_patch_is_guarded_and_only_when_needed():
    sub = rz.realize("OS::Neutron::Subnet", "subnet", "shop-subnet", {"network": "shop-net", "cidr": "10.0.0.0/24"},
                     CTX)
    net = {"metadata": {"name": "shop-net", "resourceVersion": "7"}, "spec": {"subnets": [{"name": "other"}]}}
    patch = sub.patch(net)
    assert patch["metadata"] == {"resourceVersion": "7"} and patch["spec"]["subnets"][0] == {"name": "other"}
    assert sub.patch(net, remove=True) is None
    net["spec"] = sub.apply(net["spec"])
    assert sub.patch(net) is None
    assert sub.patch(net, remove=True) == {"metadata": {"resourceVersion": "7"}, "spec": {"subnets": [{"name": "other"}]}}
    assoc = rz.realize("OS::Neutron::FloatingIPAssociation", "x", "shop-x",
                       {"floatingip_id": "shop-fip", "port_id": "shop-p"}, CTX)
    fip = {"metadata": {"resourceVersion": "3"}, "spec": {"floatingNetwork": "public"}}
    # an association sets (or clears) only its own fields
    assert assoc.patch(fip) == {"metadata": {"resourceVersion": "3"}, "spec": {"port": "shop-p"}}
    fip["spec"]["port"] = "shop-p"
    assert assoc.patch(fip, remove=True) == {"metadata": {"resourceVersion": "3"}, "spec": {"port": None}}


def test_subnet_networks_of_a_stack():
    stack = load_stack({"heat_template_version": "2021-04-16", "resources": {
        "net": {"type": "OS::Neutron::Net"},
        "sub": {"type": "OS::Neutron::Subnet", "properties": {"network": {"get_resource": "net"}, "cidr": "10.0.0.0/24"}},
    }}, stack_name="shop")
    assert rz.subnet_networks(stack) == {stack.physical_name("sub"): stack.physical_name("net")}


def _obj(kind, spec=None, status=None, generation=1):
    return {"kind": kind, "metadata": {"name": "x", "namespace": "demo", "generation": generation},
            "spec": spec or {}, "status": {"observedGeneration": generation, **(status or {})}}


def test_readiness():
    R = rz.readiness
    assert R("OS::Nova::Server", None).state == rz.IN_PROGRESS
    srv = _obj("Server", {"flavor": "f"}, {"status": "ACTIVE", "flavorName": "f"})
    assert R("OS::Nova::Server", srv).state == rz.COMPLETE
    resizing = _obj("Server", {"flavor": "g"}, {"status": "ACTIVE", "flavorName": "f"})
    assert R("OS::Nova::Server", resizing).state == rz.IN_PROGRESS
    stale = _obj("Server", {"flavor": "f"}, {"status": "ACTIVE", "flavorName": "f"}, generation=2)
    stale["status"]["observedGeneration"] = 1
    assert R("OS::Nova::Server", stale).state == rz.IN_PROGRESS
    err = R("OS::Nova::Server", _obj("Server", {"flavor": "f"}, {"status": "ERROR", "fault": {"message": "No valid host was found."}}))
    assert err.state == rz.FAILED and err.reason == "No valid host was found."
    assert R("OS::Cinder::Volume", _obj("Volume", status={"status": "available"})).state == rz.COMPLETE
    assert R("OS::Cinder::Volume", _obj("Volume", status={"status": "error", "reason": "x"})).state == rz.FAILED
    assert R("OS::Neutron::Net", _obj("Network", status={"status": "ACTIVE"})).state == rz.COMPLETE
    assert R("OS::Glance::WebImage", _obj("Image", status={"status": "killed"})).state == rz.FAILED
    assert R("OS::Neutron::Router", _obj("Router", status={"status": "DOWN", "reason": "not realised"})).state == rz.COMPLETE
    kp = _obj("KeyPair", status={"conditions": [{"type": "Ready", "status": "True"}]})
    assert R("OS::Nova::KeyPair", kp).state == rz.COMPLETE
    sub = rz.realize("OS::Neutron::Subnet", "subnet", "shop-subnet", {"network": "shop-net", "cidr": "10.0.0.0/24"}, CTX)
    net = _obj("Network", {"subnets": [sub.entry]}, {"status": "ACTIVE", "subnets": []})
    assert R("OS::Neutron::Subnet", net, sub).state == rz.IN_PROGRESS
    net["status"]["subnets"] = [{"name": "shop-subnet", "cidr": "10.0.0.0/24", "gatewayIp": "10.0.0.1"}]
    assert R("OS::Neutron::Subnet", net, sub).state == rz.COMPLETE
    vol = _obj("Volume", status={"status": "reserved", "attachments": [{"server": "shop-db"}]})
    assert rz.attachment_readiness(vol, "shop-db").state == rz.IN_PROGRESS
    vol["status"]["status"] = "in-use"
    assert rz.attachment_readiness(vol, "shop-db").state == rz.COMPLETE


def test_attributes_from_status_resolve_get_attr():
    server = _obj("Server", {"flavor": "f"}, {"status": "ACTIVE", "virtualMachine": "shop-db", "addresses": {
        "private": [{"addr": "10.0.0.5", "version": 4, "type": "fixed", "macAddr": "fa:16:3e:00:00:01"},
                    {"addr": "172.24.4.9", "version": 4, "type": "floating"}]}})
    a = rz.attributes("OS::Nova::Server", server, "shop-db")
    assert a["first_address"] == "10.0.0.5" and a["networks"] == {"private": ["10.0.0.5", "172.24.4.9"]}
    assert a["accessIPv4"] == "172.24.4.9" and a["name"] == "shop-db"
    assert a["addresses"]["private"][0]["OS-EXT-IPS-MAC:mac_addr"] == "fa:16:3e:00:00:01"
    fip = rz.attributes("OS::Neutron::FloatingIP", _obj("FloatingIP", {"floatingNetwork": "public"},
                                                         {"floatingIpAddress": "172.24.4.9"}), "shop-fip")
    assert fip["floating_ip_address"] == "172.24.4.9"
    net = _obj("Network", {"subnets": [{"name": "shop-subnet", "cidr": "10.0.0.0/24"}]},
               {"subnets": [{"name": "shop-subnet", "cidr": "10.0.0.0/24", "gatewayIp": "10.0.0.1"}]})
    sub = rz.attributes("OS::Neutron::Subnet", None, "shop-subnet", target=net)
    assert sub["cidr"] == "10.0.0.0/24" and sub["gateway_ip"] == "10.0.0.1" and sub["network_id"] == "x"
    assert rz.attributes("OS::Heat::RandomString", None, "p", secret={"value": "s"}) == {"value": "s"}
    # every attribute of the type is a key, so get_attr never waits on a missing one
    from kubestack.orchestration.resources import REGISTRY

    for t in ("OS::Nova::Server", "OS::Cinder::Volume", "OS::Neutron::Port", "OS::Neutron::Net"):
        assert REGISTRY[t].attributes <= set(rz.attributes(t, _obj("X"), "n"))

    stack = load_stack({"heat_template_version": "rocky", "resources": {
        "db": {"type": "OS::Nova::Server", "properties": {"image": "i", "flavor": "f"}},
        "web": {"type": "OS::Nova::Server", "properties": {"image": "i", "flavor": "f", "user_data": {
            "str_replace": {"template": "DB=$db", "params": {"$db": {"get_attr": ["db", "first_address"]}}}}}}},
        "outputs": {"ip": {"value": {"get_attr": ["db", "networks", "private", 0]}}}})
    attrs = {"db": a}
    assert stack.resolve("web", attrs)["user_data"] == "DB=10.0.0.5"
    assert stack.outputs(attrs) == {"ip": "10.0.0.5"}
