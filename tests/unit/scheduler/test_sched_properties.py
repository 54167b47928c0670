"""Property-based invariants of the scheduler (hypothesis, bounded examples)."""

import random
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sched_helpers import make_node

from kubestack.scheduler import (
    Flavor, HostCache, NoValidHost, RequestSpec, Scheduler, SchedulerConfig, ServerGroup,
)
from kubestack.scheduler.bitset import bits
from kubestack.scheduler.cache import WEIGH_ATTRIBUTES
from kubestack.scheduler.context import SchedulingContext
from kubestack.scheduler.filters import FILTERS

pytestmark = pytest.mark.unit

PROFILE = settings(max_examples=40, deadline=None,
                   suppress_health_check=[HealthCheck.too_slow])

ZONES = ["az1", "az2", "az3"]

node_st = st.fixed_dictionaries({
    "cpu": st.sampled_from(["1", "2", "4", "1500m", "8"]),
    "memory": st.sampled_from(["2Gi", "4Gi", "8Gi", "3000Mi"]),
    "disk": st.sampled_from(["20Gi", "50Gi", "100Gi"]),
    "zone": st.sampled_from(ZONES + [None]),
    "ready": st.booleans(),
    "unschedulable": st.booleans(),
    "ratio": st.sampled_from([None, "1.0", "2.5"]),
    "gpus": st.sampled_from([None, "1", "2"]),
    "ssd": st.booleans(),
    "tenant": st.sampled_from([None, "p1"]),
    "dedicated": st.booleans(),
})


def to_node(i: int, d: dict) -> dict:
    annotations = {}
    labels = {}
    if d["ratio"]:
        annotations["kubestack.io/cpu-allocation-ratio"] = d["ratio"]
    if d["ssd"]:
        labels["aggregate.kubestack.io/fast"] = "true"
        annotations["aggregate.kubestack.io/ssd"] = "true"
    if d["tenant"]:
        annotations["aggregate.kubestack.io/filter_tenant_id"] = d["tenant"]
    if d["dedicated"]:
        labels["kubestack.io/cpu-dedicated"] = "true"
    return make_node(f"h{i}", cpu=d["cpu"], memory=d["memory"], disk=d["disk"], zone=d["zone"],
                     ready=d["ready"] or i == 0, unschedulable=d["unschedulable"] and i != 0,
                     labels=labels, annotations=annotations,
                     extra={"nvidia.com/gpu": d["gpus"]} if d["gpus"] else None)


request_st = st.fixed_dictionaries({
    "vcpus": st.integers(1, 6),
    "ram_mb": st.sampled_from([256, 1024, 2048, 4096]),
    "disk_gb": st.sampled_from([0, 10, 40]),
    "gpus": st.sampled_from([0, 0, 1]),
    "az": st.sampled_from([None, None] + ZONES),
    "ssd": st.booleans(),
    "project": st.sampled_from(["p1", "p2"]),
    "dedicated": st.booleans(),
    "group": st.sampled_from([None, "affinity", "anti-affinity", "soft-affinity",
                              "soft-anti-affinity"]),
    "group_name": st.sampled_from(["g1", "g2"]),
    "count": st.integers(1, 3),
})


def to_request(r: dict, ids: tuple[str, ...]) -> RequestSpec:
    specs = {}
    if r["gpus"]:
        specs["resources:nvidia.com/gpu"] = str(r["gpus"])
    if r["ssd"]:
        specs["aggregate_instance_extra_specs:ssd"] = "true"
    if r["dedicated"]:
        specs["hw:cpu_policy"] = "dedicated"
    group = None
    if r["group"]:
        group = ServerGroup(name=f"{r['group']}-{r['group_name']}", policy=r["group"])
    return RequestSpec(
        flavor=Flavor(vcpus=r["vcpus"], ram_mb=r["ram_mb"], disk_gb=r["disk_gb"], extra_specs=specs),
        availability_zone=r["az"], project=r["project"], server_group=group,
        num_instances=r["count"], min_count=1, instance_ids=ids)


ALL_FILTERS = SchedulerConfig(enabled_filters=tuple(
    n for n in FILTERS if n not in ("PciPassthroughFilter",)))


def assert_within_capacity(cache: HostCache) -> None:
    for host in cache.hosts():
        used, limits = cache.used(host.name), cache.limits(host.name)
        for rc, amount in used.items():
            assert amount <= limits.get(rc, 0), (host.name, rc, amount, limits.get(rc))


def run_stream(nodes, requests, seed, config=ALL_FILTERS):
    cache = HostCache(config)
    for i, d in enumerate(nodes):
        cache.upsert_node(to_node(i, d))
    sched = Scheduler(cache, config, seed=seed)
    placed = []
    for n, r in enumerate(requests):
        spec = to_request(r, tuple(f"r{n}-{k}" for k in range(r["count"])))
        try:
            out = sched.select_and_claim(spec)
        except NoValidHost:
            out = []
        placed.append((spec, out))
    return cache, sched, placed


@PROFILE
@given(st.lists(node_st, min_size=1, max_size=8), st.lists(request_st, min_size=1, max_size=12),
       st.integers(0, 3))
def test_claims_never_exceed_capacity_and_requests_are_honoured(nodes, requests, seed):
    cache, _sched, placed = run_stream(nodes, requests, seed)
    assert_within_capacity(cache)
    cache.check_consistency()
    for spec, out in placed:
        hosts = [s.host for s in out]
        if spec.availability_zone:
            assert all((cache.get_host(h).zone or "nova") == spec.availability_zone for h in hosts)
        group = spec.server_group
        if group is None or not out:
            continue
        members = [r.host for r in cache.instances() if r.group == group.name]
        if group.policy == "affinity":
            assert len(set(members)) == 1
        if group.policy == "anti-affinity":
            assert len(set(members)) == len(members)
        if spec.flavor.extra_specs.get("aggregate_instance_extra_specs:ssd"):
            assert all(cache.get_host(h).aggregate_metadata.get("ssd") for h in hosts)


@PROFILE
@given(st.lists(node_st, min_size=1, max_size=8), st.lists(request_st, min_size=1, max_size=10),
       st.integers(0, 5))
def test_same_seed_same_choices(nodes, requests, seed):
    def choices():
        _c, _s, placed = run_stream(nodes, requests, seed)
        return [[(s.instance_id, s.host, s.alternates) for s in out] for _spec, out in placed]
    assert choices() == choices()


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(node_st, min_size=1, max_size=6), st.lists(request_st, min_size=4, max_size=16))
def test_concurrent_threads_never_overcommit(nodes, requests):
    cache = HostCache(ALL_FILTERS)
    for i, d in enumerate(nodes):
        cache.upsert_node(to_node(i, d))
    sched = Scheduler(cache, ALL_FILTERS, seed=1)
    errors = []

    def worker(t: int):
        try:
            for n, r in enumerate(requests):
                spec = to_request(r, tuple(f"t{t}-{n}-{k}" for k in range(r["count"])))
                try:
                    out = sched.select_and_claim(spec)
                except NoValidHost:
                    continue
                if n % 3 == 0:
                    sched.release(out[0].instance_id)
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    assert_within_capacity(cache)
    cache.check_consistency()
    for group in {r.group for r in cache.instances() if r.group and r.group.startswith("anti-")}:
        hosts = [r.host for r in cache.instances() if r.group == group]
        assert len(hosts) == len(set(hosts))


op_st = st.one_of(
    st.tuples(st.just("node"), st.integers(0, 5), node_st),
    st.tuples(st.just("drop"), st.integers(0, 5)),
    st.tuples(st.just("add"), st.integers(0, 19), st.integers(0, 5), st.integers(1, 4),
              st.booleans(), st.sampled_from([None, "g"])),
    st.tuples(st.just("done"), st.integers(0, 19)),
    st.tuples(st.just("remove"), st.integers(0, 19)),
    st.tuples(st.just("schedule"), request_st),
)


def _record(cache: HostCache, op: tuple, nodes: dict[str, dict]) -> None:
    """Apply one recording op (no decisions: a batch records only)."""
    kind = op[0]
    if kind == "node":
        node = to_node(op[1], op[2])
        nodes[node["metadata"]["name"]] = node
        cache.upsert_node(node)
    elif kind == "drop":
        nodes.pop(f"h{op[1]}", None)
        cache.remove_node(f"h{op[1]}")
    elif kind == "add":
        cache.add_instance(f"h{op[2]}", f"i{op[1]}", {"vcpus": op[3], "ram_mb": 256 * op[3]},
                           building=op[4], group=op[5])
    elif kind == "done":
        if cache.instance(f"i{op[1]}"):
            cache.set_building(f"i{op[1]}", False)
    elif kind == "remove":
        cache.remove_instance(f"i{op[1]}")


@PROFILE
@given(st.lists(op_st, max_size=30), st.randoms(use_true_random=False))
def test_rebuild_from_cluster_state_equals_incremental(ops, rnd):
    live = HostCache(ALL_FILTERS)
    sched = Scheduler(live, ALL_FILTERS, seed=0)
    nodes: dict[str, dict] = {}
    probe = to_request({"vcpus": 1, "ram_mb": 256, "disk_gb": 0, "gpus": 0, "az": None,
                        "ssd": False, "project": "p2", "dedicated": False, "group": None,
                        "group_name": "g1", "count": 1}, ())
    for n, op in enumerate(ops):
        if op[0] != "schedule":
            _record(live, op, nodes)
            if op[0] == "node":
                sched.filter_hosts(probe)  # build some indexes before later changes
            continue
        try:
            sched.select_and_claim(to_request(op[1], tuple(f"s{n}-{k}" for k in range(op[1]["count"]))))
        except NoValidHost:
            pass
    live.check_consistency()
    rebuilt = HostCache(ALL_FILTERS)
    events = [("node", node) for node in nodes.values()] + [("inst", r) for r in live.instances()]
    rnd.shuffle(events)
    for kind, item in events:
        if kind == "node":
            rebuilt.upsert_node(item)
        else:
            rebuilt.add_instance(item.host, item.instance_id, item.usage, project=item.project,
                                 building=item.building, group=item.group,
                                 image_properties=dict(item.image_properties))
    assert rebuilt.usage_snapshot() == live.usage_snapshot()
    for name in nodes:
        assert rebuilt.free(name) == live.free(name)
    other = Scheduler(rebuilt, ALL_FILTERS)
    assert sorted(other.filter_hosts(probe)[0]) == sorted(sched.filter_hosts(probe)[0])


@PROFILE
@given(st.lists(node_st, min_size=1, max_size=10), request_st, st.integers(0, 10))
def test_indexed_filters_agree_with_host_by_host(nodes, r, used):
    cache = HostCache(ALL_FILTERS)
    for i, d in enumerate(nodes):
        cache.upsert_node(to_node(i, d))
    rng = random.Random(used)
    for k in range(used):
        cache.add_instance(f"h{rng.randrange(len(nodes))}", f"x{k}", {"vcpus": 1, "ram_mb": 512},
                           group="anti-affinity-g1" if k % 2 else None)
    spec = to_request(r, ())
    ctx = SchedulingContext(cache, ALL_FILTERS, spec)
    for name in ALL_FILTERS.filter_pipeline:
        flt = FILTERS[name]()
        by_host = {h.name for h in cache.hosts() if flt.host_passes(h, ctx)}
        mask = flt.mask(ctx, cache.all_mask) & cache.all_mask if flt.applies(ctx) else cache.all_mask
        assert {cache.host(s).name for s in bits(mask)} == by_host, name


@PROFILE
@given(st.lists(op_st, max_size=20), st.lists(op_st, max_size=30))
def test_a_batch_ends_as_the_same_changes_made_one_by_one(before, ops):
    # `before` builds some hosts and fit masks outside any batch, so the batch must also
    # move hosts already in the indexes (a few hosts touched: per-host refresh; most: rebuild)
    caches = HostCache(ALL_FILTERS), HostCache(ALL_FILTERS)
    nodes: dict[str, dict] = {}
    for cache in caches:
        for op in before:
            if op[0] != "schedule":
                _record(cache, op, {})
        cache.fit_mask("MEMORY_MB", 512)
        cache.fit_mask("VCPU", 2)
    one_by_one, batched = caches
    for op in ops:
        if op[0] != "schedule":
            _record(one_by_one, op, nodes)
    with batched.batch():
        for op in ops:
            if op[0] != "schedule":
                _record(batched, op, {})
    batched.check_consistency()
    assert batched.usage_snapshot() == one_by_one.usage_snapshot()
    assert sorted(h.name for h in batched.hosts()) == sorted(h.name for h in one_by_one.hosts())
    for host in one_by_one.hosts():
        assert batched.free(host.name) == one_by_one.free(host.name)
    for attr in WEIGH_ATTRIBUTES:
        names = lambda c: [(v, c.host(s).name) for v, s in c.sorted_index(attr).ascending()]
        assert sorted(names(batched)) == sorted(names(one_by_one))
    for resource, amount in (("MEMORY_MB", 512), ("VCPU", 2)):
        fits = lambda c: sorted(c.host(s).name for s in bits(c.fit_mask(resource, amount)))
        assert fits(batched) == fits(one_by_one)
