"""FloatingIP controller: address claimed from the external network (kept across
disassociate / re-associate), a LoadBalancer Service selecting the server's launcher pod,
status like ``openstack floating ip list``; the claim is released when the FloatingIP goes."""

from __future__ import annotations

import kopf
from kubernetes.client.rest import ApiException

from kubestack.k8s import client as k8s
from kubestack.k8s.conditions import set_condition
from kubestack.k8s.events import NORMAL, WARNING, post
from kubestack.k8s.objects import status_diff
from kubestack.network import floating, naming
from kubestack.network.kube import Kube
from kubestack.network.ports import PortError
from kubestack.runtime.metrics import instrumented


def _sync(body, namespace, name) -> None:
    kube = Kube(k8s.api())
    body = dict(body)
    spec, status = body.get("spec") or {}, body.get("status") or {}
    gen = body["metadata"].get("generation")
    try:
        _net, address = floating.allocate(k8s.api(), body)
    except PortError as exc:
        desired = {"status": "ERROR", "reason": exc.message, "observedGeneration": gen,
                   "conditions": set_condition(status.get("conditions"), "Ready", False, "AllocationFailed",
                                               exc.message, gen)}
        patch = status_diff(status, desired)
        if patch:
            kube.patch_status("floatingips", namespace, name, patch)
            post(body, WARNING, "AllocationFailed", exc.message)
        return
    server, port, fixed, reason = spec.get("server"), spec.get("port"), spec.get("fixedIpAddress"), None
    if port and not server:
        pbody = kube.ours("ports", namespace, port)
        server = ((pbody or {}).get("spec") or {}).get("deviceId")
        if pbody is None:
            reason = f"Port {port} could not be found."
        if not fixed and pbody:
            fixed = next((f.get("ipAddress") for f in pbody["spec"].get("fixedIps") or []), None)
    if server and not fixed:
        ports = kube.list_ours("ports", namespace, f"{naming.LABEL_SERVER}={server}")
        ports.sort(key=lambda p: p["metadata"]["name"])
        fixed = next((f.get("ipAddress") for p in ports for f in p["spec"].get("fixedIps") or []), None)
    ports = floating.service_ports(k8s.api(), namespace, server) if server else []
    svc = floating.service(body, address, server, ports)
    svc_name = svc["metadata"]["name"]
    try:
        cur = kube.core.read_namespaced_service(svc_name, namespace)
        cur = kube.api.sanitize_for_serialization(cur)
        if cur["spec"].get("selector") != svc["spec"].get("selector") or \
                [(p["protocol"], p["port"]) for p in cur["spec"].get("ports", [])] != \
                [(p["protocol"], p["port"]) for p in svc["spec"]["ports"]]:
            kube.core.patch_namespaced_service(svc_name, namespace, [
                {"op": "replace", "path": "/spec/ports", "value": svc["spec"]["ports"]},
                {"op": "add" if server else "remove", "path": "/spec/selector",
                 **({"value": svc["spec"]["selector"]} if server else {})},
            ] if (server or cur["spec"].get("selector")) else [
                {"op": "replace", "path": "/spec/ports", "value": svc["spec"]["ports"]}])
    except ApiException as exc:
        if exc.status != 404:
            raise
        kube.core.create_namespaced_service(namespace, svc, field_validation="Strict")
    associated = bool(server) and reason is None
    desired = {"status": "ACTIVE" if associated else "DOWN", "floatingIpAddress": address,
               "fixedIpAddress": fixed if associated else None, "server": server if associated else None,
               "port": port if associated else None, "service": svc_name, "reason": reason,
               "observedGeneration": gen,
               "conditions": set_condition(status.get("conditions"), "Ready", True,
                                           "Associated" if associated else "Allocated", reason or "", gen)}
    patch = status_diff(status, desired)
    if patch:
        kube.patch_status("floatingips", namespace, name, patch)
        if "status" in patch:
            post(body, NORMAL, desired["status"].title(),
                 f"floating IP {address} " + (f"associated with {server} ({fixed})" if associated else "not associated"))


@kopf.on.resume("kubestack.io", "v1alpha1", "floatingips")
@kopf.on.create("kubestack.io", "v1alpha1", "floatingips")
@kopf.on.update("kubestack.io", "v1alpha1", "floatingips", field="spec")
@instrumented("FloatingIP")
def floatingip_sync(body, namespace, name, **_):
    try:
        _sync(body, namespace, name)
    except ApiException as exc:
        raise kopf.TemporaryError(f"API error: {exc.reason}", delay=5)


@kopf.on.delete("kubestack.io", "v1alpha1", "floatingips")
@instrumented("FloatingIP")
def floatingip_release(body, **_):
    try:
        floating.release(k8s.api(), dict(body))
    except ApiException as exc:
        raise kopf.TemporaryError(f"API error: {exc.reason}", delay=5)
