"""Project controller (Keystone): Namespace, role bindings, quotas, usage, safe deletion.

- create/update/resume: the objects of `kubestack.identity.rbac` (Namespace, RoleBindings,
  per-project ClusterRoles, ResourceQuota, default SecurityGroup), the ledger's limits, and
  status (namespace, usage per quota resource, phase, Ready).
- usage is counted from the cluster (`identity.usage`): at start for every project (the
  ledger is rebuilt from the same count before any handler runs), when an object of a
  counted kind changes in the project (a 2 s timer picks the dirty projects up), and every
  `KUBESTACK_PROJECT_RESYNC` seconds (default 60) anyway; status is written only on change.
- delete (finalizer): refused while the namespace holds servers, volumes, images, networks,
  ... or PVCs (status phase Terminating, reason, Warning Event) unless spec.cascadeDelete;
  then the namespace is deleted and waited for, and the per-project ClusterRoles with it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

import kopf
from kubernetes import client
from kubernetes.client.rest import ApiException

from kubestack.api.project import Project, ProjectPhase
from kubestack.identity import PROJECT_LABEL, project_of_namespace, rbac
from kubestack.identity import usage as usage_mod
from kubestack.k8s import events, objects
from kubestack.k8s.client import api, core, custom
from kubestack.k8s.conditions import set_condition
from kubestack.runtime import informer, state
from kubestack.runtime.metrics import instrumented

log = logging.getLogger(__name__)

GROUP, VERSION = "kubestack.io", "v1alpha1"
PROJECTS = objects.kubestack("projects", "Project")
FLAVORS = objects.kubestack("flavors", "Flavor")
STRICT = objects.STRICT

GVRS: dict[str, objects.GVR] = {
    plural: objects.kubestack(plural, kind) for plural, kind in usage_mod.COUNTED_KINDS.items()
    if plural != "volumesnapshots"
}
GVRS["volumesnapshots"] = objects.VOLUME_SNAPSHOT
GVRS["stacks"] = objects.kubestack("stacks", "Stack")

RESYNC_SECONDS = float(os.environ.get("KUBESTACK_PROJECT_RESYNC", "60"))
TICK_SECONDS = 2.0

_dirty_lock = threading.Lock()
_dirty: set[str] = set()
_last_count: dict[str, float] = {}


def _rbac() -> client.RbacAuthorizationV1Api:
    return client.RbacAuthorizationV1Api(api())


def _transient(what: str, exc: ApiException) -> kopf.TemporaryError:
    return kopf.TemporaryError(f"{what}: {exc.status} {exc.reason}", delay=5)


# ---- reading the cluster -------------------------------------------------------------------


def _list(gvr: objects.GVR, namespace: str | None = None) -> list[dict]:
    try:
        if namespace:
            out = custom().list_namespaced_custom_object(gvr.group, gvr.version, namespace, gvr.plural)
        else:
            out = custom().list_cluster_custom_object(gvr.group, gvr.version, gvr.plural)
    except ApiException as exc:
        if exc.status == 404:  # the kind is not installed (e.g. no VolumeSnapshot CRD)
            return []
        raise
    return out.get("items") or []


def _flavors() -> dict[str, dict]:
    return {f["metadata"]["name"]: f.get("spec") or {} for f in _list(FLAVORS)}


def _namespace_objects(namespace: str, with_blocking: bool = False) -> dict[str, list[dict]]:
    plurals = list(usage_mod.COUNTED_KINDS) + (["stacks"] if with_blocking else [])
    found = {plural: _list(GVRS[plural], namespace) for plural in plurals}
    if with_blocking:
        pvcs = core().list_namespaced_persistent_volume_claim(namespace)
        found["persistentvolumeclaims"] = [{"metadata": {"name": p.metadata.name}} for p in pvcs.items]
    return found


def _read_namespace(name: str) -> client.V1Namespace | None:
    try:
        return core().read_namespace(name)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


# ---- the ledger ------------------------------------------------------------------------------


def _limits(spec: dict) -> dict[str, int]:
    return Project.from_k8s({"spec": spec}).spec.quotas.to_k8s()


@kopf.on.startup()
@instrumented("Project")
def rebuild_quota_ledger(logger: logging.Logger, **_: Any) -> None:
    """Before any handler runs: limits and usage of every project, counted from the cluster."""
    ledger = state.quota_ledger()
    try:
        projects = _list(PROJECTS)
        namespaces = core().list_namespace(label_selector=PROJECT_LABEL).items
        flavors = _flavors()
        everything = {plural: _list(gvr) for plural, gvr in GVRS.items() if plural != "stacks"}
    except ApiException as exc:
        raise _transient("listing projects for the quota ledger", exc) from exc
    owner_of = {ns.metadata.name: project_of_namespace(ns.metadata.labels) for ns in namespaces}
    per_project: dict[str, dict[str, list[dict]]] = {}
    for plural, items in everything.items():
        for obj in items:
            project = owner_of.get(obj["metadata"].get("namespace"))
            if project:
                per_project.setdefault(project, {}).setdefault(plural, []).append(obj)
    for p in projects:
        name = p["metadata"]["name"]
        ledger.set_limits(name, _limits(p.get("spec") or {}))
        ledger.set_parent(name, (p.get("spec") or {}).get("parent"))
        use, holders = usage_mod.count(per_project.get(name, {}), flavors)
        ledger.rebuild(name, use, holders)
    logger.info("quota ledger rebuilt for %d projects", len(projects))


# ---- realising a project -----------------------------------------------------------------


def _ensure_namespace(name: str, parent: str | None) -> str | None:
    """Create or label the project's namespace; an error message when it cannot be ours."""
    ns = _read_namespace(name)
    if ns is None:
        try:
            core().create_namespace(rbac.namespace(name, parent), field_validation=STRICT)
        except ApiException as exc:
            if exc.status != 409:
                raise
            ns = _read_namespace(name)
        if ns is None:
            return None
    labels = ns.metadata.labels or {}
    owner = project_of_namespace(labels)
    if owner and owner != name:
        return f"Namespace {name} already belongs to project {owner}"
    if owner is None and name in ("default", "kubestack-system"):
        return f"Namespace {name} is a system namespace and cannot become a project"
    if ns.status and ns.status.phase == "Terminating":
        raise kopf.TemporaryError(f"namespace {name} is still terminating", delay=5)
    patch = rbac.namespace_labels_patch(name, parent, labels)
    if patch:
        core().patch_namespace(name, patch, field_validation=STRICT)
    return None


def _sync_role_bindings(project: str, desired: dict[str, dict | None]) -> None:
    rb = _rbac()
    for name, body in desired.items():
        try:
            current = rb.read_namespaced_role_binding(name, project)
        except ApiException as exc:
            if exc.status != 404:
                raise
            current = None
        if body is None:
            if current is not None:
                rb.delete_namespaced_role_binding(name, project)
            continue
        if current is None:
            rb.create_namespaced_role_binding(project, body, field_validation=STRICT)
            continue
        have = api().sanitize_for_serialization(current)
        if have.get("subjects") != body["subjects"] or have.get("roleRef") != body["roleRef"]:
            if have.get("roleRef") != body["roleRef"]:  # roleRef is immutable
                rb.delete_namespaced_role_binding(name, project)
                rb.create_namespaced_role_binding(project, body, field_validation=STRICT)
            else:
                rb.patch_namespaced_role_binding(name, project, {"subjects": body["subjects"]},
                                                 field_validation=STRICT)


def _sync_cluster_roles(pairs: list[tuple[dict, dict | None]]) -> None:
    rb = _rbac()
    for role, binding in pairs:
        name = role["metadata"]["name"]
        try:
            current = api().sanitize_for_serialization(rb.read_cluster_role(name))
        except ApiException as exc:
            if exc.status != 404:
                raise
            current = None
        if current is None:
            rb.create_cluster_role(role, field_validation=STRICT)
        elif current.get("rules") != role["rules"]:
            rb.patch_cluster_role(name, {"rules": role["rules"]}, field_validation=STRICT)
        try:
            have = api().sanitize_for_serialization(rb.read_cluster_role_binding(name))
        except ApiException as exc:
            if exc.status != 404:
                raise
            have = None
        if binding is None:
            if have is not None:
                rb.delete_cluster_role_binding(name)
        elif have is None:
            rb.create_cluster_role_binding(binding, field_validation=STRICT)
        elif have.get("subjects") != binding["subjects"]:
            rb.patch_cluster_role_binding(name, {"subjects": binding["subjects"]}, field_validation=STRICT)


def _delete_cluster_roles(project: str) -> None:
    rb = _rbac()
    for which in ("viewer", "admin"):
        name = rbac.project_cluster_role_name(project, which)
        for delete in (rb.delete_cluster_role_binding, rb.delete_cluster_role):
            try:
                delete(name)
            except ApiException as exc:
                if exc.status != 404:
                    raise


def _sync_resource_quota(project: str, quotas: dict[str, int]) -> bool:
    """Bring the ResourceQuota to the Project's quotas; True once Kubernetes' quota controller
    has counted it as it is (until then the API server refuses every create it limits with
    "status unknown for quota")."""
    body = rbac.resource_quota(project, quotas)
    want = body["spec"]["hard"]
    try:
        current = core().read_namespaced_resource_quota(rbac.QUOTA_NAME, project)
    except ApiException as exc:
        if exc.status != 404:
            raise
        core().create_namespaced_resource_quota(project, body, field_validation=STRICT)
        return not want
    have = dict(current.spec.hard or {})
    if have != want:
        hard: dict[str, str | None] = {k: None for k in have if k not in want}
        hard.update(want)
        core().patch_namespaced_resource_quota(rbac.QUOTA_NAME, project, {"spec": {"hard": hard}},
                                               field_validation=STRICT)
        return False
    return dict((current.status and current.status.hard) or {}) == want


def _ensure_default_security_group(project: str) -> None:
    gvr = GVRS["securitygroups"]
    if objects.get(gvr, project, rbac.DEFAULT_SECURITY_GROUP) is None:
        objects.create(gvr, project, rbac.default_security_group(project))


# ---- status ------------------------------------------------------------------------------------


def _count(project: str) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
    """Count the project's usage and bring the ledger in line with it."""
    ledger = state.quota_ledger()
    since = ledger.mark()
    objects_ = _namespace_objects(project)
    use, holders = usage_mod.count(objects_, _flavors())
    ledger.reconcile(project, holders, since, undecided=usage_mod.undecided(objects_))
    _last_count[project] = time.monotonic()
    return use, holders


def _write_status(body: dict, desired: dict[str, Any]) -> dict[str, Any]:
    current = body.get("status") or {}
    diff = objects.status_diff(current, desired)
    if diff:
        objects.patch_status(PROJECTS, None, body["metadata"]["name"], diff)
    return diff


def _transition_event(body: dict, old_phase: str | None, phase: str, message: str, warning: bool = False) -> None:
    if old_phase != phase:
        events.post(body, events.WARNING if warning else events.NORMAL, phase, message)


def _reconcile(body: dict) -> None:
    project = Project.from_k8s(body)
    name = project.metadata.name
    spec = project.spec
    status = body.get("status") or {}
    old_phase = status.get("phase")
    generation = project.metadata.generation
    members = [m.to_k8s() for m in spec.members]
    quotas = spec.quotas.to_k8s()
    state.quota_ledger().set_limits(name, quotas)
    state.quota_ledger().set_parent(name, spec.parent)
    try:
        problem = _ensure_namespace(name, spec.parent)
        if problem:
            conditions = set_condition(status.get("conditions"), "Ready", False, "NamespaceConflict",
                                       problem, generation)
            _write_status(body, {"phase": ProjectPhase.ERROR.value, "reason": problem,
                                 "conditions": conditions, "observedGeneration": generation})
            _transition_event(body, old_phase, ProjectPhase.ERROR.value, problem, warning=True)
            return
        _sync_role_bindings(name, rbac.role_bindings(name, members, spec.enabled))
        owner = objects.owner_reference(body, controller=True)
        _sync_cluster_roles(rbac.project_cluster_roles(name, members, spec.enabled, owner))
        if not _sync_resource_quota(name, quotas):
            # not ACTIVE before its quota is counted: what is applied in it next would be refused
            raise kopf.TemporaryError(f"waiting for the quota controller to count project {name}", delay=1)
        _ensure_default_security_group(name)
        use, _ = _count(name)
    except ApiException as exc:
        raise _transient(f"reconciling project {name}", exc) from exc
    phase = ProjectPhase.ACTIVE if spec.enabled else ProjectPhase.DISABLED
    message = (f"Project {name} is active in namespace {name}" if spec.enabled else
               f"Project {name} is disabled: its members hold no roles")
    conditions = set_condition(status.get("conditions"), "Ready", spec.enabled,
                               "Active" if spec.enabled else "Disabled", message, generation)
    _write_status(body, {"phase": phase.value, "namespace": name, "usage": use, "reason": None,
                         "conditions": conditions, "observedGeneration": generation})
    _transition_event(body, old_phase, phase.value, message)


@kopf.on.resume(GROUP, VERSION, "projects")
@instrumented("Project")
def project_resumed(body: kopf.Body, **_: Any) -> None:
    _reconcile(dict(body))


@kopf.on.create(GROUP, VERSION, "projects")
@instrumented("Project")
def project_created(body: kopf.Body, **_: Any) -> None:
    _reconcile(dict(body))


@kopf.on.update(GROUP, VERSION, "projects")
@instrumented("Project")
def project_updated(body: kopf.Body, **_: Any) -> None:
    _reconcile(dict(body))


@kopf.timer(GROUP, VERSION, "projects", interval=TICK_SECONDS, initial_delay=TICK_SECONDS)
@instrumented("Project")
def project_usage(body: kopf.Body, meta: kopf.Meta, **_: Any) -> None:
    """Recount usage when something in the project changed (or every RESYNC_SECONDS)."""
    name = meta["name"]
    if meta.get("deletionTimestamp"):
        return
    status = dict(body.get("status") or {})
    # before taking the dirty mark: a change marked while the create handler finishes (after
    # its count, before this body shows ACTIVE) must still be counted on the next tick, not
    # after RESYNC_SECONDS
    if status.get("phase") not in (ProjectPhase.ACTIVE.value, ProjectPhase.DISABLED.value):
        return  # not realised yet (or in error): the change handlers own it
    with _dirty_lock:
        dirty = name in _dirty
        _dirty.discard(name)
    if not dirty and time.monotonic() - _last_count.get(name, 0.0) < RESYNC_SECONDS:
        return
    try:
        use, _ = _count(name)
    except ApiException as exc:
        with _dirty_lock:
            _dirty.add(name)
        raise _transient(f"counting usage of project {name}", exc) from exc
    _write_status(dict(body), {"usage": use})


def _mark_dirty(namespace: str | None) -> None:
    if namespace:  # Project p owns namespace p; other namespaces have no project timer
        with _dirty_lock:
            _dirty.add(namespace)


def _on_counted_change(namespace: str | None, **_: Any) -> None:
    _mark_dirty(namespace)


for _plural in usage_mod.COUNTED_KINDS:
    # Servers come from the shared informer (a boot storm's busiest stream; see
    # runtime/informer.py), the rest through kopf
    if _plural not in ("volumesnapshots", "servers"):
        kopf.on.event(GROUP, VERSION, _plural)(instrumented("Project")(_on_counted_change))


@kopf.on.startup()
def _watch_servers(**_: Any) -> None:
    servers = informer.shared(objects.kubestack("servers", "Server"))
    servers.add_handler(lambda _type, body, _previous: _mark_dirty(body["metadata"].get("namespace")))
    servers.start()


# ---- deletion ------------------------------------------------------------------------------------


@kopf.on.delete(GROUP, VERSION, "projects")
@instrumented("Project")
def project_deleted(body: kopf.Body, spec: kopf.Spec, meta: kopf.Meta, **_: Any) -> None:
    body = dict(body)
    name = meta["name"]
    status = body.get("status") or {}
    cascade = bool(spec.get("cascadeDelete"))
    try:
        ns = _read_namespace(name)
        ours = ns is not None and project_of_namespace(ns.metadata.labels) == name
        if ours:
            if not cascade:
                found = usage_mod.blockers(_namespace_objects(name, with_blocking=True))
                if found:
                    message = usage_mod.describe_blockers(name, found)
                    if status.get("reason") != message:
                        events.post(body, events.WARNING, "DeletionBlocked", message)
                    _write_status(body, {"phase": ProjectPhase.TERMINATING.value, "reason": message})
                    raise kopf.TemporaryError(message, delay=5)
            if ns.metadata.deletion_timestamp is None:
                core().delete_namespace(name, propagation_policy="Foreground")
                message = (f"Project {name}: deleting namespace {name} and everything in it (cascadeDelete)"
                           if cascade else f"Project {name}: deleting its empty namespace {name}")
                events.post(body, events.NORMAL, "Deleting", message)
                _write_status(body, {"phase": ProjectPhase.TERMINATING.value, "reason": message})
            raise kopf.TemporaryError(f"waiting for namespace {name} to be deleted", delay=2)
        _delete_cluster_roles(name)
    except ApiException as exc:
        raise _transient(f"deleting project {name}", exc) from exc
    state.quota_ledger().forget_project(name)
    with _dirty_lock:
        _dirty.discard(name)
    _last_count.pop(name, None)
