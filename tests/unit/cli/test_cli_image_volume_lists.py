"""`image list`, `volume list`, `volume type list` and `volume snapshot list` on the shared
list output (kubestack.cli.output): the columns openstackclient prints, --long, and the
options every list takes (-f table|json|yaml|value|csv, -c COLUMN, --no-headers), from
Image, Volume, StorageClass and VolumeSnapshot dicts."""

from __future__ import annotations

import argparse
import csv
import io
import json

import pytest

from kubestack.cli import build_parser
from kubestack.cli import image as image_cli
from kubestack.cli import volume as volume_cli
from kubestack.cli.output import CliError, format_list

pytestmark = pytest.mark.unit

NS = "demo"


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


def image(name, ns=NS, **spec):
    return {"metadata": {"name": name, "namespace": ns, "uid": f"u-{name}"},
            "spec": {"diskFormat": "qcow2", **spec},
            "status": {"status": "active", "size": 4096, "checksum": "abc"}}


def volume(name, **spec):
    return {"metadata": {"name": name, "namespace": NS, "uid": f"v-{name}"},
            "spec": {"size": 2, **spec},
            "status": {"status": "in-use", "volumeType": "standard", "attachedTo": "Attached to web on /dev/vdb"}}


@pytest.mark.parametrize("verb", ["image", "volume"])
def test_both_lists_take_the_shared_list_options(verb):
    args = parse(verb, "list", "--long", "--no-headers", "-c", "Name", "-c", "Status", "-f", "csv", "-n", NS)
    assert (args.long, args.no_headers, args.columns, args.format, args.namespace) == \
        (True, True, ["Name", "Status"], "csv", NS)
    assert parse(verb, "list", "-f", "value").format == "value"


def test_image_list_columns_are_openstackclients():
    images = [image("cirros", tags=["t2", "t1"]), image("fedora", ns="admin", visibility="public", protected=True)]
    headers, rows = image_cli.list_rows(images, NS)
    assert headers == ["ID", "Name", "Status"]
    # another project's image is named PROJECT/NAME, and sorted so
    assert rows == [["u-fedora", "admin/fedora", "active"], ["u-cirros", "cirros", "active"]]
    headers, rows = image_cli.list_rows(images, NS, long=True)
    assert headers == ["ID", "Name", "Disk Format", "Container Format", "Size", "Checksum", "Status",
                       "Visibility", "Protected", "Project", "Tags"]
    assert rows[1] == ["u-cirros", "cirros", "qcow2", "bare", 4096, "abc", "active", "private", False, NS,
                       ["t2", "t1"]]
    # json keeps the tags a list, like openstackclient's; a table joins them
    assert json.loads(format_list(headers, rows, "json"))[1]["Tags"] == ["t2", "t1"]
    assert "| t2, t1 |" in format_list(headers, rows)


def test_volume_list_columns_are_openstackclients():
    vols = [volume("logs"), volume("data", metadata={"b": "2", "a": "1"}, source={"image": "cirros"})]
    headers, rows = volume_cli.list_rows(vols)
    assert headers == ["ID", "Name", "Status", "Size", "Attached to"]
    assert rows == [["v-data", "data", "in-use", 2, "Attached to web on /dev/vdb"],
                    ["v-logs", "logs", "in-use", 2, "Attached to web on /dev/vdb"]]
    headers, rows = volume_cli.list_rows(vols, long=True)
    assert headers == ["ID", "Name", "Status", "Size", "Type", "Bootable", "Attached to", "Properties"]
    assert rows[0][4:] == ["standard", True, "Attached to web on /dev/vdb", {"a": "1", "b": "2"}]
    # properties: k='v' in a table (as before), an object in json
    assert "a='1', b='2'" in format_list(headers, rows)
    assert json.loads(format_list(headers, rows, "json"))[0]["Properties"] == {"a": "1", "b": "2"}


def test_the_shared_options_shape_the_listing():
    headers, rows = volume_cli.list_rows([volume("data"), volume("logs")])
    # the lecture's loop over names: value output, one a line
    assert format_list(headers, rows, "value", ["Name"]) == "data\nlogs\n"
    assert list(csv.reader(io.StringIO(format_list(headers, rows, "csv", ["Name", "Size"], no_headers=True)))) == \
        [["data", "2"], ["logs", "2"]]
    table = format_list(headers, rows, columns=["Name", "Status"], no_headers=True).splitlines()
    assert table == ["+------+--------+", "| data | in-use |", "| logs | in-use |", "+------+--------+"]
    with pytest.raises(CliError, match="No recognized column names"):
        format_list(*image_cli.list_rows([image("cirros")], NS), columns=["Owner"])


def storage_class(name, default=False, multiattach=False, **extra):
    ann = {}
    if default:
        ann["storageclass.kubernetes.io/is-default-class"] = "true"
    if multiattach:
        ann["kubestack.io/multiattach"] = "true"
    return {"metadata": {"name": name, "uid": f"sc-{name}", "annotations": ann},
            "provisioner": "kubestack.io/sim", **extra}


def snapshot(name, ready=True, **annotations):
    return {"metadata": {"name": name, "namespace": NS, "uid": f"s-{name}",
                         "labels": {"kubestack.io/volume": "data"}, "annotations": annotations,
                         "creationTimestamp": "2024-01-01T00:00:00Z"},
            "status": {"readyToUse": ready, "restoreSize": "3Gi", "creationTime": "2024-01-01T00:00:05Z"}}


@pytest.mark.parametrize("argv", [("volume", "type", "list"), ("volume", "snapshot", "list")])
def test_type_and_snapshot_lists_take_the_shared_list_options(argv):
    args = parse(*argv, "--long", "--no-headers", "-c", "Name", "-f", "csv", "-n", NS)
    assert (args.long, args.no_headers, args.columns, args.format, args.namespace) == \
        (True, True, ["Name"], "csv", NS)
    assert parse(*argv, "-f", "value").format == "value"


def test_volume_type_list_columns_are_openstackclients():
    classes = [storage_class("standard", default=True, parameters={"tier": "1"}),
               storage_class("fast-ssd", multiattach=True)]
    headers, rows = volume_cli.type_list_rows(classes)
    assert headers == ["ID", "Name", "Is Public"]
    assert rows == [["sc-fast-ssd", "fast-ssd", True], ["sc-standard", "standard", True]]
    headers, rows = volume_cli.type_list_rows(classes, long=True)
    assert headers == ["ID", "Name", "Is Public", "Description", "Properties"]
    assert rows[0][3:] == [None, {"multiattach": "<is> True", "volume_backend_name": "kubestack.io/sim"}]
    assert rows[1][4] == {"tier": "1", "volume_backend_name": "kubestack.io/sim"}
    # json keyed by the headers, as openstackclient's
    assert json.loads(format_list(*volume_cli.type_list_rows(classes), "json")) == [
        {"ID": "sc-fast-ssd", "Name": "fast-ssd", "Is Public": True},
        {"ID": "sc-standard", "Name": "standard", "Is Public": True}]


def test_volume_type_list_default_shows_the_default_type():
    classes = [storage_class("standard", default=True), storage_class("fast-ssd"),
               storage_class("zzz", default=True)]
    # the one the operator gives a volume without a type: the first marked default, by name
    assert volume_cli.type_list_rows(classes, default=True)[1] == [["sc-standard", "standard", True]]
    with pytest.raises(CliError, match="Default volume type can not be found"):
        volume_cli.type_list_rows([storage_class("fast-ssd")], default=True)
    assert parse("volume", "type", "list", "--default").default is True


def test_volume_snapshot_list_columns_are_openstackclients():
    snaps = [snapshot("snap2", ready=False), snapshot("snap1", **{"kubestack.io/description": "nightly"})]
    headers, rows = volume_cli.snapshot_list_rows(snaps)
    assert headers == ["ID", "Name", "Description", "Status", "Size"]
    assert rows == [["s-snap1", "snap1", "nightly", "available", 3], ["s-snap2", "snap2", None, "creating", 3]]
    headers, rows = volume_cli.snapshot_list_rows(snaps, long=True)
    assert headers == ["ID", "Name", "Description", "Status", "Size", "Created At", "Volume", "Properties"]
    assert rows[0][5:] == ["2024-01-01T00:00:05Z", "data", {}]
    assert json.loads(format_list(headers, rows, "json", ["Name", "Status"])) == \
        [{"Name": "snap1", "Status": "available"}, {"Name": "snap2", "Status": "creating"}]
