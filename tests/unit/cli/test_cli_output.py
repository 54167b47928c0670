"""openstackclient-style output (kubestack.cli.output): formats and -c column selection."""

from __future__ import annotations

import csv
import io
import json

import pytest
import yaml

from kubestack.cli.output import CliError, flatten, format_list, format_show, key_values

HEADERS = ["ID", "Name", "Status", "Networks"]
ROWS = [["u1", "web-1", "ACTIVE", "pod=10.244.0.5"], ["u2", "db", "SHUTOFF", ""]]


def test_table_looks_like_openstack():
    out = format_list(HEADERS, ROWS)
    lines = out.splitlines()
    assert lines[0] == "+----+-------+---------+----------------+"
    assert lines[1] == "| ID | Name  | Status  | Networks       |"
    assert lines[2] == lines[0] and lines[-1] == lines[0]
    assert lines[3] == "| u1 | web-1 | ACTIVE  | pod=10.244.0.5 |"
    assert len(lines) == 6


def test_empty_list_table_is_just_the_header():
    assert format_list(["ID", "Name"], []).splitlines() == [
        "+----+------+", "| ID | Name |", "+----+------+"]


def test_json_and_yaml_lists_are_keyed_by_column():
    data = json.loads(format_list(HEADERS, ROWS, "json"))
    assert data == [dict(zip(HEADERS, r)) for r in ROWS]
    assert yaml.safe_load(format_list(HEADERS, ROWS, "yaml")) == data


def test_columns_keep_command_order_and_value_format():
    out = format_list(HEADERS, ROWS, "value", ["Status", "Name"])
    assert out == "web-1 ACTIVE\ndb SHUTOFF\n"
    assert json.loads(format_list(HEADERS, ROWS, "json", ["Name"])) == [{"Name": "web-1"}, {"Name": "db"}]


def test_unknown_columns_are_an_error():
    with pytest.raises(CliError, match="No recognized column names"):
        format_list(HEADERS, ROWS, "table", ["Nope"])


def test_csv_quotes_strings_not_numbers():
    out = format_list(["Name", "RAM"], [["m1.small", 2048]], "csv")
    assert list(csv.reader(io.StringIO(out))) == [["Name", "RAM"], ["m1.small", "2048"]]
    assert out.splitlines()[1] == '"m1.small",2048'


def test_structured_values_stay_structured_in_json_only():
    fields = {"name": "web", "properties": {"b": "2", "a": "1"}, "security_groups": [{"name": "default"}],
              "members": ["a", "b"], "fault": None}
    assert json.loads(format_show(fields, "json")) == fields
    rows = {line.split("|")[1].strip(): line.split("|")[2].strip()
            for line in format_show(fields).splitlines() if line.startswith("| ")}
    assert rows == {"Field": "Value", "name": "web", "properties": "a='1', b='2'",
                    "security_groups": "name='default'", "members": "a, b", "fault": ""}
    assert format_show(fields, "value", ["name", "members"]) == "web\na, b\n"
    assert format_show({"OS-EXT-STS:vm_state": "active"}, "shell") == 'OS_EXT_STS_vm_state="active"\n'


def test_multiline_cells():
    out = format_show({"security_groups": [{"name": "default"}, {"name": "web"}]})
    assert "| security_groups | name='default' |" in out
    assert "|                 | name='web'     |" in out


def test_flatten_and_key_values():
    assert flatten(None) == "" and flatten(True) == "True" and flatten([1, 2]) == "1, 2"
    assert flatten({"k": {"x": "y"}}) == "k='x='y''"
    assert key_values(["a=1", "b=x=y"]) == {"a": "1", "b": "x=y"}
    with pytest.raises(CliError, match="KEY=VALUE"):
        key_values(["nope"])
