"""The Network controller's usage timer against its change handlers: kopf runs the timer in
parallel with them, and a tick holding the Network from before a spec change used to patch the
NAD config and status.subnets back to the old spec after the update handler had written the new
ones (until the next tick, 30-40 s later). The handlers and the timer now sync the Network as
read under its lock. Replayed against an in-memory API with the controller's real handlers."""

from __future__ import annotations

import copy
import json
import threading

import pytest

from kubestack.controllers import network as network_ctl
from kubestack.k8s import objects

pytestmark = pytest.mark.unit

NS = "demo"
NETWORKS = objects.kubestack("networks", "Network")


class FakeAPI:
    """Networks and NADs by (namespace, name); `after_list` runs once, after a NAD listing
    has read its answer (the moment the other trigger can slip in)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.networks: dict[tuple[str, str], dict] = {}
        self.nads: dict[tuple[str, str], dict] = {}
        self.after_list = None
        self.custom = self
        self.ports = 0  # ports on the network (the status' allocated count)

    def get(self, gvr, namespace, name):
        assert gvr.plural == "networks"
        with self.lock:
            return copy.deepcopy(self.networks.get((namespace, name)))

    def list_cluster_custom_object(self, group, version, plural, label_selector=None):
        with self.lock:
            items = [copy.deepcopy(n) for n in self.nads.values()]
        hook, self.after_list = self.after_list, None
        if hook:
            hook()
        return {"items": items}

    def create(self, group, version, plural, ns, body):
        with self.lock:
            self.nads[(ns, body["metadata"]["name"])] = copy.deepcopy(body)
        return body, True

    def patch(self, group, version, plural, ns, name, patch):
        with self.lock:
            self.nads[(ns, name)]["spec"] = copy.deepcopy(patch["spec"])

    def patch_status(self, plural, ns, name, patch):
        with self.lock:
            status = self.networks[(ns, name)].setdefault("status", {})
            for key, value in patch.items():
                if value is None:
                    status.pop(key, None)
                else:
                    status[key] = copy.deepcopy(value)

    def network(self, cidr: str, mtu: int, generation: int) -> dict:
        """The user applies the Network with `cidr` and `mtu` (the status written so far kept)."""
        with self.lock:
            old = self.networks.get((NS, "net")) or {}
            body = {"apiVersion": "kubestack.io/v1alpha1", "kind": "Network",
                    "metadata": {"name": "net", "namespace": NS, "uid": "uid-net", "generation": generation},
                    "spec": {"mtu": mtu, "subnets": [{"name": "v4", "cidr": cidr}]}}
            if "status" in old:
                body["status"] = copy.deepcopy(old["status"])
            self.networks[(NS, "net")] = body
            return copy.deepcopy(body)

    def shown(self) -> tuple[int, list[str], int]:
        """(the NAD's MTU, status subnets, observedGeneration)."""
        with self.lock:
            (nad,) = self.nads.values()
            status = self.networks[(NS, "net")]["status"]
            return (json.loads(nad["spec"]["config"])["mtu"], [s["cidr"] for s in status["subnets"]],
                    status["observedGeneration"])


@pytest.fixture
def fake(monkeypatch):
    api = FakeAPI()
    monkeypatch.setattr(objects, "get", api.get)
    monkeypatch.setattr(network_ctl.k8s, "api", lambda: None)
    monkeypatch.setattr(network_ctl, "Kube", lambda _api: api)
    monkeypatch.setattr(network_ctl, "port_addresses", lambda kube, net: {"v4": api.ports})
    monkeypatch.setattr(network_ctl, "post", lambda *a, **k: None)
    return api


def handler_args(body: dict) -> dict:
    return {"body": body, "namespace": NS, "name": "net", "logger": None, "meta": body["metadata"],
            "spec": body["spec"]}


def test_fake_nad_carries_the_subnets(fake):
    network_ctl.network_sync(**handler_args(fake.network("10.0.0.0/24", 1450, 1)))
    assert fake.shown() == (1450, ["10.0.0.0/24"], 1)


def test_a_timer_tick_holding_the_old_network_does_not_undo_a_spec_change(fake):
    network_ctl.network_sync(**handler_args(fake.network("10.0.0.0/24", 1450, 1)))
    tick = fake.get(NETWORKS, NS, "net")  # the body the timer's tick holds
    network_ctl.network_sync(**handler_args(fake.network("10.0.1.0/24", 1400, 2)))  # the update handler
    assert fake.shown() == (1400, ["10.0.1.0/24"], 2)
    network_ctl.network_usage(**handler_args(tick))
    assert fake.shown() == (1400, ["10.0.1.0/24"], 2)


def test_an_update_during_a_timer_tick_is_written_after_it(fake):
    """The spec changes while a tick (which has a new count to write) is between listing the
    NADs and writing: the update handler, in its own thread as kopf runs it, waits for the
    tick, then writes the new spec; the tick's old subnets do not come last."""
    network_ctl.network_sync(**handler_args(fake.network("10.0.0.0/24", 1450, 1)))
    update: list[threading.Thread] = []

    def change_spec():
        fake.ports = 1
        body = fake.network("10.0.1.0/24", 1400, 2)
        t = threading.Thread(target=network_ctl.network_sync, kwargs=handler_args(body))
        t.start()
        update.append(t)
        # give an unserialised update the chance to finish first (the interleaving that lost
        # it); a serialised one waits for this tick, and this wait just runs out
        t.join(1.0)

    fake.after_list = change_spec
    network_ctl.network_usage(**handler_args(fake.get(NETWORKS, NS, "net")))
    update[0].join()
    assert fake.shown() == (1400, ["10.0.1.0/24"], 2)
