"""Why a Network, Port, FloatingIP or Router is in ERROR, and whether kstatus reads it as
Stalled (pure).

Every such ERROR comes from a :class:`NetworkFault`, raised where the problem is found, which
says whether it *waits*: whether something that may still happen, with no spec changing, cures
it. kstatus-based tools (Flux's health checks) read ``Stalled=True`` as a failed apply at
once, so a fault that waits must never carry it: a GitOps apply creates a Port before its
Network, or a FloatingIP before the subnet it takes its address from, and the health check
may read the Port between the two. A fault that waits:

* a Network not created yet, or being deleted (it goes, and may be created again);
* a subnet not there yet (a subnet is a Neutron object of its own, here an entry added to the
  Network; one a Port or a requested address needs may come with the same apply);
* an address taken by another port, or a pool with none left (given back when a port, a
  server or a floating IP goes: the controllers re-sync on IP claim deletes);
* a write that lost a race (retried).

Every other fault is Stalled (``waiting`` False, the default): only a change of a spec cures
it, the object's own or the Network's it names. A Network's invalid allocation pools or overlapping subnets (for it,
and for what names it); another project's private network, or a network that is not external
for a floating IP or a router gateway (who may use a network, and how, is its owner's spec,
which the referrer's apply does not bring: a Server's boot treats these as final too); a
requested address a subnet can never hand out (outside the CIDR of the subnet named, which is
immutable, or its gateway, network or broadcast address; an address asked for twice). Being wrongly Stalled fails a good apply, being
wrongly not Stalled only reports a bad one at the health check's timeout: a doubtful fault
waits. Stalled goes as soon as the object leaves ERROR, or its fault turns into one that waits.
"""

from __future__ import annotations

from typing import Any

from kubestack.k8s.conditions import set_condition, with_stalled


class NetworkFault(Exception):
    """A network object cannot be what its spec asks. `message` is the fault users see
    (Neutron's), `code` its HTTP status, `waiting` whether something that may still happen
    cures it with no spec changing (see the module docstring)."""

    def __init__(self, message: str, code: int = 400, *, waiting: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.waiting = waiting

    @property
    def stalled(self) -> bool:
        """kstatus' Stalled: only a spec change cures it."""
        return not self.waiting


def ready_conditions(conditions: list[dict[str, Any]] | None, ready: bool, reason: str, message: str,
                     generation: int | None, *, stalled: bool = False) -> list[dict[str, Any]]:
    """`conditions` with Ready set as given and kstatus' Stalled (the same reason and message)
    while `stalled`, removed otherwise: every status write of these kinds goes through here,
    so an object that recovers loses its Stalled."""
    with_ready = set_condition(conditions, "Ready", ready, reason, message, generation)
    return with_stalled(with_ready, stalled, reason, message)


def error_conditions(conditions: list[dict[str, Any]] | None, reason: str, fault: NetworkFault,
                     generation: int | None) -> list[dict[str, Any]]:
    """The conditions of an object in ERROR for `fault`: Ready=False, Stalled unless it waits."""
    return ready_conditions(conditions, False, reason, fault.message, generation, stalled=fault.stalled)
