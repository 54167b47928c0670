"""Heat stacks against the real API server with the operator and the simulator: a three-tier
stack built in dependency order with outputs from the children's status, a ResourceGroup
growing and shrinking, in-place resize vs replacement on update, rollback of a failed
update, signals, and deletion leaving only what the template retains."""

from __future__ import annotations

import base64
import json

import yaml
from kubernetes import client

from kubestack.cli import main as cli_main
from support.compute import G, V, create_flavor, create_image, custom, events_for, get, wait_for

STACK_LABEL = "kubestack.io/stack"


def _stack_manifest(name: str, template: dict, parameters: dict | None = None, **spec) -> dict:
    return {"apiVersion": f"{G}/{V}", "kind": "Stack", "metadata": {"name": name},
            "spec": {"template": template, "parameters": parameters or {}, **spec}}


def create_stack(cluster, namespace, name, template, parameters=None, **spec) -> dict:
    return custom(cluster).create_namespaced_custom_object(
        G, V, namespace, "stacks", _stack_manifest(name, template, parameters, **spec))


def update_stack(cluster, namespace, name, template=None, parameters=None) -> int:
    body = get(cluster, namespace, "stacks", name)
    if template is not None:
        body["spec"]["template"] = template
    if parameters is not None:
        body["spec"]["parameters"] = parameters
    updated = custom(cluster).replace_namespaced_custom_object(G, V, namespace, "stacks", name, body)
    return updated["metadata"]["generation"]


def wait_stack(cluster, namespace, name, *states, generation=None, timeout=240.0) -> dict:
    def check():
        s = get(cluster, namespace, "stacks", name) or {}
        st = s.get("status") or {}
        if generation is not None and st.get("observedGeneration") != generation:
            return None
        return s if st.get("stackStatus") in states else None

    try:
        return wait_for(check, timeout, interval=0.5, what=f"stack {name} in {states}")
    except AssertionError:
        s = get(cluster, namespace, "stacks", name) or {}
        st = s.get("status") or {}
        raise AssertionError(f"stack {name} not in {states}: {st.get('stackStatus')} "
                             f"{st.get('stackStatusReason')}\n{json.dumps(st.get('resources'), indent=1)}") from None


def children(cluster, namespace, plural, stack) -> list[dict]:
    return custom(cluster).list_namespaced_custom_object(
        G, V, namespace, plural, label_selector=f"{STACK_LABEL}={stack}")["items"]


def names(objs) -> set[str]:
    return {o["metadata"]["name"] for o in objs}


def outputs(stack_obj) -> dict:
    return {o["key"]: o.get("value") for o in stack_obj["status"]["outputs"]}


def _public_network(cluster, namespace):
    custom(cluster).create_namespaced_custom_object(G, V, namespace, "networks", {
        "apiVersion": f"{G}/{V}", "kind": "Network", "metadata": {"name": "public"},
        "spec": {"external": True, "subnets": [{"name": "public-v4", "cidr": "172.24.4.0/24"}]}})


THREE_TIER = {
    "heat_template_version": "rocky",
    "description": "web + db on a private network, a volume for the db, a floating IP for the web",
    "parameters": {
        "flavor": {"type": "string", "constraints": [{"custom_constraint": "nova.flavor"}]},
        "image": {"type": "string", "constraints": [{"custom_constraint": "glance.image"}]},
        "db_password": {"type": "string", "hidden": True, "default": "s3cret"},
    },
    "resources": {
        "net": {"type": "OS::Neutron::Net"},
        "subnet": {"type": "OS::Neutron::Subnet",
                   "properties": {"network": {"get_resource": "net"}, "cidr": "10.60.0.0/24"}},
        "web_sg": {"type": "OS::Neutron::SecurityGroup", "properties": {"rules": [
            {"protocol": "tcp", "port_range_min": 80, "port_range_max": 80, "remote_ip_prefix": "0.0.0.0/0"}]}},
        "db_data": {"type": "OS::Cinder::Volume", "properties": {"size": 1}},
        "db": {"type": "OS::Nova::Server", "depends_on": "subnet", "properties": {
            "image": {"get_param": "image"}, "flavor": {"get_param": "flavor"},
            "networks": [{"network": {"get_resource": "net"}}],
            "user_data": {"str_replace": {"template": "#!/bin/sh\necho $pw > /etc/db\n",
                                          "params": {"$pw": {"get_param": "db_password"}}}}}},
        "web_port": {"type": "OS::Neutron::Port", "depends_on": "subnet", "properties": {
            "network": {"get_resource": "net"},
            "security_groups": ["default", {"get_resource": "web_sg"}]}},
        "web": {"type": "OS::Nova::Server", "properties": {
            "image": {"get_param": "image"}, "flavor": {"get_param": "flavor"},
            "networks": [{"port": {"get_resource": "web_port"}}],
            "metadata": {"db": {"get_attr": ["db", "first_address"]}},
            "user_data": {"str_replace": {"template": "#!/bin/sh\necho DB=$db\n",
                                          "params": {"$db": {"get_attr": ["db", "first_address"]}}}}}},
        "web_fip": {"type": "OS::Neutron::FloatingIP", "properties": {"floating_network": "public"}},
        "web_fip_assoc": {"type": "OS::Neutron::FloatingIPAssociation", "properties": {
            "floatingip_id": {"get_resource": "web_fip"}, "port_id": {"get_resource": "web_port"}}},
        "token": {"type": "OS::Heat::RandomString", "properties": {"length": 16}},
    },
    "outputs": {
        "web_ip": {"value": {"get_attr": ["web", "first_address"]}, "description": "web's fixed IP"},
        "db_ip": {"value": {"get_attr": ["db", "first_address"]}},
        "public_ip": {"value": {"get_attr": ["web_fip", "floating_ip_address"]}},
        "volume_status": {"value": {"get_attr": ["db_data", "status"]}},
        "token": {"value": {"get_attr": ["token", "value"]}},
        "password": {"value": {"get_param": "db_password"}},
    },
}


ATTACHMENT = {"db_attach": {"type": "OS::Cinder::VolumeAttachment", "properties": {
    "instance_uuid": {"get_resource": "db"}, "volume_id": {"get_resource": "db_data"},
    "mountpoint": "/dev/vdb"}}}


def test_three_tier_stack_reaches_create_complete_with_outputs(cluster, kubestack, namespace):
    _public_network(cluster, namespace)
    flavor = create_flavor(cluster)
    create_image(cluster, namespace)
    create_stack(cluster, namespace, "shop", THREE_TIER, {"flavor": flavor, "image": "cirros"})
    s = wait_stack(cluster, namespace, "shop", "CREATE_COMPLETE", "CREATE_FAILED", "ROLLBACK_COMPLETE")
    assert s["status"]["stackStatus"] == "CREATE_COMPLETE", s["status"]["stackStatusReason"]

    servers = {o["metadata"]["name"]: o for o in children(cluster, namespace, "servers", "shop")}
    assert set(servers) == {"shop-db", "shop-web"}
    db, web = servers["shop-db"], servers["shop-web"]
    for obj in (db, web):
        assert obj["status"]["status"] == "ACTIVE"
        assert obj["metadata"]["ownerReferences"][0]["kind"] == "Stack"
        assert obj["metadata"]["labels"]["kubestack.io/stack-resource"] in ("db", "web")
    db_ip = db["status"]["addresses"]["shop-net"][0]["addr"]
    assert db_ip.startswith("10.60.0.")
    # get_attr resolved from the db's status into the web server's spec
    assert web["spec"]["userData"] == f"#!/bin/sh\necho DB={db_ip}\n"
    assert web["spec"]["metadata"] == {"db": db_ip}
    assert web["spec"]["networks"] == [{"port": "shop-web-port"}]
    # the subnet is an entry of its network, the attachment a block device of the db server
    net = get(cluster, namespace, "networks", "shop-net")
    assert [sn["name"] for sn in net["spec"]["subnets"]] == ["shop-subnet"]
    sg = get(cluster, namespace, "securitygroups", "shop-web-sg")
    assert sg["spec"]["rules"][0] == {"direction": "ingress", "ethertype": "IPv4", "protocol": "tcp",
                                      "portRangeMin": 80, "portRangeMax": 80, "remoteIpPrefix": "0.0.0.0/0"}
    fip = get(cluster, namespace, "floatingips", "shop-web-fip")
    assert fip["spec"]["port"] == "shop-web-port" and fip["status"]["floatingIpAddress"].startswith("172.24.4.")
    assert get(cluster, namespace, "volumes", "shop-db-data")["status"]["status"] == "available"

    out = outputs(s)
    assert out["web_ip"] == web["status"]["addresses"]["shop-net"][0]["addr"]
    assert out["db_ip"] == db_ip
    assert out["public_ip"] == fip["status"]["floatingIpAddress"]
    assert out["volume_status"] == "available"
    # secrets never in plain status
    assert out["token"] == "******" and out["password"] == "******"
    assert s["status"]["parameters"]["db_password"] == "******"
    token = client.CoreV1Api(cluster.api).read_namespaced_secret("shop-token", namespace)
    assert len(base64.b64decode(token.data["value"])) == 16
    assert "s3cret" not in json.dumps(s["status"]) and base64.b64decode(token.data["value"]).decode() \
        not in json.dumps(s["status"])
    rows = {r["name"]: r for r in s["status"]["resources"]}
    assert rows["db"]["status"] == "CREATE_COMPLETE" and rows["web"]["dependsOn"] == ["db", "web_port"]

    # the CLI reads the same status
    code = cli_main(["stack", "output", "show", "shop", "db_ip", "-f", "json",
                     "--kubeconfig", str(cluster.kubeconfig), "-n", namespace])
    assert code == 0

    # attaching the volume: a block device mapping of the db server, hot-plugged by the compute
    # side; the attachment completes when the volume is in-use
    gen = update_stack(cluster, namespace, "shop", {**THREE_TIER, "resources": {**THREE_TIER["resources"], **ATTACHMENT}})
    db = wait_for(lambda: (x := get(cluster, namespace, "servers", "shop-db"))
                  and x["spec"].get("blockDeviceMapping") and x, what="attachment applied")
    assert db["spec"]["blockDeviceMapping"] == [{"sourceType": "volume", "destinationType": "volume",
                                                 "name": "shop-db-data", "deviceName": "vdb",
                                                 "deleteOnTermination": False}]
    vol = wait_for(lambda: (v := get(cluster, namespace, "volumes", "shop-db-data"))
                   and any(a["server"] == "shop-db" for a in v["status"].get("attachments") or []) and v,
                   what="volume claimed by the server")
    assert vol["status"]["status"] in ("reserved", "attaching", "in-use")

    def attached():
        st = (get(cluster, namespace, "stacks", "shop") or {}).get("status") or {}
        return st if st.get("observedGeneration") == gen and st.get("stackStatus") == "UPDATE_COMPLETE" else None

    st = wait_for(attached, what="attachment complete")
    assert outputs({"status": st})["volume_status"] == "in-use"
    assert get(cluster, namespace, "volumes", "shop-db-data")["status"]["status"] == "in-use"
    # the rest of the stack is untouched by the update
    assert get(cluster, namespace, "servers", "shop-web")["metadata"]["uid"] == web["metadata"]["uid"]


GROUP_TEMPLATE = {
    "heat_template_version": "2016-10-14",
    "parameters": {"count": {"type": "number"}, "flavor": {"type": "string"}},
    "resources": {
        "workers": {"type": "OS::Heat::ResourceGroup", "properties": {
            "count": {"get_param": "count"},
            "resource_def": {"type": "OS::Nova::Server", "properties": {
                "image": "cirros", "flavor": {"get_param": "flavor"},
                "metadata": {"index": "%index%"}}}}},
    },
    "outputs": {"names": {"value": {"get_attr": ["workers", "name"]}},
                "refs": {"value": {"get_attr": ["workers", "refs"]}}},
}


def test_resource_group_grows_from_10_to_15_and_shrinks_to_5(cluster, kubestack, namespace):
    flavor = create_flavor(cluster, ram=256)
    create_image(cluster, namespace)
    create_stack(cluster, namespace, "farm", GROUP_TEMPLATE, {"count": "10", "flavor": flavor})
    s = wait_stack(cluster, namespace, "farm", "CREATE_COMPLETE", "CREATE_FAILED", "ROLLBACK_COMPLETE")
    assert s["status"]["stackStatus"] == "CREATE_COMPLETE", s["status"]["stackStatusReason"]
    assert names(children(cluster, namespace, "servers", "farm")) == {f"farm-workers-{i}" for i in range(10)}
    assert len(outputs(s)["refs"]) == 10

    gen = update_stack(cluster, namespace, "farm", parameters={"count": "15", "flavor": flavor})
    s = wait_stack(cluster, namespace, "farm", "UPDATE_COMPLETE", "UPDATE_FAILED", "ROLLBACK_COMPLETE",
                   generation=gen)
    assert s["status"]["stackStatus"] == "UPDATE_COMPLETE", s["status"]["stackStatusReason"]
    servers = children(cluster, namespace, "servers", "farm")
    assert names(servers) == {f"farm-workers-{i}" for i in range(15)}
    assert all(o["status"]["status"] == "ACTIVE" for o in servers)
    assert get(cluster, namespace, "servers", "farm-workers-12")["spec"]["metadata"] == {"index": "12"}
    assert sorted(outputs(s)["names"]) == sorted(f"farm-workers-{i}" for i in range(15))

    gen = update_stack(cluster, namespace, "farm", parameters={"count": "5", "flavor": flavor})
    s = wait_stack(cluster, namespace, "farm", "UPDATE_COMPLETE", "UPDATE_FAILED", "ROLLBACK_COMPLETE",
                   generation=gen)
    assert s["status"]["stackStatus"] == "UPDATE_COMPLETE"
    assert names(children(cluster, namespace, "servers", "farm")) == {f"farm-workers-{i}" for i in range(5)}
    assert outputs(s)["refs"] == [f"farm-workers-{i}" for i in range(5)]


def _app_template(flavor: str, user_data: str, extra: dict | None = None) -> dict:
    return {
        "heat_template_version": "2018-08-31",
        "resources": {
            "app": {"type": "OS::Nova::Server", "properties": {
                "image": "cirros", "flavor": flavor, "user_data": user_data}},
            "logs": {"type": "OS::Cinder::Volume", "deletion_policy": "Retain", "properties": {"size": 1}},
            **(extra or {}),
        },
        "outputs": {"app_name": {"value": {"get_attr": ["app", "name"]}}},
    }


def test_update_resizes_in_place_replaces_on_user_data_rolls_back_and_delete_retains(cluster, kubestack, namespace):
    small, large = create_flavor(cluster, vcpus=1, ram=512), create_flavor(cluster, vcpus=2, ram=1024)
    huge = create_flavor(cluster, vcpus=1000, ram=1024)
    create_image(cluster, namespace)
    create_stack(cluster, namespace, "app", _app_template(small, "#!/bin/sh\necho v1\n"))
    s = wait_stack(cluster, namespace, "app", "CREATE_COMPLETE", "CREATE_FAILED", "ROLLBACK_COMPLETE")
    assert s["status"]["stackStatus"] == "CREATE_COMPLETE", s["status"]["stackStatusReason"]
    uid = get(cluster, namespace, "servers", "app-app")["metadata"]["uid"]

    # flavor change: the same Server object, resized (confirmed automatically)
    gen = update_stack(cluster, namespace, "app", _app_template(large, "#!/bin/sh\necho v1\n"))
    s = wait_stack(cluster, namespace, "app", "UPDATE_COMPLETE", "UPDATE_FAILED", "ROLLBACK_COMPLETE", generation=gen)
    assert s["status"]["stackStatus"] == "UPDATE_COMPLETE", s["status"]["stackStatusReason"]
    srv = get(cluster, namespace, "servers", "app-app")
    assert srv["metadata"]["uid"] == uid
    assert srv["spec"]["flavor"] == large and srv["status"]["flavorName"] == large
    assert srv["status"]["flavor"]["vcpus"] == 2 and srv["spec"]["resizeConfirmation"] == "Auto"

    # user_data change: a new server replaces the old one
    gen = update_stack(cluster, namespace, "app", _app_template(large, "#!/bin/sh\necho v2\n"))
    s = wait_stack(cluster, namespace, "app", "UPDATE_COMPLETE", "UPDATE_FAILED", "ROLLBACK_COMPLETE", generation=gen)
    assert s["status"]["stackStatus"] == "UPDATE_COMPLETE", s["status"]["stackStatusReason"]
    [replacement] = children(cluster, namespace, "servers", "app")
    assert replacement["metadata"]["name"].startswith("app-app-") and replacement["metadata"]["uid"] != uid
    assert replacement["spec"]["userData"] == "#!/bin/sh\necho v2\n"
    assert get(cluster, namespace, "servers", "app-app") is None
    assert outputs(s)["app_name"] == replacement["metadata"]["name"]
    good = names(children(cluster, namespace, "servers", "app"))

    # a resource that cannot be built (no host has 1000 vCPUs): the update fails and rolls back
    broken = _app_template(large, "#!/bin/sh\necho v2\n", {"extra": {"type": "OS::Nova::Server", "properties": {
        "image": "cirros", "flavor": huge}}})
    gen = update_stack(cluster, namespace, "app", broken)
    s = wait_stack(cluster, namespace, "app", "ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "UPDATE_COMPLETE",
                   generation=gen)
    assert s["status"]["stackStatus"] == "ROLLBACK_COMPLETE", s["status"]["stackStatusReason"]
    # Events are posted asynchronously: the one reporting the failure may land after the status
    wait_for(lambda: any("No valid host" in e.message and '"extra"' in e.message
                         for e in events_for(cluster, namespace, "app") if e.type == "Warning"),
             what="a Warning Event on the failed update")
    wait_for(lambda: names(children(cluster, namespace, "servers", "app")) == good, what="extra server removed")
    assert get(cluster, namespace, "servers", good.pop())["spec"]["userData"] == "#!/bin/sh\necho v2\n"

    # delete: the servers go, the Retain'd volume stays without its owner
    custom(cluster).delete_namespaced_custom_object(G, V, namespace, "stacks", "app")
    wait_for(lambda: get(cluster, namespace, "stacks", "app") is None, timeout=180, what="stack deleted")
    assert custom(cluster).list_namespaced_custom_object(G, V, namespace, "servers")["items"] == []
    vol = get(cluster, namespace, "volumes", "app-logs")
    assert vol is not None and not vol["metadata"].get("ownerReferences")
    assert STACK_LABEL not in (vol["metadata"].get("labels") or {})


def test_wait_condition_completes_when_signalled_and_cli_round_trip(cluster, kubestack, namespace, tmp_path):
    template = {
        "heat_template_version": "2017-02-24",
        "resources": {
            "handle": {"type": "OS::Heat::WaitConditionHandle"},
            "ready": {"type": "OS::Heat::WaitCondition",
                      "properties": {"handle": {"get_resource": "handle"}, "count": 1, "timeout": 600}},
            "sg": {"type": "OS::Neutron::SecurityGroup", "depends_on": "ready",
                   "properties": {"description": "after the signal"}},
        },
        "outputs": {"data": {"value": {"get_attr": ["ready", "data"]}}},
    }
    path = tmp_path / "wait.yaml"
    path.write_text(yaml.safe_dump(template))
    kc = ["--kubeconfig", str(cluster.kubeconfig), "-n", namespace]
    assert cli_main(["stack", "create", "waiter", "-t", str(path), "-n", namespace,
                     "--kubeconfig", str(cluster.kubeconfig)]) == 0
    wait_for(lambda: any(r["name"] == "ready" and r.get("status") == "CREATE_IN_PROGRESS"
                         for r in ((get(cluster, namespace, "stacks", "waiter") or {}).get("status") or {})
                         .get("resources") or []), what="waiting on the condition")
    assert get(cluster, namespace, "securitygroups", "waiter-sg") is None
    assert cli_main(["stack", "signal", "waiter", "handle", "--data",
                     '{"status": "SUCCESS", "data": "booted"}', *kc]) == 0
    s = wait_stack(cluster, namespace, "waiter", "CREATE_COMPLETE", "CREATE_FAILED", "ROLLBACK_COMPLETE")
    assert s["status"]["stackStatus"] == "CREATE_COMPLETE"
    assert json.loads(outputs(s)["data"]) == {"1": "booted"}
    assert get(cluster, namespace, "securitygroups", "waiter-sg") is not None
    assert cli_main(["stack", "delete", "waiter", "--wait", *kc]) == 0
    assert get(cluster, namespace, "securitygroups", "waiter-sg") is None
