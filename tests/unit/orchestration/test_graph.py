import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubestack.orchestration import graph, load_stack
from kubestack.orchestration.errors import CircularDependency

from .helpers import server, tmpl


def test_levels_run_in_parallel_and_sorted():
    deps = {"a": set(), "b": set(), "c": {"a"}, "d": {"a", "b"}, "e": {"c", "d"}}
    assert graph.levels(deps) == [["a", "b"], ["c", "d"], ["e"]]
    assert graph.reverse_levels(deps) == [["e"], ["c", "d"], ["a", "b"]]


def test_cycle_is_reported_with_its_path():
    with pytest.raises(CircularDependency) as e:
        graph.levels({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()})
    assert str(e.value) == "Circular Dependency Found: a -> b -> c -> a"


def test_dependencies_from_get_resource_get_attr_and_depends_on():
    t = tmpl(resources={
        "net": {"type": "OS::Neutron::Net"},
        "sub": {"type": "OS::Neutron::Subnet", "properties": {"network": {"get_resource": "net"}, "cidr": "10.0.0.0/24"}},
        "db": server(networks=[{"network": {"get_resource": "net"}}]),
        "web": dict(server(metadata={"db": {"get_attr": ["db", "first_address"]}}), depends_on=["sub"]),
    })
    stack = load_stack(t)
    assert stack.levels() == [["net"], ["db", "sub"], ["web"]]
    assert stack.dependencies("web") == ["db", "sub"]
    assert stack.resources_in_order() == ["net", "db", "sub", "web"]


def test_template_cycle_rejected():
    t = tmpl(resources={
        "a": server(metadata={"x": {"get_attr": ["b", "name"]}}),
        "b": server(metadata={"x": {"get_resource": "a"}}),
    })
    with pytest.raises(CircularDependency, match="Circular Dependency Found: a -> b -> a"):
        load_stack(t)


def test_self_reference_is_a_cycle():
    with pytest.raises(CircularDependency, match="a -> a"):
        load_stack(tmpl(resources={"a": dict(server(), depends_on="a")}))


def test_untaken_if_branch_adds_no_dependency():
    t = tmpl(conditions={"c": False}, resources={
        "a": server(),
        "b": server(metadata={"x": {"if": ["c", {"get_attr": ["a", "name"]}, "none"]}}),
    })
    assert load_stack(t).levels() == [["a", "b"]]


@st.composite
def dags(draw):
    n = draw(st.integers(min_value=1, max_value=12))
    names = [f"r{i}" for i in range(n)]
    return {name: set(draw(st.lists(st.sampled_from(names[:i]), max_size=3))) if i else set()
            for i, name in enumerate(names)}


@settings(max_examples=100, deadline=None)
@given(dags())
def test_levels_respect_every_edge(deps):
    lv = graph.levels(deps)
    position = {n: i for i, level in enumerate(lv) for n in level}
    assert sorted(position) == sorted(deps)
    for n, ds in deps.items():
        for d in ds:
            assert position[d] < position[n]
        # every resource is as early as it can be
        if position[n] > 0:
            assert any(position[d] == position[n] - 1 for d in ds)


@settings(max_examples=100, deadline=None)
@given(dags(), st.data())
def test_a_back_edge_always_makes_a_cycle(deps, data):
    edges = [(n, d) for n, ds in deps.items() for d in ds]
    if not edges:
        return
    n, d = data.draw(st.sampled_from(edges))
    deps[d] = set(deps[d]) | {n}
    with pytest.raises(CircularDependency) as e:
        graph.levels(deps)
    cycle = e.value.cycle
    assert cycle[0] == cycle[-1]
    for a, b in zip(cycle, cycle[1:]):
        assert b in deps[a]
