"""Stable MAC addresses for ports.

Neutron's default ``base_mac`` is ``fa:16:3e:00:00:00``: the first octet 0xfa has the
locally-administered bit set and the multicast bit clear, so the addresses never clash
with a vendor's. We keep that prefix (users recognise it) and derive the last three octets
from a seed that never changes for the port's lifetime (the Server's uid and the interface
index for ports the operator creates, the Port's uid for ports a user creates), so a
restart, a migration or a shelve keeps the MAC and the guest's interface matching works.
"""

from __future__ import annotations

import hashlib
import re

BASE = (0xFA, 0x16, 0x3E)
MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


def derive_mac(seed: str, salt: int = 0) -> str:
    """A locally-administered unicast MAC from `seed` (``salt`` picks another on a clash)."""
    digest = hashlib.sha256(f"{seed}#{salt}".encode()).digest()
    octets = list(BASE) + list(digest[:3])
    return ":".join(f"{o:02x}" for o in octets)


def is_locally_administered_unicast(mac: str) -> bool:
    first = int(mac.split(":")[0], 16)
    return bool(first & 0x02) and not first & 0x01


def normalise(mac: str) -> str:
    out = mac.strip().lower().replace("-", ":")
    if not MAC_RE.match(out):
        raise ValueError(f"{mac!r} is not a MAC address (six hex pairs separated by ':')")
    return out
