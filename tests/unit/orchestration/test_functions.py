import hashlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubestack.orchestration import realize as rz
from kubestack.orchestration.errors import (HeatError, InvalidFunctionArgs, InvalidTemplateAttribute,
                                            InvalidTemplateReference, StackValidationFailed,
                                            UserParameterMissing)

from kubestack.orchestration.nested import ResourceFacade

from .helpers import output_of, server

P = {"type": "string"}


# -- get_param ------------------------------------------------------------------------------

def test_get_param_with_path():
    params = {"m": {"type": "json", "default": {"a": [10, {"b": "deep"}]}}}
    assert output_of({"get_param": ["m", "a", 1, "b"]}, parameters=params) == "deep"
    assert output_of({"get_param": "m"}, parameters=params) == {"a": [10, {"b": "deep"}]}


def test_get_param_of_undefined_parameter_names_it():
    with pytest.raises(UserParameterMissing) as e:
        output_of({"get_param": "nope"})
    assert str(e.value) == "outputs.o.value.get_param: The Parameter (nope) was not provided."


def test_pseudo_parameters():
    expr = [{"get_param": "OS::stack_name"}, {"get_param": "OS::stack_id"}, {"get_param": "OS::project_id"}]
    assert output_of(expr, stack_name="s1", stack_id="uid-1", project_id="demo") == ["s1", "uid-1", "demo"]
    # offline the stack id is not known yet: the call stays a HOT snippet
    assert output_of(expr, stack_name="s1") == ["s1", {"get_param": "OS::stack_id"},
                                                {"get_param": "OS::project_id"}]


# -- get_resource / get_attr ------------------------------------------------------------------

def test_get_resource_is_the_child_object_name():
    res = {"my_key": {"type": "OS::Nova::KeyPair", "properties": {"name": "k"}}}
    assert output_of({"get_resource": "my_key"}, resources=res, stack_name="Demo_Stack") == "demo-stack-my-key"


def test_get_resource_unknown_names_referrer():
    with pytest.raises(InvalidTemplateReference) as e:
        output_of({"get_resource": "ghost"})
    assert 'The specified reference "ghost" (in o) is incorrect.' in str(e.value)


def test_get_attr_with_path_and_unknown_attribute():
    res = {"vm": server()}
    attrs = {"vm": {"networks": {"private": ["10.0.0.5", "fd00::5"]}, "first_address": "10.0.0.5"}}
    assert output_of({"get_attr": ["vm", "networks", "private", 0]}, resources=res, attrs=attrs) == "10.0.0.5"
    assert output_of({"get_attr": ["vm", "first_address"]}, resources=res) == {"get_attr": ["vm", "first_address"]}
    with pytest.raises(InvalidTemplateAttribute) as e:
        output_of({"get_attr": ["vm", "frist_address"]}, resources=res)
    assert "The Referenced Attribute (vm frist_address) is incorrect." in str(e.value)


SERVER_OBJECT = {"spec": {"flavor": "m1.small"}, "status": {
    "addresses": {"private": [{"addr": "10.0.0.5", "version": 4, "type": "fixed", "macAddr": "fa:16:3e:00:00:01"}]},
    "virtualMachine": "vm-1"}}


def test_get_attr_all_attributes_from_2015_10_15():
    # Heat's FnGetAtts: every attribute of the resource's type, but "show"
    res = {"vm": server()}
    attrs = {"vm": rz.attributes("OS::Nova::Server", SERVER_OBJECT, "st-vm")}
    assert output_of({"get_attr": ["vm"]}, resources=res, attrs=attrs) == {
        "first_address": "10.0.0.5", "networks": {"private": ["10.0.0.5"]}, "name": "st-vm",
        "accessIPv4": "10.0.0.5", "accessIPv6": "",
        "addresses": {"private": [{"addr": "10.0.0.5", "version": 4, "OS-EXT-IPS:type": "fixed",
                                   "OS-EXT-IPS-MAC:mac_addr": "fa:16:3e:00:00:01"}]},
        "instance_name": "vm-1", "console_urls": {}, "tags": []}
    with pytest.raises(InvalidFunctionArgs):
        output_of({"get_attr": ["vm"]}, version="2015-04-30", resources=res, attrs=attrs)


@pytest.mark.parametrize("resource, attrs, expected", [
    ({"type": "OS::Heat::RandomString"}, {"value": "s3cret"}, {"value": "s3cret"}),
    ({"type": "OS::Heat::CloudConfig", "properties": {"cloud_config": {"a": 1}}}, None,
     {"config": "#cloud-config\na: 1\n"}),
    ({"type": "OS::Heat::ScalingPolicy", "properties": {"adjustment_type": "change_in_capacity",
                                                         "auto_scaling_group_id": "g", "scaling_adjustment": 1}},
     {"alarm_url": "u", "signal_url": "u"}, {"alarm_url": "u", "signal_url": "u"}),
    # a type whose only attribute is "show": an empty map, once it is there
    ({"type": "OS::Neutron::SecurityGroup"}, {"show": {"name": "x"}}, {}),
])
def test_get_attr_all_attributes_of_every_kind_of_resource(resource, attrs, expected):
    assert output_of({"get_attr": ["r"]}, resources={"r": resource},
                     attrs={"r": attrs} if attrs is not None else {}) == expected


def test_get_attr_all_attributes_waits_for_all_of_them():
    res = {"vm": server(), "sg": {"type": "OS::Neutron::SecurityGroup"},
           "cfg": {"type": "OS::Heat::SoftwareConfig", "properties": {"config": {"get_attr": ["vm", "name"]}}}}
    expr = [{"get_attr": ["vm"]}, {"get_attr": ["sg"]}, {"get_attr": ["cfg"]}]
    assert output_of(expr, resources=res) == expr
    # one attribute not known yet (the controller gives them all at once): still waiting
    assert output_of({"get_attr": ["vm"]}, resources=res, attrs={"vm": {"name": "a"}}) == {"get_attr": ["vm"]}
    with pytest.raises(InvalidTemplateReference):
        output_of({"get_attr": ["ghost"]}, resources=res)


FACADE = ResourceFacade(metadata={"role": "web"}, deletion_policy="Retain", update_policy={"batch": 2})


@pytest.mark.parametrize("fn, arg, version, expected", [
    ("resource_facade", "metadata", "2021-04-16", {"role": "web"}),
    ("resource_facade", "deletion_policy", "2015-04-30", "Retain"),
    ("resource_facade", "update_policy", "2013-05-23", {"batch": 2}),
    ("Fn::ResourceFacade", "Metadata", "2013-05-23", {"role": "web"}),
    ("Fn::ResourceFacade", "DeletionPolicy", "2013-05-23", "Retain"),
])
def test_resource_facade_reads_the_parent_resource(fn, arg, version, expected):
    assert output_of({fn: arg}, version=version, facade=FACADE) == expected


@pytest.mark.parametrize("fn, arg, allowed", [
    ("resource_facade", "policy", "metadata, deletion_policy, update_policy"),
    ("resource_facade", {"get_param": "p"}, "metadata, deletion_policy, update_policy"),
    ("Fn::ResourceFacade", "metadata", "Metadata, DeletionPolicy, UpdatePolicy"),
])
def test_resource_facade_takes_one_of_its_three_names(fn, arg, allowed):
    with pytest.raises(InvalidFunctionArgs) as e:
        output_of({fn: arg}, version="2013-05-23", parameters={"p": {**P, "default": "metadata"}}, facade=FACADE)
    assert str(e.value) == f'outputs.o.value.{fn}: Arguments to "{fn}" should be one of: {allowed}'


def test_resource_facade_needs_a_parent_resource():
    with pytest.raises(StackValidationFailed, match='^outputs.o.value.resource_facade: "resource_facade" is only '
                                                    "valid in a template used as a nested stack"):
        output_of({"resource_facade": "metadata"})


def test_get_file():
    assert output_of({"get_file": "s.sh"}, files={"s.sh": "#!/bin/sh\n"}) == "#!/bin/sh\n"
    with pytest.raises(StackValidationFailed, match='No content found in the "files" section for get_file path: x.sh'):
        output_of({"get_file": "x.sh"})


# -- strings --------------------------------------------------------------------------------

def test_str_replace_longest_key_first_and_numbers():
    expr = {"str_replace": {"template": "$var and $var2 port", "params": {"$var": "a", "$var2": "b", "port": 80}}}
    assert output_of(expr) == "a and b 80"


def test_str_replace_json_values_from_2015_10_15():
    expr = {"str_replace": {"template": "x=DATA", "params": {"DATA": {"k": [1]}}}}
    assert output_of(expr) == 'x={"k": [1]}'
    with pytest.raises(InvalidFunctionArgs):
        output_of(expr, version="2015-04-30")


def test_str_replace_strict_and_vstrict():
    with pytest.raises(StackValidationFailed, match="not found in the template: missing"):
        output_of({"str_replace_strict": {"template": "abc", "params": {"a": "x", "missing": "y"}}})
    assert output_of({"str_replace_strict": {"template": "abc", "params": {"a": ""}}}) == "bc"
    with pytest.raises(InvalidFunctionArgs, match="empty value"):
        output_of({"str_replace_vstrict": {"template": "abc", "params": {"a": ""}}})


def test_str_replace_deferred_until_attribute_known():
    res = {"vm": server()}
    expr = {"str_replace": {"template": "ip=IP", "params": {"IP": {"get_attr": ["vm", "first_address"]}}}}
    assert output_of(expr, resources=res) == {"str_replace": {"template": "ip=IP", "params": {
        "IP": {"get_attr": ["vm", "first_address"]}}}}
    assert output_of(expr, resources=res, attrs={"vm": {"first_address": "1.2.3.4"}}) == "ip=1.2.3.4"


def test_str_split():
    assert output_of({"str_split": [",", "a,b,c"]}) == ["a", "b", "c"]
    assert output_of({"str_split": [",", "a,b,c", 1]}) == "b"
    with pytest.raises(InvalidFunctionArgs, match="out of range"):
        output_of({"str_split": [",", "a,b", 5]})


def test_list_join():
    assert output_of({"list_join": ["-", ["a", "b"], ["c"]]}) == "a-b-c"
    assert output_of({"list_join": [",", [{"a": 1}, 2]]}) == '{"a": 1},2'
    assert output_of({"list_join": ["-", ["a", "b"]]}, version="2015-04-30") == "a-b"
    with pytest.raises(InvalidFunctionArgs):
        output_of({"list_join": ["-", ["a"], ["b"]]}, version="2015-04-30")


def test_digest():
    assert output_of({"digest": ["sha512", "hello"]}) == hashlib.sha512(b"hello").hexdigest()
    assert output_of({"digest": ["md5", "hello"]}) == hashlib.md5(b"hello").hexdigest()
    with pytest.raises(InvalidFunctionArgs, match="algorithm"):
        output_of({"digest": ["nope", "hello"]})


def test_make_url():
    url = output_of({"make_url": {"scheme": "https", "username": "u", "password": "p@ss", "host": "example.com",
                                  "port": 8443, "path": "/a b/c", "query": {"x": "1 2"}, "fragment": "top"}})
    assert url == "https://u:p%40ss@example.com:8443/a%20b/c?x=1+2#top"
    assert output_of({"make_url": {"scheme": "http", "host": "fd00::1", "port": 80, "path": ""}}) == "http://[fd00::1]:80/"
    with pytest.raises(InvalidFunctionArgs, match="out of range"):
        output_of({"make_url": {"host": "h", "port": 70000}})


# -- lists and maps ----------------------------------------------------------------------------

def test_list_concat_and_unique():
    assert output_of({"list_concat": [[1, 2], [2, 3]]}) == [1, 2, 2, 3]
    assert output_of({"list_concat_unique": [[1, 2], [2, 3], [1]]}) == [1, 2, 3]
    with pytest.raises(InvalidFunctionArgs, match="must be lists"):
        output_of({"list_concat": [[1], "x"]})


def test_repeat_permutations():
    expr = {"repeat": {"for_each": {"%a%": ["x", "y"], "%b%": [1, 2]}, "template": "%a%-%b%"}}
    assert output_of(expr) == ["x-1", "x-2", "y-1", "y-2"]
    expr["repeat"]["permutations"] = False
    assert output_of(expr) == ["x-1", "y-2"]
    with pytest.raises(InvalidFunctionArgs, match="permutations"):
        output_of(expr, version="2016-10-14")


def test_repeat_templates_maps_and_keys():
    expr = {"repeat": {"for_each": {"<%port%>": [22, 80]},
                       "template": {"port_<%port%>": {"min": "<%port%>", "label": "p<%port%>"}}}}
    assert output_of(expr) == [{"port_22": {"min": 22, "label": "p22"}}, {"port_80": {"min": 80, "label": "p80"}}]


def test_repeat_unequal_lists_without_permutations():
    with pytest.raises(InvalidFunctionArgs, match="same length"):
        output_of({"repeat": {"for_each": {"a": [1], "b": [1, 2]}, "template": "ab", "permutations": False}})


def test_map_merge_and_replace():
    assert output_of({"map_merge": [{"a": 1, "b": 1}, {"b": 2}]}) == {"a": 1, "b": 2}
    assert output_of({"map_replace": [{"k1": "v1", "k2": "v2"},
                                      {"keys": {"k1": "K1"}, "values": {"v2": "V2"}}]}) == {"K1": "v1", "k2": "V2"}
    with pytest.raises(InvalidFunctionArgs, match="collides"):
        output_of({"map_replace": [{"a": 1, "b": 2}, {"keys": {"a": "b"}}]})


def test_filter_and_contains():
    assert output_of({"filter": [[None, ""], ["a", None, "", "b"]]}) == ["a", "b"]
    assert output_of({"contains": ["b", ["a", "b"]]}) is True
    assert output_of({"contains": ["z", ["a", "b"]]}) is False


# -- conditions --------------------------------------------------------------------------------

COND_PARAMS = {"env": {"type": "string", "default": "prod"}, "zones": {"type": "comma_delimited_list", "default": "a,b"}}


@pytest.mark.parametrize("cond,expected", [
    ({"equals": [{"get_param": "env"}, "prod"]}, True),
    ({"not": {"equals": [{"get_param": "env"}, "prod"]}}, False),
    ({"and": [True, {"equals": [{"get_param": "env"}, "prod"]}]}, True),
    ({"or": [False, {"equals": [{"get_param": "env"}, "dev"]}]}, False),
    ({"contains": ["b", {"get_param": "zones"}]}, True),
    ("other", True),
])
def test_conditions(cond, expected):
    conditions = {"c": cond, "other": {"equals": [1, 1]}}
    assert output_of({"if": ["c", "yes", "no"]}, parameters=COND_PARAMS, conditions=conditions) == (
        "yes" if expected else "no")


def test_if_does_not_evaluate_the_branch_not_taken():
    assert output_of({"if": ["c", "ok", {"get_resource": "missing"}]}, conditions={"c": True}) == "ok"


def test_unknown_condition_and_cycles():
    with pytest.raises(StackValidationFailed, match='Invalid condition "nope"'):
        output_of({"if": ["nope", 1, 2]}, conditions={"c": True})
    with pytest.raises(StackValidationFailed, match="Circular Dependency Found"):
        output_of(1, conditions={"a": {"not": "b"}, "b": {"not": "a"}})


def test_and_needs_two_conditions():
    with pytest.raises(InvalidFunctionArgs, match="at least 2"):
        output_of(1, conditions={"a": {"and": [True]}})


# -- CFN functions of 2013-05-23 ---------------------------------------------------------------------

def test_cfn_functions():
    v = "2013-05-23"
    assert output_of({"Fn::Join": [",", ["a", "b"]]}, version=v) == "a,b"
    assert output_of({"Fn::Split": [",", "a,b"]}, version=v) == ["a", "b"]
    assert output_of({"Fn::Select": [1, ["a", "b"]]}, version=v) == "b"
    assert output_of({"Fn::Replace": [{"$x": "1"}, "v=$x"]}, version=v) == "v=1"
    assert output_of({"Ref": "p"}, version=v, parameters={"p": {"type": "string", "default": "pv"}}) == "pv"
    assert output_of({"Fn::MemberListToMap": ["Name", "Value", [
        ".member.0.Name=k", ".member.0.Value=v", ".member.1.Name=k2", ".member.1.Value=v2"]]}, version=v) == {
        "k": "v", "k2": "v2"}


def test_errors_are_heat_errors_with_paths():
    with pytest.raises(HeatError) as e:
        output_of({"list_join": "nope"})
    assert str(e.value).startswith("outputs.o.value.list_join:")


@settings(max_examples=50, deadline=None)
@given(st.lists(st.text(alphabet="abc,", max_size=5), max_size=5), st.sampled_from([",", ";", "--"]))
def test_list_join_then_str_split_roundtrip(items, delim):
    items = [i for i in items if delim not in i and "," not in i]
    joined = output_of({"list_join": [delim, items]})
    assert joined == delim.join(items)
    if items:
        assert output_of({"str_split": [delim, joined]}) == items


@settings(max_examples=50, deadline=None)
@given(st.dictionaries(st.sampled_from(["$a", "$bb", "$abc", "x"]), st.text(alphabet="xyz", max_size=3), max_size=4),
       st.text(alphabet="$abcx ", max_size=20))
def test_str_replace_single_pass(params, template):
    out = output_of({"str_replace": {"template": template, "params": params}})
    # the result never contains text produced by re-substituting a replacement
    keys = sorted(params, key=len, reverse=True)
    expected, i = "", 0
    while i < len(template):
        for k in keys:
            if template.startswith(k, i):
                expected += params[k]
                i += len(k)
                break
        else:
            expected += template[i]
            i += 1
    assert out == expected
    json.dumps(out)
