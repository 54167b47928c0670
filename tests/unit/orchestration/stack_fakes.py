"""An in-memory API server for the Stack engine (`kubestack.stacks.cluster.Cluster`): what the
engine reads and writes, with generations, resource versions and merge patches as the API
server does them, and a stand-in for the child controllers (`settle`)."""

from __future__ import annotations

import copy
import itertools
from collections import Counter
from typing import Any, Mapping

from kubestack.orchestration import realize as rz
from kubestack.runtime.workqueue import Requeue
from kubestack.stacks.cluster import Conflict, Key
from kubestack.stacks.reconcile import reconcile

from support.patches import apply_merge_patch

NS = "demo"


class FakeCluster:
    """The objects live in ``objects`` (by (kind, namespace, name)): a new FakeCluster on a
    copy of them is an operator restarted on the same cluster. ``spec_writes`` counts the
    writes that changed each child's spec."""

    def __init__(self, objects: dict[tuple[str, str, str], dict] | None = None) -> None:
        self.objects = objects if objects is not None else {}
        self.spec_writes: Counter[Key] = Counter()
        self.events: list[tuple[str, str, str]] = []
        self._rv = itertools.count(1 + max((int(o["metadata"]["resourceVersion"]) for o in self.objects.values()),
                                           default=0))

    def restarted(self) -> "FakeCluster":
        return FakeCluster(copy.deepcopy(self.objects))

    # -- bookkeeping -------------------------------------------------------------------------
    def _put(self, kind: str, obj: dict) -> dict:
        obj["metadata"]["resourceVersion"] = str(next(self._rv))
        self.objects[(kind, obj["metadata"].get("namespace") or NS, obj["metadata"]["name"])] = obj
        return copy.deepcopy(obj)

    def _find(self, kind: str, name: str) -> dict | None:
        return self.objects.get((kind, NS, name))

    # -- the Stack object --------------------------------------------------------------------
    def add_stack(self, name: str, template: dict, **spec: Any) -> None:
        self._put("Stack", {"apiVersion": "kubestack.io/v1alpha1", "kind": "Stack", "metadata": {
            "name": name, "namespace": NS, "uid": f"uid-{name}", "generation": 1, "annotations": {}},
            "spec": {"template": template, "parameters": {}, **spec}})

    def update_stack(self, name: str, **changes: Any) -> None:
        """Change the Stack's spec (a new generation) or, with ``annotations``, its metadata."""
        obj = self._find("Stack", name)
        if "annotations" in changes:
            obj["metadata"]["annotations"].update(changes.pop("annotations"))
        if changes:
            obj["spec"].update(copy.deepcopy(changes))
            obj["metadata"]["generation"] += 1
        self._put("Stack", obj)

    def stack(self, namespace: str, name: str) -> dict | None:
        obj = self._find("Stack", name)
        return copy.deepcopy(obj) if obj else None

    def patch_stack(self, namespace: str, name: str, patch: dict) -> dict | None:
        obj = self._find("Stack", name)
        if obj is None:
            return None
        patch = copy.deepcopy(patch)
        if patch.get("metadata", {}).pop("resourceVersion", obj["metadata"]["resourceVersion"]) \
                != obj["metadata"]["resourceVersion"]:
            raise Conflict(name)
        return self._put("Stack", apply_merge_patch(obj, patch))

    def patch_status(self, namespace: str, name: str, patch: dict) -> dict | None:
        obj = self._find("Stack", name)
        if obj is None:
            return None
        obj["status"] = apply_merge_patch(obj.get("status") or {}, patch)
        return self._put("Stack", obj)

    def event(self, obj: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        self.events.append((type_, reason, message))

    # -- children ----------------------------------------------------------------------------
    def children(self, namespace: str, stack: str) -> dict[Key, dict]:
        return {(kind, name): copy.deepcopy(o) for (kind, _ns, name), o in self.objects.items()
                if kind != "Stack" and (o["metadata"].get("labels") or {}).get(rz.STACK_LABEL) == stack}

    def get(self, kind: str, namespace: str | None, name: str) -> dict | None:
        obj = self._find(kind, name)
        return copy.deepcopy(obj) if obj else None

    def create(self, child: rz.Child) -> tuple[dict, bool]:
        existing = self._find(child.kind, child.name)
        if existing is not None:
            return copy.deepcopy(existing), False
        body = copy.deepcopy(child.body)
        body.setdefault("kind", child.kind)
        body["metadata"].update(namespace=NS, uid=f"uid-{child.kind}-{child.name}", generation=1)
        return self._put(child.kind, body), True

    def patch(self, kind: str, namespace: str | None, name: str, body: dict) -> dict:
        obj = self._find(kind, name)
        before = copy.deepcopy(obj.get("spec"))
        apply_merge_patch(obj, copy.deepcopy(body))
        if obj.get("spec") != before:
            obj["metadata"]["generation"] += 1
            self.spec_writes[(kind, name)] += 1
        return self._put(kind, obj)

    def delete(self, kind: str, namespace: str | None, name: str) -> None:
        self.objects.pop((kind, NS, name), None)

    def config_map(self, namespace: str, name: str) -> dict[str, str] | None:
        return None

    def write_secret(self, namespace: str, name: str, data: dict[str, str], labels: dict[str, str],
                     owner: dict) -> None:
        obj = self._find("Secret", name) or {"apiVersion": "v1", "kind": "Secret", "metadata": {
            "name": name, "namespace": NS, "labels": labels, "ownerReferences": [owner]}}
        obj["data"] = dict(data)
        self._put("Secret", obj)

    # -- the child controllers ---------------------------------------------------------------
    def settle(self, kind: str = "SecurityGroup", failing: frozenset[str] = frozenset()) -> None:
        """The controller of ``kind`` observes every object of it: ready, or failed for
        those named in ``failing``."""
        for (k, _ns, name), obj in list(self.objects.items()):
            if k != kind:
                continue
            ok = name not in failing
            obj["status"] = {"observedGeneration": obj["metadata"]["generation"], "ruleCount": 0,
                             "conditions": [{"type": "Ready", "status": "True" if ok else "False",
                                             "reason": "Synced" if ok else "Invalid",
                                             "message": "" if ok else "invalid rules"}]}
            self._put(kind, obj)

    def members(self, prefix: str, kind: str = "SecurityGroup") -> dict[str, dict]:
        """The objects of ``kind`` whose names start with ``prefix``, by name."""
        return {name: o for (k, _ns, name), o in sorted(self.objects.items()) if k == kind and name.startswith(prefix)}


def run(cluster: FakeCluster, name: str) -> float | None:
    """One reconcile of the Stack ``name``: the delay it asks to be called again after
    (None: not again)."""
    try:
        reconcile(cluster, (NS, name))
    except Requeue as again:
        return again.delay
    return None


def stack_status(cluster: FakeCluster, name: str) -> str:
    return ((cluster.stack(NS, name) or {}).get("status") or {}).get("stackStatus", "")


def converge(cluster: FakeCluster, name: str, *done: str, passes: int = 30) -> str:
    """Reconcile, with the controllers settling in between, until the stack is in one of
    ``done`` (for the spec's generation)."""
    for _ in range(passes):
        run(cluster, name)
        st = (cluster.stack(NS, name) or {}).get("status") or {}
        if st.get("stackStatus") in done and st.get("observedGeneration") == cluster.stack(NS, name)["metadata"][
                "generation"]:
            return st["stackStatus"]
        cluster.settle()
    raise AssertionError(f"stack {name} still {stack_status(cluster, name)}")
