"""Rolling updates of group members as Heat batches them: Heat's next_batch, the policies a
group's update_policy / rolling_updates give, and the pass-by-pass step, with a property test
that a simulated rollout updates every member once, in batches no bigger than asked, never
leaving fewer than min_in_service members untouched and ready."""

from __future__ import annotations

import datetime
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubestack.orchestration import load_stack
from kubestack.orchestration import realize as rz
from kubestack.orchestration.errors import HeatError
from kubestack.orchestration.rolling import (TIMEOUT, Group, Member, Policy, Rollout, batches, carry_over,
                                             group_policy, next_batch, replace_order, step)

from .helpers import tmpl

NOW = datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc)
SG = {"type": "OS::Neutron::SecurityGroup"}


# ---- Heat's arithmetic ---------------------------------------------------------------------

@pytest.mark.parametrize("target, current, updated, size, min_in_service, expected", [
    # scenarios of Heat's own tests (heat/tests/test_rolling_update.py)
    (4, 4, 0, 1, 0, (4, 1)), (4, 4, 0, 1, 4, (5, 1)), (4, 5, 4, 1, 4, (4, 0)), (4, 4, 0, 2, 4, (6, 2)),
    (5, 5, 4, 2, 0, (5, 1)), (5, 6, 4, 2, 4, (5, 1)), (3, 3, 0, 2, 4, (5, 2)), (3, 5, 2, 2, 4, (4, 1)),
    (4, 4, 0, 5, 0, (4, 4)), (4, 4, 0, 4, 2, (6, 4)), (4, 4, 0, 5, 6, (8, 4)),
])
def test_next_batch_is_heats(target, current, updated, size, min_in_service, expected):
    assert next_batch(target, current, updated, size, min_in_service) == expected


def test_batches_as_heats_resource_group_counts_them():
    assert batches(4, 4, 2, 2) == [(4, 2), (4, 2)]
    # two extra members first, then the four updated two at a time, then back to four
    assert batches(4, 4, 2, 4) == [(6, 2), (6, 2), (6, 2), (4, 0)]
    assert batches(4, 0, 3, 0) == [(3, 3), (4, 1)]  # batch_create
    assert batches(4, 4, 1, 0, up_to_date=3) == [(4, 1)]


# ---- policies --------------------------------------------------------------------------------

def test_the_policy_a_group_rolls_with():
    asg, rg = "OS::Heat::AutoScalingGroup", "OS::Heat::ResourceGroup"
    # an AutoScalingGroup always rolls: rolling_updates has Heat's defaults
    assert group_policy(asg, {"rolling_updates": {"min_in_service": 0, "max_batch_size": 1, "pause_time": 0}},
                        {}, "UPDATE") == Policy(0, 1, 0.0)
    assert group_policy(asg, {"rolling_updates": {"max_batch_size": 3}}, {}, "CREATE") is None
    # a ResourceGroup rolls when its update_policy says so; an empty map asks for the defaults
    assert group_policy(rg, {}, {}, "UPDATE") is None
    assert group_policy(rg, {}, {"rolling_update": {}}, "ROLLBACK") == Policy(0, 1, 0.0)
    assert group_policy(rg, {}, {"rolling_update": {"min_in_service": 2, "max_batch_size": 3, "pause_time": 1.5}},
                        "UPDATE") == Policy(2, 3, 1.5)
    assert group_policy(rg, {}, {"batch_create": {"max_batch_size": 2}}, "CREATE") == Policy(0, 2, 0.0, create=True)
    assert group_policy(rg, {}, {"batch_create": {"max_batch_size": 2}}, "UPDATE") is None


def _group_stack(kind: str, update_policy=None, **props) -> None:
    base = {"count": 2, "resource_def": SG} if kind == "OS::Heat::ResourceGroup" else \
        {"min_size": 1, "max_size": 2, "resource": SG}
    res = {"type": kind, "properties": {**base, **props}}
    if update_policy is not None:
        res["update_policy"] = update_policy
    load_stack(tmpl(resources={"g": res}))


@pytest.mark.parametrize("kind, update_policy, props, message", [
    ("OS::Heat::ResourceGroup", {"rolling": {}}, {}, "resources.g.update_policy: Unknown Property rolling"),
    ("OS::Heat::ResourceGroup", {"rolling_update": {"max_batch_size": 0}}, {},
     "Property error: resources.g.update_policy.rolling_update.max_batch_size: 0 is out of range (min: 1, max: None)"),
    ("OS::Heat::ResourceGroup", {"batch_create": {"min_in_service": 1}}, {},
     "resources.g.update_policy.batch_create: Unknown Property min_in_service"),
    # Heat's HOT AutoScalingGroup takes no update_policy: its policy is a property
    ("OS::Heat::AutoScalingGroup", {"rolling_update": {}}, {},
     "resources.g.update_policy: Unknown Property rolling_update"),
    ("OS::Heat::AutoScalingGroup", None, {"rolling_updates": {"pause_time": -1}},
     "Property error: resources.g.properties.rolling_updates.pause_time: -1 is out of range (min: 0, max: None)"),
])
def test_policies_are_validated_as_heat_does(kind, update_policy, props, message):
    with pytest.raises(HeatError) as e:
        _group_stack(kind, update_policy, **props)
    assert str(e.value) == message


def test_valid_policies_load():
    _group_stack("OS::Heat::ResourceGroup", {"rolling_update": {"min_in_service": 1, "max_batch_size": 2,
                                                                "pause_time": 2.5}, "batch_create": {}})
    _group_stack("OS::Heat::AutoScalingGroup", rolling_updates={"max_batch_size": 2})


def test_update_order_and_what_a_new_action_keeps():
    assert replace_order("OS::Heat::ResourceGroup", [0, 1, 2, 5]) == [5, 2, 1, 0]
    assert replace_order("OS::Heat::AutoScalingGroup", [3, 4, 5, 6], failed={5}) == [5, 3, 4, 6]
    rollouts = {"g": Rollout((1, 2), (7,), "2030-01-01T00:00:00Z").to_dict(), "h": Rollout((0,)).to_dict()}
    assert carry_over(rollouts) == {"g": Rollout(extra=(7,)).to_dict()}


# ---- one pass -------------------------------------------------------------------------------

def _m(i: int, exists: bool = True, current: bool = False, state: str = rz.COMPLETE, reason: str = "") -> Member:
    return Member(i, exists, current, state, reason)


def test_a_batch_member_failing_fails_the_group():
    group = Group("g", [_m(3, current=True, state=rz.FAILED, reason="invalid rules"), _m(2, current=True), _m(1)])
    s = step(Policy(0, 2), group, Rollout((3, 2)), iter(()), NOW, 3600)
    assert s.state == rz.FAILED and s.reason == "g[3]: invalid rules"


def test_a_batch_waits_for_its_members_then_the_pause():
    policy = Policy(0, 1, 10)
    waiting = step(policy, Group("g", [_m(1, current=True, state=rz.IN_PROGRESS), _m(0)]), Rollout((1,)),
                   iter(()), NOW, 3600)
    assert waiting.write == frozenset() and waiting.rollout == Rollout((1,))
    assert waiting.reason == "rolling update: 1 of 2 members up to date; waiting for g[1]"
    paused = step(policy, Group("g", [_m(1, current=True), _m(0)]), Rollout((1,)), iter(()), NOW, 3600)
    assert paused.rollout == Rollout(pause_until="2030-01-01T00:00:10Z") and paused.write == frozenset()
    assert paused.wake == 10
    later = NOW + datetime.timedelta(seconds=10)
    assert step(policy, Group("g", [_m(1, current=True), _m(0)]), paused.rollout, iter(()), later, 3600).write == {0}
    # the last batch over: no pause, nothing more
    assert step(policy, Group("g", [_m(1, current=True), _m(0, current=True)]), Rollout((0,)), iter(()), later,
                3600) is None


def test_pauses_that_outlast_the_stack_timeout_are_refused():
    group = Group("g", [_m(i) for i in range(4)])
    s = step(Policy(0, 1, 1200), group, Rollout(), iter(()), NOW, 3600)  # 3 pauses of 20 minutes
    assert s.state == rz.FAILED and s.reason == TIMEOUT
    assert step(Policy(0, 1, 1199), group, Rollout(), iter(()), NOW, 3600).state == rz.IN_PROGRESS


def test_nothing_to_roll():
    group = Group("g", [_m(0, current=True), _m(1, exists=False)])
    # only a member to make: made at once outside batch_create, as Heat resizes
    assert step(Policy(0, 1), group, Rollout(), iter(()), NOW, 3600) is None
    assert step(Policy(0, 1, create=True), group, Rollout(), iter(()), NOW, 3600).write == {1}


# ---- a rollout, simulated ----------------------------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(size=st.integers(0, 10), present=st.integers(0, 10), others=st.integers(0, 3),
       batch=st.integers(1, 5), keep=st.integers(0, 12), create=st.booleans())
def test_a_rollout_updates_every_member_once_in_batches_keeping_min_in_service(size, present, others, batch, keep,
                                                                              create):
    """``size`` members, of which the first ``present`` exist out of date (all missing for
    batch_create), ``others`` objects the group no longer has: the controllers make written
    objects ready between passes."""
    present = 0 if create else min(present, size)
    policy = Policy(0 if create else keep, batch, 0, create)
    target = {i: _m(i, exists=i < present) for i in range(size)}
    extra: dict[int, Member] = {}
    writes: dict[int, int] = {}
    fresh = itertools.count(100)
    rollout = Rollout()
    floor = min(policy.min_in_service, size, present + others)
    for _ in range(4 * size + 10):
        group = Group("g", [target[i] for i in replace_order("OS::Heat::ResourceGroup", list(target))],
                      list(extra.values()), others)
        s = step(policy, group, rollout, fresh, NOW, 3600)
        if s is None:
            break
        assert s.state == rz.IN_PROGRESS
        rollout = s.rollout
        for i in rollout.extra:
            extra.setdefault(i, _m(i, exists=False, current=True))
        assert len(s.write) <= batch
        for i in s.write:
            writes[i] = writes.get(i, 0) + 1
            pool = target if i in target else extra
            pool[i] = _m(i, current=True, state=rz.IN_PROGRESS)
        members = [*target.values(), *extra.values()]
        in_service = others + sum(1 for m in members if m.exists and m.state == rz.COMPLETE)
        assert in_service >= floor
        assert sum(1 for m in members if m.state != rz.COMPLETE) <= batch
        # the controllers: what was written is ready by the next pass
        for pool in (target, extra):
            for i, m in pool.items():
                if m.exists:
                    pool[i] = _m(i, current=m.current)
    else:
        raise AssertionError("the rollout does not end")
    rolled = present > 0 or (create and size > 0)
    assert all(m.current for m in target.values()) or not rolled
    if rolled:
        assert {i: n for i, n in writes.items() if i in target} == {i: 1 for i in target}
        assert all(n == 1 for n in writes.values())
