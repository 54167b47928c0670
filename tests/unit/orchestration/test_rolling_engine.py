"""Rolling updates driven by the Stack engine across reconciles, on an in-memory API server:
batches wait for their members to be ready and for the pause (a requeue, never a sleep), a
restarted operator continues the rollout, a member failing fails the update and rolls back,
ResourceGroup batch_create, extra members, and scaling signals dropped meanwhile."""

from __future__ import annotations

import base64
import datetime
import json

from kubestack.orchestration.signals import SIGNAL_PREFIX
from kubestack.stacks import converge as converge_module

from .helpers import tmpl
from .stack_fakes import NS, FakeCluster, converge, run, stack_status


def _group(description: str, count: int = 4, policy: dict | None = None) -> dict:
    group = {"type": "OS::Heat::ResourceGroup", "properties": {"count": count, "resource_def": {
        "type": "OS::Neutron::SecurityGroup", "properties": {"description": description}}}}
    if policy is not None:
        group["update_policy"] = policy
    return tmpl(resources={"g": group})


ROLLING = {"rolling_update": {"max_batch_size": 2, "min_in_service": 2}}


def _descriptions(cluster: FakeCluster, prefix: str = "web-g-") -> dict[str, str]:
    return {name: o["spec"].get("description") for name, o in cluster.members(prefix).items()}


def _record(cluster: FakeCluster, name: str = "web") -> dict:
    secret = cluster.get("Secret", NS, f"{name}-stack-state")
    return json.loads(base64.b64decode(secret["data"]["state.json"]))


def _created(policy: dict | None = ROLLING, count: int = 4) -> FakeCluster:
    cluster = FakeCluster()
    cluster.add_stack("web", _group("v1", count, policy))
    assert converge(cluster, "web", "CREATE_COMPLETE", "CREATE_FAILED") == "CREATE_COMPLETE"
    return cluster


def test_a_rolling_update_goes_in_batches_and_a_restarted_operator_continues_it():
    cluster = _created()
    cluster.update_stack("web", template=_group("v2", policy=ROLLING))
    run(cluster, "web")
    # the first batch: the two highest indices; two members stay in service
    assert _descriptions(cluster) == {"web-g-0": "v1", "web-g-1": "v1", "web-g-2": "v2", "web-g-3": "v2"}
    assert stack_status(cluster, "web") == "UPDATE_IN_PROGRESS"
    assert _record(cluster)["rollouts"]["g"]["batch"] == [3, 2]
    run(cluster, "web")  # its members are not ready yet: nothing more
    assert _descriptions(cluster)["web-g-1"] == "v1"

    # the operator restarts: the state is all in the cluster (the record and the members)
    before, cluster = cluster.spec_writes, cluster.restarted()
    run(cluster, "web")
    assert _descriptions(cluster)["web-g-1"] == "v1" and stack_status(cluster, "web") == "UPDATE_IN_PROGRESS"
    cluster.settle()
    run(cluster, "web")
    assert set(_descriptions(cluster).values()) == {"v2"}
    assert _record(cluster)["rollouts"]["g"]["batch"] == [1, 0]
    assert converge(cluster, "web", "UPDATE_COMPLETE", "UPDATE_FAILED", "ROLLBACK_COMPLETE") == "UPDATE_COMPLETE"
    # each member written once, none twice over the restart
    assert dict(before + cluster.spec_writes) == {("SecurityGroup", f"web-g-{i}"): 1 for i in range(4)}
    assert _record(cluster).get("rollouts") == {}


def test_the_pause_between_batches_is_a_requeue_until_it_ends(monkeypatch):
    policy = {"rolling_update": {"max_batch_size": 2, "pause_time": 30}}
    cluster = _created(policy)
    cluster.update_stack("web", template=_group("v2", policy=policy))
    run(cluster, "web")
    cluster.settle()
    delay = run(cluster, "web")  # the batch is over: the pause starts
    assert delay is not None and 0 < delay <= 30
    pause_until = _record(cluster)["rollouts"]["g"]["pauseUntil"]
    assert pause_until and sorted(_descriptions(cluster).values()) == ["v1", "v1", "v2", "v2"]
    assert "next batch at" in cluster.stack(NS, "web")["status"]["resources"][0]["statusReason"]
    run(cluster, "web")
    assert sorted(_descriptions(cluster).values()) == ["v1", "v1", "v2", "v2"]

    later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=31)
    monkeypatch.setattr(converge_module, "_clock", lambda: later)
    run(cluster, "web")
    assert set(_descriptions(cluster).values()) == {"v2"}


def test_a_member_failing_fails_the_update_and_the_rollback_rolls_back_in_batches():
    cluster = _created()
    cluster.update_stack("web", template=_group("v2", policy=ROLLING))
    run(cluster, "web")
    cluster.settle(failing=frozenset({"web-g-3"}))
    run(cluster, "web")
    st = cluster.stack(NS, "web")["status"]
    assert st["stackStatus"] == "ROLLBACK_IN_PROGRESS"
    assert 'Resource UPDATE failed: OS::Heat::ResourceGroup "g": g[3]: invalid rules' in st["stackStatusReason"]
    # members 0 and 1 never got v2: the rollback writes only the batch that had it
    assert converge(cluster, "web", "ROLLBACK_COMPLETE", "ROLLBACK_FAILED") == "ROLLBACK_COMPLETE"
    assert set(_descriptions(cluster).values()) == {"v1"}
    assert cluster.spec_writes[("SecurityGroup", "web-g-0")] == 0
    assert cluster.spec_writes[("SecurityGroup", "web-g-3")] == 2


def test_without_a_policy_a_resource_group_updates_every_member_at_once():
    cluster = _created(policy=None)
    cluster.update_stack("web", template=_group("v2"))
    run(cluster, "web")
    assert set(_descriptions(cluster).values()) == {"v2"}


def test_a_count_change_alone_is_not_rolled():
    cluster = _created()
    cluster.update_stack("web", template=_group("v1", count=7, policy=ROLLING))
    run(cluster, "web")
    assert len(_descriptions(cluster)) == 7


def test_batch_create_makes_a_resource_group_in_batches():
    cluster = FakeCluster()
    cluster.add_stack("web", _group("v1", 5, {"batch_create": {"max_batch_size": 2}}))
    run(cluster, "web")
    assert list(_descriptions(cluster)) == ["web-g-0", "web-g-1"]
    run(cluster, "web")
    assert len(_descriptions(cluster)) == 2
    cluster.settle()
    run(cluster, "web")
    assert list(_descriptions(cluster)) == [f"web-g-{i}" for i in range(4)]
    assert converge(cluster, "web", "CREATE_COMPLETE", "CREATE_FAILED") == "CREATE_COMPLETE"
    assert len(_descriptions(cluster)) == 5


def test_extra_members_keep_min_in_service_and_go_once_the_update_is_done():
    policy = {"rolling_update": {"max_batch_size": 2, "min_in_service": 4}}
    cluster = _created(policy)
    cluster.update_stack("web", template=_group("v2", policy=policy))
    run(cluster, "web")
    # Heat's first batch grows the group by two members with the new definition
    assert _descriptions(cluster) == {**{f"web-g-{i}": "v1" for i in range(4)}, "web-g-4": "v2", "web-g-5": "v2"}
    assert _record(cluster)["rollouts"]["g"] == {"batch": [4, 5], "extra": [4, 5], "pauseUntil": None}
    cluster.settle()
    run(cluster, "web")
    assert _descriptions(cluster)["web-g-3"] == "v2" and _descriptions(cluster)["web-g-1"] == "v1"
    assert converge(cluster, "web", "UPDATE_COMPLETE", "UPDATE_FAILED", "ROLLBACK_COMPLETE") == "UPDATE_COMPLETE"
    assert _descriptions(cluster) == {f"web-g-{i}": "v2" for i in range(4)}
    outputs = cluster.stack(NS, "web")["status"]["resources"]
    assert [r["status"] for r in outputs] == ["UPDATE_COMPLETE"]


def _autoscaled(description: str, rolling: dict | None = None) -> dict:
    props = {"min_size": 1, "max_size": 5, "desired_capacity": 3, "resource": {
        "type": "OS::Neutron::SecurityGroup", "properties": {"description": description}}}
    if rolling is not None:
        props["rolling_updates"] = rolling
    return tmpl(resources={"asg": {"type": "OS::Heat::AutoScalingGroup", "properties": props},
                           "up": {"type": "OS::Heat::ScalingPolicy", "properties": {
                               "adjustment_type": "change_in_capacity", "scaling_adjustment": 1,
                               "auto_scaling_group_id": {"get_resource": "asg"}}}})


def test_an_autoscaling_group_rolls_one_member_at_a_time_and_drops_signals_meanwhile():
    cluster = FakeCluster()
    cluster.add_stack("web", _autoscaled("v1"))
    assert converge(cluster, "web", "CREATE_COMPLETE", "CREATE_FAILED") == "CREATE_COMPLETE"
    cluster.update_stack("web", template=_autoscaled("v2"))
    run(cluster, "web")
    # Heat's default rolling_updates: one at a time, the oldest first
    assert list(_descriptions(cluster, "web-asg-").values()) == ["v2", "v1", "v1"]
    cluster.settle()
    run(cluster, "web")
    assert list(_descriptions(cluster, "web-asg-").values()) == ["v2", "v2", "v1"]
    # a signal while the group is UPDATE_IN_PROGRESS is taken and dropped, as Heat's adjust drops it
    cluster.update_stack("web", annotations={SIGNAL_PREFIX + "up": json.dumps({"id": "a"})})
    run(cluster, "web")
    assert _record(cluster)["signals"] == {"up": ["a"]} and _record(cluster)["capacity"] == {}
    assert converge(cluster, "web", "UPDATE_COMPLETE", "UPDATE_FAILED", "ROLLBACK_COMPLETE") == "UPDATE_COMPLETE"
    assert list(_descriptions(cluster, "web-asg-").values()) == ["v2", "v2", "v2"]
    # once it is complete, a signal scales it
    cluster.update_stack("web", annotations={SIGNAL_PREFIX + "up": json.dumps([{"id": "a"}, {"id": "b"}])})
    run(cluster, "web")
    assert _record(cluster)["capacity"] == {"asg": 4} and len(_descriptions(cluster, "web-asg-")) == 4


def test_an_autoscaling_groups_extra_member_takes_an_id_never_given_again():
    rolling = {"max_batch_size": 1, "min_in_service": 3}
    cluster = FakeCluster()
    cluster.add_stack("web", _autoscaled("v1", rolling))
    assert converge(cluster, "web", "CREATE_COMPLETE", "CREATE_FAILED") == "CREATE_COMPLETE"
    assert _record(cluster)["members"] == {"asg": {"ids": [0, 1, 2], "next": 3}}
    cluster.update_stack("web", template=_autoscaled("v2", rolling))
    run(cluster, "web")
    assert _descriptions(cluster, "web-asg-") == {"web-asg-0": "v1", "web-asg-1": "v1", "web-asg-2": "v1",
                                                   "web-asg-3": "v2"}
    assert converge(cluster, "web", "UPDATE_COMPLETE", "UPDATE_FAILED", "ROLLBACK_COMPLETE") == "UPDATE_COMPLETE"
    assert _descriptions(cluster, "web-asg-") == {f"web-asg-{i}": "v2" for i in range(3)}
    assert _record(cluster)["members"] == {"asg": {"ids": [0, 1, 2], "next": 4}}
