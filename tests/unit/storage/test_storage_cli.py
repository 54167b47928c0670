"""`kubestack image` / `kubestack volume`: argument parsing and the manifests the verbs submit
(validated against our CRDs), the tables, and the volume type listing (no cluster)."""

from __future__ import annotations

import pytest

from kubestack.cli import build_parser
from kubestack.cli.image import CliError, image_fields, image_manifest, print_table
from kubestack.cli.volume import snapshot_manifest, storage_class_rows, volume_fields, volume_manifest
from kubestack.storage.disks import _NewVolume, _new_volume_body
from support.schemas import assert_valid

pytestmark = pytest.mark.unit


def parse(*argv):
    return build_parser().parse_args(list(argv))


def test_image_create_manifests(tmp_path):
    args = parse("image", "create", "cirros", "--url", "https://example.com/c.img", "--public",
                 "--property", "os_distro=cirros", "--property", "hw_disk_bus=scsi", "--min-disk", "1",
                 "--tag", "t1", "--protected")
    body = image_manifest(args, "demo")
    assert_valid(body)
    assert body["spec"]["visibility"] == "public" and body["spec"]["protected"] is True
    assert body["spec"]["properties"] == {"os_distro": "cirros", "hw_disk_bus": "scsi"}

    f = tmp_path / "disk.img"
    f.write_bytes(b"x" * 100)
    body = image_manifest(parse("image", "create", "up", "--file", str(f), "--member", "other"), "demo")
    assert_valid(body)
    assert body["spec"]["source"] == {"upload": {"expectedSize": 100}}
    assert (body["spec"]["visibility"], body["spec"]["members"]) == ("shared", ["other"])

    body = image_manifest(parse("image", "create", "fed", "--registry", "quay.io/containerdisks/fedora:40",
                                "--container-disk"), "demo")
    assert body["spec"]["source"] == {"registry": "docker://quay.io/containerdisks/fedora:40"}
    assert body["spec"]["containerDisk"] is True
    assert image_manifest(parse("image", "create", "s", "--server", "web"), "d")["spec"]["source"] == \
        {"serverSnapshot": {"server": "web"}}
    assert image_manifest(parse("image", "create", "v", "--volume", "vol"), "d")["spec"]["source"] == \
        {"volume": {"name": "vol"}}
    with pytest.raises(CliError, match="must be KEY=VALUE"):
        image_manifest(parse("image", "create", "x", "--url", "https://a/b", "--property", "novalue"), "d")
    with pytest.raises(SystemExit):
        parse("image", "create", "x", "--url", "https://a/b", "--file", "f")  # one source only


def test_volume_manifests_and_fields():
    body = volume_manifest(parse("volume", "create", "data", "--size", "10", "--type", "fast-ssd",
                                 "--image", "cirros", "--property", "purpose=web"), "demo")
    assert_valid(body)
    assert body["spec"] == {"size": 10, "volumeType": "fast-ssd", "source": {"image": "cirros"},
                            "metadata": {"purpose": "web"}}
    assert volume_manifest(parse("volume", "create", "r", "--size", "1", "--snapshot", "s1"), "d")["spec"]["source"] \
        == {"snapshot": "s1"}
    assert volume_manifest(parse("volume", "create", "c", "--size", "1", "--source", "data"), "d")["spec"]["source"] \
        == {"volume": "data"}
    snap = snapshot_manifest("s1", "demo", "data")
    assert_valid(snap)
    assert snap["spec"]["source"] == {"persistentVolumeClaimName": "data-volume"}
    fields = volume_fields({"metadata": {"name": "data", "uid": "u"}, "spec": {"size": 2, "source": {"image": "c"}},
                            "status": {"status": "in-use", "attachedTo": "Attached to web on /dev/sda"}})
    assert (fields["status"], fields["bootable"], fields["attached_to"]) == ("in-use", True, "Attached to web on /dev/sda")
    assert image_fields({"metadata": {"name": "c", "namespace": "d"}, "spec": {}})["status"] == "queued"


def test_volume_type_rows_mark_the_default(capsys):
    rows = storage_class_rows([
        {"metadata": {"name": "standard", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
         "provisioner": "p", "allowVolumeExpansion": True},
        {"metadata": {"name": "fast-ssd", "annotations": {"kubestack.io/multiattach": "true"}}, "provisioner": "p"},
    ])
    assert [(r["name"], r["is_default"], r["multiattach"]) for r in rows] == \
        [("fast-ssd", False, True), ("standard", True, False)]
    print_table(["Name", "Is Default"], [[r["name"], r["is_default"]] for r in rows])
    out = capsys.readouterr().out.splitlines()
    assert out[1] == "| Name     | Is Default |" and out[3] == "| fast-ssd | False      |"


def test_volumes_created_for_a_server():
    server = {"apiVersion": "kubestack.io/v1alpha1", "kind": "Server",
              "metadata": {"name": "web", "namespace": "b", "uid": "u1"}}
    owned = _new_volume_body(server, _NewVolume("web-boot", 3, {"image": "a/cirros"}, "fast-ssd", True, True))
    assert_valid(owned)
    assert owned["metadata"]["ownerReferences"][0]["uid"] == "u1"
    assert owned["spec"] == {"size": 3, "source": {"image": "a/cirros"}, "volumeType": "fast-ssd", "bootable": True}
    kept = _new_volume_body(server, _NewVolume("web-bdm1", 1, None, None, False, False))
    assert "ownerReferences" not in kept["metadata"] and kept["spec"] == {"size": 1}
