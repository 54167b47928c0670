"""What every step of the Server reconciler works with: the ports to the cluster and the VM
runtime (`Cluster`, `Actions`), the scheduler and quota, what one reconcile decided
(`Outcome`), and the few facts of a Server every step reads (its instance id, its owner
reference). The steps themselves are functions taking a `Context` (the `ServerReconciler`
is one), one module per lifecycle action."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from kubestack.scheduler import HostCache, Scheduler

if TYPE_CHECKING:
    from kubestack.identity.quota import QuotaLedger


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


class Context:
    """The cluster, the scheduler (and its host cache), the VM runtime and the quota ledger,
    and what the reconciler remembers between looks at a server."""

    def __init__(self, cluster: Cluster, scheduler: Scheduler, actions: Actions, *,
                 quota: QuotaLedger | None = None):
        self.cluster = cluster
        self.scheduler = scheduler
        self.cache: HostCache = scheduler.cache
        self.actions = actions
        self.quota = quota  # when Projects are in use
        # In-flight reboots (server uid -> (request id, VMI uid before)); losing this on a
        # restart only shortens what status shows as REBOOT.
        self.reboots: dict[str, tuple[str, str | None]] = {}
        # In-flight rebuilds (server uid -> uid of the VMI the rebuild stopped): that VMI is
        # not the rebuilt guest even while a lagging watch still shows it Running. Losing this
        # on a restart is harmless for a root disk rebuild (the rebuilt guest is recognised by
        # its new root disk).
        self.rebuilds: dict[str, str | None] = {}


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def instance_id(server: Mapping[str, Any]) -> str:
    return server["metadata"]["uid"]


def owner_ref(server: Mapping[str, Any]) -> dict:
    return {"apiVersion": server["apiVersion"], "kind": server["kind"], "name": server["metadata"]["name"],
            "uid": server["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}
