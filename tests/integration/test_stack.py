"""Heat stacks against the real API server with the operator and the simulator: a three-tier
stack built in dependency order with outputs from the children's status, a ResourceGroup
growing and shrinking, and updated in batches (rolling_update), an AutoScalingGroup sized by
its spec and by scaling signals, in-place resize vs replacement on update, a template from a
ConfigMap (templateRef), failed creates with and without rollback, WaitCondition and stack
timeouts, rollback of a failed update, signals, objects of the same name the stack did not
make, and deletion leaving only what the template retains."""

from __future__ import annotations

import base64
import copy
import json

import yaml
from kubernetes import client, watch

from kubestack.cli import main as cli_main
from support.compute import G, V, create_flavor, create_image, custom, events_for, events_with, get, wait_for

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

    # removal_policies take given members out (by name or reference), and their names are
    # never used again: count 3 keeps 0, 2, 4; count 4 then adds 5, not 1 or 3
    def with_removal(count: str) -> int:
        t = copy.deepcopy(GROUP_TEMPLATE)
        t["resources"]["workers"]["properties"]["removal_policies"] = [{"resource_list": ["1", "farm-workers-3"]}]
        t["outputs"]["removed"] = {"value": {"get_attr": ["workers", "removed_rsrc_list"]}}
        return update_stack(cluster, namespace, "farm", t, {"count": count, "flavor": flavor})

    s = wait_stack(cluster, namespace, "farm", "UPDATE_COMPLETE", "UPDATE_FAILED", "ROLLBACK_COMPLETE",
                   generation=with_removal("3"))
    assert s["status"]["stackStatus"] == "UPDATE_COMPLETE", s["status"]["stackStatusReason"]
    assert outputs(s)["refs"] == ["farm-workers-0", "farm-workers-2", "farm-workers-4"]
    assert outputs(s)["removed"] == ["1", "3"]
    assert names(children(cluster, namespace, "servers", "farm")) == {"farm-workers-0", "farm-workers-2", "farm-workers-4"}
    s = wait_stack(cluster, namespace, "farm", "UPDATE_COMPLETE", "UPDATE_FAILED", "ROLLBACK_COMPLETE",
                   generation=with_removal("4"))
    assert outputs(s)["refs"] == ["farm-workers-0", "farm-workers-2", "farm-workers-4", "farm-workers-5"]
    assert get(cluster, namespace, "servers", "farm-workers-5")["spec"]["metadata"] == {"index": "5"}


def _rolling_template(description: str) -> dict:
    return {
        "heat_template_version": "2016-10-14",
        "resources": {"sgs": {
            "type": "OS::Heat::ResourceGroup",
            "update_policy": {"rolling_update": {"max_batch_size": 2, "min_in_service": 2}},
            "properties": {"count": 4, "resource_def": {
                "type": "OS::Neutron::SecurityGroup", "properties": {"description": description}}}}},
    }


def _member_states(cluster, namespace, stack: str, since: str) -> list[dict[str, tuple[str, bool]]]:
    """Every state the stack's SecurityGroups went through since resourceVersion ``since``, in
    the API server's order (a watch replays each change): name -> (description, ready for
    that spec)."""
    now = {o["metadata"]["name"]: o for o in children(cluster, namespace, "securitygroups", stack)}
    stream = watch.Watch().stream(custom(cluster).list_namespaced_custom_object, G, V, namespace, "securitygroups",
                                  label_selector=f"{STACK_LABEL}={stack}", resource_version=since,
                                  timeout_seconds=3)
    seen: dict[str, dict] = {}
    states = []
    for event in stream:
        obj = event["object"]
        seen[obj["metadata"]["name"]] = obj
        states.append({name: _sg_state(o) for name, o in seen.items()})
        if all(seen.get(n, {}).get("metadata", {}).get("resourceVersion") == o["metadata"]["resourceVersion"]
               for n, o in now.items()):
            break  # caught up with what the stack has now
    return states


def _sg_state(sg: dict) -> tuple[str, bool]:
    st = sg.get("status") or {}
    ready = st.get("observedGeneration") == sg["metadata"]["generation"] and any(
        c["type"] == "Ready" and c["status"] == "True" for c in st.get("conditions") or [])
    return sg["spec"].get("description"), ready


def test_resource_group_rolling_update_changes_two_members_at_a_time(cluster, kubestack, namespace):
    create_stack(cluster, namespace, "roll", _rolling_template("v1"))
    s = wait_stack(cluster, namespace, "roll", "CREATE_COMPLETE", "CREATE_FAILED", "ROLLBACK_COMPLETE")
    assert s["status"]["stackStatus"] == "CREATE_COMPLETE", s["status"]["stackStatusReason"]
    members = {f"roll-sgs-{i}" for i in range(4)}
    assert names(children(cluster, namespace, "securitygroups", "roll")) == members
    since = custom(cluster).list_namespaced_custom_object(G, V, namespace, "securitygroups")["metadata"][
        "resourceVersion"]

    gen = update_stack(cluster, namespace, "roll", _rolling_template("v2"))
    s = wait_stack(cluster, namespace, "roll", "UPDATE_COMPLETE", "UPDATE_FAILED", "ROLLBACK_COMPLETE",
                   generation=gen)
    assert s["status"]["stackStatus"] == "UPDATE_COMPLETE", s["status"]["stackStatusReason"]

    # every state the members went through, in order: never more than two of them changing,
    # never fewer than two in service (untouched, or changed and ready again)
    states = _member_states(cluster, namespace, "roll", since)
    first_v2: dict[str, int] = {}
    for n, state in enumerate(states):
        full = {name: state.get(name, ("v1", True)) for name in members}
        changing = [name for name, (description, ready) in full.items() if description == "v2" and not ready]
        in_service = [name for name, (_, ready) in full.items() if ready]
        assert len(changing) <= 2 and len(in_service) >= 2, state
        for name, (description, _) in full.items():
            if description == "v2":
                first_v2.setdefault(name, n)
    assert states[-1] == {name: ("v2", True) for name in members}
    # Heat's order: the highest indices first; the second batch once the first was ready
    first, second = {"roll-sgs-2", "roll-sgs-3"}, {"roll-sgs-0", "roll-sgs-1"}
    start_second = min(first_v2[name] for name in second)
    assert max(first_v2[name] for name in first) < start_second
    assert all(states[start_second - 1].get(name) == ("v2", True) for name in first)
    assert not _stack_record(cluster, namespace, "roll").get("rollouts")


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


# ---- AutoScalingGroup -----------------------------------------------------------------------

ASG_TEMPLATE = {
    "heat_template_version": "2016-10-14",
    "parameters": {"flavor": {"type": "string"},
                   "min": {"type": "number", "default": 1},
                   "max": {"type": "number", "default": 4},
                   "desired": {"type": "number", "default": 2}},
    "resources": {
        "asg": {"type": "OS::Heat::AutoScalingGroup", "properties": {
            "min_size": {"get_param": "min"}, "max_size": {"get_param": "max"},
            "desired_capacity": {"get_param": "desired"},
            "resource": {"type": "OS::Nova::Server", "properties": {
                "image": "cirros", "flavor": {"get_param": "flavor"}}}}},
        "scale_up": {"type": "OS::Heat::ScalingPolicy", "properties": {
            "adjustment_type": "change_in_capacity", "scaling_adjustment": 1,
            "auto_scaling_group_id": {"get_resource": "asg"}}},
        "scale_down": {"type": "OS::Heat::ScalingPolicy", "properties": {
            "adjustment_type": "change_in_capacity", "scaling_adjustment": -1, "cooldown": 3600,
            "auto_scaling_group_id": {"get_resource": "asg"}}},
    },
    "outputs": {"size": {"value": {"get_attr": ["asg", "current_size"]}},
                "refs": {"value": {"get_attr": ["asg", "refs"]}},
                "names": {"value": {"get_attr": ["asg", "outputs_list", "name"]}}},
}


def _stack_record(cluster, namespace, stack) -> dict:
    """The controller's record (status.stateSecret): signals taken, capacities..."""
    name = get(cluster, namespace, "stacks", stack)["status"]["stateSecret"]
    data = client.CoreV1Api(cluster.api).read_namespaced_secret(name, namespace).data
    return json.loads(base64.b64decode(data["state.json"]))


def _server_uids(cluster, namespace, stack) -> dict[str, str]:
    return {o["metadata"]["name"]: o["metadata"]["uid"] for o in children(cluster, namespace, "servers", stack)}


def test_autoscaling_group_scales_with_desired_capacity_and_signals(cluster, kubestack, namespace):
    flavor = create_flavor(cluster, ram=256)
    create_image(cluster, namespace)
    kc = ["--kubeconfig", str(cluster.kubeconfig), "-n", namespace]
    params = {"flavor": flavor, "desired": "2"}
    create_stack(cluster, namespace, "asg", ASG_TEMPLATE, params)
    s = wait_stack(cluster, namespace, "asg", "CREATE_COMPLETE", "CREATE_FAILED", "ROLLBACK_COMPLETE")
    assert s["status"]["stackStatus"] == "CREATE_COMPLETE", s["status"]["stackStatusReason"]
    first = _server_uids(cluster, namespace, "asg")
    assert len(first) == 2 and all(n.startswith("asg-asg-") for n in first)
    assert outputs(s)["size"] == 2 and sorted(outputs(s)["refs"]) == sorted(first)
    assert sorted(outputs(s)["names"]) == sorted(first)
    rows = {r["name"]: r for r in s["status"]["resources"]}
    assert rows["asg"]["status"] == "CREATE_COMPLETE" and rows["asg"]["kind"] == "Server"

    # desired_capacity 2 -> 3: one server more, the two there stay as they are
    gen = update_stack(cluster, namespace, "asg", parameters={**params, "desired": "3"})
    s = wait_stack(cluster, namespace, "asg", "UPDATE_COMPLETE", "UPDATE_FAILED", "ROLLBACK_COMPLETE", generation=gen)
    assert s["status"]["stackStatus"] == "UPDATE_COMPLETE", s["status"]["stackStatusReason"]
    grown = _server_uids(cluster, namespace, "asg")
    assert len(grown) == 3 and all(grown[n] == uid for n, uid in first.items())
    assert all(o["status"]["status"] == "ACTIVE" for o in children(cluster, namespace, "servers", "asg"))
    assert outputs(s)["size"] == 3
    # refs are in creation order, as Heat lists a group's members
    assert outputs(s)["refs"][:2] == sorted(first, key=outputs(s)["refs"].index)

    # a scaling policy signal adds one (Heat's alarm hitting signal_url)
    assert cli_main(["stack", "signal", "asg", "scale_up", *kc]) == 0

    def scaled_to(n):
        def check():
            st = (get(cluster, namespace, "stacks", "asg") or {}).get("status") or {}
            out = {o["key"]: o.get("value") for o in st.get("outputs") or []}
            servers = children(cluster, namespace, "servers", "asg")
            return (out.get("size") == n and len(servers) == n and st.get("stackStatus") == "UPDATE_COMPLETE"
                    and all((o.get("status") or {}).get("status") == "ACTIVE" for o in servers)) and st
        return check

    wait_for(scaled_to(4), timeout=180, what="scaled up to 4 by the policy")
    newest = [n for n in _server_uids(cluster, namespace, "asg") if n not in grown]
    assert len(newest) == 1

    # an update that leaves the group's definition alone leaves its size alone too
    gen = update_stack(cluster, namespace, "asg", {**ASG_TEMPLATE, "outputs": {
        **ASG_TEMPLATE["outputs"], "note": {"value": "unrelated"}}})
    s = wait_stack(cluster, namespace, "asg", "UPDATE_COMPLETE", "UPDATE_FAILED", "ROLLBACK_COMPLETE", generation=gen)
    assert s["status"]["stackStatus"] == "UPDATE_COMPLETE", s["status"]["stackStatusReason"]
    assert outputs(s)["size"] == 4 and outputs(s)["note"] == "unrelated"
    assert len(_server_uids(cluster, namespace, "asg")) == 4

    # a policy with a cooldown scales once; a signal while the group cools down is dropped
    assert cli_main(["stack", "signal", "asg", "scale_down", *kc]) == 0
    wait_for(scaled_to(3), timeout=180, what="scaled down to 3 by the policy")
    assert newest[0] in _server_uids(cluster, namespace, "asg")  # the oldest went
    assert cli_main(["stack", "signal", "asg", "scale_down", *kc]) == 0
    wait_for(lambda: "2" in _stack_record(cluster, namespace, "asg")["signals"].get("scale_down", []),
             what="the second signal taken")
    assert len(_server_uids(cluster, namespace, "asg")) == 3
    assert outputs(get(cluster, namespace, "stacks", "asg"))["size"] == 3

    # desired_capacity 1: Heat removes the oldest members first, the newest stays
    gen = update_stack(cluster, namespace, "asg", parameters={**params, "desired": "1"})
    s = wait_stack(cluster, namespace, "asg", "UPDATE_COMPLETE", "UPDATE_FAILED", "ROLLBACK_COMPLETE", generation=gen)
    assert s["status"]["stackStatus"] == "UPDATE_COMPLETE", s["status"]["stackStatusReason"]
    wait_for(lambda: len(children(cluster, namespace, "servers", "asg")) == 1, what="scaled down to 1")
    assert list(_server_uids(cluster, namespace, "asg")) == newest
    assert outputs(s)["size"] == 1 and outputs(s)["refs"] == newest

    # a capacity outside min_size..max_size is refused, and the group stays as it is
    gen = update_stack(cluster, namespace, "asg", parameters={**params, "desired": "5"})
    s = wait_stack(cluster, namespace, "asg", "UPDATE_FAILED", "UPDATE_COMPLETE", generation=gen)
    assert s["status"]["stackStatus"] == "UPDATE_FAILED"
    assert "desired_capacity 5 must be between min_size 1 and max_size 4" in s["status"]["stackStatusReason"]
    assert list(_server_uids(cluster, namespace, "asg")) == newest


# ---- templateRef ----------------------------------------------------------------------------

REF_TEMPLATE = """\
heat_template_version: 2018-08-31
description: a server whose user data is another file of the same ConfigMap
parameters:
  flavor: {type: string}
  motd: {type: string, hidden: true}
resources:
  web:
    type: OS::Nova::Server
    properties:
      image: cirros
      flavor: {get_param: flavor}
      metadata: {motd: {get_param: motd}}
      user_data: {get_file: boot.sh}
      user_data_format: RAW
outputs:
  name: {value: {get_attr: [web, name]}}
"""


def test_template_from_a_configmap_applied_before_the_configmap_exists(cluster, kubestack, namespace):
    flavor = create_flavor(cluster, ram=256)
    create_image(cluster, namespace)
    # `kubectl apply -f dir/` may create the Stack before the ConfigMap holding its template
    custom(cluster).create_namespaced_custom_object(G, V, namespace, "stacks", {
        "apiVersion": f"{G}/{V}", "kind": "Stack", "metadata": {"name": "fromcm"},
        "spec": {"templateRef": {"configMap": "web-template", "key": "web.yaml"}, "parameters": {"flavor": flavor},
                 "parametersSecretRef": {"name": "web-secrets"}}})
    s = wait_stack(cluster, namespace, "fromcm", "CREATE_FAILED", "CREATE_COMPLETE")
    assert s["status"]["stackStatus"] == "CREATE_FAILED"
    assert s["status"]["stackStatusReason"] == "ConfigMap web-template (templateRef) could not be found."
    assert children(cluster, namespace, "servers", "fromcm") == []

    core = client.CoreV1Api(cluster.api)
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "web-template"},
                                                  "data": {"web.yaml": REF_TEMPLATE, "boot.sh": "#!/bin/sh\necho hi\n"}})
    # the same for the Secret holding hidden parameters
    wait_for(lambda: (get(cluster, namespace, "stacks", "fromcm")["status"].get("stackStatusReason") ==
                      "Secret web-secrets (parametersSecretRef) could not be found."), timeout=120,
             what="the ConfigMap found, the Secret waited for")
    core.create_namespaced_secret(namespace, {"metadata": {"name": "web-secrets"}, "stringData": {"motd": "hello"}})
    s = wait_stack(cluster, namespace, "fromcm", "CREATE_COMPLETE", "ROLLBACK_COMPLETE", timeout=300)
    assert s["status"]["stackStatus"] == "CREATE_COMPLETE", s["status"]["stackStatusReason"]
    assert outputs(s)["name"] == "fromcm-web"
    web = get(cluster, namespace, "servers", "fromcm-web")
    assert web["spec"]["userData"] == "#!/bin/sh\necho hi\n" and web["spec"]["metadata"] == {"motd": "hello"}
    assert s["status"]["parameters"]["motd"] == "******"

    # the template is read when the spec changes (as `openstack stack update` sends it): a new
    # ConfigMap with a changed template, pointed at by the spec, updates the stack
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "web-template-v2"}, "data": {
        "web.yaml": REF_TEMPLATE.replace("name: {value: {get_attr: [web, name]}}",
                                         "name: {value: {get_attr: [web, name]}}\n  v: {value: two}"),
        "boot.sh": "#!/bin/sh\necho hi\n"}})
    body = get(cluster, namespace, "stacks", "fromcm")
    body["spec"]["templateRef"] = {"configMap": "web-template-v2", "key": "web.yaml"}
    gen = custom(cluster).replace_namespaced_custom_object(G, V, namespace, "stacks", "fromcm", body)["metadata"]["generation"]
    s = wait_stack(cluster, namespace, "fromcm", "UPDATE_COMPLETE", "UPDATE_FAILED", "ROLLBACK_COMPLETE", generation=gen)
    assert s["status"]["stackStatus"] == "UPDATE_COMPLETE", s["status"]["stackStatusReason"]
    assert outputs(s) == {"name": "fromcm-web", "v": "two"}

    # deleting the stack never deletes the ConfigMaps it read
    custom(cluster).delete_namespaced_custom_object(G, V, namespace, "stacks", "fromcm")
    wait_for(lambda: get(cluster, namespace, "stacks", "fromcm") is None, timeout=180, what="stack deleted")
    assert core.read_namespaced_config_map("web-template", namespace).data["boot.sh"]
    assert core.read_namespaced_config_map("web-template-v2", namespace)
    assert core.read_namespaced_secret("web-secrets", namespace).data["motd"]


# ---- failed creates: rollback or not --------------------------------------------------------

def _doomed_template(good: str, bad: str) -> dict:
    """A network, two volumes (one Retain) and a server that fits, beside one that can never fit."""
    return {
        "heat_template_version": "2018-08-31",
        "resources": {
            "net": {"type": "OS::Neutron::Net"},
            "data": {"type": "OS::Cinder::Volume", "properties": {"size": 1}},
            "logs": {"type": "OS::Cinder::Volume", "deletion_policy": "Retain", "properties": {"size": 1}},
            "ok": {"type": "OS::Nova::Server", "properties": {
                "image": "cirros", "flavor": good, "networks": [{"network": {"get_resource": "net"}}]}},
            "bad": {"type": "OS::Nova::Server", "depends_on": ["data"], "properties": {
                "image": "cirros", "flavor": bad}},
            "after": {"type": "OS::Neutron::SecurityGroup", "depends_on": ["bad"]},
        },
        "outputs": {"ok_ip": {"value": {"get_attr": ["ok", "first_address"]}}},
    }


def test_failed_create_rolls_back_what_it_created(cluster, kubestack, namespace):
    good, huge = create_flavor(cluster, ram=256), create_flavor(cluster, vcpus=1000)
    create_image(cluster, namespace)
    create_stack(cluster, namespace, "doomed", _doomed_template(good, huge))  # rollback is the default
    s = wait_stack(cluster, namespace, "doomed", "ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "CREATE_COMPLETE",
                   "CREATE_FAILED", timeout=300)
    assert s["status"]["stackStatus"] == "ROLLBACK_COMPLETE", s["status"]["stackStatusReason"]
    assert s["status"]["stackStatusReason"] == "Stack ROLLBACK completed successfully"
    assert s["status"]["conditions"][0]["status"] == "False"
    # why it failed is in the Events, worded like Heat's
    wait_for(lambda: any(e.reason == "CreateFailed" and 'Resource CREATE failed: OS::Nova::Server "bad"' in e.message
                         and "No valid host" in e.message
                         for e in events_for(cluster, namespace, "doomed") if e.type == "Warning"),
             what="a CreateFailed Event naming the resource")
    # everything the create made is gone, except what the template said to retain
    for plural in ("servers", "networks", "securitygroups"):
        assert children(cluster, namespace, plural, "doomed") == [], plural
    assert get(cluster, namespace, "volumes", "doomed-data") is None
    logs = get(cluster, namespace, "volumes", "doomed-logs")
    assert logs is not None and not logs["metadata"].get("ownerReferences")
    assert STACK_LABEL not in (logs["metadata"].get("labels") or {})
    assert get(cluster, namespace, "securitygroups", "doomed-after") is None


def test_failed_create_without_rollback_keeps_its_resources(cluster, kubestack, namespace):
    good, huge = create_flavor(cluster, ram=256), create_flavor(cluster, vcpus=1000)
    create_image(cluster, namespace)
    create_stack(cluster, namespace, "kept", _doomed_template(good, huge), rollback=False)
    s = wait_stack(cluster, namespace, "kept", "CREATE_FAILED", "CREATE_COMPLETE", "ROLLBACK_COMPLETE", timeout=300)
    assert s["status"]["stackStatus"] == "CREATE_FAILED"
    reason = s["status"]["stackStatusReason"]
    assert reason.startswith('Resource CREATE failed: OS::Nova::Server "bad": No valid host'), reason
    rows = {r["name"]: r for r in s["status"]["resources"]}
    assert rows["bad"]["status"] == "CREATE_FAILED" and "No valid host" in rows["bad"]["statusReason"]
    assert rows["data"]["status"] == "CREATE_COMPLETE"
    assert rows["after"]["status"] == "INIT_COMPLETE"  # never started: it waits for "bad"
    # the stack keeps what it made, for the user to look at
    assert get(cluster, namespace, "servers", "kept-bad")["status"]["status"] == "ERROR"
    assert get(cluster, namespace, "servers", "kept-ok") is not None
    assert get(cluster, namespace, "networks", "kept-net") is not None
    assert get(cluster, namespace, "volumes", "kept-data") is not None
    assert get(cluster, namespace, "securitygroups", "kept-after") is None
    # rows settle: no resource is left "in progress" on a stack that stopped
    st = wait_for(lambda: (x := get(cluster, namespace, "stacks", "kept")["status"]) and all(
        not r["status"].endswith("IN_PROGRESS") for r in x["resources"]) and x, what="rows settled")
    assert st["stackStatus"] == "CREATE_FAILED"

    # an update that fixes the template completes the stack (Heat updates a failed stack)
    gen = update_stack(cluster, namespace, "kept", _doomed_template(good, good))
    s = wait_stack(cluster, namespace, "kept", "UPDATE_COMPLETE", "UPDATE_FAILED", generation=gen, timeout=300)
    assert s["status"]["stackStatus"] == "UPDATE_COMPLETE", s["status"]["stackStatusReason"]
    assert get(cluster, namespace, "securitygroups", "kept-after") is not None
    bad = [o for o in children(cluster, namespace, "servers", "kept") if o["metadata"]["labels"][
        "kubestack.io/stack-resource"] == "bad"]
    assert len(bad) == 1 and bad[0]["status"]["status"] == "ACTIVE"

    custom(cluster).delete_namespaced_custom_object(G, V, namespace, "stacks", "kept")
    wait_for(lambda: get(cluster, namespace, "stacks", "kept") is None, timeout=180, what="stack deleted")
    assert custom(cluster).list_namespaced_custom_object(G, V, namespace, "servers")["items"] == []
    assert get(cluster, namespace, "volumes", "kept-logs") is not None


def test_image_that_does_not_exist_fails_the_create_before_anything_is_made(cluster, kubestack, namespace):
    flavor = create_flavor(cluster, ram=256)
    template = {"heat_template_version": "2015-04-30", "resources": {
        "net": {"type": "OS::Neutron::Net"},
        "vm": {"type": "OS::Nova::Server", "properties": {"image": "ubuntu-trusty", "flavor": flavor}}}}
    create_stack(cluster, namespace, "noimg", template)
    s = wait_stack(cluster, namespace, "noimg", "CREATE_FAILED", "CREATE_COMPLETE", "ROLLBACK_COMPLETE")
    assert s["status"]["stackStatus"] == "CREATE_FAILED"
    assert s["status"]["stackStatusReason"] == (
        "Property error: resources.vm.properties.image: Error validating value 'ubuntu-trusty': "
        "The Image (ubuntu-trusty) could not be found.")
    assert children(cluster, namespace, "networks", "noimg") == []
    # the image turning up later (applied after the stack) lets the create go ahead
    create_image(cluster, namespace, "ubuntu-trusty")
    s = wait_stack(cluster, namespace, "noimg", "CREATE_COMPLETE", "ROLLBACK_COMPLETE", timeout=300)
    assert s["status"]["stackStatus"] == "CREATE_COMPLETE", s["status"]["stackStatusReason"]


# ---- timeouts -------------------------------------------------------------------------------

def _waiting_template(wait_timeout: int) -> dict:
    return {
        "heat_template_version": "2017-02-24",
        "resources": {
            "sg": {"type": "OS::Neutron::SecurityGroup"},
            "handle": {"type": "OS::Heat::WaitConditionHandle"},
            "ready": {"type": "OS::Heat::WaitCondition", "depends_on": "sg",
                      "properties": {"handle": {"get_resource": "handle"}, "timeout": wait_timeout}},
        },
    }


def test_wait_condition_timeout_fails_the_create(cluster, kubestack, namespace):
    create_stack(cluster, namespace, "nosignal", _waiting_template(5), rollback=False)
    s = wait_stack(cluster, namespace, "nosignal", "CREATE_FAILED", "CREATE_COMPLETE")
    assert s["status"]["stackStatus"] == "CREATE_FAILED"
    assert s["status"]["stackStatusReason"] == ('Resource CREATE failed: OS::Heat::WaitCondition "ready": '
                                                "WaitConditionTimeout: 0 of 1 received")
    rows = {r["name"]: r for r in s["status"]["resources"]}
    assert rows["ready"]["status"] == "CREATE_FAILED" and rows["sg"]["status"] == "CREATE_COMPLETE"
    assert get(cluster, namespace, "securitygroups", "nosignal-sg") is not None


def test_stack_timeout_fails_the_create_and_rolls_back(cluster, kubestack, namespace):
    # timeoutMinutes is Heat's timeout_mins: the whole create must finish within it
    create_stack(cluster, namespace, "slow", _waiting_template(3600), timeoutMinutes=1)
    wait_for(lambda: get(cluster, namespace, "securitygroups", "slow-sg"), what="the first resource made")
    s = wait_stack(cluster, namespace, "slow", "ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "CREATE_FAILED",
                   "CREATE_COMPLETE", timeout=300)
    assert s["status"]["stackStatus"] == "ROLLBACK_COMPLETE", s["status"]["stackStatusReason"]
    evs = events_with(cluster, namespace, "slow", "CreateFailed")
    message = next(e.message for e in evs if e.reason == "CreateFailed")
    assert message.startswith("Create timed out"), message
    assert "ready" in message
    assert get(cluster, namespace, "securitygroups", "slow-sg") is None


def test_stack_timeout_without_rollback_says_what_was_still_in_progress(cluster, kubestack, namespace):
    create_stack(cluster, namespace, "slow2", _waiting_template(3600), timeoutMinutes=1, rollback=False)
    s = wait_stack(cluster, namespace, "slow2", "CREATE_FAILED", "CREATE_COMPLETE", timeout=300)
    assert s["status"]["stackStatus"] == "CREATE_FAILED"
    reason = s["status"]["stackStatusReason"]
    assert reason.startswith("Create timed out after 1 minute"), reason
    assert 'OS::Heat::WaitCondition "ready"' in reason
    rows = {r["name"]: r for r in s["status"]["resources"]}
    assert rows["ready"]["status"] == "CREATE_FAILED" and rows["sg"]["status"] == "CREATE_COMPLETE"
    assert get(cluster, namespace, "securitygroups", "slow2-sg") is not None


# ---- objects the stack did not make ---------------------------------------------------------

def test_an_object_of_the_same_name_made_by_someone_else_is_never_taken_over(cluster, kubestack, namespace):
    mine = custom(cluster).create_namespaced_custom_object(G, V, namespace, "securitygroups", {
        "apiVersion": f"{G}/{V}", "kind": "SecurityGroup", "metadata": {"name": "guard-sg"},
        "spec": {"description": "the user's own"}})
    template = {"heat_template_version": "2018-08-31", "resources": {
        "net": {"type": "OS::Neutron::Net"},
        "sg": {"type": "OS::Neutron::SecurityGroup", "depends_on": "net", "properties": {"description": "the stack's"}}}}
    create_stack(cluster, namespace, "guard", template)
    s = wait_stack(cluster, namespace, "guard", "ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "CREATE_COMPLETE",
                   "CREATE_FAILED")
    assert s["status"]["stackStatus"] == "ROLLBACK_COMPLETE", s["status"]["stackStatusReason"]
    evs = events_with(cluster, namespace, "guard", "CreateFailed")
    message = next(e.message for e in evs if e.reason == "CreateFailed")
    assert 'OS::Neutron::SecurityGroup "sg"' in message and "guard-sg" in message and "exists" in message
    wait_for(lambda: get(cluster, namespace, "networks", "guard-net") is None, what="the stack's network removed")
    after = get(cluster, namespace, "securitygroups", "guard-sg")
    assert after["metadata"]["uid"] == mine["metadata"]["uid"]
    assert after["spec"] == mine["spec"] and after["metadata"].get("labels") == mine["metadata"].get("labels")
    custom(cluster).delete_namespaced_custom_object(G, V, namespace, "stacks", "guard")
    wait_for(lambda: get(cluster, namespace, "stacks", "guard") is None, timeout=180, what="stack deleted")
    assert get(cluster, namespace, "securitygroups", "guard-sg")["metadata"]["uid"] == mine["metadata"]["uid"]


def test_the_stack_record_secret_name_taken_by_someone_else(cluster, kubestack, namespace):
    core = client.CoreV1Api(cluster.api)
    template = {"heat_template_version": "2018-08-31", "resources": {"sg": {"type": "OS::Neutron::SecurityGroup"}}}
    # a user's Secret under the name the stack keeps its record in: the stack says so, and
    # neither reads nor changes it
    core.create_namespaced_secret(namespace, {"metadata": {"name": "taken-stack-state"},
                                              "stringData": {"password": "hunter2"}})
    create_stack(cluster, namespace, "taken", template)
    s = wait_stack(cluster, namespace, "taken", "CREATE_FAILED", "CREATE_COMPLETE")
    assert s["status"]["stackStatus"] == "CREATE_FAILED"
    assert "Secret taken-stack-state exists and is not this stack's record" in s["status"]["stackStatusReason"]
    assert core.read_namespaced_secret("taken-stack-state", namespace).data == {
        "password": base64.b64encode(b"hunter2").decode()}
    assert get(cluster, namespace, "securitygroups", "taken-sg") is None
    custom(cluster).delete_namespaced_custom_object(G, V, namespace, "stacks", "taken")
    wait_for(lambda: get(cluster, namespace, "stacks", "taken") is None, timeout=180, what="stack deleted")
    assert core.read_namespaced_secret("taken-stack-state", namespace).data["password"]

    # the record a deleted Stack of the same name left (the garbage collector removes it
    # a moment later) is not resumed by a new Stack of that name
    stale = {"action": "CREATE", "result": "COMPLETE", "generation": 1, "reason": "old", "good": None,
             "target": {"template": template, "parameters": {}, "files": {}, "environment": {}, "overrides": {}}}
    core.create_namespaced_secret(namespace, {
        "metadata": {"name": "again-stack-state", "labels": {"kubestack.io/stack-state": "again"}},
        "data": {"state.json": base64.b64encode(json.dumps(stale).encode()).decode()}})
    create_stack(cluster, namespace, "again", {**template, "resources": {"net": {"type": "OS::Neutron::Net"}}})
    s = wait_stack(cluster, namespace, "again", "CREATE_COMPLETE", "CREATE_FAILED", "ROLLBACK_COMPLETE")
    assert s["status"]["stackStatus"] == "CREATE_COMPLETE", s["status"]["stackStatusReason"]
    assert [r["name"] for r in s["status"]["resources"]] == ["net"]
    assert get(cluster, namespace, "securitygroups", "again-sg") is None
    record = core.read_namespaced_secret("again-stack-state", namespace)
    assert record.metadata.owner_references[0].uid == s["metadata"]["uid"]
