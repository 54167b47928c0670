"""The openstack-like compute verbs end to end against the running stack (API server,
operator, simulator): flavors, key pairs, server groups, and a server's life with --wait."""

from __future__ import annotations

import json
import os
import stat
import uuid

import pytest

from kubestack.cli import main
from support.compute import (
    G, V, create_flavor, create_image, create_server, custom, events_with, get, server, wait_for, wait_status,
)


@pytest.fixture
def cli(cluster, capsys):
    def run(*argv: str, expect: int = 0) -> str:
        code = main([*argv, "--kubeconfig", str(cluster.kubeconfig)])
        out, err = capsys.readouterr()
        assert code == expect, f"kubestack {' '.join(argv)} -> {code}\nstdout:\n{out}\nstderr:\n{err}"
        return out if expect == 0 else err
    return run


def test_flavor_and_keypair_verbs(cluster, kubestack, namespace, cli, tmp_path):
    flavor = f"cli-{uuid.uuid4().hex[:6]}"
    shown = json.loads(cli("flavor", "create", flavor, "--vcpus", "2", "--ram", "2048", "--disk", "10",
                           "--private", "--project", namespace, "--property", "hw:cpu_policy=shared",
                           "-f", "json"))
    assert shown["name"] == flavor and shown["os-flavor-access:is_public"] is False
    listed = json.loads(cli("flavor", "list", "-n", namespace, "-f", "json"))
    assert {"Name": flavor, "RAM": 2048, "Disk": 10, "VCPUs": 2, "Is Public": False}.items() <= \
        next(r for r in listed if r["Name"] == flavor).items()
    assert flavor not in cli("flavor", "list", "-n", "someone-else", "-f", "value", "-c", "Name").split()
    cli("flavor", "set", flavor, "--property", "hw:numa_nodes=1")
    props = json.loads(cli("flavor", "show", flavor, "-f", "json", "-c", "properties"))
    assert props == {"properties": {"hw:cpu_policy": "shared", "hw:numa_nodes": "1"}}

    key_file = tmp_path / "id_rsa"
    shown = json.loads(cli("keypair", "create", "mykey", "--private-key", str(key_file), "-n", namespace,
                           "-f", "json"))
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert key_file.read_text().startswith("-----BEGIN RSA PRIVATE KEY-----")
    assert shown["fingerprint"].count(":") == 15
    from kubernetes import client
    secrets = [s.metadata.name for s in client.CoreV1Api(cluster.api).list_namespaced_secret(namespace).items]
    assert "mykey-private-key" not in secrets  # handed out once
    pub = tmp_path / "id.pub"
    pub.write_text(cli("keypair", "show", "mykey", "--public-key", "-n", namespace))
    cli("keypair", "create", "again", "--public-key", str(pub), "-n", namespace)
    rows = json.loads(cli("keypair", "list", "-n", namespace, "-f", "json"))
    assert {r["Name"]: r["Fingerprint"] for r in rows} == {"mykey": shown["fingerprint"],
                                                         "again": shown["fingerprint"]}
    bad = tmp_path / "bad.pub"
    bad.write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA== x\n")
    err = cli("keypair", "create", "broken", "--public-key", str(bad), "-n", namespace, expect=1)
    assert "Keypair data is invalid" in err
    cli("keypair", "delete", "again", "broken", "-n", namespace)
    assert [r["Name"] for r in json.loads(cli("keypair", "list", "-n", namespace, "-f", "json"))] == ["mykey"]
    cli("flavor", "delete", flavor)
    assert "No flavor with a name or ID" in cli("flavor", "show", flavor, expect=1)


def test_server_life_with_wait(cluster, kubestack, namespace, cli):
    flavor = f"cli-{uuid.uuid4().hex[:6]}"
    cli("flavor", "create", flavor, "--vcpus", "1", "--ram", "1024", "--disk", "5")
    create_image(cluster, namespace)
    cli("keypair", "create", "k", "-n", namespace, "--keep-secret")
    group = json.loads(cli("server", "group", "create", "g", "--policy", "anti-affinity",
                           "--rule", "max_server_per_host=1", "-n", namespace, "-f", "json"))
    assert group["policy"] == "anti-affinity" and group["rules"] == {"max_server_per_host": 1}

    shown = json.loads(cli("server", "create", "web", "--flavor", flavor, "--image", "cirros", "--key-name", "k",
                           "--hint", "group=g", "--property", "role=web", "--wait", "-n", namespace, "-f", "json"))
    assert shown["status"] == "ACTIVE" and shown["OS-EXT-STS:power_state"] == "Running"
    assert shown["OS-EXT-STS:vm_state"] == "active" and shown["OS-EXT-STS:task_state"] is None
    assert shown["OS-EXT-SRV-ATTR:host"].startswith("compute-") and shown["key_name"] == "k"
    assert shown["server_groups"] == ["g"] and shown["properties"] == {"role": "web"}
    assert list(shown["addresses"]) == ["pod"]

    rows = json.loads(cli("server", "list", "-n", namespace, "-f", "json"))
    assert [(r["Name"], r["Status"], r["Flavor"], r["Image"]) for r in rows] == [("web", "ACTIVE", flavor, "cirros")]
    assert rows[0]["Networks"].startswith("pod=")
    long_rows = json.loads(cli("server", "list", "--long", "-n", namespace, "-f", "json"))
    assert long_rows[0]["Power State"] == "Running" and long_rows[0]["Host"] == shown["OS-EXT-SRV-ATTR:host"]
    assert cli("server", "show", "web", "-n", namespace, "-f", "value", "-c", "status") == "ACTIVE\n"
    table = cli("server", "show", "web", "-n", namespace)
    assert "| OS-EXT-STS:vm_state" in table and "| addresses" in table

    cli("server", "stop", "web", "--wait", "-n", namespace)
    assert server(cluster, namespace, "web")["status"]["status"] == "SHUTOFF"
    assert get(cluster, namespace, "virtualmachines", "web", "kubevirt.io", "v1")["spec"]["runStrategy"] == "Halted"
    cli("server", "start", "web", "--wait", "-n", namespace)
    assert server(cluster, namespace, "web")["status"]["status"] == "ACTIVE"
    cli("server", "reboot", "web", "--wait", "-n", namespace)
    s = server(cluster, namespace, "web")
    assert s["status"]["lastRebootRequestId"] == s["spec"]["reboot"]["requestId"]
    assert s["spec"]["reboot"]["type"] == "SOFT" and s["status"]["status"] == "ACTIVE"

    members = json.loads(cli("server", "group", "show", "g", "-n", namespace, "-f", "json"))["members"]
    assert members == ["web"]
    events_with(cluster, namespace, "web", "Scheduled", "Rebooted")  # Events are posted asynchronously
    events = json.loads(cli("server", "event", "list", "web", "-n", namespace, "-f", "json"))
    actions = [e["Action"] for e in events]
    assert "Scheduled" in actions and "Rebooted" in actions
    console = cli("server", "console", "log", "web", "-n", namespace)
    assert console.startswith("No console log for server web: ")
    assert "virtctl console web" in console and "Scheduled" in console

    cli("server", "delete", "web", "--wait", "-n", namespace)
    assert server(cluster, namespace, "web") is None
    assert json.loads(cli("server", "list", "-n", namespace, "-f", "json")) == []
    assert "No server with a name or ID of 'web' exists." in cli("server", "show", "web", "-n", namespace, expect=1)
    cli("server", "group", "delete", "g", "-n", namespace)
    cli("flavor", "delete", flavor)


def test_rebuild_wait_of_a_volume_backed_server_stops_at_the_refusal(cluster, kubestack, namespace, cli):
    custom(cluster).create_namespaced_custom_object(G, V, namespace, "images", {
        "apiVersion": f"{G}/{V}", "kind": "Image", "metadata": {"name": "cirros"},
        "spec": {"source": {"url": "https://example.com/cirros.img"}, "diskFormat": "qcow2", "minDisk": 1}})
    wait_for(lambda: (get(cluster, namespace, "images", "cirros").get("status") or {}).get("status") == "active",
             what="image active")
    create_server(cluster, namespace, "bfv", create_flavor(cluster, disk=0), image=None,
                  bootVolume={"image": "cirros", "size": 2})
    wait_status(cluster, namespace, "bfv", "ACTIVE")
    # answered at once with the operator's reason, long before the timeout
    err = cli("server", "rebuild", "bfv", "--wait", "--timeout", "60", "-n", namespace, expect=1)
    assert "rebuild of server bfv refused: Rebuild of volume-backed server bfv is not supported" in err
    st = server(cluster, namespace, "bfv")["status"]
    refused = next(c for c in st["conditions"] if c["type"] == "RequestRefused")
    assert refused["reason"] == "VolumeBackedServer" and st["status"] == "ACTIVE" and not st.get("fault")
    events_with(cluster, namespace, "bfv", "RebuildRefused")


def test_image_and_volume_lists_take_the_shared_list_options(cluster, kubestack, namespace, cli):
    import yaml

    create_image(cluster, namespace)
    shown = json.loads(cli("volume", "create", "data", "--size", "1", "--property", "purpose=logs", "--wait",
                           "-n", namespace, "-f", "json"))
    assert shown["status"] == "available"

    # openstackclient's columns, json keyed by them (other projects' public images may be listed too)
    images = json.loads(cli("image", "list", "-n", namespace, "-f", "json"))
    assert {"Name": "cirros", "Status": "active"}.items() <= next(i for i in images if i["Name"] == "cirros").items()
    assert set(images[0]) == {"ID", "Name", "Status"}
    long_images = json.loads(cli("image", "list", "--long", "-n", namespace, "-f", "json", "-c", "Name",
                                 "-c", "Disk Format", "-c", "Project"))
    assert {"Name": "cirros", "Disk Format": "raw", "Project": namespace} in long_images
    assert "cirros" in cli("image", "list", "-n", namespace, "-f", "value", "-c", "Name").split()
    table = cli("image", "list", "-n", namespace, "--no-headers", "-c", "Name")
    assert "| cirros " in table and "| Name" not in table

    volumes = json.loads(cli("volume", "list", "-n", namespace, "-f", "json"))
    assert volumes == [{"ID": shown["id"], "Name": "data", "Status": "available", "Size": 1, "Attached to": ""}]
    assert yaml.safe_load(cli("volume", "list", "--long", "-n", namespace, "-f", "yaml", "-c", "Name",
                              "-c", "Properties")) == [{"Name": "data", "Properties": {"purpose": "logs"}}]
    assert cli("volume", "list", "-n", namespace, "-f", "csv", "--no-headers", "-c", "Name", "-c", "Size") == \
        '"data",1\n'
    assert "No recognized column names" in cli("volume", "list", "-n", namespace, "-c", "Nope", expect=1)
