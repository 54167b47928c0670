"""Finding a Network from a reference, with Neutron's project isolation.

A Network lives in its project's namespace. A reference is ``name`` (the referrer's own
namespace) or ``namespace/name``. Another project's network may be used for ports only when
it is ``shared``, and as a floating IP pool / router gateway only when it is ``external``;
anything else is refused with a fault that says so. :func:`check` is the same decision on a
Network already read (pure), for callers that read several at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from kubestack.api.network import Network

from . import ipam, naming
from .faults import NetworkFault
from .kube import Kube


class NetworkRefError(NetworkFault):
    """A Network that cannot be used as named: missing, refused to the project, invalid."""


@dataclass
class ResolvedNetwork:
    namespace: str
    name: str
    body: dict
    model: Network
    plans: list[ipam.SubnetPlan]

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"


class Purpose:
    PORT = "port"
    FLOATING = "floating"
    GATEWAY = "gateway"


def plans_of(model: Network) -> list[ipam.SubnetPlan]:
    out = []
    for subnet in model.spec.subnets:
        p = ipam.plan(subnet)
        problem = ipam.check_pools(p)
        if problem:
            raise NetworkRefError(f"Network {model.metadata.namespace}/{model.metadata.name}: {problem}")
        out.append(p)
    problem = ipam.check_overlaps(out)
    if problem:  # admission refuses it; a Network stored before that rule
        raise NetworkRefError(f"Network {model.metadata.namespace}/{model.metadata.name}: {problem}")
    return out


def resolve(kube: Kube, ref: str, referrer_ns: str, purpose: str = Purpose.PORT) -> ResolvedNetwork:
    ns, name = naming.split_ref(ref, referrer_ns)
    return check(kube.ours("networks", ns, name), ref, referrer_ns, purpose)


def check(body: dict | None, ref: str, referrer_ns: str, purpose: str = Purpose.PORT) -> ResolvedNetwork:
    """`resolve` given the Network `ref` names as it is now (None: absent); pure."""
    ns, name = naming.split_ref(ref, referrer_ns)
    if body is None:
        raise NetworkRefError(f"Network {ref} could not be found.", 404, waiting=True)
    model = Network.from_k8s(body)
    if ns != referrer_ns:
        if purpose == Purpose.PORT and not model.spec.shared:
            raise NetworkRefError(
                f"Network {ns}/{name} is a private network of project {ns}: project "
                f"{referrer_ns} may not use it (only shared networks are usable by other "
                f"projects).", 403)
        if purpose in (Purpose.FLOATING, Purpose.GATEWAY) and not (model.spec.external or model.spec.shared):
            raise NetworkRefError(
                f"Network {ns}/{name} is a private network of project {ns}: project "
                f"{referrer_ns} may not use it.", 403)
    if purpose in (Purpose.FLOATING, Purpose.GATEWAY) and not model.spec.external:
        raise NetworkRefError(
            f"Network {ns}/{name} is not an external network: floating IPs and router "
            f"gateways need a network with external: true.", 400)
    if body.get("metadata", {}).get("deletionTimestamp"):
        raise NetworkRefError(f"Network {ns}/{name} is being deleted.", 409, waiting=True)
    return ResolvedNetwork(ns, name, body, model, plans_of(model))
