"""The simulator process: watches, caches, a work queue, and the writes the pure modules ask for.

Why plain watches and not kopf: kopf's handlers keep their progress in annotations (and daemons
and timers in finalizers) on the objects they serve, and the operator itself runs kopf on
VirtualMachines too; the simulator must write nothing but what KubeVirt/CDI/a CSI driver would,
and leave objects deletable when it is not running (the one exception is the external-snapshotter's
own: its finalizers on VolumeSnapshots and on our driver's VolumeSnapshotContents, which order
their deletion exactly as on a cluster whose snapshot controller is down). So:

* one informer per resource (`runtime.informer.Informer`, the operator's: list, then watch from
  the list's resourceVersion, relist on 410 Gone; `optional`, so a CRD that is not served yet
  turns its part off until it is installed), whose handler folds each event into a cache of
  plain dicts the decisions read under one lock;
* every event enqueues the object's key and the keys that depend on it (a VMI event wakes its VM,
  a PVC event the DataVolume and VMs using it, a Node event the VMIs on it, ...);
* several workers (default 8) reconcile keys from a deduplicating queue (`workqueue`), never
  one key, nor a VM and its VMI and migrations, in two workers at once: the pure function
  computes the writes from the cache under the simulator's lock, the worker makes them outside
  it and folds the responses back into the cache; a delayed requeue drives the timed
  transitions (boot, import progress, migration) and crash-loop back-offs (what keeps
  concurrent decisions consistent: see "the workers" below);
* writes are merge patches of the difference only: an unchanged cluster gets no writes, and a
  restarted simulator picks up where the status says it was;
* the default classes (StorageClasses `standard` and `fast-ssd`, VolumeSnapshotClass `simulated`)
  are created when missing at start-up, and the VolumeSnapshotClass again whenever its resource
  becomes served later (the snapshot CRDs installed after the simulator started, or reinstalled):
  a class the user edits or deletes meanwhile is left as they made it.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
import time
from collections import Counter, OrderedDict, defaultdict
from typing import Any, Callable, Hashable, Mapping

from kubestack.k8s.rest import ApiError, api_request
from kubestack.runtime.informer import Informer
from kubestack.simulator import cdi, kubevirt, storage
from kubestack.simulator.common import (
    RESOURCES, Key, Outcome, SimConfig, World, Write, coalesce, get,
)
from kubestack.simulator.workqueue import WorkQueue

log = logging.getLogger("kubestack.simulator")

WATCHED = ("Node", "StorageClass", "PersistentVolume", "PersistentVolumeClaim", "VirtualMachine",
           "VirtualMachineInstance", "VirtualMachineInstanceMigration", "DataVolume",
           "VolumeSnapshot", "VolumeSnapshotContent", "VolumeSnapshotClass")
RECONCILED = {
    "VirtualMachine", "VirtualMachineInstance", "VirtualMachineInstanceMigration", "DataVolume",
    "PersistentVolumeClaim", "PersistentVolume", "VolumeSnapshot", "VolumeSnapshotContent",
}
NAMESPACED_CACHE = {k for k in WATCHED if RESOURCES[k].namespaced}
DEFAULT_WORKERS = 8       # writes wait for the API server: a boot storm needs several in flight
GONE_REMEMBERED = 4096    # uids of deleted objects kept to drop late write responses about them
DEFAULTS_RECHECK = 1.0    # seconds between looks at whether the VolumeSnapshotClass became served


def _rv(obj: dict | None) -> int:
    try:
        return int(get(obj, "metadata", "resourceVersion", default="0"))
    except ValueError:
        return 0


def _ckey(kind: str, obj: dict) -> Any:
    md = obj["metadata"]
    return (md.get("namespace", ""), md["name"]) if kind in NAMESPACED_CACHE else md["name"]


def dependencies(kind: str, obj: dict) -> set[Key]:
    """The keys whose changes can change what reconciling (kind, obj) does."""
    md = obj["metadata"]
    ns = md.get("namespace", "")
    deps: set[Key] = set()
    if kind == "VirtualMachine":
        deps.add(("VirtualMachineInstance", ns, md["name"]))
        for v in get(obj, "spec", "template", "spec", "volumes", default=[]):
            claim = kubevirt.claim_of(v)
            if claim:
                deps.update({("PersistentVolumeClaim", ns, claim), ("DataVolume", ns, claim)})
        for t in get(obj, "spec", "dataVolumeTemplates", default=[]):
            if get(t, "metadata", "name"):
                deps.add(("DataVolume", ns, t["metadata"]["name"]))
    elif kind == "VirtualMachineInstance":
        deps.add(("VirtualMachine", ns, md["name"]))
        for v in get(obj, "spec", "volumes", default=[]):
            claim = kubevirt.claim_of(v)
            if claim:
                deps.add(("PersistentVolumeClaim", ns, claim))
        node = get(obj, "status", "nodeName")
        deps.add(("Node", "", node) if node and get(obj, "status", "phase") in ("Scheduled", "Running")
                 else ("Node", "", "*"))
    elif kind == "VirtualMachineInstanceMigration":
        vmi = get(obj, "spec", "vmiName", default="")
        deps.update({("VirtualMachineInstance", ns, vmi), ("VirtualMachine", ns, vmi), ("Node", "", "*")})
    elif kind == "DataVolume":
        deps.add(("PersistentVolumeClaim", ns, md["name"]))
        src = get(obj, "spec", "source", default={})
        if src.get("pvc"):
            sns, sname = src["pvc"].get("namespace") or ns, src["pvc"].get("name", "")
            deps.update({("PersistentVolumeClaim", sns, sname), ("DataVolume", sns, sname)})
        if src.get("snapshot"):
            deps.add(("VolumeSnapshot", src["snapshot"].get("namespace") or ns, src["snapshot"].get("name", "")))
    elif kind == "PersistentVolumeClaim":
        deps.add(("PersistentVolume", "", f"pvc-{md['uid']}"))
        if get(obj, "spec", "volumeName"):
            deps.add(("PersistentVolume", "", obj["spec"]["volumeName"]))
        deps.add(("StorageClass", "", get(obj, "spec", "storageClassName", default="")))
    elif kind == "PersistentVolume":
        ref = get(obj, "spec", "claimRef")
        if ref:
            deps.add(("PersistentVolumeClaim", ref.get("namespace", ""), ref.get("name", "")))
    elif kind == "VolumeSnapshot":
        claim = get(obj, "spec", "source", "persistentVolumeClaimName")
        if claim:
            deps.add(("PersistentVolumeClaim", ns, claim))
        deps.add(("VolumeSnapshotContent", "", storage.content_name(obj)))
        pre = get(obj, "spec", "source", "volumeSnapshotContentName")
        if pre:
            deps.add(("VolumeSnapshotContent", "", pre))
    elif kind == "VolumeSnapshotContent":
        ref = get(obj, "spec", "volumeSnapshotRef", default={})
        deps.add(("VolumeSnapshot", ref.get("namespace", ""), ref.get("name", "")))
    return deps


class PodIPs:
    """Which VMI holds each pod-network address: `owners` (ip -> VMI uid) is the map
    `kubevirt.pod_ip_for` picks a free address from. A VMI holds an address while

    * its cached status reports it ("seen": dropped when the VMI is forgotten or reaches a final
      phase), or
    * a reconcile chose it and the status write carrying it is in flight ("reserved": taken
      under the lock the decision held, dropped when that reconcile ends, whatever became of the
      write: landed, its response is in the cache and "seen" holds the address; failed, or the
      VMI was deleted meanwhile, the address is free again).

    Without the reservation two VMIs decided by two workers from the same cache, before either
    status came back, could be given the same address. Callers hold `Simulator.lock`.
    """

    def __init__(self) -> None:
        self.owners: dict[str, str] = {}
        self._holders: dict[str, dict[Hashable, str]] = {}  # ip -> {holder: uid}
        self._held: dict[Hashable, set[str]] = {}            # holder -> ips

    def hold(self, holder: Hashable, ips: Mapping[str, str]) -> None:
        """`holder` now holds exactly `ips` (ip -> uid), replacing what it held before."""
        self.drop(holder)
        if not ips:
            return
        self._held[holder] = set(ips)
        for ip, uid in ips.items():
            self._holders.setdefault(ip, {})[holder] = uid
            self.owners.setdefault(ip, uid)

    def drop(self, holder: Hashable) -> None:
        for ip in self._held.pop(holder, ()):
            holders = self._holders[ip]
            del holders[holder]
            if holders:
                self.owners[ip] = next(iter(holders.values()))
            else:
                del self._holders[ip]
                del self.owners[ip]

    def holders(self) -> set[Hashable]:
        return set(self._held)


class Simulator:
    """Plays KubeVirt + CDI + a CSI provisioner against the API server behind `api`."""

    def __init__(self, api: Any, config: SimConfig | None = None, *, field_validation: str = "Strict",
                 ensure_defaults: bool = True, clock: Callable[[], float] = time.time,
                 workers: int = DEFAULT_WORKERS):
        if workers < 1:
            raise ValueError("the simulator needs at least one worker")
        self.api = api
        self.config = config or SimConfig()
        self.field_validation = field_validation
        self.ensure_defaults = ensure_defaults
        self.clock = clock
        self.workers = workers
        self.lock = threading.RLock()
        self.cache: dict[str, dict] = {k: {} for k in WATCHED}
        self.informers: dict[str, Informer] = {
            k: Informer(api, RESOURCES[k].api_version, RESOURCES[k].plural, k, optional=True) for k in WATCHED}
        self.queue = WorkQueue(group=self._group)
        self.stop_event = threading.Event()
        self.deps: dict[Key, set[Key]] = {}
        self.dependents: dict[Key, set[Key]] = defaultdict(set)
        self.pod_ips = PodIPs()
        self._gone: OrderedDict[str, None] = OrderedDict()  # uids of deleted objects (bounded)
        self._stats_lock = threading.Lock()
        self.writes: Counter = Counter()
        self.errors: Counter = Counter()
        self._last_sent: dict[tuple, tuple[str, int]] = {}
        self._workers: list[threading.Thread] = []
        self._snapshot_class_served = False  # as last seen by the defaults (see `_ensure_late_defaults`)

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self, sync_timeout: float = 60.0) -> None:
        for kind, informer in self.informers.items():
            informer.add_handler(functools.partial(self._on_event, kind))
            informer.start()
        deadline = time.time() + sync_timeout
        for kind, informer in self.informers.items():
            if not informer.wait_synced(max(deadline - time.time(), 0.1)):
                raise RuntimeError(f"simulator: could not list {kind} within {sync_timeout}s")
        for kind in WATCHED:
            if not self.served(kind):
                log.warning("simulator: %s (%s) is not served; its part is off until it is",
                            kind, RESOURCES[kind].api_version)
        if self.ensure_defaults:
            self._ensure_defaults()
        self.resync()
        for i in range(self.workers):
            w = threading.Thread(target=self._work, name=f"simulator-worker-{i}", daemon=True)
            w.start()
            self._workers.append(w)
        if self.ensure_defaults:
            w = threading.Thread(target=self._watch_defaults, name="simulator-defaults", daemon=True)
            w.start()
            self._workers.append(w)
        log.info("simulator started: %s", ", ".join(k for k in WATCHED if self.served(k)))

    def stop(self, timeout: float = 5.0) -> None:
        self.stop_event.set()
        deadline = time.time() + timeout
        for informer in self.informers.values():
            informer.stop(max(deadline - time.time(), 0.0))
        for t in self._workers:
            t.join(max(deadline - time.time(), 0.0))

    def run_forever(self) -> None:
        self.start()
        while not self.stop_event.wait(1.0):
            pass

    def resync(self) -> None:
        """Enqueue every reconciled object (a restart's view, without restarting)."""
        with self.lock:
            keys = [(k, *(ck if isinstance(ck, tuple) else ("", ck))) for k in RECONCILED for ck in self.cache[k]]
        for key in keys:
            self.queue.add(key)

    def wait_idle(self, timeout: float = 30.0) -> bool:
        return self.queue.wait_idle(timeout)

    # -- what the API server serves, and defaults --------------------------------------------
    def served(self, kind: str) -> bool:
        return bool(self.informers[kind].served)

    def has_status(self, kind: str) -> bool:
        return "status" in self.informers[kind].subresources

    def _ensure_defaults(self) -> None:
        """Create the default classes that are missing (called once every informer has listed)."""
        self._snapshot_class_served = self.served("VolumeSnapshotClass")
        bodies = storage.default_storage_classes()
        if self._snapshot_class_served:
            bodies.append(storage.default_snapshot_class())
        self._create_missing(bodies)

    def _ensure_late_defaults(self) -> None:
        """Create the default VolumeSnapshotClass if its resource has become served since the last
        look (start-up's included): the snapshot CRDs were installed after the simulator started.
        Once per becoming served, as at start-up: a class edited or deleted while the resource
        stays served is left so. A failed create is tried again at the next look."""
        served = self.served("VolumeSnapshotClass")
        if served and not self._snapshot_class_served:
            log.info("simulator: VolumeSnapshotClass is served now")
            self._create_missing([storage.default_snapshot_class()])
        self._snapshot_class_served = served

    def _watch_defaults(self) -> None:
        while not self.stop_event.wait(DEFAULTS_RECHECK):
            try:
                self._ensure_late_defaults()
            except Exception:  # noqa: BLE001 - an API error: looked at again next time
                log.exception("simulator: creating the default VolumeSnapshotClass failed; retrying")

    def _create_missing(self, bodies: list[dict]) -> None:
        """POST each class of `bodies` the cache does not hold (409: someone made it meanwhile, and
        theirs is kept)."""
        for body in bodies:
            res = RESOURCES[body["kind"]]
            with self.lock:
                existing = list(self.cache[body["kind"]].values())
            if any(c["metadata"]["name"] == body["metadata"]["name"] for c in existing):
                continue
            if body["kind"] == "StorageClass" and body["metadata"].get("annotations"):
                # only one default class: don't add a second default beside someone else's
                if any(get(sc, "metadata", "annotations", storage.DEFAULT_CLASS_ANNOTATION) == "true"
                       for sc in existing):
                    body = json.loads(json.dumps(body))
                    body["metadata"].pop("annotations")
            try:
                api_request(self.api, "POST", res.path(), body=body)
                log.info("simulator: created %s %s", body["kind"], body["metadata"]["name"])
            except ApiError as exc:
                if exc.status != 409:
                    raise

    # -- cache --------------------------------------------------------------------------------
    def _on_event(self, kind: str, etype: str, obj: dict, previous: dict | None) -> None:
        """An informer's handler: fold a watch (or relist) event into the cache."""
        if etype == "DELETED":
            self._forget(kind, obj)
        else:
            self._apply(kind, obj)

    def _apply(self, kind: str, obj: dict, response: bool = False) -> None:
        """Cache `obj`, from a watch event or (`response`) a write's answer."""
        ck = _ckey(kind, obj)
        with self.lock:
            old = self.cache[kind].get(ck)
            if old is not None and _rv(old) > _rv(obj) \
                    and get(old, "metadata", "uid") == get(obj, "metadata", "uid"):
                return
            if get(obj, "metadata", "uid") in self._gone:
                # a worker's write response that arrives after the watch reported the deletion:
                # caching it would resurrect the object until the next relist
                return
            if response:
                # the informer's Store too: a relist diffs against it, and reports this object's
                # deletion even if its watch events were missed (a 410 gap)
                self.informers[kind].store.apply_event("MODIFIED", obj, owned=True)
            self.cache[kind][ck] = obj
            key = (kind, obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
            self._index(kind, key, obj)
            wake = self._wake(key)
        for k in wake:
            self.queue.add(k)

    def _forget(self, kind: str, obj: dict) -> None:
        ck = _ckey(kind, obj)
        with self.lock:
            uid = get(obj, "metadata", "uid")
            if uid:
                self._gone[uid] = None
                if len(self._gone) > GONE_REMEMBERED:
                    self._gone.popitem(last=False)
            old = self.cache[kind].get(ck)
            if old is not None and get(old, "metadata", "uid") != uid:
                return
            self.cache[kind].pop(ck, None)
            key = (kind, obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
            self._index(kind, key, None)
            wake = self._wake(key)
        for k in wake:
            self.queue.add(k)

    def _index(self, kind: str, key: Key, obj: dict | None) -> None:
        for dep in self.deps.pop(key, set()):
            self.dependents[dep].discard(key)
        if obj is not None and kind in RECONCILED:
            deps = dependencies(kind, obj)
            self.deps[key] = deps
            for dep in deps:
                self.dependents[dep].add(key)
        if kind == "VirtualMachineInstance":
            live = obj is not None and get(obj, "status", "phase") not in kubevirt.FINAL_PHASES
            uid = get(obj, "metadata", "uid")
            self.pod_ips.hold(("seen", key), {ip: uid for ip in kubevirt.pod_ips_of(obj)} if live else {})

    def _wake(self, key: Key) -> set[Key]:
        wake = set(self.dependents.get(key, ()))
        if key[0] in RECONCILED:
            wake.add(key)
        if key[0] == "Node":
            wake |= self.dependents.get(("Node", "", "*"), set())
        if key[0] == "StorageClass":
            wake |= {("PersistentVolumeClaim", ns, n) for (ns, n), pvc in self.cache["PersistentVolumeClaim"].items()
                     if get(pvc, "spec", "storageClassName") == key[2]}
        if key[0] == "VolumeSnapshotClass":
            wake |= {("VolumeSnapshot", ns, n) for (ns, n) in self.cache["VolumeSnapshot"]}
        return wake

    def world(self) -> World:
        c = self.cache
        return World(
            now=self.clock(), config=self.config, nodes=c["Node"], vms=c["VirtualMachine"],
            vmis=c["VirtualMachineInstance"], migrations=c["VirtualMachineInstanceMigration"],
            dvs=c["DataVolume"], pvcs=c["PersistentVolumeClaim"], pvs=c["PersistentVolume"],
            storage_classes=c["StorageClass"], snapshots=c["VolumeSnapshot"],
            snapshot_contents=c["VolumeSnapshotContent"], snapshot_classes=c["VolumeSnapshotClass"],
            pod_ips=self.pod_ips.owners,
        )

    # -- the workers --------------------------------------------------------------------------
    #
    # Several workers reconcile at once; the queue never hands out two keys of one group (see
    # `_group`), and a decision is computed under `self.lock` from the cache, its writes made
    # outside it. What keeps concurrent decisions of different groups from writing wrong things:
    #
    # * pod-network addresses are the one shared pool a decision picks from: a chosen address is
    #   reserved before the lock is released (`_reserve_pod_ips`, `PodIPs`);
    # * every other name a decision invents is derived from the owner's uid, so two workers can
    #   only ever agree on it, and a duplicate create gets 409, taken as done: PVs `pvc-<pvc uid>`,
    #   VolumeSnapshotContents `snapcontent-<snapshot uid>`, MACs, node placement (a hash of the
    #   VMI's uid over the ready nodes, no capacity is counted) and migration targets (the
    #   migration's uid);
    # * CDI progress, boot and migration timing are read from the object's own status stamps:
    #   only its own key writes them;
    # * objects written by more than one kind of key get merge patches of disjoint fields from
    #   each: a PVC's POD_PHASE annotation (DataVolume) vs its binding and status (PVC); a PV's
    #   creation, capacity and status (PVC) vs its reclaim deletion (PV, uid precondition, only
    #   once the claim is gone); a VolumeSnapshotContent's creation, binding, ready status,
    #   being-deleted annotation and deletion (VolumeSnapshot; the deletion with a uid
    #   precondition, only once the snapshot is being deleted) vs its finalizer and the status
    #   cleared when the storage-side snapshot is deleted (content, only once it is being deleted
    #   and marked). Finalizer lists are replaced whole, so those patches carry the
    #   resourceVersion they were computed from (a concurrent edit gets 409, looked at again). A
    #   write from a stale view of an object deleted meanwhile gets 404 and the key is looked at
    #   again;
    # * a VM, its VMI and the VMI's migrations are one group, serialised: the VM decides from the
    #   VMI (create, delete, LiveUpdate and hotplug of its spec, its own status), the VMI from the
    #   VM (injected failures), the migration writes the VMI's status (migrationState, nodeName)
    #   and decides from the VMI's migrationState whether another migration is in flight. Two
    #   migrations of one VMI decided at once would both move it; a VMI decision from a view
    #   taken before a migration's patch landed acts for the node it left (fails it for that
    #   node's lost heartbeat, say). Serialising them also means each decides from its
    #   partners' landed writes, not from the state they are about to leave (fewer writes).
    def _group(self, key: Key) -> Hashable:
        """The exclusion group of a key: a VM, its VMI and the VMI's migrations share one."""
        kind, ns, name = key
        if kind in ("VirtualMachine", "VirtualMachineInstance"):
            return ("vm", ns, name)
        if kind == "VirtualMachineInstanceMigration":
            # read without self.lock: the queue calls this with its own lock held, and taking
            # self.lock here would nest the two; one dict read is atomic, and a migration's
            # spec.vmiName never changes
            vmi = get(self.cache[kind].get((ns, name)), "spec", "vmiName")
            if vmi:
                return ("vm", ns, vmi)
        return key

    def _work(self) -> None:
        while not self.stop_event.is_set():
            key = self.queue.get(self.stop_event)
            if key is None:
                return
            try:
                self._reconcile(key)
            except Exception:
                self._count(self.errors, key[0])
                log.exception("simulator: reconciling %s failed; retrying", "/".join(key))
                self.queue.add_after(key, 1.0)
            finally:
                self.queue.done(key)

    def _reconcile(self, key: Key) -> None:
        kind, ns, name = key
        with self.lock:
            ck = (ns, name) if kind in NAMESPACED_CACHE else name
            obj = self.cache[kind].get(ck)
            if obj is None:
                return
            world = self.world()
            outcome = self._decide(kind, obj, world)
            writes = coalesce(outcome.writes, self.has_status)
            self._reserve_pod_ips(key, writes)
        try:
            for write in writes:
                if not self._execute(write):
                    self.queue.add_after(key, 0.2)
                    return
        finally:
            with self.lock:
                self.pod_ips.drop(("reserved", key))
        if outcome.requeue_after is not None:
            self.queue.add_after(key, outcome.requeue_after)

    def _reserve_pod_ips(self, key: Key, writes: list[Write]) -> None:
        """Reserve the pod-network addresses `writes` are about to report, for the reconcile of
        `key` (the queue hands a key to one worker at a time, so the key names the reservation).
        Called with self.lock held, in the same hold as the decision that chose them."""
        claims: dict[str, str] = {}
        for w in writes:
            if w.kind != "VirtualMachineInstance" or w.verb not in ("status", "patch"):
                continue
            uid = get(self.cache[w.kind].get((w.namespace, w.name)), "metadata", "uid")
            if uid:
                claims.update((ip, uid) for ip in kubevirt.pod_ips_of(w.body))
        self.pod_ips.hold(("reserved", key), claims)

    @staticmethod
    def _decide(kind: str, obj: dict, world: World) -> Outcome:
        md = obj["metadata"]
        if kind == "VirtualMachine":
            return kubevirt.reconcile_vm(obj, world.vmis.get((md["namespace"], md["name"])), world)
        if kind == "VirtualMachineInstance":
            return kubevirt.reconcile_vmi(obj, world)
        if kind == "VirtualMachineInstanceMigration":
            return kubevirt.reconcile_migration(obj, world)
        if kind == "DataVolume":
            return cdi.reconcile_dv(obj, world)
        if kind == "PersistentVolumeClaim":
            return storage.reconcile_pvc(obj, world)
        if kind == "PersistentVolume":
            return storage.reconcile_pv(obj, world)
        if kind == "VolumeSnapshot":
            return storage.reconcile_snapshot(obj, world)
        if kind == "VolumeSnapshotContent":
            return storage.reconcile_snapshot_content(obj, world)
        return Outcome()

    def _execute(self, w: Write) -> bool:
        """Make one write; False when the rest of the outcome should wait (conflict, error)."""
        res = RESOURCES[w.kind]
        if not self.served(w.kind):
            log.warning("simulator: cannot %s: %s is not served", w.describe(), w.kind)
            return False
        ns = w.namespace or None
        query = [("fieldValidation", self.field_validation)] if w.verb in ("create", "patch", "status") else []
        guard = (w.verb, w.kind, w.namespace, w.name)
        body_text = json.dumps(w.body, sort_keys=True) if w.body is not None else ""
        if w.verb in ("patch", "status"):
            cached = self._cached(w.kind, w.namespace, w.name)
            last = self._last_sent.get(guard)
            if last and last[0] == body_text and cached is not None and _rv(cached) == last[1]:
                # the server took this exact patch and answered with the object we have: it drops
                # (prunes) what we send, and sending it again would only loop
                log.warning("simulator: %s: the server keeps dropping %s", w.describe(), body_text[:300])
                return True
        try:
            if w.verb == "create":
                out = api_request(self.api, "POST", res.path(ns), query=query, body=w.body)
            elif w.verb == "patch":
                out = api_request(self.api, "PATCH", res.path(ns, w.name), query=query, body=w.body,
                                  content_type="application/merge-patch+json")
            elif w.verb == "status":
                sub = "status" if self.has_status(w.kind) else None
                out = api_request(self.api, "PATCH", res.path(ns, w.name, sub), query=query, body=w.body,
                                  content_type="application/merge-patch+json")
            elif w.verb == "delete":
                body: dict = {"propagationPolicy": "Background"}
                if w.uid:
                    body["preconditions"] = {"uid": w.uid}
                out = api_request(self.api, "DELETE", res.path(ns, w.name), body=body)
                out = None
            else:
                raise ValueError(f"unknown write verb {w.verb}")
        except ApiError as exc:
            self._count(self.errors, w.kind)
            if exc.status == 404:
                log.debug("simulator: %s: gone", w.describe())
                return w.verb == "delete"
            if exc.status == 409:
                log.debug("simulator: %s: conflict (%s)", w.describe(), exc.message)
                return w.verb == "create"
            if exc.status == 403 and "being terminated" in exc.message:
                # the namespace is going away: its objects' deletions will arrive as events
                log.debug("simulator: %s: namespace terminating", w.describe())
                return True
            log.error("simulator: %s failed: %s %s", w.describe(), exc.status, exc.message)
            return False
        self._count(self.writes, (w.verb, w.kind))
        log.info("simulator: %s %s", w.describe(), _summary(w))
        if isinstance(out, dict) and out.get("metadata"):
            out.setdefault("kind", w.kind)
            out.setdefault("apiVersion", res.api_version)
            if w.verb in ("patch", "status"):
                self._last_sent[guard] = (body_text, _rv(out))
            self._apply(w.kind, out, response=True)
        return True

    def _cached(self, kind: str, ns: str, name: str) -> dict | None:
        with self.lock:
            return self.cache[kind].get((ns, name) if kind in NAMESPACED_CACHE else name)

    def _count(self, counter: Counter, what: Any) -> None:
        with self._stats_lock:  # `+=` on a Counter is a read and a write: workers would lose counts
            counter[what] += 1

    def total_writes(self) -> int:
        with self._stats_lock:
            return sum(self.writes.values())


def _summary(w: Write) -> str:
    if w.verb == "status" and isinstance(w.body, dict):
        st = w.body.get("status") or {}
        bits = [f"{k}={st[k]}" for k in ("phase", "printableStatus", "progress", "readyToUse", "nodeName") if k in st]
        return " ".join(bits)
    return ""


def client_for(kubeconfig: str | None, workers: int = DEFAULT_WORKERS) -> Any:
    from kubernetes import client, config

    configuration = client.Configuration()
    config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    # one streaming watch per resource + one connection per worker, and some slack
    configuration.connection_pool_maxsize = max(32, len(WATCHED) + workers + 4)
    return client.ApiClient(configuration)


def run(kubeconfig: str | None, config: SimConfig, field_validation: str = "Strict",
        workers: int = DEFAULT_WORKERS) -> int:
    import signal

    sim = Simulator(client_for(kubeconfig, workers), config, field_validation=field_validation,
                    workers=workers)

    def _stop(signum, frame):  # noqa: ARG001 - signal handler signature
        sim.stop_event.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    sim.start()
    while not sim.stop_event.wait(1.0):
        pass
    sim.stop()
    log.info("simulator stopped; writes: %s", dict(sim.writes))
    return 0
