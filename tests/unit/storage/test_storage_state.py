"""Glance and Cinder states read off DataVolumes, PVCs, Servers and VMs (pure)."""

from __future__ import annotations

import pytest

from kubestack.storage import refs, state

pytestmark = pytest.mark.unit


def dv(phase, progress=None, message=None, name="cirros-image"):
    status = {"phase": phase, "claimName": name}
    if progress:
        status["progress"] = progress
    if message:
        status["conditions"] = [{"type": "Running", "status": "False", "reason": "Error", "message": message}]
    return {"metadata": {"name": name, "namespace": "a"}, "status": status,
            "spec": {"storage": {"resources": {"requests": {"storage": "1Gi"}}}}}


def pvc(request="1Gi", capacity="1Gi", name="data-volume", phase="Bound"):
    return {"metadata": {"name": name}, "spec": {"resources": {"requests": {"storage": request}},
                                                 "storageClassName": "standard"},
            "status": {"phase": phase, "capacity": {"storage": capacity}}}


def test_image_states_follow_the_data_volume():
    assert state.image_status(None, None)["status"] == "queued"
    assert state.image_status(dv("ImportScheduled", "N/A"), None)["status"] == "queued"
    s = state.image_status(dv("ImportInProgress", "45.20%"), None)
    assert (s["status"], s["progress"]) == ("importing", "45.20%")
    assert state.image_status(dv("UploadReady"), None)["status"] == "uploading"
    s = state.image_status(dv("Succeeded", "100.0%"), pvc(capacity="2Gi", name="cirros-image"))
    assert (s["status"], s["size"], s["pvc"]) == ("active", 2 * 1024**3, "cirros-image")
    s = state.image_status(dv("Failed", message="no such host"), None)
    assert (s["status"], s["reason"]) == ("killed", "no such host")
    s = state.image_status(dv("CloneScheduled", message="source PVC a/x not found"), None)
    assert s["status"] == "queued"


def server(name, *, boot_volume=None, data=(), deleting=False, vm=None):
    spec = {"flavor": "m1"}
    if boot_volume:
        spec["bootVolume"] = {"volume": boot_volume}
    else:
        spec["image"] = "cirros"
    spec["blockDeviceMapping"] = [{"sourceType": "volume", "name": d, "destinationType": "volume"}
                                  for d in data]
    meta = {"name": name, "namespace": "b"}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    out = {"metadata": meta, "spec": spec}
    if vm:
        out["status"] = {"virtualMachine": vm}
    return out


def vm(name, claims, hot=True):
    return {"metadata": {"name": name}, "spec": {"template": {"spec": {"volumes": [
        {"name": f"vol-{c}", "persistentVolumeClaim": {"claimName": c, **({"hotpluggable": True} if hot else {})}}
        for c in claims]}}}}


def vmi(name, claims, ready=(), phase="Running"):
    return {"metadata": {"name": name},
            "spec": {"volumes": [{"name": f"vol-{c}", "persistentVolumeClaim": {"claimName": c}} for c in claims]},
            "status": {"phase": phase, "volumeStatus": [
                {"name": f"vol-{c}", "target": "sda", "phase": "Ready" if c in ready else "Pending"}
                for c in claims]}}


def test_attachment_states():
    servers = [server("web", data=["data"])]
    # referenced, no VM yet: reserved
    att = state.attachments("data", servers, {}, {})
    assert (att.state, att.servers) == ("reserved", ["web"])
    # in the VM, the VMI has not attached it yet: attaching (hotplug)
    att = state.attachments("data", servers, {"web": vm("web", ["data-volume"])},
                            {"web": vmi("web", ["data-volume"])})
    assert att.state == "attaching" and att.entries[0]["hotplugged"] is True
    # hotplugged and ready: in-use, with the guest's device
    att = state.attachments("data", servers, {"web": vm("web", ["data-volume"])},
                            {"web": vmi("web", ["data-volume"], ready=["data-volume"])}, now="T")
    assert att.state == "in-use"
    assert att.entries == [{"server": "web", "hotplugged": True, "device": "/dev/sda", "attachedAt": "T"}]
    assert att.attached_to() == "Attached to web on /dev/sda"
    # in the VM template only, the running guest does not have it: at the next restart
    att = state.attachments("data", servers, {"web": vm("web", ["data-volume"], hot=False)},
                            {"web": vmi("web", [])})
    assert att.state == "attaching" and att.entries[0]["hotplugged"] is False
    assert "(at next restart)" in att.attached_to()
    # stopped server: still in-use; a guest still starting: attaching
    att = state.attachments("data", servers, {"web": vm("web", ["data-volume"])}, {})
    assert att.state == "in-use"
    starting = vm("web", ["data-volume"])
    starting["spec"]["runStrategy"] = "Always"
    assert state.attachments("data", servers, {"web": starting}, {}).state == "attaching"
    att = state.attachments("data", servers, {"web": vm("web", ["data-volume"])},
                            {"web": vmi("web", ["data-volume"], phase="Scheduling")})
    assert att.state == "attaching"
    # the server dropped it but its VM still holds it: detaching
    att = state.attachments("data", [server("web")], {"web": vm("web", ["data-volume"])}, {})
    assert (att.state, att.servers) == ("detaching", ["web"])
    # a server being deleted whose VM is gone holds nothing
    assert state.attachments("data", [server("web", data=["data"], deleting=True)], {}, {}).state is None
    # attachedAt is kept from the previous status
    att = state.attachments("data", servers, {"web": vm("web", ["data-volume"])},
                            {"web": vmi("web", ["data-volume"], ready=["data-volume"])},
                            previous=[{"server": "web", "attachedAt": "EARLIER"}], now="T")
    assert att.entries[0]["attachedAt"] == "EARLIER"


def volume(size=1, **spec):
    return {"metadata": {"name": "data", "namespace": "b"}, "spec": {"size": size, **spec}}


def test_volume_states():
    none = state.Attachments()
    assert state.volume_status(volume(), None, None, none)["status"] == "creating"
    s = state.volume_status(volume(), dv("CloneScheduled", name="data-volume"), None, none)
    assert s["status"] == "creating"
    s = state.volume_status(volume(source={"image": "cirros"}), dv("CloneInProgress", "10%", name="data-volume"),
                            None, none)
    assert (s["status"], s["bootable"]) == ("downloading", True)
    s = state.volume_status(volume(), dv("Failed", message="boom", name="data-volume"), None, none)
    assert (s["status"], s["reason"]) == ("error", "boom")
    ok = dv("Succeeded", name="data-volume")
    s = state.volume_status(volume(), ok, pvc(), none)
    assert (s["status"], s["size"], s["volumeType"], s["bootable"]) == ("available", 1, "standard", False)
    assert state.volume_status(volume(size=2), ok, pvc(), none)["status"] == "extending"
    assert state.volume_status(volume(size=2), ok, pvc("2Gi", "1Gi"), none)["status"] == "extending"
    assert state.volume_status(volume(size=2), ok, pvc("2Gi", "2Gi"), none)["status"] == "available"
    att = state.Attachments(entries=[{"server": "web"}], state="in-use")
    s = state.volume_status(volume(), ok, pvc(), att)
    assert (s["status"], s["attachedTo"]) == ("in-use", "Attached to web")


def test_server_references():
    srv = {"metadata": {"name": "web", "namespace": "b"}, "spec": {
        "flavor": "m1", "bootVolume": {"image": "a/cirros", "size": 3, "deleteOnTermination": True},
        "blockDeviceMapping": [
            {"sourceType": "volume", "name": "data", "deviceName": "vdb"},
            {"sourceType": "blank", "volumeSize": 1},
            {"sourceType": "image", "name": "fedora", "volumeSize": 5, "bootIndex": -1},
            {"sourceType": "blank", "destinationType": "local", "volumeSize": 1},
        ]}}
    uses = refs.server_volume_uses(srv)
    assert [(u.volume, u.boot, u.device) for u in uses] == [
        ("web-boot", True, "/dev/vda"), ("data", False, "/dev/vdb"), ("web-bdm1", False, None),
        ("web-bdm2", False, None)]
    assert uses[0].created_for_server and uses[0].delete_on_termination
    assert refs.server_image_refs(srv) == {("a", "cirros"), ("b", "fedora")}
    assert refs.server_uses_image(srv, "a", "cirros") and not refs.server_uses_image(srv, "b", "cirros")


@pytest.mark.parametrize("visibility, members, ns, visible", [
    ("private", [], "a", True), ("private", [], "b", False), ("public", [], "b", True),
    ("community", [], "b", True), ("shared", ["b"], "b", True), ("shared", ["c"], "b", False),
])
def test_image_visibility(visibility, members, ns, visible):
    img = {"metadata": {"name": "cirros", "namespace": "a"},
           "spec": {"visibility": visibility, "members": members}}
    assert refs.image_visible_to(img, ns) is visible
    if not visible:
        assert "cirros" in refs.image_invisible_reason(img, ns)
