"""Argument parsing and the pure parts of the compute verbs: the objects they submit, the
fields they show, and when `--wait` is satisfied."""

from __future__ import annotations

import argparse
import hashlib

import pytest

from kubestack.cli import build_parser
from kubestack.cli import flavor as flavor_cli
from kubestack.cli import keypair as keypair_cli
from kubestack.cli import server as server_cli
from kubestack.cli import servergroup as group_cli
from kubestack.cli.output import CliError


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


def test_server_create_manifest():
    args = parse("server", "create", "web-1", "--flavor", "m1.small", "--image", "cirros", "--key-name", "k",
                 "--network", "private", "--nic", "net-id=public,v4-fixed-ip=10.0.0.9,tag=eth1",
                 "--nic", "none", "--port", "p1", "--security-group", "web", "--security-group", "default",
                 "--availability-zone", "az1", "--hint", "group=g", "--hint", "same_host=a",
                 "--hint", "same_host=b", "--hint", "different_host=c", "--property", "role=web",
                 "--min", "2", "--max", "3", "--config-drive", "--wait", "-n", "demo")
    body = server_cli.server_manifest(args, "demo", "#cloud-config\n")
    assert body["metadata"] == {"name": "web-1", "namespace": "demo"}
    assert body["spec"] == {
        "flavor": "m1.small", "image": "cirros", "keyName": "k", "userData": "#cloud-config\n",
        "networks": [{"network": "private"}, {"port": "p1"},
                     {"network": "public", "fixedIp": "10.0.0.9", "tag": "eth1"}],
        "securityGroups": ["default", "web"], "availabilityZone": "az1", "serverGroup": "g",
        "schedulerHints": {"sameHost": ["a", "b"], "differentHost": ["c"]}, "metadata": {"role": "web"},
        "minCount": 2, "maxCount": 3, "configDrive": True}
    assert args.wait and args.namespace == "demo"


def test_server_create_validates_the_model():
    """What the CLI submits parses with the API model (the CRD's source of truth)."""
    from kubestack.api.server import ServerSpec

    args = parse("server", "create", "db", "--flavor", "f", "--volume", "root", "--min", "2")
    spec = ServerSpec.model_validate(server_cli.server_manifest(args, "p")["spec"])
    assert spec.boot_volume.volume == "root" and spec.min_count == 2 and spec.max_count == 2


@pytest.mark.parametrize("argv, message", [
    (["--hint", "colour=blue"], "not a known scheduler hint"),
    (["--hint", "group"], "KEY=VALUE"),
    (["--nic", "v4-fixed-ip=1.2.3.4"], "net-id or port-id is required"),
    (["--nic", "net-id=a,port-id=b"], "not both"),
    (["--nic", "net-id=a,mac=x"], "unknown key"),
    (["--min", "3", "--max", "2"], "min instances"),
    (["--server-group", "a", "--hint", "group=b"], "disagree"),
])
def test_server_create_bad_input(argv, message):
    args = parse("server", "create", "s", "--flavor", "f", "--image", "i", *argv)
    with pytest.raises(CliError, match=message):
        server_cli.server_manifest(args, "p")


def test_server_create_needs_one_boot_source():
    with pytest.raises(SystemExit):
        parse("server", "create", "s", "--flavor", "f")
    with pytest.raises(SystemExit):
        parse("server", "create", "s", "--flavor", "f", "--image", "i", "--volume", "v")


def test_user_data_limit(tmp_path):
    big = tmp_path / "big"
    big.write_bytes(b"x" * 65537)
    with pytest.raises(CliError, match="at most 65536"):
        server_cli.read_user_data(str(big))
    with pytest.raises(CliError, match="Can't open"):
        server_cli.read_user_data(str(tmp_path / "missing"))
    ok = tmp_path / "ok"
    ok.write_text("#!/bin/sh\necho hi\n")
    assert server_cli.read_user_data(str(ok)) == "#!/bin/sh\necho hi\n"


def test_action_verbs_parse():
    assert parse("server", "stop", "a", "b", "--wait").power_verb == "stop"
    assert parse("server", "reboot", "--hard", "a").hard is True
    assert parse("server", "reboot", "a").hard is False
    assert parse("server", "resize", "confirm", "a").words == ["confirm", "a"]
    assert parse("server", "migrate", "a", "--live-migration", "--host", "h").live is True
    assert parse("server", "console", "log", "a", "--lines", "5").lines == 5
    assert parse("server", "event", "list", "a", "-f", "json").format == "json"
    assert parse("server", "group", "list", "--long").long is True
    assert parse("flavor", "list", "--all").which == "all"
    assert parse("keypair", "show", "k", "--public-key").public_key is True


SERVER = {
    "apiVersion": "kubestack.io/v1alpha1", "kind": "Server",
    "metadata": {"name": "web-1", "namespace": "demo", "uid": "u-1", "generation": 3,
                 "creationTimestamp": "2024-01-01T00:00:00Z",
                 "managedFields": [{"time": "2024-01-01T00:00:05Z"}, {"time": "2024-01-01T00:01:00Z"}]},
    "spec": {"flavor": "m1.small", "image": "cirros", "keyName": "k", "serverGroup": "g",
             "securityGroups": ["default"], "metadata": {"role": "web"}},
    "status": {"status": "ACTIVE", "powerState": "RUNNING", "vmState": "active", "host": "compute-1",
               "hypervisorHostname": "compute-1", "availabilityZone": "az1", "virtualMachine": "web-1",
               "imageName": "cirros", "flavorName": "m1.small", "observedGeneration": 3,
               "flavor": {"name": "m1.small", "vcpus": 1, "ram": 2048, "disk": 10},
               "addresses": {"pod": [{"addr": "10.244.0.5", "version": 4, "type": "fixed"}]},
               "launchedAt": "2024-01-01T00:00:04Z"},
}


def test_server_show_fields_use_novas_names():
    fields, human = server_cli.server_fields(SERVER)
    assert list(fields) == sorted(fields)
    assert fields["OS-EXT-STS:power_state"] == "Running"
    assert fields["OS-EXT-STS:vm_state"] == "active" and fields["OS-EXT-STS:task_state"] is None
    assert fields["OS-EXT-SRV-ATTR:host"] == "compute-1" and fields["OS-EXT-AZ:availability_zone"] == "az1"
    assert fields["addresses"] == {"pod": [{"addr": "10.244.0.5", "version": 4, "OS-EXT-IPS:type": "fixed"}]}
    assert human["addresses"] == "pod=10.244.0.5"
    assert fields["flavor"]["original_name"] == "m1.small" and fields["flavor"]["ram"] == 2048
    assert fields["hostId"] == hashlib.sha224(b"democompute-1").hexdigest()
    assert fields["id"] == "u-1" and fields["image"] == "cirros" and fields["key_name"] == "k"
    assert fields["security_groups"] == [{"name": "default"}] and fields["server_groups"] == ["g"]
    assert fields["updated"] == "2024-01-01T00:01:00Z" and fields["created"] == "2024-01-01T00:00:00Z"
    assert "fault" not in fields


def test_server_show_fault():
    errored = {**SERVER, "status": {"status": "ERROR", "fault": {
        "code": 500, "message": "No valid host was found.", "details": "RamFilter: 0 hosts"}}}
    fields, human = server_cli.server_fields(errored)
    assert fields["fault"]["code"] == 500
    assert "RamFilter" in human["fault"]
    assert fields["OS-EXT-STS:power_state"] == "NOSTATE" and fields["hostId"] == ""


def test_server_list_rows():
    other = {**SERVER, "metadata": {**SERVER["metadata"], "name": "db", "uid": "u-2",
                                    "creationTimestamp": "2024-01-02T00:00:00Z"},
             "status": {}}
    headers, rows = server_cli.list_rows([SERVER, other])
    assert headers == ["ID", "Name", "Status", "Networks", "Image", "Flavor"]
    assert rows == [["u-2", "db", "BUILD", "", "cirros", "m1.small"],
                    ["u-1", "web-1", "ACTIVE", "pod=10.244.0.5", "cirros", "m1.small"]]
    headers, rows = server_cli.list_rows([SERVER], long=True)
    assert headers[3:5] == ["Task State", "Power State"] and "Availability Zone" in headers and "Host" in headers
    assert rows[0][3:5] == ["None", "Running"] and rows[0][8:10] == ["az1", "compute-1"]
    assert server_cli.filter_servers([SERVER, other], status="active") == [SERVER]
    assert server_cli.filter_servers([SERVER, other], name="^d") == [other]


def with_status(**status):
    return {**SERVER, "status": {**SERVER["status"], **status}}


def test_wait_for_power_state():
    exp = server_cli.Expect(("SHUTOFF",), 4, "stop")
    assert not server_cli.reached(with_status(status="SHUTOFF"), exp)  # generation 4 not seen yet
    assert not server_cli.reached(with_status(observedGeneration=4, taskState="powering-off"), exp)
    assert server_cli.reached(with_status(observedGeneration=4, status="SHUTOFF", taskState=None), exp)
    with pytest.raises(CliError, match="ERROR: boom"):
        server_cli.reached(with_status(observedGeneration=4, status="ERROR", fault={"code": 500, "message": "boom"}),
                           exp)


def test_wait_for_request_ids():
    exp = server_cli.Expect(("ACTIVE",), 4, "soft reboot", request_field="lastRebootRequestId", request_id="r2")
    assert not server_cli.reached(with_status(observedGeneration=4, lastRebootRequestId="r1"), exp)
    assert not server_cli.reached(with_status(observedGeneration=4, lastRebootRequestId="r2", status="REBOOT",
                                              taskState="rebooting"), exp)
    assert server_cli.reached(with_status(observedGeneration=4, lastRebootRequestId="r2"), exp)
    with pytest.raises(CliError, match="Cannot 'reboot'"):
        server_cli.reached(with_status(observedGeneration=4, lastRebootRequestId="r2", status="SHUTOFF",
                                       fault={"code": 409, "message": "Cannot 'reboot' instance"}), exp)


def test_wait_for_resize():
    exp = server_cli.Expect(("VERIFY_RESIZE",), 4, "resize", flavor="m1.large")
    assert not server_cli.reached(with_status(observedGeneration=4, status="RESIZE", taskState="resize_migrating",
                                              flavorName="m1.large"), exp)
    assert server_cli.reached(with_status(observedGeneration=4, status="VERIFY_RESIZE", flavorName="m1.large"), exp)
    with pytest.raises(CliError, match="No valid host"):
        server_cli.reached(with_status(observedGeneration=4, fault={"code": 500, "message": "No valid host"}), exp)


def test_wait_stops_at_a_refusal():
    refused = {"type": "RequestRefused", "status": "True", "reason": "QuotaExceeded", "observedGeneration": 4,
               "message": "Quota exceeded for cores: Requested 2, but already used 3 of 3 cores"}
    exp = server_cli.Expect(("VERIFY_RESIZE",), 4, "resize", flavor="m1.large")
    # the operator keeps observedGeneration behind a refused spec: without the condition this would wait on
    with pytest.raises(CliError, match="resize of server web-1 refused: Quota exceeded for cores"):
        server_cli.reached(with_status(observedGeneration=3, status="ACTIVE", conditions=[refused]), exp)
    # a refusal of an earlier generation says nothing about this request
    old = {**refused, "observedGeneration": 3}
    assert not server_cli.reached(with_status(observedGeneration=3, status="ACTIVE", conditions=[old]), exp)

    # a volume-backed rebuild is answered: its generation is observed, the request id recorded
    rebuild = server_cli.Expect(("ACTIVE",), 5, "rebuild", request_field="lastRebuildRequestId", request_id="r1")
    not_rebuilt = {"type": "RequestRefused", "status": "True", "reason": "VolumeBackedServer",
                   "observedGeneration": 5, "message": "Rebuild of volume-backed server web-1 is not supported"}
    with pytest.raises(CliError, match="rebuild of server web-1 refused: Rebuild of volume-backed"):
        server_cli.reached(with_status(observedGeneration=5, status="ACTIVE", lastRebuildRequestId="r1",
                                       conditions=[not_rebuilt]), rebuild)
    # a later request is not failed by it (the operator drops it once the spec changes)
    stop = server_cli.Expect(("SHUTOFF",), 6, "stop")
    assert server_cli.reached(with_status(observedGeneration=6, status="SHUTOFF", conditions=[not_rebuilt]), stop)


def test_event_rows_and_console_fallback():
    evs = [{"metadata": {"uid": "e1"}, "reason": "Scheduled", "type": "Normal", "message": "Scheduled to compute-1",
            "lastTimestamp": "2024-01-01T00:00:01Z"},
           {"metadata": {"uid": "e2"}, "reason": "Active", "type": "Normal", "message": "Server is ACTIVE",
            "lastTimestamp": "2024-01-01T00:00:04Z"}]
    headers, rows = server_cli.event_rows(SERVER, evs)
    assert headers == ["Request ID", "Server ID", "Action", "Start Time", "Message"]
    assert rows[0] == ["e1", "u-1", "Scheduled", "2024-01-01T00:00:01Z", "Scheduled to compute-1"]
    text = server_cli.console_fallback(SERVER, evs, "no kubelets here.")
    assert text.startswith("No console log for server web-1: no kubelets here.")
    assert "virtctl console web-1 -n demo" in text
    assert "status=ACTIVE" in text and "Active: Server is ACTIVE" in text


def test_flavor_manifest_and_fields():
    args = parse("flavor", "create", "m1.private", "--vcpus", "2", "--ram", "4096", "--disk", "20",
                 "--ephemeral", "5", "--swap", "512", "--private", "--project", "b", "--project", "a",
                 "--property", "hw:cpu_policy=dedicated")
    body = flavor_cli.flavor_manifest(args)
    assert body["spec"] == {"vcpus": 2, "ram": 4096, "disk": 20, "ephemeral": 5, "swap": 512, "isPublic": False,
                            "projects": ["a", "b"], "extraSpecs": {"hw:cpu_policy": "dedicated"}}
    obj = {**body, "metadata": {"name": "m1.private", "uid": "f-1"}}
    fields = flavor_cli.flavor_fields(obj)
    assert fields["os-flavor-access:is_public"] is False and fields["access_project_ids"] == ["a", "b"]
    assert fields["OS-FLV-EXT-DATA:ephemeral"] == 5 and fields["properties"] == {"hw:cpu_policy": "dedicated"}
    assert flavor_cli.visible(obj, "a") and not flavor_cli.visible(obj, "c")
    headers, rows = flavor_cli.list_rows([obj])
    assert headers == ["ID", "Name", "RAM", "Disk", "Ephemeral", "VCPUs", "Is Public"]
    assert rows == [["f-1", "m1.private", 4096, 20, 5, 2, False]]
    with pytest.raises(CliError, match="add --private"):
        flavor_cli.flavor_manifest(parse("flavor", "create", "x", "--vcpus", "1", "--ram", "1", "--project", "a"))


def test_keypair_manifest_and_fields():
    body = keypair_cli.keypair_manifest("k", "demo", "ssh-ed25519 AAAA me\n", "ssh")
    assert body["spec"] == {"type": "ssh", "publicKey": "ssh-ed25519 AAAA me"}
    assert "publicKey" not in keypair_cli.keypair_manifest("k", "demo", None, "ssh")["spec"]
    fields = keypair_cli.keypair_fields({"metadata": {"name": "k", "namespace": "demo"}, "spec": {},
                                         "status": {"fingerprint": "aa:bb", "privateKeySecret": "k-private-key"}})
    assert fields["fingerprint"] == "aa:bb" and fields["type"] == "ssh" and fields["name"] == "k"


def test_server_group_manifest_and_rules():
    body = group_cli.group_manifest("g", "demo", "anti-affinity", ["max_server_per_host=2"])
    assert body["spec"] == {"policy": "anti-affinity", "rules": {"maxServerPerHost": 2}}
    with pytest.raises(CliError, match="only allowed with policy anti-affinity"):
        group_cli.group_manifest("g", "demo", "affinity", ["max_server_per_host=2"])
    with pytest.raises(CliError, match="the only rule"):
        group_cli.group_manifest("g", "demo", "anti-affinity", ["colour=2"])
    obj = {**body, "metadata": {"name": "g", "namespace": "demo", "uid": "g-1"},
           "status": {"members": [{"name": "a", "host": "h1"}, {"name": "b"}], "memberCount": 2}}
    fields = group_cli.group_fields(obj)
    assert fields["members"] == ["a", "b"] and fields["member_hosts"] == {"a": "h1", "b": ""}
    assert fields["rules"] == {"max_server_per_host": 2}
    headers, rows = group_cli.list_rows([obj], long=True)
    assert headers == ["ID", "Name", "Policy", "Members", "Project Id", "Rules"]
    assert rows[0][:4] == ["g-1", "g", "anti-affinity", ["a", "b"]]
