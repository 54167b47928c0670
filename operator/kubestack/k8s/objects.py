"""Create, read, patch: idempotent helpers around the dynamic CustomObjects API."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kubernetes.client.rest import ApiException

from kubestack.k8s.client import core, custom

STRICT = "Strict"


@dataclass(frozen=True)
class GVR:
    group: str
    version: str
    plural: str
    kind: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


VM = GVR("kubevirt.io", "v1", "virtualmachines", "VirtualMachine")
VMI = GVR("kubevirt.io", "v1", "virtualmachineinstances", "VirtualMachineInstance")
VMIM = GVR("kubevirt.io", "v1", "virtualmachineinstancemigrations", "VirtualMachineInstanceMigration")
DATA_VOLUME = GVR("cdi.kubevirt.io", "v1beta1", "datavolumes", "DataVolume")
NAD = GVR("k8s.cni.cncf.io", "v1", "network-attachment-definitions", "NetworkAttachmentDefinition")
MULTI_NETWORK_POLICY = GVR("k8s.cni.cncf.io", "v1beta1", "multi-networkpolicies", "MultiNetworkPolicy")
VOLUME_SNAPSHOT = GVR("snapshot.storage.k8s.io", "v1", "volumesnapshots", "VolumeSnapshot")
NODE = GVR("", "v1", "nodes", "Node")


def kubestack(plural: str, kind: str) -> GVR:
    from kubestack import API_GROUP, API_VERSION

    return GVR(API_GROUP, API_VERSION, plural, kind)


def owner_reference(owner: Mapping[str, Any], controller: bool = True) -> dict[str, Any]:
    """An ownerReference to `owner` (a body): the garbage collector deletes the dependent
    with it; blockOwnerDeletion makes foreground deletion wait for the dependent."""
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": controller,
        "blockOwnerDeletion": True,
    }


def get(gvr: GVR, namespace: str | None, name: str) -> dict | None:
    try:
        if namespace:
            return custom().get_namespaced_custom_object(gvr.group, gvr.version, namespace, gvr.plural, name)
        return custom().get_cluster_custom_object(gvr.group, gvr.version, gvr.plural, name)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def create(gvr: GVR, namespace: str | None, body: dict) -> tuple[dict, bool]:
    """Create `body`; when it exists already (a retried reconcile), return the existing one.
    Returns (object, created)."""
    try:
        if namespace:
            obj = custom().create_namespaced_custom_object(
                gvr.group, gvr.version, namespace, gvr.plural, body, field_validation=STRICT)
        else:
            obj = custom().create_cluster_custom_object(
                gvr.group, gvr.version, gvr.plural, body, field_validation=STRICT)
        return obj, True
    except ApiException as exc:
        if exc.status != 409:
            raise
    existing = get(gvr, namespace, body["metadata"]["name"])
    if existing is None:  # deleted between our create and get: let the caller retry
        raise RuntimeError(f"{gvr.kind} {namespace}/{body['metadata']['name']} vanished while creating")
    return existing, False


def patch(gvr: GVR, namespace: str | None, name: str, body: dict) -> dict:
    """A JSON merge patch (the client sends merge-patch for dicts on custom objects)."""
    if namespace:
        return custom().patch_namespaced_custom_object(
            gvr.group, gvr.version, namespace, gvr.plural, name, body, field_validation=STRICT)
    return custom().patch_cluster_custom_object(
        gvr.group, gvr.version, gvr.plural, name, body, field_validation=STRICT)


def patch_status(gvr: GVR, namespace: str | None, name: str, status: dict) -> dict:
    body = {"status": status}
    if namespace:
        return custom().patch_namespaced_custom_object_status(
            gvr.group, gvr.version, namespace, gvr.plural, name, body)
    return custom().patch_cluster_custom_object_status(gvr.group, gvr.version, gvr.plural, name, body)


def delete(gvr: GVR, namespace: str | None, name: str, propagation: str = "Background") -> bool:
    """Delete if present; True when a delete was issued."""
    try:
        if namespace:
            custom().delete_namespaced_custom_object(
                gvr.group, gvr.version, namespace, gvr.plural, name, propagation_policy=propagation)
        else:
            custom().delete_cluster_custom_object(
                gvr.group, gvr.version, gvr.plural, name, propagation_policy=propagation)
        return True
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise


def status_diff(current: Mapping[str, Any] | None, desired: Mapping[str, Any]) -> dict[str, Any]:
    """The merge patch that turns `current` status into `desired` (keys `desired` sets to None
    are removed); empty when nothing changes, so callers write only on a real change."""
    current = current or {}
    out: dict[str, Any] = {}
    for key, value in desired.items():
        if value is None:
            if key in current:
                out[key] = None
        elif current.get(key) != value:
            out[key] = value
    return out


def get_core(kind: str, namespace: str, name: str) -> dict | None:
    """A core/v1 namespaced object (``secret``, ``config_map`` ...) as a plain dict, or None."""
    method = getattr(core(), f"read_namespaced_{kind}")
    try:
        return core().api_client.sanitize_for_serialization(method(name, namespace))
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def delete_core(kind: str, namespace: str, name: str) -> bool:
    """Delete a core/v1 namespaced object (PersistentVolumeClaim, Service, Secret ...)."""
    method = getattr(core(), f"delete_namespaced_{kind}")
    try:
        method(name, namespace)
        return True
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
