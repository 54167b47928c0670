"""The Server reconciler: Nova's boot path and lifecycle, level-triggered.

Each call looks at one Server, the objects it references and the KubeVirt objects it owns,
does the next step(s) towards what the spec asks, and writes the Server's status only when
it changed. It talks to the cluster through the `Cluster` port (implemented with the
kubernetes client by the controller, with a fake in unit tests), to the scheduler's
in-memory host cache for claims, and to the VM runtime through `VMActions`.

The claim is durable in `status.host` (+ `status.flavor`): on restart the controller rebuilds
the host cache from every Server's status before reconciling anything, so a server is never
scheduled twice and a host never overcommitted. Every step is idempotent: a reconcile killed
half-way is simply repeated.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import yaml

from kubestack.api.common import Fault
from kubestack.api.server import (
    DesiredPowerState, FlavorSnapshot, RebootType, ResizeConfirmation, Server, ServerState, TaskState,
    PowerState, VmState,
)
from kubestack.compute import cloudinit, state
from kubestack.compute.references import RETRYABLE, ReferenceError, Resolved, group_name, resolve
from kubestack.compute.render import (
    CLOUD_INIT_VOLUME, HOSTNAME_LABEL, POD_NETWORK, ROOT_DISK, Disk, Interface, VMInputs, cloud_init_secret,
    cloud_init_secret_name, disks_of, interfaces_of, is_hotplug, needs_cloud_init_secret, network_data_of,
    network_data_secret_of, render_vm,
)
from kubestack.compute.vmactions import VMActionError
from kubestack.k8s.conditions import set_condition
from kubestack.network.interfaces import network_data
from kubestack.network.ports import PortError
from kubestack.storage import names as storage_names
from kubestack.storage.disks import DiskError
from kubestack.storage.refs import boots_from_image
from kubestack.scheduler import NoValidHost, RequestSpec, Scheduler, SchedulerHints, Usage
from kubestack.scheduler import Flavor as SchedFlavor
from kubestack.scheduler.cache import ClaimError

log = logging.getLogger(__name__)

ZONE_LABEL = "topology.kubernetes.io/zone"
# Nova's task state while a rebuild waits for its block devices (not in api.TaskState, whose
# values are a subset: status.taskState is free text)
REBUILD_BLOCK_DEVICE_MAPPING = "rebuild_block_device_mapping"


class Cluster(Protocol):
    """What the reconciler needs from the API server (reads may come from watch caches)."""

    def flavor(self, name: str) -> dict | None: ...
    def image(self, namespace: str, ref: str) -> dict | None: ...
    def keypair(self, namespace: str, name: str) -> dict | None: ...
    def server_group(self, namespace: str, name: str) -> dict | None: ...
    def server(self, namespace: str, name: str) -> dict | None: ...
    def secret_value(self, namespace: str, name: str, key: str) -> str | None: ...
    def ports(self, server: Mapping[str, Any]) -> list: ...
    def disks(self, server: Mapping[str, Any], root_size_gib: int) -> Any: ...
    def reservation_members(self, namespace: str, name: str) -> list[dict]: ...
    def floating_ips(self, namespace: str, server: str) -> dict[str, list[str]]: ...
    def node(self, name: str) -> dict | None: ...
    def vm(self, namespace: str, name: str) -> dict | None: ...
    def vmi(self, namespace: str, name: str) -> dict | None: ...
    def migration(self, namespace: str, name: str) -> dict | None: ...
    def create(self, obj: dict) -> dict: ...
    def patch_vm(self, namespace: str, name: str, patch: dict) -> dict: ...
    def delete_vm(self, namespace: str, name: str) -> None: ...
    def delete_vmi(self, namespace: str, name: str) -> None: ...
    def delete_secret(self, namespace: str, name: str) -> None: ...
    def patch_status(self, namespace: str, name: str, status: dict) -> None: ...
    def event(self, obj: Mapping[str, Any], type_: str, reason: str, message: str) -> None: ...


class Actions(Protocol):
    """The VM runtime adapter (kubestack.compute.vmactions.VMActions)."""

    def pause(self, namespace: str, name: str) -> str: ...
    def unpause(self, namespace: str, name: str) -> str: ...
    def soft_reboot(self, namespace: str, name: str) -> str: ...
    def restart(self, namespace: str, name: str) -> str: ...
    def suspend(self, namespace: str, name: str) -> str: ...
    def resume(self, namespace: str, name: str) -> str: ...
    def add_volume(self, namespace: str, name: str, volume_name: str, **source: Any) -> str: ...
    def remove_volume(self, namespace: str, name: str, volume_name: str) -> str: ...


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def instance_id(server: Mapping[str, Any]) -> str:
    return server["metadata"]["uid"]


RESERVATION_LABEL = "kubestack.io/reservation"
RESERVED_CLAIM_ANNOTATION = "kubestack.io/reserved-claim"


def is_reservation(model: Server) -> bool:
    return (model.spec.max_count or model.spec.min_count) > 1


def member_manifest(reservation: Mapping[str, Any], index: int, claim: str) -> dict:
    """Server NAME-i of a multi-create (Nova's default display name template)."""
    meta = reservation["metadata"]
    spec = {k: v for k, v in (reservation.get("spec") or {}).items() if k not in ("minCount", "maxCount")}
    return {
        "apiVersion": reservation["apiVersion"], "kind": "Server",
        "metadata": {"name": f"{meta['name']}-{index}", "namespace": meta["namespace"],
                     "labels": {RESERVATION_LABEL: meta["name"]},
                     "annotations": {RESERVED_CLAIM_ANNOTATION: claim},
                     "ownerReferences": [owner_ref(reservation)]},
        "spec": spec,
    }


def quota_key(server: Mapping[str, Any]) -> str:
    """The quota ledger's holder key for a server (what the Project controller counts)."""
    return f"server/{server['metadata']['namespace']}/{server['metadata']['name']}"


def group_key(namespace: str, name: str) -> str:
    return f"{namespace}/{name}"


def owner_ref(server: Mapping[str, Any]) -> dict:
    return {"apiVersion": server["apiVersion"], "kind": server["kind"], "name": server["metadata"]["name"],
            "uid": server["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}


# Nova's 400/403 to a request on a built server: the server keeps running as it was, and this
# condition (True, carrying the refused generation) says why. Its reason names the refusal: a
# ReferenceError's (ImageNotFound, FlavorNotFound, QuotaExceeded, ...: `_refuse`) or
# VolumeBackedServer (`_refuse_volume_backed_rebuild`). When it goes: `_drop_lapsed_refusal`.
REFUSED_CONDITION = "RequestRefused"
VOLUME_BACKED = "VolumeBackedServer"  # its reason for a rebuild of a volume-backed server


@dataclass
class Outcome:
    """What one reconcile decided: the status to write, Events, and whether to look again."""

    status: dict[str, Any] = field(default_factory=dict)
    events: list[tuple[str, str, str]] = field(default_factory=list)
    requeue_after: float | None = None
    # the spec change is not applied yet (a volume to attach is still being made): keep the
    # old observedGeneration, so the next look still sees the change
    pending: bool = False
    # what the storage service answered in this reconcile, if it was asked (a rebuild reads
    # whether its new root disk is ready and whether old ones still wait to be deleted)
    disks: Any = None


class ServerReconciler:
    def __init__(self, cluster: Cluster, scheduler: Scheduler, actions: Actions, *,
                 quota=None):
        self.cluster = cluster
        self.scheduler = scheduler
        self.cache = scheduler.cache
        self.actions = actions
        self.quota = quota  # kubestack.identity.quota.QuotaLedger, when Projects are in use
        # In-flight reboots (server uid -> (request id, VMI uid before)); losing this on a
        # restart only shortens what status shows as REBOOT.
        self._reboots: dict[str, tuple[str, str | None]] = {}
        # In-flight rebuilds (server uid -> uid of the VMI the rebuild stopped): that VMI is
        # not the rebuilt guest even while a lagging watch still shows it Running. Losing this
        # on a restart is harmless for a root disk rebuild (the rebuilt guest is recognised by
        # its new root disk).
        self._rebuilds: dict[str, str | None] = {}

    # ------------------------------------------------------------------ claims from status
    def record_claim(self, server: Mapping[str, Any]) -> None:
        """Put a scheduled Server's claim into the host cache (idempotent): used to rebuild
        the cache at start-up and whenever a Server is seen."""
        st = server.get("status") or {}
        host, flavor = st.get("host"), st.get("flavor")
        if not host or not flavor or st.get("status") == ServerState.SHELVED_OFFLOADED:
            return
        ns = server["metadata"]["namespace"]
        group = group_name(Server.from_k8s(server).spec)
        self.cache.add_instance(
            host, instance_id(server), _usage(FlavorSnapshot.model_validate(flavor)), project=ns,
            building=st.get("status") == ServerState.BUILD,
            group=group_key(ns, group) if group else None)
        resize = st.get("resize") or {}
        if st.get("status") == ServerState.VERIFY_RESIZE and resize.get("oldHost"):
            # Nova keeps the source allocation until the resize is confirmed
            old = self.cluster.flavor(resize.get("oldFlavor") or "")
            if old is not None:
                self.cache.add_instance(resize["oldHost"], instance_id(server) + "#source",
                                        _usage(_snapshot(resize["oldFlavor"], old)), project=ns)

    def forget(self, server: Mapping[str, Any]) -> None:
        """A Server is gone: release every claim it held."""
        self.forget_claim_only(server)
        if self.quota is not None:
            self.quota.release(quota_key(server))
        self._reboots.pop(instance_id(server), None)
        self._rebuilds.pop(instance_id(server), None)

    def _reserve_quota(self, server: Mapping[str, Any], flavor: FlavorSnapshot) -> None:
        """Nova's instances/cores/ram quota for this server at `flavor` (re-reserving the same
        server replaces its previous reservation: that is how a resize is counted)."""
        if self.quota is None:
            return
        from kubestack.identity.quota import QuotaExceeded

        try:
            self.quota.reserve(server["metadata"]["namespace"], quota_key(server),
                               {"instances": 1, "cores": flavor.vcpus, "ram": flavor.ram})
        except QuotaExceeded as exc:
            raise ReferenceError(str(exc), code=403, reason="QuotaExceeded") from exc

    # ------------------------------------------------------------------ entry point
    def reconcile(self, server: dict) -> Outcome:
        meta = server["metadata"]
        if meta.get("deletionTimestamp"):
            self.forget(server)
            return Outcome()
        model = Server.from_k8s(server)
        current = dict(server.get("status") or {})
        out = Outcome(status=dict(current))
        _drop_lapsed_refusal(out.status, meta.get("generation"))
        try:
            self._step(server, model, out)
        except ReferenceError as exc:
            if not _built(current):
                self._error(out, exc.code, str(exc), reason=exc.reason)
            else:
                out = self._refuse(current, exc, meta.get("generation"))
        if not out.pending:
            out.status["observedGeneration"] = meta.get("generation")
        return out

    @staticmethod
    def _refuse(current: dict, exc: ReferenceError, generation: int | None) -> Outcome:
        """Nova answers a rebuild or resize to a missing image or flavor with a 400 (over quota:
        403) and the server stays as it was. Here too: nothing changes (the guest keeps running, no fault:
        the server is fine), a condition and a Warning Event say why (once), and observedGeneration
        stays behind the refused spec. Every reconcile checks the spec again: it may go through
        later (the image appears, quota is freed), and then the condition goes."""
        out = Outcome(status=dict(current), pending=True)
        before = next((c for c in current.get("conditions") or [] if c.get("type") == REFUSED_CONDITION), {})
        out.status["conditions"] = set_condition(current.get("conditions"), REFUSED_CONDITION, True,
                                                 exc.reason, str(exc), generation=generation)
        if before.get("message") != str(exc):
            out.events.append(("Warning", exc.reason, f"{exc} The server is left as it was."))
        return out

    # ------------------------------------------------------------------ the state machine
    def _step(self, server: dict, model: Server, out: Outcome) -> None:
        st = out.status
        spec = model.spec
        status = st.get("status")
        ready = next((c for c in st.get("conditions") or [] if c.get("type") == "Ready"), {})
        if status == ServerState.ERROR and not st.get("host") and ready.get("reason") not in RETRYABLE and \
                st.get("observedGeneration") == server["metadata"].get("generation"):
            return  # Nova: a failed build is final until the request changes
        if is_reservation(model):
            self._multi_create(server, model, out)
            return
        if not st.get("host"):
            if status == ServerState.SHELVED_OFFLOADED and spec.power_state == DesiredPowerState.SHELVED:
                return
            self._schedule(server, model, out)
            if not st.get("host"):
                return
        resolved = resolve(self.cluster, server, model, for_boot=False)
        _record_key(st, model, resolved)
        vm = self.cluster.vm(model.metadata.namespace, model.metadata.name)
        vmi = self.cluster.vmi(model.metadata.namespace, model.metadata.name)

        if spec.power_state == DesiredPowerState.SHELVED:
            self._shelve(server, model, vm, out)
            return
        if self._evacuate_if_host_down(server, model, resolved, vm, vmi, out):
            return
        if self._resize(server, model, resolved, vm, vmi, out):
            return
        if self._migrate(server, model, vm, vmi, out):
            return
        # a new rebuild is recorded before the VM is rendered: the VM must take the new root disk
        # in the same reconcile that stops the guest, or KubeVirt restarts it on the old one
        starting = vm is not None and self._begin_rebuild(server, model, resolved, out)
        vm = self._ensure_vm(server, model, resolved, vm, vmi, out, rebuild_starting=starting)
        if vm is None:
            return
        if self._rebuild(server, model, vm, vmi, out, starting=starting):
            return
        if self._reboot(server, model, vm, vmi, out):
            return
        self._power(server, model, vm, vmi, out)

    # ------------------------------------------------------------------ scheduling
    def _schedule(self, server: dict, model: Server, out: Outcome) -> None:
        name = model.metadata.name
        resolved = resolve(self.cluster, server, model, for_boot=True)
        flavor = resolved.flavor
        uid = instance_id(server)
        self._reserve_quota(server, flavor)
        st = out.status
        st.update(status=ServerState.BUILD, taskState=TaskState.SCHEDULING, vmState=VmState.BUILDING,
                  powerState=PowerState.NOSTATE)
        # a claim this process made for the server that never reached its status (an API error
        # later in that reconcile, or in writing the status): give it back and decide afresh,
        # as the restarted operator would, rather than be refused as "already placed" forever
        self.forget_claim_only(server)
        try:
            selection = self._reserved_claim(server) or self.scheduler.select_and_claim(
                self._request(model, resolved, (uid,)))[0]
        except NoValidHost as exc:
            if self.quota is not None:
                self.quota.release(quota_key(server))
            message = "No valid host was found. There are not enough hosts available."
            self._error(out, 500, message, details=str(exc), reason="NoValidHost")
            out.status["conditions"] = set_condition(out.status.get("conditions"), "Scheduled", False,
                                                     "NoValidHost", str(exc).replace("\n", "; "))
            return
        node = self.cluster.node(selection.host) or {}
        zone = (node.get("metadata", {}).get("labels") or {}).get(ZONE_LABEL)
        st.update(
            host=selection.host, hypervisorHostname=selection.host, availabilityZone=zone,
            flavor=flavor.to_k8s(), flavorName=flavor.name, imageName=resolved.image_name,
            taskState=TaskState.SPAWNING, fault=None, virtualMachine=name,
        )
        _record_key(st, model, resolved)
        st["conditions"] = set_condition(st.get("conditions"), "Scheduled", True, "Scheduled",
                                         f"claimed on {selection.host}")
        out.events.append(("Normal", "Scheduled", f"Scheduled to {selection.host}"
                                                  + (f" in zone {zone}" if zone else "")))

    def _request(self, model: Server, resolved: Resolved, instance_ids: tuple[str, ...], *,
                 min_count: int | None = None, max_count: int | None = None) -> RequestSpec:
        flavor = resolved.flavor
        return RequestSpec(
            flavor=_sched_flavor(flavor),
            image_properties=resolved.image_properties,
            project=model.metadata.namespace,
            availability_zone=_zone(model.spec.availability_zone),
            server_group=resolved.server_group,
            scheduler_hints=spec_hints(model, self.cluster, model.metadata.namespace),
            instance_ids=instance_ids, min_count=min_count, max_count=max_count,
        )

    def _reserved_claim(self, server: Mapping[str, Any]):
        """A server made by a multi-create takes over the claim its reservation made for it
        (the reservation placed every instance at once, all-or-nothing below minCount)."""
        key = (server["metadata"].get("annotations") or {}).get(RESERVED_CLAIM_ANNOTATION)
        record = self.cache.instance(key) if key else None
        if record is None:
            return None
        self.scheduler.release(key)
        self.cache.add_instance(record.host, instance_id(server), record.usage, project=record.project,
                                building=True, group=record.group)
        return record

    # ------------------------------------------------------------------ multi-create
    def _multi_create(self, server: dict, model: Server, out: Outcome) -> None:
        """`openstack server create --min N --max M NAME`: servers NAME-1..NAME-k, placed
        together. This object is the reservation; its status summarises the servers."""
        ns, name = model.metadata.namespace, model.metadata.name
        st = out.status
        children = self.cluster.reservation_members(ns, name)
        if not children and not st.get("status"):  # reserve once; later, only summarise
            resolved = resolve(self.cluster, server, model, for_boot=True)
            uid = instance_id(server)
            count = model.spec.max_count or model.spec.min_count
            ids = tuple(f"{uid}#{i}" for i in range(1, count + 1))
            try:
                selections = self.scheduler.select_and_claim(self._request(
                    model, resolved, ids, min_count=model.spec.min_count, max_count=count))
            except NoValidHost as exc:
                self._error(out, 500, "No valid host was found. There are not enough hosts available.",
                            details=str(exc), reason="NoValidHost")
                return
            for i, selection in enumerate(selections, start=1):
                self.cluster.create(member_manifest(server, i, selection.instance_id))
            st.update(status=ServerState.BUILD, taskState=TaskState.SPAWNING, fault=None)
            out.events.append(("Normal", "Scheduled", f"Reserved {len(selections)} servers "
                                                      f"{name}-1..{name}-{len(selections)}"))
            out.requeue_after = 1.0
            return
        states = [(c.get("status") or {}).get("status") for c in children]
        if states and all(x == ServerState.ACTIVE for x in states):
            summary = ServerState.ACTIVE
        elif any(x == ServerState.ERROR for x in states):
            summary = ServerState.ERROR
        else:
            summary = ServerState.BUILD
        st.update(status=summary, taskState=None if summary != ServerState.BUILD else TaskState.SPAWNING,
                  networks=f"{len(children)} servers: " + ", ".join(sorted(c["metadata"]["name"] for c in children)))
        st["conditions"] = set_condition(st.get("conditions"), "Ready", summary == ServerState.ACTIVE,
                                         str(summary), f"{states.count(ServerState.ACTIVE)} of {len(children)} ACTIVE",
                                         generation=server["metadata"].get("generation"))

    # ------------------------------------------------------------------ the VM
    def _interfaces(self, server, model: Server, vm) -> tuple[list[Interface], str | None]:
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
                net_data = self.cluster.secret_value(model.metadata.namespace, secret, "networkdata")
            if net_data is not None or secret is None:
                return interfaces_of(vm), net_data
        if not model.spec.networks:
            return [POD_NETWORK], None
        allocated = self.cluster.ports(server)
        interfaces = [Interface(name=i.name, nad=i.nad, mac=i.mac, ips=tuple(i.ips), network=i.network_name)
                      for i in allocated]
        return interfaces, yaml.safe_dump(network_data(allocated), sort_keys=False)

    def _disks(self, server, model: Server, flavor: FlavorSnapshot, vm, out: Outcome) -> list[Disk] | None:
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
        disks = self.cluster.disks({**server, "status": st}, flavor.disk)
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

    def _desired_vm(self, server: dict, model: Server, resolved: Resolved, host: str,
                    flavor: FlavorSnapshot, running: bool, vm, disks: list[Disk]) -> tuple[dict, dict | None]:
        ns, name = model.metadata.namespace, model.metadata.name
        keys = [resolved.public_key] if resolved.public_key else []
        hostname = model.spec.hostname or name
        user_data = cloudinit.user_data(resolved.user_data, hostname=hostname, public_keys=keys)
        interfaces, net_data = self._interfaces(server, model, vm)
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

    def _give_back(self, server, out: Outcome, exc: Exception, reason: str) -> None:
        """A build step after the claim failed (ports, disks): give the host back, build
        nothing, and say why."""
        st = out.status
        self.forget(server)
        st.update(host=None, hypervisorHostname=None, availabilityZone=None)
        st["conditions"] = set_condition(st.get("conditions"), "Scheduled", False, reason, str(exc))
        self._error(out, getattr(exc, "code", 500) or 500, str(exc), reason=reason)

    def _ensure_vm(self, server, model: Server, resolved: Resolved, vm, vmi, out: Outcome, *,
                   rebuild_starting: bool = False) -> dict | None:
        st = out.status
        ns, name = model.metadata.namespace, model.metadata.name
        flavor = FlavorSnapshot.model_validate(st["flavor"])
        running = model.spec.power_state != DesiredPowerState.STOPPED
        try:
            disks = self._disks(server, model, flavor, vm, out)
            if disks is None:
                return None
            desired, secret = self._desired_vm(server, model, resolved, st["host"], flavor, running, vm, disks)
        except PortError as exc:  # Nova's "networking" step failed
            self._give_back(server, out, exc, "PortError")
            return None
        except DiskError as exc:
            if vm is None:  # Nova's "block_device_mapping" step failed
                self._give_back(server, out, exc, "BlockDeviceMappingError")
                return None
            if st.get("status") == ServerState.REBUILD:
                self._rebuild_failed(server, model, out, exc, rebuild_starting)
                return None
            # a bad attach on a running server: the server stays as it is, the fault says why
            self._error(out, 400, exc.message, reason="InvalidVolume", keep_status=True)
            return vm
        if vm is None:
            if secret is not None:
                self.cluster.create(secret)
            # no Event of its own: "Scheduled" and "Active" bracket the spawn, and every Event
            # is an API write on the boot path
            return self.cluster.create(desired)
        live = state.vmi_phase(vmi) == "Running"
        if live:
            self._hotplug(ns, name, vm, desired, out)
        patch = _vm_patch(vm, desired, skip_hotplug=live)
        if patch:
            previous, wanted = _cloud_init_secret_of(vm), _cloud_init_secret_of(desired)
            if secret is not None and previous != wanted:
                self.cluster.create(secret)  # before the VM points to it
            vm = self.cluster.patch_vm(ns, name, patch)
            if previous and previous != wanted:  # the guest no longer reads it
                self.cluster.delete_secret(ns, previous)
        return vm

    def _hotplug(self, ns: str, name: str, vm, desired, out: Outcome) -> None:
        """Attach/detach volumes of a running server through KubeVirt's hotplug (addvolume /
        removevolume), which updates the VM and its VMI without a restart."""
        current = {d.volume["name"]: d for d in disks_of(vm) if is_hotplug(d.volume)}
        wanted = {d.volume["name"]: d for d in disks_of(desired) if is_hotplug(d.volume)}
        try:
            for vname in wanted.keys() - current.keys():
                vol, disk = wanted[vname].volume, wanted[vname].disk
                source = vol.get("persistentVolumeClaim") or {}
                self.actions.add_volume(ns, name, vname, claim_name=source.get("claimName"),
                                        data_volume=(vol.get("dataVolume") or {}).get("name"),
                                        bus=(disk.get("disk") or {}).get("bus", "scsi"), serial=disk.get("serial"))
                out.events.append(("Normal", "VolumeAttached", f"Attaching volume {vname}"))
            for vname in current.keys() - wanted.keys():
                self.actions.remove_volume(ns, name, vname)
                out.events.append(("Normal", "VolumeDetached", f"Detaching volume {vname}"))
        except VMActionError as exc:
            log.info("%s/%s: hotplug: %s (will look again)", ns, name, exc)
            out.requeue_after = 2.0

    # ------------------------------------------------------------------ power and state
    def _power(self, server, model: Server, vm, vmi, out: Outcome) -> None:
        ns, name = model.metadata.namespace, model.metadata.name
        desired = model.spec.power_state
        st = out.status
        launched = bool(st.get("launchedAt"))
        phase = state.vmi_phase(vmi)
        paused = state.vmi_paused(vmi)
        try:
            if phase == "Running":
                if desired == DesiredPowerState.PAUSED and not paused:
                    self.actions.pause(ns, name)
                elif desired == DesiredPowerState.SUSPENDED and not paused:
                    self.actions.suspend(ns, name)
                elif desired == DesiredPowerState.RUNNING and paused:
                    if state.vmi_suspended(vmi):
                        self.actions.resume(ns, name)
                    else:
                        self.actions.unpause(ns, name)
        except VMActionError as exc:
            log.info("%s/%s: %s (will look again)", ns, name, exc)
            out.requeue_after = 2.0
        observed = state.observe(desired, vm, vmi, launched=launched)
        if observed.problem and launched and _host_down(self.cluster.node(st["host"])):
            observed = state.Observed(ServerState.ERROR, PowerState.NOSTATE, VmState.ERROR, None,
                                      f"host {st['host']} is down")
        self._apply_observed(server, model, observed, vm, vmi, out)

    def _apply_observed(self, server, model: Server, observed: state.Observed, vm, vmi, out: Outcome) -> None:
        st = out.status
        previous = st.get("status")
        st.update(status=observed.status, powerState=observed.power_state, vmState=observed.vm_state,
                  taskState=observed.task_state)
        if observed.status == ServerState.ERROR:
            self._error(out, 500, observed.problem or "virtual machine failed", reason="VMFailed",
                        keep_status=True)
        elif previous == ServerState.ERROR:
            st["fault"] = None  # recovered; other faults stay as the last action's record
        if observed.status == ServerState.ACTIVE and not st.get("launchedAt"):
            st["launchedAt"] = now()
            if self.cache.instance(instance_id(server)):
                self.cache.set_building(instance_id(server), False)
        self._addresses(vm, vmi, out)
        ready = observed.status == ServerState.ACTIVE and observed.task_state is None
        st["conditions"] = set_condition(
            st.get("conditions"), "Ready", ready, str(observed.status),
            observed.problem or f"server is {observed.status}",
            generation=server["metadata"].get("generation"))
        if previous != observed.status:
            kind = "Warning" if observed.status == ServerState.ERROR else "Normal"
            msg = f"{previous or 'new'} -> {observed.status}"
            if observed.status == ServerState.ACTIVE and previous == ServerState.BUILD:
                msg = f"Server is ACTIVE on {st.get('host')}"
            elif observed.problem:
                msg += f": {observed.problem}"
            out.events.append((kind, str(observed.status).title().replace("_", ""), msg))

    def _addresses(self, vm, vmi, out: Outcome) -> None:
        """Nova's addresses: a tenant port's fixed IPs as allocated (Neutron's view), the pod
        network's as the VMI reports them, each followed by the floating IPs mapped to it."""
        reported = state.interface_ips(vmi)
        floating = self.cluster.floating_ips(vm["metadata"]["namespace"], vm["metadata"]["name"]) if vm else {}
        addresses: dict[str, list[dict]] = {}
        for iface in interfaces_of(vm) if vm is not None else []:
            ips = list(iface.ips) if iface.nad else reported.get(iface.name, [])
            if not ips:
                continue
            entries = addresses.setdefault(iface.network or ("pod" if iface.nad is None else iface.name), [])
            for ip in ips:
                addr = ip.split("/")[0]
                for value, kind in [(addr, "fixed"), *((f, "floating") for f in floating.get(addr, []))]:
                    entry = {"addr": value, "version": 6 if ":" in value else 4, "type": kind}
                    if iface.mac:
                        entry["macAddr"] = iface.mac
                    entries.append(entry)
        if not addresses:
            return
        out.status["addresses"] = addresses
        out.status["networks"] = "; ".join(
            f"{net}=" + ", ".join(a["addr"] for a in addrs) for net, addrs in sorted(addresses.items()))

    # ------------------------------------------------------------------ reboot
    def _reboot(self, server, model: Server, vm, vmi, out: Outcome) -> bool:
        req = model.spec.reboot
        st = out.status
        uid = instance_id(server)
        if req is None or req.request_id == st.get("lastRebootRequestId"):
            return False
        ns, name = model.metadata.namespace, model.metadata.name
        hard = req.type == RebootType.HARD
        inflight = self._reboots.get(uid)
        vmi_uid = (vmi or {}).get("metadata", {}).get("uid")
        if inflight is None or inflight[0] != req.request_id:
            if state.vmi_phase(vmi) != "Running" and not hard:
                # Nova refuses a soft reboot of a stopped server; a hard one powers it on
                self._error(out, 409, f"Cannot 'reboot' instance {name} while it is in vm_state "
                                      f"{st.get('vmState')}", reason="Conflict", keep_status=True)
                st["lastRebootRequestId"] = req.request_id
                return True
            try:
                (self.actions.restart if hard else self.actions.soft_reboot)(ns, name)
            except VMActionError as exc:
                if not hard:
                    raise
                log.info("%s/%s: hard reboot via restart refused (%s); the VM will be started", ns, name, exc)
            self._reboots[uid] = (req.request_id, vmi_uid)
            st.update(status=ServerState.HARD_REBOOT if hard else ServerState.REBOOT,
                      taskState=TaskState.REBOOTING_HARD if hard else TaskState.REBOOTING)
            out.events.append(("Normal", "Rebooting", f"{'Hard' if hard else 'Soft'} reboot requested"))
            out.requeue_after = 1.0
            return True
        # in flight: done once the guest runs again (a hard reboot: in a new VMI)
        if state.vmi_phase(vmi) == "Running" and (not hard or vmi_uid != inflight[1]):
            self._reboots.pop(uid, None)
            st["lastRebootRequestId"] = req.request_id
            out.events.append(("Normal", "Rebooted", f"{'Hard' if hard else 'Soft'} reboot done"))
            return False
        out.requeue_after = 1.0
        return True

    # ------------------------------------------------------------------ rebuild
    # Nova's `server rebuild [--image X]`: the root disk is replaced by a fresh copy of the
    # image (the new one, or the same one for a bare rebuild request); attached volumes, ports,
    # host and flavor stay. Steps, each read back from status and the VM on the next look:
    #
    # 1. (_begin_rebuild) a changed spec.image or a new spec.rebuild.requestId: status says
    #    REBUILD and records the image, the request id and the name of the new root disk,
    #    `<server>-root-<key>` with a key from the Server's uid and the generation asking for the
    #    rebuild (storage.names.rebuild_key): a distinct, deterministic name per rebuild, so a
    #    repeated step makes the same disk, and the name is kept in status.rootDisk while later
    #    spec changes move the generation on.
    # 2. (_ensure_vm) the storage service clones the new disk and the VM's template is pointed
    #    at it at once, though it is still being cloned; then (_rebuild) the VMI is deleted: the
    #    guest stops, and KubeVirt starts it again from the template, on the same pinned host,
    #    only once the new DataVolume is ready. The VM never points at the old disk again, so
    #    the guest cannot come back on it.
    # 3. while REBUILD, the storage service deletes the server's earlier root disks once
    #    neither the VM's template nor a VMI uses them (never one made with retainRootDisk, or
    #    any while it is set), and the rebuild ends only when none is left and the new guest
    #    runs on the new disk (for a stopped server: once the disk is ready; it stays SHUTOFF,
    #    as Nova leaves it).
    #
    # A crash anywhere repeats a step: before the status write, step 1 is taken again with the
    # same name (same generation) or, if the spec moved on meanwhile, a new one, and the disk
    # made for the lost name is then an earlier root disk like any other, deleted in step 3.
    # So a server ends with exactly one root disk (plus those it was asked to retain).
    def _begin_rebuild(self, server, model: Server, resolved: Resolved, out: Outcome) -> bool:
        """Record a newly asked rebuild in status; True when one starts in this reconcile."""
        st = out.status
        req = model.spec.rebuild
        image_changed = resolved.image_name is not None and st.get("imageName") not in (None, resolved.image_name)
        requested = req is not None and req.request_id != st.get("lastRebuildRequestId")
        if not (image_changed or requested):
            return False
        name = model.metadata.name
        generation = server["metadata"].get("generation")
        if not boots_from_image(server):
            self._refuse_volume_backed_rebuild(server, model, out)
            return False
        key = storage_names.rebuild_key(instance_id(server), generation)
        st.update(status=ServerState.REBUILD, taskState=TaskState.REBUILDING, imageName=resolved.image_name,
                  rootDisk=storage_names.root_disk(name, key))
        if req is not None:
            st["lastRebuildRequestId"] = req.request_id
        image = resolved.image_name or "its boot image"
        st["conditions"] = set_condition(st.get("conditions"), "Ready", False, str(ServerState.REBUILD),
                                         f"rebuilding from image {image}", generation=generation)
        out.events.append(("Normal", "Rebuilding", f"Rebuilding from image {image}"))
        return True

    def _refuse_volume_backed_rebuild(self, server, model: Server, out: Outcome) -> None:
        """A volume-backed server is not rebuilt: it stays as it is (ACTIVE, no fault), and
        the RequestRefused condition (reason VolumeBackedServer) and a Warning Event say why.
        The request is answered once: status.lastRebuildRequestId records it, so the Event is
        not repeated; the condition stays until the spec changes (`_drop_lapsed_refusal`).

        Why not reimage the boot volume, as Nova does since API 2.93: Nova asks Cinder to
        reimage the volume in place (os-reimage). Here the volume's data is the PVC the Volume
        controller owns and reconciles; rewriting it from the Server reconciler would give one
        PVC two writers behind the Volume's back (its status, snapshots and quota), and a
        reimage belongs to the Volume kind, which has no such action yet. Before 2.93 Nova
        refused a volume-backed rebuild to another image and "rebuilt" one on the same image
        without touching the volume, so the guest came back on its old data: a silent no-op is
        what this refusal avoids. It is no failure of the server, so no ERROR and no fault."""
        st = out.status
        req = model.spec.rebuild
        if req is not None:
            st["lastRebuildRequestId"] = req.request_id  # answered: not asked again each look
        message = (f"Rebuild of volume-backed server {model.metadata.name} is not supported: its root disk is "
                   "a Volume, which kubestack cannot reimage in place (Nova API 2.93 reimage); the server "
                   "was left unchanged. Boot a new server from the image, or from a new Volume made from it.")
        st["conditions"] = set_condition(st.get("conditions"), REFUSED_CONDITION, True, VOLUME_BACKED, message,
                                         generation=server["metadata"].get("generation"))
        out.events.append(("Warning", "RebuildRefused", message))

    def _rebuild(self, server, model: Server, vm, vmi, out: Outcome, *, starting: bool) -> bool:
        """Drive the rebuild status records (also an evacuation's, Nova's rebuild on another
        host) to its end: True while it is in progress."""
        st = out.status
        if st.get("status") != ServerState.REBUILD:
            return False
        ns, name = model.metadata.namespace, model.metadata.name
        uid = instance_id(server)
        if starting:
            # the VM's template now carries the new root disk (_ensure_vm): stop the guest; the
            # new VMI boots from the new disk once it is ready
            if vmi is not None and not (vmi.get("metadata") or {}).get("deletionTimestamp"):
                self.cluster.delete_vmi(ns, name)
                self._rebuilds[uid] = (vmi.get("metadata") or {}).get("uid")
            out.requeue_after = 1.0
            return True
        disks = out.disks
        if disks is not None and not disks.ready:
            st["taskState"] = REBUILD_BLOCK_DEVICE_MAPPING
            out.requeue_after = 1.0
            return True
        wanted = _root_source(vm)
        vmi_uid = ((vmi or {}).get("metadata") or {}).get("uid")
        if model.spec.power_state == DesiredPowerState.STOPPED:
            done = vmi is None  # a stopped server is rebuilt and stays stopped (Nova)
        else:
            done = state.vmi_phase(vmi) == "Running" and _root_source(vmi) == wanted and \
                vmi_uid != self._rebuilds.get(uid, "")
        if not done or (disks is not None and disks.superseded):
            st["taskState"] = TaskState.REBUILD_SPAWNING
            out.requeue_after = 1.0
            return True
        self._rebuilds.pop(uid, None)
        st["taskState"] = None
        return False

    def _rebuild_failed(self, server, model: Server, out: Outcome, exc: DiskError, starting: bool) -> None:
        """The new root disk (or another block device) cannot be made: ERROR, as Nova leaves
        a server whose rebuild failed. When it fails as the rebuild starts, nothing has been
        touched yet: the request is not recorded as done, so it is tried again when the server
        or what it references changes."""
        st = out.status
        if starting:
            stored = server.get("status") or {}
            for key in ("imageName", "lastRebuildRequestId", "rootDisk"):
                st[key] = stored.get(key)
        self._rebuilds.pop(instance_id(server), None)
        self._error(out, 500, f"Rebuild of {model.metadata.name} failed: {exc.message}", reason="RebuildFailed")

    # ------------------------------------------------------------------ resize
    def _resize(self, server, model: Server, resolved: Resolved, vm, vmi, out: Outcome) -> bool:
        st = out.status
        spec = model.spec
        ns, name = model.metadata.namespace, model.metadata.name
        uid = instance_id(server)
        status = st.get("status")
        if status in (ServerState.VERIFY_RESIZE, ServerState.RESIZE, ServerState.REVERT_RESIZE):
            return self._resize_progress(server, model, resolved, vm, vmi, out)
        if spec.flavor == st.get("flavorName") or not st.get("flavorName"):
            return False
        # a new resize: claim the new size (same host if it fits, else another host)
        new = resolved.flavor
        old_host, old_flavor = st["host"], st["flavorName"]
        self._reserve_quota(server, new)
        try:
            try:
                target = self._claim_target(uid, ns, new, old_host, _zone(model.spec.availability_zone))
            except ClaimError:
                target = self._claim_target(uid, ns, new, None, _zone(model.spec.availability_zone))
        except NoValidHost as exc:
            self._error(out, 500, "No valid host was found. There are not enough hosts available.",
                        details=str(exc), reason="NoValidHost", keep_status=True)
            out.events.append(("Warning", "ResizeFailed", f"resize to {spec.flavor}: no valid host"))
            return True
        st.update(status=ServerState.RESIZE, taskState=TaskState.RESIZE_MIGRATING,
                  resize={"oldFlavor": old_flavor, "oldHost": old_host, "newFlavor": new.name})
        # the VM moves to its new size (and host) by a cold restart
        flavor_patch = _vm_size_patch(new, target)
        self.cluster.patch_vm(ns, name, flavor_patch)
        if vmi is not None:
            self.cluster.delete_vmi(ns, name)
        self._resize_claims(uid, old_host, target, old=st["flavor"], new=new, ns=ns)
        st.update(host=target, hypervisorHostname=target, flavor=new.to_k8s(), flavorName=new.name)
        out.events.append(("Normal", "Resizing", f"Resizing from {old_flavor} to {new.name} on {target}"))
        out.requeue_after = 1.0
        return True

    def _resize_claims(self, uid: str, old_host: str, target: str, *, old: dict, new: FlavorSnapshot,
                       ns: str) -> None:
        """During a resize the server holds the new size on the target and, until confirmed,
        the old size on the source (Nova's migration allocation)."""
        self.scheduler.release(uid + "#target")
        record = self.cache.instance(uid)
        self.cache.add_instance(target, uid, _usage(new), project=ns, group=record.group if record else None)
        self.cache.add_instance(old_host, uid + "#source", _usage(FlavorSnapshot.model_validate(old)), project=ns)

    def _resize_progress(self, server, model: Server, resolved: Resolved, vm, vmi, out: Outcome) -> bool:
        st = out.status
        spec = model.spec
        ns, name = model.metadata.namespace, model.metadata.name
        uid = instance_id(server)
        resize = st.get("resize") or {}
        status = st.get("status")
        if status in (ServerState.RESIZE, ServerState.REVERT_RESIZE):
            if state.vmi_phase(vmi) == "Running" and state.vmi_node(vmi) == st["host"]:
                if status == ServerState.REVERT_RESIZE:
                    st.update(status=ServerState.ACTIVE, taskState=None, resize=None)
                    out.events.append(("Normal", "ResizeReverted", f"Reverted to {st['flavorName']}"))
                    return False
                st.update(status=ServerState.VERIFY_RESIZE, taskState=None)
                out.events.append(("Normal", "VerifyResize",
                                   f"Resized to {st['flavorName']}: confirm (confirmedFlavor) or revert"))
            else:
                out.requeue_after = 1.0
            return True
        # VERIFY_RESIZE
        if spec.flavor == resize.get("oldFlavor"):
            old = self.cluster.flavor(resize["oldFlavor"])
            old_snapshot = _snapshot(resize["oldFlavor"], old) if old else FlavorSnapshot.model_validate(st["flavor"])
            self.scheduler.release(uid + "#source")
            self.cache.add_instance(resize["oldHost"], uid, _usage(old_snapshot), project=ns)
            self.cluster.patch_vm(ns, name, _vm_size_patch(old_snapshot, resize["oldHost"]))
            if vmi is not None:
                self.cluster.delete_vmi(ns, name)
            self._reserve_quota(server, old_snapshot)
            st.update(status=ServerState.REVERT_RESIZE, taskState=TaskState.RESIZE_REVERTING,
                      host=resize["oldHost"], hypervisorHostname=resize["oldHost"],
                      flavor=old_snapshot.to_k8s(), flavorName=old_snapshot.name)
            out.events.append(("Normal", "RevertingResize", f"Reverting to {resize['oldFlavor']}"))
            out.requeue_after = 1.0
            return True
        if spec.resize_confirmation == ResizeConfirmation.AUTO or spec.confirmed_flavor == spec.flavor:
            self.scheduler.release(uid + "#source")
            st.update(status=ServerState.ACTIVE, taskState=None, resize=None)
            out.events.append(("Normal", "ResizeConfirmed", f"Resize to {st['flavorName']} confirmed"))
            return False
        if spec.flavor != st.get("flavorName"):
            self._error(out, 400, f"Server is in VERIFY_RESIZE: confirm or revert before resizing to "
                                  f"{spec.flavor}", reason="Conflict", keep_status=True)
        return True

    # ------------------------------------------------------------------ live migration
    def _migrate(self, server, model: Server, vm, vmi, out: Outcome) -> bool:
        st = out.status
        req = model.spec.migrate
        ns, name = model.metadata.namespace, model.metadata.name
        uid = instance_id(server)
        if req is None or req.request_id == st.get("lastMigrateRequestId"):
            return False
        mig_name = f"{name}-{_short(req.request_id)}"
        mig = self.cluster.migration(ns, mig_name)
        if mig is None:
            if state.vmi_phase(vmi) != "Running":
                self._error(out, 409, f"Cannot 'live-migrate' instance {name} while it is not running",
                            reason="Conflict", keep_status=True)
                st["lastMigrateRequestId"] = req.request_id
                return True
            flavor = FlavorSnapshot.model_validate(st["flavor"])
            target = _selected_host(vm)
            if target == st["host"]:
                # step 1: pick and claim the target, point the VM's template at it
                try:
                    target = self._claim_target(uid, ns, flavor, req.host, _zone(model.spec.availability_zone))
                except (ClaimError, NoValidHost) as exc:
                    self._error(out, 500, f"No valid host for live migration: {exc}".splitlines()[0],
                                details=str(exc), reason="NoValidHost", keep_status=True)
                    st["lastMigrateRequestId"] = req.request_id
                    out.events.append(("Warning", "MigrationFailed", "no valid host to migrate to"))
                    return True
                # KubeVirt's LiveUpdate rollout propagates the template's nodeSelector to the
                # running VMI; the migration's target pod then lands on the new host
                self.cluster.patch_vm(ns, name, _pin(target))
                st.update(status=ServerState.MIGRATING, taskState=TaskState.MIGRATING)
                out.events.append(("Normal", "Migrating", f"Live-migrating from {st['host']} to {target}"))
            elif _selected_host(vmi) == target:
                # step 2: the VMI carries the new selector; start the migration
                if self.cache.instance(uid + "#target") is None:  # operator restarted meanwhile
                    self.cache.add_instance(target, uid + "#target", _usage(flavor), project=ns)
                self.cluster.create({
                    "apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstanceMigration",
                    "metadata": {"name": mig_name, "namespace": ns, "ownerReferences": [owner_ref(server)],
                                 "labels": {"kubestack.io/server": name}},
                    "spec": {"vmiName": name},
                })
                st.update(status=ServerState.MIGRATING, taskState=TaskState.MIGRATING)
            out.requeue_after = 1.0
            return True
        phase = (mig.get("status") or {}).get("phase")
        if phase == "Succeeded":
            target = _selected_host(vm) or st["host"]  # the host step 1 pointed the VM at
            flavor = FlavorSnapshot.model_validate(st["flavor"])
            record = self.cache.instance(uid)
            self.scheduler.release(uid + "#target")
            self.cache.add_instance(target, uid, _usage(flavor), project=ns,
                                    group=record.group if record else None)
            old = st["host"]
            st.update(host=target, hypervisorHostname=target, lastMigrateRequestId=req.request_id,
                      status=ServerState.ACTIVE, taskState=None)
            node = self.cluster.node(target) or {}
            st["availabilityZone"] = (node.get("metadata", {}).get("labels") or {}).get(ZONE_LABEL)
            out.events.append(("Normal", "Migrated", f"Live-migrated from {old} to {target}"))
            return False
        if phase == "Failed":
            self.scheduler.release(uid + "#target")
            self.cluster.patch_vm(ns, name, _pin(st["host"]))
            st.update(lastMigrateRequestId=req.request_id, status=ServerState.ACTIVE, taskState=None)
            reason = ((mig.get("status") or {}).get("migrationState") or {}).get("failureReason") or "failed"
            self._error(out, 500, f"Live migration failed: {reason}", reason="MigrationFailed", keep_status=True)
            st["status"] = ServerState.ACTIVE
            out.events.append(("Warning", "MigrationFailed", f"Live migration failed: {reason}"))
            return False
        st.update(status=ServerState.MIGRATING, taskState=TaskState.MIGRATING)
        out.requeue_after = 1.0
        return True

    def _claim_target(self, uid: str, ns: str, flavor: FlavorSnapshot, host: str | None,
                      zone: str | None = None) -> str:
        """Claim room for a moving server on `host`, or on a host the scheduler picks among
        the others in the zone the server asked for (Nova moves with the original request
        spec), holding source and target allocation while moving, as Nova does."""
        if host:
            self.cache.claim(host, uid + "#target", _usage(flavor), project=ns)
            return host
        request = RequestSpec(
            flavor=_sched_flavor(flavor),
            project=ns, instance_ids=(uid + "#target",), availability_zone=zone,
            scheduler_hints=SchedulerHints(different_host=(uid,)))
        return self.scheduler.select_and_claim(request)[0].host

    # ------------------------------------------------------------------ shelve
    def _shelve(self, server, model: Server, vm, out: Outcome) -> None:
        st = out.status
        ns, name = model.metadata.namespace, model.metadata.name
        if vm is not None:
            self.cluster.delete_vm(ns, name)
            st.update(status=ServerState.SHELVED, taskState=TaskState.SHELVING_OFFLOADING,
                      powerState=PowerState.SHUTDOWN)
            out.events.append(("Normal", "Shelving", "Shelving: VM removed, disks and addresses kept"))
            out.requeue_after = 1.0
            return
        # offloaded: the host's resources are free again, the server keeps its data
        self.forget_claim_only(server)
        st.update(status=ServerState.SHELVED_OFFLOADED, vmState=VmState.SHELVED_OFFLOADED,
                  powerState=PowerState.SHUTDOWN, taskState=None, host=None, hypervisorHostname=None)
        st["conditions"] = set_condition(st.get("conditions"), "Ready", False, "Shelved",
                                         "server is shelved", generation=server["metadata"].get("generation"))
        out.events.append(("Normal", "Shelved", "Server is SHELVED_OFFLOADED"))

    def forget_claim_only(self, server) -> None:
        uid = instance_id(server)
        for suffix in ("", "#source", "#target"):
            self.scheduler.release(uid + suffix)

    # ------------------------------------------------------------------ evacuate
    def _evacuate_if_host_down(self, server, model: Server, resolved: Resolved, vm, vmi, out: Outcome) -> bool:
        st = out.status
        host = st.get("host")
        # the VM's disks are container disks or network volumes, so it can start elsewhere
        if not _host_down(self.cluster.node(host)):
            return False
        ns, name = model.metadata.namespace, model.metadata.name
        uid = instance_id(server)
        flavor = FlavorSnapshot.model_validate(st["flavor"])
        record = self.cache.instance(uid)
        try:
            target = self._claim_target(uid, ns, flavor, None, _zone(model.spec.availability_zone))
        except NoValidHost as exc:
            self._error(out, 500, f"host {host} is down and no other host can take the server",
                        details=str(exc), reason="NoValidHost", keep_status=True)
            return True
        self.scheduler.release(uid + "#target")
        self.cache.add_instance(target, uid, _usage(flavor), project=ns, group=record.group if record else None)
        if vm is not None:
            self.cluster.patch_vm(ns, name, _pin(target))
        if vmi is not None:
            self.cluster.delete_vmi(ns, name)
        node = self.cluster.node(target) or {}
        st.update(host=target, hypervisorHostname=target, status=ServerState.REBUILD,
                  taskState=TaskState.REBUILDING,
                  availabilityZone=(node.get("metadata", {}).get("labels") or {}).get(ZONE_LABEL))
        out.events.append(("Warning", "Evacuated", f"host {host} is down: rebuilding on {target}"))
        out.requeue_after = 1.0
        return True

    # ------------------------------------------------------------------ errors
    def _error(self, out: Outcome, code: int, message: str, *, details: str | None = None,
               reason: str = "Error", keep_status: bool = False) -> None:
        st = out.status
        previous = (st.get("fault") or {}).get("message")
        fault = Fault(code=code, message=message, details=details).to_k8s()
        old_created = (st.get("fault") or {}).get("created")
        fault["created"] = old_created if previous == message and old_created else now()
        st["fault"] = fault
        if not keep_status:
            st.update(status=ServerState.ERROR, vmState=VmState.ERROR, taskState=None)
            st["conditions"] = set_condition(st.get("conditions"), "Ready", False, reason, message)
        if previous != message:
            out.events.append(("Warning", reason, message + (f"\n{details}" if details else "")))


# ---------------------------------------------------------------------- helpers


def _built(status: Mapping[str, Any]) -> bool:
    """The server was built and placed (not BUILD, not a failed build)."""
    return bool(status.get("host")) and status.get("status") not in (None, ServerState.BUILD, ServerState.ERROR)


def _drop_lapsed_refusal(status: dict[str, Any], generation: int | None) -> None:
    """Remove the RequestRefused condition before a reconcile looks, unless it still stands.

    A refused rebuild of a volume-backed server answered a one-time request (its request id is
    recorded, so it is not looked at again): its condition stands until the spec changes. Any
    other refusal is of the spec as it is (a missing image or flavor, quota), which this
    reconcile checks again: `_refuse` sets the condition again if the refusal still applies,
    else it is gone (the spec was fixed, or the image appeared, or quota was freed)."""
    conditions = status.get("conditions") or []
    refused = next((c for c in conditions if c.get("type") == REFUSED_CONDITION), None)
    if refused is None or (refused.get("reason") == VOLUME_BACKED
                           and refused.get("observedGeneration") == generation):
        return
    status["conditions"] = [c for c in conditions if c is not refused]


def _record_key(status: dict[str, Any], model: Server, resolved: Resolved) -> None:
    """Keep the key the server is given in its status, as Nova keeps key_name and key_data on
    the instance: the key pair may be deleted later, and the guest keeps its key through
    rebuild and unshelve (references.resolve reads it back). Written with the boot's claim,
    before the VM exists, so no VM carries a key its status does not record."""
    key_name = model.spec.key_name if resolved.public_key else None
    status.update(keyName=key_name, keyData=resolved.public_key)


def _sched_flavor(flavor: FlavorSnapshot) -> SchedFlavor:
    """The scheduler's view of a flavor (root, ephemeral and swap sizes, extra specs)."""
    return SchedFlavor(name=flavor.name or "", vcpus=flavor.vcpus, ram_mb=flavor.ram, disk_gb=flavor.disk,
                       ephemeral_gb=flavor.ephemeral, swap_mb=flavor.swap, extra_specs=flavor.extra_specs)


def _usage(flavor: FlavorSnapshot) -> Usage:
    return Usage(vcpus=flavor.vcpus, ram_mb=flavor.ram, disk_gb=flavor.disk + flavor.ephemeral)


def _snapshot(name: str, flavor_obj: Mapping[str, Any]) -> FlavorSnapshot:
    spec = flavor_obj.get("spec") or {}
    return FlavorSnapshot(name=name, vcpus=spec["vcpus"], ram=spec["ram"], disk=spec.get("disk", 0),
                          ephemeral=spec.get("ephemeral", 0), swap=spec.get("swap", 0),
                          extra_specs=spec.get("extraSpecs") or {})


def _zone(requested: str | None) -> str | None:
    """Nova's `--availability-zone zone[:host[:node]]`: the zone part."""
    if not requested:
        return None
    return requested.split(":", 1)[0] or None


def _host_down(node: Mapping[str, Any] | None) -> bool:
    if node is None:
        return False
    for cond in (node.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return cond.get("status") != "True"
    return False


def _cloud_init_secret_of(vm: Mapping[str, Any] | None) -> str | None:
    """The Secret the VM's cloud-init volume reads, if it reads one."""
    for volume in ((((vm or {}).get("spec") or {}).get("template") or {}).get("spec") or {}).get("volumes") or []:
        if volume.get("name") == CLOUD_INIT_VOLUME:
            return ((volume.get("cloudInitNoCloud") or {}).get("secretRef") or {}).get("name")
    return None


def _uses_cloud_init_secret(vm: Mapping[str, Any] | None) -> bool:
    return _cloud_init_secret_of(vm) is not None


def _root_source(obj: Mapping[str, Any] | None) -> str | None:
    """What a VM's template (or a VMI) boots from: the root DataVolume / PVC name, or the
    containerDisk image (compared by name only: KubeVirt adds defaults to a VMI's volumes)."""
    spec = (obj or {}).get("spec") or {}
    if "template" in spec:
        spec = spec["template"].get("spec") or {}
    for volume in spec.get("volumes") or []:
        if volume.get("name") == ROOT_DISK:
            return (volume.get("dataVolume") or {}).get("name") or \
                (volume.get("persistentVolumeClaim") or {}).get("claimName") or \
                (volume.get("containerDisk") or {}).get("image")
    return None


def _selected_host(obj: Mapping[str, Any] | None) -> str | None:
    """The host a VM's template (or a VMI's spec) is pinned to."""
    spec = (obj or {}).get("spec") or {}
    if "template" in spec:
        spec = spec["template"].get("spec") or {}
    return (spec.get("nodeSelector") or {}).get(HOSTNAME_LABEL)


def _short(request_id: str) -> str:
    import hashlib

    return hashlib.sha1(request_id.encode()).hexdigest()[:8]


def spec_hints(model: Server, cluster: Cluster, namespace: str) -> SchedulerHints:
    """same_host / different_host name Servers; the scheduler knows instances by uid."""
    hints = model.spec.scheduler_hints
    if hints is None:
        return SchedulerHints()

    def uids(names: list[str]) -> tuple[str, ...]:
        out = []
        for n in names:
            other = cluster.server(namespace, n)
            if other is not None:
                out.append(other["metadata"]["uid"])
        return tuple(out)

    return SchedulerHints(same_host=uids(hints.same_host), different_host=uids(hints.different_host))


def _pin(host: str) -> dict:
    """The VM patch that points its template at `host` (KubeVirt's LiveUpdate rollout carries
    it to the running VMI; a migration or restart then lands there)."""
    return {"spec": {"template": {"spec": {"nodeSelector": {HOSTNAME_LABEL: host}}}}}


def _vm_size_patch(flavor: FlavorSnapshot, host: str) -> dict:
    from kubestack.compute.render import _cpu, _memory

    return {"metadata": {"annotations": {"kubestack.io/flavor": flavor.name or ""}},
            "spec": {"template": {"spec": {
                "nodeSelector": {HOSTNAME_LABEL: host},
                "domain": {"cpu": _cpu(flavor), "memory": _memory(flavor),
                           "resources": {"requests": {"memory": f"{flavor.ram}Mi"}}}}}}}


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
