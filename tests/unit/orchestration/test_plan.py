import pytest
import yaml

from kubestack.orchestration import diff, load_stack
from kubestack.orchestration.errors import PropertyError

from .helpers import server, tmpl


def test_create_plan_leaves_attributes_for_the_controller():
    t = tmpl(resources={
        "db": server(),
        "web": server(user_data={"str_replace": {"template": "DB=$db", "params": {"$db": {"get_attr": ["db", "first_address"]}}}}),
    }, outputs={"url": {"value": {"list_join": ["", ["http://", {"get_attr": ["web", "first_address"]}]]}}})
    stack = load_stack(t, stack_name="s")
    plan = stack.plan()
    web = plan.resources[1]
    assert web.name == "web" and not web.resolved and web.waiting_for == ["db"]
    assert web.properties["user_data"] == {"str_replace": {"template": "DB=$db", "params": {
        "$db": {"get_attr": ["db", "first_address"]}}}}
    assert plan.outputs == {"url": None}
    attrs = {"db": {"first_address": "10.0.0.3"}, "web": {"first_address": "10.0.0.4"}}
    assert stack.resolve("web", attrs)["user_data"] == "DB=10.0.0.3"
    assert stack.outputs(attrs) == {"url": "http://10.0.0.4"}
    done = stack.plan(attrs)
    assert all(r.resolved for r in done.resources)


def test_software_configs_become_user_data():
    t = tmpl(resources={
        "boot": {"type": "OS::Heat::SoftwareConfig", "properties": {"config": "#!/bin/sh\necho hi\n"}},
        "cc": {"type": "OS::Heat::CloudConfig", "properties": {"cloud_config": {"packages": ["nginx"]}}},
        "mime": {"type": "OS::Heat::MultipartMime", "properties": {"parts": [
            {"config": {"get_resource": "cc"}}, {"config": {"get_attr": ["boot", "config"]}}]}},
        "vm": server(user_data_format="RAW", user_data={"get_resource": "mime"}),
    })
    stack = load_stack(t)
    ud = stack.resolve("vm")["user_data"]
    assert "Content-Type: multipart/mixed" in ud
    assert "text/cloud-config" in ud and "text/x-shellscript" in ud
    assert "packages:\n- nginx" in ud
    assert ud == load_stack(t).resolve("vm")["user_data"]  # deterministic boundary
    assert stack.resolve("cc") == {"cloud_config": {"packages": ["nginx"]}}
    kinds = {r.name: r.kind for r in stack.plan().resources}
    assert kinds["boot"] is None and kinds["vm"] == "Server"


def test_random_string_value_comes_from_the_controller():
    t = tmpl(resources={"pw": {"type": "OS::Heat::RandomString", "properties": {"length": 12}},
                        "vm": server(admin_pass={"get_resource": "pw"})})
    stack = load_stack(t)
    assert stack.resolve("vm")["admin_pass"] == {"get_resource": "pw"}
    assert stack.resolve("vm", {"pw": {"value": "s3cret"}})["admin_pass"] == "s3cret"
    assert stack.plan().resources[0].kind == "Secret"


def test_generate_random_string():
    import random

    from kubestack.orchestration.resources import generate_random_string
    v = generate_random_string({"length": 10, "character_classes": [{"class": "digits", "min": 3}],
                                "character_sequences": [{"sequence": "!@", "min": 2}]}, random.Random(1))
    assert len(v) == 10
    assert sum(c.isdigit() for c in v) >= 3 and sum(c in "!@" for c in v) >= 2
    with pytest.raises(PropertyError):
        generate_random_string({"length": 2, "character_classes": [{"class": "digits", "min": 3}]})


def test_resource_group_members_and_attributes():
    t = tmpl(parameters={"n": {"type": "number", "default": 3}}, resources={
        "group": {"type": "OS::Heat::ResourceGroup", "properties": {
            "count": {"get_param": "n"},
            "resource_def": {"type": "OS::Nova::Server", "properties": {
                "name": "web-%index%", "image": "cirros", "flavor": "m1.small"}}}},
        "lb": server(metadata={"backends": {"list_join": [",", {"get_attr": ["group", "first_address"]}]}}),
    }, outputs={
        "refs": {"value": {"get_attr": ["group", "refs"]}},
        "second": {"value": {"get_attr": ["group", "resource.1", "first_address"]}},
        "second_dotted": {"value": {"get_attr": ["group", "resource.1.first_address"]}},
        "by_index": {"value": {"get_attr": ["group", "attributes", "first_address"]}},
        "ref0": {"value": {"get_attr": ["group", "resource.0"]}},
    })
    stack = load_stack(t, stack_name="st")
    plan = stack.plan()
    group = plan.resources[0]
    assert group.kind == "Server"
    assert [m.properties["name"] for m in group.members] == ["web-0", "web-1", "web-2"]
    assert [m.physical_name for m in group.members] == ["st-group-0", "st-group-1", "st-group-2"]
    attrs = {"group": {"members": [{"first_address": f"10.0.0.{i}"} for i in range(3)]}}
    assert stack.resolve("lb", attrs)["metadata"] == {"backends": "10.0.0.0,10.0.0.1,10.0.0.2"}
    assert stack.outputs(attrs) == {
        "refs": ["st-group-0", "st-group-1", "st-group-2"], "second": "10.0.0.1", "second_dotted": "10.0.0.1",
        "by_index": {"0": "10.0.0.0", "1": "10.0.0.1", "2": "10.0.0.2"}, "ref0": "st-group-0"}
    assert len(load_stack(t, {"n": 1}).members("group")) == 1


def test_autoscaling_group_and_policy():
    t = tmpl(resources={
        "asg": {"type": "OS::Heat::AutoScalingGroup", "properties": {
            "min_size": 1, "max_size": 4, "desired_capacity": 2,
            "resource": {"type": "OS::Nova::Server", "properties": {"image": "cirros", "flavor": "m1.small"}}}},
        "up": {"type": "OS::Heat::ScalingPolicy", "properties": {
            "adjustment_type": "change_in_capacity", "scaling_adjustment": 1,
            "auto_scaling_group_id": {"get_resource": "asg"}}},
    }, outputs={"size": {"value": {"get_attr": ["asg", "current_size"]}},
                "hook": {"value": {"get_attr": ["up", "signal_url"]}}})
    stack = load_stack(t)
    assert len(stack.members("asg")) == 2
    assert stack.levels() == [["asg"], ["up"]]
    attrs = {"asg": {"members": [{}, {}]}, "up": {"signal_url": "http://signal"}}
    assert stack.outputs(attrs) == {"size": 2, "hook": "http://signal"}
    t["resources"]["asg"]["properties"]["desired_capacity"] = 9
    with pytest.raises(PropertyError, match="between min_size 1 and max_size 4"):
        load_stack(t)


def test_wait_condition():
    t = tmpl(resources={
        "handle": {"type": "OS::Heat::WaitConditionHandle"},
        "wait": {"type": "OS::Heat::WaitCondition", "properties": {"handle": {"get_resource": "handle"}, "timeout": 600}},
        "vm": server(user_data={"str_replace": {"template": "wc_notify --data-binary '{\"status\": \"SUCCESS\"}'",
                                                "params": {"wc_notify": {"get_attr": ["handle", "curl_cli"]}}}}),
    }, outputs={"data": {"value": {"get_attr": ["wait", "data"]}}})
    stack = load_stack(t)
    assert stack.levels() == [["handle"], ["vm", "wait"]]
    attrs = {"handle": {"curl_cli": "curl -X POST http://x"}}
    assert stack.resolve("vm", attrs)["user_data"].startswith("curl -X POST http://x --data-binary")


def test_delete_plan_honours_deletion_policy():
    t = tmpl(resources={
        "vol": dict({"type": "OS::Cinder::Volume", "properties": {"size": 1}}, deletion_policy="Retain"),
        "snap": dict({"type": "OS::Cinder::Volume", "properties": {"size": 1}}, deletion_policy="Snapshot"),
        "vm": server(),
        "att": {"type": "OS::Cinder::VolumeAttachment", "properties": {
            "instance_uuid": {"get_resource": "vm"}, "volume_id": {"get_resource": "vol"}}},
    })
    plan = load_stack(t).delete_plan()
    assert plan.levels == [["att", "snap"], ["vm", "vol"]]
    assert plan.retain == ["vol"] and plan.snapshot == ["snap"] and plan.delete == ["att", "vm"]


# -- updates -----------------------------------------------------------------------------------

BASE = """
heat_template_version: 2018-08-31
parameters:
  flavor: {type: string, default: m1.small}
  image: {type: string, default: cirros}
  key: {type: string, default: k1}
resources:
  net: {type: OS::Neutron::Net, properties: {name: private}}
  vm:
    type: OS::Nova::Server
    properties:
      image: {get_param: image}
      flavor: {get_param: flavor}
      key_name: {get_param: key}
      networks: [{network: {get_resource: net}}]
  port:
    type: OS::Neutron::Port
    properties:
      network: {get_resource: net}
      device_id: {get_resource: vm}
  vol:
    type: OS::Cinder::Volume
    deletion_policy: Retain
    properties: {size: 1}
"""


def _actions(plan):
    return {c.name: c.action for c in plan.changes}


def test_update_noop():
    old, new = load_stack(BASE, stack_name="s"), load_stack(BASE, stack_name="s")
    plan = diff(old, new)
    assert plan.is_noop and set(_actions(plan)) == {"net", "vm", "port", "vol"}


def test_update_in_place_resize_and_rebuild():
    old = load_stack(BASE, stack_name="s")
    plan = diff(old, load_stack(BASE, {"flavor": "m1.large", "image": "ubuntu"}, stack_name="s"))
    vm = next(c for c in plan.changes if c.name == "vm")
    assert vm.action == "update" and vm.changed_properties == ["flavor", "image"]
    assert _actions(plan)["port"] == "keep"


def test_replace_cascades_to_dependents_by_reference():
    old = load_stack(BASE, stack_name="s")
    plan = diff(old, load_stack(BASE, {"key": "k2"}, stack_name="s"))
    vm = next(c for c in plan.changes if c.name == "vm")
    assert vm.action == "replace" and "key_name" in vm.reason
    assert vm.physical_name == "s-vm" and vm.new_physical_name.startswith("s-vm-")
    port = next(c for c in plan.changes if c.name == "port")
    assert port.action == "update" and port.changed_properties == ["device_id"]


def test_flavor_update_policy_replace():
    t = yaml.safe_load(BASE)
    t["resources"]["vm"]["properties"]["flavor_update_policy"] = "REPLACE"
    old = load_stack(t)
    assert _actions(diff(old, load_stack(t, {"flavor": "m1.large"})))["vm"] == "replace"


def test_added_removed_and_retained_resources():
    t = yaml.safe_load(BASE)
    new_t = yaml.safe_load(BASE)
    del new_t["resources"]["vol"]
    del new_t["resources"]["port"]
    new_t["resources"]["vol2"] = {"type": "OS::Cinder::Volume", "properties": {"size": 2}}
    plan = diff(load_stack(t), load_stack(new_t))
    acts = _actions(plan)
    assert acts["vol2"] == "create" and acts["port"] == "delete" and acts["vol"] == "retain"
    names = [c.name for c in plan.changes]
    assert names.index("vol2") < names.index("port")


def test_type_change_replaces_and_metadata_updates():
    t = yaml.safe_load(BASE)
    new_t = yaml.safe_load(BASE)
    new_t["resources"]["vm"]["metadata"] = {"role": "web"}
    assert _actions(diff(load_stack(t), load_stack(new_t)))["vm"] == "update"
    new_t["resources"]["vol"] = {"type": "OS::Nova::KeyPair", "properties": {"name": "x"}}
    change = next(c for c in diff(load_stack(t), load_stack(new_t)).changes if c.name == "vol")
    assert change.action == "replace" and "type changed" in change.reason


def test_volume_extend_in_place_but_image_change_replaces():
    t = yaml.safe_load(BASE)
    new_t = yaml.safe_load(BASE)
    new_t["resources"]["vol"]["properties"]["size"] = 5
    assert _actions(diff(load_stack(t), load_stack(new_t)))["vol"] == "update"
    new_t["resources"]["vol"]["properties"]["image"] = "cirros"
    assert _actions(diff(load_stack(t), load_stack(new_t)))["vol"] == "replace"


def test_custom_constraints_on_properties_use_the_lookup():
    t = tmpl(parameters={"f": {"type": "string", "default": "m1.small"}}, resources={
        "net": {"type": "OS::Neutron::Net"},
        "vm": server(flavor={"get_param": "f"}, networks=[{"network": {"get_resource": "net"}}, {"network": "public"}]),
        "group": {"type": "OS::Heat::ResourceGroup", "properties": {"count": 2, "resource_def": {
            "type": "OS::Nova::Server", "properties": {"image": "img-%index%", "flavor": "m1.small"}}}},
    })
    asked = []

    def exists(kind, name):
        asked.append((kind, name))
        return name != "img-1"

    with pytest.raises(PropertyError) as e:
        load_stack(t, exists=exists)
    assert str(e.value) == ("Property error: resources.group.properties.resource_def.properties.image: "
                            "Error validating value 'img-1': The Image (img-1) could not be found.")
    asked.clear()
    load_stack(t, exists=lambda kind, name: exists(kind, name) or True)
    # values coming from other resources of the stack are not looked up
    assert ("Network", "public") in asked and not any(n.endswith("-net") for _, n in asked)
    offline = load_stack(t)
    assert "resources.vm.properties.networks.1.network: neutron.network (public)" in offline.unchecked_constraints


def test_depends_on_a_disabled_resource_is_dropped():
    t = tmpl(conditions={"c": False}, resources={
        "a": {"type": "OS::Neutron::Net", "condition": "c"},
        "b": {"type": "OS::Neutron::Net", "depends_on": ["a"]}})
    assert load_stack(t).levels() == [["b"]]
