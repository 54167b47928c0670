"""One test (or a few) per filter; every check compares the indexed answer (mask) with the
host-by-host answer (host_passes)."""

import pytest
from sched_helpers import cache_with, make_node, request

from kubestack.scheduler import (
    HostCache, PciAlias, RequestSpec, SchedulerConfig, ServerGroup,
)
from kubestack.scheduler.bitset import bits
from kubestack.scheduler.context import SchedulingContext
from kubestack.scheduler.filters import FILTERS

pytestmark = pytest.mark.unit


def passing(name: str, cache: HostCache, spec: RequestSpec, config=None) -> set[str]:
    config = config or cache.config
    flt = FILTERS[name]()
    ctx = SchedulingContext(cache, config, spec)
    by_host = {h.name for h in cache.hosts() if flt.host_passes(h, ctx)}
    if flt.applies(ctx):
        mask = cache.all_mask & flt.mask(ctx, cache.all_mask)
        by_mask = {cache.host(s).name for s in bits(mask)}
    else:
        by_mask = {h.name for h in cache.hosts()}
    assert by_mask == by_host, name
    for h in cache.hosts():
        if h.name not in by_host:
            assert flt.reason(h, ctx)
    return by_host


def test_core_ram_disk_filters_use_allocation_ratios_and_reserved():
    config = SchedulerConfig(cpu_allocation_ratio=2.0, reserved_host_memory_mb=1024)
    cache = cache_with(make_node("small", cpu="2", memory="4Gi", disk="20Gi"),
                       make_node("big", cpu="8", memory="16Gi", disk="200Gi"), config=config)
    assert passing("CoreFilter", cache, request(vcpus=4)) == {"small", "big"}  # 2 x 2.0
    assert passing("CoreFilter", cache, request(vcpus=5)) == {"big"}
    assert passing("RamFilter", cache, request(ram_mb=3072)) == {"small", "big"}
    assert passing("RamFilter", cache, request(ram_mb=3073)) == {"big"}  # 4096 - 1024
    assert passing("DiskFilter", cache, request(disk_gb=21)) == {"big"}
    cache.add_instance("big", "i1", {"vcpus": 15, "ram_mb": 1000, "disk_gb": 0})
    assert passing("CoreFilter", cache, request(vcpus=2)) == {"small"}


def test_per_host_ratio_annotation_and_aggregate_metadata():
    cache = cache_with(
        make_node("a", cpu="4", annotations={"kubestack.io/cpu-allocation-ratio": "1.0"}),
        make_node("b", cpu="4", annotations={"aggregate.kubestack.io/cpu_allocation_ratio": "2.0,3"}),
        make_node("c", cpu="4"))
    assert cache.limits("a")["VCPU"] == 4 and cache.limits("b")["VCPU"] == 8
    assert cache.limits("c")["VCPU"] == 16
    assert passing("CoreFilter", cache, request(vcpus=9)) == {"c"}


def test_disk_counts_ephemeral_swap_and_boot_from_volume():
    spec = RequestSpec(flavor={"vcpus": 1, "ram_mb": 1, "disk_gb": 10, "ephemeral_gb": 5,
                               "swap_mb": 1025})
    assert spec.usage().disk_gb == 17
    assert spec.model_copy(update={"is_bfv": True}).usage().disk_gb == 7


def test_extended_resource_filter_gpus():
    cache = cache_with(make_node("gpu", extra={"nvidia.com/gpu": "2"}), make_node("cpu"))
    spec = request(extra_specs={"resources:nvidia.com/gpu": "2"})
    assert passing("ExtendedResourceFilter", cache, spec) == {"gpu"}
    vgpu = request(extra_specs={"resources:VGPU": "3"})
    assert passing("ExtendedResourceFilter", cache, vgpu) == set()
    cache.add_instance("gpu", "g1", {"extended": {"nvidia.com/gpu": 1}})
    assert passing("ExtendedResourceFilter", cache, spec) == set()


def test_compute_filter():
    cache = cache_with(
        make_node("ok"), make_node("down", ready=False), make_node("cordoned", unschedulable=True),
        make_node("tainted", taints=[{"key": "maint", "effect": "NoSchedule"}]),
        make_node("prefer", taints=[{"key": "x", "effect": "PreferNoSchedule"}]))
    assert passing("ComputeFilter", cache, request()) == {"ok", "prefer"}
    tolerant = SchedulerConfig(tolerated_taints=["maint"])
    assert passing("ComputeFilter", cache, request(), tolerant) == {"ok", "prefer", "tainted"}


def test_compute_hosts_only_and_node_updates():
    cache = cache_with(make_node("a"), make_node("worker", compute=False))
    assert {h.name for h in cache.hosts()} == {"a"}
    cache.upsert_node(make_node("a", ready=False))
    assert passing("ComputeFilter", cache, request()) == set()
    cache.upsert_node(make_node("a", compute=False))
    assert len(cache) == 0


def test_availability_zone_filter():
    cache = cache_with(make_node("a1", zone="az1"), make_node("a2", zone="az2"),
                       make_node("none", zone=None))
    assert passing("AvailabilityZoneFilter", cache, request(availability_zone="az2")) == {"a2"}
    assert passing("AvailabilityZoneFilter", cache, request(availability_zone="nova")) == {"none"}
    assert passing("AvailabilityZoneFilter", cache, request(availability_zone="az1:a1")) == {"a1"}
    assert passing("AvailabilityZoneFilter", cache, request()) == {"a1", "a2", "none"}


def test_compute_capabilities_filter():
    cache = cache_with(
        make_node("kvm", cpu="32", labels={"cpu-feature.node.kubevirt.io/avx2": "true",
                                           "nvidia.com/gpu.product": "A100"}),
        make_node("emu", cpu="8", kvm=False))
    check = lambda specs: passing("ComputeCapabilitiesFilter", cache, request(extra_specs=specs))
    assert check({"capabilities:hypervisor_type": "s== kvm"}) == {"kvm"}
    assert check({"capabilities:vcpus": ">= 16"}) == {"kvm"}
    assert check({"capabilities:cpu_info:features": "<all-in> avx2"}) == {"kvm"}
    assert check({"capabilities:nvidia.com/gpu.product": "<or> A100 <or> H100"}) == {"kvm"}
    assert check({"capabilities:cpu_arch": "x86_64"}) == {"kvm", "emu"}
    assert check({"hw:cpu_policy": "dedicated"}) == {"kvm", "emu"}  # other scope: ignored
    assert check({"missing": "1"}) == set()  # unscoped keys are capabilities too


def test_aggregate_instance_extra_specs_filter():
    cache = cache_with(
        make_node("ssd", labels={"aggregate.kubestack.io/fast": "true"},
                  annotations={"aggregate.kubestack.io/ssd": "true",
                               "aggregate.kubestack.io/tier": "gold,silver"}),
        make_node("hdd", annotations={"aggregate.kubestack.io/ssd": "false"}),
        make_node("plain"))
    check = lambda specs: passing("AggregateInstanceExtraSpecsFilter", cache, request(extra_specs=specs))
    assert check({"aggregate_instance_extra_specs:ssd": "true"}) == {"ssd"}
    assert check({"ssd": "<or> true <or> false"}) == {"ssd", "hdd"}
    assert check({"aggregate_instance_extra_specs:tier": "silver"}) == {"ssd"}
    assert check({"capabilities:vcpus": "= 1"}) == {"ssd", "hdd", "plain"}
    assert cache.get_host("ssd").aggregates == frozenset({"fast"})


def test_traits_filter_required_and_forbidden_traits():
    cache = cache_with(
        make_node("avx2", labels={"cpu-feature.node.kubevirt.io/avx2": "true",
                                  "cpu-feature.node.kubevirt.io/sse4.2": "true",
                                  "trait.kubestack.io/CUSTOM_GOLD": "true"}),
        make_node("vmx", labels={"cpu-feature.node.kubevirt.io/vmx": "true",
                                 "trait.kubestack.io/CUSTOM_GOLD": "false"}),
        make_node("arm", arch="arm64", labels={"cpu-feature.node.kubevirt.io/avx2": "true"}))
    check = lambda specs, props=None: passing("TraitsFilter", cache,
                                              request(extra_specs=specs, image_properties=props or {}))
    assert check({"trait:HW_CPU_X86_AVX2": "required"}) == {"avx2"}  # CPU flags are x86 traits only
    assert check({"trait:HW_CPU_X86_SSE42": "required", "trait:CUSTOM_GOLD": "required"}) == {"avx2"}
    assert check({"trait:CUSTOM_GOLD": "forbidden"}) == {"vmx", "arm"}
    # the vendor-neutral name is reported beside the vendor one, as Nova's libvirt driver does
    assert check({"trait:HW_CPU_X86_VMX": "required"}) == check({"trait:HW_CPU_X86_INTEL_VMX": "required"}) \
        == {"vmx"}
    # an image can require, not forbid
    assert check({}, {"trait:CUSTOM_GOLD": "required"}) == {"avx2"}
    assert check({}, {"trait:CUSTOM_GOLD": "forbidden"}) == {"avx2", "vmx", "arm"}
    assert check({"capabilities:vcpus": ">= 1"}) == {"avx2", "vmx", "arm"}
    cache_ctx = SchedulingContext(cache, cache.config, request(extra_specs={"trait:CUSTOM_GOLD": "required",
                                                                            "trait:HW_CPU_X86_VMX": "forbidden"}))
    flt = FILTERS["TraitsFilter"]()
    assert flt.reason(cache.get_host("arm"), cache_ctx) == "host lacks required trait(s) CUSTOM_GOLD"


def test_image_properties_filter():
    cache = cache_with(make_node("x86"), make_node("arm", arch="arm64"),
                       make_node("emu", kvm=False),
                       make_node("old", labels={"kubestack.io/hypervisor-version": "6000000"}))
    check = lambda props: passing("ImagePropertiesFilter", cache, request(image_properties=props))
    assert check({"hw_architecture": "aarch64"}) == {"arm"}
    assert check({"architecture": "x86_64", "img_hv_type": "kvm"}) == {"x86", "old"}
    assert check({"img_hv_type": "qemu"}) == {"x86", "arm", "emu", "old"}
    assert check({"hw_vm_mode": "xen"}) == set()
    assert check({"img_hv_requested_version": ">= 7000000"}) == {"x86", "arm", "emu"}
    assert check({}) == {"x86", "arm", "emu", "old"}


def test_server_group_affinity_and_anti_affinity_filters():
    cache = cache_with(*(make_node(f"h{i}") for i in range(4)))
    cache.add_instance("h1", "m1", {"vcpus": 1}, group="g")
    cache.add_instance("h2", "m2", {"vcpus": 1})
    aff = request(server_group=ServerGroup(name="g", policy="affinity"))
    assert passing("ServerGroupAffinityFilter", cache, aff) == {"h1"}
    anti = request(server_group=ServerGroup(name="g", policy="anti-affinity", members=("m2",)))
    assert passing("ServerGroupAntiAffinityFilter", cache, anti) == {"h0", "h3"}
    two = request(server_group={"name": "g", "policy": "anti-affinity",
                                "rules": {"max_server_per_host": 2}, "members": ["m2"]})
    assert passing("ServerGroupAntiAffinityFilter", cache, two) == {"h0", "h1", "h2", "h3"}
    empty = request(server_group=ServerGroup(name="new", policy="affinity"))
    assert passing("ServerGroupAffinityFilter", cache, empty) == {"h0", "h1", "h2", "h3"}
    listed = request(server_group=ServerGroup(name="new", policy="affinity", hosts=("h3",)))
    assert passing("ServerGroupAffinityFilter", cache, listed) == {"h3"}


def test_same_and_different_host_filters():
    cache = cache_with(*(make_node(f"h{i}") for i in range(3)))
    cache.add_instance("h0", "a", {"vcpus": 1})
    cache.add_instance("h1", "b", {"vcpus": 1})
    same = request(scheduler_hints={"same_host": ["a", "b"]})
    assert passing("SameHostFilter", cache, same) == {"h0", "h1"}
    diff = request(scheduler_hints={"different_host": "a"})
    assert passing("DifferentHostFilter", cache, diff) == {"h1", "h2"}
    assert passing("SameHostFilter", cache, request(scheduler_hints={"same_host": ["zz"]})) == set()


def test_aggregate_multi_tenancy_isolation():
    cache = cache_with(
        make_node("shared"),
        make_node("a-only", annotations={"aggregate.kubestack.io/filter_tenant_id": "proj-a"}),
        make_node("ab", annotations={"aggregate.kubestack.io/filter_tenant_id": "proj-a",
                                     "aggregate.kubestack.io/filter_tenant_id2": "proj-b"}))
    check = lambda project: passing("AggregateMultiTenancyIsolation", cache, request(project=project))
    assert check("proj-a") == {"shared", "a-only", "ab"}
    assert check("proj-b") == {"shared", "ab"}
    assert check("proj-c") == {"shared"}
    cache.upsert_node(make_node("shared", annotations={"aggregate.kubestack.io/filter_tenant_id": "proj-c"}))
    assert check("proj-b") == {"ab"}


def test_isolated_hosts_filter():
    cfg = SchedulerConfig(isolated_hosts=["iso"], isolated_images=["img-iso"])
    cache = cache_with(make_node("iso"), make_node("lab", labels={"kubestack.io/isolated": "true"}),
                       make_node("open"), config=cfg)
    assert passing("IsolatedHostsFilter", cache, request(image_id="img-iso")) == {"iso", "lab"}
    assert passing("IsolatedHostsFilter", cache, request(image_id="other")) == {"open"}
    loose = cfg.model_copy(update={"restrict_isolated_hosts_to_isolated_images": False})
    assert passing("IsolatedHostsFilter", cache, request(image_id="other"), loose) == {"iso", "lab", "open"}
    none = SchedulerConfig(isolated_hosts=["iso"])
    assert passing("IsolatedHostsFilter", cache, request(), none) == {"open"}


def test_pci_passthrough_filter():
    cfg = SchedulerConfig(pci_aliases={
        "a100": PciAlias(resource="nvidia.com/gpu", labels={"nvidia.com/gpu.product": "A100"})})
    cache = cache_with(
        make_node("a100", extra={"nvidia.com/gpu": "2"}, labels={"nvidia.com/gpu.product": "A100"}),
        make_node("t4", extra={"nvidia.com/gpu": "4"}, labels={"nvidia.com/gpu.product": "T4"}),
        make_node("none"), config=cfg)
    spec = request(extra_specs={"pci_passthrough:alias": "a100:2"})
    assert spec.usage(cfg).extended == (("nvidia.com/gpu", 2),)
    assert passing("PciPassthroughFilter", cache, spec, cfg) == {"a100"}
    assert passing("ExtendedResourceFilter", cache, spec, cfg) == {"a100", "t4"}
    three = request(extra_specs={"pci_passthrough:alias": "a100:3"})
    assert passing("PciPassthroughFilter", cache, three, cfg) == set()


def test_numa_topology_filter():
    cache = cache_with(
        make_node("pinned", labels={"kubestack.io/cpu-dedicated": "true", "kubestack.io/numa-nodes": "2"}),
        make_node("shared"))
    check = lambda specs, props=None: passing(
        "NUMATopologyFilter", cache, request(extra_specs=specs, image_properties=props or {}))
    assert check({"hw:cpu_policy": "dedicated"}) == {"pinned"}
    assert check({}, {"hw_cpu_policy": "dedicated"}) == {"pinned"}
    assert check({"hw:numa_nodes": "2"}) == {"pinned"}
    assert check({"hw:numa_nodes": "4"}) == set()
    assert check({"hw:cpu_policy": "shared"}) == {"pinned", "shared"}


def test_config_rejects_unknown_names_and_parses_strings():
    with pytest.raises(ValueError):
        SchedulerConfig(enabled_filters=["NoSuchFilter"])
    cfg = SchedulerConfig.from_dict({"enabled_filters": "ComputeFilter, RamFilter",
                                     "ram_weight_multiplier": "-1.5",
                                     "pci_aliases": '{"g": {"resource": "nvidia.com/gpu"}}'})
    assert cfg.filter_pipeline[:5] == ("CoreFilter", "RamFilter", "DiskFilter",
                                       "ExtendedResourceFilter", "TraitsFilter")
    assert cfg.filter_pipeline[5:] == ("ComputeFilter",)
    assert cfg.ram_weight_multiplier == -1.5 and cfg.pci_aliases["g"].resource == "nvidia.com/gpu"
