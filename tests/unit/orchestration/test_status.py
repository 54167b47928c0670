"""A Stack's status: stackStatus and the Ready condition, what is masked in parameters and
outputs, and the Event a new stackStatus posts."""

from kubestack.orchestration import load_stack
from kubestack.orchestration.realize import MASK
from kubestack.orchestration.status import (input_parameters, outputs, parameters, state_secret_name, status_for,
                                            transition_event)

from .helpers import tmpl

BODY = {"metadata": {"name": "shop", "namespace": "demo", "generation": 3}}
SECRET = "secret: derived from a hidden parameter or a generated secret"


def _ready(status: dict) -> dict:
    return next(c for c in status["conditions"] if c["type"] == "Ready")


def test_status_for_a_completed_create():
    st = status_for(BODY, "CREATE", "COMPLETE", "Stack CREATE completed successfully", rows=[], outputs=[],
                    params={"a": "1"})
    assert st["stackStatus"] == "CREATE_COMPLETE" and st["observedGeneration"] == 3
    assert st["stateSecret"] == state_secret_name("shop") == "shop-stack-state"
    assert (st["resources"], st["outputs"], st["parameters"]) == ([], [], {"a": "1"})
    assert st["creationTime"] and "updatedTime" not in st
    ready = _ready(st)
    assert (ready["status"], ready["reason"], ready["observedGeneration"]) == ("True", "CreateComplete", 3)


def test_status_for_leaves_out_what_it_is_not_given_and_keeps_the_creation_time():
    body = {**BODY, "status": {"stackStatus": "UPDATE_IN_PROGRESS", "creationTime": "2024-01-01T00:00:00Z"}}
    st = status_for(body, "ROLLBACK", "COMPLETE", "x" * 5000)
    assert not {"resources", "outputs", "parameters"} & set(st)
    assert st["creationTime"] == "2024-01-01T00:00:00Z" and st["updatedTime"]
    assert len(st["stackStatusReason"]) == 4096 and len(_ready(st)["message"]) == 1024
    # a rolled back stack is not what its spec asks for
    assert _ready(st)["status"] == "False"
    same = {**BODY, "status": {"stackStatus": "UPDATE_IN_PROGRESS"}}
    assert "updatedTime" not in status_for(same, "UPDATE", "IN_PROGRESS", "")


def test_a_failed_or_rolled_back_stack_is_stalled_for_kstatus_until_it_progresses():
    def stalled(st):
        return next(((c["status"], c["reason"]) for c in st["conditions"] if c["type"] == "Stalled"), None)

    failed = status_for(BODY, "CREATE", "FAILED", "Resource CREATE failed: web: no valid host")
    assert stalled(failed) == ("True", "CreateFailed")
    assert stalled(status_for(BODY, "ROLLBACK", "COMPLETE", "rolled back")) == ("True", "RollbackComplete")
    for action, result in (("CREATE", "IN_PROGRESS"), ("UPDATE", "COMPLETE"), ("ROLLBACK", "IN_PROGRESS")):
        assert stalled(status_for({**BODY, "status": failed}, action, result, "")) is None, (action, result)


def test_transition_event_on_each_new_stack_status():
    assert transition_event({"stackStatus": "CREATE_IN_PROGRESS"}, {"stackStatus": "CREATE_IN_PROGRESS"}) is None
    assert transition_event({}, {"stackStatus": "CREATE_COMPLETE", "stackStatusReason": "done"}) == (
        "Normal", "CreateComplete", "Stack CREATE_COMPLETE: done")
    assert transition_event({}, {"stackStatus": "UPDATE_FAILED", "stackStatusReason": ""}) == (
        "Warning", "UpdateFailed", "Stack UPDATE_FAILED")


TEMPLATE = tmpl(
    parameters={"pw": {"type": "string", "hidden": True}, "n": {"type": "number", "default": 2},
                "names": {"type": "comma_delimited_list", "default": "a,b"}},
    resources={"r": {"type": "OS::Heat::RandomString"}},
    outputs={"pw": {"value": {"get_param": "pw"}},
             "joined": {"value": {"list_join": ["-", [{"get_param": "pw"}, "x"]]}},
             "generated": {"value": {"get_attr": ["r", "value"]}, "description": "made here"},
             "n": {"value": {"get_param": "n"}, "description": "a number"}})


def test_parameters_mask_hidden_ones():
    stack = load_stack(TEMPLATE, {"pw": "s3cret"}, stack_name="st")
    assert parameters(stack) == {"pw": MASK, "n": "2", "names": '["a", "b"]'}
    assert input_parameters({"template": TEMPLATE, "parameters": {"pw": "s3cret", "n": 3}}) == {"pw": MASK, "n": "3"}
    assert input_parameters(None) is None
    # a template that does not parse cannot say which are hidden: all are masked
    assert input_parameters({"template": "resources: [", "parameters": {"pw": "s3cret", "n": 3}}) \
        == {"pw": MASK, "n": MASK}


def test_outputs_mask_what_comes_from_a_hidden_parameter_or_a_secret_attribute():
    stack = load_stack(TEMPLATE, {"pw": "s3cret"}, stack_name="st")
    out = outputs(stack, {"r": {"value": "abc"}}, {("r", "value")})
    assert out == [{"key": "pw", "value": MASK, "error": SECRET},
                   {"key": "joined", "value": MASK, "error": SECRET},
                   {"key": "generated", "description": "made here", "value": MASK, "error": SECRET},
                   {"key": "n", "description": "a number", "value": 2}]
    # a generated value not marked secret is shown
    assert outputs(stack, {"r": {"value": "abc"}}, set())[2] == {"key": "generated", "description": "made here",
                                                                 "value": "abc"}
