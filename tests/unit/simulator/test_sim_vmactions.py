"""The VM action adapter: virt-api's admission rules, the subresource paths and verbs of a real
cluster, and the request annotations the simulator executes."""

from __future__ import annotations

import json

import pytest

from kubestack.compute import vmactions
from kubestack.compute.vmactions import Backend, VMActionError, VMActions, validate_action
from kubestack.k8s.rest import ApiError


def running_vmi(paused=False):
    conds = [{"type": "Ready", "status": "True"}]
    if paused:
        conds.append({"type": "Paused", "status": "True", "reason": "PausedByUser"})
    return {"metadata": {"name": "web", "namespace": "p1", "uid": "u1"}, "status": {"phase": "Running", "conditions": conds}}


def a_vm(strategy="Always", volumes=None):
    return {"metadata": {"name": "web", "namespace": "p1"},
            "spec": {"runStrategy": strategy, "template": {"spec": {"volumes": volumes or [
                {"name": "root", "containerDisk": {"image": "x"}},
                {"name": "hp", "persistentVolumeClaim": {"claimName": "hp", "hotpluggable": True}}]}}}}


class FakeApi:
    """Records requests made through api_request; serves a VM and a VMI."""

    def __init__(self, vm=None, vmi=None, fail_put=None):
        self.objects = {"virtualmachines": vm, "virtualmachineinstances": vmi}
        self.calls = []
        self.fail_put = fail_put

    def request(self, api, method, path, *, query=None, body=None, content_type="application/json", **_):
        self.calls.append((method, path, body, content_type))
        if method == "GET":
            plural = path.split("/")[-2]
            obj = self.objects.get(plural)
            if obj is None:
                raise ApiError(404, "not found", "NotFound")
            return obj
        if method == "PUT" and self.fail_put:
            raise ApiError(*self.fail_put)
        return {}


@pytest.fixture
def fake(monkeypatch):
    holder = {}

    def install(**kw):
        api = FakeApi(**kw)
        monkeypatch.setattr(vmactions, "api_request", api.request)
        holder["api"] = api
        return api
    return install


@pytest.mark.parametrize("action,method_name,path", [
    ("pause", "pause", "virtualmachineinstances/web/pause"),
    ("softreboot", "soft_reboot", "virtualmachineinstances/web/softreboot"),
    ("restart", "restart", "virtualmachines/web/restart"),
    ("stop", "stop", "virtualmachines/web/stop"),
])
def test_subresource_backend_puts_to_virt_api(fake, action, method_name, path):
    api = fake(vm=a_vm(), vmi=running_vmi())
    getattr(VMActions(object(), Backend.SUBRESOURCE), method_name)("p1", "web")
    method, url, body, _ = api.calls[-1]
    assert method == "PUT"
    assert url == f"/apis/subresources.kubevirt.io/v1/namespaces/p1/{path}"


def test_subresource_addvolume_body(fake):
    api = fake(vm=a_vm(), vmi=running_vmi())
    VMActions(object(), "subresource").add_volume("p1", "web", "data", claim_name="vol-1", serial="abc")
    method, url, body, _ = api.calls[-1]
    assert url.endswith("/virtualmachines/web/addvolume")
    assert body == {"name": "data", "disk": {"name": "data", "disk": {"bus": "scsi"}, "serial": "abc"},
                    "volumeSource": {"persistentVolumeClaim": {"claimName": "vol-1", "hotpluggable": True}}}


def test_subresource_refusal_becomes_vm_action_error(fake):
    fake(vm=a_vm(), vmi=running_vmi(), fail_put=(409, "Operation cannot be fulfilled", "Conflict"))
    with pytest.raises(VMActionError) as info:
        VMActions(object(), Backend.SUBRESOURCE).pause("p1", "web")
    assert info.value.status == 409


def test_simulator_backend_writes_a_request_annotation(fake):
    api = fake(vm=a_vm(), vmi=running_vmi())
    rid = VMActions(object(), Backend.SIMULATOR).pause("p1", "web")
    method, url, body, ctype = api.calls[-1]
    assert (method, ctype) == ("PATCH", "application/merge-patch+json")
    assert url == "/apis/kubevirt.io/v1/namespaces/p1/virtualmachineinstances/web"
    request = json.loads(body["metadata"]["annotations"]["simulator.kubestack.io/request"])
    assert request == {"action": "pause", "id": rid}


def test_simulator_backend_vm_actions_go_on_the_vm(fake):
    api = fake(vm=a_vm(), vmi=running_vmi())
    VMActions(object(), Backend.SIMULATOR).remove_volume("p1", "web", "hp")
    method, url, body, _ = api.calls[-1]
    assert url == "/apis/kubevirt.io/v1/namespaces/p1/virtualmachines/web"
    request = json.loads(body["metadata"]["annotations"]["simulator.kubestack.io/request"])
    assert request["action"] == "removevolume" and request["options"] == {"name": "hp"}


def test_suspend_pauses_and_marks(fake):
    api = fake(vm=a_vm(), vmi=running_vmi())
    VMActions(object(), Backend.SIMULATOR).suspend("p1", "web")
    marks = [c[2]["metadata"]["annotations"] for c in api.calls if c[0] == "PATCH"]
    assert "simulator.kubestack.io/request" in marks[0]
    assert marks[1] == {"kubestack.io/suspended": "true"}


def test_missing_vm_is_404(fake):
    fake()
    with pytest.raises(VMActionError) as info:
        VMActions(object(), Backend.SIMULATOR).restart("p1", "web")
    assert info.value.status == 404


@pytest.mark.parametrize("action,vm,vmi,options,problem", [
    ("pause", a_vm(), None, None, "VMI does not exist"),
    ("pause", a_vm(), running_vmi(paused=True), None, "VMI is already paused"),
    ("unpause", a_vm(), running_vmi(), None, "VMI is not paused"),
    ("softreboot", a_vm(), running_vmi(paused=True), None, "VMI is paused"),
    ("pause", a_vm(), {"metadata": {}, "status": {"phase": "Scheduling"}}, None, "VMI is not running"),
    ("restart", a_vm("Halted"), None, None, "VM is not running"),
    ("start", a_vm("Always"), running_vmi(), None, "VM is already running"),
    ("stop", a_vm("Halted"), None, None, "VM is not running"),
    ("addvolume", a_vm(), running_vmi(), {"name": "root", "volumeSource": {"dataVolume": {"name": "d"}}},
     "already exists"),
    ("addvolume", a_vm(), running_vmi(), {"name": "new"}, "requires a persistentVolumeClaim or dataVolume"),
    ("removevolume", a_vm(), running_vmi(), {"name": "root"}, "not hotpluggable"),
    ("removevolume", a_vm(), running_vmi(), {"name": "nope"}, "does not exist"),
    ("frobnicate", a_vm(), running_vmi(), None, "unknown action"),
])
def test_validation_rules(action, vm, vmi, options, problem):
    assert problem in validate_action(action, vm, vmi, options)


@pytest.mark.parametrize("action,vm,vmi,options", [
    ("pause", a_vm(), running_vmi(), None),
    ("unpause", a_vm(), running_vmi(paused=True), None),
    ("restart", a_vm(), running_vmi(), None),
    ("start", a_vm("Halted"), None, None),
    ("stop", a_vm("Always"), running_vmi(), None),
    ("removevolume", a_vm(), running_vmi(), {"name": "hp"}),
    ("addvolume", a_vm(), running_vmi(), {"name": "d2", "volumeSource": {"dataVolume": {"name": "d2"}}}),
])
def test_allowed_actions(action, vm, vmi, options):
    assert validate_action(action, vm, vmi, options) is None
