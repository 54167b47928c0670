"""Port controller: a user's Port gets its addresses and MAC (its claims owned by it), every
Port its status (ACTIVE while bound to a server that exists and plugs it, DOWN otherwise,
fixed IPs, NAD); the claims a Port holds on another project's shared network are released
when it goes; security group policies of the namespace follow port changes (queued for
`network.policy_sync`).

A Port follows what it names, not only its own changes (`network.binding`): a GitOps apply
creates a Port with (often before) its Network, so a Port in ERROR for a missing network (or
subnet) gets its addresses once the network appears; and a user's port plugged by a server is
unbound (DOWN, in the status only: `binding.bind` says why the spec's deviceId stays) when the
server is deleted, and bound again when a server that plugs it appears. Port and Network events
(kopf, on streams the operator watches anyway) and Server events (the shared informer; a boot
writes a Server many times, and only its coming, going or plugged ports count) queue a re-sync
of the Ports they affect, found in `binding.PortIndex`. A Port in ERROR because the address it
asks for is taken (or its subnet's pool is full) is synced when an address of that subnet is
given back: IP claim events (ConfigMaps, watched with a label selector: only claims) queue the
Ports in ERROR waiting for it. The Port's own create and spec changes stay with kopf; the queue
re-syncs only Ports kopf has synced once, and one Port is never synced by two threads at once.

A Port in ERROR carries kstatus' Stalled only when waiting cannot cure it (`network.faults`):
not for a missing network or subnet, a taken address or a full pool, all of which the re-syncs
above follow; yes for another project's private network or an address its subnet never hands
out.
"""

from __future__ import annotations

import kopf
from kubernetes.client.rest import ApiException

from kubestack.api.port import PortSpec
from kubestack.k8s import client as k8s
from kubestack.k8s import objects
from kubestack.k8s.events import NORMAL, WARNING, post
from kubestack.k8s.objects import status_diff
from kubestack.network import binding, naming, policy_sync
from kubestack.network.faults import error_conditions, ready_conditions
from kubestack.network.kube import Kube
from kubestack.network.ports import PortError, _Txn, ensure_port, release_port_claims
from kubestack.network.resolve import NetworkRefError, Purpose, resolve
from kubestack.runtime import informer
from kubestack.runtime.metrics import instrumented
from kubestack.runtime.resync import Resyncer

PORTS = objects.kubestack("ports", "Port")
SERVERS = objects.kubestack("servers", "Server")


def _cached_server(namespace: str, name: str):
    """The Server from the shared informer's Store (UNKNOWN before it has listed them)."""
    servers = informer.shared(SERVERS)
    if not servers.wait_synced(0):
        return binding.UNKNOWN
    return servers.store.get(namespace, name)


def _server(kube: Kube, namespace: str, name: str) -> dict | None:
    """The Server as it is now: the Store's copy, a miss confirmed by a GET (the watch may lag
    a create by a moment)."""
    found = _cached_server(namespace, name)
    if found is binding.UNKNOWN or found is None:
        found = kube.ours("servers", namespace, name)
    return found


index = binding.PortIndex(_cached_server)


def _sync(body, namespace, name) -> None:
    kube = Kube(k8s.api())
    body = dict(body)
    status = body.get("status") or {}
    gen = body["metadata"].get("generation")
    spec = PortSpec.model_validate(body["spec"])
    try:
        net = resolve(kube, spec.network, namespace, Purpose.PORT)
        if not (body["metadata"].get("labels") or {}).get(naming.LABEL_SERVER):
            # a user's port holds the claims of the addresses its spec names, even when it
            # names them all (and its MAC): one it cannot hold is taken by another port (ERROR)
            body = ensure_port(kube, _Txn(), body, net)
            spec = PortSpec.model_validate(body["spec"])
    except (PortError, NetworkRefError) as exc:
        desired = {"status": "ERROR", "reason": exc.message, "observedGeneration": gen,
                   "conditions": error_conditions(status.get("conditions"), "PortError", exc, gen)}
        patch = status_diff(status, desired)
        if patch:
            kube.patch_status("ports", namespace, name, patch)
            post(body, WARNING, "PortError", exc.message)
        return
    bound = binding.bind(body, _server(kube, namespace, spec.device_id) if spec.device_id else None)
    fixed = [{"subnet": f.subnet or "", "ipAddress": f.ip_address} for f in spec.fixed_ips if f.ip_address]
    desired = {
        "status": "ACTIVE" if bound.server else "DOWN",
        "macAddress": spec.mac_address, "fixedIps": fixed,
        "fixedIpSummary": ", ".join(f["ipAddress"] for f in fixed) or None,
        "server": bound.server, "reason": bound.reason, "observedGeneration": gen,
        "networkAttachment": f"{namespace}/{naming.nad_name(net.namespace, net.name, namespace)}",
        "conditions": ready_conditions(status.get("conditions"), True, "Allocated", bound.reason or "", gen),
    }
    patch = status_diff(status, desired)
    if patch:
        kube.patch_status("ports", namespace, name, patch)
        _post_transition(body, status, desired, fixed)


def _post_transition(body, status, desired, fixed) -> None:
    """An Event when a synced Port recovers from ERROR or is bound or unbound (a new port's
    first status posts none: every boot makes ports, and the Server tells its own story)."""
    before, after = status.get("status"), desired["status"]
    name = body["metadata"]["name"]
    if before is None:
        return
    if before == "ERROR":
        ips = ", ".join(f["ipAddress"] for f in fixed) or "no fixed IPs"
        post(body, NORMAL, "Allocated", f"port {name} allocated ({ips}); {after}")
    elif desired["server"] and desired["server"] != status.get("server"):
        post(body, NORMAL, "Bound", f"port {name} bound to server {desired['server']}")
    elif before == "ACTIVE" and after == "DOWN":
        post(body, NORMAL, "Unbound", desired["reason"] or f"port {name} is not bound")


resyncer = Resyncer(PORTS, _sync, workers=2)


@kopf.on.resume("kubestack.io", "v1alpha1", "ports")
@kopf.on.create("kubestack.io", "v1alpha1", "ports")
@kopf.on.update("kubestack.io", "v1alpha1", "ports", field="spec")
@instrumented("Port")
def port_sync(namespace, name, **_):
    try:
        resyncer.sync_current(namespace, name)
    except ApiException as exc:
        raise kopf.TemporaryError(f"API error: {exc.reason}", delay=5)
    policy_sync.request(namespace)


@kopf.on.delete("kubestack.io", "v1alpha1", "ports", labels={naming.LABEL_REMOTE_CLAIMS: "true"})
@instrumented("Port")
def port_release_remote(body, **_):
    meta = body["metadata"]
    try:
        with resyncer.lock(meta["namespace"], meta["name"]):
            release_port_claims(k8s.api(), dict(body))
    except ApiException as exc:
        raise kopf.TemporaryError(f"API error: {exc.reason}", delay=5)


@kopf.on.delete("kubestack.io", "v1alpha1", "ports", optional=True)
@instrumented("Port")
def port_deleted(namespace, **_):
    policy_sync.request(namespace)


# ------------------------------------------------------------------ related objects' events
# Index lookups and queue adds never block: the kopf event handlers are coroutines, run on
# kopf's loop without a hop to an executor thread for every Port or Network event.


@kopf.on.event("kubestack.io", "v1alpha1", "ports")
@instrumented("Port")
async def port_index_event(type, body, **_):  # noqa: A002 - kopf's argument name
    """Keep the index; a Port showing what its network or server no longer says is synced."""
    if index.port_event(type, body):
        resyncer.add([(body["metadata"]["namespace"], body["metadata"]["name"])])


@kopf.on.event("kubestack.io", "v1alpha1", "networks")
@instrumented("Port")
async def port_network_event(type, body, **_):  # noqa: A002 - kopf's argument name
    """A network came, went or changed its subnets: the Ports on it follow."""
    resyncer.add(index.network_event(type, body))


@kopf.on.event("v1", "configmaps", labels={naming.LABEL_IP_CLAIM: "true"})
@instrumented("Port")
async def port_claim_event(type, body, **_):  # noqa: A002 - kopf's argument name
    """An address was given back (its claim deleted): the Ports in ERROR waiting for it retry."""
    resyncer.add(index.claim_event(type, body))


def port_server_event(type_: str, body: dict, previous: dict | None) -> None:
    """Shared Server informer: a server came, went, or changed the ports it plugs."""
    resyncer.add(index.server_event(type_, body, previous))


@kopf.on.startup()
def port_startup(settings: kopf.OperatorSettings, **_) -> None:
    # only claims, filtered by the API server: no other ConfigMap reaches the operator (no
    # other kopf handler of ours watches ConfigMaps, which this selector would narrow too)
    settings.watching.label_selectors["v1", "configmaps"] = f"{naming.LABEL_IP_CLAIM}=true"
    resyncer.start()
    policy_sync.start()
    servers = informer.shared(SERVERS)
    servers.add_handler(port_server_event)
    servers.start()


@kopf.on.cleanup()
def port_cleanup(**_) -> None:
    resyncer.stop()
    policy_sync.stop()
