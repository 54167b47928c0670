"""Placing a new server: Nova's scheduling step (claim a host, or fail the build with
NoValidHost), multi-create (`--min/--max`: a reservation placing every server at once), and
the scheduler request built from the Server's flavor, image, group, zone and hints."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubestack.api.server import PowerState, Server, ServerState, TaskState, VmState
from kubestack.compute.claims import (
    host_zone, quota_key, release_claims, requested_zone, reserve_quota, sched_flavor,
)
from kubestack.compute.context import Cluster, Context, Outcome, instance_id, owner_ref
from kubestack.compute.errors import error
from kubestack.compute.references import ReferenceError, Resolved, resolve
from kubestack.k8s.conditions import set_condition
from kubestack.scheduler import NoValidHost, RequestSpec, SchedulerHints

RESERVATION_LABEL = "kubestack.io/reservation"
RESERVED_CLAIM_ANNOTATION = "kubestack.io/reserved-claim"
NO_VALID_HOST = "No valid host was found. There are not enough hosts available."


def is_reservation(model: Server) -> bool:
    return (model.spec.max_count or model.spec.min_count) > 1


def member_manifest(reservation: Mapping[str, Any], index: int, claim: str) -> dict:
    """Server NAME-i of a multi-create (Nova's default display name template)."""
    meta = reservation["metadata"]
    spec = {k: v for k, v in (reservation.get("spec") or {}).items() if k not in ("minCount", "maxCount")}
    return {
        "apiVersion": reservation["apiVersion"], "kind": "Server",
        "metadata": {"name": f"{meta['name']}-{index}", "namespace": meta["namespace"],
                     "labels": {RESERVATION_LABEL: meta["name"]},
                     "annotations": {RESERVED_CLAIM_ANNOTATION: claim},
                     "ownerReferences": [owner_ref(reservation)]},
        "spec": spec,
    }


def spec_hints(model: Server, cluster: Cluster, namespace: str) -> SchedulerHints:
    """same_host / different_host name Servers; the scheduler knows instances by uid."""
    hints = model.spec.scheduler_hints
    if hints is None:
        return SchedulerHints()

    def uids(names: list[str]) -> tuple[str, ...]:
        out = []
        for n in names:
            other = cluster.server(namespace, n)
            if other is not None:
                out.append(other["metadata"]["uid"])
        return tuple(out)

    return SchedulerHints(same_host=uids(hints.same_host), different_host=uids(hints.different_host))


def record_key(status: dict[str, Any], model: Server, resolved: Resolved) -> None:
    """Keep the key the server is given in its status, as Nova keeps key_name and key_data on
    the instance: the key pair may be deleted later, and the guest keeps its key through
    rebuild and unshelve (references.resolve reads it back). Written with the boot's claim,
    before the VM exists, so no VM carries a key its status does not record."""
    key_name = model.spec.key_name if resolved.public_key else None
    status.update(keyName=key_name, keyData=resolved.public_key)


def schedule(ctx: Context, server: dict, model: Server, out: Outcome) -> None:
    name = model.metadata.name
    resolved = resolve(ctx.cluster, server, model, for_boot=True)
    flavor = resolved.flavor
    uid = instance_id(server)
    try:
        reserve_quota(ctx, server, flavor)
    except ReferenceError:
        # an unbuilt server refused holds nothing, not even what an earlier attempt reserved at
        # another flavor: a recount leaves a refused server's holding alone (usage.undecided)
        if ctx.quota is not None:
            ctx.quota.release(quota_key(server))
        raise
    st = out.status
    st.update(status=ServerState.BUILD, taskState=TaskState.SCHEDULING, vmState=VmState.BUILDING,
              powerState=PowerState.NOSTATE)
    # a claim this process made for the server that never reached its status (an API error
    # later in that reconcile, or in writing the status): give it back and decide afresh,
    # as the restarted operator would, rather than be refused as "already placed" forever
    release_claims(ctx, server)
    try:
        selection = _reserved_claim(ctx, server) or ctx.scheduler.select_and_claim(
            _request(ctx, model, resolved, (uid,)))[0]
    except NoValidHost as exc:
        if ctx.quota is not None:
            ctx.quota.release(quota_key(server))
        error(out, 500, NO_VALID_HOST, details=str(exc), reason="NoValidHost")
        out.status["conditions"] = set_condition(out.status.get("conditions"), "Scheduled", False,
                                                 "NoValidHost", str(exc).replace("\n", "; "))
        return
    zone = host_zone(ctx, selection.host)
    st.update(
        host=selection.host, hypervisorHostname=selection.host, availabilityZone=zone,
        flavor=flavor.to_k8s(), flavorName=flavor.name, imageName=resolved.image_name,
        taskState=TaskState.SPAWNING, fault=None, virtualMachine=name,
    )
    record_key(st, model, resolved)
    st["conditions"] = set_condition(st.get("conditions"), "Scheduled", True, "Scheduled",
                                     f"claimed on {selection.host}")
    out.events.append(("Normal", "Scheduled", f"Scheduled to {selection.host}"
                                              + (f" in zone {zone}" if zone else "")))


def _request(ctx: Context, model: Server, resolved: Resolved, instance_ids: tuple[str, ...], *,
             min_count: int | None = None, max_count: int | None = None) -> RequestSpec:
    flavor = resolved.flavor
    return RequestSpec(
        flavor=sched_flavor(flavor),
        image_properties=resolved.image_properties,
        project=model.metadata.namespace,
        availability_zone=requested_zone(model.spec.availability_zone),
        server_group=resolved.server_group,
        scheduler_hints=spec_hints(model, ctx.cluster, model.metadata.namespace),
        instance_ids=instance_ids, min_count=min_count, max_count=max_count,
    )


def _reserved_claim(ctx: Context, server: Mapping[str, Any]):
    """A server made by a multi-create takes over the claim its reservation made for it
    (the reservation placed every instance at once, all-or-nothing below minCount)."""
    key = (server["metadata"].get("annotations") or {}).get(RESERVED_CLAIM_ANNOTATION)
    record = ctx.cache.instance(key) if key else None
    if record is None:
        return None
    ctx.scheduler.release(key)
    ctx.cache.add_instance(record.host, instance_id(server), record.usage, project=record.project,
                           building=True, group=record.group)
    return record


def multi_create(ctx: Context, server: dict, model: Server, out: Outcome) -> None:
    """`openstack server create --min N --max M NAME`: servers NAME-1..NAME-k, placed
    together. This object is the reservation; its status summarises the servers."""
    ns, name = model.metadata.namespace, model.metadata.name
    st = out.status
    children = ctx.cluster.reservation_members(ns, name)
    if not children and not st.get("status"):  # reserve once; later, only summarise
        resolved = resolve(ctx.cluster, server, model, for_boot=True)
        uid = instance_id(server)
        count = model.spec.max_count or model.spec.min_count
        ids = tuple(f"{uid}#{i}" for i in range(1, count + 1))
        try:
            selections = ctx.scheduler.select_and_claim(_request(
                ctx, model, resolved, ids, min_count=model.spec.min_count, max_count=count))
        except NoValidHost as exc:
            error(out, 500, NO_VALID_HOST, details=str(exc), reason="NoValidHost")
            return
        for i, selection in enumerate(selections, start=1):
            ctx.cluster.create(member_manifest(server, i, selection.instance_id))
        st.update(status=ServerState.BUILD, taskState=TaskState.SPAWNING, fault=None)
        out.events.append(("Normal", "Scheduled", f"Reserved {len(selections)} servers "
                                                  f"{name}-1..{name}-{len(selections)}"))
        out.requeue_after = 1.0
        return
    states = [(c.get("status") or {}).get("status") for c in children]
    if states and all(x == ServerState.ACTIVE for x in states):
        summary = ServerState.ACTIVE
    elif any(x == ServerState.ERROR for x in states):
        summary = ServerState.ERROR
    else:
        summary = ServerState.BUILD
    st.update(status=summary, taskState=None if summary != ServerState.BUILD else TaskState.SPAWNING,
              networks=f"{len(children)} servers: " + ", ".join(sorted(c["metadata"]["name"] for c in children)))
    st["conditions"] = set_condition(st.get("conditions"), "Ready", summary == ServerState.ACTIVE,
                                     str(summary), f"{states.count(ServerState.ACTIVE)} of {len(children)} ACTIVE",
                                     generation=server["metadata"].get("generation"))
