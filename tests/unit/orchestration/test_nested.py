"""Nested stacks: template resources (a type naming a template file, directly or through the
resource_registry) and OS::Heat::Stack; their properties as the nested stack's parameters,
its outputs as their attributes, the child Stack they become, its readiness and updates, and
the nesting depth limit."""

import pytest

from kubestack.api.registry import BY_KIND
from kubestack.orchestration import diff, load_stack, nested, record
from kubestack.orchestration import realize as rz
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
