import pytest

from kubestack.orchestration import load_stack
from kubestack.orchestration.errors import FunctionNotSupported, InvalidTemplateVersion
from kubestack.orchestration.versions import ALL_FUNCTIONS, VERSIONS, get_version

from .helpers import output_of, tmpl

DATES = ["2013-05-23", "2014-10-16", "2015-04-30", "2015-10-15", "2016-04-08", "2016-10-14",
         "2017-02-24", "2017-09-01", "2018-03-02", "2018-08-31", "2021-04-16"]
NAMES = {"newton": "2016-10-14", "ocata": "2017-02-24", "pike": "2017-09-01",
         "queens": "2018-03-02", "rocky": "2018-08-31", "wallaby": "2021-04-16"}


def test_every_version_is_known():
    assert list(VERSIONS) == DATES


@pytest.mark.parametrize("name,date", NAMES.items())
def test_release_names(name, date):
    assert get_version(name).date == date
    stack = load_stack(tmpl(name, outputs={"o": {"value": 1}}))
    assert stack.version.date == date


def test_yaml_date_and_string_forms():
    import datetime
    assert get_version(datetime.date(2015, 4, 30)).date == "2015-04-30"
    assert load_stack("heat_template_version: 2015-04-30\n").version.date == "2015-04-30"


@pytest.mark.parametrize("bad", ["2012-12-12", "2019-01-01", "stein", "", None])
def test_unknown_version(bad):
    with pytest.raises(InvalidTemplateVersion) as e:
        get_version(bad)
    assert "The template version is invalid" in str(e.value)
    assert "2013-05-23" in str(e.value) and "wallaby" in str(e.value)


# one valid use of each function, evaluated as an output
USES = {
    "get_param": {"get_param": "p"},
    "get_resource": {"get_resource": "r"},
    "get_attr": {"get_attr": ["r", "public_key"]},
    "get_file": {"get_file": "f.txt"},
    "list_join": {"list_join": [",", ["a", "b"]]},
    "str_replace": {"str_replace": {"template": "x", "params": {"x": "y"}}},
    "str_replace_strict": {"str_replace_strict": {"template": "x", "params": {"x": "y"}}},
    "str_replace_vstrict": {"str_replace_vstrict": {"template": "x", "params": {"x": "y"}}},
    "str_split": {"str_split": [",", "a,b"]},
    "digest": {"digest": ["sha256", "a"]},
    "repeat": {"repeat": {"for_each": {"%x%": ["a"]}, "template": "%x%"}},
    "map_merge": {"map_merge": [{"a": 1}, {"b": 2}]},
    "map_replace": {"map_replace": [{"a": 1}, {"keys": {"a": "b"}}]},
    "if": {"if": ["c", 1, 2]},
    "filter": {"filter": [[1], [1, 2]]},
    "make_url": {"make_url": {"host": "h"}},
    "list_concat": {"list_concat": [[1], [2]]},
    "list_concat_unique": {"list_concat_unique": [[1], [1]]},
    "contains": {"contains": [1, [1]]},
    "Fn::Select": {"Fn::Select": [0, ["a"]]},
    "Fn::Join": {"Fn::Join": [",", ["a"]]},
    "Fn::Split": {"Fn::Split": [",", "a"]},
    "Fn::Replace": {"Fn::Replace": [{"x": "y"}, "x"]},
    "Fn::Base64": {"Fn::Base64": "a"},
    "Fn::MemberListToMap": {"Fn::MemberListToMap": ["Name", "Value", [".member.0.Name=a", ".member.0.Value=b"]]},
    "Ref": {"Ref": "p"},
}
HOT_FUNCTIONS = sorted(USES)


def _eval(version: str, fn: str):
    v = VERSIONS[version]
    return output_of(USES[fn], version=version, parameters={"p": {"type": "string", "default": "v"}},
                     files={"f.txt": "content"},
                     resources={"r": {"type": "OS::Nova::KeyPair", "properties": {"name": "k"}}},
                     conditions={"c": True} if v.has_conditions else None)


@pytest.mark.parametrize("version", DATES)
@pytest.mark.parametrize("fn", HOT_FUNCTIONS)
def test_function_availability_per_version(version, fn):
    v = VERSIONS[version]
    if fn in v.functions:
        _eval(version, fn)
    else:
        with pytest.raises(FunctionNotSupported) as e:
            _eval(version, fn)
        assert f'"{fn}"' in str(e.value)
        assert version in str(e.value)
        assert "outputs.o" in str(e.value)


def test_matrix_highlights():
    assert "str_split" not in VERSIONS["2015-04-30"].functions
    assert "str_split" in VERSIONS["2015-10-15"].functions
    assert "Fn::Select" in VERSIONS["2015-04-30"].functions
    assert "Fn::Select" not in VERSIONS["2015-10-15"].functions
    assert "map_merge" in VERSIONS["2016-04-08"].functions
    assert "str_replace_strict" not in VERSIONS["2016-10-14"].functions
    assert "make_url" in VERSIONS["2017-09-01"].functions
    assert "contains" in VERSIONS["2017-09-01"].condition_functions
    assert not VERSIONS["2016-04-08"].has_conditions
    assert VERSIONS["2016-10-14"].has_conditions
    assert {"equals", "not", "and", "or"} <= ALL_FUNCTIONS


@pytest.mark.parametrize("version", ["2016-10-14", "2021-04-16"])
def test_condition_functions_only_in_conditions(version):
    with pytest.raises(FunctionNotSupported) as e:
        output_of({"equals": [1, 1]}, version=version)
    assert "can only be used in conditions" in str(e.value)


def test_yaql_is_a_clear_error_naming_the_place():
    with pytest.raises(FunctionNotSupported) as e:
        output_of({"yaql": {"expression": "$.data", "data": {}}})
    assert "yaql" in str(e.value) and "not supported by kubestack" in str(e.value)
    assert str(e.value).startswith("outputs.o")
    with pytest.raises(FunctionNotSupported) as e:
        load_stack(tmpl("2017-09-01", resources={"k": {
            "type": "OS::Nova::KeyPair",
            "properties": {"name": {"yaql": {"expression": "1", "data": {}}}}}}))
    assert "resources.k.properties.name" in str(e.value)


def test_conditions_section_not_before_newton():
    from kubestack.orchestration.errors import StackValidationFailed
    with pytest.raises(StackValidationFailed, match="The template section is invalid: conditions"):
        load_stack(tmpl("2016-04-08", conditions={"c": True}))


def test_if_with_two_arguments_only_in_wallaby():
    assert output_of({"a": {"if": ["c", 1]}, "b": 2}, version="2021-04-16",
                     conditions={"c": False}) == {"b": 2}
    with pytest.raises(Exception, match="if"):
        output_of({"if": ["c", 1]}, version="2018-08-31", conditions={"c": False})


@pytest.mark.parametrize("fn,args,version", [
    ("Fn::GetAZs", "", "2013-05-23"),
])
def test_functions_kubestack_refuses_say_why(fn, args, version):
    with pytest.raises(FunctionNotSupported) as e:
        output_of({fn: args}, version=version)
    assert fn in str(e.value) and "kubestack" in str(e.value)


def test_removed_cfn_function_in_later_versions():
    with pytest.raises(FunctionNotSupported) as e:
        output_of({"Ref": "p"}, version="2014-10-16", parameters={"p": {"type": "string", "default": "x"}})
    assert str(e.value) == ('outputs.o.value: The function "Ref" is not supported in this version '
                            'of HOT (heat_template_version 2014-10-16).')
