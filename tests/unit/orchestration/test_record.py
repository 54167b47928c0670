"""A stack's record: the engine's stack for its inputs, a new spec generation (create or
update, planned against what the stack has), completion, failure and rollback."""

import copy

import pytest

from kubestack.orchestration import realize as rz
from kubestack.orchestration.errors import HeatError
from kubestack.orchestration.record import STACK_NAME_ANNOTATION, complete, fail, load, plan, start

from .helpers import server, tmpl

META = {"name": "shop", "namespace": "demo", "uid": "u1"}
FLAVOR = {"type": "OS::Nova::Flavor", "properties": {"ram": 512, "vcpus": 1, "disk": 1}}
ASG = {"type": "OS::Heat::AutoScalingGroup",
       "properties": {"min_size": 1, "max_size": 5, "desired_capacity": 2, "resource": server()}}


def _asg(**props) -> dict:
    return {**ASG, "properties": {k: v for k, v in {**ASG["properties"], **props}.items() if v is not None}}


def _inputs(**resources) -> dict:
    return {"template": tmpl(resources=resources), "parameters": {}, "files": {}, "environment": {},
            "overrides": {}}


def test_load_applies_the_record_and_names_flavors_per_namespace():
    inputs = _inputs(flv=FLAVOR, asg=ASG, rg={"type": "OS::Heat::ResourceGroup",
                                             "properties": {"count": 2, "resource_def": server()}})
    inputs["overrides"] = {"asg": "shop-asg-new"}
    stack = load(META, inputs, {"capacity": {"asg": 4}, "members": {"asg": {"ids": [3, 4], "next": 5}},
                                "blacklist": {"rg": ["0"]}})
    assert stack.stack_name == "shop" and stack.stack_id == "u1" and stack.project_id == "demo"
    assert stack.physical_name("flv") == rz.flavor_name("demo", "shop", "flv")
    assert stack.physical_name("asg") == "shop-asg-new"
    assert stack.resolve("asg")["desired_capacity"] == 4
    assert stack.member_ids("asg", 2) == [3, 4] and stack.member_ids("rg", 2) == [1, 2]
    assert inputs["template"]["resources"]["asg"]["properties"]["desired_capacity"] == 2  # inputs left as they were
    named = load({**META, "annotations": {STACK_NAME_ANNOTATION: "My Shop"}}, inputs)
    assert named.stack_name == "My Shop"


def test_start_creates_a_stack_that_has_nothing_and_updates_one_that_has():
    assert start(None, 1) == {"action": "CREATE", "generation": 1, "good": None, "target": None, "signals": {},
                              "capacity": {}, "members": {}, "blacklist": {}, "cooldown_end": {},
                              "rollouts": {}, "contributions": {}}
    refused = {"action": "CREATE", "result": "FAILED", "target": None}
    assert start(refused, 2)["action"] == "CREATE"
    done = {"action": "CREATE", "result": "COMPLETE", "target": "t1", "good": "t1", "signals": {"up": ["a"]},
            "capacity": {"asg": 3}, "cooldown_end": {"asg": "2030-01-01T00:00:00Z"}, "waiting": {"w": "x"}}
    new = start(done, 2)
    assert (new["action"], new["target"], new["good"]) == ("UPDATE", "t1", "t1")
    assert new["signals"] == {"up": ["a"]} and new["capacity"] == {"asg": 3} and "waiting" not in new
    # a group cools down across an update, as Heat keeps its cooldown in the group's metadata
    assert new["cooldown_end"] == {"asg": "2030-01-01T00:00:00Z"}
    # a rollout's extra members stay in service while the new action plans its own batches
    rolling = {**done, "rollouts": {"rg": {"batch": [3], "extra": [4], "pauseUntil": "2030-01-01T00:00:00Z"}}}
    assert start(rolling, 2)["rollouts"] == {"rg": {"batch": [], "extra": [4], "pauseUntil": None}}
    # a failed update: what the stack has is still its target; the good one stays
    failed = {"action": "UPDATE", "result": "FAILED", "target": "t2", "good": "t1"}
    assert (start(failed, 3)["target"], start(failed, 3)["good"]) == ("t2", "t1")
    assert start({"action": "UPDATE", "result": "IN_PROGRESS", "target": "t2", "good": "t1"}, 3)["good"] == "t1"


def test_plan_starts_the_action_and_names_replacements():
    state = start(None, 1)
    first = _inputs(vm=server(key_name="k1"), asg=ASG)
    plan(META, state, first, exists=None)
    assert state["target"] is first and state["result"] == "IN_PROGRESS" and not state["retry"]
    assert state["reason"] == "Stack CREATE started" and state["started"]
    complete(state)
    state = start(state, 2)
    state["capacity"] = {"asg": 4}  # set by signals
    second = _inputs(vm=server(key_name="k2"), asg=ASG)
    plan(META, state, second, exists=None)
    assert state["reason"] == "Stack UPDATE started"
    # a new key pair replaces the server: the new one gets a new name
    assert set(second["overrides"]) == {"vm"} and second["overrides"]["vm"].startswith("shop-vm-")
    assert load(META, state["target"]).physical_name("vm") == second["overrides"]["vm"]
    assert state["capacity"] == {"asg": 4}  # the group's definition did not change
    # a changed definition: its desired_capacity, or the size signals set within its new bounds
    plan(META, state, _inputs(vm=server(key_name="k2"), asg=_asg(max_size=4)), exists=None)
    assert state["capacity"] == {}
    state["capacity"] = {"asg": 4}
    plan(META, state, _inputs(vm=server(key_name="k2"), asg=_asg(max_size=3, desired_capacity=None)), exists=None)
    assert state["capacity"] == {"asg": 3}


def test_plan_resolves_removal_policies_against_the_members_the_group_has():
    group = {"type": "OS::Heat::ResourceGroup", "properties": {"count": 3, "resource_def": server()}}
    state = start(None, 1)
    plan(META, state, _inputs(rg=group), exists=None)
    complete(state)
    state = start(state, 2)
    shrink = {"type": "OS::Heat::ResourceGroup", "properties": {
        "count": 2, "resource_def": server(), "removal_policies": [{"resource_list": ["shop-rg-1"]}]}}
    plan(META, state, _inputs(rg=shrink), exists=None)
    assert state["blacklist"] == {"rg": ["1"]}


def test_plan_leaves_the_record_as_it_was_when_the_inputs_are_not_a_stack():
    state = start(None, 1)
    before = copy.deepcopy(state)
    with pytest.raises(HeatError) as e:
        plan(META, state, _inputs(vm=server(flavor="nosuch")), exists=lambda kind, name: name != "nosuch")
    assert e.value.missing and state == before
    with pytest.raises(HeatError):
        plan(META, state, _inputs(vm={"type": "OS::Nova::Nothing"}), exists=None)
    assert state == before


def test_complete_makes_the_target_good_unless_a_rollback_to_nothing():
    state = {"action": "UPDATE", "target": "t2", "good": "t1"}
    complete(state)
    assert state == {"action": "UPDATE", "target": "t2", "good": "t2", "result": "COMPLETE",
                     "reason": "Stack UPDATE completed successfully"}
    state = {"action": "ROLLBACK", "target": None, "good": "t0"}
    complete(state)
    assert state["good"] == "t0" and state["reason"] == "Stack ROLLBACK completed successfully"


@pytest.mark.parametrize("action, good, rollback, expected", [
    ("CREATE", None, True, ("ROLLBACK", None)),       # a failed create rolls back to nothing
    ("UPDATE", "t1", True, ("ROLLBACK", "t1")),
    ("UPDATE", None, True, ("UPDATE", "t2")),          # nothing good to return to
    ("CREATE", None, False, ("CREATE", "t2")),
    ("UPDATE", "t1", False, ("UPDATE", "t2")),
    ("ROLLBACK", "t1", True, ("ROLLBACK", "t2")),      # a rollback that fails stops
])
def test_fail_rolls_back_or_stops(action, good, rollback, expected):
    state = {"action": action, "result": "IN_PROGRESS", "target": "t2", "good": good}
    assert fail(state, "boom", rollback) == (expected[0] == "ROLLBACK" != action)
    assert (state["action"], state["target"]) == expected
    if state["result"] == "FAILED":
        assert state["reason"] == "boom"
    else:
        assert state["result"] == "IN_PROGRESS" and state["reason"] == "boom; rolling back" and state["started"]


def test_a_rollback_plans_its_own_batches_keeping_the_extra_members():
    state = {"action": "UPDATE", "result": "IN_PROGRESS", "target": "t2", "good": "t1",
             "rollouts": {"rg": {"batch": [3, 2], "extra": [], "pauseUntil": None},
                          "asg": {"batch": [7], "extra": [7], "pauseUntil": None}}}
    assert fail(state, "boom", rollback=True)
    assert state["rollouts"] == {"asg": {"batch": [], "extra": [7], "pauseUntil": None}}
