"""Nova's `server shelve`: the VM is removed (disks and addresses kept), then the server is
SHELVED_OFFLOADED and its host's resources are free again; unshelving schedules it anew."""

from __future__ import annotations

from kubestack.api.server import PowerState, Server, ServerState, TaskState, VmState
from kubestack.compute.claims import release_claims
from kubestack.compute.context import Context, Outcome
from kubestack.k8s.conditions import set_condition


def shelve(ctx: Context, server, model: Server, vm, out: Outcome) -> None:
    st = out.status
    ns, name = model.metadata.namespace, model.metadata.name
    if vm is not None:
        ctx.cluster.delete_vm(ns, name)
        st.update(status=ServerState.SHELVED, taskState=TaskState.SHELVING_OFFLOADING,
                  powerState=PowerState.SHUTDOWN)
        out.events.append(("Normal", "Shelving", "Shelving: VM removed, disks and addresses kept"))
        out.requeue_after = 1.0
        return
    # offloaded: the host's resources are free again, the server keeps its data
    release_claims(ctx, server)
    st.update(status=ServerState.SHELVED_OFFLOADED, vmState=VmState.SHELVED_OFFLOADED,
              powerState=PowerState.SHUTDOWN, taskState=None, host=None, hypervisorHostname=None)
    st["conditions"] = set_condition(st.get("conditions"), "Ready", False, "Shelved",
                                     "server is shelved", generation=server["metadata"].get("generation"))
    out.events.append(("Normal", "Shelved", "Server is SHELVED_OFFLOADED"))
