"""Signals: what the annotations say, how scaling policies' signals resize their groups (with
cooldown), and how wait conditions count them."""

import json

import pytest

from kubestack.orchestration import load_stack
from kubestack.orchestration import realize as rz
from kubestack.orchestration.scaling import Members
from kubestack.orchestration.signals import (SIGNAL_PREFIX, handle_attributes, parse, policy_attributes, scale,
                                             wait_condition)

from .helpers import server, tmpl

LONG_AGO = "2000-01-01T00:00:00Z"


def _signals(resource: str, value) -> dict:
    return {SIGNAL_PREFIX + resource: value if isinstance(value, str) else json.dumps(value)}


def test_parse_objects_lists_and_plain_text():
    assert parse(None, "h") == [] and parse({}, "h") == []
    assert parse(_signals("h", {"status": "failure", "reason": "boom", "data": 1}), "h") == [
        {"id": "1", "status": "FAILURE", "reason": "boom", "data": 1}]
    assert parse(_signals("h", [{"id": "a", "data": "x"}, "plain"]), "h") == [
        {"id": "a", "status": "SUCCESS", "reason": "Signal", "data": "x"},
        {"id": "2", "status": "SUCCESS", "reason": "Signal", "data": "plain"}]
    assert parse(_signals("h", "not json"), "h") == [{"id": "1", "status": "SUCCESS", "reason": "Signal",
                                                       "data": "not json"}]
    assert parse(_signals("other", [{"id": "a"}]), "h") == []


FAR_AHEAD = "2999-01-01T00:00:00Z"


def _scaled(cooldown=None, group=None, adjustment=1, kind="change_in_capacity", group_cooldown=None, max_size=3,
            **policies):
    policy = {"auto_scaling_group_id": group or {"get_resource": "asg"}, "adjustment_type": kind,
              "scaling_adjustment": adjustment}
    if cooldown is not None:
        policy["cooldown"] = cooldown
    asg = {"min_size": 1, "max_size": max_size, "desired_capacity": 1, "resource": server()}
    if group_cooldown is not None:
        asg["cooldown"] = group_cooldown
    return load_stack(tmpl(resources={
        "asg": {"type": "OS::Heat::AutoScalingGroup", "properties": asg},
        "up": {"type": "OS::Heat::ScalingPolicy", "properties": policy},
        **{name: {"type": "OS::Heat::ScalingPolicy", "properties": {
            "auto_scaling_group_id": {"get_resource": "asg"}, **props}} for name, props in policies.items()}}),
        stack_name="st")


def test_scale_applies_each_new_signal_once_within_the_bounds():
    stack, record = _scaled(), {}
    assert scale(stack, _signals("up", [{"id": "a"}, {"id": "b"}, {"id": "c"}]), record)
    assert record["capacity"] == {"asg": 3} and record["signals"] == {"up": ["a", "b", "c"]}  # max_size 3
    assert set(record["cooldown_end"]) == {"asg"}
    assert not scale(stack, _signals("up", [{"id": "a"}, {"id": "b"}, {"id": "c"}]), record)
    assert not scale(stack, {}, {}) and not scale(stack, None, {})


def test_scale_drops_signals_while_the_group_cools_down():
    stack, record = _scaled(cooldown=600), {}
    assert scale(stack, _signals("up", [{"id": "a"}, {"id": "b"}]), record)
    assert record["capacity"] == {"asg": 2} and record["signals"] == {"up": ["a", "b"]}  # b came too soon
    record["cooldown_end"]["asg"] = LONG_AGO
    assert scale(stack, _signals("up", [{"id": "a"}, {"id": "b"}, {"id": "c"}]), record)
    assert record["capacity"] == {"asg": 3}


def test_scale_drops_signals_while_the_group_is_not_complete():
    # Heat's adjust: "NOT performing scaling adjustment, when status is not COMPLETE"
    stack, record = _scaled(), {}
    stack.unfinished = frozenset({"asg"})  # being created, updated (a rolling update) or resized
    assert scale(stack, _signals("up", [{"id": "a"}]), record)
    assert record["signals"] == {"up": ["a"]} and "asg" not in record.get("capacity", {})
    stack.unfinished = frozenset({"up"})  # the group's status is what counts
    assert scale(stack, _signals("up", [{"id": "a"}, {"id": "b"}]), record) and record["capacity"] == {"asg": 2}


def test_a_group_cools_down_whichever_policy_scaled_it_and_by_the_groups_cooldown_without_the_policys():
    # Heat keeps the cooldown on the group: a policy without one is dropped while it cools down
    stack, record = _scaled(down={"adjustment_type": "change_in_capacity", "scaling_adjustment": -1},
                            group_cooldown=600), {}
    record["capacity"] = {"asg": 2}
    assert scale(stack, _signals("up", [{"id": "a"}]), record) and record["capacity"] == {"asg": 3}
    assert scale(stack, _signals("down", [{"id": "a"}]), record) and record["capacity"] == {"asg": 3}
    record["cooldown_end"]["asg"] = LONG_AGO
    assert scale(stack, _signals("down", [{"id": "a"}, {"id": "b"}]), record) and record["capacity"] == {"asg": 2}


def test_a_signal_that_changes_nothing_starts_no_cooldown():
    stack, record = _scaled(cooldown=600, adjustment=1, kind="exact_capacity"), {}
    assert scale(stack, _signals("up", [{"id": "a"}]), record)  # already 1: Heat does nothing
    assert "asg" not in record.get("capacity", {}) and "asg" not in record.get("cooldown_end", {})
    stack, record = _scaled(cooldown=600, adjustment=-1), {"cooldown_end": {"asg": FAR_AHEAD}}
    assert scale(stack, _signals("up", [{"id": "a"}]), record)  # at min_size
    assert record["cooldown_end"] == {"asg": FAR_AHEAD} and "asg" not in record.get("capacity", {})


@pytest.mark.parametrize("adjustment, kind, step, size", [
    (1, "change_in_capacity", None, 3),          # 2 healthy of 3: one more is 3 (the failed one stays)
    (-1, "change_in_capacity", None, 1),         # the failed one goes first, then the oldest
    (50, "percent_change_in_capacity", None, 3),
    (-10, "percent_change_in_capacity", 1, 1),   # 0.2 of a member still takes one
    (3, "exact_capacity", None, 3),              # 2 healthy: a resize, and a cooldown, all the same
])
def test_a_signal_adjusts_the_members_that_did_not_fail(adjustment, kind, step, size):
    props = {"scaling_adjustment": adjustment, "adjustment_type": kind}
    if step is not None:
        props["min_adjustment_step"] = step
    stack = _scaled(max_size=5, p=props)
    stack.group_members["asg"] = Members((0, 1, 2), 3)
    stack.group_failed["asg"] = frozenset({1})
    record = {"capacity": {"asg": 3}}
    assert scale(stack, _signals("p", [{"id": "a"}]), record)
    assert record["capacity"] == {"asg": size} and set(record["cooldown_end"]) == {"asg"}


def test_scale_takes_the_signals_of_a_policy_whose_group_is_not_in_the_stack():
    stack, record = _scaled(group="elsewhere"), {}
    assert scale(stack, _signals("up", [{"id": "a"}]), record)
    assert record == {"signals": {"up": ["a"]}}


def _waiting(count=2, timeout=None):
    props = {"handle": {"get_resource": "h"}, "count": count}
    if timeout is not None:
        props["timeout"] = timeout
    return load_stack(tmpl(resources={"h": {"type": "OS::Heat::WaitConditionHandle"},
                                      "w": {"type": "OS::Heat::WaitCondition", "properties": props}}),
                      stack_name="st")


def test_wait_condition_counts_its_handles_signals():
    stack, record = _waiting(), {}
    assert wait_condition(stack, "w", {}, {}, record) == (rz.IN_PROGRESS, "waiting for 2 signal(s) on h",
                                                            {"data": "{}"})
    started = record["waiting"]["w"]
    one = _signals("h", [{"id": "1", "data": "x"}])
    assert wait_condition(stack, "w", {}, one, record)[:2] == (rz.IN_PROGRESS, "waiting for 1 signal(s) on h")
    assert record["waiting"]["w"] == started  # it waits since the first look
    two = _signals("h", [{"id": "1", "data": "x"}, {"id": "2", "data": "y"}])
    assert wait_condition(stack, "w", {}, two, record) == (rz.COMPLETE, "Signal: 2 received",
                                                             {"data": json.dumps({"1": "x", "2": "y"})})
    assert record["waiting"] == {}


def test_wait_condition_fails_on_a_failure_signal_or_its_timeout():
    stack = _waiting(timeout=60)
    failed = _signals("h", [{"id": "1"}, {"id": "2", "status": "FAILURE", "reason": "disk full"}])
    state, reason, attrs = wait_condition(stack, "w", {}, failed, {})
    assert (state, reason, json.loads(attrs["data"])) == (rz.FAILED, "disk full", {"1": None})
    record = {"waiting": {"w": LONG_AGO}}
    state, reason, _ = wait_condition(stack, "w", {}, _signals("h", [{"id": "1", "reason": "booted"}]), record)
    assert (state, reason) == (rz.FAILED, "WaitConditionTimeout: 1 of 2 received - booted")


def test_how_to_signal():
    assert handle_attributes("demo", "st", "h") == {
        "endpoint": "kubestack.io/signal-h", "token": "", "curl_cli": "kubestack stack signal -n demo st h --data"}
    assert policy_attributes("demo", "st", "up") == {"alarm_url": "kubestack stack signal -n demo st up",
                                                     "signal_url": "kubestack stack signal -n demo st up"}
