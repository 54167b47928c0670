"""Renderers of the storage code: every DataVolume and VM fragment validates against the CDI /
KubeVirt CRD schemas, with the sources, sizes, owners and names Glance/Cinder users expect."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubestack.storage import names, rendering
from support.schemas import assert_valid

pytestmark = pytest.mark.unit


def image(name="cirros", ns="a", **spec):
    spec.setdefault("source", {"url": "https://example.com/cirros.img"})
    return {"apiVersion": "kubestack.io/v1alpha1", "kind": "Image",
            "metadata": {"name": name, "namespace": ns, "uid": "uid-img"}, "spec": spec,
            "status": {"status": "active", "pvc": names.image_pvc(name)}}


def server(name="web", ns="b", **spec):
    spec.setdefault("flavor", "m1.small")
    return {"apiVersion": "kubestack.io/v1alpha1", "kind": "Server",
            "metadata": {"name": name, "namespace": ns, "uid": "uid-srv"}, "spec": spec}


def volume(name="data", ns="b", **spec):
    spec.setdefault("size", 5)
    return {"apiVersion": "kubestack.io/v1alpha1", "kind": "Volume",
            "metadata": {"name": name, "namespace": ns, "uid": "uid-vol"}, "spec": spec}


@pytest.mark.parametrize("source, expected", [
    ({"url": "https://example.com/a.qcow2"}, {"http": {"url": "https://example.com/a.qcow2"}}),
    ({"registry": "docker://quay.io/containerdisks/fedora:40"},
     {"registry": {"url": "docker://quay.io/containerdisks/fedora:40"}}),
    ({"upload": {}}, {"upload": {}}),
])
def test_golden_image_data_volume_sources(source, expected):
    dv = rendering.image_data_volume(image(source=source, minDisk=3))
    assert_valid(dv)
    assert dv["spec"]["source"] == expected
    assert dv["metadata"]["name"] == "cirros-image" and dv["metadata"]["namespace"] == "a"
    assert dv["spec"]["storage"]["resources"]["requests"]["storage"] == "3Gi"
    assert dv["metadata"]["ownerReferences"][0]["kind"] == "Image"
    assert dv["metadata"]["labels"][names.LABEL_STORAGE] == "image"
    assert dv["metadata"]["annotations"][rendering.ANN_BIND_IMMEDIATE] == "true"


def test_golden_image_default_and_upload_sizes():
    assert rendering.image_size_gib({"source": {"url": "https://x/y"}}) == rendering.DEFAULT_IMAGE_GIB
    three_and_a_bit = 3 * 1024**3 + 1
    assert rendering.image_size_gib({"source": {"upload": {"expectedSize": three_and_a_bit}}}) == 4
    assert rendering.image_size_gib({"source": {"upload": {"expectedSize": 10}}, "minDisk": 2}) == 2


@pytest.mark.parametrize("source", [{"volume": {"name": "vol1"}}, {"serverSnapshot": {"server": "web"}}])
def test_image_from_volume_or_snapshot_clones_the_pvc(source):
    dv = rendering.image_data_volume(image(source=source), source_pvc=("a", "vol1-volume"))
    assert_valid(dv)
    assert dv["spec"]["source"] == {"pvc": {"namespace": "a", "name": "vol1-volume"}}
    assert "resources" not in dv["spec"]["storage"]  # CDI sizes a clone from its source
    with pytest.raises(rendering.RenderError):
        rendering.image_data_volume(image(source=source))


def test_root_disk_is_a_cross_namespace_clone_owned_by_the_server():
    dv = rendering.root_disk_data_volume(server(), image(minDisk=2), size_gib=20)
    assert_valid(dv)
    assert dv["metadata"]["name"] == "web-root" and dv["metadata"]["namespace"] == "b"
    assert dv["spec"]["source"] == {"pvc": {"namespace": "a", "name": "cirros-image"}}
    assert dv["spec"]["storage"]["resources"]["requests"]["storage"] == "20Gi"
    assert dv["metadata"]["ownerReferences"][0]["kind"] == "Server"
    retained = rendering.root_disk_data_volume(server(), image(minDisk=2), owned=False)
    assert "ownerReferences" not in retained["metadata"]
    assert retained["spec"]["storage"]["resources"]["requests"]["storage"] == "2Gi"  # min_disk wins


@pytest.mark.parametrize("source, expected", [
    (rendering.blank_source(), {"blank": {}}),
    (rendering.pvc_source("b", "other-volume"), {"pvc": {"namespace": "b", "name": "other-volume"}}),
    (rendering.snapshot_source("b", "snap1"), {"snapshot": {"namespace": "b", "name": "snap1"}}),
    (rendering.pvc_source("a", "cirros-image"), {"pvc": {"namespace": "a", "name": "cirros-image"}}),
])
def test_volume_data_volumes(source, expected):
    dv = rendering.volume_data_volume(volume(size=7, volumeType="fast-ssd"), source)
    assert_valid(dv)
    assert dv["metadata"]["name"] == "data-volume"
    assert dv["spec"]["source"] == expected
    assert dv["spec"]["storage"] == {"resources": {"requests": {"storage": "7Gi"}},
                                     "storageClassName": "fast-ssd"}
    assert dv["metadata"]["ownerReferences"][0]["kind"] == "Volume"


def vm_with(disks, volumes):
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
            "metadata": {"name": "web", "namespace": "b"},
            "spec": {"runStrategy": "Always", "template": {"spec": {
                "domain": {"devices": {"disks": disks}, "memory": {"guest": "512Mi"}},
                "volumes": volumes}}}}


def test_kubevirt_entries_validate():
    pairs = [
        rendering.root_disk_entries(data_volume="web-root"),
        rendering.data_volume_entries("data", "data-volume", serial="0123456789abcdef0123456789"),
        rendering.data_volume_entries("logs.v2", "logs.v2-volume", hotpluggable=False),
        rendering.ephemeral_disk_entries(3, 2),
    ]
    vm = vm_with([d for d, _ in pairs], [v for _, v in pairs])
    assert_valid(vm)
    root_disk, root_volume = pairs[0]
    assert root_disk["bootOrder"] == 1 and root_volume["dataVolume"] == {"name": "web-root"}
    disk, vol = pairs[1]
    assert disk["disk"] == {"bus": "scsi"} and len(disk["serial"]) == 20
    assert vol["persistentVolumeClaim"] == {"claimName": "data-volume", "hotpluggable": True}
    assert "." not in pairs[2][0]["name"]


def test_container_disk_and_boot_volume_roots():
    disk, vol = rendering.root_disk_entries(container_disk="docker://quay.io/containerdisks/fedora:40")
    assert vol["containerDisk"] == {"image": "quay.io/containerdisks/fedora:40"}
    assert_valid(vm_with([disk], [vol]))
    disk, vol = rendering.root_disk_entries(claim="web-boot-volume", bus="sata")
    assert vol["persistentVolumeClaim"] == {"claimName": "web-boot-volume"}
    assert disk["disk"]["bus"] == "sata"
    assert_valid(vm_with([disk], [vol]))
    with pytest.raises(rendering.RenderError):
        rendering.root_disk_entries(claim="a", data_volume="b")


LABEL = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", fullmatch=True)
NAME = st.lists(LABEL, min_size=1, max_size=6).map(".".join).filter(lambda n: len(n) <= 253)


@settings(max_examples=200)
@given(NAME)
def test_names_stay_valid_and_families_apart(name):
    import re

    dns1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
    for fn in (names.image_pvc, names.volume_pvc, names.root_disk, names.boot_volume):
        out = fn(name)
        assert len(out) <= 253 and dns1123.match(out), out
    label = names.vm_volume_name(name)
    assert len(label) <= 63 and re.match(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", label), label
    assert not names.volume_pvc(name).endswith("-root")
    assert names.volume_pvc(name) != names.image_pvc(name)
    rebuilt = names.root_disk(name, names.rebuild_key("uid", 2))
    assert len(rebuilt) <= 253 and dns1123.match(rebuilt), rebuilt
    assert names.is_root_disk_of(name, rebuilt) and names.is_root_disk_of(name, names.root_disk(name))
    for other in (names.image_pvc(name), names.volume_pvc(name), names.boot_volume(name),
                  names.volume_pvc(names.root_disk(name)), names.root_disk(name + "x")):
        assert not names.is_root_disk_of(name, other), other
