"""A server's claims: its room on a host in the scheduler's host cache (read back from
status on restart), the room a moving server holds on its target, and its Nova quota."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubestack.api.server import FlavorSnapshot, Server, ServerState
from kubestack.compute.context import Context, instance_id
from kubestack.compute.references import ReferenceError, group_name
from kubestack.scheduler import RequestSpec, SchedulerHints, Usage
from kubestack.scheduler import Flavor as SchedFlavor


def quota_key(server: Mapping[str, Any]) -> str:
    """The quota ledger's holder key for a server (what the Project controller counts)."""
    return f"server/{server['metadata']['namespace']}/{server['metadata']['name']}"


def group_key(namespace: str, name: str) -> str:
    return f"{namespace}/{name}"


def sched_flavor(flavor: FlavorSnapshot) -> SchedFlavor:
    """The scheduler's view of a flavor (root, ephemeral and swap sizes, extra specs)."""
    return SchedFlavor(name=flavor.name or "", vcpus=flavor.vcpus, ram_mb=flavor.ram, disk_gb=flavor.disk,
                       ephemeral_gb=flavor.ephemeral, swap_mb=flavor.swap, extra_specs=flavor.extra_specs)


def usage(flavor: FlavorSnapshot) -> Usage:
    return Usage(vcpus=flavor.vcpus, ram_mb=flavor.ram, disk_gb=flavor.disk + flavor.ephemeral)


def snapshot(name: str, flavor_obj: Mapping[str, Any]) -> FlavorSnapshot:
    spec = flavor_obj.get("spec") or {}
    return FlavorSnapshot(name=name, vcpus=spec["vcpus"], ram=spec["ram"], disk=spec.get("disk", 0),
                          ephemeral=spec.get("ephemeral", 0), swap=spec.get("swap", 0),
                          extra_specs=spec.get("extraSpecs") or {})


ZONE_LABEL = "topology.kubernetes.io/zone"


def host_zone(ctx: Context, host: str) -> str | None:
    """The availability zone of a compute host (its Node's zone label)."""
    node = ctx.cluster.node(host) or {}
    return (node.get("metadata", {}).get("labels") or {}).get(ZONE_LABEL)


def requested_zone(requested: str | None) -> str | None:
    """Nova's `--availability-zone zone[:host[:node]]`: the zone part."""
    if not requested:
        return None
    return requested.split(":", 1)[0] or None


def record_claim(ctx: Context, server: Mapping[str, Any]) -> None:
    """Put a scheduled Server's claim into the host cache (idempotent): used to rebuild
    the cache at start-up and whenever a Server is seen."""
    st = server.get("status") or {}
    host, flavor = st.get("host"), st.get("flavor")
    if not host or not flavor or st.get("status") == ServerState.SHELVED_OFFLOADED:
        return
    ns = server["metadata"]["namespace"]
    group = group_name(Server.from_k8s(server).spec)
    ctx.cache.add_instance(
        host, instance_id(server), usage(FlavorSnapshot.model_validate(flavor)), project=ns,
        building=st.get("status") == ServerState.BUILD,
        group=group_key(ns, group) if group else None)
    if st.get("migrationTarget") and st["migrationTarget"] != host:
        # a live migration in progress holds its target until it ends (migration.migrate)
        ctx.cache.add_instance(st["migrationTarget"], instance_id(server) + "#target",
                               usage(FlavorSnapshot.model_validate(flavor)), project=ns)
    resize = st.get("resize") or {}
    if st.get("status") in (ServerState.RESIZE, ServerState.VERIFY_RESIZE) and resize.get("oldHost"):
        # Nova keeps the source allocation from the resize until it is confirmed
        old = ctx.cluster.flavor(resize.get("oldFlavor") or "")
        if old is not None:
            ctx.cache.add_instance(resize["oldHost"], instance_id(server) + "#source",
                                   usage(snapshot(resize["oldFlavor"], old)), project=ns)


def release_claims(ctx: Context, server: Mapping[str, Any]) -> None:
    """Give back the server's room on its host (and a move's source and target)."""
    uid = instance_id(server)
    for suffix in ("", "#source", "#target"):
        ctx.scheduler.release(uid + suffix)


def forget(ctx: Context, server: Mapping[str, Any]) -> None:
    """A Server is gone: release every claim it held."""
    release_claims(ctx, server)
    if ctx.quota is not None:
        ctx.quota.release(quota_key(server))
    ctx.reboots.pop(instance_id(server), None)
    ctx.rebuilds.pop(instance_id(server), None)


def reserve_quota(ctx: Context, server: Mapping[str, Any], flavor: FlavorSnapshot) -> None:
    """Nova's instances/cores/ram quota for this server at `flavor` (re-reserving the same
    server replaces its previous reservation: that is how a resize is counted)."""
    if ctx.quota is None:
        return
    from kubestack.identity.quota import QuotaExceeded

    try:
        ctx.quota.reserve(server["metadata"]["namespace"], quota_key(server),
                          {"instances": 1, "cores": flavor.vcpus, "ram": flavor.ram})
    except QuotaExceeded as exc:
        raise ReferenceError(str(exc), code=403, reason="QuotaExceeded") from exc


def claim_target(ctx: Context, uid: str, ns: str, flavor: FlavorSnapshot, host: str | None,
                 zone: str | None = None) -> str:
    """Claim room for a moving server on `host`, or on a host the scheduler picks among
    the others in the zone the server asked for (Nova moves with the original request
    spec), holding source and target allocation while moving, as Nova does."""
    if host:
        ctx.cache.claim(host, uid + "#target", usage(flavor), project=ns)
        return host
    request = RequestSpec(
        flavor=sched_flavor(flavor),
        project=ns, instance_ids=(uid + "#target",), availability_zone=zone,
        scheduler_hints=SchedulerHints(different_host=(uid,)))
    return ctx.scheduler.select_and_claim(request)[0].host


def land(ctx: Context, uid: str, ns: str, target: str, flavor: FlavorSnapshot) -> None:
    """A move's target becomes the server's host: its claim there (made by `claim_target`)
    turns into the server's own, at `flavor`, in the server's group."""
    ctx.scheduler.release(uid + "#target")
    record = ctx.cache.instance(uid)
    ctx.cache.add_instance(target, uid, usage(flavor), project=ns, group=record.group if record else None)
