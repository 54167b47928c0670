"""Image and Volume status under concurrent triggers: the interleavings a review found lose an
update, replayed against an in-memory API with the controllers' real handlers and re-sync queue.

A. An import that finishes at once: the DataVolume's Succeeded event arrives while the Image's
   create (or resume) handler is between reading the DataVolume and writing `queued`. Succeeded
   is final (no further event), so the Image must end `active`, not `queued`.
B. The user detaches while the progress timer's refresh is between listing the Servers (still
   `in-use`) and writing: the Server's refresh (`detaching`) must not be overwritten by the
   timer's older `in-use`, which no later event would correct.

The fakes call the racing trigger synchronously at the worst moment (as kopf's other stream or
the informer thread could); the queue runs in its real worker threads. The controllers now only
queue from those triggers, and the queued re-sync reads everything again under the object's lock
after the trigger, so the final status is the current one. (With the handlers as they were, the
other trigger wrote at that moment and the first handler's stale write came last: these tests
failed.)
"""

from __future__ import annotations

import asyncio
import copy
import inspect
import threading
import time

import pytest
from kubernetes.client.rest import ApiException

from kubestack.controllers import image as image_ctl
from kubestack.controllers import volume as volume_ctl
from kubestack.k8s import events, objects
from support.patches import apply_merge_patch

pytestmark = pytest.mark.unit

NS = "p"
KS = "kubestack.io/v1alpha1"


class FakeAPI:
    """Objects by (plural, namespace, name); `after_get` / `after_list` / `after_create`
    run once, after the call has read its answer (the moment another trigger can slip in)."""

    def __init__(self):
        self.objs: dict[tuple[str, str, str], dict] = {}
        self.lock = threading.RLock()
        self.events: list[tuple[str, str]] = []  # (object name, reason)
        self.after_get: dict[tuple[str, str], object] = {}
        self.after_list: dict[str, object] = {}
        self.after_create: dict[str, object] = {}

    def put(self, plural: str, body: dict) -> dict:
        with self.lock:
            self.objs[(plural, body["metadata"].get("namespace", NS), body["metadata"]["name"])] = \
                copy.deepcopy(body)
        return body

    def status(self, plural: str, name: str) -> dict:
        with self.lock:
            return copy.deepcopy(self.objs[(plural, NS, name)].get("status") or {})

    # objects.get / patch_status / create
    def get(self, gvr, namespace, name):
        with self.lock:
            obj = copy.deepcopy(self.objs.get((gvr.plural, namespace, name)))
        hook = self.after_get.pop((gvr.plural, name), None)
        if hook:
            hook()
        return obj

    def patch_status(self, gvr, namespace, name, status):
        with self.lock:
            obj = self.objs[(gvr.plural, namespace, name)]
            obj.setdefault("status", {})
            apply_merge_patch(obj["status"], status)
            return copy.deepcopy(obj)

    def create(self, gvr, namespace, body):
        with self.lock:
            self.objs[(gvr.plural, namespace, body["metadata"]["name"])] = copy.deepcopy(body)
        hook = self.after_create.pop(gvr.plural, None)
        if hook:
            hook()
        return copy.deepcopy(body), True

    def list(self, plural, namespace):
        with self.lock:
            items = [copy.deepcopy(o) for (p, ns, _), o in sorted(self.objs.items()) if p == plural and ns == namespace]
        hook = self.after_list.pop(plural, None)
        if hook:
            hook()
        return {"items": items}

    def post(self, obj, type_, reason, message):
        with self.lock:
            self.events.append((obj["metadata"]["name"], reason))

    def reasons(self, name: str) -> list[str]:
        with self.lock:
            return [r for n, r in self.events if n == name]


class FakeCustom:
    def __init__(self, fake: FakeAPI):
        self.fake = fake

    def list_namespaced_custom_object(self, group, version, namespace, plural):
        return self.fake.list(plural, namespace)


class FakeCore:
    """The PVC reads of the Image controller (its core() client)."""

    def __init__(self, fake: FakeAPI):
        self.fake = fake
        self.api_client = self

    @staticmethod
    def sanitize_for_serialization(obj):
        return obj

    def read_namespaced_persistent_volume_claim(self, name, namespace):
        with self.fake.lock:
            pvc = copy.deepcopy(self.fake.objs.get(("persistentvolumeclaims", namespace, name)))
        if pvc is None:
            raise ApiException(status=404, reason="Not Found")
        return pvc


@pytest.fixture
def fake(monkeypatch):
    api = FakeAPI()
    monkeypatch.setattr(objects, "get", api.get)
    monkeypatch.setattr(objects, "patch_status", api.patch_status)
    monkeypatch.setattr(objects, "create", api.create)
    monkeypatch.setattr(events, "post", api.post)
    monkeypatch.setattr(image_ctl, "core", lambda: FakeCore(api))
    monkeypatch.setattr(volume_ctl, "custom", lambda: FakeCustom(api))
    monkeypatch.setattr(volume_ctl, "_pvc", lambda ns, name: api.get(objects.GVR("", "v1", "persistentvolumeclaims",
                                                                                  "PersistentVolumeClaim"), ns, name))
    return api


@pytest.fixture
def resyncers():
    for r in (image_ctl.resyncer, volume_ctl.resyncer):
        r.start()
    yield
    for r in (image_ctl.resyncer, volume_ctl.resyncer):
        r.stop()


def call(handler, **kwargs):
    """A kopf handler, sync or async, called as kopf would."""
    result = handler(**kwargs)
    if inspect.isawaitable(result):
        asyncio.run(result)


def settle(*resyncers, guard: float = 60.0) -> None:
    """Wait until the re-sync queues have run everything queued (a guard against a hang only:
    nothing here depends on how long that takes)."""
    deadline = time.monotonic() + guard
    while any(len(r._queue) for r in resyncers):
        assert time.monotonic() < deadline, "a re-sync queue never drained"
        time.sleep(0.01)


def pvc(name: str, size: str = "1Gi") -> dict:
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name, "namespace": NS},
            "spec": {"storageClassName": "standard", "resources": {"requests": {"storage": size}}},
            "status": {"phase": "Bound", "capacity": {"storage": size}}}


def succeeded(dv: dict) -> dict:
    """CDI's import done at once (the simulator's import delay 0)."""
    return {**dv, "status": {"phase": "Succeeded", "progress": "100.0%", "claimName": dv["metadata"]["name"]}}


# ------------------------------------------------------------------------------ A. Image


def image() -> dict:
    return {"apiVersion": KS, "kind": "Image",
            "metadata": {"name": "cirros", "namespace": NS, "uid": "uid-img", "generation": 1},
            "spec": {"source": {"url": "https://example.com/c.img"}}}


def finish_import(fake: FakeAPI) -> None:
    """The DataVolume succeeds and its event arrives (kopf's DataVolume stream)."""
    dv = succeeded(fake.get(objects.DATA_VOLUME, NS, "cirros-image"))
    fake.put("persistentvolumeclaims", pvc("cirros-image", "10Gi"))
    fake.put("datavolumes", dv)
    call(image_ctl.image_data_volume_event, body=dv, type="MODIFIED")


def assert_active(fake: FakeAPI) -> None:
    status = fake.status("images", "cirros")
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert (status["status"], ready["status"], status["progress"]) == ("active", "True", "100.0%")


def test_an_import_finishing_while_the_image_is_created_leaves_it_active(fake, resyncers):
    fake.put("images", image())
    # the DataVolume succeeds just after the create handler made it, before it writes `queued`
    fake.after_create["datavolumes"] = lambda: finish_import(fake)
    call(image_ctl.image_create, body=image())
    settle(image_ctl.resyncer)
    assert_active(fake)
    # one Event per transition, none repeated
    assert fake.reasons("cirros") == ["Importing", "Queued", "Active"]


def test_an_import_finishing_while_the_image_is_resumed_leaves_it_active(fake, resyncers):
    # the operator restarts mid-import: Image importing, DataVolume in progress
    fake.put("images", {**image(), "status": {"status": "importing", "progress": "40.0%", "observedGeneration": 1}})
    dv = image_ctl.rendering.image_data_volume(image(), source_pvc=None)
    fake.put("datavolumes", {**dv, "status": {"phase": "ImportInProgress", "progress": "50.0%",
                                              "claimName": "cirros-image"}})
    # it succeeds just after the resume handler read it (at 50%), before that handler writes
    fake.after_get[("datavolumes", "cirros-image")] = lambda: finish_import(fake)
    call(image_ctl.image_create, body=image())
    settle(image_ctl.resyncer)
    assert_active(fake)
    assert fake.reasons("cirros") == ["Active"]


# ------------------------------------------------------------------------------ B. Volume


def attached_server(volumes: list[str]) -> dict:
    return {"apiVersion": KS, "kind": "Server",
            "metadata": {"name": "web", "namespace": NS, "uid": "uid-web"},
            "spec": {"flavor": "m1.small", "image": "cirros",
                     "blockDeviceMapping": [{"sourceType": "volume", "destinationType": "volume", "name": v}
                                            for v in volumes]},
            "status": {"virtualMachine": "web"}}


def test_a_detach_during_the_timer_s_refresh_is_not_overwritten_by_in_use(fake, resyncers, monkeypatch):
    volume = {"apiVersion": KS, "kind": "Volume",
              "metadata": {"name": "data", "namespace": NS, "uid": "uid-vol", "generation": 1},
              "spec": {"size": 1},
              "status": {"status": "attaching", "observedGeneration": 1, "pvc": "data-volume",
                         "dataVolume": "data-volume", "attachments": [{"server": "web"}]}}
    fake.put("volumes", volume)
    fake.put("datavolumes", succeeded({"apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "DataVolume",
                                       "metadata": {"name": "data-volume", "namespace": NS,
                                                    "ownerReferences": [{"kind": "Volume", "name": "data",
                                                                         "uid": "uid-vol"}]}}))
    fake.put("persistentvolumeclaims", pvc("data-volume"))
    disk = {"name": "data", "persistentVolumeClaim": {"claimName": "data-volume"}}
    fake.put("servers", attached_server(["data"]))
    fake.put("virtualmachines", {"metadata": {"name": "web", "namespace": NS,
                                              "labels": {"kubestack.io/server": "web"}},
                                 "spec": {"runStrategy": "Always", "template": {"spec": {"volumes": [disk]}}}})
    fake.put("virtualmachineinstances", {"metadata": {"name": "web", "namespace": NS},
                                         "spec": {"volumes": [disk]}, "status": {"phase": "Running"}})
    volume_ctl._SERVER_VOLUMES[(NS, "web")] = frozenset({"data"})

    def detach():
        """The user drops the volume from the server (its VM still holds it) right after the
        timer's refresh listed the servers; the informer and the server refresh see it at once."""
        before = fake.get(objects.kubestack("servers", "Server"), NS, "web")
        after = fake.put("servers", attached_server([]))
        volume_ctl.volume_server_event("MODIFIED", after, before)
        volume_ctl._refresh_for_server((NS, "web"))

    fake.after_list["servers"] = detach
    # detach() runs the server refresh itself, at that moment (standing in for its worker)
    monkeypatch.setattr(volume_ctl._server_refresh, "add", lambda key, delay=0.0: None)
    try:
        call(volume_ctl.volume_progress, body=fake.get(objects.kubestack("volumes", "Volume"), NS, "data"))
        settle(volume_ctl.resyncer)
    finally:
        volume_ctl._SERVER_VOLUMES.pop((NS, "web"), None)
        volume_ctl._touched.pop((NS, "web"), None)
    status = fake.status("volumes", "data")
    assert (status["status"], status["attachments"]) == ("detaching", [{"server": "web"}])
    # the refresh that read `in-use` wrote it, then the one after the detach `detaching`: each once
    assert fake.reasons("data") == ["VolumeInUse", "VolumeDetaching"]


def test_a_refused_extend_stays_error_extending(fake, resyncers, monkeypatch):
    """The same class within one handler: the refresh after a refused extend computed from the
    Volume read before the refusal wrote `extending` over `error_extending`."""
    fake.put("volumes", {"apiVersion": KS, "kind": "Volume",
                         "metadata": {"name": "data", "namespace": NS, "uid": "uid-vol", "generation": 2},
                         "spec": {"size": 2},
                         "status": {"status": "available", "observedGeneration": 1, "size": 1}})
    fake.put("datavolumes", succeeded({"apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "DataVolume",
                                       "metadata": {"name": "data-volume", "namespace": NS}}))
    fake.put("persistentvolumeclaims", pvc("data-volume"))
    monkeypatch.setattr(volume_ctl, "_storage_class",
                        lambda name: {"metadata": {"name": name}, "allowVolumeExpansion": False})
    call(volume_ctl.volume_reconcile, body=fake.get(objects.kubestack("volumes", "Volume"), NS, "data"))
    status = fake.status("volumes", "data")
    assert status["status"] == "error_extending"
    assert status["reason"].startswith("Extend refused: volume type standard does not allow")
    assert fake.reasons("data") == ["ExtendFailed"]
