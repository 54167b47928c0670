"""IP address claims as the network code reads them back (pure): a claim is a ConfigMap in
the network's namespace (``ports._claim_body``), labelled ``kubestack.io/ip-claim=true``, its data
naming the network, subnet and address; deleting it gives the address back."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import naming

Key = tuple[str, str]


@dataclass(frozen=True)
class Freed:
    """An address given back to its network."""

    network: Key
    subnet: str
    address: str


def freed_address(type_: str | None, claim: Mapping[str, Any]) -> Freed | None:
    """The address an IP claim event gives back: a claim (``ports._claim_body``: in the
    network's namespace, its data naming the network, subnet and address) deleted; else None."""
    if type_ != "DELETED":
        return None
    data = claim.get("data") or {}
    if not data.get("network") or not data.get("address"):
        return None
    return Freed(naming.split_ref(data["network"], claim["metadata"]["namespace"]),
                 data.get("subnet") or "", data["address"])
