"""FloatingIP controller: address claimed from the external network (kept across
disassociate / re-associate), a LoadBalancer Service selecting the server's launcher pod,
status like ``openstack floating ip list``; the claim is released when the FloatingIP goes.
A FloatingIP whose allocation fails (ERROR) is associated with nothing: no server, port or
fixed IP in its status, and its Service (kept, holding the address) selects nothing.

A FloatingIP follows what it names, not only its own changes: a GitOps apply creates it
together with (and often before) its server or port, and a server may be deleted and
recreated. So Port events (kopf, on the stream the Port controller already watches), Server
events (the shared informer; a boot writes a Server many times, and only a change a
FloatingIP reads counts), SecurityGroup events (the Service's ports) and Network events (the
external network, missing at first in a GitOps apply too) queue a re-sync of the
FloatingIPs they affect, found in an index kept from the shared FloatingIP informer
(`network.association.FloatingIPIndex`). The informer also queues a FloatingIP the index
has just learnt of, that names something else now, or that has just come to show ERROR (an
address given back while its sync was writing ERROR for a full pool queued nothing: the index
did not show it in ERROR yet), so an event that came before the index knew it is never lost.

The FloatingIP's own create and spec changes stay with kopf, which runs them only once its
finalizer is on (the claim on another project's network is released by the delete handler):
the queue re-syncs only FloatingIPs kopf has synced once, and one FloatingIP is never synced
by two threads at once, nor while its claim is being released.

A FloatingIP in ERROR carries kstatus' Stalled only when waiting cannot cure it
(`network.faults`): not for a missing external network or subnet, or a taken address or full
pool, which the re-syncs above follow; yes for a network that is not external, another
project's private one, or an address its subnet never hands out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf
from kubernetes.client.rest import ApiException

from kubestack.k8s import client as k8s
from kubestack.k8s import objects
from kubestack.k8s.events import NORMAL, WARNING, post
from kubestack.k8s.objects import status_diff
from kubestack.network import association, floating, naming
from kubestack.network.faults import error_conditions, ready_conditions
from kubestack.network.kube import Kube
from kubestack.network.ports import PortError
from kubestack.runtime import informer
from kubestack.runtime.metrics import instrumented
from kubestack.runtime.resync import Resyncer

FLOATING_IPS = objects.kubestack("floatingips", "FloatingIP")
SERVERS = objects.kubestack("servers", "Server")

index = association.FloatingIPIndex()


def _targets(kube: Kube, namespace: str, spec: Mapping[str, Any]) -> tuple[dict | None, dict[str, dict]]:
    """The Server the FloatingIP maps to and the Ports that matter, as they are now."""
    if spec.get("port"):
        port = kube.ours("ports", namespace, spec["port"])
        device = association.port_device(port)
        server = kube.ours("servers", namespace, device) if device else None
        return server, ({spec["port"]: port} if port is not None else {})
    if spec.get("server"):
        server = kube.ours("servers", namespace, spec["server"])
        ports = {}
        for pname in association.server_port_names(server) if server is not None else []:
            port = kube.ours("ports", namespace, pname)
            if port is not None:
                ports[pname] = port
        return server, ports
    return None, {}


def _sync(body, namespace, name) -> None:
    kube = Kube(k8s.api())
    body = dict(body)
    spec, status = body.get("spec") or {}, body.get("status") or {}
    gen = body["metadata"].get("generation")
    try:
        _net, address = floating.allocate(k8s.api(), body)
    except PortError as exc:
        # ERROR is associated with nothing: the Service stops selecting the server first, so
        # no traffic flows while the status says ERROR. The Service itself stays (when it
        # exists): it is what holds the address at the load balancer, and the FloatingIP keeps
        # its claim and status.floatingIpAddress until it is deleted (as a Neutron floating IP
        # keeps its address); deleting the Service could let the load balancer give the address
        # to another Service meanwhile. It is then what a DOWN FloatingIP has: an address held,
        # nothing selected, ready for when the allocation works again.
        _apply_service(kube, body, None, None, [])
        desired = {"status": "ERROR", "reason": exc.message, "observedGeneration": gen,
                   **association.status_fields(association.Association()),
                   "conditions": error_conditions(status.get("conditions"), "AllocationFailed", exc, gen)}
        patch = status_diff(status, desired)
        if patch:
            kube.patch_status("floatingips", namespace, name, patch)
            post(body, WARNING, "AllocationFailed", exc.message)
        return
    server_body, ports = _targets(kube, namespace, spec)
    assoc = association.associate(spec, server_body, ports)
    server = assoc.server if assoc.active else None  # what the Service selects
    groups = association.service_groups(spec, server_body, ports) if server else []
    svc_ports = floating.service_ports(k8s.api(), namespace, groups)
    svc_name = _apply_service(kube, body, address, server, svc_ports)
    active = assoc.active
    desired = {"status": "ACTIVE" if active else "DOWN", "floatingIpAddress": address,
               **association.status_fields(assoc), "service": svc_name, "reason": assoc.reason,
               "observedGeneration": gen,
               "conditions": ready_conditions(status.get("conditions"), True,
                                              "Associated" if active else "Allocated", assoc.reason or "", gen)}
    patch = status_diff(status, desired)
    if patch:
        kube.patch_status("floatingips", namespace, name, patch)
        if "status" in patch or (active and ({"server", "fixedIpAddress"} & set(patch))):
            if active:
                fixed = f" ({assoc.fixed_ip})" if assoc.fixed_ip else ""
                message = f"floating IP {address} associated with {server}{fixed}"
            else:
                message = f"floating IP {address} not associated" + (f": {assoc.reason}" if assoc.reason else "")
            post(body, NORMAL, desired["status"].title(), message)


def _apply_service(kube: Kube, body: dict, address: str | None, server: str | None,
                   ports: list[dict]) -> str:
    """Make the FloatingIP's Service select `server` (None: nothing) and forward `ports`;
    a missing one is created to hold `address` (None: not created). Returns its name."""
    svc = floating.service(body, address or "", server, ports)
    svc_name, namespace = svc["metadata"]["name"], svc["metadata"]["namespace"]
    try:
        cur = kube.api.sanitize_for_serialization(kube.core.read_namespaced_service(svc_name, namespace))
    except ApiException as exc:
        if exc.status != 404:
            raise
        if address:
            kube.core.create_namespaced_service(namespace, svc, field_validation="Strict")
        return svc_name
    ops = floating.service_patch(cur["spec"], server, ports)
    if ops:
        kube.core.patch_namespaced_service(svc_name, namespace, ops)
    return svc_name


resyncer = Resyncer(FLOATING_IPS, _sync, workers=2)


@kopf.on.create("kubestack.io", "v1alpha1", "floatingips")
@kopf.on.update("kubestack.io", "v1alpha1", "floatingips", field="spec")
@instrumented("FloatingIP")
def floatingip_sync(namespace, name, **_):
    try:
        resyncer.sync_current(namespace, name)
    except ApiException as exc:
        raise kopf.TemporaryError(f"API error: {exc.reason}", delay=5)


@kopf.on.delete("kubestack.io", "v1alpha1", "floatingips")
@instrumented("FloatingIP")
def floatingip_release(body, **_):
    meta = body["metadata"]
    try:
        with resyncer.lock(meta["namespace"], meta["name"]):
            floating.release(k8s.api(), dict(body))
    except ApiException as exc:
        raise kopf.TemporaryError(f"API error: {exc.reason}", delay=5)


# ------------------------------------------------------------------ related objects' events
# The kopf event handlers are coroutines: an index lookup and a queue add never block, so kopf
# runs them on its loop, without a hop to an executor thread for every Port or Network event.


def floating_ip_event(type_: str, body: dict, previous: dict | None) -> None:
    """Shared FloatingIP informer: keep the index; queue a FloatingIP it has just learnt of
    (this also re-syncs every FloatingIP once when the operator starts, as kopf's resume
    would), that names something else now, or that has just come to show ERROR."""
    if index.floating_ip_event(type_, body, previous):
        resyncer.add([(body["metadata"]["namespace"], body["metadata"]["name"])])


def server_event(type_: str, body: dict, previous: dict | None) -> None:
    """Shared Server informer: a server came, went, or changed what a FloatingIP reads."""
    resyncer.add(index.server_event(type_, body, previous))


@kopf.on.event("kubestack.io", "v1alpha1", "ports")
@instrumented("FloatingIP")
async def port_event(type, body, **_):  # noqa: A002 - kopf's argument name
    """A port came, went, changed its fixed IPs or its server."""
    resyncer.add(index.port_event(type, body))


@kopf.on.event("kubestack.io", "v1alpha1", "securitygroups")
@instrumented("FloatingIP")
async def security_group_event(type, body, **_):  # noqa: A002 - kopf's argument name
    """A group came, went or changed its rules: the Services' ports follow."""
    resyncer.add(index.security_group_event(type, body))


@kopf.on.event("v1", "configmaps", labels={naming.LABEL_IP_CLAIM: "true"})
@instrumented("FloatingIP")
async def claim_event(type, body, **_):  # noqa: A002 - kopf's argument name
    """An address was given back on a network: FloatingIPs in ERROR for a full pool there retry
    (the Port controller narrows kopf's ConfigMap watch to these claims)."""
    resyncer.add(index.claim_event(type, body))


@kopf.on.event("kubestack.io", "v1alpha1", "networks")
@instrumented("FloatingIP")
async def network_event(type, body, **_):  # noqa: A002 - kopf's argument name
    """An external network came, went or changed its subnets: the FloatingIPs taking their
    address from it (ERROR while it did not exist) try again."""
    resyncer.add(index.network_event(type, body))


@kopf.on.startup()
def floatingip_startup(**_) -> None:
    resyncer.start()
    for gvr, handler in ((FLOATING_IPS, floating_ip_event), (SERVERS, server_event)):
        shared = informer.shared(gvr)
        shared.add_handler(handler)
        shared.start()


@kopf.on.cleanup()
def floatingip_cleanup(**_) -> None:
    resyncer.stop()
