"""Servers on Glance images and Cinder volumes, end to end through the Server controller:
root disk cloned from an image, boot from a volume, data volumes attached and detached while
running, and a deleted server keeps its data volume."""

from __future__ import annotations

from support.compute import (
    create_flavor, create_server, custom, events_for, patch_server, server, vm, wait_for, wait_status,
)
from support.schemas import assert_valid

G, V = "kubestack.io", "v1alpha1"


def _create(cluster, namespace, plural, kind, name, spec):
    custom(cluster).create_namespaced_custom_object(G, V, namespace, plural, {
        "apiVersion": f"{G}/{V}", "kind": kind, "metadata": {"name": name}, "spec": spec})


def _status(cluster, namespace, plural, name, wanted, timeout=90):
    def check():
        obj = custom(cluster).get_namespaced_custom_object(G, V, namespace, plural, name)
        return obj if (obj.get("status") or {}).get("status") == wanted else None
    return wait_for(check, timeout, what=f"{plural}/{name} {wanted}")


def _http_image(cluster, namespace, name="cirros"):
    _create(cluster, namespace, "images", "Image", name, {
        "source": {"url": "https://example.com/cirros.img"}, "diskFormat": "qcow2", "minDisk": 1})
    return _status(cluster, namespace, "images", name, "active")


def test_boot_from_image_clones_a_root_disk(cluster, kubestack, namespace):
    _http_image(cluster, namespace)
    flavor = create_flavor(cluster, disk=5)
    create_server(cluster, namespace, "web", flavor)
    s = wait_status(cluster, namespace, "web", "ACTIVE")
    assert s["status"]["rootDisk"]
    machine = vm(cluster, namespace, "web")
    assert_valid(machine)
    root = next(v for v in machine["spec"]["template"]["spec"]["volumes"] if v["name"] == "rootdisk")
    assert "dataVolume" in root or "persistentVolumeClaim" in root
    dv = custom(cluster).get_namespaced_custom_object(
        "cdi.kubevirt.io", "v1beta1", namespace, "datavolumes", s["status"]["rootDisk"])
    assert_valid(dv)
    assert dv["spec"]["source"]["pvc"]["name"] == "cirros-image"


def test_boot_from_volume_and_hotplug_a_data_volume(cluster, kubestack, namespace):
    _http_image(cluster, namespace)
    flavor = create_flavor(cluster, disk=0)
    create_server(cluster, namespace, "bfv", flavor, image=None,
                  bootVolume={"image": "cirros", "size": 2, "deleteOnTermination": False})
    wait_status(cluster, namespace, "bfv", "ACTIVE")
    root = next(v for v in vm(cluster, namespace, "bfv")["spec"]["template"]["spec"]["volumes"]
                if v["name"] == "rootdisk")
    assert root == {"name": "rootdisk", "persistentVolumeClaim": {"claimName": "bfv-boot-volume"}}

    _create(cluster, namespace, "volumes", "Volume", "data", {"size": 1})
    _status(cluster, namespace, "volumes", "data", "available")
    patch_server(cluster, namespace, "bfv", {"blockDeviceMapping": [
        {"sourceType": "volume", "destinationType": "volume", "name": "data"}]})
    wait_for(lambda: any("data" in v["name"] and (v.get("persistentVolumeClaim") or {}).get("hotpluggable")
                         for v in vm(cluster, namespace, "bfv")["spec"]["template"]["spec"]["volumes"]),
             what="data volume hotplugged into the VM")
    attached = _status(cluster, namespace, "volumes", "data", "in-use")
    assert attached["status"]["attachments"][0]["server"] == "bfv"
    assert server(cluster, namespace, "bfv")["status"]["status"] == "ACTIVE"  # no restart
    assert "VolumeAttached" in [e.reason for e in events_for(cluster, namespace, "bfv")]

    patch_server(cluster, namespace, "bfv", {"blockDeviceMapping": []})
    _status(cluster, namespace, "volumes", "data", "available")
    assert not any("data" in v["name"] for v in vm(cluster, namespace, "bfv")["spec"]["template"]["spec"]["volumes"])

    # attach again, then delete the server: the data volume and the boot volume stay
    patch_server(cluster, namespace, "bfv", {"blockDeviceMapping": [
        {"sourceType": "volume", "destinationType": "volume", "name": "data"}]})
    _status(cluster, namespace, "volumes", "data", "in-use")
    custom(cluster).delete_namespaced_custom_object(G, V, namespace, "servers", "bfv")
    wait_for(lambda: vm(cluster, namespace, "bfv") is None, what="VM gone")
    _status(cluster, namespace, "volumes", "data", "available")
    _status(cluster, namespace, "volumes", "bfv-boot", "available")
