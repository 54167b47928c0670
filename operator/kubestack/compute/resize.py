"""Nova's `server resize --flavor F` and `resize confirm/revert`: a changed spec.flavor claims
the new size (same host if it fits, else another), cold-restarts the VM at that size, and
waits in VERIFY_RESIZE holding the old size on the source until confirmed (confirmedFlavor,
or automatically) or reverted (spec.flavor back to the old one)."""

from __future__ import annotations

from kubestack.api.server import FlavorSnapshot, ResizeConfirmation, Server, ServerState, TaskState
from kubestack.compute import state
from kubestack.compute.claims import claim_target, land, requested_zone, reserve_quota, snapshot, usage
from kubestack.compute.context import Context, Outcome, instance_id
from kubestack.compute.errors import error
from kubestack.compute.references import Resolved
from kubestack.compute.render import HOSTNAME_LABEL, _cpu, _memory
from kubestack.compute.scheduling import NO_VALID_HOST
from kubestack.scheduler import NoValidHost
from kubestack.scheduler.cache import ClaimError


def resize(ctx: Context, server, model: Server, resolved: Resolved, vmi, out: Outcome) -> bool:
    st = out.status
    spec = model.spec
    ns, name = model.metadata.namespace, model.metadata.name
    uid = instance_id(server)
    status = st.get("status")
    if status in (ServerState.VERIFY_RESIZE, ServerState.RESIZE, ServerState.REVERT_RESIZE):
        return _resize_progress(ctx, server, model, vmi, out)
    if spec.flavor == st.get("flavorName") or not st.get("flavorName"):
        return False
    # a new resize: claim the new size (same host if it fits, else another host)
    new = resolved.flavor
    old_host, old_flavor = st["host"], st["flavorName"]
    reserve_quota(ctx, server, new)
    try:
        try:
            target = claim_target(ctx, uid, ns, new, old_host, requested_zone(model.spec.availability_zone))
        except ClaimError:
            target = claim_target(ctx, uid, ns, new, None, requested_zone(model.spec.availability_zone))
    except NoValidHost as exc:
        error(out, 500, NO_VALID_HOST, details=str(exc), reason="NoValidHost", keep_status=True)
        out.events.append(("Warning", "ResizeFailed", f"resize to {spec.flavor}: no valid host"))
        return True
    st.update(status=ServerState.RESIZE, taskState=TaskState.RESIZE_MIGRATING,
              resize={"oldFlavor": old_flavor, "oldHost": old_host, "newFlavor": new.name})
    # the VM moves to its new size (and host) by a cold restart
    flavor_patch = _vm_size_patch(new, target)
    ctx.cluster.patch_vm(ns, name, flavor_patch)
    if vmi is not None:
        ctx.cluster.delete_vmi(ns, name)
    _resize_claims(ctx, uid, old_host, target, old=st["flavor"], new=new, ns=ns)
    st.update(host=target, hypervisorHostname=target, flavor=new.to_k8s(), flavorName=new.name)
    out.events.append(("Normal", "Resizing", f"Resizing from {old_flavor} to {new.name} on {target}"))
    out.requeue_after = 1.0
    return True


def _resize_claims(ctx: Context, uid: str, old_host: str, target: str, *, old: dict, new: FlavorSnapshot,
                   ns: str) -> None:
    """During a resize the server holds the new size on the target and, until confirmed,
    the old size on the source (Nova's migration allocation)."""
    land(ctx, uid, ns, target, new)
    ctx.cache.add_instance(old_host, uid + "#source", usage(FlavorSnapshot.model_validate(old)), project=ns)


def _resize_progress(ctx: Context, server, model: Server, vmi, out: Outcome) -> bool:
    st = out.status
    spec = model.spec
    ns, name = model.metadata.namespace, model.metadata.name
    uid = instance_id(server)
    resize = st.get("resize") or {}
    status = st.get("status")
    if status in (ServerState.RESIZE, ServerState.REVERT_RESIZE):
        if state.vmi_phase(vmi) == "Running" and state.vmi_node(vmi) == st["host"]:
            if status == ServerState.REVERT_RESIZE:
                st.update(status=ServerState.ACTIVE, taskState=None, resize=None)
                out.events.append(("Normal", "ResizeReverted", f"Reverted to {st['flavorName']}"))
                return False
            st.update(status=ServerState.VERIFY_RESIZE, taskState=None)
            out.events.append(("Normal", "VerifyResize",
                               f"Resized to {st['flavorName']}: confirm (confirmedFlavor) or revert"))
        else:
            out.requeue_after = 1.0
        return True
    # VERIFY_RESIZE
    if spec.flavor == resize.get("oldFlavor"):
        old = ctx.cluster.flavor(resize["oldFlavor"])
        old_snapshot = snapshot(resize["oldFlavor"], old) if old else FlavorSnapshot.model_validate(st["flavor"])
        ctx.scheduler.release(uid + "#source")
        ctx.cache.add_instance(resize["oldHost"], uid, usage(old_snapshot), project=ns)
        ctx.cluster.patch_vm(ns, name, _vm_size_patch(old_snapshot, resize["oldHost"]))
        if vmi is not None:
            ctx.cluster.delete_vmi(ns, name)
        reserve_quota(ctx, server, old_snapshot)
        st.update(status=ServerState.REVERT_RESIZE, taskState=TaskState.RESIZE_REVERTING,
                  host=resize["oldHost"], hypervisorHostname=resize["oldHost"],
                  flavor=old_snapshot.to_k8s(), flavorName=old_snapshot.name)
        out.events.append(("Normal", "RevertingResize", f"Reverting to {resize['oldFlavor']}"))
        out.requeue_after = 1.0
        return True
    if spec.resize_confirmation == ResizeConfirmation.AUTO or spec.confirmed_flavor == spec.flavor:
        ctx.scheduler.release(uid + "#source")
        st.update(status=ServerState.ACTIVE, taskState=None, resize=None)
        out.events.append(("Normal", "ResizeConfirmed", f"Resize to {st['flavorName']} confirmed"))
        return False
    if spec.flavor != st.get("flavorName"):
        error(out, 400, f"Server is in VERIFY_RESIZE: confirm or revert before resizing to "
                        f"{spec.flavor}", reason="Conflict", keep_status=True)
    return True


def _vm_size_patch(flavor: FlavorSnapshot, host: str) -> dict:
    """The VM patch giving its template `flavor`'s size, on `host`."""
    return {"metadata": {"annotations": {"kubestack.io/flavor": flavor.name or ""}},
            "spec": {"template": {"spec": {
                "nodeSelector": {HOSTNAME_LABEL: host},
                "domain": {"cpu": _cpu(flavor), "memory": _memory(flavor),
                           "resources": {"requests": {"memory": f"{flavor.ram}Mi"}}}}}}}
