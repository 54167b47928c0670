"""The Heat examples of the reference lecture (examples/heat/) work as shown there."""

from pathlib import Path

import pytest

from kubestack.orchestration import load_stack
from kubestack.orchestration.errors import UserParameterMissing

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "heat"


def read(name: str) -> str:
    return (EXAMPLES / name).read_text()


def test_boot():
    stack = load_stack(read("boot.yaml"), stack_name="my_stack")
    assert stack.template.description == "Simple template to deploy a single compute instance"
    (vm,) = stack.plan().resources
    assert (vm.name, vm.type, vm.kind) == ("my_instance", "OS::Nova::Server", "Server")
    assert {k: vm.properties[k] for k in ("key_name", "image", "flavor")} == {
        "key_name": "my_key_name", "image": "ubuntu-trusty-x86_64", "flavor": "m1.small"}


def test_boot_with_parameter():
    with pytest.raises(UserParameterMissing, match=r"The Parameter \(key_name\) was not provided."):
        load_stack(read("boot_with_parameter.yaml"))
    stack = load_stack(read("boot_with_parameter.yaml"), {"key_name": "my_key"}, stack_name="my_stack")
    assert stack.resolve("my_instance")["key_name"] == "my_key"


def test_boot_with_outputs():
    stack = load_stack(read("boot_with_outputs.yaml"), stack_name="my_stack")
    assert stack.outputs() == {"instance_ip": None}
    assert stack.output_descriptions() == {"instance_ip": "IP address of the deployed compute instance"}
    assert stack.outputs({"my_instance": {"first_address": "10.0.0.7"}}) == {"instance_ip": "10.0.0.7"}


def test_boot_sql_server():
    with pytest.raises(UserParameterMissing, match=r"\(DBRootPassword\)"):
        load_stack(read("boot_sql_server.yaml"))
    stack = load_stack(read("boot_sql_server.yaml"), {"DBRootPassword": "0p3nSt4cK"}, stack_name="my_sql_server")
    user_data = stack.resolve("my_sql_instance")["user_data"]
    assert user_data.startswith("#!/bin/bash\n")
    assert "mysqladmin -u root password 0p3nSt4cK\n" in user_data
    assert "$db_rootpassword" not in user_data


def test_three_tier():
    stack = load_stack(read("three_tier.yaml"), environment=read("three_tier_env.yaml"), stack_name="shop")
    plan = stack.plan()
    names = [r.name for r in plan.resources]
    assert names.index("private_net") < names.index("private_subnet") < names.index("router_interface") \
        < names.index("db_server") < names.index("web_servers") < names.index("front_end")
    web = next(r for r in plan.resources if r.name == "web_servers")
    assert len(web.members) == 3  # parameter_defaults from the environment
    assert web.members[0].properties["user_data"].startswith("#cloud-config\n")
    attrs = {
        "generated_password": {"value": "pw"}, "db_server": {"first_address": "10.10.0.5"},
        "web_servers": {"members": [{"first_address": f"10.10.0.{10 + i}"} for i in range(3)]},
        "front_end": {"first_address": "10.10.0.4"}, "front_end_ip": {"floating_ip_address": "203.0.113.9"},
    }
    assert "password \"pw\"" in stack.resolve("db_server", attrs)["user_data"]
    out = stack.outputs(attrs)
    assert out["website_url"] == "http://203.0.113.9/wordpress"
    assert out["web_addresses"] == ["10.10.0.10", "10.10.0.11", "10.10.0.12"]
    assert out["db_password"] == "pw"
    # a given password: no RandomString, no password output
    other = load_stack(read("three_tier.yaml"), {"db_password": "given", "enable_floating_ip": "false"},
                       environment=read("three_tier_env.yaml"), stack_name="shop")
    order = other.resources_in_order()
    assert "generated_password" not in order and "front_end_ip" not in order
    assert 'password "given"' in other.resolve("db_server")["user_data"]
    assert other.outputs(attrs)["website_url"] == "http://10.10.0.4/wordpress"
    assert other.outputs(attrs)["db_password"] is None
    assert stack.delete_plan().retain == ["db_volume"]
