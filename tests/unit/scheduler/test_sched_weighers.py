"""One test per weigher: direction, Nova normalisation, multipliers."""

import pytest
from sched_helpers import cache_with, make_node, request

from kubestack.scheduler import Scheduler, SchedulerConfig, ServerGroup
from kubestack.scheduler.weighers import normalize

pytestmark = pytest.mark.unit

ONLY = {n: 0.0 for n in ("ram_weight_multiplier", "cpu_weight_multiplier",
                         "disk_weight_multiplier", "io_ops_weight_multiplier",
                         "build_failure_weight_multiplier")}


def ranking(cache, spec=None, **multipliers):
    config = SchedulerConfig(**{**ONLY, **multipliers})
    return [(w.host, round(w.weight, 6))
            for w in Scheduler(cache, config).weigh_hosts(spec or request())]


def test_normalize_like_nova():
    assert normalize([]) == []
    assert normalize([5, 5, 5]) == [0.0, 0.0, 0.0]
    assert normalize([1, 3, 2]) == [0.0, 1.0, 0.5]
    assert normalize([1, 2], minval=0, maxval=4) == [0.25, 0.5]


def sized():
    return cache_with(make_node("small", cpu="8", memory="16Gi", disk="100Gi"),
                      make_node("mid", cpu="16", memory="32Gi", disk="200Gi"),
                      make_node("big", cpu="32", memory="64Gi", disk="400Gi"))


def test_ram_weigher_spreads_and_stacks():
    assert ranking(sized(), ram_weight_multiplier=1.0) == [
        ("big", 1.0), ("mid", round(16384 / 49152, 6)), ("small", 0.0)]
    assert [h for h, _ in ranking(sized(), ram_weight_multiplier=-1.0)] == ["small", "mid", "big"]


def test_cpu_weigher_uses_allocation_ratio():
    cache = cache_with(make_node("a", cpu="8", annotations={"kubestack.io/cpu-allocation-ratio": "8"}),
                       make_node("b", cpu="32", annotations={"kubestack.io/cpu-allocation-ratio": "1"}))
    assert [h for h, _ in ranking(cache, cpu_weight_multiplier=1.0)] == ["a", "b"]  # 64 vs 32


def test_disk_weigher():
    assert ranking(sized(), disk_weight_multiplier=2.0)[0] == ("big", 2.0)


def test_io_ops_weigher_prefers_idle_hosts():
    cache = sized()
    cache.add_instance("big", "i1", {"vcpus": 1}, building=True)
    cache.add_instance("mid", "i2", {"vcpus": 1}, building=False)
    assert ranking(cache, io_ops_weight_multiplier=-1.0)[-1] == ("big", -1.0)
    cache.set_building("i1", False)
    assert {w for _h, w in ranking(cache, io_ops_weight_multiplier=-1.0)} == {0.0}


def test_num_instances_weigher():
    cache = sized()
    cache.add_instance("small", "i1", {"vcpus": 1})
    cache.add_instance("small", "i2", {"vcpus": 1})
    cache.add_instance("mid", "i3", {"vcpus": 1})
    assert ranking(cache, num_instances_weight_multiplier=-1.0) == [
        ("big", 0.0), ("mid", -0.5), ("small", -1.0)]


def test_soft_affinity_weighers():
    cache = sized()
    cache.add_instance("small", "m1", {"vcpus": 1}, group="g")
    soft = request(server_group=ServerGroup(name="g", policy="soft-affinity"))
    assert ranking(cache, soft, soft_affinity_weight_multiplier=1.0)[0] == ("small", 1.0)
    anti = request(server_group=ServerGroup(name="g", policy="soft-anti-affinity"))
    assert ranking(cache, anti)[-1] == ("small", 0.0)
    assert {h for h, w in ranking(cache, anti) if w == 1.0} == {"mid", "big"}


def test_build_failure_weigher():
    cache = sized()
    cache.record_build_failure("big")
    cache.record_build_failure("big")
    cache.record_build_failure("mid")
    out = ranking(cache, build_failure_weight_multiplier=1000000.0)
    assert out == [("small", 1000000.0), ("mid", 500000.0), ("big", 0.0)]
    cache.add_instance("big", "ok", {"vcpus": 1}, building=True)
    cache.set_building("ok", False)  # a successful build clears the failures
    assert cache.failed_builds("big") == 0


def test_image_properties_weigher():
    cache = sized()
    cache.add_instance("mid", "i1", {"vcpus": 1}, image_properties={"os_distro": "ubuntu", "hw_machine_type": "q35"})
    cache.add_instance("small", "i2", {"vcpus": 1}, image_properties={"os_distro": "ubuntu"})
    spec = request(image_properties={"os_distro": "ubuntu", "hw_machine_type": "q35"})
    assert ranking(cache, spec, image_props_weight_multiplier=1.0)[:2] == [("mid", 1.0), ("small", 0.5)]
    weighted = ranking(cache, spec, image_props_weight_multiplier=1.0,
                       image_props_weight_setting={"hw_machine_type": 3.0})
    assert weighted[0] == ("mid", 1.0) and dict(weighted)["small"] == 0.0


def test_weights_sum_multiplied_normalised_values():
    out = dict(ranking(sized(), ram_weight_multiplier=1.0, cpu_weight_multiplier=2.0,
                       disk_weight_multiplier=0.5))
    assert out["big"] == 3.5 and out["small"] == 0.0


def test_weight_multipliers_override_by_name():
    cfg = {"weight_multipliers": {"RAMWeigher": -1.0}, "ram_weight_multiplier": 1.0}
    assert [h for h, _ in ranking(sized(), **cfg)] == ["small", "mid", "big"]
