"""Nova's `server reboot [--hard]`: a soft reboot asks the guest, a hard one restarts the VM
(powering on a stopped server); done once the guest runs again."""

from __future__ import annotations

import logging

from kubestack.api.server import RebootType, Server, ServerState, TaskState
from kubestack.compute import state
from kubestack.compute.context import Context, Outcome, instance_id
from kubestack.compute.errors import error
from kubestack.compute.vmactions import VMActionError

log = logging.getLogger(__name__)


def reboot(ctx: Context, server, model: Server, vmi, out: Outcome) -> bool:
    req = model.spec.reboot
    st = out.status
    uid = instance_id(server)
    if req is None or req.request_id == st.get("lastRebootRequestId"):
        return False
    ns, name = model.metadata.namespace, model.metadata.name
    hard = req.type == RebootType.HARD
    inflight = ctx.reboots.get(uid)
    vmi_uid = (vmi or {}).get("metadata", {}).get("uid")
    if inflight is None or inflight[0] != req.request_id:
        if state.vmi_phase(vmi) != "Running" and not hard:
            # Nova refuses a soft reboot of a stopped server; a hard one powers it on
            error(out, 409, f"Cannot 'reboot' instance {name} while it is in vm_state "
                            f"{st.get('vmState')}", reason="Conflict", keep_status=True)
            st["lastRebootRequestId"] = req.request_id
            return True
        try:
            (ctx.actions.restart if hard else ctx.actions.soft_reboot)(ns, name)
        except VMActionError as exc:
            if not hard:
                raise
            log.info("%s/%s: hard reboot via restart refused (%s); the VM will be started", ns, name, exc)
        ctx.reboots[uid] = (req.request_id, vmi_uid)
        st.update(status=ServerState.HARD_REBOOT if hard else ServerState.REBOOT,
                  taskState=TaskState.REBOOTING_HARD if hard else TaskState.REBOOTING)
        out.events.append(("Normal", "Rebooting", f"{'Hard' if hard else 'Soft'} reboot requested"))
        out.requeue_after = 1.0
        return True
    # in flight: done once the guest runs again (a hard reboot: in a new VMI)
    if state.vmi_phase(vmi) == "Running" and (not hard or vmi_uid != inflight[1]):
        ctx.reboots.pop(uid, None)
        st["lastRebootRequestId"] = req.request_id
        out.events.append(("Normal", "Rebooted", f"{'Hard' if hard else 'Soft'} reboot done"))
        return False
    out.requeue_after = 1.0
    return True
