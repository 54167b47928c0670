"""Host classes: a static check blind to the host's identity runs once per class of hosts
alike but for their names; the checks that read a name must still see every host."""

import pytest
from sched_helpers import cache_with, make_node, request
from test_sched_filters import passing

from kubestack.scheduler import SchedulerConfig
from kubestack.scheduler.bitset import bits
from kubestack.scheduler.host_state import RATIO_ANNOTATIONS, RESERVED_ANNOTATIONS, parse_node

pytestmark = pytest.mark.unit


def twin(name: str, **kw) -> dict:
    """A node like every other twin but for its name and hostname label."""
    labels = {"kubernetes.io/hostname": name, **kw.pop("labels", {})}
    return make_node(name, labels=labels, **kw)


def test_hosts_alike_but_for_their_names_share_a_class():
    a, b = parse_node(twin("a")), parse_node(twin("b"))
    assert a.class_key() == b.class_key() and a.static_fingerprint() != b.static_fingerprint()
    # annotations nobody parses (a heartbeat) do not split a class; ours do
    beat = parse_node(twin("c", annotations={"kubevirt.io/heartbeat": "2026-11-28T10:00:00Z"}))
    assert beat.class_key() == a.class_key()
    ssd = parse_node(twin("d", annotations={"aggregate.kubestack.io/ssd": "true"}))
    assert ssd.class_key() != a.class_key()
    for key in (*RATIO_ANNOTATIONS.values(), *RESERVED_ANNOTATIONS.values()):
        assert parse_node(twin("e", annotations={key: "2"})).class_key() != a.class_key(), key


def test_an_identity_blind_check_runs_once_per_class():
    cache = cache_with(*[twin(f"n{i}", zone=f"az{i % 3}") for i in range(30)])
    calls: list[str] = []

    def in_az1(host):
        calls.append(host.name)
        return host.zone == "az1"

    mask = cache.static_mask("az1?", in_az1)
    assert len(calls) == 3  # three zones, three classes
    assert {cache.host(s).name for s in bits(mask)} == {f"n{i}" for i in range(30) if i % 3 == 1}
    calls.clear()
    cache.static_mask("az1?", in_az1)
    assert calls == []  # cached
    # kept current host by host, as every static mask
    cache.upsert_node(twin("n0", zone="az1"))
    cache.remove_node("n1")
    cache.check_consistency()


def test_a_mask_mostly_passing_is_the_same_as_one_mostly_failing():
    cache = cache_with(*[twin(f"n{i}", zone=f"az{i % 5}") for i in range(25)])
    most = cache.static_mask("not az0", lambda h: h.zone != "az0")
    few = cache.static_mask("az0", lambda h: h.zone == "az0")
    assert most | few == cache.all_mask and not most & few
    assert len(list(bits(few))) == 5


def test_checks_that_read_a_name_see_every_host():
    cache = cache_with(*[twin(f"n{i}") for i in range(4)])
    assert len({h.class_key() for h in cache.hosts()}) == 1
    # Nova's --availability-zone zone:host
    assert passing("AvailabilityZoneFilter", cache, request(availability_zone="az1:n2")) == {"n2"}
    # capabilities naming the host
    for cap in ("hypervisor_hostname", "host", "kubernetes.io/hostname"):
        spec = request(extra_specs={f"capabilities:{cap}": "n3"})
        assert passing("ComputeCapabilitiesFilter", cache, spec) == {"n3"}, cap
    # isolated hosts named in the configuration
    config = SchedulerConfig(isolated_hosts=("n1",), isolated_images=("img",))
    isolated = cache_with(*[twin(f"n{i}") for i in range(4)], config=config)
    assert passing("IsolatedHostsFilter", isolated, request(image_id="img")) == {"n1"}
    assert passing("IsolatedHostsFilter", isolated, request(image_id="other")) == {"n0", "n2", "n3"}


def test_an_inverted_index_is_built_per_class_and_kept_per_host():
    cache = cache_with(*[twin(f"n{i}", zone=f"az{i % 2}") for i in range(10)])
    calls: list[str] = []

    def zone(host):
        calls.append(host.name)
        return (host.zone,)

    index = cache.keyed_masks("zone", zone)
    assert len(calls) == 2
    assert {cache.host(s).name for s in bits(index["az1"])} == {"n1", "n3", "n5", "n7", "n9"}
    cache.upsert_node(twin("n1", zone="az2"))
    cache.remove_node("n3")
    assert {cache.host(s).name for s in bits(index["az1"])} == {"n5", "n7", "n9"}
    cache.check_consistency()


def test_free_extended_resources_are_looked_for_on_the_hosts_offering_them():
    gpu = lambda n: twin(n, extra={"nvidia.com/gpu": str(n.count("g"))})  # noqa: E731
    cache = cache_with(gpu("g1"), gpu("gg2"), twin("plain"), twin("zero", extra={"nvidia.com/gpu": "0"}))
    cache.add_instance("gg2", "vm-1", {"vcpus": 1, "ram_mb": 512, "extended": {"nvidia.com/gpu": 1}})
    names = lambda mask: {cache.host(s).name for s in bits(mask)}  # noqa: E731
    assert names(cache.fit_mask("nvidia.com/gpu", 1)) == {"g1", "gg2"}
    assert names(cache.fit_mask("nvidia.com/gpu", 2)) == set()
    cache.upsert_node(twin("plain", extra={"nvidia.com/gpu": "4"}))  # a GPU card added
    assert names(cache.fit_mask("nvidia.com/gpu", 2)) == {"plain"}
    cache.check_consistency()
