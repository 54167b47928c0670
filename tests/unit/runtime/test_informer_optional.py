"""runtime/informer.Informer (which the simulator watches through) for a resource that is not
served yet, or stops being served: against a fake API server (discovery, list, watch) in
memory. The same behaviour against the real API server: tests/integration/test_informer.py."""

from __future__ import annotations

import json
import queue
import threading
import time

import pytest

from kubestack.k8s.rest import ApiError
from kubestack.runtime import informer as informer_module
from kubestack.runtime.informer import Informer

GROUP = "/apis/example.com/v1"
PATH = f"{GROUP}/widgets"


class FakeStream:
    """A streaming watch response: lines put into it are read by the informer's thread."""

    def __init__(self) -> None:
        self.lines: queue.Queue = queue.Queue()

    def stream(self, amt=None, decode_content=False):
        while True:
            line = self.lines.get()
            if line is None:
                return
            yield (line + "\n").encode()

    def shutdown(self) -> None:
        self.lines.put(None)

    def release_conn(self) -> None:
        pass


class FakeServer:
    """Serves `widgets` of example.com/v1 while `served`; every request is recorded."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.served = False
        self.objects: dict[str, dict] = {}
        self.rv = 1
        self.watches: list[FakeStream] = []
        self.requests: list[str] = []

    def obj(self, name: str) -> dict:
        with self.lock:
            self.rv += 1
            o = {"metadata": {"name": name, "namespace": "ns", "uid": f"uid-{name}-{self.rv}",
                              "resourceVersion": str(self.rv)}}
            self.objects[name] = o
            return o

    def install(self, *names: str) -> None:
        for name in names:
            self.obj(name)
        self.served = True

    def uninstall(self) -> None:
        """The CRD goes: its objects are deleted (the watchers told), then it is not served."""
        with self.lock:
            self.served = False
            gone, self.objects = list(self.objects.values()), {}
            watches, self.watches = self.watches, []
        for w in watches:
            for o in gone:
                w.lines.put(json.dumps({"type": "DELETED", "object": {"kind": "Widget", **o}}))
            w.shutdown()

    def add(self, name: str) -> None:
        o = self.obj(name)
        for w in list(self.watches):
            w.lines.put(json.dumps({"type": "ADDED", "object": {"kind": "Widget", "apiVersion": "example.com/v1", **o}}))

    def request(self, api, method, path, *, query=None, body=None, content_type=None, timeout=None, stream=False):
        query = dict(query or [])
        self.requests.append("watch" if query.get("watch") else ("discovery" if path == GROUP else "list"))
        if path == GROUP:
            if not self.served:
                raise ApiError(404, "the server could not find the requested resource", "NotFound")
            return {"resources": [{"name": "widgets"}, {"name": "widgets/status"}]}
        assert path == PATH
        if not self.served:
            raise ApiError(404, "the server could not find the requested resource", "NotFound")
        if query.get("watch"):
            w = FakeStream()
            with self.lock:
                self.watches.append(w)
            return w
        with self.lock:
            return {"metadata": {"resourceVersion": str(self.rv)},
                    "items": [json.loads(json.dumps(o)) for o in self.objects.values()]}


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.cond = threading.Condition()

    def __call__(self, etype: str, obj: dict, previous: dict | None) -> None:
        with self.cond:
            self.events.append((etype, obj["metadata"]["name"]))
            self.cond.notify_all()

    def wait_for(self, *events: tuple[str, str], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        with self.cond:
            while not set(events) <= set(self.events):
                left = deadline - time.monotonic()
                if left <= 0:
                    pytest.fail(f"no {events} within {timeout}s; saw {self.events}")
                self.cond.wait(left)


@pytest.fixture
def server(monkeypatch) -> FakeServer:
    fake = FakeServer()
    monkeypatch.setattr(informer_module, "api_request", fake.request)
    return fake


def until(check, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail("condition not met")
        time.sleep(0.01)


def widgets(optional: bool) -> Informer:
    return Informer(object(), "example.com/v1", "widgets", "Widget", optional=optional, recheck=0.05)


def test_an_optional_informer_is_synced_and_empty_until_its_resource_is_served(server):
    inf = widgets(optional=True)
    seen = Recorder()
    inf.add_handler(seen)
    inf.start()
    try:
        assert inf.wait_synced(5)
        assert inf.served is False and inf.subresources == frozenset() and len(inf.store) == 0
        assert "list" not in server.requests  # discovery said no: nothing to list
        server.install("a")
        seen.wait_for(("ADDED", "a"))
        assert inf.served is True and inf.subresources == {"status"}
        stored = inf.store.get("ns", "a")
        assert stored["kind"] == "Widget" and stored["apiVersion"] == "example.com/v1"
        server.add("b")
        seen.wait_for(("ADDED", "b"))
        # a handler added late is told what is there, as ever
        late = Recorder()
        inf.add_handler(late)
        assert sorted(late.events) == [("ADDED", "a"), ("ADDED", "b")]
    finally:
        inf.stop()
    assert not inf._thread.is_alive()


def test_an_optional_informer_waits_again_when_its_resource_goes_and_relists_when_back(server):
    server.install("a", "b")
    inf = widgets(optional=True)
    seen = Recorder()
    inf.add_handler(seen)
    inf.start()
    try:
        assert inf.wait_synced(5)
        seen.wait_for(("ADDED", "a"), ("ADDED", "b"))
        until(lambda: server.watches)
        server.uninstall()
        seen.wait_for(("DELETED", "a"), ("DELETED", "b"))
        until(lambda: inf.served is False)
        assert len(inf.store) == 0 and inf.wait_synced(0)
        server.install("c")
        seen.wait_for(("ADDED", "c"))
        assert inf.served is True and [o["metadata"]["name"] for o in inf.store.list()] == ["c"]
    finally:
        inf.stop()


def test_a_gone_resource_keeps_the_store_and_a_relist_reports_what_vanished(server):
    """Served again with other objects, and no DELETED seen meanwhile: the relist tells."""
    server.install("a", "b")
    inf = widgets(optional=True)
    seen = Recorder()
    inf.add_handler(seen)
    inf.start()
    try:
        seen.wait_for(("ADDED", "a"), ("ADDED", "b"))
        until(lambda: server.watches)
        with server.lock:  # not served any more, without telling the watchers about the objects
            server.served = False
            watches, server.watches = server.watches, []
        for w in watches:
            w.shutdown()
        until(lambda: inf.served is False)
        assert {o["metadata"]["name"] for o in inf.store.list()} == {"a", "b"}  # kept meanwhile
        with server.lock:
            del server.objects["a"]
        server.add("c")
        server.served = True
        seen.wait_for(("DELETED", "a"), ("ADDED", "c"))
        assert {o["metadata"]["name"] for o in inf.store.list()} == {"b", "c"}
    finally:
        inf.stop()


def test_a_required_informer_is_not_synced_while_its_resource_is_not_served(server):
    inf = widgets(optional=False)
    inf.start()
    try:
        assert not inf.wait_synced(0.3)
        assert "discovery" not in server.requests and inf.served is None
        server.install("a")
        assert inf.wait_synced(5)  # retried, as before
        assert inf.served is True and inf.store.get("ns", "a") is not None
    finally:
        inf.stop()
