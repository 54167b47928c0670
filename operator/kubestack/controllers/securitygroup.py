"""SecurityGroup controller: (Multi)NetworkPolicies of the namespace re-rendered whenever a
group, a Server's groups or a NAD changes — running servers pick the change up at once (the
policies select launcher pods by ``vm.kubevirt.io/name``, no restart); every project
namespace gets Neutron's ``default`` group."""

from __future__ import annotations

import kopf
from kubernetes.client.rest import ApiException

from kubestack.k8s import client as k8s
from kubestack.k8s.conditions import set_condition
from kubestack.k8s.events import WARNING, post
from kubestack.k8s.objects import kubestack, status_diff
from kubestack.network import naming, secgroups
from kubestack.network.kube import Kube
from kubestack.runtime import informer
from kubestack.runtime.metrics import instrumented
from kubestack.runtime.workqueue import WorkQueue

# server name -> its groups, per namespace: resync only when membership changes
_SEEN: dict[tuple[str, str], tuple[str, ...]] = {}



def _sync(namespace: str) -> None:
    kube = Kube(k8s.api())
    unsupported = secgroups.sync_namespace(k8s.api(), namespace)
    for body in kube.list_ours("securitygroups", namespace):
        name = body["metadata"]["name"]
        status = body.get("status") or {}
        gen = body["metadata"].get("generation")
        problems = unsupported.get(name, [])
        policies = sorted({naming.policy_name(name)})
        message = ("not enforceable by (Multi)NetworkPolicy, not rendered: " + "; ".join(problems)
                   if problems else "")
        desired = {"ruleCount": len((body.get("spec") or {}).get("rules") or []),
                   "policies": policies, "observedGeneration": gen,
                   "conditions": set_condition(status.get("conditions"), "Ready", not problems,
                                               "UnsupportedRules" if problems else "Rendered",
                                               message, gen)}
        patch = status_diff(status, desired)
        if patch:
            kube.patch_status("securitygroups", namespace, name, patch)
            if problems:
                post(body, WARNING, "UnsupportedRules", message)


def _guard(fn, *args):
    try:
        fn(*args)
    except ApiException as exc:
        raise kopf.TemporaryError(f"API error: {exc.reason}", delay=5)


# Server and NAD events only mark a namespace for a resync: a boot storm of N servers then
# costs a few syncs of the namespace, not N (the queue folds repeated adds of one key)
_resyncs = WorkQueue("securitygroups", _sync, workers=2)
SERVERS = kubestack("servers", "Server")


@kopf.on.startup()
def _start_resyncs(**_) -> None:
    _resyncs.start()
    servers = informer.shared(SERVERS)
    servers.add_handler(server_groups_changed)
    servers.start()


@kopf.on.cleanup()
def _stop_resyncs(**_) -> None:
    _resyncs.stop()


@kopf.on.resume("kubestack.io", "v1alpha1", "securitygroups")
@kopf.on.create("kubestack.io", "v1alpha1", "securitygroups")
@kopf.on.update("kubestack.io", "v1alpha1", "securitygroups", field="spec")
@instrumented("SecurityGroup")
def securitygroup_sync(namespace, **_):
    _guard(_sync, namespace)


@kopf.on.delete("kubestack.io", "v1alpha1", "securitygroups", optional=True)
@instrumented("SecurityGroup")
def securitygroup_deleted(namespace, **_):
    _guard(_sync, namespace)


def server_groups_changed(type_: str, body: dict, previous: dict | None) -> None:
    """A Server's security groups changed (or it came or went): resync its namespace."""
    namespace = body["metadata"]["namespace"]
    key = (namespace, body["metadata"]["name"])
    if type_ == "DELETED" or body["metadata"].get("deletionTimestamp"):
        if _SEEN.pop(key, None) is not None:
            _resyncs.add(namespace)
        return
    groups = tuple(sorted((body.get("spec") or {}).get("securityGroups", ["default"])))
    if _SEEN.get(key) != groups:
        _SEEN[key] = groups
        _resyncs.add(namespace)


@kopf.on.event("k8s.cni.cncf.io", "v1", "network-attachment-definitions",
               labels={naming.LABEL_MANAGED: naming.MANAGED_BY})
@instrumented("SecurityGroup")
def nad_changed(event, namespace, **_):
    if event.get("type") in ("ADDED", "DELETED", None):
        _resyncs.add(namespace)


