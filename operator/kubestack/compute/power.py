"""Power and state: pause/suspend/resume a running guest as the spec asks, then read the
server's Nova state (status, power state, task) and addresses back from the VM and VMI."""

from __future__ import annotations

import logging

from kubestack.api.server import DesiredPowerState, PowerState, Server, ServerState, VmState
from kubestack.compute import state
from kubestack.compute.context import Context, Outcome, instance_id, now
from kubestack.compute.errors import error
from kubestack.compute.evacuate import host_down
from kubestack.compute.render import interfaces_of
from kubestack.compute.vmactions import VMActionError
from kubestack.k8s.conditions import set_condition

log = logging.getLogger(__name__)


def power(ctx: Context, server, model: Server, vm, vmi, out: Outcome) -> None:
    ns, name = model.metadata.namespace, model.metadata.name
    desired = model.spec.power_state
    st = out.status
    launched = bool(st.get("launchedAt"))
    phase = state.vmi_phase(vmi)
    paused = state.vmi_paused(vmi)
    try:
        if phase == "Running":
            if desired == DesiredPowerState.PAUSED and not paused:
                ctx.actions.pause(ns, name)
            elif desired == DesiredPowerState.SUSPENDED and not paused:
                ctx.actions.suspend(ns, name)
            elif desired == DesiredPowerState.RUNNING and paused:
                if state.vmi_suspended(vmi):
                    ctx.actions.resume(ns, name)
                else:
                    ctx.actions.unpause(ns, name)
    except VMActionError as exc:
        log.info("%s/%s: %s (will look again)", ns, name, exc)
        out.requeue_after = 2.0
    observed = state.observe(desired, vm, vmi, launched=launched)
    if observed.problem and launched and host_down(ctx.cluster.node(st["host"])):
        observed = state.Observed(ServerState.ERROR, PowerState.NOSTATE, VmState.ERROR, None,
                                  f"host {st['host']} is down")
    _apply_observed(ctx, server, observed, vm, vmi, out)


def _apply_observed(ctx: Context, server, observed: state.Observed, vm, vmi, out: Outcome) -> None:
    st = out.status
    previous = st.get("status")
    st.update(status=observed.status, powerState=observed.power_state, vmState=observed.vm_state,
              taskState=observed.task_state)
    if observed.status == ServerState.ERROR:
        error(out, 500, observed.problem or "virtual machine failed", reason="VMFailed", keep_status=True)
    elif previous == ServerState.ERROR:
        st["fault"] = None  # recovered; other faults stay as the last action's record
    if observed.status == ServerState.ACTIVE and not st.get("launchedAt"):
        st["launchedAt"] = now()
        if ctx.cache.instance(instance_id(server)):
            ctx.cache.set_building(instance_id(server), False)
    _addresses(ctx, vm, vmi, out)
    ready = observed.status == ServerState.ACTIVE and observed.task_state is None
    st["conditions"] = set_condition(
        st.get("conditions"), "Ready", ready, str(observed.status),
        observed.problem or f"server is {observed.status}",
        generation=server["metadata"].get("generation"))
    if previous != observed.status:
        kind = "Warning" if observed.status == ServerState.ERROR else "Normal"
        msg = f"{previous or 'new'} -> {observed.status}"
        if observed.status == ServerState.ACTIVE and previous == ServerState.BUILD:
            msg = f"Server is ACTIVE on {st.get('host')}"
        elif observed.problem:
            msg += f": {observed.problem}"
        out.events.append((kind, str(observed.status).title().replace("_", ""), msg))


def _addresses(ctx: Context, vm, vmi, out: Outcome) -> None:
    """Nova's addresses: a tenant port's fixed IPs as allocated (Neutron's view), the pod
    network's as the VMI reports them, each followed by the floating IPs mapped to it."""
    reported = state.interface_ips(vmi)
    floating = ctx.cluster.floating_ips(vm["metadata"]["namespace"], vm["metadata"]["name"]) if vm else {}
    addresses: dict[str, list[dict]] = {}
    for iface in interfaces_of(vm) if vm is not None else []:
        ips = list(iface.ips) if iface.nad else reported.get(iface.name, [])
        if not ips:
            continue
        entries = addresses.setdefault(iface.network or ("pod" if iface.nad is None else iface.name), [])
        for ip in ips:
            addr = ip.split("/")[0]
            for value, kind in [(addr, "fixed"), *((f, "floating") for f in floating.get(addr, []))]:
                entry = {"addr": value, "version": 6 if ":" in value else 4, "type": kind}
                if iface.mac:
                    entry["macAddr"] = iface.mac
                entries.append(entry)
    if not addresses:
        return
    out.status["addresses"] = addresses
    out.status["networks"] = "; ".join(
        f"{net}=" + ", ".join(a["addr"] for a in addrs) for net, addrs in sorted(addresses.items()))
