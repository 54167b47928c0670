"""The policy sync of a namespace, queued: every trigger (a SecurityGroup's create, change or
delete, a Port's, a Server's groups, a NAD) only queues the namespace, and one queue runs the
syncs.

A sync reads every group and member of the namespace and writes the policies it renders from
them, so two syncs of one namespace must never run at once: the one that read first could
write last and leave a rule change unrendered until something else touched the namespace
(seen in CI when kopf's handler for a group change raced a sync queued by a new server). The
queue never runs one key in two workers, runs a key queued meanwhile again afterwards, and
folds a boot storm's many adds into a few syncs.
"""

from __future__ import annotations

import threading

from kubestack.k8s import client as k8s
from kubestack.k8s.conditions import set_condition
from kubestack.k8s.events import WARNING, post
from kubestack.k8s.objects import status_diff
from kubestack.runtime.workqueue import WorkQueue

from . import naming, secgroups
from .kube import Kube


def sync(namespace: str) -> None:
    """Render the namespace's policies, then each group's status (Ready, or the rules no
    (Multi)NetworkPolicy can enforce)."""
    kube = Kube(k8s.api())
    unsupported = secgroups.sync_namespace(k8s.api(), namespace)
    for body in kube.list_ours("securitygroups", namespace):
        name = body["metadata"]["name"]
        status = body.get("status") or {}
        gen = body["metadata"].get("generation")
        problems = unsupported.get(name, [])
        message = ("not enforceable by (Multi)NetworkPolicy, not rendered: " + "; ".join(problems)
                   if problems else "")
        desired = {"ruleCount": len((body.get("spec") or {}).get("rules") or []),
                   "policies": [naming.policy_name(name)], "observedGeneration": gen,
                   "conditions": set_condition(status.get("conditions"), "Ready", not problems,
                                               "UnsupportedRules" if problems else "Rendered",
                                               message, gen)}
        patch = status_diff(status, desired)
        if patch:
            kube.patch_status("securitygroups", namespace, name, patch)
            if problems:
                post(body, WARNING, "UnsupportedRules", message)


_queue = WorkQueue("securitygroups", sync, workers=2)
_state = {"started": False}
_state_lock = threading.Lock()


def start() -> None:
    """Start the workers once per process (the SecurityGroup and Port controllers both ask)."""
    with _state_lock:
        if not _state["started"]:
            _state["started"] = True
            _queue.start()


def stop() -> None:
    _queue.stop()


def request(namespace: str) -> None:
    _queue.add(namespace)
