"""Nested stacks: template resources (a type naming a template file, directly or through the
resource_registry) and OS::Heat::Stack; their properties as the nested stack's parameters,
its outputs as their attributes, the child Stack they become, its readiness and updates, and
the nesting depth limit."""

import json

import pytest

from kubestack.api.registry import BY_KIND
from kubestack.orchestration import diff, load_stack, nested, record, status
from kubestack.orchestration import realize as rz
from kubestack.orchestration.stack import Stack
from kubestack.orchestration.errors import (InvalidTemplateAttribute, PropertyNotAssigned, ResourceTypeNotFound,
                                            StackValidationFailed, UnknownProperty)
from kubestack.orchestration.template import Template, parse_document

from .helpers import tmpl

TIER = """
heat_template_version: 2016-10-14
description: one server of a tier
parameters:
  flavor: {type: string}
  image: {type: string, default: cirros}
  dns: {type: comma_delimited_list, default: []}
  metadata: {type: json, default: {}}
  port: {type: number, default: 80}
resources:
  server:
    type: OS::Nova::Server
    properties:
      flavor: {get_param: flavor}
      image: {get_param: image}
      user_data: {get_file: scripts/boot.sh}
outputs:
  ip: {value: {get_attr: [server, first_address]}}
"""
FILES = {"lib/tier.yaml": TIER, "scripts/boot.sh": "#!/bin/sh\n"}
CTX = rz.Context(namespace="demo", stack="shop",
                 owner={"apiVersion": "kubestack.io/v1alpha1", "kind": "Stack", "name": "shop", "uid": "u1",
                        "controller": True, "blockOwnerDeletion": True})


def _stack(resources: dict, outputs: dict | None = None, files: dict | None = None, **kw):
    return load_stack(tmpl(resources=resources, outputs=outputs), files=FILES if files is None else files,
                      stack_name="shop", **kw)


def test_a_template_file_is_a_type_whose_properties_are_its_parameters_and_attributes_its_outputs():
    stack = _stack({"web": {"type": "lib/tier.yaml", "properties": {"flavor": "m1.small"}}})
    rtype = stack.defs["web"].rtype
    assert (rtype.name, rtype.kind, rtype.description) == ("lib/tier.yaml", "Stack", "one server of a tier")
    assert {n: (p.type, p.required, p.update) for n, p in rtype.properties.items()} == {
        "flavor": ("string", True, True), "image": ("string", False, True), "dns": ("list", False, True),
        "metadata": ("any", False, True), "port": ("number", False, True)}
    assert rtype.attributes == {"ip"}
    # a property left out is not passed: the nested template's default applies
    (web,) = stack.plan().resources
    assert (web.type, web.kind, web.physical_name, web.properties) == (
        "lib/tier.yaml", "Stack", "shop-web", {"flavor": "m1.small"})
    # parameter_defaults of the environment make a parameter optional, as a default does
    stack = _stack({"web": {"type": "lib/tier.yaml"}}, environment={"parameter_defaults": {"flavor": "m1"}})
    assert not stack.defs["web"].rtype.properties["flavor"].required


def test_the_resource_registry_maps_a_type_to_a_template():
    env = {"resource_registry": {"My::Tier": "lib/tier.yaml",
                                 "resources": {"db": {"My::Db": "lib/tier.yaml"}}}}
    stack = _stack({"web": {"type": "My::Tier", "properties": {"flavor": "f"}},
                    "db": {"type": "My::Db", "properties": {"flavor": "f"}}}, environment=env)
    assert stack.defs["web"].rtype.name == stack.defs["db"].rtype.name == "lib/tier.yaml"
    assert stack.defs["web"].type_name == "My::Tier"
    with pytest.raises(ResourceTypeNotFound, match=r"\(My::Db\)"):
        _stack({"web": {"type": "My::Db", "properties": {"flavor": "f"}}}, environment=env)


def test_a_template_not_in_the_files_an_unknown_type_and_a_template_that_is_none_are_errors():
    with pytest.raises(StackValidationFailed,
                       match=r'^resources.web: Could not fetch remote template "lib/other.yaml"'):
        _stack({"web": {"type": "lib/other.yaml"}})
    with pytest.raises(ResourceTypeNotFound, match=r"\(My::Tier\)"):
        _stack({"web": {"type": "My::Tier"}})
    with pytest.raises(StackValidationFailed, match=r"^resources.web: template lib/bad.yaml: .*heat_template_version"):
        _stack({"web": {"type": "lib/bad.yaml"}}, files={"lib/bad.yaml": "resources: {}"})


def test_properties_and_attributes_are_checked_against_the_nested_template():
    with pytest.raises(UnknownProperty, match="Unknown Property colour"):
        _stack({"web": {"type": "lib/tier.yaml", "properties": {"flavor": "f", "colour": "red"}}})
    with pytest.raises(PropertyNotAssigned, match="Property flavor not assigned"):
        _stack({"web": {"type": "lib/tier.yaml"}})
    with pytest.raises(InvalidTemplateAttribute, match=r"\(web address\)"):
        _stack({"web": {"type": "lib/tier.yaml", "properties": {"flavor": "f"}}},
               outputs={"o": {"value": {"get_attr": ["web", "address"]}}})


def test_get_attr_reads_the_nested_outputs_and_get_resource_names_the_child_stack():
    stack = _stack({"web": {"type": "lib/tier.yaml", "properties": {"flavor": "f"}},
                    "app": {"type": "lib/tier.yaml", "properties": {"flavor": {"get_attr": ["web", "ip"]}}}},
                   outputs={"ip": {"value": {"get_attr": ["web", "ip"]}}, "ref": {"value": {"get_resource": "web"}}})
    assert stack.dependencies("app") == ["web"]
    attrs = {"web": nested.attributes("lib/tier.yaml", {"status": {"outputs": [{"key": "ip", "value": "10.0.0.5"}]}},
                                      "shop-web")}
    assert stack.resolve("app", attrs) == {"flavor": "10.0.0.5"}
    assert stack.outputs(attrs) == {"ip": "10.0.0.5", "ref": "shop-web"}
    # a template with an OS::stack_id output gives get_resource that output, as in Heat
    with_id = TIER + "  OS::stack_id: {value: {get_attr: [server, name]}}\n"
    stack = _stack({"web": {"type": "lib/tier.yaml", "properties": {"flavor": "f"}}},
                   outputs={"ref": {"value": {"get_resource": "web"}}}, files={**FILES, "lib/tier.yaml": with_id})
    assert stack.outputs({"web": {"ip": "x", "OS::stack_id": "shop-web-server"}}) == {"ref": "shop-web-server"}


def test_properties_become_parameters_as_heat_passes_them():
    template = Template.parse(TIER)
    assert nested.parameters(template, {
        "flavor": "m1", "dns": ["8.8.8.8", "8.8.4.4"], "metadata": {"b": [1], "a": True}, "port": 8080,
        "image": None, "undeclared": False}) == {
        "flavor": "m1", "dns": "8.8.8.8,8.8.4.4", "metadata": '{"a": true, "b": [1]}', "port": "8080",
        "undeclared": "false"}


def _valid(child: rz.Child):
    return BY_KIND[child.kind].resource_model.model_validate(child.body)


def test_a_template_resource_becomes_a_child_stack():
    env = {"parameter_defaults": {"image": "fedora"},
           "resource_registry": {"My::Tier": "lib/tier.yaml", "My::Net": "OS::Neutron::Net",
                                 "resources": {"web": {"server": {"My::Thing": "OS::Neutron::Net"}, "My::X": "Y"},
                                               "db": {"server": {}}}}}
    stack = _stack({"web": {"type": "My::Tier", "deletion_policy": "Retain",
                            "properties": {"flavor": "m1", "dns": ["1.1.1.1"]}}}, environment=env)
    stack.nested_depth = 2
    child, params = nested.child(stack, "lib/tier.yaml", "web", "shop-web", stack.resolve("web"), CTX, "Retain", 30)
    assert (child.kind, child.namespace, child.name) == ("Stack", "demo", "shop-web")
    # the parameters travel in a Secret (a project reader may read Stacks, not Secrets), named
    # after what it holds, labelled, owned and retained like the Stack
    assert (params.kind, params.namespace) == ("Secret", "demo") and params.name.startswith("shop-web-params-")
    assert params.body["stringData"] == {"flavor": "m1", "dns": "1.1.1.1"}
    assert params.body["metadata"]["labels"] == rz.labels(CTX, "web")
    assert params.body["metadata"]["annotations"][rz.POLICY_ANNOTATION] == "Retain"
    assert params.name == nested.parameters_secret_name("shop-web", {"dns": "1.1.1.1", "flavor": "m1"})
    assert params.name != nested.parameters_secret_name("shop-web", {"dns": "1.1.1.1", "flavor": "m2"})
    meta = child.body["metadata"]
    assert meta["labels"] == rz.labels(CTX, "web") and meta["ownerReferences"][0]["uid"] == "u1"
    assert meta["annotations"][nested.DEPTH_ANNOTATION] == "3"
    assert meta["annotations"][rz.POLICY_ANNOTATION] == "Retain"
    assert child.spec == {
        "template": parse_document(TIER, "template"), "parametersSecretRef": {"name": params.name},
        "files": FILES,
        # the parent's environment, less the mapping to this template and other resources' mappings
        "environment": {"parameter_defaults": {"image": "fedora"}, "resource_registry": {
            "My::Net": "OS::Neutron::Net", "resources": {"server": {"My::Thing": "OS::Neutron::Net"}}}},
        # the parent rolls it back, and it has the parent's timeout
        "rollback": False, "timeoutMinutes": 30}
    # the Stack kind keeps an environment in Heat's words
    assert _valid(child).spec.environment.to_k8s() == child.spec["environment"]
    # the child loads what the parent made of it
    meta = {**meta, "namespace": "demo", "uid": "u2"}
    loaded = record.load(meta, {**child.spec, "parameters": params.body["stringData"], "overrides": {}})
    assert loaded.nested_depth == 3 and loaded.resolve("server")["user_data"] == "#!/bin/sh\n"


def test_child_environment_follows_heat():
    env = {"parameters": {"p": 1}, "resource_registry": {"OS::Nova::Server": "server.yaml", "A": "a.yaml"}}
    assert nested.child_environment(env, "vm", "server.yaml") == {"resource_registry": {"A": "a.yaml"}}
    assert nested.child_environment({"parameters": {"p": 1}}, "vm", None) == {}


def test_os_heat_stack_takes_its_template_from_a_file_or_inline_with_parameters_and_timeout():
    stack = _stack({
        "from_file": {"type": "OS::Heat::Stack", "properties": {
            "template": {"get_file": "lib/tier.yaml"}, "parameters": {"flavor": "m1", "dns": ["a", "b"]},
            "timeout": 5}},
        "inline": {"type": "OS::Heat::Stack", "properties": {"template": TIER}}},
        outputs={"ip": {"value": {"get_attr": ["from_file", "outputs", "ip"]}},
                 "name": {"value": {"get_attr": ["inline", "stack_name"]}}})
    child, params = nested.child(stack, nested.HEAT_STACK, "from_file", "shop-from-file",
                                 stack.resolve("from_file"), CTX, "Delete", 60)
    assert child.spec["template"] == parse_document(TIER, "template")
    assert params.body["stringData"] == {"flavor": "m1", "dns": "a,b"} and child.spec["timeoutMinutes"] == 5
    _valid(child)
    inline, none = nested.child(stack, nested.HEAT_STACK, "inline", "shop-inline", stack.resolve("inline"), CTX,
                                "Delete", 60)
    assert none is None and "parametersSecretRef" not in inline.spec and inline.spec["timeoutMinutes"] == 60
    obj = {"status": {"outputs": [{"key": "ip", "value": "10.0.0.9"}]}}
    attrs = {"from_file": nested.attributes(nested.HEAT_STACK, obj, "shop-from-file"),
             "inline": nested.attributes(nested.HEAT_STACK, obj, "shop-inline")}
    assert stack.outputs(attrs) == {"ip": "10.0.0.9", "name": "shop-inline"}
    bad = _stack({"s": {"type": "OS::Heat::Stack", "properties": {"template": "resources: {}"}}})
    with pytest.raises(StackValidationFailed, match="^resources.s.properties.template: template: "):
        nested.child(bad, nested.HEAT_STACK, "s", "shop-s", bad.resolve("s"), CTX, "Delete", 60)


def test_nesting_deeper_than_heat_allows_fails_the_resource():
    # a template that nests itself is fine to load: the depth stops it when it runs
    selfish = "heat_template_version: 2016-10-14\nresources:\n  again: {type: self.yaml}\n"
    stack = _stack({"again": {"type": "self.yaml"}}, files={"self.yaml": selfish})
    stack.nested_depth = nested.MAX_NESTED_DEPTH - 1
    child, _ = nested.child(stack, "self.yaml", "again", "x", {}, CTX, "Delete", 60)
    assert child.body["metadata"]["annotations"][nested.DEPTH_ANNOTATION] == "5"
    stack.nested_depth = nested.MAX_NESTED_DEPTH
    with pytest.raises(rz.RealizeError, match=r"^Recursion depth exceeds 5\.$"):
        nested.child(stack, "self.yaml", "again", "x", {}, CTX, "Delete", 60)


def test_a_group_of_template_resources_has_child_stacks_as_members():
    stack = _stack({"tier": {"type": "OS::Heat::ResourceGroup", "properties": {"count": 2, "resource_def": {
        "type": "lib/tier.yaml", "properties": {"flavor": "m%index%"}}}}},
        outputs={"ips": {"value": {"get_attr": ["tier", "ip"]}}})
    (group,) = stack.plan().resources
    assert group.kind == "Stack"
    assert [(m.name, m.type, m.kind, m.physical_name, m.properties) for m in group.members] == [
        ("tier[0]", "lib/tier.yaml", "Stack", "shop-tier-0", {"flavor": "m0"}),
        ("tier[1]", "lib/tier.yaml", "Stack", "shop-tier-1", {"flavor": "m1"})]
    assert stack.outputs({"tier": {"members": [{"ip": "a"}, {"ip": "b"}]}}) == {"ips": ["a", "b"]}


@pytest.mark.parametrize("status, generation, state, reason", [
    ({"stackStatus": "CREATE_COMPLETE", "observedGeneration": 2}, 2, rz.COMPLETE, ""),
    ({"stackStatus": "UPDATE_COMPLETE", "observedGeneration": 2}, 2, rz.COMPLETE, ""),
    ({"stackStatus": "CREATE_COMPLETE", "observedGeneration": 1}, 2, rz.IN_PROGRESS,
     "waiting for the Stack controller"),
    ({"stackStatus": "UPDATE_IN_PROGRESS", "observedGeneration": 2}, 2, rz.IN_PROGRESS,
     "nested stack UPDATE_IN_PROGRESS"),
    ({"stackStatus": "CREATE_FAILED", "stackStatusReason": "No valid host", "observedGeneration": 1}, 1, rz.FAILED,
     "No valid host"),
])
def test_a_nested_stack_is_ready_when_its_stack_completed_the_generation_asked_for(status, generation, state, reason):
    obj = {"kind": "Stack", "metadata": {"generation": generation}, "status": status}
    assert rz.readiness("lib/tier.yaml", obj) == rz.Readiness(state, reason)


def test_an_update_makes_the_child_stack_exactly_what_the_template_gives():
    stack = _stack({"web": {"type": "lib/tier.yaml", "properties": {"flavor": "m1", "port": 81}}})
    old, _ = nested.child(stack, "lib/tier.yaml", "web", "shop-web", stack.resolve("web"), CTX, "Delete", 60)
    obj = {**old.body, "metadata": {**old.body["metadata"], "resourceVersion": "7"}}
    assert rz.update_patch(old, obj) is None
    smaller = TIER.replace("  port: {type: number, default: 80}\n", "")
    stack = _stack({"web": {"type": "lib/tier.yaml", "properties": {"flavor": "m2"}}},
                   files={**FILES, "lib/tier.yaml": smaller})
    new, params = nested.child(stack, "lib/tier.yaml", "web", "shop-web", stack.resolve("web"), CTX, "Delete", 60)
    # a merge patch would keep what is gone: what the template no longer has is nulled; new
    # parameters are a new Secret, named in the spec
    assert rz.update_patch(new, obj) == {"spec": {
        "template": {"parameters": {"port": None}}, "parametersSecretRef": {"name": params.name},
        "files": {"lib/tier.yaml": smaller}}}


def test_a_changed_nested_template_or_property_updates_the_child_in_place():
    old = _stack({"web": {"type": "lib/tier.yaml", "properties": {"flavor": "m1"}}})
    new = _stack({"web": {"type": "lib/tier.yaml", "properties": {"flavor": "m2", "image": "fedora"}}})
    (change,) = diff(old, new).changes
    assert (change.action, change.changed_properties) == ("update", ["flavor", "image"])
    moved = _stack({"web": {"type": "lib/other.yaml", "properties": {"flavor": "m1"}}},
                   files={**FILES, "lib/other.yaml": TIER})
    assert diff(old, moved).changes[0].action == "replace"


# ---- groups of nested stacks: get_attr on their members -----------------------------------

WITH_ID = TIER + "  OS::stack_id: {value: {get_attr: [server, name]}}\n"
GROUP_ATTRS = {
    "dotted": {"get_attr": ["g", "resource.1.ip"]},
    "split": {"get_attr": ["g", "resource.1", "ip"]},
    "ref": {"get_attr": ["g", "resource.1"]},
    "refs": {"get_attr": ["g", "refs"]},
    "refs_map": {"get_attr": ["g", "refs_map"]},
}


def _member(ip: str, stack_id: str | None = None) -> dict:
    """A nested member Stack's attributes, read from its status as the engine reads them."""
    outs = [{"key": "ip", "value": ip}] + ([{"key": "OS::stack_id", "value": stack_id}] if stack_id else [])
    return nested.attributes("lib/tier.yaml", {"status": {"outputs": outs}}, "unused")


def test_get_attr_reads_the_outputs_of_a_resource_groups_template_resources():
    outputs = {**GROUP_ATTRS, "list": {"get_attr": ["g", "ip"]},
               "by_name": {"get_attr": ["g", "attributes", "ip"]}}
    group = {"type": "OS::Heat::ResourceGroup", "properties": {"count": 2, "resource_def": {
        "type": "lib/tier.yaml", "properties": {"flavor": "m%index%"}}}}
    stack = _stack({"g": group, "app": {"type": "lib/tier.yaml", "properties": {
        "flavor": {"get_attr": ["g", "resource.0.ip"]}}}},
        outputs={k: {"value": v} for k, v in outputs.items()})
    attrs = {"g": {"members": [_member("10.0.0.1"), _member("10.0.0.2")]}}
    assert stack.outputs(attrs) == {
        "dotted": "10.0.0.2", "split": "10.0.0.2", "ref": "shop-g-1", "refs": ["shop-g-0", "shop-g-1"],
        "refs_map": {"0": "shop-g-0", "1": "shop-g-1"}, "list": ["10.0.0.1", "10.0.0.2"],
        "by_name": {"0": "10.0.0.1", "1": "10.0.0.2"}}
    # a member's output feeds another resource's property
    assert stack.resolve("app", attrs) == {"flavor": "10.0.0.1"}
    # a member whose output is not known yet (its Stack not complete) leaves the property to wait
    waiting = stack.resolve("app", {"g": {"members": [{}, _member("10.0.0.2")]}})
    assert waiting == {"flavor": {"get_attr": ["g", "resource.0.ip"]}}
    # a template with an OS::stack_id output gives the members' references
    stack = _stack({"g": group}, outputs={k: {"value": v} for k, v in GROUP_ATTRS.items()},
                   files={**FILES, "lib/tier.yaml": WITH_ID})
    attrs = {"g": {"members": [_member("10.0.0.1", "id-0"), _member("10.0.0.2", "id-1")]}}
    assert stack.outputs(attrs) == {"dotted": "10.0.0.2", "split": "10.0.0.2", "ref": "id-1",
                                    "refs": ["id-0", "id-1"], "refs_map": {"0": "id-0", "1": "id-1"}}


def test_get_attr_reads_the_outputs_of_an_autoscaling_groups_template_resources():
    outputs = {**GROUP_ATTRS, "outputs": {"get_attr": ["g", "outputs", "ip"]},
               "outputs_list": {"get_attr": ["g", "outputs_list", "ip"]}, "size": {"get_attr": ["g", "current_size"]}}
    group = {"type": "OS::Heat::AutoScalingGroup", "properties": {"min_size": 2, "max_size": 3, "resource": {
        "type": "lib/tier.yaml", "properties": {"flavor": "m1"}}}}
    stack = _stack({"g": group}, outputs={k: {"value": v} for k, v in outputs.items()})
    attrs = {"g": {"members": [_member("10.0.0.1"), _member("10.0.0.2")]}}
    assert stack.outputs(attrs) == {
        "dotted": "10.0.0.2", "split": "10.0.0.2", "ref": "shop-g-1", "refs": ["shop-g-0", "shop-g-1"],
        "refs_map": {"shop-g-0": "shop-g-0", "shop-g-1": "shop-g-1"},
        "outputs": {"shop-g-0": "10.0.0.1", "shop-g-1": "10.0.0.2"}, "outputs_list": ["10.0.0.1", "10.0.0.2"],
        "size": 2}
    # Heat's AutoScalingGroup has no attribute lists of its members' attributes
    for attribute in ("ip", "attributes"):
        with pytest.raises(InvalidTemplateAttribute, match=rf"\(g {attribute}\)"):
            _stack({"g": group}, outputs={"o": {"value": {"get_attr": ["g", attribute, "ip"]}}})


@pytest.mark.parametrize("group", [
    {"type": "OS::Heat::ResourceGroup", "properties": {"resource_def": {"type": "lib/tier.yaml",
                                                                        "properties": {"flavor": "m1"}}}},
    {"type": "OS::Heat::AutoScalingGroup", "properties": {"min_size": 1, "max_size": 1, "resource": {
        "type": "lib/tier.yaml", "properties": {"flavor": "m1"}}}}])
@pytest.mark.parametrize("expr, key", [
    (["g", "resource.0.address"], "resource.0.address"), (["g", "resource.0", "address"], "resource.0.address")])
def test_a_member_attribute_the_nested_template_has_no_output_for_is_an_error(group, expr, key):
    with pytest.raises(InvalidTemplateAttribute, match=rf"\(g {key}\)"):
        _stack({"g": group}, outputs={"o": {"value": {"get_attr": expr}}})


def test_get_attr_all_attributes_of_a_nested_stack_are_its_outputs():
    stack = _stack({"web": {"type": "lib/tier.yaml", "properties": {"flavor": "f"}},
                    "st": {"type": "OS::Heat::Stack", "properties": {"template": {"get_file": "lib/tier.yaml"},
                                                                     "parameters": {"flavor": "f"}}}},
                   outputs={"web": {"value": {"get_attr": ["web"]}}, "st": {"value": {"get_attr": ["st"]}}})
    obj = {"status": {"outputs": [{"key": "ip", "value": "10.0.0.5"}]}}
    attrs = {"web": nested.attributes("lib/tier.yaml", obj, "shop-web"),
             "st": nested.attributes(nested.HEAT_STACK, obj, "shop-st")}
    assert stack.outputs(attrs) == {"web": {"ip": "10.0.0.5"},
                                    "st": {"outputs": {"ip": "10.0.0.5"}, "stack_name": "shop-st"}}
    # an output the nested stack masks and whose value is not known yet: still waiting
    masked = {"status": {"outputs": [{"key": "ip", "value": rz.MASK, "error": rz.SECRET_OUTPUT}]}}
    assert stack.outputs({"web": nested.attributes("lib/tier.yaml", masked, "shop-web")},
                         keep_unresolved=True)["web"] == {"get_attr": ["web"]}


def test_a_resource_group_of_os_heat_stacks_lists_its_members_outputs():
    group = {"type": "OS::Heat::ResourceGroup", "properties": {"count": 2, "resource_def": {
        "type": "OS::Heat::Stack", "properties": {"template": {"get_file": "lib/tier.yaml"},
                                                  "parameters": {"flavor": "m%index%"}}}}}
    outputs = {"ips": {"get_attr": ["g", "outputs", "ip"]},  # a member attribute: a list, not a map
               "one": {"get_attr": ["g", "resource.1", "outputs", "ip"]},
               "one_dotted": {"get_attr": ["g", "resource.1.outputs", "ip"]},
               "names": {"get_attr": ["g", "stack_name"]},
               "by_name": {"get_attr": ["g", "attributes", "outputs", "ip"]}}
    stack = _stack({"g": group}, outputs={k: {"value": v} for k, v in outputs.items()})
    members = [nested.attributes(nested.HEAT_STACK, {"status": {"outputs": [{"key": "ip", "value": ip}]}}, name)
               for ip, name in (("10.0.0.1", "shop-g-0"), ("10.0.0.2", "shop-g-1"))]
    assert stack.outputs({"g": {"members": members}}) == {
        "ips": ["10.0.0.1", "10.0.0.2"], "one": "10.0.0.2", "one_dotted": "10.0.0.2",
        "names": ["shop-g-0", "shop-g-1"], "by_name": {"0": "10.0.0.1", "1": "10.0.0.2"}}


# ---- secrets across the boundary -------------------------------------------------------------

SECRET_TIER = """
heat_template_version: 2016-10-14
parameters:
  password: {type: string, hidden: true, default: s3cret}
  suffix: {type: string, default: x}
resources:
  server:
    type: OS::Nova::Server
    properties: {image: cirros, flavor: m1}
outputs:
  token: {value: {list_join: ["-", [{get_param: password}, {get_param: suffix}]]}}
  ip: {value: {get_attr: [server, first_address]}}
"""
SECRET_FILES = {**FILES, "lib/secret.yaml": SECRET_TIER}
MASKED = {"status": {"outputs": [{"key": "token", "value": rz.MASK, "error": rz.SECRET_OUTPUT},
                                 {"key": "ip", "value": "10.0.0.5"}]}}


def test_an_output_the_nested_stack_masks_is_its_real_value_for_the_parent_and_masked_in_the_parents_status():
    assert nested.masked_outputs(MASKED) == ["token"]
    assert nested.masked_outputs({"status": {"outputs": [{"key": "ip", "value": rz.MASK}]}}) == []  # a mere value
    # the real value comes from the nested stack's record; without it the output is not known
    assert nested.attributes("lib/secret.yaml", MASKED, "shop-db", {"token": "s3cret-x"}) == {
        "token": "s3cret-x", "ip": "10.0.0.5"}
    assert nested.attributes("lib/secret.yaml", MASKED, "shop-db") == {"ip": "10.0.0.5"}
    assert nested.attributes(nested.HEAT_STACK, MASKED, "shop-db", {"token": "s3cret-x"}) == {
        "stack_name": "shop-db", "outputs": {"token": "s3cret-x", "ip": "10.0.0.5"}}
    assert nested.secret_attributes("lib/secret.yaml", ["token"]) == [("token",)]
    assert nested.secret_attributes(nested.HEAT_STACK, ["token"]) == [("outputs", "token")]

    stack = _stack({
        "db": {"type": "lib/secret.yaml"},
        "inline": {"type": "OS::Heat::Stack", "properties": {"template": SECRET_TIER}},
        "app": {"type": "OS::Nova::Server", "properties": {
            "image": "cirros", "flavor": "m1", "user_data": {"str_replace": {
                "template": "pw=$pw", "params": {"$pw": {"get_attr": ["db", "token"]}}}}}}},
        outputs={"token": {"value": {"get_attr": ["db", "token"]}},
                 "wrapped": {"value": {"str_replace": {"template": "<$t>", "params": {"$t": {"get_attr": ["db", "token"]}}}}},
                 "inline": {"value": {"get_attr": ["inline", "outputs", "token"]}},
                 "inline_ip": {"value": {"get_attr": ["inline", "outputs", "ip"]}},
                 "ip": {"value": {"get_attr": ["db", "ip"]}}},
        files=SECRET_FILES)
    attrs = {"db": nested.attributes("lib/secret.yaml", MASKED, "shop-db", {"token": "s3cret-x"}),
             "inline": nested.attributes(nested.HEAT_STACK, MASKED, "shop-inline", {"token": "s3cret-x"})}
    secret = {("db", "token"), ("inline", "outputs", "token")}
    # the parent's functions see the real value, as Heat's get_attr gives it...
    assert stack.resolve("app", attrs)["user_data"] == "pw=s3cret-x"
    # ...its status masks what derives from it, and keeps the real values for its own parent
    out, secrets = status.outputs_and_secrets(stack, attrs, secret)
    assert out == [{"key": "token", "value": rz.MASK, "error": rz.SECRET_OUTPUT},
                   {"key": "wrapped", "value": rz.MASK, "error": rz.SECRET_OUTPUT},
                   {"key": "inline", "value": rz.MASK, "error": rz.SECRET_OUTPUT},
                   {"key": "inline_ip", "value": "10.0.0.5"}, {"key": "ip", "value": "10.0.0.5"}]
    assert secrets == {"token": "s3cret-x", "wrapped": "<s3cret-x>", "inline": "s3cret-x"}
    assert status.outputs(stack, attrs, secret) == out


def test_a_groups_members_masked_outputs_are_masked_in_the_parent():
    group = {"type": "OS::Heat::ResourceGroup", "properties": {"count": 2, "resource_def": {
        "type": "lib/secret.yaml", "properties": {"suffix": "%index%"}}}}
    stack = _stack({"g": group}, outputs={"tokens": {"value": {"get_attr": ["g", "token"]}},
                                          "first": {"value": {"get_attr": ["g", "resource.0.token"]}},
                                          "ips": {"value": {"get_attr": ["g", "ip"]}}}, files=SECRET_FILES)
    attrs = {"g": {"members": [nested.attributes("lib/secret.yaml", MASKED, "m", {"token": f"s3cret-{i}"})
                               for i in range(2)]}}
    out, secrets = status.outputs_and_secrets(stack, attrs, {("g", "token")})
    assert [o["value"] for o in out] == [rz.MASK, rz.MASK, ["10.0.0.5", "10.0.0.5"]]
    assert secrets == {"tokens": ["s3cret-0", "s3cret-1"], "first": "s3cret-0"}


def test_parameters_given_a_secret_are_masked_by_the_nested_stack():
    t = tmpl(parameters={"pw": {"type": "string", "hidden": True}}, resources={
        "db": {"type": "lib/secret.yaml"},
        "gen": {"type": "OS::Heat::RandomString"},
        "app": {"type": "lib/secret.yaml", "properties": {"suffix": {"get_attr": ["db", "token"]}}},
        "salted": {"type": "OS::Heat::Stack", "properties": {"template": SECRET_TIER, "parameters": {
            "suffix": {"get_attr": ["gen", "value"]}, "password": "plain"}}},
        "hidden": {"type": "lib/secret.yaml", "properties": {"suffix": {"get_param": "pw"}, "password": "p"}},
        "group": {"type": "OS::Heat::ResourceGroup", "properties": {"count": 2, "resource_def": {
            "type": "lib/secret.yaml", "properties": {"suffix": {"get_attr": ["db", "token"]},
                                                      "password": "%index%"}}}},
        "plain": {"type": "lib/secret.yaml", "properties": {"suffix": {"get_attr": ["db", "ip"]}}}})
    parent = load_stack(t, {"pw": "hush"}, files=SECRET_FILES, stack_name="shop")
    attrs = {"db": nested.attributes("lib/secret.yaml", MASKED, "shop-db", {"token": "s3cret-x"}),
             "gen": {"value": "r4nd0m"}}
    secret = {("db", "token"), ("gen", "value")}
    assert {n: status.secret_parameters(parent, n, attrs, secret)
            for n in ("app", "salted", "hidden", "group", "plain", "db")} == {
        "app": {"suffix"}, "salted": {"suffix"}, "hidden": {"suffix"}, "group": {"suffix"}, "plain": set(),
        "db": set()}
    assert status.secret_parameters(parent, "gen", attrs, secret) == set()  # not a nested stack
    # the child Stack names them, and a child loaded from it masks them as hidden
    child, params = nested.child(parent, "lib/secret.yaml", "app", "shop-app", parent.resolve("app", attrs), CTX,
                                 "Delete", 60, {"suffix", "password"})
    meta = child.body["metadata"]
    assert meta["annotations"][nested.SECRET_PARAMETERS_ANNOTATION] == "suffix"  # only those it is given
    assert params.body["stringData"] == {"suffix": "s3cret-x"}
    loaded = record.load({**meta, "namespace": "demo", "uid": "u2"},
                         {"environment": None, **child.spec, "parameters": params.body["stringData"],
                          "overrides": {}})
    assert loaded.secret_parameters == {"suffix"}
    assert status.parameters(loaded) == {"password": rz.MASK, "suffix": rz.MASK}
    assert status.input_parameters({"template": SECRET_TIER, "parameters": {"suffix": "s3cret-x"}}, {"suffix"}) == {
        "suffix": rz.MASK}
    out = status.outputs(loaded, {"server": {"first_address": "10.0.0.9"}}, set())
    assert [o["value"] for o in out] == [rz.MASK, "10.0.0.9"]
    # an update patches the annotation in (and out)
    plain, _ = nested.child(parent, "lib/secret.yaml", "app", "shop-app", parent.resolve("app", attrs), CTX,
                            "Delete", 60)
    assert nested.SECRET_PARAMETERS_ANNOTATION not in plain.body["metadata"]["annotations"]
    obj = {**plain.body, "metadata": {**plain.body["metadata"], "resourceVersion": "3"}}
    assert rz.update_patch(child, obj) == {"metadata": {"annotations": {nested.SECRET_PARAMETERS_ANNOTATION: "suffix"}}}
    assert rz.update_patch(plain, {**child.body}) == {
        "metadata": {"annotations": {nested.SECRET_PARAMETERS_ANNOTATION: None}}}
    # nothing secret in the stack: nothing to look at
    quiet = _stack({"app": {"type": "lib/secret.yaml", "properties": {"suffix": "x"}}}, files=SECRET_FILES)
    assert status.secret_parameters(quiet, "app", {}, set()) == set()


FACADE_TIER = """
heat_template_version: 2016-10-14
parameters:
  flavor: {type: string}
resources:
  server:
    type: OS::Nova::Server
    deletion_policy: {resource_facade: deletion_policy}
    properties:
      flavor: {get_param: flavor}
      image: cirros
      metadata: {resource_facade: metadata}
outputs:
  update_policy: {value: {resource_facade: update_policy}}
"""
FACADE_FILES = {**FILES, "lib/facade.yaml": FACADE_TIER}


def _child_loaded(child: rz.Child, params: rz.Child) -> tuple[dict, Stack]:
    """The child Stack's inputs once planned, and the engine's stack it loads (what its
    controller makes of the spec and the parameters Secret the parent wrote)."""
    meta = {**child.body["metadata"], "namespace": "demo", "uid": "u2"}
    want = {"template": child.spec["template"], "parameters": dict(params.body["stringData"]),
            "files": child.spec["files"], "environment": child.spec.get("environment") or {}, "overrides": {}}
    state = record.start(None, 1)
    record.plan(meta, state, want, exists=None)
    return state["target"], record.load(meta, state["target"], state)


def test_resource_facade_reads_the_parent_resources_metadata_and_policies():
    stack = _stack({"web": {"type": "lib/facade.yaml", "deletion_policy": "Retain",
                            "metadata": {"role": {"str_replace": {"template": "tier-$n", "params": {"$n": 1}}}},
                            "update_policy": {"batch": 2}, "properties": {"flavor": "m1"}}},
                   files=FACADE_FILES)
    child, params = nested.child(stack, "lib/facade.yaml", "web", "shop-web", stack.resolve("web"), CTX, "Retain", 60)
    # the facade travels with the parameters, in the Secret (metadata may derive from a secret)
    facade = {"metadata": {"role": "tier-1"}, "deletion_policy": "Retain", "update_policy": {"batch": 2}}
    assert json.loads(params.body["stringData"][nested.FACADE_PARAMETER]) == facade
    assert "resource_facade" in json.dumps(child.spec["template"])  # the template stays as written
    inputs, loaded = _child_loaded(child, params)
    assert inputs["parameters"] == {"flavor": "m1"} and inputs["facade"] == facade
    assert loaded.defs["server"].deletion_policy == "Retain"
    assert loaded.resolve("server")["metadata"] == {"role": "tier-1"}
    assert loaded.outputs({}) == {"update_policy": {"batch": 2}}
    assert status.parameters(loaded) == {"flavor": "m1"}
    # a changed facade is a new Secret, so the child updates; without metadata it is empty
    stack = _stack({"web": {"type": "lib/facade.yaml", "properties": {"flavor": "m1"}}}, files=FACADE_FILES)
    other, other_params = nested.child(stack, "lib/facade.yaml", "web", "shop-web", stack.resolve("web"), CTX,
                                       "Delete", 60)
    assert other_params.name != params.name
    _, loaded = _child_loaded(other, other_params)
    assert loaded.resolve("server")["metadata"] == {} and loaded.defs["server"].deletion_policy == "Delete"
    assert loaded.outputs({}) == {"update_policy": {}}


def test_a_template_that_does_not_call_resource_facade_gets_none():
    stack = _stack({"web": {"type": "lib/tier.yaml", "metadata": {"a": 1}, "properties": {"flavor": "m1"}}})
    _, params = nested.child(stack, "lib/tier.yaml", "web", "shop-web", stack.resolve("web"), CTX, "Delete", 60)
    assert params.body["stringData"] == {"flavor": "m1"}
    assert params.name == nested.parameters_secret_name("shop-web", {"flavor": "m1"})
    # nor does an OS::Heat::Stack, a stack of its own in Heat: its template's call is an error there
    stack = _stack({"s": {"type": "OS::Heat::Stack", "metadata": {"a": 1},
                          "properties": {"template": FACADE_TIER, "parameters": {"flavor": "m1"}}}})
    _, params = nested.child(stack, nested.HEAT_STACK, "s", "shop-s", stack.resolve("s"), CTX, "Delete", 60)
    assert params.body["stringData"] == {"flavor": "m1"}


def test_resource_facade_outside_a_nested_stack_is_a_validation_error():
    with pytest.raises(StackValidationFailed) as e:
        load_stack(FACADE_TIER, {"flavor": "m1"})
    assert str(e.value).startswith('resources.server.deletion_policy.resource_facade: "resource_facade" is only '
                                   "valid in a template used as a nested stack")


def test_the_members_of_a_group_read_the_groups_member_definition():
    group = {"type": "OS::Heat::ResourceGroup", "deletion_policy": "Retain",
             "update_policy": {"rolling_update": {"max_batch_size": 2}},
             "properties": {"count": 2, "resource_def": {"type": "lib/facade.yaml", "metadata": {"tier": "web"},
                                                         "properties": {"flavor": "m%index%"}}}}
    stack = _stack({"g": group}, files=FACADE_FILES)
    (planned,) = stack.plan().resources
    member = planned.members[1]
    child, params = nested.child(stack, member.type, "g", member.physical_name, member.properties, CTX, "Retain", 60)
    _, loaded = _child_loaded(child, params)
    assert loaded.params["flavor"] == "m1"
    assert loaded.resolve("server")["metadata"] == {"tier": "web"}
    # a member has the group's deletion policy in kubestack, and Heat's member definitions no update_policy
    assert loaded.defs["server"].deletion_policy == "Retain" and loaded.outputs({}) == {"update_policy": {}}


def test_metadata_from_another_resources_attribute_is_resolved_with_the_attributes_known():
    stack = _stack({"db": {"type": "OS::Nova::Server", "properties": {"image": "cirros", "flavor": "m1"}},
                    "web": {"type": "lib/facade.yaml", "metadata": {"db": {"get_attr": ["db", "first_address"]}},
                            "properties": {"flavor": "m1"}}}, files=FACADE_FILES)
    assert stack.dependencies("web") == ["db"]
    with pytest.raises(rz.RealizeError, match=r"the metadata or update_policy of web.*not known yet.*first_address"):
        nested.child(stack, "lib/facade.yaml", "web", "shop-web", stack.resolve("web"), CTX, "Delete", 60)
    attrs = {"db": {"first_address": "10.0.0.7"}}
    child, params = nested.child(stack, "lib/facade.yaml", "web", "shop-web", stack.resolve("web", attrs), CTX,
                                 "Delete", 60, attrs=attrs)
    assert json.loads(params.body["stringData"][nested.FACADE_PARAMETER])["metadata"] == {"db": "10.0.0.7"}


def test_a_parameter_named_like_the_facade_that_is_not_one_is_refused():
    inputs = {"parameters": {nested.FACADE_PARAMETER: '{"deletion_policy": "Keep"}', "a": "1"}}
    with pytest.raises(StackValidationFailed, match=nested.FACADE_PARAMETER):
        nested.take_facade(inputs)
    inputs = {"parameters": {"a": "1"}}
    nested.take_facade(inputs)
    assert inputs == {"parameters": {"a": "1"}}
