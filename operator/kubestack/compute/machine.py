"""The KubeVirt VirtualMachine a Server becomes: its NICs (from the VM, else the network
service's ports), its disks (from the VM, else the storage service), the desired VM and its
cloud-init Secret, creating or patching the VM to match, and volume hotplug on a running
server."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import yaml

from kubestack.api.server import DesiredPowerState, FlavorSnapshot, Server, ServerState, TaskState
from kubestack.compute import cloudinit, state
from kubestack.compute.claims import forget
from kubestack.compute.context import Context, Outcome, owner_ref
from kubestack.compute.errors import error
from kubestack.compute.rebuild import rebuild_failed
from kubestack.compute.references import PORT_NOT_READY, Resolved
from kubestack.compute.render import (
    CLOUD_INIT_VOLUME, HOSTNAME_LABEL, POD_NETWORK, ROOT_DISK, Disk, Interface, VMInputs, cloud_init_secret,
    cloud_init_secret_name, disks_of, interfaces_of, is_hotplug, needs_cloud_init_secret, network_data_of,
    network_data_secret_of, render_vm,
)
from kubestack.compute.vmactions import VMActionError
from kubestack.k8s.conditions import set_condition
from kubestack.network.interfaces import network_data
from kubestack.network.ports import PortError
from kubestack.storage.disks import DiskError

log = logging.getLogger(__name__)


def _interfaces(ctx: Context, server, model: Server, vm) -> tuple[list[Interface], str | None]:
    """The guest NICs and cloud-init network data: from the existing VM (it records its
    ports' addresses), else from the network service, which allocates the ports
    (idempotent: the same server always gets the same ports, IPs and MACs back)."""
    if vm is not None:
        net_data = network_data_of(vm)
        secret = network_data_secret_of(vm)
        if net_data is None and secret is not None:
            # too big to inline: in the cloud-init Secret, which is named after its content,
            # so what it holds is what the VM was given; gone (deleted by hand), the ports
            # below give the same document again
            net_data = ctx.cluster.secret_value(model.metadata.namespace, secret, "networkdata")
        if net_data is not None or secret is None:
            return interfaces_of(vm), net_data
    if not model.spec.networks:
        return [POD_NETWORK], None
    allocated = ctx.cluster.ports(server)
    interfaces = [Interface(name=i.name, nad=i.nad, mac=i.mac, ips=tuple(i.ips), network=i.network_name)
                  for i in allocated]
    return interfaces, yaml.safe_dump(network_data(allocated), sort_keys=False)


def _disks(ctx: Context, server, model: Server, flavor: FlavorSnapshot, vm, out: Outcome) -> list[Disk] | None:
    """Root disk and attached volumes. The storage service provides them when the VM is
    new, the spec changed (boot source, block device mappings) or a rebuild is running;
    otherwise the VM's own are kept, so a steady server costs no storage lookups.
    None: not ready yet (a root disk still being cloned)."""
    st = out.status
    spec_changed = server["metadata"].get("generation") != (server.get("status") or {}).get(
        "observedGeneration")
    rebuilding = st.get("status") == ServerState.REBUILD
    if vm is not None and not spec_changed and not rebuilding:
        return disks_of(vm)
    # the storage service reads the status being written: a rebuild's new root disk name
    disks = ctx.cluster.disks({**server, "status": st}, flavor.disk)
    out.disks = disks
    if not disks.ready:
        if vm is None:
            st.update(taskState=TaskState.BLOCK_DEVICE_MAPPING)
            st["conditions"] = set_condition(st.get("conditions"), "Ready", False, "BlockDeviceMapping",
                                             disks.waiting_reason or "waiting for disks")
            out.requeue_after = 1.0
            return None
        out.requeue_after = 1.0  # a newly attached volume is still being made: attach it later
        out.pending = True
        if rebuilding:
            # the VM takes the new root disk now, though it is still being cloned: KubeVirt
            # starts no VMI before its DataVolumes are ready, so the guest cannot come back
            # on the old disk; the other devices stay as they are until they are ready
            st["rootDisk"] = disks.root_disk
            volumes = {v["name"]: v for v in disks.volumes}
            root = [Disk(d, volumes[d["name"]]) for d in disks.disks if d["name"] == ROOT_DISK]
            return root + [d for d in disks_of(vm) if d.disk["name"] != ROOT_DISK]
        return disks_of(vm)
    st["rootDisk"] = disks.root_disk
    volumes = {v["name"]: v for v in disks.volumes}
    return [Disk(d, volumes[d["name"]]) for d in disks.disks]


def _desired_vm(ctx: Context, server: dict, model: Server, resolved: Resolved, host: str,
                flavor: FlavorSnapshot, running: bool, vm, disks: list[Disk]) -> tuple[dict, dict | None]:
    ns, name = model.metadata.namespace, model.metadata.name
    keys = [resolved.public_key] if resolved.public_key else []
    hostname = model.spec.hostname or name
    user_data = cloudinit.user_data(resolved.user_data, hostname=hostname, public_keys=keys)
    interfaces, net_data = _interfaces(ctx, server, model, vm)
    secret = None
    secret_name = None
    if needs_cloud_init_secret(user_data, net_data) or _uses_cloud_init_secret(vm):
        secret_name = cloud_init_secret_name(name, user_data, net_data)
        secret = cloud_init_secret(secret_name, ns, owner_ref(server), user_data, net_data)
    desired = render_vm(VMInputs(
        name=name, namespace=ns, owner=owner_ref(server), host=host, flavor=flavor,
        hostname=hostname, running=running, disks=disks, user_data=user_data,
        network_data=net_data, cloud_init_secret=secret_name, interfaces=interfaces,
    ))
    return desired, secret


def _give_back(ctx: Context, server, out: Outcome, exc: Exception, reason: str) -> None:
    """A build step after the claim failed (ports, disks): give the host back, build
    nothing, and say why."""
    st = out.status
    forget(ctx, server)
    st.update(host=None, hypervisorHostname=None, availabilityZone=None)
    st["conditions"] = set_condition(st.get("conditions"), "Scheduled", False, reason, str(exc))
    error(out, getattr(exc, "code", 500) or 500, str(exc), reason=reason)


def ensure_vm(ctx: Context, server, model: Server, resolved: Resolved, vm, vmi, out: Outcome, *,
              rebuild_starting: bool = False) -> dict | None:
    st = out.status
    ns, name = model.metadata.namespace, model.metadata.name
    flavor = FlavorSnapshot.model_validate(st["flavor"])
    running = model.spec.power_state != DesiredPowerState.STOPPED
    try:
        disks = _disks(ctx, server, model, flavor, vm, out)
        if disks is None:
            return None
        desired, secret = _desired_vm(ctx, server, model, resolved, st["host"], flavor, running, vm, disks)
    except PortError as exc:  # Nova's "networking" step failed
        _give_back(ctx, server, out, exc, PORT_NOT_READY if exc.waiting else "PortError")
        return None
    except DiskError as exc:
        if vm is None:  # Nova's "block_device_mapping" step failed
            _give_back(ctx, server, out, exc, "BlockDeviceMappingError")
            return None
        if st.get("status") == ServerState.REBUILD:
            rebuild_failed(ctx, server, model, out, exc, rebuild_starting)
            return None
        # a bad attach on a running server: the server stays as it is, the fault says why
        error(out, 400, exc.message, reason="InvalidVolume", keep_status=True)
        return vm
    if vm is None:
        if secret is not None:
            ctx.cluster.create(secret)
        # no Event of its own: "Scheduled" and "Active" bracket the spawn, and every Event
        # is an API write on the boot path
        return ctx.cluster.create(desired)
    live = state.vmi_phase(vmi) == "Running"
    if live:
        _hotplug(ctx, ns, name, vm, desired, out)
    patch = _vm_patch(vm, desired, skip_hotplug=live)
    if patch:
        previous, wanted = _cloud_init_secret_of(vm), _cloud_init_secret_of(desired)
        if secret is not None and previous != wanted:
            ctx.cluster.create(secret)  # before the VM points to it
        vm = ctx.cluster.patch_vm(ns, name, patch)
        if previous and previous != wanted:  # the guest no longer reads it
            ctx.cluster.delete_secret(ns, previous)
    return vm


def _hotplug(ctx: Context, ns: str, name: str, vm, desired, out: Outcome) -> None:
    """Attach/detach volumes of a running server through KubeVirt's hotplug (addvolume /
    removevolume), which updates the VM and its VMI without a restart."""
    current = {d.volume["name"]: d for d in disks_of(vm) if is_hotplug(d.volume)}
    wanted = {d.volume["name"]: d for d in disks_of(desired) if is_hotplug(d.volume)}
    try:
        for vname in wanted.keys() - current.keys():
            vol, disk = wanted[vname].volume, wanted[vname].disk
            source = vol.get("persistentVolumeClaim") or {}
            ctx.actions.add_volume(ns, name, vname, claim_name=source.get("claimName"),
                                   data_volume=(vol.get("dataVolume") or {}).get("name"),
                                   bus=(disk.get("disk") or {}).get("bus", "scsi"), serial=disk.get("serial"))
            out.events.append(("Normal", "VolumeAttached", f"Attaching volume {vname}"))
        for vname in current.keys() - wanted.keys():
            ctx.actions.remove_volume(ns, name, vname)
            out.events.append(("Normal", "VolumeDetached", f"Detaching volume {vname}"))
    except VMActionError as exc:
        log.info("%s/%s: hotplug: %s (will look again)", ns, name, exc)
        out.requeue_after = 2.0


def _cloud_init_secret_of(vm: Mapping[str, Any] | None) -> str | None:
    """The Secret the VM's cloud-init volume reads, if it reads one."""
    for volume in ((((vm or {}).get("spec") or {}).get("template") or {}).get("spec") or {}).get("volumes") or []:
        if volume.get("name") == CLOUD_INIT_VOLUME:
            return ((volume.get("cloudInitNoCloud") or {}).get("secretRef") or {}).get("name")
    return None


def _uses_cloud_init_secret(vm: Mapping[str, Any] | None) -> bool:
    return _cloud_init_secret_of(vm) is not None


def pin(host: str) -> dict:
    """The VM patch that points its template at `host` (KubeVirt's LiveUpdate rollout carries
    it to the running VMI; a migration or restart then lands there)."""
    return {"spec": {"template": {"spec": {"nodeSelector": {HOSTNAME_LABEL: host}}}}}


def _vm_patch(current: Mapping[str, Any], desired: Mapping[str, Any], *, skip_hotplug: bool = False) -> dict:
    """The merge patch bringing the VM's runStrategy and template to what is desired;
    empty when they already match (so a steady server costs no writes). With `skip_hotplug`
    (a running VM), hotplugged volumes are left to the hotplug calls."""
    patch: dict[str, Any] = {}
    cur_spec, des_spec = current.get("spec") or {}, desired["spec"]
    if cur_spec.get("runStrategy") != des_spec["runStrategy"]:
        patch.setdefault("spec", {})["runStrategy"] = des_spec["runStrategy"]
    cur_tpl = (cur_spec.get("template") or {}).get("spec") or {}
    des_tpl = des_spec["template"]["spec"]

    def cold(spec: Mapping[str, Any], key: str) -> list:
        entries = spec.get("volumes") or [] if key == "volumes" else \
            ((spec.get("domain") or {}).get("devices") or {}).get("disks") or []
        if not skip_hotplug:
            return list(entries)
        hot = {v["name"] for v in spec.get("volumes") or [] if is_hotplug(v)}
        return [e for e in entries if e["name"] not in hot]

    template: dict[str, Any] = {}
    if cold(cur_tpl, "volumes") != cold(des_tpl, "volumes"):
        template["volumes"] = des_tpl["volumes"]
    if cur_tpl.get("hostname") != des_tpl.get("hostname"):
        template["hostname"] = des_tpl["hostname"]
    if cold(cur_tpl, "disks") != cold(des_tpl, "disks"):
        # a list in a merge patch replaces the whole list: send the whole devices block
        template["domain"] = {"devices": des_tpl["domain"]["devices"]}
    if template:
        patch.setdefault("spec", {})["template"] = {"spec": template}
    return patch
