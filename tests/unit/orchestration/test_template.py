import pytest

from kubestack.orchestration import load_stack
from kubestack.orchestration.errors import (InvalidTemplateReference, PropertyError, PropertyNotAssigned,
                                            ResourceTypeNotFound, StackValidationFailed, UnknownProperty)

from .helpers import server, tmpl


def test_unknown_resource_type_is_an_error_naming_the_resource():
    with pytest.raises(ResourceTypeNotFound) as e:
        load_stack(tmpl(resources={"lb": {"type": "OS::Octavia::LoadBalancer"}}))
    assert str(e.value) == "resources.lb: The Resource Type (OS::Octavia::LoadBalancer) could not be found."


def test_required_property_not_assigned():
    with pytest.raises(PropertyNotAssigned) as e:
        load_stack(tmpl(resources={"vm": {"type": "OS::Nova::Server", "properties": {"image": "cirros"}}}))
    assert str(e.value) == "resources.vm: Property flavor not assigned"


def test_unknown_property():
    with pytest.raises(UnknownProperty, match="resources.vm.properties: Unknown Property flavour"):
        load_stack(tmpl(resources={"vm": server(flavour="m1.small")}))


def test_nested_property_schema():
    with pytest.raises(UnknownProperty, match=r"resources.vm.properties.networks.0: Unknown Property netwrok"):
        load_stack(tmpl(resources={"vm": server(networks=[{"netwrok": "private"}])}))


@pytest.mark.parametrize("props,message", [
    ({"networks": "not-a-list-of-maps"}, '"not-a-list-of-maps" is not a map'),
    ({"metadata": ["x"]}, "is not a map"),
    ({"user_data_format": "BASE64"}, '"BASE64" is not an allowed value [HEAT_CFNTOOLS, RAW, SOFTWARE_CONFIG]'),
])
def test_property_type_errors(props, message):
    with pytest.raises(PropertyError) as e:
        load_stack(tmpl(resources={"vm": server(**props)}))
    assert message in str(e.value)
    assert str(e.value).startswith("Property error: resources.vm.properties.")


def test_integer_property_from_parameter_string():
    t = tmpl(parameters={"size": {"type": "string", "default": "10"}},
             resources={"v": {"type": "OS::Cinder::Volume", "properties": {"size": {"get_param": "size"}}}})
    assert load_stack(t).resolve("v")["size"] == 10
    t["parameters"]["size"]["default"] = "ten"
    with pytest.raises(PropertyError, match="Value 'ten' is not an integer"):
        load_stack(t)


@pytest.mark.parametrize("section", ["Resources", "mappings"])
def test_unknown_sections(section):
    with pytest.raises(StackValidationFailed, match=f"The template section is invalid: {section}"):
        load_stack(tmpl(**{section: {}}))


def test_resource_keys():
    with pytest.raises(StackValidationFailed, match='"propertys" is not a valid keyword inside a resource definition'):
        load_stack(tmpl(resources={"vm": {"type": "OS::Nova::Server", "propertys": {}}}))
    with pytest.raises(StackValidationFailed, match='Resource vm is missing "type"'):
        load_stack(tmpl(resources={"vm": {"properties": {}}}))
    with pytest.raises(StackValidationFailed, match='"condition" is not a valid keyword'):
        load_stack(tmpl("2016-04-08", resources={"vm": dict(server(), condition="c")}))


def test_outputs_need_a_value():
    with pytest.raises(StackValidationFailed, match="Each output must contain a value key."):
        load_stack(tmpl(outputs={"o": {"description": "x"}}))


def test_deletion_policy():
    with pytest.raises(StackValidationFailed, match='Invalid deletion policy "Keep"'):
        load_stack(tmpl(resources={"vm": dict(server(), deletion_policy="Keep")}))
    stack = load_stack(tmpl(resources={"vm": dict(server(), deletion_policy="Retain")}))
    assert stack.defs["vm"].deletion_policy == "Retain"


def test_depends_on_unknown_resource():
    with pytest.raises(InvalidTemplateReference, match='The specified reference "db" \\(in vm\\) is incorrect.'):
        load_stack(tmpl(resources={"vm": dict(server(), depends_on="db")}))


def test_missing_version_and_cfn():
    with pytest.raises(StackValidationFailed, match="heat_template_version"):
        load_stack({"resources": {}})
    with pytest.raises(StackValidationFailed, match="CloudFormation"):
        load_stack({"AWSTemplateFormatVersion": "2010-09-09"})


def test_yaml_errors():
    with pytest.raises(StackValidationFailed, match="Error parsing template"):
        load_stack("heat_template_version: 2015-04-30\nresources: [\n")
    with pytest.raises(StackValidationFailed, match="not a JSON object or YAML mapping"):
        load_stack("- a\n- b\n")


def test_conditional_resource_is_dropped_and_references_to_it_fail():
    t = tmpl("2016-10-14", parameters={"env": {"type": "string", "default": "dev"}},
             conditions={"prod": {"equals": [{"get_param": "env"}, "prod"]}},
             resources={"vol": {"type": "OS::Cinder::Volume", "condition": "prod", "properties": {"size": 1}},
                        "vm": server()})
    stack = load_stack(t)
    assert stack.resources_in_order() == ["vm"]
    assert load_stack(t, {"env": "prod"}).resources_in_order() == ["vm", "vol"]
    t["resources"]["att"] = {"type": "OS::Cinder::VolumeAttachment",
                             "properties": {"instance_uuid": {"get_resource": "vm"}, "volume_id": {"get_resource": "vol"}}}
    with pytest.raises(InvalidTemplateReference, match='"vol" \\(in att\\)'):
        load_stack(t)


def test_resource_condition_inline_expression_and_output_condition():
    t = tmpl("2021-04-16", parameters={"n": {"type": "number", "default": 0}},
             conditions={"none": {"equals": [{"get_param": "n"}, 0]}},
             resources={"vm": dict(server(), condition={"not": "none"})},
             outputs={"ip": {"value": {"get_attr": ["vm", "first_address"]}, "condition": {"not": "none"}}})
    stack = load_stack(t)
    assert stack.resources_in_order() == []
    assert stack.outputs() == {"ip": None}


def test_environment_resource_registry_aliases():
    t = tmpl(resources={"vm": {"type": "My::Server", "properties": {"image": "cirros", "flavor": "m1.small"}},
                        "net": {"type": "OS::Networking::Net"}})
    env = {"resource_registry": {"My::Server": "OS::Nova::Server", "OS::Networking::*": "OS::Neutron::*"}}
    stack = load_stack(t, environment=env)
    assert stack.defs["vm"].rtype.name == "OS::Nova::Server"
    assert stack.defs["net"].rtype.name == "OS::Neutron::Net"
    plan = stack.plan()
    assert {r.name: r.kind for r in plan.resources} == {"vm": "Server", "net": "Network"}


def test_environment_errors():
    t = tmpl(resources={"vm": {"type": "My::Server"}})
    with pytest.raises(StackValidationFailed, match=r'resources.vm: Could not fetch remote template "server.yaml"'):
        load_stack(t, environment={"resource_registry": {"My::Server": "server.yaml"}})
    with pytest.raises(StackValidationFailed, match='environment has wrong section "params"'):
        load_stack(t, environment={"params": {}})
    with pytest.raises(ResourceTypeNotFound, match=r"\(My::Server\)"):
        load_stack(t)


def test_admin_only_flavor_marked():
    t = tmpl(resources={"f": {"type": "OS::Nova::Flavor", "properties": {"ram": 512, "vcpus": 1}}})
    (planned,) = load_stack(t).plan().resources
    assert planned.admin_only and planned.kind == "Flavor"
    assert planned.properties["disk"] == 0


def test_snapshot_policy_only_for_volumes_and_servers():
    load_stack(tmpl(resources={"v": {"type": "OS::Cinder::Volume", "properties": {"size": 1},
                                     "deletion_policy": "Snapshot"}}))
    with pytest.raises(StackValidationFailed, match='"Snapshot" deletion policy not supported by OS::Neutron::Net'):
        load_stack(tmpl(resources={"n": {"type": "OS::Neutron::Net", "deletion_policy": "Snapshot"}}))
