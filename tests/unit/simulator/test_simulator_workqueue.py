"""The simulator's parallel workers: the work queue's guarantees (one worker per key and per
group, re-adds during a reconcile re-run it, dedup, delayed adds, wait_idle) and the decisions
that must stay atomic across workers (pod-network addresses), without an API server."""

from __future__ import annotations

import random
import threading
import time

from sim_helpers import node, uid, vm

from kubestack.simulator import kubevirt
from kubestack.simulator.main import Simulator
from kubestack.simulator.workqueue import WorkQueue

A = ("VirtualMachine", "p1", "a")
B = ("VirtualMachine", "p1", "b")


def taker(q: WorkQueue, stop: threading.Event) -> tuple[threading.Thread, list]:
    """A thread blocked in q.get(); the list gets what it returns."""
    got: list = []
    t = threading.Thread(target=lambda: got.append(q.get(stop)), daemon=True)
    t.start()
    return t, got


# -- the queue ----------------------------------------------------------------------------------

def test_adding_a_queued_key_again_is_a_no_op():
    q = WorkQueue()
    for _ in range(3):
        q.add(A)
    q.add(B)
    assert len(q) == 2
    stop = threading.Event()
    assert [q.get(stop), q.get(stop)] == [A, B]
    assert len(q) == 0


def test_a_key_added_while_it_is_worked_on_waits_and_runs_again_after_done():
    q = WorkQueue()
    stop = threading.Event()
    q.add(A)
    assert q.get(stop) == A
    q.add(A)  # a change seen during the reconcile
    assert len(q) == 1
    t, got = taker(q, stop)
    t.join(0.3)
    assert t.is_alive() and got == []  # a second worker does not get it meanwhile
    q.done(A)
    t.join(2)
    assert got == [A]
    q.done(A)
    stop.set()


def test_keys_of_one_group_are_never_handed_out_together_but_others_are():
    q = WorkQueue(group=lambda key: key[2][0])  # group: first letter of the name
    stop = threading.Event()
    a1, a2, b1 = ("K", "", "a1"), ("K", "", "a2"), ("K", "", "b1")
    for k in (a1, a2, b1):
        q.add(k)
    assert q.get(stop) == a1
    assert q.get(stop) == b1  # a2 is skipped, not blocking what follows it
    t, got = taker(q, stop)
    t.join(0.3)
    assert got == []
    q.done(b1)
    t.join(0.3)
    assert got == []  # b1's group freed, but a2 still waits for a1
    q.done(a1)
    t.join(2)
    assert got == [a2]
    q.done(a2)
    stop.set()


def test_delayed_adds_fire_once_and_keep_only_the_earliest_due_time():
    q = WorkQueue()
    stop = threading.Event()
    q.add_after(A, 30)
    q.add_after(A, 0.05)  # earlier: replaces
    q.add_after(A, 60)    # later: ignored
    assert len(q) == 0 and q.pending_delayed() == 1
    t0 = time.monotonic()
    assert q.get(stop) == A
    assert 0.04 <= time.monotonic() - t0 < 5
    q.done(A)
    assert q.pending_delayed() == 0
    t, got = taker(q, stop)
    t.join(0.3)
    assert got == []  # the replaced 30 s entry does not fire early either
    stop.set()
    t.join(2)
    assert got == [None]


def test_a_delayed_add_of_a_key_already_queued_is_deduplicated():
    q = WorkQueue()
    stop = threading.Event()
    q.add(A)
    q.add_after(A, 0.01)
    time.sleep(0.05)
    assert q.get(stop) == A
    q.done(A)
    t, got = taker(q, stop)
    t.join(0.2)
    assert got == []
    stop.set()


def test_zero_delay_is_a_plain_add():
    q = WorkQueue()
    q.add_after(A, 0)
    assert len(q) == 1 and q.pending_delayed() == 0


def test_wait_idle_waits_for_ready_and_active_keys_but_not_delayed_ones():
    q = WorkQueue()
    stop = threading.Event()
    assert q.wait_idle(0.01)
    q.add_after(B, 60)
    assert q.wait_idle(0.01)  # delayed keys may remain
    q.add(A)
    assert not q.wait_idle(0.05)  # ready
    assert q.get(stop) == A
    assert not q.wait_idle(0.05)  # being worked on
    threading.Timer(0.1, q.done, args=(A,)).start()
    assert q.wait_idle(5)


def test_get_returns_none_once_stopped():
    q = WorkQueue()
    stop = threading.Event()
    t, got = taker(q, stop)
    stop.set()
    t.join(2)
    assert got == [None]


def test_many_workers_never_overlap_on_a_key_or_group_and_lose_no_add():
    """8 workers, 30 keys in 10 groups, adds from outside and from inside reconciles: no key (or
    group) is ever active twice, and every add is followed by a reconcile that started after it."""
    groups = {("K", "", f"k{i}"): i % 10 for i in range(30)}
    q = WorkQueue(group=groups.__getitem__)
    stop = threading.Event()
    mu = threading.Lock()
    added = dict.fromkeys(groups, 0)     # adds so far
    processed = dict.fromkeys(groups, 0)  # the `added` count the last reconcile started after
    active_groups: set = set()
    violations: list = []
    rng = random.Random(7)

    def add(k):
        with mu:
            added[k] += 1
        q.add(k)

    def worker():
        r = random.Random(threading.get_ident())
        while True:
            k = q.get(stop)
            if k is None:
                return
            with mu:
                if groups[k] in active_groups:
                    violations.append(k)
                active_groups.add(groups[k])
                seen = added[k]
            time.sleep(r.random() * 0.002)
            if r.random() < 0.2:
                add(r.choice(list(groups)))  # a reconcile waking another key, or itself
            with mu:
                active_groups.discard(groups[k])
                processed[k] = seen
            q.done(k)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(8)]
    for t in threads:
        t.start()
    keys = list(groups)
    for _ in range(1500):
        add(rng.choice(keys))
        if rng.random() < 0.1:
            time.sleep(0.001)
    assert q.wait_idle(30)
    stop.set()
    for t in threads:
        t.join(2)
    assert violations == []
    assert processed == added


# -- shared choices across workers -------------------------------------------------------------------

def _colliding_uids() -> tuple[str, str]:
    """Two uids whose pod-network address search starts at the same address."""
    size = kubevirt.POD_NETWORK.num_addresses - 2
    seen: dict[int, str] = {}
    for i in range(100000):
        u = f"00000000-0000-4000-8000-{i:012d}"
        start = kubevirt.stable_int("pod-ip", u) % size
        if start in seen:
            return seen[start], u
        seen[start] = u
    raise AssertionError("no collision found")


def _vmi(name: str, vmi_uid: str) -> dict:
    obj = kubevirt.vmi_from_template(vm(name))
    obj["metadata"].update(uid=vmi_uid, resourceVersion="1")
    return obj


def _simulator(*vmis: dict) -> Simulator:
    sim = Simulator(api=None, ensure_defaults=False, workers=2)
    sim._apply("Node", node("n1"))
    for v in vmis:
        sim._apply("VirtualMachineInstance", v)
    return sim


def _carries_status(write) -> bool:
    """A status write, or (no status subresource, as for KubeVirt's VMI) a patch carrying one."""
    return "status" in (write.body or {})


def _pod_ip(writes) -> str:
    [ip] = [ip for w in writes if _carries_status(w) for ip in kubevirt.pod_ips_of(w.body)]
    return ip


def test_two_vmis_decided_concurrently_never_share_a_pod_ip():
    ua, ub = _colliding_uids()
    sim = _simulator(_vmi("a", ua), _vmi("b", ub))
    # the hazard: decided from the same cache without a reservation, both pick one address
    with sim.lock:
        world = sim.world()
        alone = [_pod_ip(kubevirt.reconcile_vmi(sim.cache["VirtualMachineInstance"][("p1", n)], world).writes)
                 for n in ("a", "b")]
    assert alone[0] == alone[1]

    # two workers: each decision's status write is in flight (not landed) while the other decides
    both_in_flight = threading.Barrier(2, timeout=5)
    sent: dict[str, list] = {"a": [], "b": []}

    def slow_api(write):
        sent[write.name].append(write)
        if _carries_status(write):
            both_in_flight.wait()
        return True

    sim._execute = slow_api
    workers = [threading.Thread(target=sim._reconcile, args=(("VirtualMachineInstance", "p1", n),))
               for n in ("a", "b")]
    for t in workers:
        t.start()
    for t in workers:
        t.join(10)
    ips = {n: _pod_ip(sent[n]) for n in ("a", "b")}
    assert ips["a"] != ips["b"]
    assert sim.pod_ips.holders() == set()  # reservations end with their reconcile


def test_a_failed_write_releases_its_reservation_and_a_landed_one_stays_held_by_the_status():
    ua, ub = _colliding_uids()
    sim = _simulator(_vmi("a", ua), _vmi("b", ub))
    sim.queue.add_after = lambda key, seconds: None
    sim._execute = lambda write: False  # the API server refused
    sim._reconcile(("VirtualMachineInstance", "p1", "a"))
    assert sim.pod_ips.owners == {} and sim.pod_ips.holders() == set()

    landed: list = []

    def land(write):  # the API server applied it: fold the response back, as _execute does
        if _carries_status(write):
            obj = sim.cache["VirtualMachineInstance"][(write.namespace, write.name)]
            obj = {**obj, "status": write.body["status"],
                   "metadata": {**obj["metadata"], "resourceVersion": "2"}}
            sim._apply("VirtualMachineInstance", obj)
            landed.append(kubevirt.pod_ips_of(obj))
        return True

    sim._execute = land
    sim._reconcile(("VirtualMachineInstance", "p1", "a"))
    [ips] = landed
    [ip] = ips
    assert sim.pod_ips.owners == {ip: ua}
    assert sim.pod_ips.holders() == {("seen", ("VirtualMachineInstance", "p1", "a"))}
    # b, decided now, gets another address even though its search starts at the same one
    sim._reconcile(("VirtualMachineInstance", "p1", "b"))
    assert len(landed) == 2 and landed[1] != ips


def test_a_vmi_releases_its_address_when_it_finishes_or_is_forgotten():
    sim = _simulator()
    v = _vmi("a", uid())
    v["status"] = {"phase": "Running", "interfaces": [
        {"name": "default", "podInterfaceName": "eth0", "ipAddress": "10.244.0.7"}]}
    sim._apply("VirtualMachineInstance", v)
    assert sim.pod_ips.owners == {"10.244.0.7": v["metadata"]["uid"]}
    done = {**v, "status": {**v["status"], "phase": "Failed"},
            "metadata": {**v["metadata"], "resourceVersion": "2"}}
    sim._apply("VirtualMachineInstance", done)
    assert sim.pod_ips.owners == {}
    sim._apply("VirtualMachineInstance", {**v, "metadata": {**v["metadata"], "resourceVersion": "3"}})
    assert sim.pod_ips.owners == {"10.244.0.7": v["metadata"]["uid"]}
    sim._forget("VirtualMachineInstance", v)
    assert sim.pod_ips.owners == {} and sim.pod_ips.holders() == set()


def test_a_write_response_arriving_after_the_deletion_does_not_resurrect_the_object():
    sim = _simulator()
    v = _vmi("a", uid())
    sim._apply("VirtualMachineInstance", v)
    sim._forget("VirtualMachineInstance", {**v, "metadata": {**v["metadata"], "resourceVersion": "5"}})
    late = {**v, "metadata": {**v["metadata"], "resourceVersion": "4"}, "status": {"phase": "Running"}}
    sim._apply("VirtualMachineInstance", late)
    assert ("p1", "a") not in sim.cache["VirtualMachineInstance"]
    fresh = _vmi("a", uid())  # a new object of the same name is welcome
    sim._apply("VirtualMachineInstance", fresh)
    assert sim.cache["VirtualMachineInstance"][("p1", "a")] is fresh


def test_a_vm_its_vmi_and_the_vmis_migrations_form_one_group():
    sim = _simulator()
    mig = {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstanceMigration",
           "metadata": {"name": "m1", "namespace": "p1", "uid": uid(), "resourceVersion": "1"},
           "spec": {"vmiName": "a"}}
    sim._apply("VirtualMachineInstanceMigration", mig)
    g = sim._group
    assert g(("VirtualMachine", "p1", "a")) == g(("VirtualMachineInstance", "p1", "a")) \
        == g(("VirtualMachineInstanceMigration", "p1", "m1"))
    assert g(("VirtualMachine", "p1", "b")) != g(("VirtualMachine", "p1", "a"))
    assert g(("VirtualMachine", "p2", "a")) != g(("VirtualMachine", "p1", "a"))
    assert g(("DataVolume", "p1", "a")) == ("DataVolume", "p1", "a")
    assert g(("VirtualMachineInstanceMigration", "p1", "gone")) == ("VirtualMachineInstanceMigration", "p1", "gone")
