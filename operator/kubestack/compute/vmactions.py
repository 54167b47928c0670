"""How the operator acts on a running VM: pause, unpause, soft reboot, restart, start, stop,
volume hotplug, and Nova's suspend/resume.

Real KubeVirt serves these as *subresources* of the aggregated API group
`subresources.kubevirt.io/v1` (served by virt-api, not by kube-apiserver); every call is a PUT:

=================  =========================================================================
action             path under /apis/subresources.kubevirt.io/v1/namespaces/{ns}/
=================  =========================================================================
pause / unpause    virtualmachineinstances/{name}/pause | unpause      body PauseOptions/UnpauseOptions
softreboot         virtualmachineinstances/{name}/softreboot           no body
restart            virtualmachines/{name}/restart                      body RestartOptions
start / stop       virtualmachines/{name}/start | stop                 body StartOptions/StopOptions
addvolume          virtualmachines/{name}/addvolume                    body AddVolumeOptions
removevolume       virtualmachines/{name}/removevolume                 body RemoveVolumeOptions
=================  =========================================================================

The local control plane has no virt-api, so the `simulator` backend instead writes a request
annotation that `kubestack simulate` executes (VMI-level actions on the VMI, VM-level ones on the
VM)::

    simulator.kubestack.io/request: {"action": "pause", "id": "<uuid>", "options": {...}}

and the simulator answers on the same object::

    simulator.kubestack.io/request-status: {"id": "<uuid>", "action": "pause",
                                            "result": "Succeeded" | "Failed", "message": "..."}

Both backends validate the request against the current objects first, with virt-api's rules
(`validate_action`), and raise `VMActionError` synchronously, as a real subresource call answers
4xx. With the simulator the effect then lands asynchronously, just as with a real cluster the
effect of a subresource call lands when virt-handler acts: follow the VMI/VM status either way.

Suspend: KubeVirt has no suspend (Nova's suspend saves guest memory to disk and frees the host).
`suspend()` therefore pauses the guest (memory stays resident on the host: the scheduler must keep
counting it) and marks the VMI `kubestack.io/suspended: "true"` so the operator can report
SUSPENDED rather than PAUSED; `resume()` unpauses and removes the mark. A hard restart creates a
new VMI, which is not suspended: that matches Nova, where a hard reboot of a suspended server
boots it afresh.
"""

from __future__ import annotations

import enum
import json
import uuid
from typing import Any, Mapping

from kubestack.k8s.rest import ApiError, api_request

SUBRESOURCE_GROUP_VERSION = "subresources.kubevirt.io/v1"
REQUEST_ANNOTATION = "simulator.kubestack.io/request"
REQUEST_STATUS_ANNOTATION = "simulator.kubestack.io/request-status"
SUSPENDED_ANNOTATION = "kubestack.io/suspended"

# action -> (resource it is a subresource of, subresource name)
VMI_ACTIONS = {"pause": "pause", "unpause": "unpause", "softreboot": "softreboot"}
VM_ACTIONS = {"restart": "restart", "start": "start", "stop": "stop",
              "addvolume": "addvolume", "removevolume": "removevolume"}


class Backend(str, enum.Enum):
    SUBRESOURCE = "subresource"  # a real cluster: virt-api's subresources.kubevirt.io
    SIMULATOR = "simulator"      # the local control plane: `kubestack simulate` executes


class VMActionError(Exception):
    """The action was refused (the VM/VMI is not in a state that allows it, or does not exist)."""

    def __init__(self, action: str, message: str, status: int | None = None):
        super().__init__(f"{action}: {message}")
        self.action = action
        self.message = message
        self.status = status


# -- pure rules (shared with the simulator) ---------------------------------------------------

def run_strategy(vm: Mapping | None) -> str:
    spec = (vm or {}).get("spec") or {}
    if spec.get("runStrategy"):
        return spec["runStrategy"]
    if "running" in spec:
        return "Always" if spec["running"] else "Halted"
    return "Halted"


def _vmi_running(vmi: Mapping | None) -> bool:
    return bool(vmi) and (vmi.get("status") or {}).get("phase") == "Running" \
        and not (vmi.get("metadata") or {}).get("deletionTimestamp")


def _vmi_paused(vmi: Mapping | None) -> bool:
    for c in ((vmi or {}).get("status") or {}).get("conditions") or ():
        if c.get("type") == "Paused" and c.get("status") == "True":
            return True
    return False


def _template_spec(vm: Mapping | None) -> Mapping:
    return (((vm or {}).get("spec") or {}).get("template") or {}).get("spec") or {}


def validate_action(action: str, vm: Mapping | None, vmi: Mapping | None,
                    options: Mapping | None = None) -> str | None:
    """virt-api's admission rule for `action`: None when allowed, else the refusal message."""
    options = options or {}
    if action in VMI_ACTIONS:
        if vmi is None:
            return "VMI does not exist"
        if not _vmi_running(vmi):
            return "VMI is not running"
        if action == "pause" and _vmi_paused(vmi):
            return "VMI is already paused"
        if action == "unpause" and not _vmi_paused(vmi):
            return "VMI is not paused"
        if action == "softreboot" and _vmi_paused(vmi):
            return "VMI is paused"
        return None
    if action not in VM_ACTIONS:
        return f"unknown action {action!r}"
    if vm is None:
        return "VM does not exist"
    strategy = run_strategy(vm)
    if action == "restart":
        if strategy == "Halted" or vmi is None:
            return "VM is not running"
        return None
    if action == "start":
        if strategy in ("Always", "RerunOnFailure", "Once") and vmi is not None \
                and not _vmi_final(vmi):
            return "VM is already running"
        return None
    if action == "stop":
        if strategy == "Halted" and vmi is None:
            return "VM is not running"
        if strategy == "Manual" and vmi is None:
            return "VM is not running"
        return None
    volumes = _template_spec(vm).get("volumes") or []
    if action == "addvolume":
        name = options.get("name")
        if not name:
            return "AddVolumeOptions requires a name"
        source = options.get("volumeSource") or {}
        if not (source.get("persistentVolumeClaim") or source.get("dataVolume")):
            return "AddVolumeOptions requires a persistentVolumeClaim or dataVolume volumeSource"
        if any(v.get("name") == name for v in volumes):
            return f"Unable to add volume [{name}] because volume with that name already exists"
        return None
    # removevolume
    name = options.get("name")
    for v in volumes:
        if v.get("name") == name:
            src = v.get("persistentVolumeClaim") or v.get("dataVolume") or {}
            if not src.get("hotpluggable"):
                return f"Unable to remove volume [{name}] because it is not hotpluggable"
            return None
    return f"Unable to remove volume [{name}] because it does not exist"


def _vmi_final(vmi: Mapping) -> bool:
    return (vmi.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def hotplug_volume(options: Mapping) -> tuple[dict, dict]:
    """(disk, volume) to add to a VM template / VMI spec for AddVolumeOptions `options`."""
    name = options["name"]
    disk = dict(options.get("disk") or {})
    disk["name"] = name
    if not any(k in disk for k in ("disk", "lun", "cdrom")):
        disk["disk"] = {"bus": "scsi"}
    source = options.get("volumeSource") or {}
    volume: dict[str, Any] = {"name": name}
    for kind in ("persistentVolumeClaim", "dataVolume"):
        if source.get(kind):
            volume[kind] = {**source[kind], "hotpluggable": True}
    return disk, volume


# -- the adapter ------------------------------------------------------------------------------

class VMActions:
    """Acts on a VM's runtime through the backend chosen for the cluster.

        actions = VMActions(api_client, Backend.SIMULATOR)
        actions.pause("project-a", "web-1")

    Every method validates first (raising VMActionError when the VM/VMI does not allow it) and
    returns the request id (simulator: the id to find in `request-status`; subresource: a fresh
    id for logs, the call having already been answered).
    """

    def __init__(self, api_client: Any, backend: Backend | str = Backend.SUBRESOURCE):
        self.api = api_client
        self.backend = Backend(backend)

    # VMI-level
    def pause(self, namespace: str, name: str) -> str:
        return self._act("pause", namespace, name, {})

    def unpause(self, namespace: str, name: str) -> str:
        return self._act("unpause", namespace, name, {})

    def soft_reboot(self, namespace: str, name: str) -> str:
        return self._act("softreboot", namespace, name, None)

    # VM-level
    def restart(self, namespace: str, name: str, grace_period_seconds: int | None = None) -> str:
        """Hard restart: the VMI is deleted and the VM controller creates a new one."""
        body: dict = {}
        if grace_period_seconds is not None:
            body["gracePeriodSeconds"] = grace_period_seconds
        return self._act("restart", namespace, name, body)

    def start(self, namespace: str, name: str) -> str:
        return self._act("start", namespace, name, {})

    def stop(self, namespace: str, name: str) -> str:
        return self._act("stop", namespace, name, {})

    def add_volume(self, namespace: str, name: str, volume_name: str, *,
                   claim_name: str | None = None, data_volume: str | None = None,
                   bus: str = "scsi", serial: str | None = None) -> str:
        """Hotplug a PVC (claim_name) or a DataVolume (data_volume) as disk `volume_name`."""
        if bool(claim_name) == bool(data_volume):
            raise VMActionError("addvolume", "give exactly one of claim_name and data_volume")
        source = ({"persistentVolumeClaim": {"claimName": claim_name, "hotpluggable": True}}
                  if claim_name else {"dataVolume": {"name": data_volume, "hotpluggable": True}})
        disk: dict[str, Any] = {"name": volume_name, "disk": {"bus": bus}}
        if serial:
            disk["serial"] = serial
        return self._act("addvolume", namespace, name,
                         {"name": volume_name, "disk": disk, "volumeSource": source})

    def remove_volume(self, namespace: str, name: str, volume_name: str) -> str:
        return self._act("removevolume", namespace, name, {"name": volume_name})

    # Nova's suspend/resume (see the module docstring)
    def suspend(self, namespace: str, name: str) -> str:
        request_id = self.pause(namespace, name)
        self._patch_annotations("VirtualMachineInstance", namespace, name, {SUSPENDED_ANNOTATION: "true"})
        return request_id

    def resume(self, namespace: str, name: str) -> str:
        request_id = self.unpause(namespace, name)
        self._patch_annotations("VirtualMachineInstance", namespace, name, {SUSPENDED_ANNOTATION: None})
        return request_id

    def request_status(self, namespace: str, name: str, request_id: str) -> dict | None:
        """Simulator backend: the simulator's answer for request_id, or None while pending."""
        for plural in ("virtualmachineinstances", "virtualmachines"):
            obj = self._get(plural, namespace, name)
            raw = ((obj or {}).get("metadata", {}).get("annotations") or {}).get(REQUEST_STATUS_ANNOTATION)
            if raw:
                status = json.loads(raw)
                if status.get("id") == request_id:
                    return status
        return None

    # -- internals
    def _act(self, action: str, namespace: str, name: str, body: dict | None) -> str:
        vm = self._get("virtualmachines", namespace, name)
        vmi = self._get("virtualmachineinstances", namespace, name)
        if action in VMI_ACTIONS and vmi is None and vm is None:
            raise VMActionError(action, f"VirtualMachineInstance {namespace}/{name} not found", 404)
        if action in VM_ACTIONS and vm is None:
            raise VMActionError(action, f"VirtualMachine {namespace}/{name} not found", 404)
        problem = validate_action(action, vm, vmi, body)
        if problem:
            raise VMActionError(action, problem, 409)
        request_id = str(uuid.uuid4())
        if self.backend is Backend.SUBRESOURCE:
            self._put_subresource(action, namespace, name, body)
        else:
            kind = "VirtualMachineInstance" if action in VMI_ACTIONS else "VirtualMachine"
            request = {"action": action, "id": request_id}
            if body:
                request["options"] = body
            self._patch_annotations(kind, namespace, name, {REQUEST_ANNOTATION: json.dumps(request)})
        return request_id

    def _put_subresource(self, action: str, namespace: str, name: str, body: dict | None) -> None:
        plural = "virtualmachineinstances" if action in VMI_ACTIONS else "virtualmachines"
        sub = VMI_ACTIONS.get(action) or VM_ACTIONS[action]
        path = f"/apis/{SUBRESOURCE_GROUP_VERSION}/namespaces/{namespace}/{plural}/{name}/{sub}"
        try:
            api_request(self.api, "PUT", path, body=body)
        except ApiError as exc:
            raise VMActionError(action, exc.message, exc.status) from exc

    def _get(self, plural: str, namespace: str, name: str) -> dict | None:
        try:
            return api_request(self.api, "GET", f"/apis/kubevirt.io/v1/namespaces/{namespace}/{plural}/{name}")
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def _patch_annotations(self, kind: str, namespace: str, name: str, values: dict) -> None:
        plural = "virtualmachineinstances" if kind == "VirtualMachineInstance" else "virtualmachines"
        path = f"/apis/kubevirt.io/v1/namespaces/{namespace}/{plural}/{name}"
        try:
            api_request(self.api, "PATCH", path, body={"metadata": {"annotations": values}},
                        content_type="application/merge-patch+json")
        except ApiError as exc:
            raise VMActionError(kind, exc.message, exc.status) from exc
