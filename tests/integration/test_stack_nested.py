"""Nested stacks against the real API server with the operator and the simulator: a template
resource from the stack's files and an OS::Heat::Stack become child Stacks whose outputs the
parent reads; a changed nested property updates the child in place; a failing nested update
rolls the child back with the parent; deleting the parent removes the nested stacks and their
servers; a template that nests itself stops at Heat's depth limit; outputs a nested stack masks
reach the parent real for its resources and masked in its status; a nested template reading
its resource's metadata and policies with resource_facade; and the layout of the lecture's
WebAppStatic.yaml (a network tier, a database tier, groups of app and web tiers)."""

from __future__ import annotations

import base64
import json

from kubestack.cli import main as cli_main
from support.compute import G, V, create_flavor, create_image, custom, events_for, get, wait_for
from test_stack import children, create_stack, names, outputs, wait_stack


def _secret(cluster, namespace, name):
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    try:
        return client.CoreV1Api(cluster.api).read_namespaced_secret(name, namespace)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def _parameters(cluster, namespace, stack) -> dict:
    """A nested Stack's parameters, from the Secret its spec names."""
    secret = _secret(cluster, namespace, stack["spec"]["parametersSecretRef"]["name"])
    return {k: base64.b64decode(v).decode() for k, v in (secret.data or {}).items()}

TIER = """
heat_template_version: 2016-10-14
parameters:
  flavor: {type: string}
  role: {type: string, default: app}
resources:
  server:
    type: OS::Nova::Server
    properties:
      image: cirros
      flavor: {get_param: flavor}
      metadata: {role: {get_param: role}}
      user_data: {get_file: scripts/boot.sh}
outputs:
  name: {value: {get_attr: [server, name]}}
"""
SG = """
heat_template_version: 2016-10-14
parameters:
  port: {type: number}
resources:
  sg:
    type: OS::Neutron::SecurityGroup
    properties:
      rules: [{protocol: tcp, port_range_min: {get_param: port}, port_range_max: {get_param: port}}]
outputs:
  name: {value: {get_resource: sg}}
"""
FILES = {"lib/tier.yaml": TIER, "lib/sg.yaml": SG, "scripts/boot.sh": "#!/bin/sh\necho tier\n"}


def _parent(flavor: str, role: str) -> dict:
    return {
        "heat_template_version": "2016-10-14",
        "resources": {
            "app": {"type": "lib/tier.yaml", "properties": {"flavor": flavor, "role": role}},
            "web_sg": {"type": "OS::Heat::Stack", "properties": {
                "template": {"get_file": "lib/sg.yaml"}, "parameters": {"port": 80}}},
        },
        "outputs": {"app_server": {"value": {"get_attr": ["app", "name"]}},
                    "app_stack": {"value": {"get_resource": "app"}},
                    "sg": {"value": {"get_attr": ["web_sg", "outputs", "name"]}}},
    }


def _update(cluster, namespace, name, template: dict, files: dict) -> int:
    body = get(cluster, namespace, "stacks", name)
    body["spec"].update(template=template, files=files)
    return custom(cluster).replace_namespaced_custom_object(G, V, namespace, "stacks", name, body)["metadata"][
        "generation"]


def _stacks(cluster, namespace) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in custom(cluster).list_namespaced_custom_object(
        G, V, namespace, "stacks")["items"]}


def test_template_resource_is_a_child_stack_updated_in_place_rolled_back_and_deleted_with_its_parent(
        cluster, kubestack, namespace, capsys):
    flavor, huge = create_flavor(cluster, ram=256), create_flavor(cluster, vcpus=1000)
    create_image(cluster, namespace)
    create_stack(cluster, namespace, "shop", _parent(flavor, "app"), files=FILES)
    s = wait_stack(cluster, namespace, "shop", "CREATE_COMPLETE", "CREATE_FAILED", "ROLLBACK_COMPLETE")
    assert s["status"]["stackStatus"] == "CREATE_COMPLETE", s["status"]["stackStatusReason"]

    app = get(cluster, namespace, "stacks", "shop-app")
    assert app["status"]["stackStatus"] == "CREATE_COMPLETE"
    assert app["metadata"]["labels"]["kubestack.io/stack"] == "shop"
    assert app["metadata"]["ownerReferences"][0]["uid"] == s["metadata"]["uid"]
    assert app["metadata"]["annotations"]["kubestack.io/nested-depth"] == "1"
    # its parameters are in a Secret, not in the Stack a project reader may read
    assert "parameters" not in app["spec"] and app["spec"]["rollback"] is False
    assert _parameters(cluster, namespace, app) == {"flavor": flavor, "role": "app"}
    server = get(cluster, namespace, "servers", "shop-app-server")
    assert server["status"]["status"] == "ACTIVE" and server["spec"]["metadata"] == {"role": "app"}
    # get_file in the nested template, from the files the parent passed down
    assert server["spec"]["userData"] == "#!/bin/sh\necho tier\n"
    assert server["metadata"]["ownerReferences"][0]["uid"] == app["metadata"]["uid"]
    assert outputs(s) == {"app_server": "shop-app-server", "app_stack": "shop-app", "sg": "shop-web-sg-sg"}
    assert get(cluster, namespace, "securitygroups", "shop-web-sg-sg")["spec"]["rules"][0]["portRangeMin"] == 80
    rows = {r["name"]: r for r in s["status"]["resources"]}
    assert (rows["app"]["type"], rows["app"]["kind"], rows["app"]["objectName"]) == (
        "lib/tier.yaml", "Stack", "shop-app")
    # openstack stack list shows nested stacks with --nested only
    kc = ["--kubeconfig", str(cluster.kubeconfig), "-n", namespace]
    capsys.readouterr()
    assert cli_main(["stack", "list", "-f", "json", *kc]) == 0
    assert [r["Stack Name"] for r in json.loads(capsys.readouterr().out)] == ["shop"]
    assert cli_main(["stack", "list", "--nested", "-f", "json", *kc]) == 0
    assert [r["Stack Name"] for r in json.loads(capsys.readouterr().out)] == ["shop", "shop-app", "shop-web-sg"]

    # a changed property: the same child Stack and server, updated in place
    gen = _update(cluster, namespace, "shop", _parent(flavor, "api"), FILES)
    s = wait_stack(cluster, namespace, "shop", "UPDATE_COMPLETE", "UPDATE_FAILED", "ROLLBACK_COMPLETE",
                   generation=gen)
    assert s["status"]["stackStatus"] == "UPDATE_COMPLETE", s["status"]["stackStatusReason"]
    updated = get(cluster, namespace, "stacks", "shop-app")
    assert updated["metadata"]["uid"] == app["metadata"]["uid"]
    assert _parameters(cluster, namespace, updated)["role"] == "api"
    # the Secret the old parameters were in is gone
    wait_for(lambda: _secret(cluster, namespace, app["spec"]["parametersSecretRef"]["name"]) is None,
             what="old parameters Secret deleted")
    assert updated["status"]["stackStatus"] == "UPDATE_COMPLETE"
    after = get(cluster, namespace, "servers", "shop-app-server")
    assert after["metadata"]["uid"] == server["metadata"]["uid"] and after["spec"]["metadata"] == {"role": "api"}

    # a nested template gaining a server no host can take: the child fails, and the parent's
    # rollback takes the child back to what it was
    broken = TIER.replace("outputs:", f"  extra:\n    type: OS::Nova::Server\n"
                                      f"    properties: {{image: cirros, flavor: {huge}}}\noutputs:")
    gen = _update(cluster, namespace, "shop", _parent(flavor, "api"), {**FILES, "lib/tier.yaml": broken})
    s = wait_stack(cluster, namespace, "shop", "ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "UPDATE_COMPLETE",
                   generation=gen)
    assert s["status"]["stackStatus"] == "ROLLBACK_COMPLETE", s["status"]["stackStatusReason"]
    # the parent's failure is the nested stack's, which names its own failed resource
    wait_for(lambda: any('lib/tier.yaml "app": Resource UPDATE failed: OS::Nova::Server "extra": No valid host'
                         in e.message for e in events_for(cluster, namespace, "shop") if e.type == "Warning"),
             what="a Warning Event on the failed update")
    app = wait_stack(cluster, namespace, "shop-app", "UPDATE_COMPLETE")
    assert "extra" not in app["spec"]["template"]["resources"]
    wait_for(lambda: names(children(cluster, namespace, "servers", "shop-app")) == {"shop-app-server"},
             what="the extra server removed")

    # deleting the parent removes the nested stacks and what they made
    custom(cluster).delete_namespaced_custom_object(G, V, namespace, "stacks", "shop")
    wait_for(lambda: not _stacks(cluster, namespace), timeout=180, what="every stack deleted")
    assert custom(cluster).list_namespaced_custom_object(G, V, namespace, "servers")["items"] == []
    assert get(cluster, namespace, "securitygroups", "shop-web-sg-sg") is None


def test_a_template_that_nests_itself_fails_at_the_depth_limit(cluster, kubestack, namespace):
    loop = "heat_template_version: 2016-10-14\nresources:\n  again: {type: loop.yaml}\n"
    template = {"heat_template_version": "2016-10-14", "resources": {"again": {"type": "loop.yaml"}}}
    create_stack(cluster, namespace, "loop", template, files={"loop.yaml": loop}, rollback=False)
    s = wait_stack(cluster, namespace, "loop", "CREATE_FAILED", "CREATE_COMPLETE", timeout=300)
    assert s["status"]["stackStatus"] == "CREATE_FAILED"
    assert s["status"]["stackStatusReason"].endswith("Recursion depth exceeds 5."), s["status"]["stackStatusReason"]
    # the top-level stack and five nested under it, the deepest failing
    stacks = _stacks(cluster, namespace)
    depths = {n: int((o["metadata"].get("annotations") or {}).get("kubestack.io/nested-depth", 0))
              for n, o in stacks.items()}
    assert sorted(depths.values()) == [0, 1, 2, 3, 4, 5]
    deepest = next(o for n, o in stacks.items() if depths[n] == 5)
    assert deepest["status"]["stackStatus"] == "CREATE_FAILED"
    assert deepest["status"]["resources"][0]["statusReason"] == "Recursion depth exceeds 5."

    custom(cluster).delete_namespaced_custom_object(G, V, namespace, "stacks", "loop")
    wait_for(lambda: not _stacks(cluster, namespace), timeout=180, what="every stack deleted")


# ---- resource_facade ------------------------------------------------------------------------

FACADE = """
heat_template_version: 2016-10-14
resources:
  sg:
    type: OS::Neutron::SecurityGroup
    deletion_policy: {resource_facade: deletion_policy}
    properties:
      description: {list_join: [" ", [{resource_facade: deletion_policy}, {resource_facade: metadata}]]}
outputs:
  metadata: {value: {resource_facade: metadata}}
  policy: {value: {resource_facade: deletion_policy}}
  update_policy: {value: {resource_facade: update_policy}}
  sg: {value: {get_resource: sg}}
"""


def _facade_parent(role: str, policy: str) -> dict:
    return {"heat_template_version": "2016-10-14",
            "resources": {"tier": {"type": "lib/facade.yaml", "deletion_policy": policy, "metadata": {"role": role},
                                   "update_policy": {"batch": 2}}},
            # get_attr with only the resource's name: all its attributes, the nested outputs
            "outputs": {"all": {"value": {"get_attr": ["tier"]}}}}


def test_a_nested_template_reads_its_resources_metadata_and_policies_with_resource_facade(
        cluster, kubestack, namespace):
    files = {"lib/facade.yaml": FACADE}
    create_stack(cluster, namespace, "fac", _facade_parent("web", "Retain"), files=files)
    s = wait_stack(cluster, namespace, "fac", "CREATE_COMPLETE", "CREATE_FAILED", "ROLLBACK_COMPLETE")
    assert s["status"]["stackStatus"] == "CREATE_COMPLETE", s["status"]["stackStatusReason"]
    assert outputs(s)["all"] == {"metadata": {"role": "web"}, "policy": "Retain", "update_policy": {"batch": 2},
                                 "sg": "fac-tier-sg"}
    sg = get(cluster, namespace, "securitygroups", "fac-tier-sg")
    assert sg["spec"]["description"] == 'Retain {"role": "web"}'
    assert sg["metadata"]["annotations"]["kubestack.io/deletion-policy"] == "Retain"
    # the facade came in the parameters Secret; the child shows no such parameter
    tier = get(cluster, namespace, "stacks", "fac-tier")
    assert list(_parameters(cluster, namespace, tier)) == ["kubestack.io.resource-facade"]
    assert not tier["status"].get("parameters")

    # a changed metadata and deletion_policy update the nested stack in place
    gen = _update(cluster, namespace, "fac", _facade_parent("api", "Delete"), files)
    s = wait_stack(cluster, namespace, "fac", "UPDATE_COMPLETE", "UPDATE_FAILED", "ROLLBACK_COMPLETE", generation=gen)
    assert s["status"]["stackStatus"] == "UPDATE_COMPLETE", s["status"]["stackStatusReason"]
    assert outputs(s)["all"] == {"metadata": {"role": "api"}, "policy": "Delete", "update_policy": {"batch": 2},
                                 "sg": "fac-tier-sg"}
    assert get(cluster, namespace, "stacks", "fac-tier")["metadata"]["uid"] == tier["metadata"]["uid"]
    after = get(cluster, namespace, "securitygroups", "fac-tier-sg")
    assert after["metadata"]["uid"] == sg["metadata"]["uid"]
    assert after["spec"]["description"] == 'Delete {"role": "api"}'
    assert after["metadata"]["annotations"]["kubestack.io/deletion-policy"] == "Delete"

    # a stack of its own has no resource to read: the template is refused
    create_stack(cluster, namespace, "alone", {"heat_template_version": "2016-10-14", "resources": {"sg": {
        "type": "OS::Neutron::SecurityGroup", "properties": {"description": {"resource_facade": "metadata"}}}}})
    alone = wait_stack(cluster, namespace, "alone", "CREATE_FAILED", "CREATE_COMPLETE")
    assert alone["status"]["stackStatus"] == "CREATE_FAILED"
    assert '"resource_facade" is only valid in a template used as a nested stack' in \
        alone["status"]["stackStatusReason"]

    for name in ("fac", "alone"):
        custom(cluster).delete_namespaced_custom_object(G, V, namespace, "stacks", name)
    wait_for(lambda: not _stacks(cluster, namespace), timeout=180, what="every stack deleted")
    assert get(cluster, namespace, "securitygroups", "fac-tier-sg") is None


# ---- secrets a nested stack masks, in a group of template resources -------------------------

SECRET_MEMBER = """
heat_template_version: 2016-10-14
parameters:
  password: {type: string, hidden: true, default: s3cret}
  index: {type: string}
resources:
  sg:
    type: OS::Neutron::SecurityGroup
    properties: {description: {get_param: index}}
outputs:
  token: {value: {list_join: ["-", [{get_param: password}, {get_param: index}]]}}
  name: {value: {get_resource: sg}}
"""
RELAY = """
heat_template_version: 2016-10-14
parameters:
  token: {type: string}
resources:
  sg:
    type: OS::Neutron::SecurityGroup
    properties: {description: {get_param: token}}
outputs:
  echo: {value: {get_param: token}}
"""
SECRETS = {
    "heat_template_version": "2016-10-14",
    "resources": {
        "tier": {"type": "OS::Heat::ResourceGroup", "properties": {"count": 2, "resource_def": {
            "type": "lib/member.yaml", "properties": {"index": "%index%"}}}},
        # the parent's own resources get the real values...
        "consumer": {"type": "OS::Neutron::SecurityGroup", "properties": {
            "description": {"get_attr": ["tier", "resource.1.token"]}}},
        "relay": {"type": "OS::Heat::Stack", "properties": {
            "template": {"get_file": "lib/relay.yaml"},
            "parameters": {"token": {"get_attr": ["tier", "resource.0", "token"]}}}},
    },
    # ...and its status shows them masked, like the nested stacks' own
    "outputs": {"tokens": {"value": {"get_attr": ["tier", "token"]}},
                "second": {"value": {"get_attr": ["tier", "resource.1.token"]}},
                "echo": {"value": {"get_attr": ["relay", "outputs", "echo"]}},
                "name": {"value": {"get_attr": ["tier", "resource.1", "name"]}},
                "refs": {"value": {"get_attr": ["tier", "refs"]}}},
}


def test_outputs_a_nested_stack_masks_reach_the_parent_real_for_its_resources_and_masked_in_its_status(
        cluster, kubestack, namespace, capsys):
    create_stack(cluster, namespace, "vault", SECRETS,
                 files={"lib/member.yaml": SECRET_MEMBER, "lib/relay.yaml": RELAY})
    s = wait_stack(cluster, namespace, "vault", "CREATE_COMPLETE", "CREATE_FAILED", "ROLLBACK_COMPLETE")
    assert s["status"]["stackStatus"] == "CREATE_COMPLETE", s["status"]["stackStatusReason"]
    mask = "******"
    assert outputs(s) == {"tokens": mask, "second": mask, "echo": mask, "name": "vault-tier-1-sg",
                          "refs": ["vault-tier-0", "vault-tier-1"]}
    assert outputs(get(cluster, namespace, "stacks", "vault-tier-1"))["token"] == mask
    # get_attr gave the parent's resources the real values
    assert get(cluster, namespace, "securitygroups", "vault-consumer")["spec"]["description"] == "s3cret-1"
    assert get(cluster, namespace, "securitygroups", "vault-relay-sg")["spec"]["description"] == "s3cret-0"
    # the nested stack the parent passed one to masks it as a hidden parameter
    relay = get(cluster, namespace, "stacks", "vault-relay")
    assert relay["metadata"]["annotations"]["kubestack.io/secret-parameters"] == "token"
    assert relay["status"]["parameters"] == {"token": mask} and outputs(relay) == {"echo": mask}
    assert _parameters(cluster, namespace, relay) == {"token": "s3cret-0"}
    # no Stack shows a value derived from the secret (the default is in the template's text),
    # nor does the CLI
    assert "s3cret-" not in json.dumps(_stacks(cluster, namespace))
    capsys.readouterr()
    assert cli_main(["stack", "output", "show", "vault", "--all", "-f", "json",
                     "--kubeconfig", str(cluster.kubeconfig), "-n", namespace]) == 0
    shown = capsys.readouterr().out
    assert "s3cret" not in shown and mask in shown

    custom(cluster).delete_namespaced_custom_object(G, V, namespace, "stacks", "vault")
    wait_for(lambda: not _stacks(cluster, namespace), timeout=180, what="every stack deleted")


# ---- the lecture's 3-tier web application (WebAppStatic.yaml), on kubestack's kinds ---------

SETUP_NET_SG = """
heat_template_version: 2016-10-14
parameters:
  dns_nameserver: {type: comma_delimited_list, default: 8.8.8.8}
resources:
  web_net: {type: OS::Neutron::Net}
  web_subnet:
    type: OS::Neutron::Subnet
    properties: {network: {get_resource: web_net}, cidr: 10.61.1.0/24, dns_nameservers: {get_param: dns_nameserver}}
  db_net: {type: OS::Neutron::Net}
  db_subnet:
    type: OS::Neutron::Subnet
    properties: {network: {get_resource: db_net}, cidr: 10.61.3.0/24}
  web_sg:
    type: OS::Neutron::SecurityGroup
    properties: {rules: [{protocol: tcp, port_range_min: 80, port_range_max: 80}]}
  db_sg:
    type: OS::Neutron::SecurityGroup
    properties: {rules: [{protocol: tcp, port_range_min: 3306, port_range_max: 3306}]}
outputs:
  web_private_network_id: {value: {get_resource: web_net}}
  web_private_subnet_id: {value: {get_resource: web_subnet}}
  web_security_group_id: {value: {get_resource: web_sg}}
  db_private_network_id: {value: {get_resource: db_net}}
  db_security_group_id: {value: {get_resource: db_sg}}
"""
SERVER_TIER = """
heat_template_version: 2016-10-14
parameters:
  instance_flavor: {type: string}
  image_id: {type: string}
  private_network_id: {type: string}
  security_group: {type: string}
  metadata: {type: json, default: {}}
  db_server_ip: {type: string, default: ""}
resources:
  server:
    type: OS::Nova::Server
    properties:
      image: {get_param: image_id}
      flavor: {get_param: instance_flavor}
      networks: [{network: {get_param: private_network_id}}]
      security_groups: [{get_param: security_group}]
      metadata: {get_param: metadata}
      user_data:
        str_replace:
          template: "#!/bin/sh\\necho db=$db\\n"
          params: {$db: {get_param: db_server_ip}}
outputs:
  instance_ip: {value: {get_attr: [server, first_address]}}
"""


def _tier_group(tier: str, net: str, sg: str, **extra) -> dict:
    return {"type": "OS::Heat::ResourceGroup", "properties": {"count": 2, "resource_def": {
        "type": tier, "properties": {
            "instance_flavor": {"get_param": "flavor"}, "image_id": {"get_param": "image_id"},
            "private_network_id": {"get_attr": ["network_setup", net]},
            "security_group": {"get_attr": ["network_setup", sg]},
            "metadata": {"metering.stack": {"get_param": "OS::stack_id"}}, **extra}}}}


WEB_APP_STATIC = {
    "heat_template_version": "2016-10-14",
    "parameters": {"image_id": {"type": "string"}, "flavor": {"type": "string"}},
    "resources": {
        "network_setup": {"type": "nested/setup_net_sg.yaml",
                          "properties": {"dns_nameserver": ["8.8.8.8", "8.8.4.4"]}},
        "launch_db_server": {"type": "nested/heat_sql_tier.yaml", "properties": {
            "instance_flavor": {"get_param": "flavor"}, "image_id": {"get_param": "image_id"},
            "private_network_id": {"get_attr": ["network_setup", "db_private_network_id"]},
            "security_group": {"get_attr": ["network_setup", "db_security_group_id"]}}},
        "app_server_resource_group": _tier_group(
            "nested/heat_app_tier.yaml", "web_private_network_id", "web_security_group_id",
            db_server_ip={"get_attr": ["launch_db_server", "instance_ip"]}),
        "web_server_resource_group": _tier_group("Lib::WebTier", "web_private_network_id", "web_security_group_id"),
    },
    "outputs": {"db_ip": {"value": {"get_attr": ["launch_db_server", "instance_ip"]}},
                "app_ips": {"value": {"get_attr": ["app_server_resource_group", "instance_ip"]}},
                "web_ips": {"value": {"get_attr": ["web_server_resource_group", "instance_ip"]}}},
}


def test_the_lectures_three_tier_web_application_of_template_resources(cluster, kubestack, namespace):
    flavor = create_flavor(cluster, ram=256)
    create_image(cluster, namespace)
    files = {"nested/setup_net_sg.yaml": SETUP_NET_SG, "nested/heat_sql_tier.yaml": SERVER_TIER,
             "nested/heat_app_tier.yaml": SERVER_TIER, "nested/heat_web_tier.yaml": SERVER_TIER}
    create_stack(cluster, namespace, "lamp", WEB_APP_STATIC, {"image_id": "cirros", "flavor": flavor}, files=files,
                 environment={"resource_registry": {"Lib::WebTier": "nested/heat_web_tier.yaml"}})
    s = wait_stack(cluster, namespace, "lamp", "CREATE_COMPLETE", "CREATE_FAILED", "ROLLBACK_COMPLETE", timeout=400)
    assert s["status"]["stackStatus"] == "CREATE_COMPLETE", s["status"]["stackStatusReason"]

    assert set(_stacks(cluster, namespace)) == {
        "lamp", "lamp-network-setup", "lamp-launch-db-server", "lamp-app-server-resource-group-0",
        "lamp-app-server-resource-group-1", "lamp-web-server-resource-group-0", "lamp-web-server-resource-group-1"}
    out = outputs(s)
    assert out["db_ip"].startswith("10.61.3.")
    assert len(out["app_ips"]) == 2 and all(ip.startswith("10.61.1.") for ip in out["app_ips"] + out["web_ips"])
    app = get(cluster, namespace, "servers", "lamp-app-server-resource-group-0-server")
    assert app["status"]["status"] == "ACTIVE"
    assert app["spec"]["userData"] == f"#!/bin/sh\necho db={out['db_ip']}\n"
    assert app["spec"]["metadata"] == {"metering.stack": s["metadata"]["uid"]}
    assert app["spec"]["securityGroups"] == ["lamp-network-setup-web-sg"]
    net = get(cluster, namespace, "networks", "lamp-network-setup-web-net")
    assert net["spec"]["subnets"][0]["dnsNameservers"] == ["8.8.8.8", "8.8.4.4"]

    custom(cluster).delete_namespaced_custom_object(G, V, namespace, "stacks", "lamp")
    wait_for(lambda: not _stacks(cluster, namespace), timeout=240, what="every stack deleted")
    assert custom(cluster).list_namespaced_custom_object(G, V, namespace, "servers")["items"] == []
