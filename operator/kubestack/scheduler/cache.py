"""HostCache: every compute host's state and usage, indexed for the scheduler.

Thread-safe (one re-entrant lock, ``cache.lock``; the Scheduler holds it for a whole
decision so that the claim lands before the next decision starts).

Indexes (all kept current on every change, never rebuilt per decision):

* ``static_mask(key, predicate)`` - the hosts satisfying a predicate over node facts only
  (labels, zone, taints, aggregates ...), one int bitmask per distinct key, re-evaluated for a
  single host when that node changes. Filters key them by the request fields they read
  (AZ name, extra specs, image properties, project ...), so a request whose key was seen
  before costs one dict lookup.
* ``fit_mask(resource, amount)`` - the hosts with at least ``amount`` of ``resource`` free
  (capacity x ratio - reserved - used), one bitmask per distinct requested amount, updated
  bit-wise when a host's usage moves.
* ``sorted_index(attribute)`` - hosts ordered by each weigher attribute (free RAM, free
  vCPUs, free disk, instance count, I/O ops), so weighing can stop after the best hosts.

Usage is kept per host *name*, so instances may be registered before (or after) their
node: a cache rebuilt from cluster state in any order equals the incrementally updated one.
"""

from __future__ import annotations

import heapq
import threading
from collections import Counter, OrderedDict
from contextlib import contextmanager
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .bitset import SortedPairs, bits, mask_of
from .config import SchedulerConfig
from .host_state import HostState, parse_node
from .request import DISK_GB, MEMORY_MB, VCPU, Flavor, Usage

__all__ = ["HostCache", "InstanceRecord", "ClaimError", "WEIGH_ATTRIBUTES"]

#: Dense per-host attributes the weighers read, each with a sorted index.
WEIGH_ATTRIBUTES = ("free_ram_mb", "free_vcpus", "free_disk_mb", "num_instances",
                    "num_io_ops")

#: Free capacity indexes: a fit mask for a new amount is cut from these, not scanned.
_FIT_INDEX = {VCPU: "free_vcpus", MEMORY_MB: "fit:MEMORY_MB", DISK_GB: "fit:DISK_GB"}
_SORTED_ATTRIBUTES = WEIGH_ATTRIBUTES + ("fit:MEMORY_MB", "fit:DISK_GB")

_MAX_STATIC = 512
_MAX_FIT_PER_RESOURCE = 128


class ClaimError(RuntimeError):
    """A claim would exceed the host's capacity (or the host is unknown)."""


@dataclass(frozen=True)
class InstanceRecord:
    instance_id: str
    host: str
    usage: Usage
    project: str = ""
    building: bool = False
    group: str | None = None
    image_properties: tuple[tuple[str, str], ...] = ()


@dataclass
class _HostUsage:
    vcpus: int = 0
    ram_mb: int = 0
    disk_gb: int = 0
    extended: Counter = field(default_factory=Counter)
    instances: set = field(default_factory=set)
    building: int = 0

    def snapshot(self) -> tuple:
        return (self.vcpus, self.ram_mb, self.disk_gb,
                tuple(sorted((k, v) for k, v in self.extended.items() if v)),
                frozenset(self.instances), self.building)


_EMPTY = _HostUsage()


def _offered(host: HostState) -> list[str]:
    """The extended resources ``host`` has some capacity of."""
    return [rc for rc, capacity in host.extended.items() if capacity > 0]


class HostCache:
    """The scheduler's in-memory view of compute hosts and the instances placed on them."""

    def __init__(self, config: SchedulerConfig | None = None):
        self.lock = threading.RLock()
        self._config = config or SchedulerConfig()
        self.generation = 0
        self._hosts: list[HostState | None] = []
        self._slot: dict[str, int] = {}
        self._free_slots: list[int] = []
        self._all = 0
        self._limits: list[tuple[float, float, float, float, float] | None] = []
        self._free: list[dict[str, float] | None] = []
        self._values: dict[str, list[float | None]] = {a: [] for a in _SORTED_ATTRIBUTES}
        self._sorted: dict[str, SortedPairs] = {a: SortedPairs() for a in _SORTED_ATTRIBUTES}
        self._fit: dict[str, OrderedDict[float, int]] = {}
        self._static: OrderedDict[Hashable, list] = OrderedDict()
        self._keyed: dict[str, list] = {}  # name -> [extractor, {key: mask}]
        # hosts alike but for their identity (HostState.class_key): class -> [mask, one slot]
        self._classes: dict[tuple, list[int]] = {}
        self._class_of: dict[int, tuple] = {}
        self._usage: dict[str, _HostUsage] = {}
        self._instances: dict[str, InstanceRecord] = {}
        self._groups: dict[str, Counter] = {}
        self._group_members: dict[str, set[str]] = {}
        self._image_props: dict[tuple[str, str], Counter] = {}
        self._failed: dict[str, int] = {}
        self._deferred: set[int] | None = None  # hosts to refresh when the batch ends

    # ------------------------------------------------------------------ batches
    @contextmanager
    def batch(self) -> Iterator[HostCache]:
        """Record many nodes and instances at once (an operator rebuilding its cache at
        start-up): each host touched is refreshed once when the batch ends instead of once
        per instance, and when most hosts were touched the sorted indexes are rebuilt in
        one sort each rather than by a remove and an add per host. The lock is held
        throughout, so no decision sees a half-recorded batch; within the batch, record
        only (free amounts and indexes are as they were before it)."""
        with self.lock:
            if self._deferred is not None:  # nested: the outer batch refreshes
                yield self
                return
            self._deferred = set()
            try:
                yield self
            finally:
                slots, self._deferred = self._deferred, None
                self._refresh_all([s for s in slots if self._hosts[s] is not None])

    def _refresh_all(self, slots: list[int]) -> None:
        if len(slots) * 4 < len(self._slot):
            for slot in slots:
                self._refresh(slot)
            return
        for slot in slots:
            self._refresh(slot, reindex=False)
        for attr in _SORTED_ATTRIBUTES:
            self._sorted[attr].rebuild((v, s) for s, v in enumerate(self._values[attr]) if v is not None)

    def _touch(self, slot: int) -> None:
        if self._deferred is None:
            self._refresh(slot)
        else:
            self._deferred.add(slot)

    # ------------------------------------------------------------------ configuration
    @property
    def config(self) -> SchedulerConfig:
        return self._config

    def configure(self, config: SchedulerConfig) -> None:
        """Adopt new allocation ratios / reserved amounts (recomputes every host)."""
        with self.lock:
            old = self._config.allocation_key()
            self._config = config
            if old == config.allocation_key():
                return
            self._fit.clear()
            self._static.clear()
            self._keyed.clear()
            for slot, host in enumerate(self._hosts):
                if host is not None:
                    self._limits[slot] = self._limits_for(host)
                    self._refresh(slot)
            self.generation += 1

    def _limits_for(self, host: HostState) -> tuple[float, float, float, float, float]:
        cfg = self._config
        ratios, reserved = host.ratio_overrides, host.reserved_overrides
        res_cpus = reserved.get("cpus", cfg.reserved_host_cpus)
        res_mem = reserved.get("memory_mb", cfg.reserved_host_memory_mb)
        res_disk_mb = reserved.get("disk_mb", cfg.reserved_host_disk_mb)
        usable_mem = max(0.0, host.memory_mb - res_mem)
        usable_disk_mb = max(0.0, host.disk_gb * 1024 - res_disk_mb)
        return (
            max(0.0, host.vcpus - res_cpus) * ratios.get("cpu", cfg.cpu_allocation_ratio),
            usable_mem * ratios.get("ram", cfg.ram_allocation_ratio),
            usable_disk_mb / 1024 * ratios.get("disk", cfg.disk_allocation_ratio),
            usable_mem,
            usable_disk_mb,
        )

    # ------------------------------------------------------------------ nodes
    def upsert_node(self, node: Mapping[str, Any]) -> None:
        """Add or update a host from a Node dict; a node that is not (or no longer) a
        compute host is removed."""
        host = parse_node(dict(node))
        name = str(((node.get("metadata") or {}).get("name")) or "")
        with self.lock:
            if host is None:
                if name in self._slot:
                    self.remove_node(name)
                return
            old = None
            slot = self._slot.get(name)
            if slot is not None:
                old = self._hosts[slot]
                if old is not None and old.static_fingerprint() == host.static_fingerprint():
                    return
            else:
                slot = self._new_slot(name)
            self._hosts[slot] = host
            self._limits[slot] = self._limits_for(host)
            bit = 1 << slot
            self._all |= bit
            self._leave_class(slot)
            self._join_class(slot, host.class_key())
            for entry in self._static.values():
                if entry[0](host):
                    entry[1] |= bit
                else:
                    entry[1] &= ~bit
            for extractor, masks in self._keyed.values():
                if old is not None:
                    self._unkey(masks, extractor(old), slot)
                for key in frozenset(extractor(host)):
                    masks[key] = masks.get(key, 0) | bit
            self._touch(slot)
            self.generation += 1

    def _new_slot(self, name: str) -> int:
        if self._free_slots:
            slot = heapq.heappop(self._free_slots)
        else:
            slot = len(self._hosts)
            self._hosts.append(None)
            self._limits.append(None)
            self._free.append(None)
            for values in self._values.values():
                values.append(None)
        self._slot[name] = slot
        return slot

    def remove_node(self, name: str) -> None:
        """Forget a host (its instances stay recorded, by host name)."""
        with self.lock:
            slot = self._slot.pop(name, None)
            if slot is None:
                return
            clear = ~(1 << slot)
            self._all &= clear
            self._leave_class(slot)
            for entry in self._static.values():
                entry[1] &= clear
            for extractor, masks in self._keyed.values():
                self._unkey(masks, extractor(self._hosts[slot]), slot)
            for table in self._fit.values():
                for amount in table:
                    table[amount] &= clear
            for attr in _SORTED_ATTRIBUTES:
                value = self._values[attr][slot]
                if value is not None:
                    self._sorted[attr].remove((value, slot))
                self._values[attr][slot] = None
            self._hosts[slot] = None
            self._limits[slot] = None
            self._free[slot] = None
            heapq.heappush(self._free_slots, slot)
            self.generation += 1

    def _join_class(self, slot: int, key: tuple) -> None:
        entry = self._classes.get(key)
        if entry is None:
            self._classes[key] = [1 << slot, slot]
        else:
            entry[0] |= 1 << slot
        self._class_of[slot] = key

    def _leave_class(self, slot: int) -> None:
        key = self._class_of.pop(slot, None)
        if key is None:
            return
        entry = self._classes[key]
        entry[0] &= ~(1 << slot)
        if not entry[0]:
            del self._classes[key]
        elif entry[1] == slot:
            entry[1] = (entry[0] & -entry[0]).bit_length() - 1  # any member stands for them all

    def _refresh(self, slot: int, reindex: bool = True) -> None:
        """Recompute a host's free amounts and move it in every index that changed (the
        sorted indexes only with `reindex`: a batch rebuilds them whole instead)."""
        host = self._hosts[slot]
        usage = self._usage.get(host.name, _EMPTY)
        lim_cpu, lim_ram, lim_disk, phys_ram, phys_disk_mb = self._limits[slot]
        free: dict[str, float] = {
            VCPU: lim_cpu - usage.vcpus,
            MEMORY_MB: lim_ram - usage.ram_mb,
            DISK_GB: lim_disk - usage.disk_gb,
        }
        for rc, cap in host.extended.items():
            free[rc] = cap - usage.extended.get(rc, 0)
        for rc, used in usage.extended.items():
            if rc not in host.extended and used:
                free[rc] = -used
        old = self._free[slot]
        bit = 1 << slot
        for rc, table in self._fit.items():
            new_value = free.get(rc, 0)
            old_value = old.get(rc, 0) if old is not None else None
            if old_value == new_value:
                continue
            # a fit mask holds the slot's bit exactly when its old free amount fitted (none
            # when the slot was empty): only the amounts crossed flip, and no bit of a
            # 100,000-host mask is read to find them
            for amount, mask in table.items():
                if (new_value >= amount) != (old_value is not None and old_value >= amount):
                    table[amount] = mask ^ bit
        self._free[slot] = free
        attrs = (phys_ram - usage.ram_mb, free[VCPU], phys_disk_mb - usage.disk_gb * 1024,
                 len(usage.instances), usage.building, free[MEMORY_MB], free[DISK_GB])
        for attr, value in zip(_SORTED_ATTRIBUTES, attrs):
            values = self._values[attr]
            current = values[slot]
            if current == value and current is not None:
                continue
            values[slot] = value
            if not reindex:
                continue
            index = self._sorted[attr]
            if current is not None:
                index.remove((current, slot))
            index.add((value, slot))

    # ------------------------------------------------------------------ instances
    def add_instance(self, host: str, instance_id: str,
                     usage: Usage | Flavor | Mapping[str, Any], *, project: str = "",
                     building: bool = False, group: str | None = None,
                     image_properties: Mapping[str, str] | None = None) -> InstanceRecord:
        """Record (or re-record: idempotent) an instance and its usage on ``host``."""
        record = InstanceRecord(
            instance_id=instance_id, host=host, usage=Usage.of(usage), project=project,
            building=building, group=group,
            image_properties=tuple(sorted((str(k), str(v))
                                          for k, v in (image_properties or {}).items())))
        with self.lock:
            previous = self._instances.get(instance_id)
            if previous == record:
                return record
            if previous is not None:
                self._apply(previous, -1)
            self._apply(record, +1)
            self.generation += 1
        return record

    def update_instance(self, instance_id: str, **changes: Any) -> InstanceRecord:
        """Change some fields of a recorded instance (host, usage, project, building,
        group, image_properties)."""
        with self.lock:
            current = self._instances.get(instance_id)
            if current is None:
                raise KeyError(instance_id)
            fields = {
                "host": current.host, "usage": current.usage, "project": current.project,
                "building": current.building, "group": current.group,
                "image_properties": dict(current.image_properties),
            }
            unknown = set(changes) - set(fields)
            if unknown:
                raise TypeError(f"unknown instance fields {sorted(unknown)}")
            fields.update(changes)
            host = fields.pop("host")
            usage = fields.pop("usage")
            return self.add_instance(host, instance_id, usage, **fields)

    def set_building(self, instance_id: str, building: bool) -> None:
        """Mark an instance as (no longer) building. A finished build clears the host's
        failed-build count, as Nova's compute node does on a successful build."""
        with self.lock:
            current = self._instances.get(instance_id)
            if current is None:
                raise KeyError(instance_id)
            if current.building != building:
                self.update_instance(instance_id, building=building)
            if not building:
                self.clear_build_failures(current.host)

    def remove_instance(self, instance_id: str) -> InstanceRecord | None:
        """Forget an instance and free its usage (delete, failed build, released claim)."""
        with self.lock:
            record = self._instances.get(instance_id)
            if record is not None:
                self._apply(record, -1)
                self.generation += 1
            return record

    def _apply(self, rec: InstanceRecord, sign: int) -> None:
        usage = self._usage.get(rec.host)
        if usage is None:
            usage = self._usage[rec.host] = _HostUsage()
        u = rec.usage
        usage.vcpus += sign * u.vcpus
        usage.ram_mb += sign * u.ram_mb
        usage.disk_gb += sign * u.disk_gb
        for rc, amount in u.extended:
            usage.extended[rc] += sign * amount
            if not usage.extended[rc]:
                del usage.extended[rc]
        if rec.building:
            usage.building += sign
        if sign > 0:
            usage.instances.add(rec.instance_id)
            self._instances[rec.instance_id] = rec
        else:
            usage.instances.discard(rec.instance_id)
            del self._instances[rec.instance_id]
        if not usage.instances:
            del self._usage[rec.host]
        if rec.group is not None:
            counts = self._groups.setdefault(rec.group, Counter())
            members = self._group_members.setdefault(rec.group, set())
            counts[rec.host] += sign
            if sign > 0:
                members.add(rec.instance_id)
            else:
                members.discard(rec.instance_id)
                if not counts[rec.host]:
                    del counts[rec.host]
                if not members:
                    del self._groups[rec.group]
                    del self._group_members[rec.group]
        for prop in rec.image_properties:
            counts = self._image_props.setdefault(prop, Counter())
            counts[rec.host] += sign
            if not counts[rec.host]:
                del counts[rec.host]
                if not counts:
                    del self._image_props[prop]
        slot = self._slot.get(rec.host)
        if slot is not None:
            self._touch(slot)

    def claim(self, host: str, instance_id: str, usage: Usage, **kwargs: Any) -> InstanceRecord:
        """Record a new building instance after checking it fits; raises ClaimError."""
        with self.lock:
            slot = self._slot.get(host)
            if slot is None:
                raise ClaimError(f"unknown host {host!r}")
            if instance_id in self._instances:
                raise ClaimError(f"instance {instance_id!r} already placed")
            free = self._free[slot]
            for rc, amount in usage.resources().items():
                if free.get(rc, 0) < amount:
                    raise ClaimError(f"host {host!r} has {free.get(rc, 0)} {rc} free, "
                                     f"{amount} requested")
            kwargs.setdefault("building", True)
            return self.add_instance(host, instance_id, usage, **kwargs)

    def record_build_failure(self, host: str) -> None:
        """Count a failed build on ``host`` (BuildFailureWeigher); cleared on success."""
        with self.lock:
            self._failed[host] = self._failed.get(host, 0) + 1
            self.generation += 1

    def clear_build_failures(self, host: str) -> None:
        with self.lock:
            if self._failed.pop(host, None) is not None:
                self.generation += 1

    # ------------------------------------------------------------------ indexes
    @property
    def all_mask(self) -> int:
        return self._all

    def static_mask(self, key: Hashable, predicate: Callable[[HostState], bool], *,
                    reads_identity: bool = False) -> int:
        """Hosts for which ``predicate`` (over node facts only) holds, cached by ``key``.

        The predicate is kept and re-run for a host whenever that node changes, so every
        call with an equal key must mean the same predicate. A predicate blind to the host's
        identity (its name, its hostname label: ``reads_identity`` false) is first run once
        per class of otherwise equal hosts, which at 100,000 hosts is a few thousand calls.
        """
        entry = self._static.get(key)
        if entry is not None:
            self._static.move_to_end(key)
            return entry[1]
        if reads_identity:
            buf = bytearray((len(self._hosts) + 7) >> 3)
            for slot, host in enumerate(self._hosts):
                if host is not None and predicate(host):
                    buf[slot >> 3] |= 1 << (slot & 7)
            mask = int.from_bytes(buf, "little")
        else:
            passing: list[int] = []
            failing: list[int] = []
            for members, slot in self._classes.values():
                (passing if predicate(self._hosts[slot]) else failing).append(members)
            # the classes partition the hosts: add up whichever side is shorter
            mask = sum(passing) if len(passing) <= len(failing) else self._all - sum(failing)
        self._static[key] = [predicate, mask]
        if len(self._static) > _MAX_STATIC:
            self._static.popitem(last=False)
        return mask

    @staticmethod
    def _unkey(masks: dict, keys: Iterable[Hashable], slot: int) -> None:
        clear = ~(1 << slot)
        for key in frozenset(keys):
            mask = masks[key] & clear
            if mask:
                masks[key] = mask
            else:
                del masks[key]

    def keyed_masks(self, name: str,
                    extractor: Callable[[HostState], Iterable[Hashable]]) -> Mapping[Hashable, int]:
        """An inverted index over node facts: {key: hosts whose ``extractor`` yields key}.

        Built once per ``name`` (the extractor must always be the same for a name, and blind to
        the host's identity: it is run once per class of hosts), then kept current node by
        node; one index serves every value (every project, every zone).
        """
        entry = self._keyed.get(name)
        if entry is not None:
            return entry[1]
        masks: dict[Hashable, int] = {}
        for members, slot in self._classes.values():
            for key in frozenset(extractor(self._hosts[slot])):
                masks[key] = masks.get(key, 0) | members
        self._keyed[name] = [extractor, masks]
        return masks

    def fit_mask(self, resource: str, amount: float) -> int:
        """Hosts with at least ``amount`` of ``resource`` free (all hosts if amount <= 0)."""
        if amount <= 0:
            return self._all
        table = self._fit.get(resource)
        if table is None:
            table = self._fit[resource] = OrderedDict()
        mask = table.get(amount)
        if mask is not None:
            table.move_to_end(amount)
            return mask
        index = _FIT_INDEX.get(resource)
        if index is not None:
            mask = self._sorted[index].mask_at_least(amount)
        else:
            # only the hosts offering the resource can have some free (a GPU is on a few)
            offering = self.keyed_masks("offers", _offered)
            mask = mask_of(slot for slot in bits(offering.get(resource, 0))
                           if self._free[slot].get(resource, 0) >= amount)
        table[amount] = mask
        if len(table) > _MAX_FIT_PER_RESOURCE:
            table.popitem(last=False)
        return mask

    def mask_of_hosts(self, names: Iterable[str]) -> int:
        slots = self._slot
        return mask_of(slots[n] for n in names if n in slots)

    def sorted_index(self, attribute: str) -> SortedPairs:
        return self._sorted[attribute]

    def values(self, attribute: str) -> list[float | None]:
        """Per-slot values of a weigher attribute (None for empty slots)."""
        return self._values[attribute]

    # ------------------------------------------------------------------ queries
    def host(self, slot: int) -> HostState:
        return self._hosts[slot]

    def slot_of(self, name: str) -> int | None:
        return self._slot.get(name)

    def get_host(self, name: str) -> HostState | None:
        slot = self._slot.get(name)
        return None if slot is None else self._hosts[slot]

    def hosts(self) -> Iterator[HostState]:
        return (h for h in self._hosts if h is not None)

    def __len__(self) -> int:
        return len(self._slot)

    def free(self, name: str) -> dict[str, float]:
        """Free amount per resource on a host (capacity x ratio - reserved - used)."""
        slot = self._slot[name]
        return dict(self._free[slot])

    def free_by_slot(self, slot: int) -> dict[str, float]:
        return self._free[slot]

    def limits(self, name: str) -> dict[str, float]:
        """Capacity x allocation ratio - reserved, per resource."""
        slot = self._slot[name]
        host = self._hosts[slot]
        lim = self._limits[slot]
        out = {VCPU: lim[0], MEMORY_MB: lim[1], DISK_GB: lim[2]}
        out.update(host.extended)
        return out

    def used(self, name: str) -> dict[str, int]:
        u = self._usage.get(name, _EMPTY)
        out = {VCPU: u.vcpus, MEMORY_MB: u.ram_mb, DISK_GB: u.disk_gb}
        out.update(u.extended)
        return out

    def instance(self, instance_id: str) -> InstanceRecord | None:
        return self._instances.get(instance_id)

    def instance_host(self, instance_id: str) -> str | None:
        rec = self._instances.get(instance_id)
        return rec.host if rec is not None else None

    def instances(self) -> list[InstanceRecord]:
        with self.lock:
            return list(self._instances.values())

    def instances_on(self, host: str) -> frozenset[str]:
        return frozenset(self._usage.get(host, _EMPTY).instances)

    def num_instances(self, host: str) -> int:
        return len(self._usage.get(host, _EMPTY).instances)

    def num_io_ops(self, host: str) -> int:
        return self._usage.get(host, _EMPTY).building

    def group_host_counts(self, group: str) -> Mapping[str, int]:
        return self._groups.get(group, {})

    def group_members(self, group: str) -> frozenset[str]:
        return frozenset(self._group_members.get(group, ()))

    def image_property_hosts(self, key: str, value: str) -> Mapping[str, int]:
        return self._image_props.get((key, value), {})

    def failed_builds(self, host: str) -> int:
        return self._failed.get(host, 0)

    def failed_builds_by_slot(self) -> dict[int, int]:
        slots = self._slot
        return {slots[n]: c for n, c in self._failed.items() if n in slots}

    # ------------------------------------------------------------------ verification
    def usage_snapshot(self) -> dict[str, tuple]:
        """Per host name: (vcpus, ram_mb, disk_gb, extended, instance ids, building)."""
        with self.lock:
            return {name: u.snapshot() for name, u in self._usage.items()}

    def check_consistency(self) -> None:
        """Recompute every index from scratch and raise AssertionError on any drift."""
        with self.lock:
            live = [s for s, h in enumerate(self._hosts) if h is not None]
            if mask_of(live) != self._all:
                raise AssertionError("all-hosts mask drifted")
            if {self._hosts[s].name: s for s in live} != self._slot:
                raise AssertionError("slot map drifted")
            classes: dict[tuple, int] = {}
            for s in live:
                key = self._hosts[s].class_key()
                classes[key] = classes.get(key, 0) | 1 << s
            if classes != {k: m for k, (m, _rep) in self._classes.items()} or \
                    any(not m >> rep & 1 for m, rep in self._classes.values()):
                raise AssertionError("host classes drifted")
            usage: dict[str, _HostUsage] = {}
            for rec in self._instances.values():
                u = usage.setdefault(rec.host, _HostUsage())
                u.vcpus += rec.usage.vcpus
                u.ram_mb += rec.usage.ram_mb
                u.disk_gb += rec.usage.disk_gb
                for rc, amount in rec.usage.extended:
                    u.extended[rc] += amount
                u.instances.add(rec.instance_id)
                u.building += int(rec.building)
            expected = {n: u.snapshot() for n, u in usage.items()}
            if expected != self.usage_snapshot():
                raise AssertionError("usage drifted from the instance records")
            for key, (predicate, mask) in self._static.items():
                if mask_of(s for s in live if predicate(self._hosts[s])) != mask:
                    raise AssertionError(f"static mask {key!r} drifted")
            for name, (extractor, masks) in self._keyed.items():
                rebuilt: dict = {}
                for s in live:
                    for key in extractor(self._hosts[s]):
                        rebuilt[key] = rebuilt.get(key, 0) | 1 << s
                if rebuilt != masks:
                    raise AssertionError(f"keyed index {name!r} drifted")
            for rc, table in self._fit.items():
                for amount, mask in table.items():
                    want = mask_of(s for s in live if self._free[s].get(rc, 0) >= amount)
                    if want != mask:
                        raise AssertionError(f"fit mask {rc}>={amount} drifted")
            for attr in _SORTED_ATTRIBUTES:
                pairs = sorted((self._values[attr][s], s) for s in live)
                if list(self._sorted[attr].ascending()) != pairs:
                    raise AssertionError(f"sorted index {attr} drifted")
            for slot in live:
                host = self._hosts[slot]
                u = self._usage.get(host.name, _EMPTY)
                lim = self._limits_for(host)
                if self._limits[slot] != lim:
                    raise AssertionError(f"limits of {host.name} drifted")
                if self._free[slot][VCPU] != lim[0] - u.vcpus \
                        or self._free[slot][MEMORY_MB] != lim[1] - u.ram_mb \
                        or self._free[slot][DISK_GB] != lim[2] - u.disk_gb:
                    raise AssertionError(f"free amounts of {host.name} drifted")
