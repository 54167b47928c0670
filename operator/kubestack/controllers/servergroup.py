"""ServerGroup controller: status.members ([{name, host}]) and status.memberCount follow the
Servers of the namespace that name the group (``spec.serverGroup``, or
``spec.schedulerHints.group``), with the host each was scheduled to.

Servers come from the shared Server informer; an in-memory index (server -> group, host) tells
which group a server event touches, and only those groups are recomputed; a group's status
is written only when it changed. No group is reconciled before the informer's first listing is
in the index, so a restarted operator never writes a partial member list.

Deleting a group that still has members is allowed (as in Nova); a Warning Event on the
namespace's group says which servers were still in it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

import kopf
from kubernetes.client.rest import ApiException

from kubestack import API_GROUP, API_VERSION
from kubestack.k8s import events, objects
from kubestack.k8s.client import custom
from kubestack.k8s.conditions import set_condition
from kubestack.runtime import informer
from kubestack.runtime.metrics import instrumented
from kubestack.runtime.store import Store
from kubestack.runtime.workqueue import WorkQueue

log = logging.getLogger(__name__)

SERVER_GROUPS = objects.kubestack("servergroups", "ServerGroup")
SERVERS = objects.kubestack("servers", "Server")

groups = Store("servergroups")
queue: WorkQueue | None = None


def group_of(server: Mapping[str, Any]) -> str | None:
    spec = server.get("spec") or {}
    return spec.get("serverGroup") or (spec.get("schedulerHints") or {}).get("group")


class MemberIndex:
    """(namespace, server) -> (group, host) for every Server that names a group."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_server: dict[tuple[str, str], tuple[str, str | None]] = {}

    @staticmethod
    def _entry(server: Mapping[str, Any]) -> tuple[str, str | None] | None:
        group = group_of(server)
        if not group:
            return None
        return group, (server.get("status") or {}).get("host")

    def apply(self, event_type: str, server: Mapping[str, Any]) -> set[tuple[str, str]]:
        """Record a server event; returns the (namespace, group) keys whose members changed."""
        ns, name = server["metadata"]["namespace"], server["metadata"]["name"]
        new = None if event_type == "DELETED" else self._entry(server)
        with self._lock:
            old = self._by_server.get((ns, name))
            if old == new:
                return set()
            if new is None:
                self._by_server.pop((ns, name), None)
            else:
                self._by_server[(ns, name)] = new
        return {(ns, g[0]) for g in (old, new) if g is not None}

    def members(self, namespace: str, group: str) -> list[dict[str, str]]:
        with self._lock:
            found = [(name, host) for (ns, name), (g, host) in self._by_server.items()
                     if ns == namespace and g == group]
        return [{"name": n, **({"host": h} if h else {})} for n, h in sorted(found)]


index = MemberIndex()


def desired_status(group: dict, members: list[dict[str, str]]) -> dict:
    meta = group["metadata"]
    current = group.get("status") or {}
    hosts = sorted({m["host"] for m in members if m.get("host")})
    message = f"{len(members)} member(s)" + (f" on {', '.join(hosts)}" if hosts else "")
    return {
        "members": members,
        "memberCount": len(members),
        "conditions": set_condition(current.get("conditions"), "Ready", True, "Accepted", message,
                                    meta.get("generation")),
        "observedGeneration": meta.get("generation"),
    }


def reconcile(key: tuple[str, str]) -> None:
    group = groups.get(*key)
    if group is None or group["metadata"].get("deletionTimestamp"):
        return
    current = group.get("status") or {}
    members = index.members(*key)
    patch = objects.status_diff(current, desired_status(group, members))
    if not patch:
        return
    try:
        updated = objects.patch_status(SERVER_GROUPS, key[0], key[1], patch)
    except ApiException as exc:
        if exc.status == 404:
            return
        raise
    groups.apply_event("MODIFIED", updated)
    before = {m["name"] for m in current.get("members") or []}
    after = {m["name"] for m in members}
    joined, left = sorted(after - before), sorted(before - after)
    if joined or left:
        parts = ([f"joined: {', '.join(joined)}"] if joined else []) + ([f"left: {', '.join(left)}"] if left else [])
        events.post(group, events.NORMAL, "MembersChanged", f"{len(members)} member(s); " + "; ".join(parts))


def _deleted(group: Mapping[str, Any]) -> None:
    meta = group["metadata"]
    members = index.members(meta["namespace"], meta["name"])
    if not members:
        return
    names = ", ".join(m["name"] for m in members)
    events.post(group, events.WARNING, "DeletedWithMembers",
                f"Server group {meta['name']} was deleted while {len(members)} server(s) still named it "
                f"({names}); they keep their hosts, but the policy no longer applies to them")


@kopf.on.startup()
def servergroup_startup(**_) -> None:
    global queue
    groups.replace_all(custom().list_cluster_custom_object(API_GROUP, API_VERSION, "servergroups")["items"])
    queue = WorkQueue("servergroups", reconcile, workers=2)
    servers = informer.shared(SERVERS)
    servers.add_handler(_member_event)
    servers.start()
    if not servers.wait_synced(120):
        raise kopf.PermanentError("server group controller: could not list Servers")
    queue.start()
    for obj in groups.list():
        queue.add((obj["metadata"]["namespace"], obj["metadata"]["name"]))


@kopf.on.cleanup()
def servergroup_cleanup(**_) -> None:
    if queue is not None:
        queue.stop()


@kopf.on.event(API_GROUP, API_VERSION, "servergroups")
@instrumented("ServerGroup")
def servergroup_event(type, body, **_) -> None:  # noqa: A002 - kopf's argument name
    previous = groups.apply_event(type, body)
    if type == "DELETED":
        _deleted(body)
        return
    if queue is not None and (previous is None or _changed(previous, body)):
        queue.add((body["metadata"]["namespace"], body["metadata"]["name"]))


def _changed(previous: Mapping[str, Any], body: Mapping[str, Any]) -> bool:
    """A group event worth a reconcile: a new generation or a status someone else wrote."""
    return previous["metadata"].get("resourceVersion") != body["metadata"].get("resourceVersion")


def _member_event(type_: str, body: dict, previous: dict | None) -> None:
    for key in index.apply(type_, body):
        if queue is not None:
            queue.add(key)
