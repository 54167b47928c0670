"""Server controller: kopf watches feed in-memory stores and a work queue; the reconcile
itself is `kubestack.compute.reconciler.ServerReconciler`.

Why not kopf's on.create/on.update handlers: those write progress and diff-base annotations
and a finalizer on every Server, three extra API writes per boot and a deletion that hangs
while the operator is down. Servers need none of it: the reconcile is level-triggered and
idempotent, the claim is durable in `status.host`, and what a Server creates is owned by it
(owner references), so the real garbage collector cleans up after a delete.

Start-up order matters for correctness: the host cache is rebuilt from every Node and every
scheduled Server before the first reconcile, so no decision is taken on a partial view.
"""

from __future__ import annotations

import base64
import logging
import os
from collections.abc import Mapping
from typing import Any

import kopf
from kubernetes.client.rest import ApiException

from kubestack import API_GROUP, API_VERSION
from kubestack.compute.reconciler import RESERVATION_LABEL, ServerReconciler
from kubestack.compute.render import SERVER_LABEL
from kubestack.compute.vmactions import Backend, VMActions
from kubestack.k8s import events, objects
from kubestack.k8s.client import api, core, custom
from kubestack.runtime import state
from kubestack.runtime.metrics import instrumented
from kubestack.runtime.store import Store
from kubestack.runtime.workqueue import Requeue, WorkQueue
from kubestack.scheduler import HostCache, Scheduler, SchedulerConfig

log = logging.getLogger(__name__)

SERVERS = objects.kubestack("servers", "Server")
FLAVORS = objects.kubestack("flavors", "Flavor")
IMAGES = objects.kubestack("images", "Image")
KEYPAIRS = objects.kubestack("keypairs", "KeyPair")
SERVER_GROUPS = objects.kubestack("servergroups", "ServerGroup")

stores = {kind: Store(kind) for kind in (
    "servers", "flavors", "images", "keypairs", "servergroups", "vms", "vmis", "vmims", "nodes",
    "floatingips")}


def _scheduler_config() -> SchedulerConfig:
    path = os.environ.get("KUBESTACK_SCHEDULER_CONFIG")
    if not path or not os.path.exists(path):
        return SchedulerConfig()
    import yaml

    with open(path) as f:
        return SchedulerConfig.model_validate(yaml.safe_load(f) or {})


class ApiCluster:
    """The reconciler's `Cluster` port on the real API server: reads from the watch stores
    (confirmed by a GET on a miss, since a watch may lag a create), writes with the client."""

    def _get(self, store: str, gvr: objects.GVR, namespace: str | None, name: str) -> dict | None:
        found = stores[store].get(namespace, name)
        if found is None:
            found = objects.get(gvr, namespace, name)
            if found is not None:
                stores[store].apply_event("ADDED", found)
        return found

    def flavor(self, name: str) -> dict | None:
        return self._get("flavors", FLAVORS, None, name)

    def image(self, namespace: str, name: str) -> dict | None:
        return self._get("images", IMAGES, namespace, name)

    def keypair(self, namespace: str, name: str) -> dict | None:
        return self._get("keypairs", KEYPAIRS, namespace, name)

    def server_group(self, namespace: str, name: str) -> dict | None:
        return self._get("servergroups", SERVER_GROUPS, namespace, name)

    def server(self, namespace: str, name: str) -> dict | None:
        return self._get("servers", SERVERS, namespace, name)

    def node(self, name: str) -> dict | None:
        return stores["nodes"].get(None, name)

    def vm(self, namespace: str, name: str) -> dict | None:
        return stores["vms"].get(namespace, name)

    def vmi(self, namespace: str, name: str) -> dict | None:
        return stores["vmis"].get(namespace, name)

    def migration(self, namespace: str, name: str) -> dict | None:
        return self._get("vmims", objects.VMIM, namespace, name)

    def secret_value(self, namespace: str, name: str, key: str) -> str | None:
        try:
            secret = core().read_namespaced_secret(name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        value = (secret.data or {}).get(key)
        return base64.b64decode(value).decode() if value is not None else None

    def floating_ips(self, namespace: str, server: str) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for fip in stores["floatingips"].list(lambda f: f["metadata"]["namespace"] == namespace and (
                f.get("status") or {}).get("server") == server):
            st = fip["status"]
            if st.get("fixedIpAddress") and st.get("floatingIpAddress") and st.get("status") == "ACTIVE":
                out.setdefault(st["fixedIpAddress"], []).append(st["floatingIpAddress"])
        return out

    def reservation_members(self, namespace: str, name: str) -> list[dict]:
        return stores["servers"].list(lambda s: s["metadata"]["namespace"] == namespace and (
            s["metadata"].get("labels") or {}).get(RESERVATION_LABEL) == name)

    def disks(self, server: Mapping[str, Any], root_size_gib: int):
        from kubestack.storage.disks import ensure_server_disks

        return ensure_server_disks(api(), dict(server), root_size_gib=root_size_gib or None)

    def ports(self, server: Mapping[str, Any]) -> list:
        from kubestack.network.ports import allocate_server_ports

        return allocate_server_ports(api(), dict(server))

    def create(self, obj: dict) -> dict:
        ns = obj["metadata"].get("namespace")
        if obj["kind"] == "Secret":
            try:
                core().create_namespaced_secret(ns, obj)
            except ApiException as exc:
                if exc.status != 409:
                    raise
            return obj
        gvr = {"VirtualMachine": objects.VM, "VirtualMachineInstanceMigration": objects.VMIM,
               "Server": SERVERS}[obj["kind"]]
        created, _ = objects.create(gvr, ns, obj)
        store = {"VirtualMachine": "vms", "VirtualMachineInstanceMigration": "vmims", "Server": "servers"}[obj["kind"]]
        stores[store].apply_event("ADDED", created)
        return created

    def patch_vm(self, namespace: str, name: str, patch: dict) -> dict:
        vm = objects.patch(objects.VM, namespace, name, patch)
        stores["vms"].apply_event("MODIFIED", vm)
        return vm

    def delete_vm(self, namespace: str, name: str) -> None:
        objects.delete(objects.VM, namespace, name)

    def delete_vmi(self, namespace: str, name: str) -> None:
        objects.delete(objects.VMI, namespace, name)

    def patch_status(self, namespace: str, name: str, status: dict) -> None:
        updated = objects.patch_status(SERVERS, namespace, name, status)
        stores["servers"].apply_event("MODIFIED", updated)

    def event(self, obj: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        events.post(obj, type_, reason, message)


class ServerController:
    def __init__(self) -> None:
        config = _scheduler_config()
        self.cache = HostCache(config)
        self.scheduler = Scheduler(self.cache, config)
        backend = os.environ.get("KUBESTACK_VM_ACTIONS", Backend.SUBRESOURCE.value)
        self.cluster = ApiCluster()
        self.reconciler = ServerReconciler(self.cluster, self.scheduler, VMActions(api(), backend),
                                           quota=state.quota_ledger())
        self.queue = WorkQueue("servers", self.reconcile_key,
                               workers=int(os.environ.get("KUBESTACK_SERVER_WORKERS", "8")))

    def reconcile_key(self, key: tuple[str, str]) -> None:
        server = stores["servers"].get(*key)
        if server is None:
            return
        out = self.reconciler.reconcile(server)
        patch = objects.status_diff(server.get("status"), out.status)
        if patch:
            try:
                self.cluster.patch_status(key[0], key[1], patch)
            except ApiException as exc:
                if exc.status == 404:  # deleted meanwhile: its claims go with the DELETED event
                    return
                raise
        for type_, reason, message in out.events:
            self.cluster.event(server, type_, reason, message)
        if out.requeue_after is not None:
            raise Requeue(out.requeue_after)

    def servers_where(self, predicate) -> list[tuple[str, str]]:
        return [(s["metadata"]["namespace"], s["metadata"]["name"]) for s in stores["servers"].list(predicate)]

    def enqueue_waiting(self, namespace: str | None = None) -> None:
        """Servers that may be waiting for a reference (not scheduled yet, or in ERROR)."""
        for key in self.servers_where(lambda s: (namespace is None or s["metadata"]["namespace"] == namespace)
                                      and not (s.get("status") or {}).get("host")):
            self.queue.add(key)

    def start(self) -> None:
        """Fill the stores and rebuild the host cache from the cluster, then start workers."""
        listing = {
            "nodes": lambda: api().sanitize_for_serialization(core().list_node()),
            "flavors": lambda: custom().list_cluster_custom_object(API_GROUP, API_VERSION, "flavors"),
            "images": lambda: custom().list_cluster_custom_object(API_GROUP, API_VERSION, "images"),
            "keypairs": lambda: custom().list_cluster_custom_object(API_GROUP, API_VERSION, "keypairs"),
            "servergroups": lambda: custom().list_cluster_custom_object(API_GROUP, API_VERSION, "servergroups"),
            "servers": lambda: custom().list_cluster_custom_object(API_GROUP, API_VERSION, "servers"),
            "floatingips": lambda: custom().list_cluster_custom_object(API_GROUP, API_VERSION, "floatingips"),
            "vms": lambda: custom().list_cluster_custom_object("kubevirt.io", "v1", "virtualmachines"),
            "vmis": lambda: custom().list_cluster_custom_object("kubevirt.io", "v1", "virtualmachineinstances"),
        }
        for kind, fn in listing.items():
            stores[kind].replace_all(fn()["items"])
        for node in stores["nodes"].list():
            self.cache.upsert_node(node)
        for server in stores["servers"].list():
            self.reconciler.record_claim(server)
        log.info("server controller: %d hosts, %d servers, %d claims", len(self.cache),
                 len(stores["servers"]), len(self.cache.instances()))
        self.queue.start()
        for key in self.servers_where(None):
            self.queue.add(key)


controller: ServerController | None = None


@kopf.on.startup()
def _start(**_) -> None:
    global controller
    controller = ServerController()
    controller.start()


@kopf.on.cleanup()
def _stop(**_) -> None:
    if controller is not None:
        controller.queue.stop()


@kopf.on.event(API_GROUP, API_VERSION, "servers")
@instrumented("Server")
def server_event(type, body, **_) -> None:  # noqa: A002 - kopf's argument name
    if controller is None:
        return
    previous = stores["servers"].apply_event(type, body)
    meta = body["metadata"]
    if type == "DELETED":
        controller.reconciler.forget(body)
        return
    if previous is None:
        controller.reconciler.record_claim(dict(body))
    controller.queue.add((meta["namespace"], meta["name"]))


def _referenced_by_waiting_servers(store: str):
    @instrumented(store)
    def handler(type, body, **_) -> None:  # noqa: A002
        stores[store].apply_event(type, body)
        if controller is not None and type != "DELETED":
            controller.enqueue_waiting(body["metadata"].get("namespace"))
    handler.__name__ = f"{store}_event"
    return handler


for _plural in ("flavors", "images", "keypairs", "servergroups"):
    kopf.on.event(API_GROUP, API_VERSION, _plural)(_referenced_by_waiting_servers(_plural))


def _owned(store: str):
    @instrumented(store)
    def handler(type, body, **_) -> None:  # noqa: A002
        stores[store].apply_event(type, body)
        if controller is None:
            return
        meta = body["metadata"]
        server = (meta.get("labels") or {}).get(SERVER_LABEL) or (
            (body.get("spec") or {}).get("vmiName") if store == "vmims" else meta["name"])
        if server:
            controller.queue.add((meta["namespace"], server))
    handler.__name__ = f"{store}_event"
    return handler


kopf.on.event("kubevirt.io", "v1", "virtualmachines")(_owned("vms"))


@kopf.on.event(API_GROUP, API_VERSION, "floatingips")
@instrumented("Server")
def floating_ip_event(type, body, **_) -> None:  # noqa: A002 - kopf's argument name
    """A floating IP (dis)associated: the Server's Networks column shows it, as Nova's does."""
    previous = stores["floatingips"].apply_event(type, body)
    if controller is None:
        return
    for fip in (previous, body):
        server = ((fip or {}).get("status") or {}).get("server")
        if server:
            controller.queue.add((body["metadata"]["namespace"], server))
kopf.on.event("kubevirt.io", "v1", "virtualmachineinstances")(_owned("vmis"))
kopf.on.event("kubevirt.io", "v1", "virtualmachineinstancemigrations")(_owned("vmims"))


@kopf.on.event("v1", "nodes")
@instrumented("Node")
def node_event(type, body, **_) -> None:  # noqa: A002
    previous = stores["nodes"].apply_event(type, body)
    if controller is None:
        return
    name = body["metadata"]["name"]
    if type == "DELETED":
        controller.cache.remove_node(name)
        return
    controller.cache.upsert_node(body)
    if previous is None or _ready(previous) != _ready(body):
        # a host went down or came back: its servers may need evacuating or recovering
        for key in controller.servers_where(lambda s: (s.get("status") or {}).get("host") == name):
            controller.queue.add(key)
        controller.enqueue_waiting()


def _ready(node: Mapping[str, Any]) -> bool:
    for cond in (node.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return cond.get("status") == "True"
    return False
