"""Server controller: informers feed in-memory stores and a work queue; the reconcile itself
is `kubestack.compute.reconciler.ServerReconciler`.

Why not kopf's on.create/on.update handlers: those write progress and diff-base annotations
and a finalizer on every Server, three extra API writes per boot and a deletion that hangs
while the operator is down. Servers need none of it: the reconcile is level-triggered and
idempotent, the claim is durable in `status.host`, and what a Server creates is owned by it
(owner references), so the real garbage collector cleans up after a delete.

Why not kopf's on.event either: a booting server makes about nine watch events (Server, VM,
VMI), and kopf's per-event machinery cost more CPU than the reconcile; plain informer threads
(`runtime/informer.py`) only update a store and queue a key.

Start-up order matters for correctness: the host cache is rebuilt from every Node and every
scheduled Server once every informer has listed, before the first reconcile, so no decision
is taken on a partial view.
"""

from __future__ import annotations

import base64
import logging
import os
import threading
from collections.abc import Mapping
from typing import Any

import kopf
from kubernetes.client.rest import ApiException

from kubestack.compute.reconciler import RESERVATION_LABEL, ServerReconciler
from kubestack.compute.render import SERVER_LABEL
from kubestack.compute.references import PORT_NOT_READY
from kubestack.compute.vmactions import Backend, VMActions
from kubestack.compute.zones import operator_namespace
from kubestack.controllers.zones import ZonePublisher
from kubestack.k8s import events, objects
from kubestack.k8s.client import api, core
from kubestack.k8s.conditions import find_condition
from kubestack.runtime import informer, state
from kubestack.runtime.store import Store
from kubestack.runtime.workqueue import Requeue, WorkQueue
from kubestack.scheduler import HostCache, Scheduler, SchedulerConfig

log = logging.getLogger(__name__)

SERVERS = objects.kubestack("servers", "Server")
FLAVORS = objects.kubestack("flavors", "Flavor")
IMAGES = objects.kubestack("images", "Image")
KEYPAIRS = objects.kubestack("keypairs", "KeyPair")
SERVER_GROUPS = objects.kubestack("servergroups", "ServerGroup")
FLOATING_IPS = objects.kubestack("floatingips", "FloatingIP")
NETWORKS = objects.kubestack("networks", "Network")
PORTS = objects.kubestack("ports", "Port")
SECURITY_GROUPS = objects.kubestack("securitygroups", "SecurityGroup")
# store name -> what the shared informer filling it watches
WATCHED = {"servers": SERVERS, "flavors": FLAVORS, "images": IMAGES, "keypairs": KEYPAIRS,
           "servergroups": SERVER_GROUPS, "floatingips": FLOATING_IPS, "nodes": objects.NODE,
           "vms": objects.VM, "vmis": objects.VMI, "vmims": objects.VMIM, "networks": NETWORKS,
           "ports": PORTS, "securitygroups": SECURITY_GROUPS}


class ApiCluster:
    """The reconciler's `Cluster` port on the real API server: reads from the informers' stores
    (confirmed by a GET on a miss, since a watch may lag a create), writes with the client."""

    def __init__(self, stores: Mapping[str, Store]):
        self.stores = stores

    def _get(self, store: str, gvr: objects.GVR, namespace: str | None, name: str) -> dict | None:
        found = self.stores[store].get(namespace, name)
        if found is None:
            found = objects.get(gvr, namespace, name)
            if found is not None:
                self.stores[store].apply_event("ADDED", found)
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
        return self.stores["nodes"].get(None, name)

    def vm(self, namespace: str, name: str) -> dict | None:
        return self.stores["vms"].get(namespace, name)

    def vmi(self, namespace: str, name: str) -> dict | None:
        return self.stores["vmis"].get(namespace, name)

    def migration(self, namespace: str, name: str) -> dict | None:
        return self._get("vmims", objects.VMIM, namespace, name)

    def secret_value(self, namespace: str, name: str, key: str) -> str | None:
        value = ((objects.get_core("secret", namespace, name) or {}).get("data") or {}).get(key)
        return base64.b64decode(value).decode() if value is not None else None

    def floating_ips(self, namespace: str, server: str) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for fip in self.stores["floatingips"].list(lambda f: f["metadata"]["namespace"] == namespace and (
                f.get("status") or {}).get("server") == server):
            st = fip["status"]
            if st.get("fixedIpAddress") and st.get("floatingIpAddress") and st.get("status") == "ACTIVE":
                out.setdefault(st["fixedIpAddress"], []).append(st["floatingIpAddress"])
        return out

    def reservation_members(self, namespace: str, name: str) -> list[dict]:
        return self.stores["servers"].list(lambda s: s["metadata"]["namespace"] == namespace and (
            s["metadata"].get("labels") or {}).get(RESERVATION_LABEL) == name)

    def disks(self, server: Mapping[str, Any], root_size_gib: int):
        from kubestack.storage.disks import ensure_server_disks
        from kubestack.storage.refs import parse_ref

        ref = (server.get("spec") or {}).get("image")
        image = self.image(*parse_ref(ref, server["metadata"]["namespace"])) if ref else None
        return ensure_server_disks(api(), dict(server), image_body=image, root_size_gib=root_size_gib or None)

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
        self.stores[store].apply_event("ADDED", created)
        return created

    def patch_vm(self, namespace: str, name: str, patch: dict) -> dict:
        vm = objects.patch(objects.VM, namespace, name, patch)
        self.stores["vms"].apply_event("MODIFIED", vm)
        return vm

    def delete_vm(self, namespace: str, name: str) -> None:
        objects.delete(objects.VM, namespace, name)

    def delete_secret(self, namespace: str, name: str) -> None:
        try:
            core().delete_namespaced_secret(name, namespace)
        except ApiException as exc:
            if exc.status != 404:
                raise

    def delete_vmi(self, namespace: str, name: str) -> None:
        objects.delete(objects.VMI, namespace, name)

    def patch_status(self, namespace: str, name: str, status: dict) -> None:
        updated = objects.patch_status(SERVERS, namespace, name, status)
        self.stores["servers"].apply_event("MODIFIED", updated)

    def event(self, obj: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        events.post(obj, type_, reason, message)


class ServerController:
    def __init__(self) -> None:
        config = SchedulerConfig.from_env()
        self.cache = HostCache(config)
        self.scheduler = Scheduler(self.cache, config)
        backend = os.environ.get("KUBESTACK_VM_ACTIONS", Backend.SUBRESOURCE.value)
        self.informers = {name: informer.shared(gvr) for name, gvr in WATCHED.items()}
        self.stores = {name: i.store for name, i in self.informers.items()}
        self.cluster = ApiCluster(self.stores)
        self.reconciler = ServerReconciler(self.cluster, self.scheduler, VMActions(api(), backend),
                                           quota=state.quota_ledger())
        self.queue = WorkQueue("servers", self.reconcile_key,
                               workers=int(os.environ.get("KUBESTACK_SERVER_WORKERS", "8")))
        # a server refused for quota (unbuilt in ERROR, or a resize refused) retries when room
        # is freed: a server or volume deleted, a resize down, a Project's quotas raised
        state.quota_ledger().on_room_freed(self.enqueue_waiting)
        self.zones = ZonePublisher(self.cache, operator_namespace())
        # servers whose ports could not be made yet (PortNotReady), kept by on_server: what a
        # Network, Port or SecurityGroup event wakes, without a scan of every server per port
        self._port_waiting: set[tuple[str, str]] = set()
        self._port_waiting_lock = threading.Lock()

    def reconcile_key(self, key: tuple[str, str]) -> None:
        server = self.stores["servers"].get(*key)
        if server is None:
            return
        out = self.reconciler.reconcile(server)
        if self._deleted_meanwhile(server):
            return
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

    def _deleted_meanwhile(self, server: dict) -> bool:
        """The server's DELETED event came while it was being reconciled: its `forget` ran
        before this reconcile's claims were made, so release them here (idempotent)."""
        meta = server["metadata"]
        now = self.stores["servers"].get(meta["namespace"], meta["name"])
        if now is not None and now["metadata"].get("uid") == meta.get("uid"):
            return False
        self.reconciler.forget(server)
        return True

    def servers_where(self, predicate) -> list[tuple[str, str]]:
        return [(s["metadata"]["namespace"], s["metadata"]["name"]) for s in self.stores["servers"].list(predicate)]

    def enqueue_waiting(self, namespace: str | None = None) -> None:
        """Servers that may be waiting for a reference or for quota: not scheduled yet (or
        in ERROR), or built with a change refused (observedGeneration left behind)."""
        def waiting(s: dict) -> bool:
            st = s.get("status") or {}
            return (namespace is None or s["metadata"]["namespace"] == namespace) and \
                (not st.get("host") or st.get("observedGeneration") != s["metadata"].get("generation"))
        for key in self.servers_where(waiting):
            self.queue.add(key)

    # ---- informer handlers: quick, they only queue keys --------------------------------------
    def on_server(self, type_: str, body: dict, previous: dict | None) -> None:
        meta = body["metadata"]
        parent = (meta.get("labels") or {}).get(RESERVATION_LABEL)
        if parent:  # a multi-create's member: its reservation summarises the members
            self.queue.add((meta["namespace"], parent))
        key = (meta["namespace"], meta["name"])
        ready = find_condition((body.get("status") or {}).get("conditions"), "Ready") or {}
        with self._port_waiting_lock:
            if type_ != "DELETED" and ready.get("reason") == PORT_NOT_READY:
                self._port_waiting.add(key)
            else:
                self._port_waiting.discard(key)
        if type_ == "DELETED":
            self.reconciler.forget(body)
            return
        if previous is None:
            self.reconciler.record_claim(body)
        self.queue.add(key)

    def on_reference(self, type_: str, body: dict, previous: dict | None) -> None:
        """A flavor, image, key pair or server group changed: servers waiting for it retry
        (for an image, in every project: a public or shared image serves them all)."""
        if type_ != "DELETED":
            self.enqueue_waiting(None if body.get("kind") == "Image" else body["metadata"].get("namespace"))

    def on_port_dependency(self, type_: str, body: dict, previous: dict | None) -> None:
        """A Network, Port or SecurityGroup came, changed or went (a port deleted gives its
        addresses back): servers whose ports could not be made yet retry; for a Network, in
        every project (a shared network serves them all). Only those: a boot storm's own
        ports must not wake every server."""
        namespace = None if body.get("kind") == "Network" else body["metadata"].get("namespace")
        with self._port_waiting_lock:
            waiting = [key for key in self._port_waiting if namespace is None or key[0] == namespace]
        for key in waiting:
            self.queue.add(key)

    def on_owned(self, type_: str, body: dict, previous: dict | None) -> None:
        """A VM, VMI or migration changed: reconcile the server it belongs to."""
        meta = body["metadata"]
        server = (meta.get("labels") or {}).get(SERVER_LABEL) or (
            (body.get("spec") or {}).get("vmiName") if body.get("kind") == "VirtualMachineInstanceMigration"
            else meta["name"])
        if server:
            self.queue.add((meta["namespace"], server))

    def on_floating_ip(self, type_: str, body: dict, previous: dict | None) -> None:
        """A floating IP (dis)associated: the Server's Networks column shows it, as Nova's does."""
        for fip in (previous, body):
            server = ((fip or {}).get("status") or {}).get("server")
            if server:
                self.queue.add((body["metadata"]["namespace"], server))

    def on_node(self, type_: str, body: dict, previous: dict | None) -> None:
        name = body["metadata"]["name"]
        if type_ == "DELETED":
            self.cache.remove_node(name)
            self.zones.host_changed(name)
            return
        self.cache.upsert_node(body)
        self.zones.host_changed(name)
        if previous is None or _ready(previous) != _ready(body):
            # a host went down or came back: its servers may need evacuating or recovering
            for key in self.servers_where(lambda s: (s.get("status") or {}).get("host") == name):
                self.queue.add(key)
            self.enqueue_waiting()

    def start(self, sync_timeout: float = 120.0) -> None:
        """Watch, and once every informer has listed, rebuild the host cache from every Node
        and every scheduled Server; only then start the workers (no decision on a partial
        view). Events during the sync are idempotent with the rebuild."""
        handlers = {"servers": self.on_server, "flavors": self.on_reference, "images": self.on_reference,
                    "keypairs": self.on_reference, "servergroups": self.on_reference, "vms": self.on_owned,
                    "vmis": self.on_owned, "vmims": self.on_owned, "floatingips": self.on_floating_ip,
                    "nodes": self.on_node, "networks": self.on_port_dependency,
                    "ports": self.on_port_dependency, "securitygroups": self.on_port_dependency}
        for name, i in self.informers.items():
            i.add_handler(handlers[name])
            i.start()
        for i in self.informers.values():
            if not i.wait_synced(sync_timeout):
                raise RuntimeError(f"server controller: could not list {i.kind} in {sync_timeout:.0f}s")
        with self.cache.batch():  # each host's indexes refreshed once, not once per server
            for node in self.stores["nodes"].list():
                self.cache.upsert_node(node)
            for server in self.stores["servers"].list():
                self.reconciler.record_claim(server)
        log.info("server controller: %d hosts, %d servers, %d claims", len(self.cache),
                 len(self.stores["servers"]), len(self.cache.instances()))
        self.zones.start()
        self.queue.start()
        for key in self.servers_where(None):
            self.queue.add(key)

    def stop(self) -> None:
        self.queue.stop()
        self.zones.stop()


controller: ServerController | None = None


@kopf.on.startup()
def _start(**_) -> None:
    global controller
    controller = ServerController()
    controller.start()


@kopf.on.cleanup()
def _stop(**_) -> None:
    if controller is not None:
        controller.stop()


def _ready(node: Mapping[str, Any]) -> bool:
    for cond in (node.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return cond.get("status") == "True"
    return False
