"""AutoScalingGroup sizing as Heat does it: policy adjustments, updates of the group's
definition, which members stay when it shrinks, and the names and maps the engine gives them."""

import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubestack.orchestration import load_stack
from kubestack.orchestration.errors import InvalidTemplateAttribute, StackValidationFailed
from kubestack.orchestration.scaling import (Members, adjusted_capacity, capacities_after_update,
                                             capacity_after_update, cooldown_end, cooling_down, failed_members,
                                             group_indices, healthy, initial_capacity, removal_blacklist,
                                             removal_blacklists)

from .helpers import tmpl


@pytest.mark.parametrize("current, adjustment, kind, step, expected", [
    (2, 1, "change_in_capacity", None, 3),
    (2, -1, "change_in_capacity", None, 1),
    (2, 3, "exact_capacity", None, 3),
    (4, 50, "percent_change_in_capacity", None, 6),
    (4, 10, "percent_change_in_capacity", None, 5),     # 0.4 of a member still adds one
    (4, -10, "percent_change_in_capacity", None, 3),
    (10, 33, "percent_change_in_capacity", None, 13),   # 3.3 rounds toward zero
    (10, -33, "percent_change_in_capacity", None, 7),
    (10, 10, "percent_change_in_capacity", 3, 13),      # min_adjustment_step
    (10, -10, "percent_change_in_capacity", 3, 7),
    (0, 50, "percent_change_in_capacity", None, 1),     # nothing to take a percentage of: min_size
    (3, 25, "change_in_capacity", None, 20),            # clamped to max_size
    (3, -5, "change_in_capacity", None, 1),             # clamped to min_size
    (3, 30, "exact_capacity", None, 20),
])
def test_adjusted_capacity_as_heat_computes_it(current, adjustment, kind, step, expected):
    assert adjusted_capacity(current, adjustment, kind, step, 1, 20) == expected


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 50), st.floats(-200, 200, allow_nan=False), st.sampled_from(
    ["change_in_capacity", "exact_capacity", "percent_change_in_capacity"]), st.integers(0, 5),
    st.integers(0, 10), st.integers(0, 10))
def test_adjusted_capacity_stays_within_bounds(current, adjustment, kind, step, lo, extra):
    assert lo <= adjusted_capacity(current, adjustment, kind, step, lo, lo + extra) <= lo + extra


NOON = datetime.datetime(2030, 1, 1, 12, 0, 0, tzinfo=datetime.timezone.utc)


def test_a_resize_starts_a_cooldown_that_ends_no_earlier_than_the_last_one():
    assert cooldown_end(None, 600, NOON) == "2030-01-01T12:10:00Z"
    assert cooldown_end(None, None, NOON) == cooldown_end(None, -5, NOON) == "2030-01-01T12:00:00Z"
    # a policy with a shorter cooldown does not cut short the one a resize started before
    assert cooldown_end("2030-01-01T13:00:00Z", 60, NOON) == "2030-01-01T13:00:00Z"
    assert cooldown_end("2030-01-01T11:00:00Z", 60, NOON) == "2030-01-01T12:01:00Z"


def test_a_group_cools_down_until_its_cooldown_ends():
    assert not cooling_down(None, NOON)  # never scaled
    assert cooling_down("2030-01-01T12:00:01Z", NOON)
    assert not cooling_down("2030-01-01T12:00:00Z", NOON)
    assert not cooling_down(cooldown_end(None, 0, NOON), NOON)


def test_the_size_a_signal_adjusts_leaves_failed_members_out():
    assert healthy(Members((0, 1, 2), 3), ()) == 3
    assert healthy(Members((0, 1, 2), 3), {1, 7}) == 2
    assert healthy(Members(), {0}) == 0


@pytest.mark.parametrize("kind, step, ok", [
    ("percent_change_in_capacity", 2, True), ("percent_change_in_capacity", None, True),
    ("change_in_capacity", None, True), ("exact_capacity", None, True),
    ("change_in_capacity", 2, False), ("exact_capacity", 0, False),
])
def test_min_adjustment_step_goes_only_with_a_percent_change(kind, step, ok):
    props = {"auto_scaling_group_id": {"get_resource": "asg"}, "adjustment_type": kind, "scaling_adjustment": 10}
    if step is not None:
        props["min_adjustment_step"] = step
    t = _asg()
    t["resources"]["up"] = {"type": "OS::Heat::ScalingPolicy", "properties": props}
    if ok:
        load_stack(t)
        return
    with pytest.raises(StackValidationFailed) as e:
        load_stack(t)
    assert str(e.value) == ("resources.up.properties: min_adjustment_step property should only be specified "
                            "for adjustment_type with value percent_change_in_capacity.")


def test_initial_capacity():
    assert initial_capacity({"min_size": 1, "max_size": 4}) == 1
    assert initial_capacity({"min_size": 1, "max_size": 4, "desired_capacity": 3}) == 3


def test_capacity_after_update():
    old = {"min_size": 1, "max_size": 5, "desired_capacity": None}
    # an update that leaves the group alone keeps what signals made of it
    assert capacity_after_update(old, dict(old), 4) == 4
    assert capacity_after_update(old, dict(old), None) is None
    # a changed group with desired_capacity: that size, the signals' is forgotten
    assert capacity_after_update(old, {**old, "desired_capacity": 2}, 4) is None
    # a changed group without it keeps its current size, within the new bounds
    assert capacity_after_update(old, {**old, "max_size": 6}, 4) == 4
    assert capacity_after_update(old, {**old, "max_size": 3}, 4) == 3
    assert capacity_after_update(old, {**old, "min_size": 2}, None) == 2
    assert capacity_after_update({**old, "min_size": 3}, {**old, "min_size": 1}, None) == 3
    assert capacity_after_update({**old, "desired_capacity": 4}, old, None) == 4


def _groups(asg: dict, rg: dict | None = None):
    resources = {"asg": {"type": "OS::Heat::AutoScalingGroup", "properties": {
        "min_size": 1, "max_size": 5, "resource": {"type": "OS::Nova::Server", "properties": {
            "image": "c", "flavor": "f"}}, **asg}}}
    if rg is not None:
        resources["rg"] = {"type": "OS::Heat::ResourceGroup", "properties": {
            "count": 3, "resource_def": {"type": "OS::Nova::Server", "properties": {"image": "c", "flavor": "f"}}, **rg}}
    return load_stack(tmpl(resources=resources), stack_name="st")


def test_capacities_after_update_of_a_stack():
    old = _groups({})
    assert capacities_after_update(old, _groups({}), {"asg": 4}) == {"asg": 4}
    assert capacities_after_update(old, _groups({"max_size": 3}), {"asg": 4}) == {"asg": 3}
    assert capacities_after_update(old, _groups({"desired_capacity": 2}), {"asg": 4}) == {}
    assert capacities_after_update(old, _groups({}), {}) == {}
    # a group the old stack did not have starts from its own size
    plain = load_stack(tmpl(resources={"vm": {"type": "OS::Nova::Server", "properties": {"image": "c", "flavor": "f"}}}))
    assert capacities_after_update(plain, _groups({}), {"asg": 4}) == {}


def test_removal_blacklists_of_a_stack():
    policies = {"removal_policies": [{"resource_list": ["st-rg-1", "0"]}]}
    # at create, names are taken as given; after, references resolve to the members' names
    assert removal_blacklists(_groups({}, {"count": 1, **policies}), None, {}) == {"rg": ["0", "st-rg-1"]}
    assert removal_blacklists(_groups({}, {"count": 1, **policies}), _groups({}, {}), {}) == {"rg": ["0", "1"]}
    assert removal_blacklists(_groups({}, {}), _groups({}, {}), {"rg": ["2"]}) == {"rg": ["2"]}
    assert removal_blacklists(_groups({}, {"removal_policies_mode": "update"}), _groups({}, {}), {"rg": ["2"]}) == {}
    assert removal_blacklists(_groups({}), None, {}) == {}


def test_members_shrink_oldest_first_and_never_reuse_an_id():
    m = Members().resized(3)
    assert m == Members((0, 1, 2), 3)
    assert m.resized(3) == m
    m = m.resized(1)
    assert m.ids == (2,)
    m = m.resized(3)
    assert m.ids == (2, 3, 4)
    m = m.resized(0)
    assert m.ids == () and m.next_id == 5
    assert m.resized(2).ids == (5, 6)
    assert Members.from_dict(m.resized(2).to_dict()) == m.resized(2)
    assert Members.from_dict(None) == Members()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 12), max_size=12))
def test_members_resizes_keep_the_newest_and_give_fresh_ids(sizes):
    m, given_out = Members(), set()
    for size in sizes:
        before = m
        m = m.resized(size)
        assert len(m.ids) == size and list(m.ids) == sorted(set(m.ids))
        kept = [i for i in m.ids if i in before.ids]
        assert kept == list(before.ids[len(before.ids) - len(kept):])  # the newest stay
        fresh = [i for i in m.ids if i not in before.ids]
        assert not set(fresh) & given_out  # an id is never given twice
        given_out |= set(m.ids)


def test_members_shrink_failed_first_then_oldest_as_heat_orders_them():
    m = Members((3, 4, 5, 6), 7)
    # Heat sorts a group's members failed first, then by creation, and keeps the last ones
    assert m.resized(3, failed={5}) == Members((3, 4, 6), 7)
    assert m.resized(2, failed={5, 3}) == Members((4, 6), 7)
    assert m.resized(3, failed={3, 4, 5, 6}) == Members((4, 5, 6), 7)  # all failed: the oldest go
    assert m.resized(1, failed={6}) == Members((5,), 7)
    # a failed member stays while the group does not shrink; growing keeps it too
    assert m.resized(4, failed={5}) == m
    assert m.resized(5, failed={5}) == Members((3, 4, 5, 6, 7), 8)
    assert m.resized(0, failed={5}) == Members((), 7)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 10), min_size=1, max_size=10).flatmap(
    lambda ids: st.tuples(st.just(tuple(sorted(set(ids)))), st.sets(st.sampled_from(sorted(set(ids)))),
                          st.integers(0, 12))))
def test_a_shrink_removes_every_failed_member_before_any_healthy_one(case):
    ids, failed, size = case
    m = Members(ids, max(ids) + 1).resized(size, failed)
    assert len(m.ids) == size and list(m.ids) == sorted(set(m.ids))
    removed = set(ids) - set(m.ids)
    if removed - failed:  # a healthy member went: every failed one went before it
        assert failed <= removed
    healthy_kept = [i for i in ids if i in m.ids and i not in failed]
    assert healthy_kept == [i for i in ids if i not in failed][len([i for i in ids if i not in failed]) -
                                                               len(healthy_kept):]  # the newest healthy stay


def _asg(**props):
    base = {"min_size": 1, "max_size": 5, "desired_capacity": 2,
            "resource": {"type": "OS::Nova::Server", "properties": {"image": "cirros", "flavor": "m1.small"}}}
    base.update(props)
    return tmpl(resources={"asg": {"type": "OS::Heat::AutoScalingGroup", "properties": base}}, outputs={
        "refs": {"value": {"get_attr": ["asg", "refs"]}},
        "refs_map": {"value": {"get_attr": ["asg", "refs_map"]}},
        "ips": {"value": {"get_attr": ["asg", "outputs", "first_address"]}},
        "ip_list": {"value": {"get_attr": ["asg", "outputs_list", "first_address"]}},
        "size": {"value": {"get_attr": ["asg", "current_size"]}}})


def test_autoscaling_group_members_follow_their_recorded_ids():
    stack = load_stack(_asg(), stack_name="web")
    assert [m.physical_name for m in stack.members("asg")] == ["web-asg-0", "web-asg-1"]
    stack.group_members["asg"] = Members((0, 1, 2, 3), 4)  # was 4, signals made it so
    members = stack.members("asg")
    assert [m.physical_name for m in members] == ["web-asg-2", "web-asg-3"]
    assert [m.name for m in members] == ["asg[2]", "asg[3]"]
    assert stack.resized_members("asg", 2) == Members((2, 3), 4)
    attrs = {"asg": {"members": [{"first_address": "10.0.0.2"}, {"first_address": "10.0.0.3"}]}}
    # Heat keys an AutoScalingGroup's maps by member name, lists them oldest first
    assert stack.outputs(attrs) == {
        "refs": ["web-asg-2", "web-asg-3"], "refs_map": {"web-asg-2": "web-asg-2", "web-asg-3": "web-asg-3"},
        "ips": {"web-asg-2": "10.0.0.2", "web-asg-3": "10.0.0.3"}, "ip_list": ["10.0.0.2", "10.0.0.3"],
        "size": 2}


def test_resource_group_members_stay_indexed():
    t = tmpl(resources={"rg": {"type": "OS::Heat::ResourceGroup", "properties": {
        "count": 2, "resource_def": {"type": "OS::Nova::Server", "properties": {"image": "c", "flavor": "f"}}}}},
        outputs={"m": {"value": {"get_attr": ["rg", "refs_map"]}}})
    stack = load_stack(t, stack_name="web")
    stack.group_members["rg"] = Members((5, 6), 7)  # only AutoScalingGroups follow a record
    assert [m.physical_name for m in stack.members("rg")] == ["web-rg-0", "web-rg-1"]
    assert stack.outputs({"rg": {"members": [{}, {}]}}) == {"m": {"0": "web-rg-0", "1": "web-rg-1"}}


def test_removal_blacklist_resolves_names_and_references_against_the_members():
    members = {"0": "st-rg-0", "1": "st-rg-1", "2": "st-rg-2"}
    policies = [{"resource_list": ["1", "st-rg-2", "7", "nosuch"]}]
    # members by name or reference; names no member has are ignored, as Heat does
    assert removal_blacklist(policies, "append", (), members) == {"1", "2"}
    # append keeps what was blacklisted before; update starts over from the policies
    assert removal_blacklist([], "append", {"5"}, members) == {"5"}
    assert removal_blacklist([], "update", {"5"}, members) == frozenset()
    assert removal_blacklist([{"resource_list": ["5"]}], "update", {"5"}, members) == {"5"}
    # before the group has members (at create), names are taken as given
    assert removal_blacklist([{"resource_list": [0, "3"]}], "append", (), None) == {"0", "3"}
    assert removal_blacklist(None, "append", (), None) == frozenset()


def test_group_indices_skip_blacklisted_names():
    assert group_indices(3) == [0, 1, 2]
    assert group_indices(3, {"1"}) == [0, 2, 3]
    assert group_indices(2, {"0", "1", "x"}) == [2, 3]
    assert group_indices(0, {"1"}) == []


def test_resource_group_removal_policies_in_the_engine():
    t = tmpl(resources={"rg": {"type": "OS::Heat::ResourceGroup", "properties": {
        "count": 3, "removal_policies": [{"resource_list": ["1"]}],
        "resource_def": {"type": "OS::Nova::Server", "properties": {
            "name": "web-%index%", "image": "c", "flavor": "f"}}}}},
        outputs={"removed": {"value": {"get_attr": ["rg", "removed_rsrc_list"]}},
                 "refs": {"value": {"get_attr": ["rg", "refs"]}},
                 "two": {"value": {"get_attr": ["rg", "resource.2", "first_address"]}},
                 "by_name": {"value": {"get_attr": ["rg", "attributes", "first_address"]}}})
    stack = load_stack(t, stack_name="st")
    stack.group_blacklist["rg"] = frozenset({"1", "10"})
    members = stack.members("rg")
    assert [m.physical_name for m in members] == ["st-rg-0", "st-rg-2", "st-rg-3"]
    assert [m.properties["name"] for m in members] == ["web-0", "web-2", "web-3"]
    attrs = {"rg": {"members": [{"first_address": "10.0.0.0"}, {"first_address": "10.0.0.2"},
                                {"first_address": "10.0.0.3"}]}}
    assert stack.outputs(attrs) == {
        "removed": ["1", "10"], "refs": ["st-rg-0", "st-rg-2", "st-rg-3"], "two": "10.0.0.2",
        "by_name": {"0": "10.0.0.0", "2": "10.0.0.2", "3": "10.0.0.3"}}
    # the member named 1 is gone
    gone = load_stack(tmpl(resources=t["resources"], outputs={"o": {"value": {"get_attr": ["rg", "resource.1"]}}}),
                      stack_name="st")
    gone.group_blacklist["rg"] = frozenset({"1"})
    with pytest.raises(InvalidTemplateAttribute, match=r"\(rg resource.1\)"):
        gone.outputs(attrs)


def _server(name: str, status: str, generation: int = 1) -> dict:
    return {"kind": "Server", "metadata": {"name": name, "generation": generation},
            "status": {"status": status, "observedGeneration": generation}}


def test_failed_members_are_found_among_the_stack_objects():
    stack = load_stack(_asg(desired_capacity=3), stack_name="web")
    assert failed_members(stack, {}) == {}  # nothing recorded yet
    stack.group_members["asg"] = Members((0, 1, 2), 3)
    children = {("Server", "web-asg-0"): _server("web-asg-0", "ACTIVE"),
                ("Server", "web-asg-1"): _server("web-asg-1", "ERROR"),
                ("Server", "web-asg-2"): _server("web-asg-2", "BUILD")}
    assert failed_members(stack, children) == {"asg": {1}}
    # a member whose new spec its controller has not seen yet is not failed yet
    children[("Server", "web-asg-1")] = _server("web-asg-1", "ERROR", 2) | {
        "status": {"status": "ERROR", "observedGeneration": 1}}
    assert failed_members(stack, children) == {}


def test_a_shrinking_autoscaling_group_removes_failed_members_first_and_its_attributes_leave_them_out():
    stack = load_stack(_asg(desired_capacity=2), stack_name="web")
    stack.group_members["asg"] = Members((0, 1, 2), 3)  # three members, the group now wants two
    stack.group_failed["asg"] = frozenset({1})
    assert [m.physical_name for m in stack.members("asg")] == ["web-asg-0", "web-asg-2"]
    assert stack.resized_members("asg", 2) == Members((0, 2), 3)
    # while it still has the failed member (same size), Heat's attributes skip it
    grown = load_stack(_asg(desired_capacity=3), stack_name="web")
    grown.group_members["asg"] = Members((0, 1, 2), 3)
    grown.group_failed["asg"] = frozenset({1})
    assert [m.physical_name for m in grown.members("asg")] == ["web-asg-0", "web-asg-1", "web-asg-2"]
    attrs = {"asg": {"members": [{"first_address": f"10.0.0.{i}"} for i in range(3)]}}
    assert grown.outputs(attrs) == {
        "refs": ["web-asg-0", "web-asg-2"], "refs_map": {"web-asg-0": "web-asg-0", "web-asg-2": "web-asg-2"},
        "ips": {"web-asg-0": "10.0.0.0", "web-asg-2": "10.0.0.2"}, "ip_list": ["10.0.0.0", "10.0.0.2"],
        "size": 2}


def test_a_shrinking_resource_group_keeps_its_first_names_whatever_failed():
    # Heat's ResourceGroup keeps the first `count` names not blacklisted: a failed member
    # goes only when removal_policies name it
    t = tmpl(resources={"rg": {"type": "OS::Heat::ResourceGroup", "properties": {
        "count": 2, "resource_def": {"type": "OS::Nova::Server", "properties": {"image": "c", "flavor": "f"}}}}})
    stack = load_stack(t, stack_name="st")
    stack.group_failed["rg"] = frozenset({0})  # only AutoScalingGroups look at it
    assert [m.physical_name for m in stack.members("rg")] == ["st-rg-0", "st-rg-1"]
    stack.group_blacklist["rg"] = frozenset({"0"})
    assert [m.physical_name for m in stack.members("rg")] == ["st-rg-1", "st-rg-2"]


def test_get_attr_all_attributes_of_groups_is_what_heat_gives_without_a_key():
    # Heat's FnGetAtts of a group: its attributes less "show" and those that need a key
    # (a ResourceGroup's "attributes", an AutoScalingGroup's "outputs"/"outputs_list")
    t = _asg(desired_capacity=3)
    t["outputs"] = {"all": {"value": {"get_attr": ["asg"]}}}
    stack = load_stack(t, stack_name="web")
    stack.group_members["asg"] = Members((0, 1, 2), 3)
    stack.group_failed["asg"] = frozenset({1})
    assert stack.outputs({}, keep_unresolved=True) == {"all": {"get_attr": ["asg"]}}
    attrs = {"asg": {"members": [{"first_address": f"10.0.0.{i}"} for i in range(3)]}}
    assert stack.outputs(attrs) == {"all": {  # failed members left out, as in its other attributes
        "current_size": 2, "refs": ["web-asg-0", "web-asg-2"],
        "refs_map": {"web-asg-0": "web-asg-0", "web-asg-2": "web-asg-2"}}}
    rg = tmpl(resources={"rg": {"type": "OS::Heat::ResourceGroup", "properties": {
        "count": 2, "resource_def": {"type": "OS::Nova::Server", "properties": {"image": "c", "flavor": "f"}}}}},
        outputs={"all": {"value": {"get_attr": ["rg"]}}})
    stack = load_stack(rg, stack_name="st")
    stack.group_blacklist["rg"] = frozenset({"0"})
    attrs = {"rg": {"members": [{"first_address": "10.0.0.1"}, {"first_address": "10.0.0.2"}]}}
    assert stack.outputs(attrs) == {"all": {
        "refs": ["st-rg-1", "st-rg-2"], "refs_map": {"1": "st-rg-1", "2": "st-rg-2"}, "removed_rsrc_list": ["0"]}}
