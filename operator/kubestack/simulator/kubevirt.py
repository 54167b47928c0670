"""KubeVirt's virt-controller and virt-handler, as pure functions of the objects they read.

`reconcile_vm`        the VM controller: runStrategy, stateChangeRequests, dataVolumeTemplates,
                      LiveUpdate of nodeSelector/affinity, crash-loop back-off, VM status.
`reconcile_vmi`       the VMI controller + virt-handler: volumes gate, scheduling onto a node,
                      phases Pending -> Scheduling -> Scheduled -> Running, interfaces, node
                      heartbeat loss (Failed/NodeUnresponsive), pause/unpause/softreboot.
`reconcile_migration` the migration controller: Pending ... Succeeded | Failed, moving the VMI.

Each returns an `Outcome` (writes + when to look again); nothing here does I/O.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Mapping

from kubestack.compute.vmactions import hotplug_volume, run_strategy, validate_action
from kubestack.simulator.common import (
    ANN_INTERFACE_ADDRESSES, ANN_REBOOTS, ANN_REQUEST, ANN_REQUEST_STATUS, COMPUTE_HOST_LABEL,
    HOSTNAME_LABEL, Outcome, World, Write, condition_true, deep, deleting, fail_modes,
    find_condition, fmt_time, get, load_json_annotation, make_condition, merge_patch,
    metadata_write, owner_ref, parse_time, put_conditions, stable_int, status_write, unit_random,
    NO_CHANGE,
)

FINAL_PHASES = ("Succeeded", "Failed")
NODE_NAME_LABEL = "kubevirt.io/nodeName"
VM_GENERATION_ANNOTATION = "kubevirt.io/vm-generation"
POD_NETWORK = ipaddress.ip_network("10.244.0.0/16")
LIVE_UPDATE_FIELDS = ("nodeSelector", "affinity")


# -- nodes ------------------------------------------------------------------------------------

def node_ready(node: Mapping | None) -> bool:
    return bool(node) and condition_true(get(node, "status", "conditions"), "Ready") \
        and not deleting(node)


def node_matches(node: Mapping, selector: Mapping[str, str]) -> bool:
    labels = get(node, "metadata", "labels", default={})
    return all(labels.get(k) == v for k, v in selector.items())


def eligible_nodes(world: World, selector: Mapping[str, str], exclude: str | None = None) -> list[str]:
    """Ready, schedulable nodes matching `selector`; compute hosts only unless the selector pins
    a hostname explicitly."""
    pinned = HOSTNAME_LABEL in selector
    out = []
    for name, node in world.nodes.items():
        if name == exclude or not node_ready(node) or get(node, "spec", "unschedulable"):
            continue
        if not pinned and get(node, "metadata", "labels", COMPUTE_HOST_LABEL) != "true":
            continue
        if node_matches(node, selector):
            out.append(name)
    return sorted(out)


def unschedulable_message(world: World, selector: Mapping[str, str]) -> str:
    total = len(world.nodes)
    pinned = selector.get(HOSTNAME_LABEL)
    if pinned and pinned not in world.nodes:
        return f"0/{total} nodes are available: {total} node(s) didn't match Pod's node affinity/selector."
    not_ready = sum(1 for n in world.nodes.values() if not node_ready(n))
    reasons = []
    if not_ready:
        reasons.append(f"{not_ready} node(s) had untolerated taint {{node.kubernetes.io/not-ready: }}")
    mismatched = sum(1 for n in world.nodes.values() if node_ready(n) and not node_matches(n, selector))
    if mismatched:
        reasons.append(f"{mismatched} node(s) didn't match Pod's node affinity/selector")
    return f"0/{total} nodes are available: " + (", ".join(reasons) or "no compute host") + "."


# -- volumes ----------------------------------------------------------------------------------

def claim_of(volume: Mapping) -> str | None:
    if volume.get("persistentVolumeClaim"):
        return volume["persistentVolumeClaim"].get("claimName")
    if volume.get("dataVolume"):
        return volume["dataVolume"].get("name")
    return None


def is_hotplug(volume: Mapping) -> bool:
    src = volume.get("persistentVolumeClaim") or volume.get("dataVolume") or {}
    return bool(src.get("hotpluggable"))


def volume_gate(namespace: str, spec: Mapping, world: World) -> tuple[str, str, str] | None:
    """Why a VMI with `spec` cannot start yet: (condition type, reason, message), or None."""
    for volume in spec.get("volumes") or ():
        claim = claim_of(volume)
        if not claim or is_hotplug(volume):
            continue
        pvc = world.pvcs.get((namespace, claim))
        if pvc is None:
            return ("Synchronized", "FailedPvcNotFound",
                    f"PVC {namespace}/{claim} does not exist, waiting for it to appear")
        if get(pvc, "status", "phase") != "Bound":
            return ("PodScheduled", "Unschedulable",
                    f"0/{len(world.nodes)} nodes are available: pod has unbound immediate "
                    f"PersistentVolumeClaims ({claim}).")
    return None


def data_volumes_state(vm: Mapping, world: World) -> tuple[str, str]:
    """('ready'|'provisioning'|'failed', message) for the VM's non-hotplug DataVolume volumes:
    KubeVirt creates the VMI only once they are ready."""
    ns = vm["metadata"]["namespace"]
    for volume in get(vm, "spec", "template", "spec", "volumes", default=[]):
        if not volume.get("dataVolume") or is_hotplug(volume):
            continue
        name = volume["dataVolume"].get("name")
        dv = world.dvs.get((ns, name))
        if dv is None:
            continue  # no DataVolume: the VMI's volume gate decides (PVC or ErrorPvcNotFound)
        phase = get(dv, "status", "phase", default="")
        if phase == "Failed":
            return "failed", f"DataVolume {name} failed"
        if phase not in ("Succeeded", "WaitForFirstConsumer"):
            return "provisioning", f"DataVolume {name} is {phase or 'Pending'}"
    return "ready", ""


# -- VM ---------------------------------------------------------------------------------------

def vmi_from_template(vm: Mapping) -> dict:
    template = get(vm, "spec", "template", default={})
    tmeta = template.get("metadata") or {}
    md = vm["metadata"]
    annotations = dict(tmeta.get("annotations") or {})
    annotations[VM_GENERATION_ANNOTATION] = str(md.get("generation", 1))
    meta = {
        "name": md["name"],
        "namespace": md["namespace"],
        "labels": dict(tmeta.get("labels") or {}),
        "annotations": annotations,
        "ownerReferences": [owner_ref(vm)],
    }
    if not meta["labels"]:
        del meta["labels"]
    return {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachineInstance",
        "metadata": meta,
        "spec": deep(template.get("spec") or {}),
    }


def _without(spec: Mapping, keys) -> dict:
    return {k: v for k, v in spec.items() if k not in keys}


def _start_failure_backoff(count: int, world: World) -> float:
    base = max(world.config.restart_backoff, 0.1)
    return min(base * (2 ** max(count - 1, 0)), max(world.config.max_restart_backoff, base))


def _reached_running(vmi: Mapping) -> bool:
    return any(p.get("phase") == "Running" for p in get(vmi, "status", "phaseTransitionTimestamps", default=[]))


def reconcile_vm(vm: Mapping, vmi: Mapping | None, world: World) -> Outcome:
    out = Outcome()
    md = vm["metadata"]
    ns, name = md["namespace"], md["name"]
    now = world.now
    status = deep(vm.get("status") or {})

    if deleting(vm):
        if vmi is not None and not deleting(vmi):
            out.writes.append(Write("delete", "VirtualMachineInstance", ns, name, uid=vmi["metadata"]["uid"]))
        status["printableStatus"] = "Terminating"
        w = status_write(vm, status)
        if w:
            out.writes.append(w)
        return out

    # 1. a new action request (start/stop/restart/addvolume/removevolume): one step at a time
    request = load_json_annotation(vm, ANN_REQUEST)
    done = load_json_annotation(vm, ANN_REQUEST_STATUS) or {}
    if request and request.get("id") and request.get("id") != done.get("id"):
        return _execute_vm_request(vm, vmi, request, world)

    # 2. dataVolumeTemplates: KubeVirt creates the DataVolumes, owned by the VM
    for tmpl in get(vm, "spec", "dataVolumeTemplates", default=[]):
        dv_name = get(tmpl, "metadata", "name")
        if dv_name and (ns, dv_name) not in world.dvs:
            tmeta = tmpl.get("metadata") or {}
            body = {
                "apiVersion": "cdi.kubevirt.io/v1beta1",
                "kind": "DataVolume",
                "metadata": {"name": dv_name, "namespace": ns, "ownerReferences": [owner_ref(vm)],
                             **{k: tmeta[k] for k in ("labels", "annotations") if tmeta.get(k)}},
                "spec": deep(tmpl.get("spec") or {}),
            }
            out.writes.append(Write("create", "DataVolume", ns, dv_name, body))

    strategy = run_strategy(vm)
    requests = list(status.get("stateChangeRequests") or [])
    alive = vmi is not None and not deleting(vmi)
    final = alive and get(vmi, "status", "phase") in FINAL_PHASES
    dv_state, dv_message = data_volumes_state(vm, world)
    create = delete = False

    # 2b. start failures (crash-loop back-off) are counted once per failed VMI
    failure = status.get("startFailure")
    if final and get(vmi, "status", "phase") == "Failed" and not _reached_running(vmi):
        if not failure or failure.get("lastFailedVMIUID") != vmi["metadata"]["uid"]:
            count = (failure or {}).get("consecutiveFailCount", 0) + 1
            failure = {"consecutiveFailCount": count, "lastFailedVMIUID": vmi["metadata"]["uid"],
                       "retryAfterTimestamp": fmt_time(now + _start_failure_backoff(count, world))}
            status["startFailure"] = failure
    elif alive and get(vmi, "status", "phase") == "Running" and failure:
        failure = None
        status.pop("startFailure", None)
    retry_after = parse_time((failure or {}).get("retryAfterTimestamp"))
    backing_off = retry_after is not None and retry_after > now and strategy in ("Always", "RerunOnFailure")

    # 3. stateChangeRequests (restart = [Stop uid, Start]; Manual start/stop)
    if requests and requests[0].get("action") == "Stop":
        uid = requests[0].get("uid")
        if alive and (not uid or uid == vmi["metadata"]["uid"]):
            delete = True
        elif not alive or (uid and uid != vmi["metadata"]["uid"]):
            requests.pop(0)
    if requests and requests[0].get("action") == "Start" and not delete:
        if vmi is None:
            if dv_state == "ready":
                create = True
                requests.pop(0)
        elif final:
            delete = True  # a finished VMI is removed first, then the Start creates a new one
        elif alive:
            requests.pop(0)  # already running

    # 4. the run strategy
    if not delete and not create:
        if strategy == "Halted":
            delete = alive
        elif strategy == "Always":
            if final:
                delete = True
            elif vmi is None and dv_state == "ready" and not backing_off:
                create = True
        elif strategy == "RerunOnFailure":
            if final and get(vmi, "status", "phase") == "Failed":
                delete = True
            elif vmi is None and dv_state == "ready" and not backing_off:
                create = True
        elif strategy == "Once":
            if vmi is None and dv_state == "ready":
                create = True
    if backing_off and vmi is None:
        out.requeue(retry_after - now)

    if delete and alive:
        out.writes.append(Write("delete", "VirtualMachineInstance", ns, name, uid=vmi["metadata"]["uid"]))
    new_vmi = None
    if create and vmi is None:
        new_vmi = vmi_from_template(vm)
        out.writes.append(Write("create", "VirtualMachineInstance", ns, name, new_vmi))

    # 5. LiveUpdate: nodeSelector / affinity follow the template onto the running VMI
    tspec = get(vm, "spec", "template", "spec", default={})
    restart_required = False
    if alive and not final and not delete:
        vspec = vmi.get("spec") or {}
        patch = {}
        for f in LIVE_UPDATE_FIELDS:
            diff = merge_patch(vspec.get(f), tspec.get(f))
            if diff is not NO_CHANGE:
                patch[f] = diff
        if patch:
            out.writes.append(Write("patch", "VirtualMachineInstance", ns, name, {"spec": patch}))
        restart_required = _without(tspec, LIVE_UPDATE_FIELDS) != _without(vspec, LIVE_UPDATE_FIELDS)

    # 6. status
    shown = new_vmi if new_vmi is not None else (None if delete and not alive else vmi)
    status["stateChangeRequests"] = requests or None
    status["runStrategy"] = strategy
    status["created"] = shown is not None
    status["ready"] = bool(shown is not None and not delete and get(shown, "status", "phase") == "Running"
                           and condition_true(get(shown, "status", "conditions"), "Ready"))
    status["desiredGeneration"] = md.get("generation", 1)
    if shown is not None:
        gen = get(shown, "metadata", "annotations", VM_GENERATION_ANNOTATION)
        if gen and gen.isdigit():
            status["observedGeneration"] = int(gen)
    status["printableStatus"] = printable_status(vm, shown, world, strategy=strategy,
                                                 stopping=delete, dv_state=dv_state,
                                                 backing_off=backing_off)
    conds = status.get("conditions") or []
    ready = _vm_ready_condition(shown if not delete else None, conds, now)
    updates = [ready]
    remove = []
    if shown is not None and condition_true(get(shown, "status", "conditions"), "Paused"):
        pc = find_condition(get(shown, "status", "conditions"), "Paused")
        updates.append(make_condition(conds, "Paused", "True", pc.get("reason", "PausedByUser"),
                                      pc.get("message", "VMI was paused by user"), now))
    else:
        remove.append("Paused")
    if restart_required:
        updates.append(make_condition(conds, "RestartRequired", "True", "",
                                      "a non-live-updatable field was changed in the template spec", now))
    else:
        remove.append("RestartRequired")
    if dv_state == "failed":
        updates.append(make_condition(conds, "DataVolumesReady", "False", "DataVolumeError", dv_message, now))
    elif dv_state == "provisioning":
        updates.append(make_condition(conds, "DataVolumesReady", "False", "NotAllDataVolumesReady", dv_message, now))
    elif any(v.get("dataVolume") for v in tspec.get("volumes") or ()):
        updates.append(make_condition(conds, "DataVolumesReady", "True", "AllDVsReady",
                                      "All of the VMI's DVs are bound and ready", now))
    else:
        remove.append("DataVolumesReady")
    status["conditions"] = put_conditions(conds, updates, remove)
    w = status_write(vm, status)
    if w:
        out.writes.append(w)
    return out


def _vm_ready_condition(vmi: Mapping | None, conds, now: float) -> dict:
    if vmi is None:
        return make_condition(conds, "Ready", "False", "VMINotExists", "VMI does not exist", now)
    rc = find_condition(get(vmi, "status", "conditions"), "Ready")
    if rc is None:
        return make_condition(conds, "Ready", "False", "NotReady", "VMI is not ready yet", now)
    return make_condition(conds, "Ready", rc.get("status", "False"), rc.get("reason", ""),
                          rc.get("message", ""), now)


def printable_status(vm: Mapping, vmi: Mapping | None, world: World, *, strategy: str,
                     stopping: bool = False, dv_state: str = "ready", backing_off: bool = False) -> str:
    if deleting(vm):
        return "Terminating"
    if vmi is not None and (deleting(vmi) or stopping):
        return "Stopping"
    if vmi is None:
        if dv_state == "failed":
            return "DataVolumeError"
        if backing_off:
            return "CrashLoopBackOff"
        if dv_state == "provisioning" and strategy != "Halted":
            return "Provisioning"
        return "Stopped"
    st = vmi.get("status") or {}
    phase = st.get("phase", "")
    conds = st.get("conditions") or []
    ms = st.get("migrationState") or {}
    if phase == "Running":
        if ms.get("startTimestamp") and not ms.get("endTimestamp"):
            return "Migrating"
        if condition_true(conds, "Paused"):
            return "Paused"
        return "Running"
    if phase in FINAL_PHASES:
        return "CrashLoopBackOff" if backing_off else "Stopped"
    sync = find_condition(conds, "Synchronized")
    if sync and sync.get("status") == "False" and sync.get("reason") == "FailedPvcNotFound":
        return "ErrorPvcNotFound"
    sched = find_condition(conds, "PodScheduled")
    if sched and sched.get("status") == "False" and sched.get("reason") == "Unschedulable":
        if "unbound immediate PersistentVolumeClaims" in sched.get("message", ""):
            return "WaitingForVolumeBinding"
        return "ErrorUnschedulable"
    if dv_state == "failed":
        return "DataVolumeError"
    return "Starting"


def _execute_vm_request(vm: Mapping, vmi: Mapping | None, request: Mapping, world: World) -> Outcome:
    out = Outcome()
    md = vm["metadata"]
    ns, name = md["namespace"], md["name"]
    action = request.get("action", "")
    options = request.get("options") or {}
    problem = validate_action(action, vm, vmi, options)
    # an action already carried out before a restart of the simulator must not fail now
    if problem and action == "start" and problem == "VM is already running":
        problem = None
    if problem is None:
        strategy = run_strategy(vm)
        legacy = "running" in (vm.get("spec") or {}) and not (vm.get("spec") or {}).get("runStrategy")
        alive = vmi is not None and not deleting(vmi)
        requests = list(get(vm, "status", "stateChangeRequests", default=[]))
        if action == "start":
            if strategy == "Halted":
                spec = {"running": True} if legacy else {"runStrategy": "Always"}
                out.writes.append(Write("patch", "VirtualMachine", ns, name, {"spec": spec}))
            elif not alive:
                requests.append({"action": "Start"})
        elif action == "stop":
            if strategy in ("Always", "RerunOnFailure", "Once"):
                spec = {"running": False} if legacy else {"runStrategy": "Halted"}
                out.writes.append(Write("patch", "VirtualMachine", ns, name, {"spec": spec}))
            elif alive:
                requests.append({"action": "Stop", "uid": vmi["metadata"]["uid"]})
        elif action == "restart":
            if alive:
                requests = [{"action": "Stop", "uid": vmi["metadata"]["uid"]}, {"action": "Start"}]
        elif action in ("addvolume", "removevolume"):
            out.writes.extend(_hotplug_writes(vm, vmi, action, options))
        if requests != list(get(vm, "status", "stateChangeRequests", default=[])):
            out.writes.append(Write("status", "VirtualMachine", ns, name,
                                    {"status": {"stateChangeRequests": requests or None}}))
    result = {"id": request["id"], "action": action,
              "result": "Failed" if problem else "Succeeded", "message": problem or ""}
    w = metadata_write(vm, annotations={ANN_REQUEST_STATUS: json.dumps(result, sort_keys=True)})
    if w:
        out.writes.append(w)
    out.requeue(0)
    return out


def _hotplug_writes(vm: Mapping, vmi: Mapping | None, action: str, options: Mapping) -> list[Write]:
    """Hotplug edits the VM template and (if it runs) the VMI spec; resourceVersion in the body
    makes the merge patch of the lists fail on a concurrent edit instead of losing it."""
    writes = []
    targets = [(vm, ("spec", "template", "spec"))]
    if vmi is not None and not deleting(vmi):
        targets.append((vmi, ("spec",)))
    for obj, path in targets:
        spec = get(obj, *path, default={})
        disks = list(get(spec, "domain", "devices", "disks", default=[]))
        volumes = list(spec.get("volumes") or [])
        if action == "addvolume":
            disk, volume = hotplug_volume(options)
            if any(v.get("name") == volume["name"] for v in volumes):
                continue
            disks.append(disk)
            volumes.append(volume)
        else:
            vol = options.get("name")
            disks = [d for d in disks if d.get("name") != vol]
            volumes = [v for v in volumes if v.get("name") != vol]
        body: dict = {"volumes": volumes, "domain": {"devices": {"disks": disks}}}
        for p in reversed(path):
            body = {p: body}
        body.setdefault("metadata", {})["resourceVersion"] = obj["metadata"]["resourceVersion"]
        md = obj["metadata"]
        writes.append(Write("patch", obj["kind"], md["namespace"], md["name"], body))
    return writes


# -- VMI --------------------------------------------------------------------------------------

def _phase_times(vmi: Mapping) -> dict[str, float]:
    out = {}
    for p in get(vmi, "status", "phaseTransitionTimestamps", default=[]):
        t = parse_time(p.get("phaseTransitionTimestamp"))
        if t is not None:
            out[p.get("phase")] = t
    return out


def _enter(status: dict, phase: str, now: float) -> None:
    status["phase"] = phase
    stamps = [p for p in status.get("phaseTransitionTimestamps") or [] if p.get("phase") != phase]
    stamps.append({"phase": phase, "phaseTransitionTimestamp": fmt_time(now)})
    status["phaseTransitionTimestamps"] = stamps


def pod_ip_for(vmi: Mapping, world: World) -> str:
    """A pod-network address unique among live VMIs, stable for this VMI (its uid seeds it).
    Unique as far as `world.pod_ips` knows: the simulator puts there both the addresses VMIs
    report and those reserved by decisions whose status write is still in flight."""
    uid = vmi["metadata"]["uid"]
    for iface in get(vmi, "status", "interfaces", default=[]):
        if iface.get("podInterfaceName") == "eth0" and iface.get("ipAddress"):
            return iface["ipAddress"]
    size = POD_NETWORK.num_addresses - 2
    start = stable_int("pod-ip", uid) % size
    for i in range(size):
        ip = str(POD_NETWORK.network_address + 1 + (start + i) % size)
        owner = world.pod_ips.get(ip)
        if owner is None or owner == uid:
            return ip
    raise RuntimeError("pod network 10.244.0.0/16 exhausted")


def pod_ips_of(obj: Mapping | None) -> set[str]:
    """The pod-network addresses in `obj`'s status (a VMI, or a status patch of one)."""
    return {i["ipAddress"] for i in get(obj, "status", "interfaces", default=[])
            if i.get("podInterfaceName") == "eth0" and i.get("ipAddress")}


def mac_for(vmi: Mapping, iface_name: str) -> str:
    n = stable_int("mac", vmi["metadata"]["uid"], iface_name)
    octets = [0x02] + [(n >> (8 * i)) & 0xFF for i in range(5)]
    return ":".join(f"{o:02x}" for o in octets)


def interfaces_status(vmi: Mapping, world: World) -> list[dict]:
    spec = vmi.get("spec") or {}
    networks = {n.get("name"): n for n in spec.get("networks") or []}
    addrs = load_json_annotation(vmi, ANN_INTERFACE_ADDRESSES) or {}
    out = []
    for index, iface in enumerate(get(spec, "domain", "devices", "interfaces", default=[])):
        name = iface.get("name")
        net = networks.get(name, {})
        wanted = addrs.get(name) or {}
        mac = iface.get("macAddress") or wanted.get("mac") or mac_for(vmi, name)
        entry = {"name": name, "interfaceName": f"eth{index}", "mac": mac.lower(), "linkState": "up",
                 "queueCount": 1}
        ips: list[str] = []
        if "pod" in net:
            ips = [pod_ip_for(vmi, world)]
            entry["podInterfaceName"] = "eth0"
            entry["infoSource"] = "domain, guest-agent"
        else:
            ips = [str(ip).split("/")[0] for ip in wanted.get("ips") or []]
            entry["podInterfaceName"] = f"pod{stable_int(name) % 16**11:011x}"
            entry["infoSource"] = "domain, guest-agent, multus-status" if net.get("multus") else "domain, guest-agent"
        if ips:
            entry["ipAddress"] = ips[0]
            entry["ipAddresses"] = ips
        out.append(entry)
    return out


def live_migratable(vmi: Mapping, world: World) -> tuple[bool, str, str]:
    ns = vmi["metadata"]["namespace"]
    spec = vmi.get("spec") or {}
    networks = {n.get("name"): n for n in spec.get("networks") or []}
    for iface in get(spec, "domain", "devices", "interfaces", default=[]):
        if "bridge" in iface and "pod" in networks.get(iface.get("name"), {}):
            return (False, "InterfaceNotLiveMigratable",
                    "cannot migrate VMI which does not use masquerade, bridge with kubevirt.io/allow-pod-bridge-network-live-migration VM annotation or a migratable plugin to connect to the pod network")
    for volume in spec.get("volumes") or ():
        claim = claim_of(volume)
        if not claim:
            continue
        pvc = world.pvcs.get((ns, claim))
        modes = get(pvc, "status", "accessModes", default=None) or get(pvc, "spec", "accessModes", default=[])
        if pvc is not None and "ReadWriteMany" not in modes:
            return (False, "DisksNotLiveMigratable",
                    f"cannot migrate VMI: PVC {claim} is not shared, live migration requires that all PVCs must be shared (using ReadWriteMany access mode)")
    return True, "", ""


def volume_statuses(vmi: Mapping, world: World) -> list[dict]:
    ns = vmi["metadata"]["namespace"]
    spec = vmi.get("spec") or {}
    disks = {d.get("name"): d for d in get(spec, "domain", "devices", "disks", default=[])}
    counters = {"vd": 0, "sd": 0}
    out = []
    for volume in spec.get("volumes") or ():
        name = volume.get("name")
        disk = disks.get(name, {})
        bus = (disk.get("disk") or disk.get("lun") or disk.get("cdrom") or {}).get("bus", "virtio")
        prefix = "vd" if bus == "virtio" else "sd"
        target = prefix + chr(ord("a") + counters[prefix])
        counters[prefix] += 1
        entry: dict = {"name": name, "target": target}
        claim = claim_of(volume)
        if claim:
            pvc = world.pvcs.get((ns, claim))
            if pvc is not None:
                info = {"claimName": claim,
                        "accessModes": get(pvc, "spec", "accessModes", default=[]),
                        "volumeMode": get(pvc, "spec", "volumeMode", default="Filesystem")}
                cap = get(pvc, "status", "capacity")
                if cap:
                    info["capacity"] = dict(cap)
                req = get(pvc, "spec", "resources", "requests")
                if req:
                    info["requests"] = dict(req)
                entry["persistentVolumeClaimInfo"] = info
            if is_hotplug(volume):
                entry["hotplugVolume"] = {"attachPodName": f"hp-volume-{name}"[:63]}
                if pvc is not None and get(pvc, "status", "phase") == "Bound":
                    entry.update(phase="Ready", reason="VolumeReady",
                                 message=f"Successfully attach hotplugged volume {name} to VM")
                else:
                    entry.update(phase="Pending", reason="PVCNotReady",
                                 message=f"PVC {claim} is not bound")
        out.append(entry)
    return out


def _running_status(vmi: Mapping, status: dict, world: World, now: float) -> None:
    conds = status.get("conditions") or []
    ok, reason, message = live_migratable(vmi, world)
    updates = [
        make_condition(conds, "Ready", "True", "", "", now),
        make_condition(conds, "LiveMigratable", "True" if ok else "False", reason, message, now),
        make_condition(conds, "AgentConnected", "True", "", "", now),
    ]
    status["conditions"] = put_conditions(conds, updates, remove=("PodScheduled", "Synchronized"))
    status["interfaces"] = interfaces_status(vmi, world)
    status["volumeStatus"] = volume_statuses(vmi, world)
    status["guestOSInfo"] = {"id": "simulated", "name": "Simulated Linux", "prettyName": "Simulated Linux (kubestack)",
                             "kernelRelease": "6.1.0-simulated", "version": "1"}
    status["launcherContainerImageVersion"] = world.config.launcher_image
    status["qosClass"] = "Burstable"
    status["migrationMethod"] = "LiveMigration" if ok else "BlockMigration"
    status["activePods"] = {f"{vmi['metadata']['uid']}-{status.get('nodeName', '')}": status.get("nodeName", "")}


def _fail(status: dict, now: float, reason: str, message: str, status_reason: str | None = None) -> None:
    _enter(status, "Failed", now)
    conds = status.get("conditions") or []
    status["conditions"] = put_conditions(conds, [make_condition(conds, "Ready", "False", reason, message, now)],
                                          remove=("AgentConnected", "Paused", "LiveMigratable"))
    if status_reason:
        status["reason"] = status_reason


def boot_fails(vmi: Mapping, vm: Mapping | None, world: World) -> bool:
    if "boot" in fail_modes(vm, vmi):
        return True
    rate = world.config.fail_rate
    return rate > 0 and unit_random(world.config.seed, "boot", vmi["metadata"]["uid"]) < rate


def reconcile_vmi(vmi: Mapping, world: World) -> Outcome:
    out = Outcome()
    md = vmi["metadata"]
    ns, name = md["namespace"], md["name"]
    now = world.now
    if deleting(vmi):
        return out
    status = deep(vmi.get("status") or {})
    phase = status.get("phase", "")
    if phase in FINAL_PHASES:
        return out
    vm = world.vms.get((ns, name))
    spec = vmi.get("spec") or {}
    selector = dict(spec.get("nodeSelector") or {})
    delay = max(world.config.boot_delay, 0.0)
    labels: dict = {}

    # virt-handler heartbeat: a VMI on a lost node fails
    node_name = status.get("nodeName")
    if phase in ("Scheduled", "Running") and not node_ready(world.nodes.get(node_name)):
        _fail(status, now, "NodeUnresponsive", f"virt-handler on node {node_name} is not responsive",
              status_reason="NodeUnresponsive")
        _append(out, vmi, status)
        return out

    if phase in ("", "Pending"):
        if phase == "":
            _enter(status, "Pending", now)
        gate = volume_gate(ns, spec, world)
        conds = status.get("conditions") or []
        if gate:
            ctype, reason, message = gate
            other = "PodScheduled" if ctype == "Synchronized" else "Synchronized"
            status["conditions"] = put_conditions(
                conds, [make_condition(conds, ctype, "False", reason, message, now)], remove=(other,))
            _append(out, vmi, status)
            return out
        status["conditions"] = put_conditions(conds, [], remove=("Synchronized", "PodScheduled"))
        _enter(status, "Scheduling", now)
        phase = "Scheduling"

    times = _phase_times({"status": status})
    t_sched = times.get("Scheduling", now)
    if phase == "Scheduling":
        candidates = eligible_nodes(world, selector)
        conds = status.get("conditions") or []
        if not candidates:
            status["conditions"] = put_conditions(conds, [make_condition(
                conds, "PodScheduled", "False", "Unschedulable", unschedulable_message(world, selector), now)])
            _append(out, vmi, status)
            return out
        if now < t_sched + delay / 2:
            status["conditions"] = put_conditions(conds, [], remove=("PodScheduled",))
            out.requeue(t_sched + delay / 2 - now)
            _append(out, vmi, status)
            return out
        chosen = candidates[stable_int("place", md["uid"]) % len(candidates)]
        status["nodeName"] = chosen
        status["conditions"] = put_conditions(conds, [make_condition(conds, "PodScheduled", "True", "", "", now)])
        _enter(status, "Scheduled", now)
        phase = "Scheduled"
        labels[NODE_NAME_LABEL] = chosen

    if phase == "Scheduled":
        if now < t_sched + delay:
            out.requeue(t_sched + delay - now)
            _append(out, vmi, status, labels)
            return out
        if boot_fails(vmi, vm, world):
            _fail(status, now, "GuestNotRunning", "simulator: injected boot failure (guest crashed during boot)")
            _append(out, vmi, status, labels)
            return out
        _enter(status, "Running", now)
        phase = "Running"

    # Running: keep the runtime view current, and carry out requests
    _running_status(vmi, status, world, now)
    if status.get("nodeName"):
        labels[NODE_NAME_LABEL] = status["nodeName"]
    annotations: dict = {}
    request = load_json_annotation(vmi, ANN_REQUEST)
    done = load_json_annotation(vmi, ANN_REQUEST_STATUS) or {}
    if request and request.get("id") and request.get("id") != done.get("id"):
        annotations.update(_execute_vmi_request(vmi, status, request, now))
    _append(out, vmi, status, labels, annotations)
    return out


def _execute_vmi_request(vmi: Mapping, status: dict, request: Mapping, now: float) -> dict:
    action = request.get("action", "")
    view = {"metadata": vmi["metadata"], "status": status}
    problem = validate_action(action, None, view)
    # idempotent when re-run after a restart of the simulator
    if problem in ("VMI is already paused", "VMI is not paused"):
        problem = None
    annotations: dict = {}
    conds = status.get("conditions") or []
    if problem is None:
        if action == "pause":
            status["conditions"] = put_conditions(conds, [make_condition(
                conds, "Paused", "True", "PausedByUser", "VMI was paused by user", now)])
        elif action == "unpause":
            status["conditions"] = put_conditions(conds, [], remove=("Paused",))
        elif action == "softreboot":
            count = int(get(vmi, "metadata", "annotations", ANN_REBOOTS, default="0") or 0) + 1
            annotations[ANN_REBOOTS] = str(count)
            status["conditions"] = put_conditions(conds, [dict(make_condition(
                conds, "AgentConnected", "True", "", "", now), lastTransitionTime=fmt_time(now))])
    result = {"id": request["id"], "action": action,
              "result": "Failed" if problem else "Succeeded", "message": problem or ""}
    annotations[ANN_REQUEST_STATUS] = json.dumps(result, sort_keys=True)
    return annotations


def _append(out: Outcome, vmi: Mapping, status: dict, labels: dict | None = None,
            annotations: dict | None = None) -> None:
    w = status_write(vmi, status)
    if w:
        out.writes.append(w)
    m = metadata_write(vmi, labels=labels or None, annotations=annotations or None)
    if m:
        out.writes.append(m)


# -- migrations -------------------------------------------------------------------------------

MIGRATION_PHASES = ("Pending", "Scheduling", "Scheduled", "PreparingTarget", "TargetReady", "Running")


def reconcile_migration(mig: Mapping, world: World) -> Outcome:
    out = Outcome()
    md = mig["metadata"]
    ns = md["namespace"]
    now = world.now
    status = deep(mig.get("status") or {})
    phase = status.get("phase", "")
    if phase in FINAL_PHASES or deleting(mig):
        return out
    vmi_name = get(mig, "spec", "vmiName")
    vmi = world.vmis.get((ns, vmi_name))
    vm = world.vms.get((ns, vmi_name))
    mstate = deep(status.get("migrationState") or {})
    delay = max(world.config.migration_delay, 0.0)

    def write_both(vstatus: dict | None, labels: dict | None = None) -> Outcome:
        w = status_write(mig, status)
        if w:
            out.writes.append(w)
        if vmi is not None and vstatus is not None:
            w = status_write(vmi, vstatus)
            if w:
                out.writes.append(w)
            m = metadata_write(vmi, labels=labels) if labels else None
            if m:
                out.writes.append(m)
        return out

    def fail(reason: str, involved: bool = False) -> Outcome:
        _enter(status, "Failed", now)
        mstate.update(failed=True, completed=False, failureReason=reason, endTimestamp=fmt_time(now),
                      migrationUid=md["uid"])
        status["migrationState"] = mstate
        vstatus = None
        if vmi is not None and (involved or get(vmi, "status", "migrationState", "migrationUid") == md["uid"]):
            vstatus = deep(vmi.get("status") or {})
            vstatus["migrationState"] = dict(mstate)
        return write_both(vstatus)

    if vmi is None or deleting(vmi):
        return fail(f"VMI {ns}/{vmi_name} does not exist")
    if get(vmi, "status", "phase") != "Running":
        return fail(f"VMI {ns}/{vmi_name} is not running")
    other = get(vmi, "status", "migrationState", default={})
    if other.get("migrationUid") not in (None, md["uid"]) and not (other.get("completed") or other.get("failed")):
        if not phase:
            _enter(status, "Pending", now)
        return write_both(None)  # another migration of this VMI is in flight: wait for it
    ok, _, message = live_migratable(vmi, world)
    if not ok:
        return fail(message)
    source = mstate.get("sourceNode") or get(vmi, "status", "nodeName")
    if not phase:
        _enter(status, "Pending", now)
        phase = "Pending"

    target = mstate.get("targetNode")
    if not target:
        selector = dict(get(vmi, "spec", "nodeSelector", default={}))
        candidates = eligible_nodes(world, selector, exclude=source)
        if not candidates:
            pinned = selector.get(HOSTNAME_LABEL)
            why = (f"the VMI's nodeSelector pins it to its current node {source}" if pinned == source
                   else unschedulable_message(world, selector))
            return fail(f"no node to migrate to: {why}")
        target = candidates[stable_int("migrate", md["uid"]) % len(candidates)]

    # walk the phases as far as the delay allows (all at once when it is 0)
    t0 = _phase_times({"status": status}).get("Pending", now)
    elapsed = now - t0
    last = len(MIGRATION_PHASES) - 1
    step = delay / len(MIGRATION_PHASES)
    reach = last if step == 0 else min(int(elapsed / step), last)
    index = MIGRATION_PHASES.index(phase) if phase in MIGRATION_PHASES else 0
    for i in range(index + 1, reach + 1):
        _enter(status, MIGRATION_PHASES[i], now)
    phase = status["phase"]
    vstatus = deep(vmi.get("status") or {})
    labels = None
    if MIGRATION_PHASES.index(phase) >= MIGRATION_PHASES.index("Scheduled"):
        mstate.update(sourceNode=source, targetNode=target, migrationUid=md["uid"], mode="PreCopy",
                      sourcePod=f"virt-launcher-{vmi_name}-source",
                      targetPod=f"virt-launcher-{vmi_name}-{md['uid'][:5]}")
        mstate.setdefault("completed", False)
        mstate.setdefault("failed", False)
        if phase == "Running":
            mstate.setdefault("startTimestamp", fmt_time(now))
    if phase == "Running" and elapsed >= delay:
        if "migration" in fail_modes(vm, vmi):
            mstate.setdefault("startTimestamp", fmt_time(now))
            return fail("simulator: injected migration failure (the target domain did not start)", involved=True)
        mstate.update(completed=True, failed=False, endTimestamp=fmt_time(now),
                      targetNodeDomainDetected=True, targetNodeDomainReadyTimestamp=fmt_time(now))
        _enter(status, "Succeeded", now)
        vstatus["nodeName"] = target
        labels = {NODE_NAME_LABEL: target}
    else:
        out.requeue(max(t0 + (reach + 1) * step - now, 0.05))
    if mstate:
        status["migrationState"] = mstate
        vstatus["migrationState"] = dict(mstate)
    return write_both(vstatus, labels)
