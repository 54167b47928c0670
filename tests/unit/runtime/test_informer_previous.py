"""runtime/informer.Informer: a handler's `previous` is the copy the handlers were last given,
whatever a writer folded into the Store meanwhile.

The Server controller folds its status PATCH responses into the shared Server informer's Store
(`ApiCluster.patch_status`), and its creates and GETs on a miss as ADDED. When the watch event
of that same resourceVersion arrived, the informer passed the folded copy as `previous`: equal
to the event's object, so every other handler saw no change (a FloatingIP naming a pod-network
server never saw the pod address arrive), and a server first seen through a fold was never
ADDED. Events are fed to `_dispatch` directly, as the watch thread would: no API server."""

from __future__ import annotations

import copy

import pytest

from kubestack.network.association import FloatingIPIndex
from kubestack.runtime.informer import Informer

pytestmark = pytest.mark.unit

NS = "demo"


class Seen:
    def __init__(self) -> None:
        self.events: list[tuple[str, str | None, str | None]] = []  # (type, rv, previous rv)

    def __call__(self, etype: str, obj: dict, previous: dict | None) -> None:
        self.events.append((etype, obj["metadata"]["resourceVersion"],
                            previous["metadata"]["resourceVersion"] if previous is not None else None))


def server(rv: int, pod: str | None = None, name: str = "web") -> dict:
    body = {"apiVersion": "kubestack.io/v1alpha1", "kind": "Server",
            "metadata": {"name": name, "namespace": NS, "uid": f"uid-{name}", "resourceVersion": str(rv)},
            "spec": {"flavor": "m1.small", "image": "cirros"}, "status": {"status": "BUILD"}}
    if pod:
        body["status"]["addresses"] = {"pod": [{"addr": pod, "type": "fixed"}]}
    return body


def informer() -> Informer:
    return Informer(None, "kubestack.io/v1alpha1", "servers", "Server")  # never started: no API calls


def watch(inf: Informer, etype: str, obj: dict) -> None:
    """A watch event: freshly parsed, as the informer's thread hands it over."""
    inf._dispatch(etype, copy.deepcopy(obj))


def test_a_folded_status_write_still_shows_the_change_to_the_handlers():
    inf, seen = informer(), Seen()
    inf.add_handler(seen)
    watch(inf, "ADDED", server(1))
    # the Server controller writes the pod address and folds the PATCH response in
    inf.store.apply_event("MODIFIED", server(2, pod="10.244.0.7"))
    watch(inf, "MODIFIED", server(2, pod="10.244.0.7"))
    assert seen.events == [("ADDED", "1", None), ("MODIFIED", "2", "1")]


def test_a_floating_ip_on_a_pod_network_server_sees_the_folded_address_arrive():
    """The consumer the review found: FloatingIPIndex.server_event compares the pod address
    of `previous` and the event's object."""
    index, queued = FloatingIPIndex(), []
    index.floating_ip_event("ADDED", {"metadata": {"name": "fip", "namespace": NS, "uid": "f1"},
                                      "spec": {"floatingNetwork": "admin/public", "server": "web"}}, None)
    inf = informer()
    inf.add_handler(lambda etype, body, previous: queued.append(index.server_event(etype, body, previous)))
    watch(inf, "ADDED", server(1))
    inf.store.apply_event("MODIFIED", server(2, pod="10.244.0.7"))
    watch(inf, "MODIFIED", server(2, pod="10.244.0.7"))
    assert queued == [{(NS, "fip")}, {(NS, "fip")}]


def test_an_object_first_folded_in_is_added_when_its_event_comes():
    inf, seen = informer(), Seen()
    inf.add_handler(seen)
    inf.store.apply_event("ADDED", server(1))  # a create's response, or a GET on a miss
    watch(inf, "ADDED", server(1))
    assert seen.events == [("ADDED", "1", None)]


def test_a_stale_event_is_skipped_and_the_next_one_compares_with_what_was_dispatched():
    inf, seen = informer(), Seen()
    inf.add_handler(seen)
    watch(inf, "ADDED", server(1))
    inf.store.apply_event("MODIFIED", server(3, pod="10.244.0.7"))  # folded, ahead of the watch
    watch(inf, "MODIFIED", server(2))  # older than the Store's copy: skipped
    watch(inf, "MODIFIED", server(3, pod="10.244.0.7"))
    watch(inf, "DELETED", server(4, pod="10.244.0.7"))
    assert seen.events == [("ADDED", "1", None), ("MODIFIED", "3", "1"), ("DELETED", "4", "3")]
    assert inf.store.get(NS, "web") is None


def test_a_late_handler_is_told_what_the_others_were_told():
    inf = informer()
    inf.add_handler(Seen())
    watch(inf, "ADDED", server(1))
    inf._mark_synced()
    inf.store.apply_event("MODIFIED", server(2, pod="10.244.0.7"))
    inf.store.apply_event("ADDED", server(1, name="db"))  # folded in, no event yet
    late = Seen()
    inf.add_handler(late)
    assert late.events == [("ADDED", "1", None)]
    watch(inf, "MODIFIED", server(2, pod="10.244.0.7"))
    watch(inf, "ADDED", server(1, name="db"))
    assert late.events == [("ADDED", "1", None), ("MODIFIED", "2", "1"), ("ADDED", "1", None)]
