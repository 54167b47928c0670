"""What failures and timeouts say and do to a stack's rows; which errors may go away by
themselves; which existing objects are a stack's own."""

import pytest

from kubestack.orchestration import load_stack
from kubestack.orchestration import realize as rz
from kubestack.orchestration.errors import HeatError, InvalidParameter, PropertyError
from kubestack.orchestration.lifecycle import (abort_in_progress, age_seconds, resource_failed, resource_row,
                                               result_row, timed_out, unfinished, wait_condition_timeout,
                                               waiting_row)

from .helpers import server, tmpl

ROWS = [
    {"name": "sg", "type": "OS::Neutron::SecurityGroup", "status": "CREATE_COMPLETE", "statusReason": "state changed"},
    {"name": "ready", "type": "OS::Heat::WaitCondition", "status": "CREATE_IN_PROGRESS",
     "statusReason": "waiting for 1 signal(s) on handle"},
    {"name": "web", "type": "OS::Nova::Server", "status": "CREATE_IN_PROGRESS", "statusReason": "server BUILD"},
    {"name": "after", "type": "OS::Neutron::SecurityGroup", "status": "INIT_COMPLETE",
     "statusReason": "waiting for ready"},
]


def test_rows_of_a_pass():
    stack = load_stack(tmpl(resources={
        "sg": {"type": "OS::Neutron::SecurityGroup"},
        "web": server(security_groups=[{"get_resource": "sg"}]),
        "rg": {"type": "OS::Heat::ResourceGroup", "properties": {"count": 1, "resource_def": server()}},
        "h": {"type": "OS::Heat::WaitConditionHandle"}}), stack_name="shop")
    web = resource_row(stack, "web")
    assert web == {"name": "web", "type": "OS::Nova::Server", "kind": "Server", "objectName": "shop-web",
                   "dependsOn": ["sg"]}
    assert resource_row(stack, "rg")["kind"] == "Server" and resource_row(stack, "rg")["objectName"] is None
    assert resource_row(stack, "h")["kind"] is None
    # a waiting resource: not begun, or as it was when an update has not come to it yet
    assert waiting_row(web, {}, "UPDATE", ["sg"]) == {**web, "status": "INIT_COMPLETE", "statusReason": "waiting for sg"}
    done = {"status": "CREATE_COMPLETE"}
    assert waiting_row(web, done, "UPDATE", ["sg"])["status"] == "CREATE_COMPLETE"
    assert waiting_row(web, done, "CREATE", ["sg"])["status"] == "INIT_COMPLETE"
    assert waiting_row(web, {"status": "UPDATE_FAILED"}, "UPDATE", ["sg"])["status"] == "INIT_COMPLETE"
    assert result_row(web, "UPDATE", rz.COMPLETE, "") == {**web, "status": "UPDATE_COMPLETE",
                                                          "statusReason": "state changed"}
    assert result_row(web, "CREATE", rz.IN_PROGRESS, "")["statusReason"] == ""
    failed = result_row(web, "CREATE", rz.FAILED, "no host")
    assert (failed["status"], failed["statusReason"]) == ("CREATE_FAILED", "no host")
    assert resource_failed("CREATE", web, "no host") == 'Resource CREATE failed: OS::Nova::Server "web": no host'


def test_age_seconds():
    assert age_seconds(None) == 0.0 and age_seconds("") == 0.0
    assert age_seconds("2000-01-01T00:00:00Z") > 24 * 3600 * 365 * 20


def test_timed_out_names_what_was_still_going():
    assert timed_out("CREATE", 1, ROWS) == (
        'Create timed out after 1 minute: still in progress: OS::Heat::WaitCondition "ready" '
        '(waiting for 1 signal(s) on handle); OS::Nova::Server "web" (server BUILD)')
    assert timed_out("UPDATE", 60, ROWS[:1]) == "Update timed out after 60 minutes"
    assert timed_out("ROLLBACK", 2, ROWS[:1], removing=["Server b", "Server a"]) == (
        "Rollback timed out after 2 minutes: still removing Server a, Server b")


def test_abort_in_progress_settles_only_the_rows_in_progress():
    rows = abort_in_progress(ROWS, "CREATE", "CREATE aborted (timed out)")
    assert [r["status"] for r in rows] == ["CREATE_COMPLETE", "CREATE_FAILED", "CREATE_FAILED", "INIT_COMPLETE"]
    assert rows[1]["statusReason"] == "CREATE aborted (timed out)"
    assert rows[0] == ROWS[0] and rows[3] == ROWS[3]
    assert ROWS[1]["status"] == "CREATE_IN_PROGRESS"  # the input is left as it was


def test_wait_condition_timeout_wording():
    assert wait_condition_timeout([], 1) == "WaitConditionTimeout: 0 of 1 received"
    assert wait_condition_timeout(["booted", "db up"], 3) == "WaitConditionTimeout: 2 of 3 received - booted;db up"


def test_lookups_that_fail_are_marked_missing_and_template_errors_are_not():
    t = tmpl(parameters={"img": {"type": "string", "constraints": [{"custom_constraint": "glance.image"}]}},
             resources={"vm": server(image={"get_param": "img"}), "other": server(image="cirros", flavor="nosuch")})
    with pytest.raises(InvalidParameter) as e:
        load_stack(t, {"img": "ubuntu"}, exists=lambda kind, name: False)
    assert e.value.missing
    with pytest.raises(PropertyError) as e:
        load_stack(t, {"img": "ubuntu"}, exists=lambda kind, name: name != "nosuch")
    assert e.value.missing and "The Flavor (nosuch) could not be found." in str(e.value)
    # a mistake in the template itself stays a mistake
    with pytest.raises(HeatError) as e:
        load_stack(tmpl(resources={"vm": server(flavor=None)}), exists=lambda kind, name: True)
    assert not e.value.missing
    bad_range = tmpl(parameters={"n": {"type": "number", "constraints": [{"range": {"max": 3}}]}})
    with pytest.raises(InvalidParameter) as e:
        load_stack(bad_range, {"n": 5})
    assert not e.value.missing


CTX = rz.Context(namespace="demo", stack="shop", owner={"apiVersion": "kubestack.io/v1alpha1", "kind": "Stack",
                                                         "name": "shop", "uid": "u1"})


def _obj(labels=None, owners=(), namespace="demo"):
    meta = {"name": "shop-sg", "labels": labels or {}, "ownerReferences": [{"uid": u} for u in owners]}
    if namespace:
        meta["namespace"] = namespace
    return {"metadata": meta}


def test_belongs_to_only_the_stack_that_made_it():
    mine = {rz.STACK_LABEL: "shop", rz.STACK_NAMESPACE_LABEL: "demo", rz.RESOURCE_LABEL: "sg"}
    assert rz.belongs_to(_obj(mine, ["u1"]), CTX)
    assert not rz.belongs_to(_obj({}, []), CTX)                       # a user's object of that name
    assert not rz.belongs_to(_obj(mine, ["u0"]), CTX)                 # an earlier stack of the same name
    assert not rz.belongs_to(_obj({**mine, rz.STACK_LABEL: "other"}, ["u1"]), CTX)
    # cluster-scoped children (flavors) have no owner: their labels say whose they are
    assert rz.belongs_to(_obj(mine, [], namespace=None), CTX)
    assert not rz.belongs_to(_obj({**mine, rz.STACK_NAMESPACE_LABEL: "other"}, [], namespace=None), CTX)


def test_unfinished_resources_are_those_not_complete():
    rows = [{"name": "a", "status": "CREATE_COMPLETE"}, {"name": "b", "status": "UPDATE_IN_PROGRESS"},
            {"name": "c", "status": "INIT_COMPLETE"}, {"name": "d", "status": "UPDATE_FAILED"},
            {"name": "e", "status": "ROLLBACK_COMPLETE"}]
    assert unfinished(rows) == {"b", "c", "d"}
