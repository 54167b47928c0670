import argparse
import json
from pathlib import Path

import yaml

from kubestack.cli import stack as stack_cli

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "heat"


def run(argv, capsys):
    parser = argparse.ArgumentParser(prog="kubestack")
    sub = parser.add_subparsers(dest="command")
    stack_cli.register(sub)
    args = parser.parse_args(argv)
    code = args.func(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_dry_run_json_contract(capsys):
    code, out, err = run(["stack", "create", "my_stack", "-t", str(EXAMPLES / "boot_with_outputs.yaml"),
                          "--dry-run", "-f", "json"], capsys)
    assert code == 0
    doc = json.loads(out)
    assert list(doc) == ["valid", "error", "resources", "outputs"]
    assert doc["valid"] is True and doc["error"] is None
    (res,) = doc["resources"]
    assert list(res) == ["name", "type", "properties", "depends_on"]
    assert res["properties"]["flavor"] == "m1.small"
    assert doc["outputs"] == {"instance_ip": None}
    assert "custom constraints not checked" in err


def test_dry_run_invalid(capsys):
    code, out, _ = run(["stack", "create", "s", "-t", str(EXAMPLES / "boot_with_parameter.yaml"), "--dry-run"], capsys)
    doc = json.loads(out)
    assert code == 1
    assert doc == {"valid": False, "error": "The Parameter (key_name) was not provided.", "resources": [], "outputs": {}}


def test_dry_run_with_parameters_and_environment(capsys, tmp_path):
    code, out, _ = run(["stack", "create", "my_sql_server", "-t", str(EXAMPLES / "boot_sql_server.yaml"),
                        "--parameter", "DBRootPassword=0p3nSt4cK", "--dry-run", "-f", "json"], capsys)
    assert code == 0
    ud = json.loads(out)["resources"][0]["properties"]["user_data"]
    assert "mysqladmin -u root password 0p3nSt4cK" in ud
    code, out, _ = run(["stack", "create", "shop", "-t", str(EXAMPLES / "three_tier.yaml"),
                        "-e", str(EXAMPLES / "three_tier_env.yaml"), "--dry-run"], capsys)
    doc = json.loads(out)
    assert code == 0 and doc["valid"]
    sub = next(r for r in doc["resources"] if r["name"] == "private_subnet")
    assert sub["depends_on"] == ["private_net"] and sub["properties"]["network"] == "shop-private-net"


def test_get_file_read_relative_to_template(capsys, tmp_path):
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "boot.sh").write_text("#!/bin/sh\necho booted\n")
    t = tmp_path / "t.yaml"
    t.write_text("heat_template_version: rocky\nresources:\n  vm:\n    type: OS::Nova::Server\n"
                 "    properties: {image: cirros, flavor: m1.tiny, user_data: {get_file: scripts/boot.sh}}\n")
    code, out, _ = run(["stack", "create", "s", "-t", str(t), "--dry-run"], capsys)
    assert json.loads(out)["resources"][0]["properties"]["user_data"] == "#!/bin/sh\necho booted\n"
    code, out, _ = run(["stack", "create", "s", "-t", str(t)], capsys)
    manifest = yaml.safe_load(out)
    assert manifest["spec"]["files"] == {"scripts/boot.sh": "#!/bin/sh\necho booted\n"}


def test_validate(capsys):
    code, out, err = run(["stack", "validate", "-t", str(EXAMPLES / "boot_with_parameter.yaml"),
                          "--parameter", "key_name=my_key"], capsys)
    assert code == 0
    doc = yaml.safe_load(out)
    assert doc["Description"].startswith("Simple template")
    assert doc["Parameters"]["key_name"]["Type"] == "String"
    assert doc["Parameters"]["key_name"]["Value"] == "my_key"


def test_validate_errors(capsys, tmp_path):
    t = tmp_path / "bad.yaml"
    t.write_text("heat_template_version: 2015-04-30\nresources:\n  lb:\n    type: OS::Octavia::LoadBalancer\n")
    code, _, err = run(["stack", "validate", "-t", str(t)], capsys)
    assert code == 1
    assert "ERROR: Failed to validate: resources.lb: The Resource Type (OS::Octavia::LoadBalancer) could not be found." in err
    code, _, err = run(["stack", "validate", "-t", str(tmp_path / "missing.yaml")], capsys)
    assert code == 1 and "cannot read" in err
    code, _, err = run(["stack", "validate", "-t", str(t), "--parameter", "novalue"], capsys)
    assert code == 1 and "Malformed parameter(novalue)" in err


def test_hidden_parameter_masked_in_validate(capsys, tmp_path):
    t = tmp_path / "t.yaml"
    t.write_text("heat_template_version: 2015-04-30\nparameters:\n  pw: {type: string, hidden: true, default: s3}\n")
    code, out, _ = run(["stack", "validate", "-t", str(t), "-f", "json"], capsys)
    assert json.loads(out)["Parameters"]["pw"]["Value"] == "******"


def test_manifest(capsys):
    code, out, _ = run(["stack", "create", "my_sql_server", "-t", str(EXAMPLES / "boot_sql_server.yaml"),
                        "--parameter", "DBRootPassword=0p3nSt4cK", "-n", "demo", "-o", "yaml"], capsys)
    assert code == 0
    m = yaml.safe_load(out)
    assert m["apiVersion"] == "kubestack.io/v1alpha1" and m["kind"] == "Stack"
    assert m["metadata"] == {"name": "my-sql-server", "namespace": "demo",
                             "annotations": {"kubestack.io/stack-name": "my_sql_server"}}
    assert m["spec"]["parameters"] == {"DBRootPassword": "0p3nSt4cK"}
    assert m["spec"]["template"]["heat_template_version"] == "2015-04-30"
    assert "mysqladmin" in m["spec"]["template"]["resources"]["my_sql_instance"]["properties"]["user_data"]["str_replace"]["template"]


def test_manifest_refuses_invalid_templates(capsys):
    code, out, err = run(["stack", "create", "s", "-t", str(EXAMPLES / "boot_with_parameter.yaml")], capsys)
    assert code == 1 and out == "" and "The Parameter (key_name) was not provided." in err


def test_dry_run_shows_the_properties_the_template_gives(capsys):
    code, out, _ = run(["stack", "create", "my_stack", "-t", str(EXAMPLES / "boot.yaml"), "--dry-run"], capsys)
    (res,) = json.loads(out)["resources"]
    assert res == {"name": "my_instance", "type": "OS::Nova::Server", "depends_on": [],
                   "properties": {"key_name": "my_key_name", "image": "ubuntu-trusty-x86_64", "flavor": "m1.small"}}


def test_lecture_command_line(capsys):
    # $ openstack stack create my_stack -f boot_with_parameters.yaml --parameter key_name=my_key
    code, out, _ = run(["stack", "create", "my_stack", "-f", str(EXAMPLES / "boot_with_parameter.yaml"),
                        "--parameter", "key_name=my_key"], capsys)
    assert code == 0
    m = yaml.safe_load(out)
    assert m["kind"] == "Stack" and m["spec"]["parameters"] == {"key_name": "my_key"}
    code, out, _ = run(["stack", "create", "my_stack", "-f", str(EXAMPLES / "boot.yaml"), "--dry-run"], capsys)
    assert json.loads(out)["valid"] is True
    code, _, err = run(["stack", "create", "my_stack"], capsys)
    assert code == 2 and "template is required" in err


def test_template_resources_read_with_what_they_refer_to(capsys, tmp_path):
    # the layout of the lecture's WebAppStatic.yaml: tiers as template files in a subdirectory,
    # one named by its file, one by a resource_registry alias of an environment elsewhere
    for d in ("nested/scripts", "env"):
        (tmp_path / d).mkdir(parents=True)
    (tmp_path / "nested" / "scripts" / "boot.sh").write_text("#!/bin/sh\n")
    (tmp_path / "nested" / "tier.yaml").write_text(
        "heat_template_version: 2016-10-14\nparameters:\n  flavor: {type: string}\nresources:\n"
        "  vm:\n    type: OS::Nova::Server\n"
        "    properties: {image: cirros, flavor: {get_param: flavor}, user_data: {get_file: scripts/boot.sh}}\n"
        "outputs:\n  ip: {value: {get_attr: [vm, first_address]}}\n")
    (tmp_path / "env" / "env.yaml").write_text("resource_registry:\n  My::Tier: ../nested/tier.yaml\n")
    t = tmp_path / "WebAppStatic.yaml"
    t.write_text("heat_template_version: 2016-10-14\nresources:\n"
                 "  web: {type: nested/tier.yaml, properties: {flavor: m1.tiny}}\n"
                 "  app: {type: My::Tier, properties: {flavor: {get_attr: [web, ip]}}}\n"
                 "  bad: {type: My::Tier, properties: {colour: red}}\n")
    code, _, err = run(["stack", "validate", "-t", str(t), "-e", str(tmp_path / "env" / "env.yaml")], capsys)
    assert code == 1 and "resources.bad.properties: Unknown Property colour" in err
    t.write_text(t.read_text().replace("  bad: {type: My::Tier, properties: {colour: red}}\n", ""))
    code, out, _ = run(["stack", "create", "shop", "-t", str(t), "-e", str(tmp_path / "env" / "env.yaml"),
                        "-o", "yaml"], capsys)
    assert code == 0
    tier = (tmp_path / "nested" / "tier.yaml").read_text()
    assert yaml.safe_load(out)["spec"]["files"] == {"nested/tier.yaml": tier, "scripts/boot.sh": "#!/bin/sh\n",
                                                    "../nested/tier.yaml": tier}
    code, out, _ = run(["stack", "create", "shop", "-t", str(t), "-e", str(tmp_path / "env" / "env.yaml"),
                        "--dry-run"], capsys)
    assert code == 0 and [(r["name"], r["type"], r["depends_on"]) for r in json.loads(out)["resources"]] == [
        ("web", "nested/tier.yaml", []), ("app", "../nested/tier.yaml", ["web"])]
