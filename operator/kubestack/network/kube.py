"""Small API helpers taking an explicit ``kubernetes.client.ApiClient`` (the network effect
modules are called by controllers with the operator's client and by tests with theirs).
Every create and update uses ``fieldValidation=Strict``."""

from __future__ import annotations

from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

from kubestack import API_GROUP, API_VERSION

STRICT = "Strict"


class Kube:
    def __init__(self, api: client.ApiClient):
        self.api = api
        self.custom = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)
        self.net = client.NetworkingV1Api(api)

    # ---------------------------------------------------------------- custom objects
    def get(self, group: str, version: str, plural: str, ns: str, name: str) -> dict | None:
        try:
            return self.custom.get_namespaced_custom_object(group, version, ns, plural, name)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def ours(self, plural: str, ns: str, name: str) -> dict | None:
        return self.get(API_GROUP, API_VERSION, plural, ns, name)

    def list(self, group: str, version: str, plural: str, ns: str,
             selector: str | None = None) -> list[dict]:
        kwargs = {"label_selector": selector} if selector else {}
        return self.custom.list_namespaced_custom_object(
            group, version, ns, plural, **kwargs).get("items", [])

    def list_ours(self, plural: str, ns: str, selector: str | None = None) -> list[dict]:
        return self.list(API_GROUP, API_VERSION, plural, ns, selector)

    def create(self, group: str, version: str, plural: str, ns: str, body: dict
               ) -> tuple[dict, bool]:
        """Create, or return the existing object of that name: (object, created)."""
        try:
            return self.custom.create_namespaced_custom_object(
                group, version, ns, plural, body, field_validation=STRICT), True
        except ApiException as exc:
            if exc.status != 409:
                raise
        existing = self.get(group, version, plural, ns, body["metadata"]["name"])
        if existing is None:
            raise ApiException(status=409, reason=f"{plural} {ns}/{body['metadata']['name']} "
                                                  "vanished while being created")
        return existing, False

    def create_ours(self, plural: str, ns: str, body: dict) -> tuple[dict, bool]:
        return self.create(API_GROUP, API_VERSION, plural, ns, body)

    def patch(self, group: str, version: str, plural: str, ns: str, name: str, body: dict) -> dict:
        return self.custom.patch_namespaced_custom_object(
            group, version, ns, plural, name, body, field_validation=STRICT)

    def patch_ours(self, plural: str, ns: str, name: str, body: dict) -> dict:
        return self.patch(API_GROUP, API_VERSION, plural, ns, name, body)

    def replace(self, group: str, version: str, plural: str, ns: str, name: str, body: dict) -> dict:
        return self.custom.replace_namespaced_custom_object(
            group, version, ns, plural, name, body, field_validation=STRICT)

    def patch_status(self, plural: str, ns: str, name: str, status: dict) -> dict:
        return self.custom.patch_namespaced_custom_object_status(
            API_GROUP, API_VERSION, ns, plural, name, {"status": status})

    def delete(self, group: str, version: str, plural: str, ns: str, name: str) -> bool:
        try:
            self.custom.delete_namespaced_custom_object(group, version, ns, plural, name)
            return True
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise

    # ---------------------------------------------------------------- core objects
    def namespace_labels(self, name: str) -> dict[str, str] | None:
        try:
            ns = self.core.read_namespace(name)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return dict(ns.metadata.labels or {})

    def get_configmap(self, ns: str, name: str) -> dict | None:
        try:
            cm = self.core.read_namespaced_config_map(name, ns)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return self.api.sanitize_for_serialization(cm)

    def create_configmap(self, ns: str, body: dict) -> bool:
        """True when created, False when an object of that name exists (409)."""
        try:
            self.core.create_namespaced_config_map(ns, body, field_validation=STRICT)
            return True
        except ApiException as exc:
            if exc.status == 409:
                return False
            raise

    def list_configmaps(self, ns: str, selector: str) -> list[dict]:
        items = self.core.list_namespaced_config_map(ns, label_selector=selector).items
        return [self.api.sanitize_for_serialization(i) for i in items]

    def delete_configmap(self, ns: str, name: str, uid: str | None = None) -> bool:
        body = {"preconditions": {"uid": uid}} if uid else None
        try:
            self.core.delete_namespaced_config_map(name, ns, body=body)
            return True
        except ApiException as exc:
            if exc.status in (404, 409):
                return False
            raise


def owner_ref(body: dict[str, Any], controller: bool = False) -> dict[str, Any]:
    return {"apiVersion": body["apiVersion"], "kind": body["kind"],
            "name": body["metadata"]["name"], "uid": body["metadata"]["uid"],
            "controller": controller, "blockOwnerDeletion": True}
