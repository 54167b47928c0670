"""What a Server's Nova state is, read from its KubeVirt VM and VMI (pure).

Nova users read three fields: `status` (ACTIVE, SHUTOFF, ...), `power_state` (what the
hypervisor reports) and `task_state` (what is in progress). Here the "hypervisor" is
KubeVirt: the VMI phase and its Paused condition give the power state; the difference
between what the Server asks for (spec) and what runs gives the task in progress.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kubestack.api.server import DesiredPowerState, PowerState, ServerState, TaskState, VmState
from kubestack.compute.vmactions import SUSPENDED_ANNOTATION


@dataclass(frozen=True)
class Observed:
    status: ServerState
    power_state: PowerState
    vm_state: VmState
    task_state: str | None = None
    # the VMI has failed / cannot run: a fault message for the Server, if any
    problem: str | None = None


def _conditions(obj: Mapping[str, Any] | None) -> dict[str, Mapping[str, Any]]:
    return {c.get("type"): c for c in ((obj or {}).get("status") or {}).get("conditions") or []}


def vmi_phase(vmi: Mapping[str, Any] | None) -> str | None:
    if not vmi or (vmi.get("metadata") or {}).get("deletionTimestamp"):
        return None
    return (vmi.get("status") or {}).get("phase")


def vmi_paused(vmi: Mapping[str, Any] | None) -> bool:
    cond = _conditions(vmi).get("Paused")
    return bool(cond) and cond.get("status") == "True"


def vmi_suspended(vmi: Mapping[str, Any] | None) -> bool:
    return ((vmi or {}).get("metadata") or {}).get("annotations", {}).get(SUSPENDED_ANNOTATION) == "true"


def observe(desired: DesiredPowerState, vm: Mapping[str, Any] | None, vmi: Mapping[str, Any] | None,
            *, launched: bool) -> Observed:
    """The Nova state for a scheduled, not-shelved server whose VM exists (or is being made).

    `launched` says whether the server has ever reached ACTIVE: a VMI on its way up is a
    first BUILD before that, and a power-on afterwards.
    """
    printable = ((vm or {}).get("status") or {}).get("printableStatus")
    phase = vmi_phase(vmi)
    if printable in ("ErrorUnschedulable", "ErrorPvcNotFound", "DataVolumeError", "CrashLoopBackOff") \
            or phase == "Failed":
        message = _problem(vm, vmi, printable)
        return Observed(ServerState.ERROR, PowerState.CRASHED if phase == "Failed" else PowerState.NOSTATE,
                        VmState.ERROR, None, message)
    if phase == "Running":
        if vmi_paused(vmi):
            if vmi_suspended(vmi):
                return Observed(ServerState.SUSPENDED, PowerState.SUSPENDED, VmState.SUSPENDED,
                                TaskState.RESUMING if desired == DesiredPowerState.RUNNING else None)
            task = TaskState.UNPAUSING if desired == DesiredPowerState.RUNNING else (
                TaskState.SUSPENDING if desired == DesiredPowerState.SUSPENDED else None)
            return Observed(ServerState.PAUSED, PowerState.PAUSED, VmState.PAUSED, task)
        task = {
            DesiredPowerState.STOPPED: TaskState.POWERING_OFF,
            DesiredPowerState.PAUSED: TaskState.PAUSING,
            DesiredPowerState.SUSPENDED: TaskState.SUSPENDING,
        }.get(desired)
        return Observed(ServerState.ACTIVE, PowerState.RUNNING, VmState.ACTIVE, task)
    if phase in ("Pending", "Scheduling", "Scheduled", ""):
        if not launched:
            return Observed(ServerState.BUILD, PowerState.NOSTATE, VmState.BUILDING, TaskState.SPAWNING)
        return Observed(ServerState.SHUTOFF, PowerState.SHUTDOWN, VmState.STOPPED, TaskState.POWERING_ON)
    if phase == "Succeeded" or phase is None:
        wants_running = desired != DesiredPowerState.STOPPED
        if vm is None or not launched:
            return Observed(ServerState.BUILD, PowerState.NOSTATE, VmState.BUILDING, TaskState.SPAWNING)
        return Observed(ServerState.SHUTOFF, PowerState.SHUTDOWN, VmState.STOPPED,
                        TaskState.POWERING_ON if wants_running else None)
    return Observed(ServerState.BUILD, PowerState.NOSTATE, VmState.BUILDING, TaskState.SPAWNING)


def _problem(vm, vmi, printable: str | None) -> str:
    for obj in (vmi, vm):
        for cond in ((obj or {}).get("status") or {}).get("conditions") or []:
            if cond.get("status") == "False" and cond.get("message") and cond.get("type") in (
                    "PodScheduled", "Ready", "Synchronized"):
                return cond["message"]
    reason = ((vmi or {}).get("status") or {}).get("reason")
    return f"virtual machine is {printable or 'Failed'}" + (f": {reason}" if reason else "")


def interface_ips(vmi: Mapping[str, Any] | None) -> dict[str, list[str]]:
    """Guest IPs per interface name, as the VMI reports them."""
    out: dict[str, list[str]] = {}
    for iface in ((vmi or {}).get("status") or {}).get("interfaces") or []:
        ips = list(iface.get("ipAddresses") or ([iface["ipAddress"]] if iface.get("ipAddress") else []))
        if iface.get("name") and ips:
            out[iface["name"]] = ips
    return out


def vmi_node(vmi: Mapping[str, Any] | None) -> str | None:
    return ((vmi or {}).get("status") or {}).get("nodeName")
