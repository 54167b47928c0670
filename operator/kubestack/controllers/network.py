"""Network controller: the NAD in the network's own namespace, status (ACTIVE, subnets with
allocated/available counts, the NADs), NADs of shared networks in other namespaces kept in
step and removed with the network. NADs for other namespaces are made on demand when a
Server there uses a shared network (kubestack.network.ports.ensure_nad). A Network in ERROR
(invalid allocation pools or overlapping subnets: only its own spec can change that) carries kstatus' Stalled
(`network.faults`).

One Network's NADs and status are written by one thread at a time, from the Network read under
its lock (`resyncer`, used only for that: nothing is queued): kopf runs the usage timer in
parallel with the change handlers, and a tick holding the body from before a spec change used
to patch the NAD config and status.subnets back to the old spec after the update handler had
written the new ones (the NAD patch carries no resourceVersion), until the next tick."""

from __future__ import annotations

import json

import kopf
from kubernetes.client.rest import ApiException

from kubestack.api.network import Network
from kubestack.k8s import client as k8s
from kubestack.k8s import objects
from kubestack.k8s.events import NORMAL, WARNING, post
from kubestack.k8s.objects import status_diff
from kubestack.network import cni, ipam, naming
from kubestack.network.faults import error_conditions, ready_conditions
from kubestack.network.kube import Kube, owner_ref
from kubestack.network.ports import port_addresses
from kubestack.network.resolve import NetworkRefError, plans_of, ResolvedNetwork
from kubestack.runtime.metrics import instrumented
from kubestack.runtime.resync import Resyncer

NAD = ("k8s.cni.cncf.io", "v1", "network-attachment-definitions")
NETWORKS = objects.kubestack("networks", "Network")


def _sync(body, namespace, name) -> None:
    kube = Kube(k8s.api())
    body = dict(body)
    model = Network.from_k8s(body)
    status = body.get("status") or {}
    gen = body["metadata"].get("generation")
    try:
        plans = plans_of(model)
    except NetworkRefError as exc:
        _status(kube, body, {"status": "ERROR", "reason": exc.message},
                error_conditions(status.get("conditions"), "InvalidSubnet", exc, gen))
        if (status.get("status"), status.get("reason")) != ("ERROR", exc.message):  # once, not per timer tick
            post(body, WARNING, "InvalidSubnet", exc.message)
        return
    net = ResolvedNetwork(namespace, name, body, model, plans)
    nads = []
    selector = f"{naming.LABEL_NETWORK}={naming.label_value(name)},{naming.LABEL_NETWORK_NS}={namespace}"
    existing = {(n["metadata"]["namespace"], n["metadata"]["name"]): n
                for n in kube.custom.list_cluster_custom_object(*NAD, label_selector=selector)["items"]}
    targets = {(namespace, naming.nad_name(namespace, name, namespace))} | set(existing)
    for ns, nad_name in sorted(targets):
        owners = [owner_ref(body, controller=True)] if ns == namespace else None
        want = cni.nad(namespace, name, model.spec, ns, owner_references=owners)
        cur = existing.get((ns, nad_name))
        if cur is None:
            kube.create(*NAD, ns, want)
        elif json.loads(cur["spec"]["config"]) != json.loads(want["spec"]["config"]):
            kube.patch(*NAD, ns, nad_name, {"spec": want["spec"]})
        nads.append(f"{ns}/{nad_name}")
    counts = port_addresses(kube, net)
    subnets = []
    for p in plans:
        used = counts.get(p.name, 0)
        subnets.append({"name": p.name, "cidr": str(p.cidr),
                        "gatewayIp": str(p.gateway) if p.gateway else None,
                        "allocated": used, "available": max(ipam.pool_size(p) - used, 0)})
    summary = ", ".join(f"{p.name}={p.cidr}" for p in plans) or None
    desired = {"status": "ACTIVE", "subnets": [{k: v for k, v in s.items() if v is not None} for s in subnets],
               "subnetSummary": summary, "attachmentDefinitions": nads, "reason": None}
    if status.get("status") != "ACTIVE":
        post(body, NORMAL, "Active", f"network {name} is ACTIVE ({summary or 'no subnets'})")
    _status(kube, body, desired, ready_conditions(status.get("conditions"), True, "Active", "", gen))


def _status(kube, body, desired, conditions) -> None:
    status = body.get("status") or {}
    desired = {**desired, "observedGeneration": body["metadata"].get("generation"), "conditions": conditions}
    patch = status_diff(status, desired)
    if patch:
        kube.patch_status("networks", body["metadata"]["namespace"], body["metadata"]["name"], patch)


# the handlers and the timer sync the Network as it is now, read under its lock (not the body
# kopf handed them, which a tick may hold from before a spec change): see the module docstring
resyncer = Resyncer(NETWORKS, _sync)


@kopf.on.resume("kubestack.io", "v1alpha1", "networks")
@kopf.on.create("kubestack.io", "v1alpha1", "networks")
@kopf.on.update("kubestack.io", "v1alpha1", "networks", field="spec")
@instrumented("Network")
def network_sync(namespace, name, **_):
    try:
        resyncer.sync_current(namespace, name)
    except ApiException as exc:
        raise kopf.TemporaryError(f"API error: {exc.reason}", delay=5)


@kopf.timer("kubestack.io", "v1alpha1", "networks", interval=30, idle=10)
@instrumented("Network")
def network_usage(namespace, name, **_):
    """Refresh allocated/available counts (ports come and go without touching the Network)."""
    try:
        resyncer.sync_current(namespace, name)
    except ApiException as exc:
        raise kopf.TemporaryError(f"API error: {exc.reason}", delay=10)


@kopf.on.delete("kubestack.io", "v1alpha1", "networks")
@instrumented("Network")
def network_delete(body, namespace, name, logger, **_):
    """NADs in other namespaces have no owner reference to the network: delete them."""
    kube = Kube(k8s.api())
    selector = f"{naming.LABEL_NETWORK}={naming.label_value(name)},{naming.LABEL_NETWORK_NS}={namespace}"
    for nad in kube.custom.list_cluster_custom_object(*NAD, label_selector=selector)["items"]:
        if nad["metadata"]["namespace"] != namespace:
            kube.delete(*NAD, nad["metadata"]["namespace"], nad["metadata"]["name"])
