"""Flavor controller: flavors are data (the scheduler and the VM renderer read them), so the
controller only reports Ready with observedGeneration and posts an Event when a flavor's
access (public / private and the project access list) changes.

A `@kopf.on.event` handler feeds a small work queue; the status is written only when it
differs, so a restarted operator on unchanged flavors writes nothing and kopf never writes
its diff-base annotations (as in controllers/server.py).

The Ready condition's message records the access the operator last saw ("Flavor is public" /
"Flavor is private; projects with access: a, b"): comparing it with the spec tells what
changed, across operator restarts, without any other bookkeeping.
"""

from __future__ import annotations

import logging

import kopf
from kubernetes.client.rest import ApiException

from kubestack import API_GROUP, API_VERSION
from kubestack.k8s import events, objects
from kubestack.k8s.conditions import find_condition, set_condition
from kubestack.runtime.metrics import instrumented
from kubestack.runtime.store import Store
from kubestack.runtime.workqueue import WorkQueue

log = logging.getLogger(__name__)

FLAVORS = objects.kubestack("flavors", "Flavor")
PUBLIC_MESSAGE = "Flavor is public"
PRIVATE_PREFIX = "Flavor is private; projects with access: "

store = Store("flavors")
queue: WorkQueue | None = None


def access_message(spec: dict) -> str:
    if spec.get("isPublic", True):
        return PUBLIC_MESSAGE
    projects = sorted(spec.get("projects") or [])
    return PRIVATE_PREFIX + (", ".join(projects) if projects else "(none)")


def parse_access(message: str | None) -> tuple[bool, set[str]] | None:
    """The (is_public, projects) a Ready message recorded; None when it records nothing."""
    if message == PUBLIC_MESSAGE:
        return True, set()
    if message and message.startswith(PRIVATE_PREFIX):
        rest = message[len(PRIVATE_PREFIX):]
        return False, set() if rest == "(none)" else {p.strip() for p in rest.split(",") if p.strip()}
    return None


def access_change(before: tuple[bool, set[str]] | None, spec: dict) -> str | None:
    """What an Event says about an access change, or None when nothing changed."""
    if before is None:
        return None
    was_public, had = before
    now_public = spec.get("isPublic", True)
    now = set(spec.get("projects") or [])
    if was_public and now_public:
        return None
    if was_public != now_public:
        if now_public:
            return "Flavor is now public: every project may use it"
        return "Flavor is now private; projects with access: " + (", ".join(sorted(now)) or "(none)")
    added, removed = sorted(now - had), sorted(had - now)
    if not added and not removed:
        return None
    parts = []
    if added:
        parts.append("added " + ", ".join(added))
    if removed:
        parts.append("removed " + ", ".join(removed))
    return "Flavor access list changed: " + "; ".join(parts)


def desired_status(flavor: dict) -> dict:
    meta, spec = flavor["metadata"], flavor.get("spec") or {}
    current = flavor.get("status") or {}
    return {
        "conditions": set_condition(current.get("conditions"), "Ready", True, "Accepted",
                                    access_message(spec), meta.get("generation")),
        "observedGeneration": meta.get("generation"),
    }


def reconcile(key: tuple[str, str]) -> None:
    flavor = store.get(*key)
    if flavor is None or flavor["metadata"].get("deletionTimestamp"):
        return
    current = flavor.get("status") or {}
    ready = find_condition(current.get("conditions"), "Ready")
    change = access_change(parse_access((ready or {}).get("message")), flavor.get("spec") or {})
    patch = objects.status_diff(current, desired_status(flavor))
    if not patch:
        return
    try:
        updated = objects.patch_status(FLAVORS, None, key[1], patch)
    except ApiException as exc:
        if exc.status == 404:
            return
        raise
    store.apply_event("MODIFIED", updated)
    if change:
        events.post(flavor, events.NORMAL, "FlavorAccessChanged", change)
    elif ready is None:
        events.post(flavor, events.NORMAL, "Accepted", access_message(flavor.get("spec") or {}))


@kopf.on.startup()
def flavor_startup(**_) -> None:
    global queue
    queue = WorkQueue("flavors", reconcile, workers=2)
    queue.start()
    for obj in store.list():
        queue.add(("", obj["metadata"]["name"]))


@kopf.on.cleanup()
def flavor_cleanup(**_) -> None:
    if queue is not None:
        queue.stop()


@kopf.on.event(API_GROUP, API_VERSION, "flavors")
@instrumented("Flavor")
def flavor_event(type, body, **_) -> None:  # noqa: A002 - kopf's argument name
    store.apply_event(type, body)
    if type != "DELETED" and queue is not None:
        queue.add(("", body["metadata"]["name"]))
