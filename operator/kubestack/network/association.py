"""Floating IP association (pure): which server, port and fixed IP a FloatingIP maps to,
given the objects it names as they are now; and which FloatingIPs a Port, Server or
SecurityGroup event can change, so that those, and only those, are synced again.

A FloatingIP may name a port or a server that does not exist yet (a GitOps apply creates
everything at once), or that goes away and comes back: its association is recomputed
whenever something it depends on changes, not only when the FloatingIP itself does.

* ``spec.port``: the Port must exist and be bound to a Server (``spec.deviceId``) that exists,
  and hold the fixed IP (``spec.fixedIpAddress``, else its first IPv4 address, else its first).
* ``spec.server``: the Server must exist. On tenant networks, its ports (in ``spec.networks``
  order: the port an entry plugs, or ``<server>-<i>``; bound to this server) must exist and
  hold the fixed IP, chosen as above across them. On the pod network only, the fixed IP is
  the pod address the Server reports; none reported yet is not an error (the Service selects
  the launcher pod whatever its address), unless ``fixedIpAddress`` asks for one.

Anything missing leaves the FloatingIP DOWN with the reason, its address still allocated (as
in Neutron); it turns ACTIVE by itself once the missing object appears. Likewise a
FloatingIP in ERROR because its external network does not exist (yet) gets its address once
the network appears. A FloatingIP in ERROR is associated with nothing, whatever it names
(:func:`status_fields`): its Service selects nothing either.

The Service forwards the ports the security groups allow in (:func:`service_groups`): a port's
own groups when the FloatingIP names a port (Neutron applies groups per port), the server's
otherwise.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from . import naming
from .claims import freed_address

Key = tuple[str, str]  # (namespace, name)


# ------------------------------------------------------------------------------ reading objects


def port_ips(port: Mapping[str, Any]) -> list[str]:
    return [f["ipAddress"] for f in (port.get("spec") or {}).get("fixedIps") or [] if f.get("ipAddress")]


def port_device(port: Mapping[str, Any] | None) -> str | None:
    return ((port or {}).get("spec") or {}).get("deviceId") or None


def port_servers(port: Mapping[str, Any]) -> set[str]:
    """The servers a port belongs to: the one using it (``deviceId``) and the one it was made
    for (the server label of an operator-made port)."""
    label = (port["metadata"].get("labels") or {}).get(naming.LABEL_SERVER)
    return {s for s in (port_device(port), label) if s}


def bound_to(port: Mapping[str, Any], server: Mapping[str, Any]) -> bool:
    """Whether `port` is this server's: it names the server, and is not a port left by an
    earlier server of the same name (owned by another uid, on its way out)."""
    meta = server["metadata"]
    if meta["name"] not in port_servers(port):
        return False
    return not any(r.get("kind") == "Server" and r.get("name") == meta["name"] and r.get("uid")
                   and meta.get("uid") and r["uid"] != meta["uid"]
                   for r in port["metadata"].get("ownerReferences") or [])


def server_port_names(server: Mapping[str, Any]) -> list[str]:
    """The names of a server's ports, in interface order (empty: the pod network only)."""
    name = server["metadata"]["name"]
    return [entry.get("port") or naming.port_name(name, i)
            for i, entry in enumerate((server.get("spec") or {}).get("networks") or [])]


def pod_addresses(server: Mapping[str, Any]) -> tuple[str, ...]:
    """The pod-network addresses a (pod-network-only) server reports in its status."""
    entries = ((server.get("status") or {}).get("addresses") or {}).get("pod") or []
    return tuple(e["addr"] for e in entries if e.get("addr") and e.get("type", "fixed") == "fixed")


# ------------------------------------------------------------------------------ association


@dataclass(frozen=True)
class Association:
    server: str | None = None  # the server whose launcher pod the Service selects
    port: str | None = None
    fixed_ip: str | None = None
    reason: str | None = None  # why what the FloatingIP names is not associated

    @property
    def active(self) -> bool:
        return self.server is not None and self.reason is None


def associate(spec: Mapping[str, Any], server: Mapping[str, Any] | None,
              ports: Mapping[str, Mapping[str, Any]]) -> Association:
    """The association of a FloatingIP with `spec`, given the Server it maps to as it is now
    (``spec.server``, or the device of ``spec.port``; None: missing) and the Ports that
    matter by name (``spec.port``, or the server's ports; a missing one is absent)."""
    wanted = spec.get("fixedIpAddress")
    if spec.get("port"):
        name = spec["port"]
        port = ports.get(name)
        if port is None:
            return Association(reason=f"Port {name} could not be found.")
        device = port_device(port)
        if not device:
            return Association(reason=f"Port {name} is not bound to a server.")
        if server is None or server["metadata"]["name"] != device:
            return Association(reason=f"Port {name} is bound to server {device}, which could not be found.")
        if _deleting(server):
            return Association(reason=f"Port {name} is bound to server {device}, which is being deleted.")
        return _pick(device, [(name, port_ips(port))], wanted, f"Port {name}")
    if spec.get("server"):
        sname = spec["server"]
        if server is None:
            return Association(reason=f"Server {sname} could not be found.")
        if _deleting(server):
            return Association(reason=f"Server {sname} is being deleted.")
        names = server_port_names(server)
        if not names:  # the pod network only: the address is the launcher pod's
            pods = pod_addresses(server)
            if wanted and wanted not in pods:
                return Association(reason=f"Server {sname} does not have fixed IP {wanted}.")
            return Association(server=sname, fixed_ip=wanted or _first_v4(pods))
        plugged = [(n, port_ips(ports[n])) for n in names if n in ports and bound_to(ports[n], server)]
        if not plugged:
            return Association(reason=f"Server {sname} has no port yet.")
        return _pick(sname, plugged, wanted, f"Server {sname}")
    return Association()


def status_fields(assoc: Association) -> dict[str, str | None]:
    """What a FloatingIP's status shows of its association: the server, port and fixed IP
    while it is active, none of them otherwise (DOWN, or ERROR: ``Association()``)."""
    active = assoc.active
    return {"server": assoc.server if active else None, "port": assoc.port if active else None,
            "fixedIpAddress": assoc.fixed_ip if active else None}


def port_security_groups(port: Mapping[str, Any]) -> list[str]:
    """A Port's security groups: none with port security off, Neutron's ``default`` unless
    the spec names some (an empty list names none)."""
    spec = port.get("spec") or {}
    if spec.get("portSecurityEnabled") is False:
        return []
    groups = spec.get("securityGroups")
    return list(groups) if groups is not None else ["default"]


def service_groups(spec: Mapping[str, Any], server: Mapping[str, Any] | None,
                   ports: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The security groups deciding which ports a FloatingIP's Service forwards: those of
    the port ``spec.port`` names (Neutron filters per port, and a user's port has its own),
    else the server's (``default`` unless its spec names some)."""
    if spec.get("port"):
        port = ports.get(spec["port"])
        return port_security_groups(port) if port is not None else []
    if server is None:
        return []
    groups = (server.get("spec") or {}).get("securityGroups")
    return list(groups) if groups is not None else ["default"]


def _deleting(obj: Mapping[str, Any]) -> bool:
    return bool(obj["metadata"].get("deletionTimestamp"))


def _first_v4(ips: Iterable[str]) -> str | None:
    ips = list(ips)
    return next((ip for ip in ips if ":" not in ip), ips[0] if ips else None)


def _pick(server: str, candidates: list[tuple[str, list[str]]], wanted: str | None,
          who: str) -> Association:
    """The fixed IP among the candidate ports' (the asked one, else the first IPv4 address,
    else the first address) and the port holding it."""
    if wanted:
        for port, ips in candidates:
            if wanted in ips:
                return Association(server=server, port=port, fixed_ip=wanted)
        return Association(reason=f"{who} does not have fixed IP {wanted}.")
    for v4_only in (True, False):
        for port, ips in candidates:
            ip = next((ip for ip in ips if not v4_only or ":" not in ip), None)
            if ip:
                return Association(server=server, port=port, fixed_ip=ip)
    return Association(reason=f"{who} has no fixed IP address yet.")


# ------------------------------------------------------------------------------ what matters


def target(fip: Mapping[str, Any] | None) -> tuple[str, str] | None:
    """What a FloatingIP names: ("port", name), ("server", name) or None."""
    spec = (fip or {}).get("spec") or {}
    if spec.get("port"):
        return ("port", spec["port"])
    if spec.get("server"):
        return ("server", spec["server"])
    return None


def port_view(port: Mapping[str, Any] | None) -> tuple | None:
    """What a FloatingIP reads of a Port (None: absent): its identity, servers, fixed IPs and
    security groups (the Service's ports); status writes do not change it."""
    if port is None:
        return None
    meta = port["metadata"]
    owners = tuple(sorted((r.get("name"), r.get("uid")) for r in meta.get("ownerReferences") or []
                          if r.get("kind") == "Server"))
    return (meta.get("uid"), tuple(sorted(port_servers(port))), tuple(port_ips(port)), owners,
            tuple(sorted(port_security_groups(port))))


def server_view(server: Mapping[str, Any] | None) -> tuple | None:
    """What a FloatingIP reads of a Server (None: absent): its identity, interfaces, groups
    (the Service's ports) and, on the pod network only, its pod address. A boot writes the
    Server's status many times; none of those writes changes this but the pod address."""
    if server is None:
        return None
    meta, spec = server["metadata"], server.get("spec") or {}
    networks = tuple((e.get("network"), e.get("port")) for e in spec.get("networks") or [])
    return (meta.get("uid"), bool(meta.get("deletionTimestamp")), networks,
            tuple(sorted(spec.get("securityGroups") or ["default"])),
            () if networks else pod_addresses(server))


class FloatingIPIndex:
    """Which FloatingIPs name which port or server, and which ports belong to which server,
    kept from watch events, to tell which FloatingIPs an event affects. Thread-safe (each
    kind's events come from its own thread); no API calls."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._targets: dict[Key, tuple[str, str]] = {}  # fip -> ("port"|"server", name)
        self._by_target: dict[tuple[str, str, str], set[str]] = {}  # (ns, kind, name) -> fips
        self._ports: dict[Key, tuple] = {}  # port -> port_view
        self._server_ports: dict[Key, set[str]] = {}  # server -> its ports' names
        self._groups: dict[Key, Any] = {}  # security group -> generation seen
        self._networks: dict[Key, Any] = {}  # network -> generation seen
        self._network_of: dict[Key, Key] = {}  # fip -> the network its address comes from
        self._by_network: dict[Key, set[Key]] = {}  # network -> fips
        self._in_error: set[Key] = set()  # fips showing ERROR (e.g. their pool was full)

    # ---- FloatingIPs
    def floating_ip_event(self, type_: str | None, body: Mapping[str, Any],
                          previous: Mapping[str, Any] | None = None) -> bool:
        """Record a FloatingIP event; True when it is new to the index, names something else
        now (a sync then catches up on what happened to its target before), or has just come to
        show ERROR (an address given back while its sync wrote that found no FloatingIP in ERROR
        here: :meth:`claim_event`; a re-sync that fails again writes nothing, so no loop)."""
        meta = body["metadata"]
        key = (meta["namespace"], meta["name"])
        new = None if type_ == "DELETED" else target(body)
        net = None if type_ == "DELETED" else naming.split_ref(
            (body.get("spec") or {}).get("floatingNetwork") or "", key[0])
        with self._lock:
            old_net = self._network_of.pop(key, None)
            if old_net is not None:
                fips = self._by_network.get(old_net)
                if fips is not None:
                    fips.discard(key)
                    if not fips:
                        del self._by_network[old_net]
            if net is not None and net[1]:
                self._network_of[key] = net
                self._by_network.setdefault(net, set()).add(key)
            was_in_error = key in self._in_error
            if type_ != "DELETED" and (body.get("status") or {}).get("status") == "ERROR":
                self._in_error.add(key)
            else:
                self._in_error.discard(key)
            entered_error = key in self._in_error and not was_in_error
            old = self._targets.pop(key, None)
            if old is not None:
                members = self._by_target.get((key[0], *old))
                if members is not None:
                    members.discard(key[1])
                    if not members:
                        del self._by_target[(key[0], *old)]
            if new is not None:
                self._targets[key] = new
                self._by_target.setdefault((key[0], *new), set()).add(key[1])
        if type_ == "DELETED":
            return False
        recreated = previous is not None and previous["metadata"].get("uid") != meta.get("uid")
        return previous is None or recreated or old != new or entered_error

    # ---- IP claims
    def claim_event(self, type_: str | None, body: Mapping[str, Any]) -> set[Key]:
        """The FloatingIPs to sync after an IP claim event: those in ERROR taking their address
        from the network a deleted claim gives one back to (a full pool has room again)."""
        freed = freed_address(type_, body)
        if freed is None:
            return set()
        with self._lock:
            return {key for key in self._by_network.get(freed.network, ()) if key in self._in_error}

    # ---- Ports
    def port_event(self, type_: str | None, body: Mapping[str, Any]) -> set[Key]:
        """Record a Port event; the FloatingIPs to sync when it changed what they read: the
        port came or went, changed its fixed IPs, or its server."""
        meta = body["metadata"]
        ns, name = meta["namespace"], meta["name"]
        new = None if type_ == "DELETED" else port_view(body)
        with self._lock:
            old = self._ports.get((ns, name))
            if old == new:
                return set()
            servers = set(old[1] if old else ()) | set(new[1] if new else ())
            for s in old[1] if old else ():
                members = self._server_ports.get((ns, s))
                if members is not None:
                    members.discard(name)
                    if not members:
                        del self._server_ports[(ns, s)]
            if new is None:
                self._ports.pop((ns, name), None)
            else:
                self._ports[(ns, name)] = new
                for s in new[1]:
                    self._server_ports.setdefault((ns, s), set()).add(name)
            out = self._naming(ns, "port", name)
            for s in servers:
                out |= self._naming(ns, "server", s)
            return out

    # ---- Servers
    def server_event(self, type_: str | None, body: Mapping[str, Any],
                     previous: Mapping[str, Any] | None) -> set[Key]:
        """The FloatingIPs to sync after a Server event (`previous`: the copy before it, None
        when new): those naming the server or one of its ports, when the server came, went,
        or changed what they read."""
        meta = body["metadata"]
        ns, name = meta["namespace"], meta["name"]
        with self._lock:
            ports = set(self._server_ports.get((ns, name), ()))
            if (ns, "server", name) not in self._by_target and not any(
                    (ns, "port", p) in self._by_target for p in ports):
                return set()  # most servers: nothing names them
            if type_ == "DELETED":
                before, after = server_view(previous or body), None
            else:
                before, after = server_view(previous), server_view(body)
            if before == after:
                return set()
            out = self._naming(ns, "server", name)
            for p in ports:
                out |= self._naming(ns, "port", p)
            return out

    # ---- SecurityGroups
    def security_group_event(self, type_: str | None, body: Mapping[str, Any]) -> set[Key]:
        """The FloatingIPs to sync after a SecurityGroup event (their Service forwards the
        ports the groups allow in): every associated one of the namespace, when a group came,
        went or changed its rules (a new generation)."""
        meta = body["metadata"]
        key = (meta["namespace"], meta["name"])
        with self._lock:
            if not _seen(self._groups, key, type_, meta.get("generation")):
                return set()
            return {fip for fip in self._targets if fip[0] == key[0]}

    # ---- Networks
    def network_event(self, type_: str | None, body: Mapping[str, Any]) -> set[Key]:
        """The FloatingIPs to sync after a Network event: those taking their address from it,
        when it came, went or changed its subnets (a new generation)."""
        meta = body["metadata"]
        key = (meta["namespace"], meta["name"])
        with self._lock:
            if not _seen(self._networks, key, type_, meta.get("generation")):
                return set()
            return set(self._by_network.get(key, ()))

    def _naming(self, ns: str, kind: str, name: str) -> set[Key]:
        return {(ns, f) for f in self._by_target.get((ns, kind, name), ())}


def _seen(generations: dict[Key, Any], key: Key, type_: str | None, generation: Any) -> bool:
    """Record an event of an object whose spec matters; True when it is new, gone, or has a
    new generation (status writes keep the generation)."""
    if type_ == "DELETED":
        return generations.pop(key, None) is not None
    if key in generations and generations[key] == generation:
        return False
    generations[key] = generation
    return True
