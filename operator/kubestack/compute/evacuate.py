"""Nova's evacuate: a server whose host is down is rebuilt on another host the scheduler
picks (its disks are container disks or network volumes, so it can start elsewhere)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubestack.api.server import FlavorSnapshot, Server, ServerState, TaskState
from kubestack.compute.claims import claim_target, host_zone, land, requested_zone
from kubestack.compute.context import Context, Outcome, instance_id
from kubestack.compute.errors import error
from kubestack.compute.machine import pin
from kubestack.scheduler import NoValidHost


def evacuate_if_host_down(ctx: Context, server, model: Server, vm, vmi, out: Outcome) -> bool:
    st = out.status
    host = st.get("host")
    # the VM's disks are container disks or network volumes, so it can start elsewhere
    if not host_down(ctx.cluster.node(host)):
        return False
    ns, name = model.metadata.namespace, model.metadata.name
    uid = instance_id(server)
    flavor = FlavorSnapshot.model_validate(st["flavor"])
    try:
        target = claim_target(ctx, uid, ns, flavor, None, requested_zone(model.spec.availability_zone))
    except NoValidHost as exc:
        error(out, 500, f"host {host} is down and no other host can take the server",
              details=str(exc), reason="NoValidHost", keep_status=True)
        return True
    land(ctx, uid, ns, target, flavor)
    if vm is not None:
        ctx.cluster.patch_vm(ns, name, pin(target))
    if vmi is not None:
        ctx.cluster.delete_vmi(ns, name)
    st.update(host=target, hypervisorHostname=target, status=ServerState.REBUILD,
              taskState=TaskState.REBUILDING, availabilityZone=host_zone(ctx, target))
    out.events.append(("Warning", "Evacuated", f"host {host} is down: rebuilding on {target}"))
    out.requeue_after = 1.0
    return True


def host_down(node: Mapping[str, Any] | None) -> bool:
    if node is None:
        return False
    for cond in (node.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return cond.get("status") != "True"
    return False
