"""Router controller: references checked (the gateway network must be external, interface
networks reachable by the project and holding the subnet), then the router is reported DOWN
with a reason — no network provider kubestack renders today can realise a Neutron router
(OVN-Kubernetes layer2 secondary networks have no router or SNAT towards another network), so
it is modelled, not realised, and says so rather than pretending (`network.binding`).

A Router is checked again when a network it names appears, goes or changes, not only when the
Router itself does (a GitOps apply creates a router with, often before, its networks): Network
events queue a re-sync of the Routers naming it, found in `binding.RouterIndex`. The Router's
own create and spec changes stay with kopf; the queue re-syncs only Routers kopf has synced
once, and one Router is never synced by two threads at once.

A Router in ERROR carries kstatus' Stalled unless it waits for a network or subnet still to
come (`network.faults`); a valid Router's DOWN (not realised) is not an error and not Stalled.
"""

from __future__ import annotations

import kopf
from kubernetes.client.rest import ApiException

from kubestack.k8s import client as k8s
from kubestack.k8s import objects
from kubestack.k8s.events import WARNING, post
from kubestack.k8s.objects import status_diff
from kubestack.network import binding
from kubestack.network.faults import ready_conditions
from kubestack.network.kube import Kube
from kubestack.runtime.metrics import instrumented
from kubestack.runtime.resync import Resyncer

ROUTERS = objects.kubestack("routers", "Router")

index = binding.RouterIndex()


def _sync(body, namespace, name) -> None:
    kube = Kube(k8s.api())
    spec, status = body.get("spec") or {}, body.get("status") or {}
    gen = body["metadata"].get("generation")
    networks = {key: kube.ours("networks", *key) for key in binding.router_networks(spec, namespace)}
    state, reason, stalled = binding.router_state(spec, namespace, networks)
    condition = "NotRealised" if state == binding.DOWN else "InvalidReference"
    desired = {"status": state, "reason": reason, "observedGeneration": gen,
               "conditions": ready_conditions(status.get("conditions"), False, condition, reason, gen,
                                              stalled=stalled)}
    patch = status_diff(status, desired)
    if patch:
        kube.patch_status("routers", namespace, name, patch)
        post(dict(body), WARNING, condition, reason)


resyncer = Resyncer(ROUTERS, _sync, workers=1)


@kopf.on.resume("kubestack.io", "v1alpha1", "routers")
@kopf.on.create("kubestack.io", "v1alpha1", "routers")
@kopf.on.update("kubestack.io", "v1alpha1", "routers", field="spec")
@instrumented("Router")
def router_sync(namespace, name, **_):
    try:
        resyncer.sync_current(namespace, name)
    except ApiException as exc:
        raise kopf.TemporaryError(f"API error: {exc.reason}", delay=5)


# ------------------------------------------------------------------ related objects' events


@kopf.on.event("kubestack.io", "v1alpha1", "routers")
@instrumented("Router")
async def router_index_event(type, body, **_):  # noqa: A002 - kopf's argument name
    """Keep the index; a Router in ERROR while all its networks exist is checked again."""
    if index.router_event(type, body):
        resyncer.add([(body["metadata"]["namespace"], body["metadata"]["name"])])


@kopf.on.event("kubestack.io", "v1alpha1", "networks")
@instrumented("Router")
async def router_network_event(type, body, **_):  # noqa: A002 - kopf's argument name
    """A network came, went or changed: the Routers naming it are checked again."""
    resyncer.add(index.network_event(type, body))


@kopf.on.startup()
def router_startup(**_) -> None:
    resyncer.start()


@kopf.on.cleanup()
def router_cleanup(**_) -> None:
    resyncer.stop()
