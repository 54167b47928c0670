"""The Server reconciler: Nova's boot path and lifecycle, level-triggered.

Each call looks at one Server, the objects it references and the KubeVirt objects it owns,
does the next step(s) towards what the spec asks, and writes the Server's status only when
it changed. It talks to the cluster through the `Cluster` port (implemented with the
kubernetes client by the controller, with a fake in unit tests), to the scheduler's
in-memory host cache for claims, and to the VM runtime through `VMActions`.

The claim is durable in `status.host` (+ `status.flavor`): on restart the controller rebuilds
the host cache from every Server's status before reconciling anything, so a server is never
scheduled twice and a host never overcommitted. Every step is idempotent: a reconcile killed
half-way is simply repeated.

This module is the entry point and the state machine (`_step`): which step comes next. The
steps live in modules named for them: scheduling (and multi-create), machine (the VM),
power, reboot, rebuild, resize, migration, shelve, evacuate; claims and errors serve them all.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubestack.api.server import DesiredPowerState, Server, ServerState
from kubestack.compute import claims
from kubestack.compute.context import Actions, Cluster, Context, Outcome
from kubestack.compute.errors import drop_lapsed_refusal, error, mark_stalled, refuse, wait_for
from kubestack.compute.evacuate import evacuate_if_host_down
from kubestack.compute.machine import ensure_vm
from kubestack.compute.migration import migrate
from kubestack.compute.power import power
from kubestack.compute.reboot import reboot
from kubestack.compute.rebuild import begin_rebuild, rebuild
from kubestack.compute.references import RETRYABLE, ReferenceError, ReferenceWaiting, resolve
from kubestack.compute.resize import resize
from kubestack.compute.scheduling import RESERVATION_LABEL, is_reservation, multi_create, record_key, schedule
from kubestack.compute.shelve import shelve
from kubestack.k8s.conditions import find_condition

__all__ = ["RESERVATION_LABEL", "Actions", "Cluster", "Outcome", "ServerReconciler"]


class ServerReconciler(Context):
    """Reconciles Servers; it is the `Context` (cluster, scheduler, VM runtime, quota, what is
    in flight) its steps run in."""

    # ------------------------------------------------------------------ claims from status
    def record_claim(self, server: Mapping[str, Any]) -> None:
        """Put a scheduled Server's claim into the host cache (idempotent): used to rebuild
        the cache at start-up and whenever a Server is seen."""
        claims.record_claim(self, server)

    def forget(self, server: Mapping[str, Any]) -> None:
        """A Server is gone: release every claim it held."""
        claims.forget(self, server)

    # ------------------------------------------------------------------ entry point
    def reconcile(self, server: dict) -> Outcome:
        meta = server["metadata"]
        if meta.get("deletionTimestamp"):
            self.forget(server)
            return Outcome()
        model = Server.from_k8s(server)
        current = dict(server.get("status") or {})
        out = Outcome(status=dict(current))
        drop_lapsed_refusal(out.status, meta.get("generation"))
        try:
            self._step(server, model, out)
        except ReferenceError as exc:
            if isinstance(exc, ReferenceWaiting) and _first_build(current):
                wait_for(out, exc)
            elif not _built(current):
                error(out, exc.code, str(exc), reason=exc.reason)
            else:
                out = refuse(current, exc, meta.get("generation"))
        mark_stalled(out.status)
        if not out.pending:
            out.status["observedGeneration"] = meta.get("generation")
        return out

    # ------------------------------------------------------------------ the state machine
    def _step(self, server: dict, model: Server, out: Outcome) -> None:
        st = out.status
        spec = model.spec
        status = st.get("status")
        ready = find_condition(st.get("conditions"), "Ready") or {}
        if status == ServerState.ERROR and not st.get("host") and ready.get("reason") not in RETRYABLE and \
                st.get("observedGeneration") == server["metadata"].get("generation"):
            return  # Nova: a failed build is final until the request changes
        if is_reservation(model):
            multi_create(self, server, model, out)
            return
        if not st.get("host"):
            if status == ServerState.SHELVED_OFFLOADED and spec.power_state == DesiredPowerState.SHELVED:
                return
            schedule(self, server, model, out)
            if not st.get("host"):
                return
        resolved = resolve(self.cluster, server, model, for_boot=False)
        record_key(st, model, resolved)
        vm = self.cluster.vm(model.metadata.namespace, model.metadata.name)
        vmi = self.cluster.vmi(model.metadata.namespace, model.metadata.name)

        if spec.power_state == DesiredPowerState.SHELVED:
            shelve(self, server, model, vm, out)
            return
        if evacuate_if_host_down(self, server, model, vm, vmi, out):
            return
        if resize(self, server, model, resolved, vmi, out):
            return
        if migrate(self, server, model, vm, vmi, out):
            return
        # a new rebuild is recorded before the VM is rendered: the VM must take the new root disk
        # in the same reconcile that stops the guest, or KubeVirt restarts it on the old one
        starting = vm is not None and begin_rebuild(self, server, model, resolved, out)
        vm = ensure_vm(self, server, model, resolved, vm, vmi, out, rebuild_starting=starting)
        if vm is None:
            return
        if rebuild(self, server, model, vm, vmi, out, starting=starting):
            return
        if reboot(self, server, model, vmi, out):
            return
        power(self, server, model, vm, vmi, out)


def _first_build(status: Mapping[str, Any]) -> bool:
    """Never placed yet: a new server (or one whose build failed before it was placed)."""
    return not status.get("host") and status.get("status") in (None, ServerState.BUILD, ServerState.ERROR)


def _built(status: Mapping[str, Any]) -> bool:
    """The server was built and placed (not BUILD, not a failed build)."""
    return bool(status.get("host")) and status.get("status") not in (None, ServerState.BUILD, ServerState.ERROR)
