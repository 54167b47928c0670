"""SecurityGroup controller: (Multi)NetworkPolicies of the namespace re-rendered whenever a
group, a Server's groups or a NAD changes — running servers pick the change up at once (the
policies select launcher pods by ``vm.kubevirt.io/name``, no restart); every project
namespace gets Neutron's ``default`` group. Every trigger only queues its namespace for
`network.policy_sync`, which never syncs one namespace twice at once."""

from __future__ import annotations

import kopf

from kubestack.k8s.objects import kubestack
from kubestack.network import naming, policy_sync
from kubestack.runtime import informer
from kubestack.runtime.metrics import instrumented

# server name -> its groups, per namespace: resync only when membership changes
_SEEN: dict[tuple[str, str], tuple[str, ...]] = {}
SERVERS = kubestack("servers", "Server")


@kopf.on.startup()
def _start_resyncs(**_) -> None:
    policy_sync.start()
    servers = informer.shared(SERVERS)
    servers.add_handler(server_groups_changed)
    servers.start()


@kopf.on.cleanup()
def _stop_resyncs(**_) -> None:
    policy_sync.stop()


@kopf.on.resume("kubestack.io", "v1alpha1", "securitygroups")
@kopf.on.create("kubestack.io", "v1alpha1", "securitygroups")
@kopf.on.update("kubestack.io", "v1alpha1", "securitygroups", field="spec")
@instrumented("SecurityGroup")
def securitygroup_sync(namespace, **_):
    policy_sync.request(namespace)


@kopf.on.delete("kubestack.io", "v1alpha1", "securitygroups", optional=True)
@instrumented("SecurityGroup")
def securitygroup_deleted(namespace, **_):
    policy_sync.request(namespace)


def server_groups_changed(type_: str, body: dict, previous: dict | None) -> None:
    """A Server's security groups changed (or it came or went): resync its namespace."""
    namespace = body["metadata"]["namespace"]
    key = (namespace, body["metadata"]["name"])
    if type_ == "DELETED" or body["metadata"].get("deletionTimestamp"):
        if _SEEN.pop(key, None) is not None:
            policy_sync.request(namespace)
        return
    groups = tuple(sorted((body.get("spec") or {}).get("securityGroups", ["default"])))
    if _SEEN.get(key) != groups:
        _SEEN[key] = groups
        policy_sync.request(namespace)


@kopf.on.event("k8s.cni.cncf.io", "v1", "network-attachment-definitions",
               labels={naming.LABEL_MANAGED: naming.MANAGED_BY})
@instrumented("SecurityGroup")
def nad_changed(event, namespace, **_):
    if event.get("type") in ("ADDED", "DELETED", None):
        policy_sync.request(namespace)


