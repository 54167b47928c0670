"""Shared vocabulary of the simulator's pure modules: resources, writes, time, conditions, diffs.

Nothing here talks to an API server. The pure modules (`kubevirt`, `cdi`, `storage`) take plain
dicts (objects as the API server serves them) plus a `World` snapshot and return `Outcome`s: the
writes to make and when to look again. `main` executes the writes.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Mapping

# -- names ------------------------------------------------------------------------------------

SIM = "simulator.kubestack.io/"
ANN_REQUEST = SIM + "request"                 # {"action", "id", "options"?}: written by vmactions
ANN_REQUEST_STATUS = SIM + "request-status"   # {"id", "action", "result", "message"}: by us
ANN_FAIL = SIM + "fail"                       # comma list: boot, migration, import
ANN_UPLOADED = SIM + "uploaded"               # "true" on an upload DataVolume: the upload is done
ANN_REBOOTS = SIM + "reboot-count"            # soft reboots executed on a VMI
ANN_INTERFACE_ADDRESSES = "kubestack.io/interface-addresses"  # written by the operator

PROVISIONER = "kubestack.io/simulated"        # StorageClass.provisioner served by the simulator
CSI_DRIVER = "simulated.kubestack.io"         # PV csi.driver (a driver name cannot hold a '/')
COMPUTE_HOST_LABEL = "kubestack.io/compute-host"
HOSTNAME_LABEL = "kubernetes.io/hostname"


@dataclass(frozen=True)
class Resource:
    kind: str
    group: str
    version: str
    plural: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None = None, name: str | None = None,
             subresource: str | None = None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        if name:
            base += f"/{name}"
            if subresource:
                base += f"/{subresource}"
        return base


RESOURCES: dict[str, Resource] = {r.kind: r for r in (
    Resource("Node", "", "v1", "nodes", False),
    Resource("PersistentVolumeClaim", "", "v1", "persistentvolumeclaims", True),
    Resource("PersistentVolume", "", "v1", "persistentvolumes", False),
    Resource("StorageClass", "storage.k8s.io", "v1", "storageclasses", False),
    Resource("VirtualMachine", "kubevirt.io", "v1", "virtualmachines", True),
    Resource("VirtualMachineInstance", "kubevirt.io", "v1", "virtualmachineinstances", True),
    Resource("VirtualMachineInstanceMigration", "kubevirt.io", "v1",
             "virtualmachineinstancemigrations", True),
    Resource("DataVolume", "cdi.kubevirt.io", "v1beta1", "datavolumes", True),
    Resource("VolumeSnapshot", "snapshot.storage.k8s.io", "v1", "volumesnapshots", True),
    Resource("VolumeSnapshotContent", "snapshot.storage.k8s.io", "v1",
             "volumesnapshotcontents", False),
    Resource("VolumeSnapshotClass", "snapshot.storage.k8s.io", "v1",
             "volumesnapshotclasses", False),
)}

Key = tuple[str, str, str]  # (kind, namespace or "", name)


def key_of(obj: Mapping) -> Key:
    md = obj.get("metadata", {})
    return (obj["kind"], md.get("namespace", ""), md["name"])


# -- writes -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Write:
    """One API call. verb: create | patch (JSON merge patch) | status (merge patch of the status
    subresource) | delete (with a uid precondition when uid is set)."""

    verb: str
    kind: str
    namespace: str
    name: str
    body: Any = None
    uid: str | None = None

    def describe(self) -> str:
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.verb} {self.kind} {where}"


@dataclass
class Outcome:
    writes: list[Write] = field(default_factory=list)
    requeue_after: float | None = None  # seconds; None: only on the next watch event

    def requeue(self, seconds: float) -> None:
        seconds = max(seconds, 0.0)
        if self.requeue_after is None or seconds < self.requeue_after:
            self.requeue_after = seconds

    def extend(self, other: "Outcome") -> None:
        self.writes.extend(other.writes)
        if other.requeue_after is not None:
            self.requeue(other.requeue_after)


def status_write(obj: Mapping, desired_status: Mapping) -> Write | None:
    """A status merge patch turning obj.status into desired_status, or None when equal."""
    patch = merge_patch(obj.get("status") or {}, desired_status)
    if patch is NO_CHANGE:
        return None
    md = obj["metadata"]
    return Write("status", obj["kind"], md.get("namespace", ""), md["name"], {"status": patch})


def metadata_write(obj: Mapping, *, labels: Mapping[str, str | None] | None = None,
                   annotations: Mapping[str, str | None] | None = None) -> Write | None:
    """A merge patch of labels/annotations (None deletes a key), or None when nothing changes."""
    md = obj["metadata"]
    body: dict = {}
    for field_name, wanted in (("labels", labels), ("annotations", annotations)):
        if not wanted:
            continue
        current = md.get(field_name) or {}
        diff = {k: v for k, v in wanted.items() if current.get(k) != v and not (v is None and k not in current)}
        if diff:
            body[field_name] = diff
    if not body:
        return None
    return Write("patch", obj["kind"], md.get("namespace", ""), md["name"], {"metadata": body})


def coalesce(writes: list[Write], has_status) -> list[Write]:
    """`writes` with each status write folded into the metadata patch of the same object that
    follows it, for kinds without a status subresource (`has_status(kind)` false): there, one
    PATCH carries both, as KubeVirt's controllers update a VMI's labels and status in one
    request. Order is kept otherwise."""
    out: list[Write] = []
    for w in writes:
        prev = out[-1] if out else None
        if (prev is not None and prev.verb == "status" and w.verb == "patch" and not has_status(w.kind)
                and (prev.kind, prev.namespace, prev.name) == (w.kind, w.namespace, w.name)
                and not set(prev.body).intersection(w.body)):
            out[-1] = Write("patch", w.kind, w.namespace, w.name, {**prev.body, **w.body})
        else:
            out.append(w)
    return out


# -- diffs ------------------------------------------------------------------------------------

class _NoChange:
    def __repr__(self) -> str:
        return "NO_CHANGE"

    def __bool__(self) -> bool:
        return False


NO_CHANGE: Any = _NoChange()


def merge_patch(current: Any, desired: Any) -> Any:
    """The RFC 7386 merge patch that turns `current` into `desired` (NO_CHANGE when equal).
    Dicts are diffed key by key (removed keys become null); anything else is replaced whole."""
    if isinstance(current, dict) and isinstance(desired, dict):
        patch: dict = {}
        for k, v in desired.items():
            if v is None:
                if k in current:
                    patch[k] = None
                continue
            if k not in current:
                patch[k] = strip_none(v)
            else:
                sub = merge_patch(current[k], v)
                if sub is not NO_CHANGE:
                    patch[k] = sub
        for k in current:
            if k not in desired:
                patch[k] = None
        return patch if patch else NO_CHANGE
    desired = strip_none(desired)
    return NO_CHANGE if current == desired else desired


def strip_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: strip_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [strip_none(v) for v in value]
    return value


def deep(obj: Any) -> Any:
    return copy.deepcopy(obj)


def get(obj: Any, *path: str | int, default: Any = None) -> Any:
    for p in path:
        if isinstance(obj, dict):
            obj = obj.get(p)
        elif isinstance(obj, list) and isinstance(p, int) and -len(obj) <= p < len(obj):
            obj = obj[p]
        else:
            return default
        if obj is None:
            return default
    return obj


# -- time -------------------------------------------------------------------------------------

def fmt_time(t: float, precise: bool = True) -> str:
    """RFC 3339 UTC. Custom resources keep microseconds, so a restarted simulator can still time
    its delays from the status it wrote; core objects (typed metav1.Time) get whole seconds, as
    the API server would truncate them anyway."""
    # truncated, never rounded: datetime.fromtimestamp rounds to the nearest microsecond, and a
    # stamp up to 0.5 us in the future made `now < stamp + 0` true for about a third of the
    # reconciles right after it (a zero boot delay then took an extra write and requeue)
    us = int(t * 1_000_000)
    if us / 1_000_000 > t:  # the product rounded up across a microsecond
        us -= 1
    dt = datetime.fromtimestamp(us // 1_000_000, tz=timezone.utc) + timedelta(microseconds=us % 1_000_000)
    if precise:
        return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str | None) -> float | None:
    if not value:
        return None
    text = value.replace("Z", "+00:00")
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


# -- conditions -------------------------------------------------------------------------------

def find_condition(conditions: Iterable[Mapping] | None, type_: str) -> Mapping | None:
    for c in conditions or ():
        if c.get("type") == type_:
            return c
    return None


def condition_true(conditions: Iterable[Mapping] | None, type_: str) -> bool:
    c = find_condition(conditions, type_)
    return bool(c) and c.get("status") == "True"


def make_condition(previous: Iterable[Mapping] | None, type_: str, status: str, reason: str = "",
                   message: str = "", now: float = 0.0, *, heartbeat: bool = False,
                   precise: bool = True) -> dict:
    """A condition whose lastTransitionTime moves only when its status changes (and, with
    heartbeat, a lastHeartbeatTime that moves with any change of reason/message — CDI's field)."""
    old = find_condition(previous, type_)
    stamp = fmt_time(now, precise)
    same_status = old is not None and old.get("status") == status
    cond = {"type": type_, "status": status}
    if reason:
        cond["reason"] = reason
    if message:
        cond["message"] = message
    cond["lastTransitionTime"] = old.get("lastTransitionTime", stamp) if same_status else stamp
    if heartbeat:
        unchanged = same_status and old.get("reason", "") == reason and old.get("message", "") == message
        cond["lastHeartbeatTime"] = old.get("lastHeartbeatTime", stamp) if unchanged else stamp
    if old is not None and "lastProbeTime" in old and old.get("lastProbeTime") is None:
        cond["lastProbeTime"] = None
    return cond


def put_conditions(previous: list[Mapping] | None, updates: Iterable[Mapping],
                   remove: Iterable[str] = ()) -> list[dict]:
    """`previous` with each update replacing the condition of its type (order kept, new ones
    appended) and the `remove` types dropped."""
    updates = list(updates)
    by_type = {u["type"]: u for u in updates}
    drop = set(remove)
    out: list[dict] = []
    seen = set()
    for c in previous or ():
        t = c.get("type")
        if t in drop:
            continue
        if t in by_type:
            out.append(dict(by_type[t]))
            seen.add(t)
        else:
            out.append(dict(c))
    for u in updates:
        if u["type"] not in seen:
            out.append(dict(u))
    return [{k: v for k, v in c.items() if v is not None} for c in out]


# -- misc -------------------------------------------------------------------------------------

def unit_random(*parts: Any) -> float:
    """A deterministic number in [0, 1) for the given parts (seeded failures, placements)."""
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def stable_int(*parts: Any) -> int:
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def owner_ref(obj: Mapping, *, controller: bool = True) -> dict:
    md = obj["metadata"]
    return {
        "apiVersion": obj["apiVersion"],
        "kind": obj["kind"],
        "name": md["name"],
        "uid": md["uid"],
        "controller": controller,
        "blockOwnerDeletion": True,
    }


def is_owned_by(obj: Mapping, owner_uid: str) -> bool:
    return any(r.get("uid") == owner_uid for r in get(obj, "metadata", "ownerReferences", default=[]))


def controller_of(obj: Mapping) -> Mapping | None:
    for r in get(obj, "metadata", "ownerReferences", default=[]):
        if r.get("controller"):
            return r
    return None


def annotations(obj: Mapping | None) -> Mapping[str, str]:
    return get(obj, "metadata", "annotations", default={}) if obj else {}


def fail_modes(*objs: Mapping | None) -> set[str]:
    """Failure modes injected with the `simulator.kubestack.io/fail` annotation on any of objs."""
    modes: set[str] = set()
    for o in objs:
        raw = annotations(o).get(ANN_FAIL, "")
        modes.update(m.strip() for m in raw.split(",") if m.strip())
    return modes


def load_json_annotation(obj: Mapping | None, key: str) -> dict | None:
    raw = annotations(obj).get(key)
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def deleting(obj: Mapping | None) -> bool:
    return bool(obj) and bool(get(obj, "metadata", "deletionTimestamp"))


@dataclass
class SimConfig:
    boot_delay: float = 0.0       # VMI creation -> Running
    import_delay: float = 0.0     # DataVolume bound -> Succeeded (import, clone, restore)
    migration_delay: float = 0.0  # migration created -> Succeeded
    fail_rate: float = 0.0        # share of VMIs failing during boot
    seed: int = 0
    restart_backoff: float = 10.0     # first crash-loop back-off (KubeVirt doubles it, max 5 min)
    max_restart_backoff: float = 300.0
    launcher_image: str = "simulator.kubestack.io/virt-launcher:v1.9.0"


@dataclass
class World:
    """What a reconcile may read: the simulator's caches, keyed (namespace, name) or name."""

    now: float
    config: SimConfig = field(default_factory=SimConfig)
    nodes: Mapping[str, dict] = field(default_factory=dict)
    vms: Mapping[tuple[str, str], dict] = field(default_factory=dict)
    vmis: Mapping[tuple[str, str], dict] = field(default_factory=dict)
    migrations: Mapping[tuple[str, str], dict] = field(default_factory=dict)
    dvs: Mapping[tuple[str, str], dict] = field(default_factory=dict)
    pvcs: Mapping[tuple[str, str], dict] = field(default_factory=dict)
    pvs: Mapping[str, dict] = field(default_factory=dict)
    storage_classes: Mapping[str, dict] = field(default_factory=dict)
    snapshots: Mapping[tuple[str, str], dict] = field(default_factory=dict)
    snapshot_contents: Mapping[str, dict] = field(default_factory=dict)
    snapshot_classes: Mapping[str, dict] = field(default_factory=dict)
    pod_ips: Mapping[str, str] = field(default_factory=dict)  # pod-network IP -> VMI uid
