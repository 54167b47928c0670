"""The pure compute pieces: the VirtualMachine renderer, user data, Nova states."""

from __future__ import annotations

import email

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from kubestack.api.server import DesiredPowerState, FlavorSnapshot, PowerState, ServerState
from kubestack.compute import cloudinit, state
from kubestack.compute.render import (
    INLINE_CLOUD_INIT_MAX, POD_NETWORK, Interface, VMInputs, container_disk, interfaces_of, needs_cloud_init_secret,
    network_data_of, render_vm,
)
from support.schemas import assert_valid, validate

OWNER = {"apiVersion": "kubestack.io/v1alpha1", "kind": "Server", "name": "web", "uid": "u-1",
         "controller": True, "blockOwnerDeletion": True}


def inputs(**kw) -> VMInputs:
    base = dict(name="web", namespace="demo", owner=OWNER, host="compute-1",
                flavor=FlavorSnapshot(name="m1.small", vcpus=2, ram=2048, disk=20),
                hostname="web", running=True, disks=[container_disk("quay.io/kubevirt/cirros")],
                user_data="#cloud-config\n{}\n")
    base.update(kw)
    return VMInputs(**base)


def test_vm_is_pinned_sized_and_valid_for_kubevirt():
    vm = render_vm(inputs())
    assert_valid(vm)
    spec = vm["spec"]["template"]["spec"]
    assert vm["spec"]["runStrategy"] == "Always"
    assert spec["nodeSelector"] == {"kubernetes.io/hostname": "compute-1"}
    assert spec["domain"]["cpu"] == {"sockets": 1, "cores": 2, "threads": 1}
    assert spec["domain"]["memory"] == {"guest": "2048Mi"}
    assert spec["networks"] == [{"name": "default", "pod": {}}]
    assert vm["metadata"]["ownerReferences"] == [OWNER]
    assert [d["name"] for d in spec["domain"]["devices"]["disks"]] == ["rootdisk", "cloudinitdisk"]


def test_flavor_extra_specs_map_to_kubevirt():
    flavor = FlavorSnapshot(name="pinned", vcpus=8, ram=8192, ephemeral=10, swap=512, extra_specs={
        "hw:cpu_policy": "dedicated", "hw:cpu_sockets": "2", "hw:mem_page_size": "1GB"})
    vm = render_vm(inputs(flavor=flavor, running=False))
    assert_valid(vm)
    spec = vm["spec"]["template"]["spec"]
    assert vm["spec"]["runStrategy"] == "Halted"
    assert spec["domain"]["cpu"] == {"sockets": 2, "cores": 4, "threads": 1, "dedicatedCpuPlacement": True}
    assert spec["domain"]["memory"]["hugepages"] == {"pageSize": "1Gi"}
    vols = {v["name"]: v for v in spec["volumes"]}
    assert vols["ephemeral0"]["emptyDisk"] == {"capacity": "10Gi"}
    assert vols["swap"]["emptyDisk"] == {"capacity": "512Mi"}


def test_tenant_interfaces_round_trip_through_the_vm():
    nic = Interface(name="net0", nad="demo/private", mac="fa:16:3e:00:00:01", ips=("10.0.0.5/24",),
                    network="private")
    vm = render_vm(inputs(interfaces=[POD_NETWORK, nic], network_data="version: 2\n"))
    assert_valid(vm)
    assert interfaces_of(vm) == [POD_NETWORK, nic]
    assert network_data_of(vm) == "version: 2\n"


def test_big_user_data_goes_through_a_secret():
    big = "#!/bin/sh\n" + "echo x\n" * 600
    assert needs_cloud_init_secret(big, None) and len(big) > INLINE_CLOUD_INIT_MAX
    vm = render_vm(inputs(user_data=big, cloud_init_secret="web-cloudinit"))
    cloud = next(v for v in vm["spec"]["template"]["spec"]["volumes"] if v["name"] == "cloudinitdisk")
    assert cloud["cloudInitNoCloud"] == {"secretRef": {"name": "web-cloudinit"}}


def test_a_misspelled_field_would_be_caught():
    vm = render_vm(inputs())
    vm["spec"]["template"]["spec"]["domain"]["cpuu"] = {}
    assert any("cpuu" in e for e in validate(vm))


def test_user_data_cloud_config_gets_keys_and_hostname_merged():
    out = cloudinit.user_data("#cloud-config\npackages: [nginx]\nssh_authorized_keys: [ssh-rsa OLD]\n",
                              hostname="web", public_keys=["ssh-ed25519 NEW"])
    assert out.startswith("#cloud-config\n")
    doc = yaml.safe_load(out)
    assert doc["packages"] == ["nginx"]
    assert doc["ssh_authorized_keys"] == ["ssh-rsa OLD", "ssh-ed25519 NEW"]
    assert doc["hostname"] == "web"


def test_user_data_script_becomes_multipart_with_the_key():
    out = cloudinit.user_data("#!/bin/sh\necho hi\n", hostname="web", public_keys=["ssh-ed25519 K"])
    parts = [p for p in email.message_from_string(out).walk() if not p.is_multipart()]
    assert [p.get_content_type() for p in parts] == ["text/cloud-config", "text/x-shellscript"]
    assert "ssh-ed25519 K" in parts[0].get_payload()
    assert parts[1].get_payload() == "#!/bin/sh\necho hi\n"


@settings(max_examples=50)
@given(st.text(max_size=200), st.lists(st.text(alphabet="abcdef ", min_size=1, max_size=20), max_size=3))
def test_user_data_never_loses_the_users_text(text, keys):
    out = cloudinit.user_data(text, hostname="h", public_keys=keys)
    if text.strip() and not text.lstrip().startswith(("#cloud-config", "Content-Type: multipart/")):
        part = email.message_from_string(out).get_payload()[1]
        assert part.get_payload(decode=True).decode() == text  # MIME may base64 it; cloud-init decodes


def _vmi(phase, paused=False, suspended=False):
    return {"metadata": {"annotations": {"kubestack.io/suspended": "true"} if suspended else {}},
            "status": {"phase": phase, "conditions": [{"type": "Paused", "status": "True"}] if paused else []}}


@pytest.mark.parametrize("desired,vmi,launched,expected", [
    (DesiredPowerState.RUNNING, _vmi("Scheduling"), False, (ServerState.BUILD, PowerState.NOSTATE, "spawning")),
    (DesiredPowerState.RUNNING, _vmi("Running"), False, (ServerState.ACTIVE, PowerState.RUNNING, None)),
    (DesiredPowerState.STOPPED, _vmi("Running"), True, (ServerState.ACTIVE, PowerState.RUNNING, "powering-off")),
    (DesiredPowerState.STOPPED, None, True, (ServerState.SHUTOFF, PowerState.SHUTDOWN, None)),
    (DesiredPowerState.RUNNING, None, True, (ServerState.SHUTOFF, PowerState.SHUTDOWN, "powering-on")),
    (DesiredPowerState.PAUSED, _vmi("Running", paused=True), True, (ServerState.PAUSED, PowerState.PAUSED, None)),
    (DesiredPowerState.SUSPENDED, _vmi("Running", paused=True, suspended=True), True,
     (ServerState.SUSPENDED, PowerState.SUSPENDED, None)),
    (DesiredPowerState.RUNNING, _vmi("Failed"), True, (ServerState.ERROR, PowerState.CRASHED, None)),
])
def test_nova_state_from_the_vmi(desired, vmi, launched, expected):
    vm = {"status": {}}
    seen = state.observe(desired, vm, vmi, launched=launched)
    assert (seen.status, seen.power_state, seen.task_state) == expected


def test_multipart_user_data_is_stable_across_renders():
    """A re-render must not change the VM (a random MIME boundary would restart the guest)."""
    a = cloudinit.user_data("#!/bin/sh\necho hi\n", hostname="web", public_keys=["ssh-ed25519 K"])
    b = cloudinit.user_data("#!/bin/sh\necho hi\n", hostname="web", public_keys=["ssh-ed25519 K"])
    assert a == b
    assert a != cloudinit.user_data("#!/bin/sh\necho ho\n", hostname="web", public_keys=["ssh-ed25519 K"])
