"""Nova's `server migrate --live [--host H]`: claim a target, point the VM's template at it,
then let a KubeVirt VirtualMachineInstanceMigration move the running guest there."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from kubestack.api.server import FlavorSnapshot, Server, ServerState, TaskState
from kubestack.compute import state
from kubestack.compute.claims import claim_target, host_zone, land, requested_zone, usage
from kubestack.compute.context import Context, Outcome, instance_id, owner_ref
from kubestack.compute.errors import error
from kubestack.compute.machine import pin
from kubestack.compute.render import HOSTNAME_LABEL
from kubestack.scheduler import NoValidHost
from kubestack.scheduler.cache import ClaimError


def migrate(ctx: Context, server, model: Server, vm, vmi, out: Outcome) -> bool:
    st = out.status
    req = model.spec.migrate
    ns, name = model.metadata.namespace, model.metadata.name
    uid = instance_id(server)
    if req is None or req.request_id == st.get("lastMigrateRequestId"):
        return False
    mig_name = f"{name}-{_short(req.request_id)}"
    mig = ctx.cluster.migration(ns, mig_name)
    if mig is None:
        if state.vmi_phase(vmi) != "Running":
            error(out, 409, f"Cannot 'live-migrate' instance {name} while it is not running",
                  reason="Conflict", keep_status=True)
            st["lastMigrateRequestId"] = req.request_id
            return True
        flavor = FlavorSnapshot.model_validate(st["flavor"])
        target = _selected_host(vm)
        if target == st["host"]:
            # step 1: pick and claim the target, point the VM's template at it
            try:
                target = claim_target(ctx, uid, ns, flavor, req.host, requested_zone(model.spec.availability_zone))
            except (ClaimError, NoValidHost) as exc:
                error(out, 500, f"No valid host for live migration: {exc}".splitlines()[0],
                      details=str(exc), reason="NoValidHost", keep_status=True)
                st["lastMigrateRequestId"] = req.request_id
                out.events.append(("Warning", "MigrationFailed", "no valid host to migrate to"))
                return True
            # KubeVirt's LiveUpdate rollout propagates the template's nodeSelector to the
            # running VMI; the migration's target pod then lands on the new host
            ctx.cluster.patch_vm(ns, name, pin(target))
            st.update(status=ServerState.MIGRATING, taskState=TaskState.MIGRATING, migrationTarget=target)
            out.events.append(("Normal", "Migrating", f"Live-migrating from {st['host']} to {target}"))
        elif _selected_host(vmi) == target:
            # step 2: the VMI carries the new selector; start the migration
            if ctx.cache.instance(uid + "#target") is None:  # operator restarted meanwhile
                ctx.cache.add_instance(target, uid + "#target", usage(flavor), project=ns)
            ctx.cluster.create({
                "apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstanceMigration",
                "metadata": {"name": mig_name, "namespace": ns, "ownerReferences": [owner_ref(server)],
                             "labels": {"kubestack.io/server": name}},
                "spec": {"vmiName": name},
            })
            st.update(status=ServerState.MIGRATING, taskState=TaskState.MIGRATING, migrationTarget=target)
        out.requeue_after = 1.0
        return True
    phase = (mig.get("status") or {}).get("phase")
    if phase == "Succeeded":
        target = _selected_host(vm) or st["host"]  # the host step 1 pointed the VM at
        land(ctx, uid, ns, target, FlavorSnapshot.model_validate(st["flavor"]))
        old = st["host"]
        st.update(host=target, hypervisorHostname=target, lastMigrateRequestId=req.request_id,
                  status=ServerState.ACTIVE, taskState=None, migrationTarget=None)
        st["availabilityZone"] = host_zone(ctx, target)
        out.events.append(("Normal", "Migrated", f"Live-migrated from {old} to {target}"))
        return False
    if phase == "Failed":
        ctx.scheduler.release(uid + "#target")
        ctx.cluster.patch_vm(ns, name, pin(st["host"]))
        st.update(lastMigrateRequestId=req.request_id, status=ServerState.ACTIVE, taskState=None,
                  migrationTarget=None)
        reason = ((mig.get("status") or {}).get("migrationState") or {}).get("failureReason") or "failed"
        error(out, 500, f"Live migration failed: {reason}", reason="MigrationFailed", keep_status=True)
        st["status"] = ServerState.ACTIVE
        out.events.append(("Warning", "MigrationFailed", f"Live migration failed: {reason}"))
        return False
    st.update(status=ServerState.MIGRATING, taskState=TaskState.MIGRATING)
    out.requeue_after = 1.0
    return True


def _selected_host(obj: Mapping[str, Any] | None) -> str | None:
    """The host a VM's template (or a VMI's spec) is pinned to."""
    spec = (obj or {}).get("spec") or {}
    if "template" in spec:
        spec = spec["template"].get("spec") or {}
    return (spec.get("nodeSelector") or {}).get(HOSTNAME_LABEL)


def _short(request_id: str) -> str:
    return hashlib.sha1(request_id.encode()).hexdigest()[:8]
