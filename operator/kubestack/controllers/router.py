"""Router controller: references checked (the gateway network must be external, interface
networks reachable by the project), then the router is reported DOWN with a reason — no
network provider kubestack renders today can realise a Neutron router (OVN-Kubernetes layer2
secondary networks have no router or SNAT towards another network), so it is modelled, not
realised, and says so rather than pretending."""

from __future__ import annotations

import kopf
from kubernetes.client.rest import ApiException

from kubestack.k8s import client as k8s
from kubestack.k8s.conditions import set_condition
from kubestack.k8s.events import WARNING, post
from kubestack.k8s.objects import status_diff
from kubestack.network.kube import Kube
from kubestack.network.resolve import NetworkRefError, Purpose, resolve
from kubestack.runtime.metrics import instrumented

NOT_REALISED = ("Routers are modelled but not realised: the cluster's secondary networks "
                "(bridge, flat, vlan, OVN-Kubernetes layer2) provide no routing or SNAT between "
                "networks; connect servers to a shared provider network instead.")


def _sync(body, namespace, name) -> None:
    kube = Kube(k8s.api())
    spec, status = body.get("spec") or {}, body.get("status") or {}
    gen = body["metadata"].get("generation")
    state, reason = "DOWN", NOT_REALISED
    try:
        gw = spec.get("externalGateway")
        if gw:
            resolve(kube, gw["network"], namespace, Purpose.GATEWAY)
        for iface in spec.get("interfaces") or []:
            net = resolve(kube, iface["network"], namespace, Purpose.PORT)
            if iface["subnet"] not in {p.name for p in net.plans}:
                raise NetworkRefError(f"Subnet {iface['subnet']} could not be found on network {net.ref}.")
    except NetworkRefError as exc:
        state, reason = "ERROR", exc.message
    desired = {"status": state, "reason": reason, "observedGeneration": gen,
               "conditions": set_condition(status.get("conditions"), "Ready", False,
                                           "NotRealised" if state == "DOWN" else "InvalidReference",
                                           reason, gen)}
    patch = status_diff(status, desired)
    if patch:
        kube.patch_status("routers", namespace, name, patch)
        post(dict(body), WARNING, "NotRealised" if state == "DOWN" else "InvalidReference", reason)


@kopf.on.resume("kubestack.io", "v1alpha1", "routers")
@kopf.on.create("kubestack.io", "v1alpha1", "routers")
@kopf.on.update("kubestack.io", "v1alpha1", "routers", field="spec")
@instrumented("Router")
def router_sync(body, namespace, name, **_):
    try:
        _sync(body, namespace, name)
    except ApiException as exc:
        raise kopf.TemporaryError(f"API error: {exc.reason}", delay=5)
