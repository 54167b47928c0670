"""Port controller: a user's Port gets its addresses and MAC (its claims owned by it), every
Port its status (ACTIVE when a server uses it, DOWN otherwise, fixed IPs, NAD); the claims a
Port holds on another project's shared network are released when it goes; security group
policies of the namespace follow port changes."""

from __future__ import annotations

import kopf
from kubernetes.client.rest import ApiException

from kubestack.api.port import PortSpec
from kubestack.k8s import client as k8s
from kubestack.k8s.conditions import set_condition
from kubestack.k8s.events import WARNING, post
from kubestack.k8s.objects import status_diff
from kubestack.network import naming, secgroups
from kubestack.network.kube import Kube
from kubestack.network.ports import PortError, _Txn, ensure_port, release_port_claims
from kubestack.network.resolve import NetworkRefError, Purpose, resolve
from kubestack.runtime.metrics import instrumented


def _sync(body, namespace, name) -> None:
    kube = Kube(k8s.api())
    body = dict(body)
    status = body.get("status") or {}
    gen = body["metadata"].get("generation")
    spec = PortSpec.model_validate(body["spec"])
    try:
        net = resolve(kube, spec.network, namespace, Purpose.PORT)
        if not all(f.ip_address for f in spec.fixed_ips) or not spec.fixed_ips or not spec.mac_address:
            if not (body["metadata"].get("labels") or {}).get(naming.LABEL_SERVER):
                body = ensure_port(kube, _Txn(), body, net)
                spec = PortSpec.model_validate(body["spec"])
    except (PortError, NetworkRefError) as exc:
        desired = {"status": "ERROR", "reason": exc.message, "observedGeneration": gen,
                   "conditions": set_condition(status.get("conditions"), "Ready", False, "PortError",
                                               exc.message, gen)}
        patch = status_diff(status, desired)
        if patch:
            kube.patch_status("ports", namespace, name, patch)
            post(body, WARNING, "PortError", exc.message)
        return
    fixed = [{"subnet": f.subnet or "", "ipAddress": f.ip_address} for f in spec.fixed_ips if f.ip_address]
    desired = {
        "status": "ACTIVE" if spec.device_id else "DOWN",
        "macAddress": spec.mac_address, "fixedIps": fixed,
        "fixedIpSummary": ", ".join(f["ipAddress"] for f in fixed) or None,
        "server": spec.device_id, "reason": None, "observedGeneration": gen,
        "networkAttachment": f"{namespace}/{naming.nad_name(net.namespace, net.name, namespace)}",
        "conditions": set_condition(status.get("conditions"), "Ready", True, "Allocated", "", gen),
    }
    patch = status_diff(status, desired)
    if patch:
        kube.patch_status("ports", namespace, name, patch)


@kopf.on.resume("kubestack.io", "v1alpha1", "ports")
@kopf.on.create("kubestack.io", "v1alpha1", "ports")
@kopf.on.update("kubestack.io", "v1alpha1", "ports", field="spec")
@instrumented("Port")
def port_sync(body, namespace, name, **_):
    try:
        _sync(body, namespace, name)
        secgroups.sync_namespace(k8s.api(), namespace)
    except ApiException as exc:
        raise kopf.TemporaryError(f"API error: {exc.reason}", delay=5)


@kopf.on.delete("kubestack.io", "v1alpha1", "ports", labels={naming.LABEL_REMOTE_CLAIMS: "true"})
@instrumented("Port")
def port_release_remote(body, **_):
    try:
        release_port_claims(k8s.api(), dict(body))
    except ApiException as exc:
        raise kopf.TemporaryError(f"API error: {exc.reason}", delay=5)


@kopf.on.delete("kubestack.io", "v1alpha1", "ports", optional=True)
@instrumented("Port")
def port_deleted(namespace, **_):
    try:
        secgroups.sync_namespace(k8s.api(), namespace)
    except ApiException as exc:
        raise kopf.TemporaryError(f"API error: {exc.reason}", delay=5)
