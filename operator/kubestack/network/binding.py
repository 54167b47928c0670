"""What a Port and a Router depend on (pure): a Port's binding to the server its ``deviceId``
names, a Router's check of the networks it names, and indexes of which Ports and Routers name
which Network or Server, so that a Network or Server appearing, going or changing re-syncs the
Ports and Routers it affects, and only those.

A GitOps apply creates a Port together with (often before) its Network, and a Router with its
networks; a server using a pre-created port is deleted, and maybe created again. So each is
reconciled when what it names changes, not only when it changes itself:

* A Port whose network (or requested subnet) does not exist is ERROR with the reason; once the
  network exists (or has the subnet) it gets its fixed IPs and MAC and turns DOWN or ACTIVE,
  as a port created then would have.
* A Port is *bound* (ACTIVE, ``status.server``) while the server its ``spec.deviceId`` names
  exists, is not being deleted and plugs it (a ``spec.networks`` entry naming the port, or the
  entry an operator-made port ``<server>-<i>`` was made for); otherwise it is DOWN, not bound,
  and ``status.reason`` says why. Deleting a server unbinds the user's ports it used, as Nova
  does in Neutron, but in the status only (see :func:`bind` for why ``spec.deviceId`` stays).
* A Port in ERROR because an address it asks for is taken (a fixed IP another port holds, or
  a subnet whose pool is full) gets it once the address is given back: Neutron would refuse the
  create, but here the Port exists, so it becomes usable as soon as it can. An address is given
  back when its claim is deleted (a port, a server's ports or a floating IP going; a failed
  boot undoing its claims), which is when the Ports in ERROR on that network waiting for that
  address, or for any address of that subnet, are synced again (:meth:`PortIndex.claim_event`).
* A Router is checked again when a network it names appears, goes or changes.

The indexes are fed by watch events (Ports, Routers and Networks through kopf, Servers through
the shared informer) and only ever say which keys to sync; they make no API calls. Most events
change nothing the indexes read (a boot writes its Server many times, a Network's status is
refreshed on a timer) and queue nothing; an object that appears is compared with the state its
dependents show, so the listing at a restart queues only those that are out of date.
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from . import naming
from .association import server_port_names
from .claims import Freed, freed_address
from .resolve import NetworkRefError, Purpose, check

Key = tuple[str, str]  # (namespace, name)

ERROR = "ERROR"
DOWN = "DOWN"

# what a server lookup returns while the servers are not known yet (the informer has not
# listed them): no conclusion is drawn from it
UNKNOWN: Any = object()

NOT_REALISED = ("Routers are modelled but not realised: the cluster's secondary networks "
                "(bridge, flat, vlan, OVN-Kubernetes layer2) provide no routing or SNAT between "
                "networks; connect servers to a shared provider network instead.")


# ------------------------------------------------------------------------------ ports


@dataclass(frozen=True)
class PortFacts:
    """What the binding and the index read of a Port."""

    name: str
    network: Key
    device: str | None  # spec.deviceId
    owners: tuple[tuple[str, str], ...]  # (name, uid) of the Servers owning it (operator-made)
    synced: bool  # the Port controller has written its status once
    state: str | None  # status.status
    server: str | None  # status.server: the server it is shown bound to
    deleting: bool
    # what spec.fixedIps asks for: (subnet, address) pairs, either may be None; () asks for
    # one address of the first subnet of each IP version
    wants: tuple[tuple[str | None, str | None], ...] = ()


def port_facts(port: Mapping[str, Any]) -> PortFacts:
    meta, spec = port["metadata"], port.get("spec") or {}
    status = port.get("status") or {}
    owners = tuple(sorted((r.get("name") or "", r.get("uid") or "")
                          for r in meta.get("ownerReferences") or [] if r.get("kind") == "Server"))
    return PortFacts(
        name=meta["name"], network=naming.split_ref(spec.get("network") or "", meta["namespace"]),
        device=spec.get("deviceId") or None, owners=owners,
        synced=status.get("observedGeneration") is not None, state=status.get("status"),
        server=status.get("server") or None, deleting=bool(meta.get("deletionTimestamp")),
        wants=tuple((f.get("subnet") or None, f.get("ipAddress") or None) for f in spec.get("fixedIps") or []))


@dataclass(frozen=True)
class Binding:
    server: str | None = None  # the server the port is bound to (None: not bound)
    reason: str | None = None  # why a port naming a server is not bound to it


def bind(port: Mapping[str, Any] | PortFacts, server: Mapping[str, Any] | None) -> Binding:
    """The binding of `port` given the Server its ``spec.deviceId`` names as it is now (None:
    absent).

    Only the status follows the server: ``spec.deviceId`` is not cleared when the server goes.
    In Neutron, Nova clears device_id when it deletes a server; here the spec belongs to the
    user, or to the git repository a GitOps tool applies, and a Port manifest may carry
    ``deviceId`` itself (a Heat ``OS::Neutron::Port`` with ``device_id`` does). A controller
    clearing it would fight the tool that writes it back, each undoing the other forever. So
    the spec keeps naming the server the port is meant for, and the status says whether it is
    bound: DOWN, no ``status.server``, the reason. The port is free for another server
    meanwhile (``ports._plan`` refuses only a port bound to another server that exists and
    uses it), which takes it by writing ``deviceId`` when it plugs it, as every boot does
    (Nova sets device_id); a server of the name ``deviceId`` gives binds it again.
    """
    f = port if isinstance(port, PortFacts) else port_facts(port)
    if not f.device:
        return Binding()
    if server is None or server["metadata"]["name"] != f.device:
        return Binding(reason=f"Server {f.device} could not be found: port {f.name} is not bound.")
    if server["metadata"].get("deletionTimestamp"):
        return Binding(reason=f"Server {f.device} is being deleted: port {f.name} is not bound.")
    if orphaned(f, server):
        return Binding(reason=f"Port {f.name} was made for an earlier server {f.device}: it is not bound.")
    if f.name not in server_port_names(server):
        return Binding(reason=f"Server {f.device} does not use port {f.name}: it is not bound.")
    return Binding(server=f.device)


def orphaned(port: PortFacts, server: Mapping[str, Any] | None) -> bool:
    """Whether `port` is owned by Servers none of which is `server` as a live object (gone,
    being deleted, or replaced by a namesake): the garbage collector deletes it, so it is not
    worth a status write."""
    if not port.owners:
        return False
    if server is None or server["metadata"].get("deletionTimestamp"):
        return True
    meta = server["metadata"]
    return not any(name == meta["name"] and (not uid or not meta.get("uid") or uid == meta["uid"])
                   for name, uid in port.owners)


def server_view(server: Mapping[str, Any] | None) -> tuple | None:
    """What a Port's binding reads of a Server (None: absent): its identity, whether it is
    being deleted and the ports it plugs. None of a boot's status writes changes it."""
    if server is None:
        return None
    meta = server["metadata"]
    return (meta.get("uid"), bool(meta.get("deletionTimestamp")), tuple(server_port_names(server)))


def waits_for(port: PortFacts, freed: Freed) -> bool:
    """Whether `port` (in ERROR on `freed`'s network) may get its addresses now that `freed` is
    free: it asks for that address, for any address of that subnet, or for any address at all
    (no fixedIps: the first subnet of each IP version, which only the network knows: any
    subnet counts)."""
    if not port.wants:
        return True
    for subnet, address in port.wants:
        if address is not None:
            if _same_address(address, freed.address):
                return True
        elif subnet is None or subnet == freed.subnet:
            return True
    return False


def _same_address(a: str, b: str) -> bool:
    try:
        return ipaddress.ip_address(a) == ipaddress.ip_address(b)
    except ValueError:
        return a == b


# ------------------------------------------------------------------------------ routers


def router_networks(spec: Mapping[str, Any], namespace: str) -> frozenset[Key]:
    """The Networks a Router names: its external gateway's and its interfaces'."""
    refs = [((spec.get("externalGateway") or {}).get("network"))]
    refs += [i.get("network") for i in spec.get("interfaces") or []]
    return frozenset(naming.split_ref(r, namespace) for r in refs if r)


def check_router(spec: Mapping[str, Any], namespace: str,
                 networks: Mapping[Key, Mapping[str, Any] | None]) -> NetworkRefError | None:
    """Why a Router's references are invalid (the fault, with Neutron's message), or None,
    given the Networks it names as they are now (absent or None: missing): the gateway network
    must be external and usable by the project, each interface's network usable for ports and
    have the subnet."""
    try:
        gw = spec.get("externalGateway")
        if gw:
            ref = gw["network"]
            check(_dict(networks.get(naming.split_ref(ref, namespace))), ref, namespace, Purpose.GATEWAY)
        for iface in spec.get("interfaces") or []:
            ref = iface["network"]
            net = check(_dict(networks.get(naming.split_ref(ref, namespace))), ref, namespace, Purpose.PORT)
            if iface["subnet"] not in {p.name for p in net.plans}:
                return NetworkRefError(f"Subnet {iface['subnet']} could not be found on network {net.ref}.",
                                       404, waiting=True)
    except NetworkRefError as exc:
        return exc
    return None


def router_state(spec: Mapping[str, Any], namespace: str,
                 networks: Mapping[Key, Mapping[str, Any] | None]) -> tuple[str, str, bool]:
    """(status, reason, stalled): ERROR with the reason while a reference is invalid, Stalled
    unless what it waits for may still come (`faults.NetworkFault.waiting`: a network not
    created yet); else DOWN: a valid router is modelled, not realised, and says so (not
    Stalled: nothing in its spec is wrong, and no change of it would realise it)."""
    problem = check_router(spec, namespace, networks)
    if problem is not None:
        return ERROR, problem.message, problem.stalled
    return DOWN, NOT_REALISED, False


def _dict(body: Mapping[str, Any] | None) -> dict | None:
    return None if body is None else dict(body)


# ------------------------------------------------------------------------------ indexes


def network_view(body: Mapping[str, Any]) -> tuple:
    """What Ports and Routers read of a Network: its identity, whether it is being deleted,
    and its spec (by generation: the status, refreshed on a timer, does not count)."""
    meta = body["metadata"]
    return (meta.get("uid"), bool(meta.get("deletionTimestamp")), meta.get("generation"))


@dataclass(frozen=True)
class _Shown:
    """What a dependent shows: whether it was synced once, its status, whether it goes."""

    synced: bool
    state: str | None
    deleting: bool


class _NetworkDependents:
    """Dependents (Ports, Routers) by the Networks they name, and the Networks as last seen.
    Thread-safe; no API calls."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._networks: dict[Key, tuple] = {}  # network -> network_view
        self._by_network: dict[Key, set[Key]] = {}  # network -> dependents
        self._named: dict[Key, frozenset[Key]] = {}  # dependent -> networks
        self._shown: dict[Key, _Shown] = {}  # dependent -> what it shows

    def _record(self, dependent: Key, networks: Iterable[Key], shown: _Shown | None) -> None:
        """Record what a dependent names and shows (None: it is gone)."""
        if shown is None:
            self._shown.pop(dependent, None)
        else:
            self._shown[dependent] = shown
        self._name(dependent, networks if shown is not None else ())

    def _name(self, dependent: Key, networks: Iterable[Key]) -> None:
        for net in self._named.pop(dependent, frozenset()):
            _discard(self._by_network, net, dependent)
        networks = frozenset(networks)
        if networks:
            self._named[dependent] = networks
            for net in networks:
                self._by_network.setdefault(net, set()).add(dependent)

    def _present(self, net: Key) -> bool:
        view = self._networks.get(net)
        return view is not None and not view[1]

    def network_event(self, type_: str | None, body: Mapping[str, Any]) -> set[Key]:
        """The dependents to sync after a Network event. A network that appears matters to
        those waiting for it (in ERROR, or not synced yet: at a restart, the listing of every
        network so queues only those); one that goes, is being deleted, is replaced or has a
        new spec, to every dependent naming it."""
        meta = body["metadata"]
        key = (meta["namespace"], meta["name"])
        new = None if type_ == "DELETED" else network_view(body)
        with self._lock:
            old = self._networks.get(key)
            if old == new:
                return set()
            if new is None:
                self._networks.pop(key, None)
            else:
                self._networks[key] = new
            dependents = set(self._by_network.get(key, ()))
            appeared = old is None and new is not None and not new[1]
            return {d for d in dependents if self._affected(d, appeared)}

    def _affected(self, dependent: Key, appeared: bool) -> bool:
        shown = self._shown.get(dependent)
        if shown is None or shown.deleting:
            return False
        return not shown.synced or shown.state == ERROR if appeared else True


class PortIndex(_NetworkDependents):
    """Which Ports name which Network and which Server (``deviceId``), with the state each
    shows. `servers(namespace, name)` looks a Server up as it is now (the shared informer's
    Store: None when absent, UNKNOWN before it has listed)."""

    def __init__(self, servers: Callable[[str, str], Any]) -> None:
        super().__init__()
        self._servers = servers
        self._ports: dict[Key, PortFacts] = {}
        self._by_device: dict[Key, set[str]] = {}  # (namespace, server) -> port names
        self._in_error: dict[Key, set[Key]] = {}  # network -> the Ports shown ERROR on it

    def port_event(self, type_: str | None, body: Mapping[str, Any]) -> bool:
        """Record a Port event; True when the Port shows a state the world no longer matches
        (ERROR while its network exists, or a binding its server no longer has, or not yet),
        so that an event of its network or server which came before it was shown is not lost."""
        meta = body["metadata"]
        key = (meta["namespace"], meta["name"])
        facts = None if type_ == "DELETED" else port_facts(body)
        with self._lock:
            old = self._ports.pop(key, None)
            if old is not None and old.device:
                _discard(self._by_device, (key[0], old.device), key[1])
            if old is not None:
                _discard(self._in_error, old.network, key)
            if facts is None:
                self._record(key, (), None)
                return False
            self._ports[key] = facts
            self._record(key, [facts.network], _Shown(facts.synced, facts.state, facts.deleting))
            if facts.device:
                self._by_device.setdefault((key[0], facts.device), set()).add(key[1])
            if facts.synced and facts.state == ERROR and not facts.deleting:
                self._in_error.setdefault(facts.network, set()).add(key)
            if not facts.synced or facts.deleting:
                return False  # the Port controller's own handler is on it
            if facts.state == ERROR:
                return self._present(facts.network)
        # read after the index is updated: a Server event either comes later and finds the
        # facts above, or has already updated the Store read here
        server = self._servers(key[0], facts.device) if facts.device else None
        if server is UNKNOWN or orphaned(facts, server):
            return False
        return bind(facts, server).server != facts.server

    def server_event(self, type_: str | None, body: Mapping[str, Any],
                     previous: Mapping[str, Any] | None) -> set[Key]:
        """The Ports to sync after a Server event: those naming the server whose shown binding
        it changes (bound when it appears and plugs them, unbound when it goes or is being
        deleted), leaving out the server's own ports, which go with it."""
        meta = body["metadata"]
        ns, name = meta["namespace"], meta["name"]
        with self._lock:
            names = self._by_device.get((ns, name))
            if not names:
                return set()  # a server no port names (the pod network only): one lookup
            ports = [self._ports[(ns, n)] for n in names]
        if type_ == "DELETED":
            before, after, server = server_view(previous or body), None, None
        else:
            before, after, server = server_view(previous), server_view(body), body
        if before == after:
            return set()
        out = set()
        for facts in ports:
            if facts.deleting or facts.state == ERROR or orphaned(facts, server):
                continue
            if not facts.synced or bind(facts, server).server != facts.server:
                out.add((ns, facts.name))
        return out

    def claim_event(self, type_: str | None, body: Mapping[str, Any]) -> set[Key]:
        """The Ports to sync after an IP claim event: those in ERROR waiting for the address it
        gives back (a claim deleted), and only those (a boot's claims cost one lookup). A Port
        showing ERROR only after the claim went is synced on its own event (`port_event`)."""
        freed = freed_address(type_, body)
        if freed is None:
            return set()
        with self._lock:
            return {key for key in self._in_error.get(freed.network, ())
                    if waits_for(self._ports[key], freed)}


def _discard(index: dict[Any, set], key: Any, member: Any) -> None:
    members = index.get(key)
    if members is not None:
        members.discard(member)
        if not members:
            del index[key]


class RouterIndex(_NetworkDependents):
    """Which Routers name which Network, with the state each shows."""

    def router_event(self, type_: str | None, body: Mapping[str, Any]) -> bool:
        """Record a Router event; True when it shows ERROR while every network it names
        exists (a network that appeared before the ERROR was shown)."""
        meta = body["metadata"]
        key = (meta["namespace"], meta["name"])
        with self._lock:
            if type_ == "DELETED":
                self._record(key, (), None)
                return False
            status = body.get("status") or {}
            networks = router_networks(body.get("spec") or {}, key[0])
            shown = _Shown(status.get("observedGeneration") is not None, status.get("status"),
                           bool(meta.get("deletionTimestamp")))
            self._record(key, networks, shown)
            return (shown.synced and not shown.deleting and shown.state == ERROR and bool(networks)
                    and all(self._present(n) for n in networks))
