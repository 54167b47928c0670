"""The default classes the simulator creates: the StorageClasses at start-up, the
VolumeSnapshotClass at start-up if its resource is served, or once it becomes served later (the
snapshot CRDs installed after the simulator started); created once per becoming served, so a
class the user edits or deletes meanwhile is left so. No API server: POSTs are recorded."""

from __future__ import annotations

import pytest

from kubestack.k8s.rest import ApiError
from kubestack.simulator import main, storage
from kubestack.simulator.main import Simulator

CLASSES = "/apis/snapshot.storage.k8s.io/v1/volumesnapshotclasses"


@pytest.fixture
def posts(monkeypatch):
    sent: list[tuple[str, str]] = []
    fail: list[ApiError] = []

    def fake(api, method, path, body=None, **kw):
        assert method == "POST"
        if fail:
            raise fail.pop(0)
        sent.append((path, body["metadata"]["name"]))
        return body

    monkeypatch.setattr(main, "api_request", fake)
    fake.sent, fake.fail = sent, fail
    return fake


def _sim(served: bool) -> Simulator:
    sim = Simulator(api=None, workers=1)
    for informer in sim.informers.values():
        informer.served = True
    sim.informers["VolumeSnapshotClass"].served = served
    return sim


def test_served_at_start_up(posts):
    sim = _sim(served=True)
    sim._ensure_defaults()
    assert [n for _, n in posts.sent] == ["standard", "fast-ssd", storage.SNAPSHOT_CLASS]
    posts.sent.clear()
    sim._ensure_late_defaults()
    assert posts.sent == []  # already made at start-up


def test_served_after_start_up_then_created_once(posts):
    sim = _sim(served=False)
    sim._ensure_defaults()
    assert [n for _, n in posts.sent] == ["standard", "fast-ssd"]
    posts.sent.clear()
    sim._ensure_late_defaults()
    assert posts.sent == []  # still not served

    sim.informers["VolumeSnapshotClass"].served = True  # the CRD is installed
    sim._ensure_late_defaults()
    assert posts.sent == [(CLASSES, storage.SNAPSHOT_CLASS)]
    # the user deletes (or edits) it: nothing comes back while the resource stays served
    sim._ensure_late_defaults()
    sim._ensure_late_defaults()
    assert posts.sent == [(CLASSES, storage.SNAPSHOT_CLASS)]

    # the CRD removed and installed again: its classes went with it, so it is made again
    sim.informers["VolumeSnapshotClass"].served = False
    sim._ensure_late_defaults()
    sim.informers["VolumeSnapshotClass"].served = True
    sim._ensure_late_defaults()
    assert posts.sent == [(CLASSES, storage.SNAPSHOT_CLASS)] * 2


def test_a_class_that_exists_when_it_becomes_served_is_kept(posts):
    sim = _sim(served=False)
    sim._ensure_defaults()
    posts.sent.clear()
    mine = {**storage.default_snapshot_class(), "deletionPolicy": "Retain"}
    sim.cache["VolumeSnapshotClass"][storage.SNAPSHOT_CLASS] = mine  # listed already
    sim.informers["VolumeSnapshotClass"].served = True
    sim._ensure_late_defaults()
    assert posts.sent == []
    # not listed yet: the create is refused with 409, and theirs stays
    sim2 = _sim(served=False)
    sim2._ensure_defaults()
    posts.sent.clear()
    posts.fail.append(ApiError(409, "already exists", "AlreadyExists"))
    sim2.informers["VolumeSnapshotClass"].served = True
    sim2._ensure_late_defaults()
    sim2._ensure_late_defaults()
    assert posts.sent == [] and posts.fail == []


def test_a_failed_create_is_tried_again(posts):
    sim = _sim(served=False)
    sim._ensure_defaults()
    posts.sent.clear()
    sim.informers["VolumeSnapshotClass"].served = True
    posts.fail.append(ApiError(500, "etcd is sulking", "InternalError"))
    with pytest.raises(ApiError):
        sim._ensure_late_defaults()
    sim._ensure_late_defaults()
    assert posts.sent == [(CLASSES, storage.SNAPSHOT_CLASS)]
