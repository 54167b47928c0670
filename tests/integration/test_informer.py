"""The operator's informers against the real API server: list, then watch; a late handler is
told what is already there; a relist reports what went away while nobody watched; an optional
informer started before its CRD exists syncs once the CRD is installed (what the simulator
relies on), and waits again when the CRD is deleted."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from kubernetes import client

from kubestack.k8s.objects import GVR
from kubestack.runtime.informer import Informer

CONFIGMAPS = GVR("", "v1", "configmaps", "ConfigMap")


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.changed = threading.Condition()

    def __call__(self, type_: str, body: dict, previous: dict | None) -> None:
        with self.changed:
            self.events.append((type_, body["metadata"]["name"]))
            self.changed.notify_all()

    def wait_for(self, event: tuple[str, str], timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        with self.changed:
            while event not in self.events:
                left = deadline - time.monotonic()
                if left <= 0:
                    pytest.fail(f"no {event} within {timeout}s; saw {self.events}")
                self.changed.wait(left)


def _informer(cluster, namespace: str) -> Informer:
    return Informer(cluster.api, CONFIGMAPS.api_version, CONFIGMAPS.plural, CONFIGMAPS.kind, namespace=namespace)


def _cm(name: str, value: str = "1") -> dict:
    return {"metadata": {"name": name}, "data": {"v": value}}


def test_list_then_watch_added_modified_deleted(cluster, namespace):
    core = client.CoreV1Api(cluster.api)
    core.create_namespaced_config_map(namespace, _cm("before"))
    informer = _informer(cluster, namespace)
    seen = Recorder()
    informer.add_handler(seen)
    informer.start()
    try:
        assert informer.wait_synced(30)
        assert ("ADDED", "before") in seen.events
        stored = informer.store.get(namespace, "before")
        assert stored["kind"] == "ConfigMap" and stored["apiVersion"] == "v1"  # list items get them

        core.create_namespaced_config_map(namespace, _cm("after"))
        seen.wait_for(("ADDED", "after"))
        core.patch_namespaced_config_map("after", namespace, {"data": {"v": "2"}})
        seen.wait_for(("MODIFIED", "after"))
        assert informer.store.get(namespace, "after")["data"] == {"v": "2"}
        core.delete_namespaced_config_map("before", namespace)
        seen.wait_for(("DELETED", "before"))
        assert informer.store.get(namespace, "before") is None
    finally:
        informer.stop()


def test_a_late_handler_is_told_what_exists(cluster, namespace):
    core = client.CoreV1Api(cluster.api)
    for name in ("a", "b"):
        core.create_namespaced_config_map(namespace, _cm(name))
    informer = _informer(cluster, namespace)
    informer.start()
    try:
        assert informer.wait_synced(30)
        late = Recorder()
        informer.add_handler(late)
        # (kube-controller-manager puts kube-root-ca.crt into every namespace too)
        assert {("ADDED", "a"), ("ADDED", "b")} <= set(late.events)
        assert {t for t, _ in late.events} == {"ADDED"}
        core.create_namespaced_config_map(namespace, _cm("c"))
        late.wait_for(("ADDED", "c"))
    finally:
        informer.stop()


def test_relist_reports_deletions_missed_while_not_watching(cluster, namespace):
    core = client.CoreV1Api(cluster.api)
    for name in ("kept", "gone"):
        core.create_namespaced_config_map(namespace, _cm(name))
    informer = _informer(cluster, namespace)
    seen = Recorder()
    informer.add_handler(seen)
    informer._relist()  # what a restart of the watch after 410 Gone does, without the thread
    core.delete_namespaced_config_map("gone", namespace)
    core.patch_namespaced_config_map("kept", namespace, {"data": {"v": "2"}})
    informer._relist()
    assert ("DELETED", "gone") in seen.events
    assert ("MODIFIED", "kept") in seen.events
    assert informer.store.get(namespace, "gone") is None
    assert informer.store.get(namespace, "kept")["data"] == {"v": "2"}


def _widget_crd(group: str) -> dict:
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {"group": group, "scope": "Namespaced",
                 "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
                 "versions": [{"name": "v1", "served": True, "storage": True,
                               "subresources": {"status": {}},
                               "schema": {"openAPIV3Schema": {"type": "object",
                                                              "x-kubernetes-preserve-unknown-fields": True}}}]},
    }


def _eventually(check, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            pytest.fail("condition not met")
        time.sleep(0.1)
    return value


def test_an_optional_informer_started_before_its_crd_syncs_once_it_is_installed(cluster, namespace):
    ext = client.ApiextensionsV1Api(cluster.api)
    custom = client.CustomObjectsApi(cluster.api)
    group = f"t{uuid.uuid4().hex[:8]}.kubestack.test"
    optional = Informer(cluster.api, f"{group}/v1", "widgets", "Widget", optional=True, recheck=0.2)
    required = Informer(cluster.api, f"{group}/v1", "widgets", "Widget")
    seen = Recorder()
    optional.add_handler(seen)
    optional.start()
    required.start()
    try:
        # nothing served: the optional one counts as synced (empty); the required one waits
        assert optional.wait_synced(30)
        assert optional.served is False and len(optional.store) == 0
        assert not required.wait_synced(1)

        ext.create_custom_resource_definition(_widget_crd(group))
        try:
            _eventually(lambda: optional.served)
            custom.create_namespaced_custom_object(group, "v1", namespace, "widgets", {
                "apiVersion": f"{group}/v1", "kind": "Widget", "metadata": {"name": "w1"}, "spec": {"size": 1}})
            seen.wait_for(("ADDED", "w1"), timeout=60)
            assert optional.subresources == {"status"}
            assert optional.store.get(namespace, "w1")["spec"] == {"size": 1}
            assert required.wait_synced(60)  # retried until the CRD was served
            _eventually(lambda: required.store.get(namespace, "w1"))
        finally:
            ext.delete_custom_resource_definition(f"widgets.{group}")
        # the CRD's objects are deleted (and reported) before it stops being served
        seen.wait_for(("DELETED", "w1"), timeout=60)
        _eventually(lambda: optional.served is False)
        assert len(optional.store) == 0
    finally:
        optional.stop()
        required.stop()
