"""Stack controller (Heat): kopf's watch events feed a work queue whose workers run the
engine, `kubestack.stacks.reconcile.reconcile`.

Why `@kopf.on.event` + a work queue and not kopf's create/update handlers: kopf keeps the
last handled spec in an annotation, and a Stack's spec holds a whole template (up to the
256 KiB an object's annotations may total). Instead the engine keeps its own record in the
Secret ``<stack>-stack-state`` (`kubestack.stacks.state_secret`): the template set being
applied, the last one that completed, the action and what it has done so far.

A Stack is queued when its spec, annotations (signals), deletion or finalizers change (not
on the engine's own status writes), and whenever one of its children (labels
``kubestack.io/stack`` / ``kubestack.io/stack-namespace``) changes: a nested stack's Stack
too, status included.
"""

from __future__ import annotations

import functools

import kopf

from kubestack import API_GROUP, API_VERSION
from kubestack.k8s import objects
from kubestack.k8s.client import custom
from kubestack.orchestration import realize as rz
from kubestack.runtime import informer
from kubestack.runtime.metrics import instrumented
from kubestack.runtime.store import Store
from kubestack.runtime.workqueue import WorkQueue
from kubestack.stacks.kube import KubeCluster
from kubestack.stacks.reconcile import reconcile

store = Store("stacks")
cluster = KubeCluster(store)
queue: WorkQueue | None = None


@kopf.on.startup()
def stack_startup(**_) -> None:
    global queue
    queue = WorkQueue("stacks", functools.partial(reconcile, cluster), workers=4)
    queue.start()
    for obj in custom().list_cluster_custom_object(API_GROUP, API_VERSION, "stacks")["items"]:
        store.apply_event("ADDED", obj)
        queue.add((obj["metadata"]["namespace"], obj["metadata"]["name"]))


@kopf.on.cleanup()
def stack_cleanup(**_) -> None:
    if queue is not None:
        queue.stop()


@kopf.on.event(API_GROUP, API_VERSION, "stacks")
@instrumented("Stack")
def stack_event(type, body, **_) -> None:  # noqa: A002 - kopf's argument name
    previous = store.apply_event(type, body)
    if queue is None:
        return
    parent = (body["metadata"].get("labels") or {}).get(rz.STACK_LABEL)
    if parent:  # a nested stack: its parent waits for its status
        queue.add((body["metadata"]["namespace"], parent))
    if type == "DELETED":
        return
    if previous is not None and _same(previous, body):
        return  # our own status write
    queue.add((body["metadata"]["namespace"], body["metadata"]["name"]))


def _same(a: dict, b: dict) -> bool:
    ma, mb = a.get("metadata") or {}, b.get("metadata") or {}
    return (ma.get("generation") == mb.get("generation") and ma.get("annotations") == mb.get("annotations")
            and ma.get("deletionTimestamp") == mb.get("deletionTimestamp")
            and ma.get("finalizers") == mb.get("finalizers"))


def _child_event(kind: str):
    @instrumented(kind)
    def handler(type, body, **_) -> None:  # noqa: A002
        if queue is None:
            return
        meta = body.get("metadata") or {}
        lbl = meta.get("labels") or {}
        stack = lbl.get(rz.STACK_LABEL)
        ns = meta.get("namespace") or lbl.get(rz.STACK_NAMESPACE_LABEL)
        if stack and ns:
            queue.add((ns, stack))
    handler.__name__ = f"stack_child_{kind.lower()}_event"
    return handler


for _kind, (_av, _plural, _ns) in rz.KINDS.items():
    # Servers come from the shared informer (a boot storm's busiest stream; see
    # runtime/informer.py), nested Stacks through stack_event, the rest through kopf
    if _kind in ("Secret", "Server", "Stack"):
        continue
    kopf.on.event(API_GROUP, API_VERSION, _plural, labels={rz.STACK_LABEL: kopf.PRESENT})(_child_event(_kind))


@kopf.on.startup()
def _watch_servers(**_) -> None:
    on_child = _child_event("Server")
    servers = informer.shared(objects.kubestack("servers", "Server"))
    servers.add_handler(lambda _type, body, _previous: on_child(_type, body))
    servers.start()
