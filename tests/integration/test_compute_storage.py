"""Servers on Glance images and Cinder volumes, end to end through the Server controller:
root disk cloned from an image, boot from a volume, data volumes attached and detached while
running, a deleted server keeps its data volume, and a rebuild replaces a cloned root disk
(and only that)."""

from __future__ import annotations

import signal

from kubernetes.client.rest import ApiException

from support.compute import (
    create_flavor, create_server, custom, events_with, get, patch_server, server, vm, vmi, wait_for, wait_status,
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
    # Nova would reimage the boot volume (API 2.93); kubestack refuses, and the server is untouched
    vmi_uid = vmi(cluster, namespace, "bfv")["metadata"]["uid"]
    patch_server(cluster, namespace, "bfv", {"rebuild": {"requestId": "r1"}})
    s = wait_for(lambda: (x := server(cluster, namespace, "bfv"))["status"].get("lastRebuildRequestId") == "r1"
                 and x, what="rebuild request answered")
    assert s["status"]["status"] == "ACTIVE" and not s["status"].get("fault")
    refused = next(c for c in s["status"]["conditions"] if c["type"] == "RequestRefused")
    assert refused["status"] == "True" and refused["reason"] == "VolumeBackedServer" \
        and "volume-backed" in refused["message"]
    events_with(cluster, namespace, "bfv", "RebuildRefused")
    assert vmi(cluster, namespace, "bfv")["metadata"]["uid"] == vmi_uid

    wait_for(lambda: any("data" in v["name"] and (v.get("persistentVolumeClaim") or {}).get("hotpluggable")
                         for v in vm(cluster, namespace, "bfv")["spec"]["template"]["spec"]["volumes"]),
             what="data volume hotplugged into the VM")
    attached = _status(cluster, namespace, "volumes", "data", "in-use")
    assert attached["status"]["attachments"][0]["server"] == "bfv"
    assert server(cluster, namespace, "bfv")["status"]["status"] == "ACTIVE"  # no restart
    events_with(cluster, namespace, "bfv", "VolumeAttached")

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


def _dv(cluster, namespace, name):
    try:
        return custom(cluster).get_namespaced_custom_object(
            "cdi.kubevirt.io", "v1beta1", namespace, "datavolumes", name)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def _root_dvs(cluster, namespace, server_name):
    return sorted(d["metadata"]["name"] for d in custom(cluster).list_namespaced_custom_object(
        "cdi.kubevirt.io", "v1beta1", namespace, "datavolumes",
        label_selector=f"kubestack.io/storage=root-disk,kubestack.io/server={server_name}")["items"])


def _rebuilt(cluster, namespace, name, old_root, image):
    """Wait until the rebuild replacing `old_root` is over; the server's status."""
    def done():
        s = server(cluster, namespace, name)
        st = s.get("status") or {}
        return s if st.get("status") == "ACTIVE" and not st.get("taskState") and st.get("imageName") == image \
            and st.get("rootDisk") not in (None, old_root) else None
    return wait_for(done, 120, what=f"{name} rebuilt from {image}")


def _root_volume(obj):
    spec = obj["spec"]["template"]["spec"] if "template" in obj["spec"] else obj["spec"]
    return next(v for v in spec["volumes"] if v["name"] == "rootdisk")


def test_rebuild_replaces_a_cloned_root_disk_and_keeps_attached_volumes(cluster, kubestack, namespace):
    _http_image(cluster, namespace, "cirros")
    _http_image(cluster, namespace, "fedora")
    flavor = create_flavor(cluster, disk=5)
    _create(cluster, namespace, "volumes", "Volume", "data", {"size": 1})
    data = _status(cluster, namespace, "volumes", "data", "available")
    create_server(cluster, namespace, "rb", flavor, blockDeviceMapping=[
        {"sourceType": "volume", "destinationType": "volume", "name": "data"}])
    s = wait_status(cluster, namespace, "rb", "ACTIVE")
    host, old_root = s["status"]["host"], s["status"]["rootDisk"]
    assert old_root == "rb-root"
    assert _dv(cluster, namespace, old_root)["spec"]["source"]["pvc"]["name"] == "cirros-image"
    data_pvc = _dv(cluster, namespace, "data-volume")["metadata"]["uid"]

    # openstack server rebuild --image fedora rb
    patch_server(cluster, namespace, "rb", {"image": "fedora"})
    s = _rebuilt(cluster, namespace, "rb", old_root, "fedora")
    new_root = s["status"]["rootDisk"]
    assert s["status"]["host"] == host and not s["status"].get("fault")
    machine = vm(cluster, namespace, "rb")
    assert_valid(machine)
    assert _root_volume(machine) == {"name": "rootdisk", "dataVolume": {"name": new_root}}
    instance = vmi(cluster, namespace, "rb")
    assert _root_volume(instance)["dataVolume"]["name"] == new_root and instance["status"]["nodeName"] == host
    dv = _dv(cluster, namespace, new_root)
    assert_valid(dv)
    assert dv["spec"]["source"]["pvc"] == {"namespace": namespace, "name": "fedora-image"}
    assert dv["metadata"]["ownerReferences"][0]["uid"] == s["metadata"]["uid"]  # still garbage-collected
    wait_for(lambda: _dv(cluster, namespace, old_root) is None, what="old root disk deleted")
    assert _root_dvs(cluster, namespace, "rb") == [new_root]
    # the attached volume: still attached, the same volume, never deleted
    assert any(v["name"] == "vol-data" for v in machine["spec"]["template"]["spec"]["volumes"])
    vol = _status(cluster, namespace, "volumes", "data", "in-use")
    assert vol["metadata"]["uid"] == data["metadata"]["uid"] and not vol["metadata"].get("deletionTimestamp")
    assert vol["status"]["attachments"][0]["server"] == "rb"
    assert _dv(cluster, namespace, "data-volume")["metadata"]["uid"] == data_pvc
    events_with(cluster, namespace, "rb", "Rebuilding")

    # openstack server rebuild rb (same image): a fresh copy too; the operator is killed on the way
    patch_server(cluster, namespace, "rb", {"rebuild": {"requestId": "again"}})
    wait_for(lambda: server(cluster, namespace, "rb")["status"].get("lastRebuildRequestId") == "again",
             what="rebuild started")
    kubestack.restart_operator(signal.SIGKILL)
    s = _rebuilt(cluster, namespace, "rb", new_root, "fedora")
    newest = s["status"]["rootDisk"]
    assert s["status"]["host"] == host
    assert _root_volume(vm(cluster, namespace, "rb"))["dataVolume"]["name"] == newest
    assert _dv(cluster, namespace, newest)["spec"]["source"]["pvc"]["name"] == "fedora-image"
    wait_for(lambda: _root_dvs(cluster, namespace, "rb") == [newest], what="exactly one root disk")
    assert _status(cluster, namespace, "volumes", "data", "in-use")["metadata"]["uid"] == data["metadata"]["uid"]


def test_rebuild_keeps_a_retained_root_disk(cluster, kubestack, namespace):
    _http_image(cluster, namespace, "cirros")
    _http_image(cluster, namespace, "fedora")
    flavor = create_flavor(cluster, disk=5)
    create_server(cluster, namespace, "kept", flavor, retainRootDisk=True)
    old_root = wait_status(cluster, namespace, "kept", "ACTIVE")["status"]["rootDisk"]
    patch_server(cluster, namespace, "kept", {"image": "fedora"})
    s = _rebuilt(cluster, namespace, "kept", old_root, "fedora")
    new_root = s["status"]["rootDisk"]
    assert _root_volume(vm(cluster, namespace, "kept"))["dataVolume"]["name"] == new_root
    assert _dv(cluster, namespace, new_root)["spec"]["source"]["pvc"]["name"] == "fedora-image"
    old = _dv(cluster, namespace, old_root)
    assert old is not None and not old["metadata"].get("deletionTimestamp")
    assert _root_dvs(cluster, namespace, "kept") == sorted([old_root, new_root])


def _delete_server(cluster, namespace, name):
    custom(cluster).delete_namespaced_custom_object(G, V, namespace, "servers", name)
    wait_for(lambda: get(cluster, namespace, "servers", name) is None and vm(cluster, namespace, name) is None,
             what=f"server {name} and its VM gone")


def _server_owners(dv, server_body):
    return [o for o in dv["metadata"].get("ownerReferences") or [] if o["uid"] == server_body["metadata"]["uid"]]


def test_retain_root_disk_set_after_boot_keeps_the_disk_when_the_server_is_deleted(cluster, kubestack, namespace):
    _http_image(cluster, namespace)
    flavor = create_flavor(cluster, disk=5)
    create_server(cluster, namespace, "late", flavor)
    s = wait_status(cluster, namespace, "late", "ACTIVE")
    root = s["status"]["rootDisk"]
    assert _server_owners(_dv(cluster, namespace, root), s)  # deleted with the server, by default
    patch_server(cluster, namespace, "late", {"retainRootDisk": True})
    wait_for(lambda: not _server_owners(_dv(cluster, namespace, root), s), what="root disk no longer owned")
    patch_server(cluster, namespace, "late", {"retainRootDisk": False})
    wait_for(lambda: _server_owners(_dv(cluster, namespace, root), s), what="root disk owned again")
    patch_server(cluster, namespace, "late", {"retainRootDisk": True})
    wait_for(lambda: not _server_owners(_dv(cluster, namespace, root), s), what="root disk no longer owned")
    kept_uid = _dv(cluster, namespace, root)["metadata"]["uid"]

    _delete_server(cluster, namespace, "late")
    kept = _dv(cluster, namespace, root)
    # nothing owns it, so the garbage collector has no reason to ever delete it
    assert kept["metadata"]["uid"] == kept_uid and not kept["metadata"].get("ownerReferences")
    assert not kept["metadata"].get("deletionTimestamp")


def test_a_new_server_never_takes_over_the_root_disk_a_namesake_kept(cluster, kubestack, namespace):
    _http_image(cluster, namespace)
    flavor = create_flavor(cluster, disk=5)
    create_server(cluster, namespace, "reused", flavor, retainRootDisk=True)
    root = wait_status(cluster, namespace, "reused", "ACTIVE")["status"]["rootDisk"]
    kept_uid = _dv(cluster, namespace, root)["metadata"]["uid"]
    _delete_server(cluster, namespace, "reused")

    create_server(cluster, namespace, "reused", flavor)
    s = wait_status(cluster, namespace, "reused", "ERROR")
    assert "kept it (retainRootDisk)" in s["status"]["fault"]["message"]
    assert vm(cluster, namespace, "reused") is None
    kept = _dv(cluster, namespace, root)
    assert kept["metadata"]["uid"] == kept_uid and not kept["metadata"].get("ownerReferences")
    assert not kept["metadata"].get("deletionTimestamp")
    _delete_server(cluster, namespace, "reused")  # an ERROR server's delete still keeps the disk
    assert _dv(cluster, namespace, root)["metadata"]["uid"] == kept_uid


def test_a_server_recreated_under_its_old_name_gets_a_fresh_root_disk(cluster, kubestack, namespace):
    _http_image(cluster, namespace)
    flavor = create_flavor(cluster, disk=5)
    create_server(cluster, namespace, "again", flavor)
    root = wait_status(cluster, namespace, "again", "ACTIVE")["status"]["rootDisk"]
    old_uid = _dv(cluster, namespace, root)["metadata"]["uid"]
    # as a GitOps tool replacing the object: the old disk may still exist when the new one boots
    custom(cluster).delete_namespaced_custom_object(G, V, namespace, "servers", "again")
    wait_for(lambda: get(cluster, namespace, "servers", "again") is None, what="server gone")
    created = create_server(cluster, namespace, "again", flavor)
    wait_status(cluster, namespace, "again", "ACTIVE", timeout=120)
    dv = _dv(cluster, namespace, root)
    assert dv["metadata"]["uid"] != old_uid
    assert dv["metadata"]["annotations"]["kubestack.io/server-uid"] == created["metadata"]["uid"]
    assert _root_dvs(cluster, namespace, "again") == [root]
