"""select_and_claim, NoValidHost, multi-create, alternates, release, large-scale ranking."""

import random

import pytest
from sched_helpers import cache_with, make_node, request

from kubestack.scheduler import (
    ClaimError, HostCache, NoValidHost, RequestSpec, Scheduler, SchedulerConfig, ServerGroup,
)
from kubestack.scheduler import scheduler as engine

pytestmark = pytest.mark.unit


def test_select_and_claim_spreads_and_claims():
    cache = cache_with(*(make_node(f"h{i}", cpu="4", memory="8Gi") for i in range(3)))
    sched = Scheduler(cache, seed=1)
    out = sched.select_and_claim(request(vcpus=2, ram_mb=4096, num_instances=3,
                                         instance_ids=("a", "b", "c")))
    assert sorted(s.host for s in out) == ["h0", "h1", "h2"]  # RAMWeigher spreads
    assert [s.instance_id for s in out] == ["a", "b", "c"]
    assert all(len(s.alternates) == 2 and s.host not in s.alternates for s in out)
    assert out[0].usage.ram_mb == 4096
    assert cache.used(out[0].host)["MEMORY_MB"] == 4096
    assert cache.instance("a").building
    assert sched.release("a") and not sched.release("a")
    assert cache.used(out[0].host)["MEMORY_MB"] == 0


def test_no_valid_host_message_and_counts():
    cache = cache_with(make_node("a", zone="az1"), make_node("b", zone="az2"),
                       make_node("c", zone="az2", ready=False))
    sched = Scheduler(cache)
    with pytest.raises(NoValidHost) as exc:
        sched.select_and_claim(request(availability_zone="az3"))
    text = str(exc.value)
    assert text.startswith("No valid host was found. There are not enough hosts available.")
    assert "Filter ComputeFilter returned 2 hosts" in text
    assert "Filter AvailabilityZoneFilter returned 0 hosts" in text
    step = exc.value.result.failed_filter
    assert (step.name, step.hosts_in, step.hosts_out) == ("AvailabilityZoneFilter", 2, 0)
    assert "AvailabilityZoneFilter: (start: 2, end: 0)" in exc.value.result.summary()
    with pytest.raises(NoValidHost, match="Filter RamFilter returned 0 hosts"):
        sched.select_and_claim(request(ram_mb=10**7))
    with pytest.raises(NoValidHost, match="no compute hosts"):
        Scheduler(HostCache()).select_and_claim(request())


def test_multi_create_is_all_or_nothing_below_min_count():
    cache = cache_with(*(make_node(f"h{i}", cpu="2", memory="4Gi") for i in range(2)))
    sched = Scheduler(cache)
    with pytest.raises(NoValidHost) as exc:
        sched.select_and_claim(request(vcpus=8, ram_mb=4096, num_instances=3))
    assert exc.value.result.placed == 2 and "Placed 2 of the 3" in str(exc.value)
    assert cache.usage_snapshot() == {} and not cache.instances()
    out = sched.select_and_claim(request(vcpus=8, ram_mb=4096, min_count=1, max_count=3))
    assert len(out) == 2


def test_affinity_multi_create_lands_on_one_host_and_anti_affinity_spreads():
    cache = cache_with(*(make_node(f"h{i}") for i in range(4)))
    sched = Scheduler(cache, seed=3)
    aff = sched.select_and_claim(request(num_instances=3, server_group=ServerGroup(name="g1", policy="affinity")))
    assert len({s.host for s in aff}) == 1
    anti = sched.select_and_claim(request(num_instances=4, server_group=ServerGroup(name="g2", policy="anti-affinity")))
    assert len({s.host for s in anti}) == 4
    with pytest.raises(NoValidHost, match="ServerGroupAntiAffinityFilter returned 0"):
        sched.select_and_claim(request(server_group=ServerGroup(name="g2", policy="anti-affinity")))


def test_host_subset_size_and_seed():
    def choices(seed):
        cache = cache_with(*(make_node(f"h{i}", memory=f"{64 + i}Gi") for i in range(10)))
        sched = Scheduler(cache, SchedulerConfig(host_subset_size=3), seed=seed)
        return [sched.select_and_claim(request())[0].host for _ in range(20)]
    assert choices(7) == choices(7)
    assert len(set(choices(7))) > 1


def test_claim_refuses_overcommit_and_unknown_hosts():
    cache = cache_with(make_node("a", cpu="1", memory="1Gi"))
    spec = request(vcpus=1, ram_mb=1024)
    cache.claim("a", "x", spec.usage())
    with pytest.raises(ClaimError):
        cache.claim("a", "y", spec.usage())
    with pytest.raises(ClaimError):
        cache.claim("nope", "z", spec.usage())


def test_explain_and_filter_hosts():
    cache = cache_with(make_node("a", cpu="1"), make_node("b", unschedulable=True))
    sched = Scheduler(cache)
    names, result = sched.filter_hosts(request(vcpus=80))
    assert names == [] and result.failed_filter.name == "CoreFilter"
    why = dict((n, r) for n, ok, r in sched.explain(request(vcpus=8), "a") if not ok)
    assert "VCPU: 8 requested, 4 free" in why["CoreFilter"]
    assert any("cordoned" in r for _n, ok, r in sched.explain(request(), "b") if not ok)


def test_request_validation():
    with pytest.raises(ValueError):
        request(scheduler_hints={"group": "g"})
    with pytest.raises(ValueError):
        request(min_count=3, max_count=2)
    with pytest.raises(ValueError):
        request(num_instances=2, instance_ids=("a",))
    with pytest.raises(ValueError):
        ServerGroup(name="g", policy="affinity", max_server_per_host=2)
    spec = RequestSpec(flavor={"vcpus": 2, "ram_mb": 512, "extra_specs": {"resources:VCPU": "1"}})
    assert spec.usage().vcpus == 1


def big_cache(n: int, seed: int) -> HostCache:
    rng = random.Random(seed)
    cache = HostCache()
    sizes = [("16", "64Gi", "500Gi"), ("32", "128Gi", "1Ti"), ("64", "256Gi", "2Ti")]
    for i in range(n):
        cpu, mem, disk = rng.choice(sizes)
        cache.upsert_node(make_node(f"n{i}", cpu=cpu, memory=mem, disk=disk, zone=f"az{i % 3}",
                                    unschedulable=rng.random() < 0.05))
    for i in range(n):
        for j in range(rng.randrange(8)):
            cache.add_instance(f"n{i}", f"pre-{i}-{j}", {"vcpus": rng.choice([1, 2, 4, 8]),
                               "ram_mb": rng.choice([2048, 4096, 16384]), "disk_gb": 20},
                               building=rng.random() < 0.1)
        if rng.random() < 0.02:
            cache.record_build_failure(f"n{i}")
    return cache


@pytest.mark.parametrize("seed", [1, 2])
def test_indexed_ranking_equals_exhaustive_ranking(seed, monkeypatch):
    monkeypatch.setattr(engine, "EXHAUSTIVE_BELOW", 64)
    cache = big_cache(1500, seed)
    sched = Scheduler(cache, SchedulerConfig(num_instances_weight_multiplier=-0.5))
    rng = random.Random(seed)
    for i in range(15):
        spec = request(vcpus=rng.choice([1, 4]), ram_mb=rng.choice([1024, 8192]),
                       availability_zone=rng.choice([None, "az1"]))
        from kubestack.scheduler.context import SchedulingContext
        ctx = SchedulingContext(cache, sched.config, spec)
        mask, _ = sched._filter(ctx)
        assert mask.bit_count() > 64
        fast = sched._rank(ctx, mask, 3)
        slow = sched._rank_exhaustive(ctx, mask, 3)
        assert [round(w, 9) for w, _ in fast] == [round(w, 9) for w, _ in slow]
        sched.select_and_claim(spec)
    cache.check_consistency()
