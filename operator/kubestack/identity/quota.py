"""The quota ledger: Nova/Cinder/Neutron quota decisions, serialised in the leader operator.

OpenStack counts usage in its database and re-checks after the claim; here the single leader
operator keeps every project's usage in memory, so a decision and its claim are one step
under one lock and twenty concurrent creates racing for the last two slots admit exactly
two. The ledger is rebuilt from the cluster when the operator starts (`rebuild`) and kept
honest by periodic recounts (`reconcile`), so it is always what the cluster holds.

Usage is the sum of the *holders'* deltas: a holder is one object that uses quota, keyed
e.g. ``server/<namespace>/<name>`` with ``{"instances": 1, "cores": 4, "ram": 8192}``.
Reserving the same holder again replaces its deltas (a resize re-reserves the Server with
the new flavor's numbers; only the increase is checked), `release` gives them back.

A project with a parent (Keystone's hierarchy) is bound by its own limits and by every
ancestor's: an ancestor's limit caps the usage of its whole subtree (itself and all its
descendants), as Keystone's unified limits do with the strict-two-level model, whatever the
children's own limits say.

Resource keys are the Project quota fields on the wire (camelCase): instances, cores, ram,
volumes, gigabytes, snapshots, networks, subnets, ports, routers, floatingIps,
securityGroups, securityGroupRules, keyPairs, images, serverGroups. A limit of -1 (or a
resource without a limit) is unlimited; a project without limits set (a namespace that
belongs to no Project) is unlimited.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterable, Mapping

UNLIMITED = -1

# Keys counted per project (per-object limits such as metadataItems and serverGroupMembers
# are checked by the owning controller against the object itself, not summed here).
PROJECT_RESOURCES = (
    "instances", "cores", "ram", "keyPairs", "serverGroups", "volumes", "gigabytes",
    "snapshots", "networks", "subnets", "ports", "routers", "floatingIps", "securityGroups",
    "securityGroupRules", "images",
)

# How each resource reads in Nova's message ("... of 12 cores").
_UNITS = {"ram": "ram"}


class QuotaExceeded(ValueError):
    """A request that would take a project over one or more quotas.

    `str()` is Nova's fault message, e.g.
    ``Quota exceeded for cores: Requested 4, but already used 10 of 12 cores``; when several
    resources are over, they are listed together in Nova's way (comma-separated, in the same
    order in each part).
    """

    def __init__(self, project: str, overs: list[tuple[str, int, int, int]], *, bound_by: str | None = None):
        # overs: (resource, requested, used, limit), in the order they were checked; bound_by:
        # the ancestor whose limit (over its whole subtree) the request breaks
        self.project = project
        self.bound_by = bound_by
        self.overs = overs
        self.resource, self.requested, self.used, self.limit = overs[0]
        names = ", ".join(o[0] for o in overs)
        req = ", ".join(str(o[1]) for o in overs)
        used = ", ".join(str(o[2]) for o in overs)
        allowed = ", ".join(str(o[3]) for o in overs)
        where = f" (the limit of parent project {bound_by}, for it and its children)" if bound_by else ""
        super().__init__(
            f"Quota exceeded for {names}: Requested {req}, but already used {used} of {allowed} {names}{where}")


def is_quota_message(message: str | None) -> bool:
    """True for a fault message produced by `QuotaExceeded` (such objects hold no quota)."""
    return bool(message) and message.startswith("Quota exceeded for ")


def _clean(deltas: Mapping[str, int]) -> dict[str, int]:
    return {k: int(v) for k, v in deltas.items() if int(v) != 0}


class QuotaLedger:
    """Thread-safe per-project usage and limits; see the module docstring."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._limits: dict[str, dict[str, int]] = {}
        self._parents: dict[str, str] = {}
        # holder key -> (project, deltas)
        self._holders: dict[str, tuple[str, dict[str, int]]] = {}
        # usage not attributed to a holder (from `rebuild(usage=...)`), per project
        self._base: dict[str, dict[str, int]] = {}
        self._usage: dict[str, dict[str, int]] = {}
        # a sequence number per change, so a recount started at `mark()` never undoes a
        # reservation or a release that happened while it was listing
        self._seq = itertools.count(1)
        self._now = 0
        # holder key -> (sequence number of its last change, its project then)
        self._touched: dict[str, tuple[int, str | None]] = {}
        # called (outside the lock) whenever room may have been freed: what was refused
        # for quota may fit now, and nothing else would tell its controller to retry
        self._on_freed: list[Callable[[], None]] = []

    def on_room_freed(self, callback: Callable[[], None]) -> None:
        """Call `callback` after every change that may free room: a release, a reservation
        replaced by a smaller one, new limits or parents, a forgotten project, a recount."""
        self._on_freed.append(callback)

    def _freed(self) -> None:
        for callback in list(self._on_freed):
            callback()

    # ---- limits -------------------------------------------------------------------------

    def set_limits(self, project: str, limits: Mapping[str, int]) -> None:
        """Replace `project`'s limits (-1: unlimited; a missing key: unlimited)."""
        with self._lock:
            self._limits[project] = {k: int(v) for k, v in limits.items()}
        self._freed()

    def set_parent(self, project: str, parent: str | None) -> None:
        """`project`'s place in the hierarchy: its usage counts against `parent`'s limits (and
        theirs, up the tree) too."""
        with self._lock:
            if parent:
                self._parents[project] = parent
            else:
                self._parents.pop(project, None)
        self._freed()

    def forget_project(self, project: str) -> None:
        """Drop a deleted project's limits, base usage and holders."""
        with self._lock:
            for key in [k for k, (p, _) in self._holders.items() if p == project]:
                self._drop(key)
            self._parents.pop(project, None)
            self._limits.pop(project, None)
            self._base.pop(project, None)
            self._usage.pop(project, None)
        self._freed()

    def limits(self, project: str) -> dict[str, int]:
        with self._lock:
            return dict(self._limits.get(project, {}))

    # ---- claims -------------------------------------------------------------------------

    def reserve(self, project: str | None, holder_key: str, deltas: Mapping[str, int]) -> None:
        """Claim `deltas` for `holder_key` in `project`, replacing what that holder held.

        Raises `QuotaExceeded` (and changes nothing) when an *increase* would take a
        resource over its limit; a decrease is always admitted, even over quota (as Nova
        admits a resize down). `project` None (a namespace of no Project) is unlimited and
        not counted.
        """
        new = _clean(deltas)
        with self._lock:
            if not project:
                self._drop(holder_key)
                return
            previous = self._holders.get(holder_key)
            prev = previous[1] if previous and previous[0] == project else {}
            increases = {r: v - prev.get(r, 0) for r, v in new.items() if v - prev.get(r, 0) > 0}
            # the project's own limits first (Nova's message as it is), then each ancestor's
            # over its whole subtree
            for bound in [project, *self._ancestors(project)]:
                overs = self._overs(bound, increases, subtree=bound != project)
                if overs:
                    raise QuotaExceeded(project, overs, bound_by=None if bound == project else bound)
            self._drop(holder_key)
            self._holders[holder_key] = (project, new)
            self._add(project, new, +1)
            self._touch(holder_key, project)
        if any(new.get(r, 0) < v for r, v in prev.items()):  # a resize down
            self._freed()

    def release(self, holder_key: str) -> bool:
        """Give back what `holder_key` holds; True when it held something."""
        with self._lock:
            released = self._drop(holder_key)
        if released:
            self._freed()
        return released

    def holds(self, holder_key: str) -> dict[str, int] | None:
        with self._lock:
            held = self._holders.get(holder_key)
            return dict(held[1]) if held else None

    def usage(self, project: str) -> dict[str, int]:
        """In-use per resource (resources not in use are absent)."""
        with self._lock:
            return {k: v for k, v in self._usage.get(project, {}).items() if v}

    def holders(self, project: str) -> dict[str, dict[str, int]]:
        with self._lock:
            return {k: dict(d) for k, (p, d) in self._holders.items() if p == project}

    # ---- rebuilding from the cluster ----------------------------------------------------

    def rebuild(self, project: str, usage: Mapping[str, int] | None = None,
                holders: Mapping[str, Mapping[str, int]] | None = None) -> None:
        """Replace everything known about `project` with a count from the cluster: the
        holders found (objects that use quota) and, optionally, the total usage; usage not
        explained by a holder is kept as the project's base."""
        with self._lock:
            for key in [k for k, (p, _) in self._holders.items() if p == project]:
                del self._holders[key]
            totals: dict[str, int] = {}
            for key, deltas in (holders or {}).items():
                clean = _clean(deltas)
                self._holders[key] = (project, clean)
                for r, v in clean.items():
                    totals[r] = totals.get(r, 0) + v
            base = {r: int(v) - totals.get(r, 0) for r, v in (usage or {}).items()}
            self._base[project] = {r: v for r, v in base.items() if v > 0}
            self._recompute(project)
        self._freed()

    def mark(self) -> int:
        """A point in the ledger's history; pass it to `reconcile` with a count listed after it."""
        with self._lock:
            return self._now

    def reconcile(self, project: str, holders: Mapping[str, Mapping[str, int]], since: int,
                  undecided: Iterable[str] = ()) -> bool:
        """Make `project`'s holders match a count listed after `mark()` returned `since`.

        A holder reserved or released after `since` is left alone (the list may predate
        it), and so is every `undecided` key (objects whose listed status may lag what the
        ledger decided since: `usage.undecided`); every other holder is set to what the count
        found: missing ones are released, unknown ones (kinds no controller reserves, or
        drift) are added. Returns True when something changed."""
        changed = False
        keep = set(undecided)
        with self._lock:
            current = {k: d for k, (p, d) in self._holders.items() if p == project}
            for key in current.keys() - holders.keys() - keep:
                if self._last_change(key) <= since:
                    self._drop(key, project)
                    changed = True
            for key, deltas in holders.items():
                if self._last_change(key) > since:
                    continue
                clean = _clean(deltas)
                held = self._holders.get(key)
                if held != (project, clean):
                    self._drop(key, project)
                    self._holders[key] = (project, clean)
                    self._add(project, clean, +1)
                    changed = True
            # what this recount has seen settled needs no history any more
            for key in [k for k, (seq, p) in self._touched.items()
                        if p in (project, None) and seq <= since and k not in self._holders]:
                del self._touched[key]
        if changed:
            self._freed()
        return changed

    def _last_change(self, key: str) -> int:
        return self._touched.get(key, (0, None))[0]

    # ---- internals (lock held) ------------------------------------------------------------

    def _touch(self, key: str, project: str | None) -> None:
        self._now = next(self._seq)
        self._touched[key] = (self._now, project)

    def _drop(self, key: str, project: str | None = None) -> bool:
        held = self._holders.pop(key, None)
        self._touch(key, held[0] if held else project)
        if held is None:
            return False
        self._add(held[0], held[1], -1)
        return True

    def _ancestors(self, project: str) -> list[str]:
        """Parent, grandparent, ... (a cycle, which the API cannot rule out, ends the walk)."""
        out: list[str] = []
        seen = {project}
        parent = self._parents.get(project)
        while parent and parent not in seen:
            out.append(parent)
            seen.add(parent)
            parent = self._parents.get(parent)
        return out

    def _subtree(self, root: str) -> set[str]:
        return {p for p in self._usage.keys() | self._parents.keys()
                if p == root or root in self._ancestors(p)}

    def _overs(self, bound: str, increases: Mapping[str, int], subtree: bool) -> list[tuple[str, int, int, int]]:
        """(resource, requested, used, limit) for each of `bound`'s limits the increases break;
        `subtree`: usage is `bound`'s and all its descendants'."""
        limits = self._limits.get(bound, {})
        members = self._subtree(bound) if subtree else {bound}
        overs = []
        for resource, increase in increases.items():
            limit = limits.get(resource, UNLIMITED)
            if limit < 0:
                continue
            used = sum(self._usage.get(p, {}).get(resource, 0) for p in members)
            if used + increase > limit:
                overs.append((resource, increase, used, limit))
        return overs

    def _add(self, project: str, deltas: Mapping[str, int], sign: int) -> None:
        usage = self._usage.setdefault(project, {})
        for r, v in deltas.items():
            usage[r] = usage.get(r, 0) + sign * v

    def _recompute(self, project: str) -> None:
        usage = dict(self._base.get(project, {}))
        for p, deltas in self._holders.values():
            if p == project:
                for r, v in deltas.items():
                    usage[r] = usage.get(r, 0) + v
        self._usage[project] = usage
