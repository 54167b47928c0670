import pytest

from kubestack.orchestration import load_stack
from kubestack.orchestration.errors import (InvalidParameter, StackValidationFailed,
                                            UnknownUserParameter, UserParameterMissing)
from kubestack.orchestration.parameters import masked

from .helpers import output_of, tmpl


def value(ptype, given=None, default=None, constraints=None, **kw):
    p = {"type": ptype}
    if default is not None:
        p["default"] = default
    if constraints:
        p["constraints"] = constraints
    params = {} if given is None else {"p": given}
    return output_of({"get_param": "p"}, parameters={"p": p}, params=params, **kw)


@pytest.mark.parametrize("ptype,given,expected", [
    ("string", "abc", "abc"),
    ("string", 42, "42"),
    ("number", "42", 42),
    ("number", "4.5", 4.5),
    ("number", 7, 7),
    ("boolean", "yes", True),
    ("boolean", "Off", False),
    ("boolean", "1", True),
    ("boolean", True, True),
    ("json", '{"a": [1]}', {"a": [1]}),
    ("json", {"a": 1}, {"a": 1}),
    ("comma_delimited_list", "a, b,c", ["a", "b", "c"]),
    ("comma_delimited_list", ["x", "y"], ["x", "y"]),
    ("comma_delimited_list", "", []),
])
def test_types(ptype, given, expected):
    assert value(ptype, given) == expected


@pytest.mark.parametrize("ptype,given,fragment", [
    ("number", "abc", "Value 'abc' is not a number"),
    ("boolean", "maybe", "Unrecognized value 'maybe'"),
    ("json", "{nope", "Value must be valid JSON"),
    ("json", "42", "Value must be valid JSON map or list"),
])
def test_type_errors_name_the_parameter(ptype, given, fragment):
    with pytest.raises(InvalidParameter) as e:
        value(ptype, given)
    assert f"Parameter 'p' is invalid: {fragment}" in str(e.value)
    assert str(e.value).startswith("parameters.p:")


def test_missing_parameter():
    with pytest.raises(UserParameterMissing) as e:
        value("string")
    assert str(e.value) == "The Parameter (p) was not provided."


def test_unknown_parameter_given():
    with pytest.raises(UnknownUserParameter, match=r"The Parameter \(typo\) was not defined in template."):
        load_stack(tmpl(parameters={"p": {"type": "string", "default": "x"}}), {"typo": "1"})


def test_precedence_user_env_defaults_template():
    t = tmpl(parameters={"p": {"type": "string", "default": "template"}}, outputs={"o": {"value": {"get_param": "p"}}})
    assert load_stack(t).outputs()["o"] == "template"
    assert load_stack(t, environment={"parameter_defaults": {"p": "defaults"}}).outputs()["o"] == "defaults"
    env = {"parameter_defaults": {"p": "defaults"}, "parameters": {"p": "env"}}
    assert load_stack(t, environment=env).outputs()["o"] == "env"
    assert load_stack(t, {"p": "user"}, environment=env).outputs()["o"] == "user"


@pytest.mark.parametrize("constraint,good,bad,message", [
    ({"length": {"min": 2, "max": 4}}, "abc", "abcdef", "length (6) is out of range (min: 2, max: 4)"),
    ({"range": {"min": 1, "max": 10}}, "5", "11", "11 is out of range (min: 1, max: 10)"),
    ({"modulo": {"step": 2, "offset": 1}}, "3", "4", "4 is not a multiple of 2 with an offset of 1"),
    ({"allowed_values": ["m1.small", "m1.large"]}, "m1.small", "m1.huge",
     '"m1.huge" is not an allowed value [m1.small, m1.large]'),
    ({"allowed_pattern": "[a-z]+"}, "abc", "abc1", '"abc1" does not match pattern "[a-z]+"'),
])
def test_constraints(constraint, good, bad, message):
    ptype = "number" if ("range" in constraint or "modulo" in constraint) else "string"
    assert value(ptype, good, constraints=[constraint]) is not None
    with pytest.raises(InvalidParameter) as e:
        value(ptype, bad, constraints=[constraint])
    assert str(e.value) == f"parameters.p: Parameter 'p' is invalid: {message}"


def test_allowed_pattern_matches_the_whole_value():
    with pytest.raises(InvalidParameter):
        value("string", "abc-", constraints=[{"allowed_pattern": "[a-z]+"}])
    with pytest.raises(InvalidParameter):
        value("string", "abc", constraints=[{"allowed_pattern": "[a-z]"}])


def test_constraint_description_replaces_the_message():
    with pytest.raises(InvalidParameter) as e:
        value("string", "x", constraints=[{"length": {"min": 6}, "description": "Password too short"}])
    assert str(e.value).endswith("Parameter 'p' is invalid: Password too short")


def test_allowed_values_for_lists_and_numbers():
    assert value("comma_delimited_list", "a,b", constraints=[{"allowed_values": ["a", "b", "c"]}]) == ["a", "b"]
    assert value("number", "2", constraints=[{"allowed_values": [1, 2]}]) == 2
    with pytest.raises(InvalidParameter):
        value("comma_delimited_list", "a,z", constraints=[{"allowed_values": ["a", "b"]}])


def test_custom_constraints_with_and_without_lookup():
    seen = []

    def exists(kind, name):
        seen.append((kind, name))
        return name == "m1.small"

    assert value("string", "m1.small", constraints=[{"custom_constraint": "nova.flavor"}], exists=exists) == "m1.small"
    with pytest.raises(InvalidParameter) as e:
        value("string", "m1.huge", constraints=[{"custom_constraint": "nova.flavor"}], exists=exists)
    assert "Error validating value 'm1.huge': The Flavor (m1.huge) could not be found." in str(e.value)
    assert ("Flavor", "m1.huge") in seen
    t = tmpl(parameters={"img": {"type": "string", "default": "cirros", "constraints": [{"custom_constraint": "glance.image"}]}})
    stack = load_stack(t)
    assert stack.unchecked_constraints == ["parameters.img: glance.image (cirros)"]


def test_unknown_custom_constraint():
    with pytest.raises(InvalidParameter, match=r"does not validate foo.bar \(constraint not found\)"):
        value("string", "x", constraints=[{"custom_constraint": "foo.bar"}])


@pytest.mark.parametrize("schema,message", [
    ({"type": "strnig"}, "Invalid type (strnig)"),
    ({"description": "x"}, "Missing parameter type for parameter: p"),
    ({"type": "string", "colour": "red"}, "Invalid key 'colour' for parameter (p)"),
    ({"type": "number", "constraints": [{"range": {}}]}, "A range constraint must have a min value and/or a max value specified."),
    ({"type": "number", "constraints": [{"modulo": {"step": 2, "offset": 3}}]}, "offset must be smaller (by absolute value) than step."),
    ({"type": "string", "constraints": [{"range": {"min": 1}}]}, 'Invalid range constraint for parameter p of type "string"'),
])
def test_bad_parameter_schemas(schema, message):
    with pytest.raises(StackValidationFailed) as e:
        load_stack(tmpl(parameters={"p": schema}))
    assert message in str(e.value)


def test_hidden_parameters_are_masked():
    t = tmpl(parameters={"pw": {"type": "string", "hidden": True}, "u": {"type": "string"}})
    stack = load_stack(t, {"pw": "secret", "u": "me"})
    assert masked(stack.template.parameters, stack.params) == {"pw": "******", "u": "me"}


def test_parameter_groups():
    params = {"a": {"type": "string", "default": ""}, "b": {"type": "string", "default": ""}}
    load_stack(tmpl(parameters=params, parameter_groups=[{"label": "g", "parameters": ["a", "b"]}]))
    with pytest.raises(StackValidationFailed, match="The grouped parameter c does not reference a valid parameter."):
        load_stack(tmpl(parameters=params, parameter_groups=[{"parameters": ["a", "c"]}]))
    with pytest.raises(StackValidationFailed, match="The a parameter must be assigned to one parameter group only."):
        load_stack(tmpl(parameters=params, parameter_groups=[{"parameters": ["a"]}, {"parameters": ["a"]}]))
    with pytest.raises(StackValidationFailed, match="Parameters must be provided for each Parameter Group."):
        load_stack(tmpl(parameters=params, parameter_groups=[{"label": "empty"}]))
