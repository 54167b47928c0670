"""Helpers for compute tests: flavors, images, servers, and waiting for states."""

from __future__ import annotations

import time
import uuid

from kubernetes import client
from kubernetes.client.rest import ApiException

G, V = "kubestack.io", "v1alpha1"


def custom(cluster) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(cluster.api)


def create_flavor(cluster, vcpus=1, ram=1024, disk=10, name=None, **spec) -> str:
    name = name or f"f-{uuid.uuid4().hex[:8]}"
    custom(cluster).create_cluster_custom_object(G, V, "flavors", {
        "apiVersion": f"{G}/{V}", "kind": "Flavor", "metadata": {"name": name},
        "spec": {"vcpus": vcpus, "ram": ram, "disk": disk, **spec}})
    return name


def create_image(cluster, namespace, name="cirros", container_disk="quay.io/kubevirt/cirros-container-disk-demo",
                 **spec) -> str:
    """A registry image, marked active with its container disk as the Image service would."""
    api = custom(cluster)
    api.create_namespaced_custom_object(G, V, namespace, "images", {
        "apiVersion": f"{G}/{V}", "kind": "Image", "metadata": {"name": name},
        "spec": {"source": {"registry": f"docker://{container_disk}"}, "containerDisk": True,
                 "diskFormat": "raw", "containerFormat": "docker", **spec}})
    wait_for(lambda: _set_active(api, namespace, name, container_disk))
    return name


def _set_active(api, namespace, name, container_disk) -> bool:
    obj = api.get_namespaced_custom_object(G, V, namespace, "images", name)
    if (obj.get("status") or {}).get("status") == "active":
        return True
    api.patch_namespaced_custom_object_status(G, V, namespace, "images", name, {"status": {
        "status": "active", "containerDisk": container_disk}})
    return False


def server_manifest(name, flavor, image="cirros", **spec) -> dict:
    return {"apiVersion": f"{G}/{V}", "kind": "Server", "metadata": {"name": name},
            "spec": {"flavor": flavor, "image": image, **spec}}


def create_server(cluster, namespace, name, flavor, image="cirros", **spec) -> dict:
    return custom(cluster).create_namespaced_custom_object(
        G, V, namespace, "servers", server_manifest(name, flavor, image, **spec))


def get(cluster, namespace, plural, name, group=G, version=V) -> dict | None:
    try:
        return custom(cluster).get_namespaced_custom_object(group, version, namespace, plural, name)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def server(cluster, namespace, name) -> dict:
    return get(cluster, namespace, "servers", name)


def patch_server(cluster, namespace, name, spec: dict) -> dict:
    return custom(cluster).patch_namespaced_custom_object(G, V, namespace, "servers", name, {"spec": spec})


def vm(cluster, namespace, name) -> dict | None:
    return get(cluster, namespace, "virtualmachines", name, "kubevirt.io", "v1")


def vmi(cluster, namespace, name) -> dict | None:
    return get(cluster, namespace, "virtualmachineinstances", name, "kubevirt.io", "v1")


def wait_for(check, timeout=90.0, interval=0.2, what="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"{what} not reached within {timeout}s (last: {last!r})")


def wait_status(cluster, namespace, name, *states, timeout=90.0) -> dict:
    def check():
        s = server(cluster, namespace, name) or {}
        st = s.get("status") or {}
        return s if st.get("status") in states and not st.get("taskState") else None

    try:
        return wait_for(check, timeout, what=f"server {name} in {states}")
    except AssertionError:
        s = server(cluster, namespace, name)
        raise AssertionError(f"server {name} not in {states}: status={(s or {}).get('status')}") from None


def events_for(cluster, namespace, name) -> list:
    evs = client.CoreV1Api(cluster.api).list_namespaced_event(
        namespace, field_selector=f"involvedObject.name={name}").items
    return sorted(evs, key=lambda e: e.metadata.creation_timestamp)


def events_with(cluster, namespace, name, *reasons, timeout=30.0) -> list:
    """The object's Events once every one of `reasons` is among them: the operator posts
    Events asynchronously, so one may land a moment after the state it reports."""
    def check():
        evs = events_for(cluster, namespace, name)
        return evs if set(reasons) <= {e.reason for e in evs} else None

    return wait_for(check, timeout, what=f"Events {', '.join(reasons)} on {name}")
