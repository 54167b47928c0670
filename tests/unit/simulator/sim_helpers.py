"""Builders of API objects (plain dicts, as the API server serves them) for the simulator's pure
modules, and a helper that applies an Outcome's writes to an in-memory World."""

from __future__ import annotations

import copy
import itertools

from kubestack.simulator.common import World, SimConfig
from support.patches import apply_merge_patch

_uid = itertools.count(1)


def uid() -> str:
    return f"00000000-0000-0000-0000-{next(_uid):012d}"


def node(name, ready=True, compute=True, **labels):
    lbl = {"kubernetes.io/hostname": name, **labels}
    if compute:
        lbl["kubestack.io/compute-host"] = "true"
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "uid": uid(), "labels": lbl},
            "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "Unknown"}]}}


def vm(name, ns="p1", run_strategy="Always", node_name=None, volumes=(), annotations=None, networks=True, **spec_extra):
    tspec = {"domain": {"devices": {"disks": [], "interfaces": []}}, "volumes": list(volumes)}
    if networks:
        tspec["domain"]["devices"]["interfaces"] = [{"name": "default", "masquerade": {}},
                                                    {"name": "tenant", "bridge": {}, "macAddress": "02:00:00:00:00:aa"}]
        tspec["networks"] = [{"name": "default", "pod": {}}, {"name": "tenant", "multus": {"networkName": "net"}}]
    if node_name:
        tspec["nodeSelector"] = {"kubernetes.io/hostname": node_name}
    md = {"name": name, "namespace": ns, "uid": uid(), "generation": 1, "resourceVersion": "1"}
    if annotations:
        md["annotations"] = dict(annotations)
    spec = {"template": {"metadata": {"labels": {"app": name}}, "spec": tspec}, **spec_extra}
    if run_strategy is not None:
        spec["runStrategy"] = run_strategy
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine", "metadata": md, "spec": spec}


def pvc(name, ns="p1", phase="Bound", size="1Gi", modes=("ReadWriteMany",), sc="standard", **extra_md):
    obj = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
           "metadata": {"name": name, "namespace": ns, "uid": uid(), "resourceVersion": "1", **extra_md},
           "spec": {"accessModes": list(modes), "resources": {"requests": {"storage": size}},
                    "storageClassName": sc, "volumeMode": "Filesystem"},
           "status": {"phase": phase}}
    if phase == "Bound":
        obj["status"]["capacity"] = {"storage": size}
        obj["status"]["accessModes"] = list(modes)
    return obj


def world(now=1000.0, nodes=(), vms=(), vmis=(), pvcs=(), dvs=(), config=None, **extra):
    w = World(now=now, config=config or SimConfig())
    w.nodes = {n["metadata"]["name"]: n for n in nodes}
    w.vms = {(o["metadata"]["namespace"], o["metadata"]["name"]): o for o in vms}
    w.vmis = {(o["metadata"]["namespace"], o["metadata"]["name"]): o for o in vmis}
    w.pvcs = {(o["metadata"]["namespace"], o["metadata"]["name"]): o for o in pvcs}
    w.dvs = {(o["metadata"]["namespace"], o["metadata"]["name"]): o for o in dvs}
    for k, v in extra.items():
        setattr(w, k, v)
    return w


def apply(outcome, w: World) -> list:
    """Apply the outcome's writes to the world's maps (as the API server would) and return them."""
    maps = {"VirtualMachine": w.vms, "VirtualMachineInstance": w.vmis, "PersistentVolumeClaim": w.pvcs,
            "DataVolume": w.dvs, "VirtualMachineInstanceMigration": w.migrations,
            "PersistentVolume": w.pvs, "VolumeSnapshot": w.snapshots,
            "VolumeSnapshotContent": w.snapshot_contents}
    for wr in outcome.writes:
        m = maps[wr.kind]
        key = (wr.namespace, wr.name) if wr.namespace else wr.name
        if wr.verb == "create":
            body = copy.deepcopy(wr.body)
            body["metadata"].setdefault("uid", uid())
            body["metadata"].setdefault("resourceVersion", "1")
            if wr.namespace:
                body["metadata"].setdefault("namespace", wr.namespace)
            if wr.kind == "PersistentVolumeClaim":  # the DefaultStorageClass admission plugin
                body["spec"].setdefault("storageClassName", "standard")
                body.setdefault("status", {"phase": "Pending"})
            m[key] = body
        elif wr.verb in ("patch", "status"):
            body = copy.deepcopy(wr.body)
            body.get("metadata", {}).pop("resourceVersion", None)
            apply_merge_patch(m[key], body)
            if m[key]["metadata"].get("deletionTimestamp") and not m[key]["metadata"].get("finalizers"):
                del m[key]  # the last finalizer of a deleted object is gone: so is the object
        elif wr.verb == "delete":
            remove(m, key)
    return outcome.writes


def remove(objects: dict, key) -> None:
    """The API server's DELETE: an object with finalizers is only marked (deletionTimestamp)."""
    obj = objects.get(key)
    if obj is None:
        return
    if obj["metadata"].get("finalizers"):
        obj["metadata"].setdefault("deletionTimestamp", "2024-01-01T00:00:00Z")
    else:
        del objects[key]
