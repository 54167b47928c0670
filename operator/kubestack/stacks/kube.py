"""The stack engine's `Cluster` port on the real API server, with the kubernetes client: the
one module of the engine that calls the API. Every write of a child is field-validated
(Strict)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

from kubernetes.client.rest import ApiException

from kubestack import API_GROUP, API_VERSION
from kubestack.k8s import events, objects
from kubestack.k8s.client import core, custom
from kubestack.orchestration import realize as rz
from kubestack.runtime.store import Store

from .cluster import Conflict, Key, Refused

STACKS = objects.kubestack("stacks", "Stack")
T = TypeVar("T")


def _gvr(kind: str) -> objects.GVR:
    return objects.kubestack(rz.KINDS[kind][1], kind)


def _scope(kind: str, namespace: str | None) -> str | None:
    return namespace if rz.KINDS[kind][2] else None


def _api_message(exc: ApiException) -> str:
    try:
        return json.loads(exc.body).get("message") or str(exc.reason)
    except (TypeError, ValueError, AttributeError):
        return str(exc.reason)


def _or_none(call: Callable[[], T]) -> T | None:
    """``call()``, or None when the object it reads or writes does not exist."""
    try:
        return call()
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


@contextlib.contextmanager
def _refusals() -> Iterator[None]:
    try:
        yield
    except ApiException as exc:
        if exc.status in (400, 403, 422):
            raise Refused(_api_message(exc)) from None
        raise


class KubeCluster:
    """``store``: the controller's copy of every Stack, kept up to date with what this
    engine reads and writes, so that the watch event of its own status write is seen as
    no change."""

    def __init__(self, store: Store):
        self.store = store

    # ---------------------------------------------------------------- the Stack object
    def stack(self, namespace: str, name: str) -> dict | None:
        body = objects.get(STACKS, namespace, name)
        if body is not None:
            self.store.apply_event("MODIFIED", body)
        return body

    def patch_stack(self, namespace: str, name: str, patch: dict) -> dict | None:
        try:
            return _or_none(lambda: objects.patch(STACKS, namespace, name, patch))
        except ApiException as exc:
            if exc.status == 409:
                raise Conflict(f"Stack {name} changed meanwhile") from None
            raise

    def patch_status(self, namespace: str, name: str, patch: dict) -> dict | None:
        updated = _or_none(lambda: objects.patch_status(STACKS, namespace, name, patch))
        if updated is not None:
            self.store.apply_event("MODIFIED", updated)
        return updated

    def event(self, obj: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        events.post(obj, type_, reason, message)

    # ---------------------------------------------------------------- children
    def children(self, namespace: str, stack: str) -> dict[Key, dict]:
        selector = f"{rz.STACK_LABEL}={stack}"
        out: dict[Key, dict] = {}
        for kind, (_av, plural, namespaced) in rz.KINDS.items():
            if kind == "Secret":
                items = core().api_client.sanitize_for_serialization(
                    core().list_namespaced_secret(namespace, label_selector=selector).items)
                for s in items:
                    out[(kind, s["metadata"]["name"])] = {"kind": "Secret", "apiVersion": "v1", **s}
                continue
            if namespaced:
                items = custom().list_namespaced_custom_object(API_GROUP, API_VERSION, namespace, plural,
                                                               label_selector=selector)["items"]
            else:
                items = custom().list_cluster_custom_object(
                    API_GROUP, API_VERSION, plural,
                    label_selector=f"{selector},{rz.STACK_NAMESPACE_LABEL}={namespace}")["items"]
            for obj in items:
                out[(kind, obj["metadata"]["name"])] = obj
        return out

    def get(self, kind: str, namespace: str | None, name: str) -> dict | None:
        with _refusals():
            if kind == "Secret":
                secret = objects.get_core("secret", namespace, name)
                return None if secret is None else {"kind": "Secret", "apiVersion": "v1", **secret}
            return objects.get(_gvr(kind), _scope(kind, namespace), name)

    def create(self, child: rz.Child) -> tuple[dict, bool]:
        with _refusals():
            if child.kind != "Secret":
                return objects.create(_gvr(child.kind), child.namespace, child.body)
            try:
                core().create_namespaced_secret(child.namespace, child.body, field_validation="Strict")
                created = True
            except ApiException as exc:
                if exc.status != 409:
                    raise
                created = False
        return self.get("Secret", child.namespace, child.name) or child.body, created

    def patch(self, kind: str, namespace: str | None, name: str, body: dict) -> dict:
        with _refusals():
            if kind == "Secret":
                core().patch_namespaced_secret(name, namespace, body, field_validation="Strict")
                return self.get("Secret", namespace, name) or {}
            try:
                return objects.patch(_gvr(kind), _scope(kind, namespace), name, body)
            except ApiException as exc:
                if exc.status == 409:
                    raise Conflict(f"{kind} {name} changed meanwhile") from None
                raise

    def delete(self, kind: str, namespace: str | None, name: str) -> None:
        with _refusals():
            if kind == "Secret":
                objects.delete_core("secret", namespace, name)
            else:
                objects.delete(_gvr(kind), _scope(kind, namespace), name)

    # ---------------------------------------------------------------- what the spec names, the state Secret
    def config_map(self, namespace: str, name: str) -> dict[str, str] | None:
        cm = objects.get_core("config_map", namespace, name)
        return None if cm is None else dict(cm.get("data") or {})

    def write_secret(self, namespace: str, name: str, data: dict[str, str], labels: dict[str, str],
                     owner: dict) -> None:
        try:
            core().patch_namespaced_secret(name, namespace, {"data": data})
        except ApiException as exc:
            if exc.status != 404:
                raise
            core().create_namespaced_secret(namespace, {
                "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                "metadata": {"name": name, "namespace": namespace, "labels": labels, "ownerReferences": [owner]},
                "data": data}, field_validation="Strict")
