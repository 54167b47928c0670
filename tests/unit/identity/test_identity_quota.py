"""The quota ledger: Nova's messages, idempotent holders, resize, race-freedom, recounts."""

from __future__ import annotations

import threading

import pytest

from kubestack.identity import project_of_namespace
from kubestack.identity.quota import QuotaExceeded, QuotaLedger, is_quota_message


def ledger(**limits) -> QuotaLedger:
    q = QuotaLedger()
    q.set_limits("a", {"instances": 10, "cores": 12, "ram": 4096, "volumes": 2, "gigabytes": 10, **limits})
    return q


def test_message_is_novas_shape():
    q = ledger()
    q.reserve("a", "server/a/one", {"instances": 1, "cores": 10, "ram": 1024})
    with pytest.raises(QuotaExceeded) as err:
        q.reserve("a", "server/a/two", {"instances": 1, "cores": 4, "ram": 1024})
    e = err.value
    assert str(e) == "Quota exceeded for cores: Requested 4, but already used 10 of 12 cores"
    assert isinstance(e, ValueError)
    assert (e.resource, e.requested, e.used, e.limit) == ("cores", 4, 10, 12)
    assert is_quota_message(str(e))
    # nothing was claimed by the refused request
    assert q.usage("a") == {"instances": 1, "cores": 10, "ram": 1024}
    assert q.holds("server/a/two") is None


def test_several_resources_over_are_listed_together():
    q = ledger()
    with pytest.raises(QuotaExceeded) as err:
        q.reserve("a", "server/a/big", {"instances": 1, "cores": 16, "ram": 8192})
    assert str(err.value) == ("Quota exceeded for cores, ram: Requested 16, 8192, but already used "
                              "0, 0 of 12, 4096 cores, ram")


def test_fits_exactly_then_refuses_one_more():
    q = ledger()
    for i in range(2):
        q.reserve("a", f"volume/a/v{i}", {"volumes": 1, "gigabytes": 5})
    assert q.usage("a") == {"volumes": 2, "gigabytes": 10}
    with pytest.raises(QuotaExceeded) as err:
        q.reserve("a", "volume/a/v2", {"volumes": 1, "gigabytes": 1})
    assert str(err.value) == ("Quota exceeded for volumes, gigabytes: Requested 1, 1, but already "
                              "used 2, 10 of 2, 10 volumes, gigabytes")
    q.release("volume/a/v0")
    q.reserve("a", "volume/a/v2", {"volumes": 1, "gigabytes": 5})
    assert q.usage("a") == {"volumes": 2, "gigabytes": 10}


def test_reserving_a_holder_again_replaces_it_and_checks_only_the_increase():
    q = ledger()
    q.reserve("a", "server/a/s", {"instances": 1, "cores": 4, "ram": 1024})
    q.reserve("a", "server/a/s", {"instances": 1, "cores": 4, "ram": 1024})  # retried handler
    assert q.usage("a") == {"instances": 1, "cores": 4, "ram": 1024}
    q.reserve("a", "server/a/t", {"instances": 1, "cores": 6, "ram": 1024})
    # resize s from 4 to 8 cores: increase 4, used 10 of 12
    with pytest.raises(QuotaExceeded, match="Requested 4, but already used 10 of 12 cores"):
        q.reserve("a", "server/a/s", {"instances": 1, "cores": 8, "ram": 1024})
    q.reserve("a", "server/a/s", {"instances": 1, "cores": 6, "ram": 1024})  # fits exactly
    assert q.usage("a")["cores"] == 12
    # a resize down is admitted even when the project is over quota after a limit cut
    q.set_limits("a", {"cores": 4})
    q.reserve("a", "server/a/s", {"instances": 1, "cores": 2, "ram": 1024})
    assert q.usage("a")["cores"] == 8


def test_unlimited_and_projectless():
    q = QuotaLedger()
    q.set_limits("a", {"instances": -1})
    for i in range(50):
        q.reserve("a", f"server/a/{i}", {"instances": 1, "cores": 64})
    assert q.usage("a") == {"instances": 50, "cores": 3200}
    q.reserve(None, "server/x/free", {"instances": 1000})  # a namespace of no Project
    assert q.holds("server/x/free") is None
    assert project_of_namespace({"kubestack.io/project": "a"}) == "a"
    assert project_of_namespace({"other": "x"}) is None
    assert project_of_namespace(None) is None


def test_twenty_threads_race_for_the_last_slots():
    q = ledger(instances=10)
    for i in range(7):
        q.reserve("a", f"server/a/old{i}", {"instances": 1, "cores": 1, "ram": 64})
    start = threading.Barrier(20)
    admitted: list[str] = []
    refused: list[QuotaExceeded] = []
    lock = threading.Lock()

    def boot(i: int) -> None:
        start.wait()
        try:
            q.reserve("a", f"server/a/new{i}", {"instances": 1, "cores": 1, "ram": 64})
        except QuotaExceeded as exc:
            with lock:
                refused.append(exc)
        else:
            with lock:
                admitted.append(f"new{i}")

    threads = [threading.Thread(target=boot, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(admitted) == 3 and len(refused) == 17
    assert q.usage("a")["instances"] == 10
    assert {str(e) for e in refused} == {
        "Quota exceeded for instances: Requested 1, but already used 10 of 10 instances"}


def test_rebuild_from_a_count():
    q = ledger()
    q.reserve("a", "server/a/gone", {"instances": 1, "cores": 2})
    q.rebuild("a", {"instances": 2, "cores": 6, "securityGroups": 1},
              {"server/a/x": {"instances": 1, "cores": 2}, "server/a/y": {"instances": 1, "cores": 4}})
    assert q.usage("a") == {"instances": 2, "cores": 6, "securityGroups": 1}
    assert q.holds("server/a/gone") is None
    q.release("server/a/y")
    assert q.usage("a") == {"instances": 1, "cores": 2, "securityGroups": 1}


def test_reconcile_never_undoes_what_happened_while_listing():
    q = ledger()
    q.reserve("a", "server/a/kept", {"instances": 1, "cores": 1})
    q.reserve("a", "server/a/leaked", {"instances": 1, "cores": 1})  # deleted, never released
    since = q.mark()
    # ... the recount lists the cluster; meanwhile one server is reserved, one released:
    q.reserve("a", "server/a/new", {"instances": 1, "cores": 2})
    q.reserve("a", "server/a/deleted", {"instances": 1, "cores": 1})
    q.release("server/a/deleted")
    listed = {
        "server/a/kept": {"instances": 1, "cores": 1},
        "server/a/deleted": {"instances": 1, "cores": 1},  # listed before its deletion
        "keypair/a/k": {"keyPairs": 1},  # a kind no controller reserves
    }
    assert q.reconcile("a", listed, since)
    assert set(q.holders("a")) == {"server/a/kept", "server/a/new", "keypair/a/k"}
    assert q.usage("a") == {"instances": 2, "cores": 3, "keyPairs": 1}
    # a recount that matches changes nothing
    settled = {**listed, "server/a/new": {"instances": 1, "cores": 2}}
    del settled["server/a/deleted"]
    assert not q.reconcile("a", settled, q.mark())


def test_forget_project():
    q = ledger()
    q.reserve("a", "server/a/s", {"instances": 1})
    q.forget_project("a")
    assert q.usage("a") == {} and q.limits("a") == {}


def test_a_parent_bounds_its_whole_subtree():
    """Keystone's strict-two-level model: the parent's limit caps the parent's and all its
    descendants' usage together, whatever the children's own limits."""
    q = QuotaLedger()
    q.set_limits("org", {"cores": 8})
    for child in ("team-a", "team-b"):
        q.set_limits(child, {"cores": 6})
        q.set_parent(child, "org")
    q.set_limits("squad", {"cores": 100})
    q.set_parent("squad", "team-a")  # a grandchild: bound by team-a and by org
    q.reserve("team-a", "server/team-a/one", {"cores": 4})
    q.reserve("squad", "server/squad/one", {"cores": 2})
    with pytest.raises(QuotaExceeded) as err:  # team-a's own 6, over its subtree (4 + 2 used)
        q.reserve("squad", "server/squad/two", {"cores": 1})
    assert err.value.bound_by == "team-a"
    with pytest.raises(QuotaExceeded) as err:  # team-b's own 6 would fit; org's 8 does not
        q.reserve("team-b", "server/team-b/one", {"cores": 3})
    assert str(err.value) == ("Quota exceeded for cores: Requested 3, but already used 6 of 8 cores "
                              "(the limit of parent project org, for it and its children)")
    assert is_quota_message(str(err.value)) and q.holds("server/team-b/one") is None
    q.reserve("team-b", "server/team-b/one", {"cores": 2})  # fits exactly
    assert q.usage("team-b") == {"cores": 2}
    # a child's own limit is still its own (message without a parent)
    with pytest.raises(QuotaExceeded) as err:
        q.reserve("team-b", "server/team-b/big", {"cores": 7})
    assert err.value.bound_by is None
    # leaving the hierarchy lifts the parent's bound
    q.release("server/team-a/one")
    q.set_parent("team-b", None)
    q.reserve("team-b", "server/team-b/two", {"cores": 4})


def test_a_parent_cycle_does_not_hang():
    q = QuotaLedger()
    q.set_parent("a", "b")
    q.set_parent("b", "a")
    q.set_limits("b", {"cores": 1})
    with pytest.raises(QuotaExceeded):
        q.reserve("a", "server/a/x", {"cores": 2})


def test_room_freed_is_announced_and_a_growing_reservation_is_not():
    q = ledger()
    calls: list[int] = []
    q.on_room_freed(lambda: calls.append(1))
    q.reserve("a", "server/a/x", {"instances": 1, "cores": 4})
    q.reserve("a", "server/a/x", {"instances": 1, "cores": 6})  # a resize up frees nothing
    q.release("server/a/nothing")  # held nothing
    assert calls == []
    q.reserve("a", "server/a/x", {"instances": 1, "cores": 2})  # a resize down
    assert len(calls) == 1
    q.release("server/a/x")
    assert len(calls) == 2
    q.set_limits("a", {"cores": 20})
    q.forget_project("a")
    assert len(calls) == 4


def test_a_recount_leaves_the_holding_of_an_object_shown_refused_alone():
    # a refused server retried and admitted: its listed status still shows the refusal
    q = ledger(instances=1)
    q.reserve("a", "server/a/x", {"instances": 1})
    since = q.mark()
    q.reconcile("a", {}, since, undecided={"server/a/x"})
    assert q.holds("server/a/x") == {"instances": 1}
    with pytest.raises(QuotaExceeded):
        q.reserve("a", "server/a/y", {"instances": 1})
    q.reconcile("a", {}, since)  # once its status is current, the count decides again
    assert q.holds("server/a/x") is None


def test_a_recount_listing_a_new_object_does_not_admit_it_before_its_controller_does():
    from kubestack.identity.usage import count, undecided

    q = QuotaLedger()
    q.set_limits("a", {"volumes": 1})
    q.reserve("a", "volume/a/one", {"volumes": 1, "gigabytes": 2})
    listed = {"volumes": [
        {"metadata": {"name": "one", "namespace": "a"}, "spec": {"size": 2}, "status": {"pvc": "one-volume"}},
        {"metadata": {"name": "two", "namespace": "a"}, "spec": {"size": 2}},  # just created
    ]}
    since = q.mark()
    _usage, holders = count(listed, {})
    q.reconcile("a", holders, since, undecided=undecided(listed))
    with pytest.raises(QuotaExceeded):  # counted as a holder, it would have passed as a no-op
        q.reserve("a", "volume/a/two", {"volumes": 1, "gigabytes": 2})
