"""Stack controller (Heat): builds a HOT template out of kubestack's own kinds.

Why `@kopf.on.event` + a work queue and not kopf's create/update handlers: kopf keeps the
last handled spec in an annotation, and a Stack's spec holds a whole template (up to the
256 KiB an object's annotations may total). Instead the controller keeps its own record in
the Secret ``<stack>-stack-state`` (owned by the Stack; a Secret because hidden parameters
and the parameters Secret's values are part of it): the template set being applied (target),
the last one that completed (good, what a rollback returns to), the action, when it started,
processed signals, scaling capacities, the AutoScalingGroups' member ids, and when each
WaitCondition started waiting. A record left by a deleted Stack of the same name is
discarded, and a Secret of that name that is not a stack record is never touched.

The reconcile is level-triggered: every pass lists the stack's children (labels
``kubestack.io/stack`` / ``kubestack.io/stack-resource``), walks the template's dependency
levels and, for each resource whose dependencies are complete, creates its object (or
patches the fields the template gives, or applies its contribution to another object), reads
its status into Heat attributes for ``get_attr``, and decides complete / in progress /
failed (`kubestack.orchestration.realize`). When every resource is complete the objects no
longer in the template (removed resources, replaced copies, shrunk groups) are deleted — or,
with ``deletion_policy: Retain``, released (owner reference and stack labels removed) — in
reverse dependency order (by kind: floating IPs, servers, ports, volumes, images, security
groups, key pairs, server groups, routers, networks, secrets, flavors; each kind only refers
to kinds after it). Updates use the engine's ``diff()`` for replacements (a replaced resource
gets a new object name; the old object goes once the new one is complete). A failure — a
resource failing, or the action outlasting ``spec.timeoutMinutes`` — rolls back to the good
template when ``spec.rollback`` (a failed create rolls back to nothing, keeping what
``deletion_policy: Retain`` keeps); without it the stack stops ``<ACTION>_FAILED`` and keeps
what it made. An object that exists under a child's name and is not this stack's is never
taken over: that resource fails. Inputs naming something that does not exist yet (the
templateRef ConfigMap, the parameters Secret, an image a constraint looks up) fail the
action and are tried again every ``RETRY`` seconds, as ``kubectl apply`` may create the
Stack before them. Deletion is held by the finalizer ``kubestack.io/stack`` until every
child is gone.
"""

from __future__ import annotations

import base64
import copy
import datetime
import json
import logging
from typing import Any

import kopf
from kubernetes.client.rest import ApiException

from kubestack import API_GROUP, API_VERSION
from kubestack.k8s import events, objects
from kubestack.k8s.client import core, custom
from kubestack.k8s.conditions import set_condition
from kubestack.orchestration import HeatError, diff, dns_name, load_stack
from kubestack.orchestration import lifecycle
from kubestack.orchestration import realize as rz
from kubestack.orchestration import scaling
from kubestack.orchestration.parameters import masked
from kubestack.orchestration.resources import generate_random_string
from kubestack.orchestration.template import Template, parse_document
from kubestack.runtime import informer
from kubestack.runtime.metrics import instrumented
from kubestack.runtime.store import Store
from kubestack.runtime.workqueue import Requeue, WorkQueue

log = logging.getLogger(__name__)

STACKS = objects.kubestack("stacks", "Stack")
FINALIZER = "kubestack.io/stack"
SIGNAL_PREFIX = "kubestack.io/signal-"
STACK_NAME_ANNOTATION = "kubestack.io/stack-name"
MEMBER_LABEL = "kubestack.io/stack-member"
STATE_KEY = "state.json"
STATE_LABEL = "kubestack.io/stack-state"
POLL = 3.0  # seconds between passes while something is in progress (events come sooner)
#: seconds between tries of a stack whose inputs name something that does not exist yet (its
#: template's ConfigMap, an image): nothing tells the controller when it appears
RETRY = 10.0

store = Store("stacks")
queue: WorkQueue | None = None


class _Conflict(Exception):
    """Someone else wrote the object we read-modify-wrote: do it again."""


def state_secret_name(stack: str) -> str:
    return dns_name(stack, "stack-state")


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _age_seconds(stamp: str | None) -> float:
    if not stamp:
        return 0.0
    t = datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
    return (datetime.datetime.now(datetime.timezone.utc) - t).total_seconds()


# ------------------------------------------------------------------------------ API plumbing

def _gvr(kind: str) -> objects.GVR:
    api_version, plural, _ = rz.KINDS[kind]
    return objects.kubestack(plural, kind)


def _get(kind: str, namespace: str | None, name: str) -> dict | None:
    if kind == "Secret":
        try:
            secret = core().read_namespaced_secret(name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return {"kind": "Secret", "apiVersion": "v1", **core().api_client.sanitize_for_serialization(secret)}
    return objects.get(_gvr(kind), namespace if rz.KINDS[kind][2] else None, name)


def _list_children(namespace: str, stack: str) -> dict[tuple[str, str], dict]:
    selector = f"{rz.STACK_LABEL}={stack}"
    out: dict[tuple[str, str], dict] = {}
    for kind, (_av, plural, namespaced) in rz.KINDS.items():
        if kind == "Secret":
            items = core().api_client.sanitize_for_serialization(
                core().list_namespaced_secret(namespace, label_selector=selector).items)
            for s in items:
                out[(kind, s["metadata"]["name"])] = {"kind": "Secret", "apiVersion": "v1", **s}
            continue
        if namespaced:
            items = custom().list_namespaced_custom_object(API_GROUP, API_VERSION, namespace, plural,
                                                           label_selector=selector)["items"]
        else:
            items = custom().list_cluster_custom_object(
                API_GROUP, API_VERSION, plural,
                label_selector=f"{selector},{rz.STACK_NAMESPACE_LABEL}={namespace}")["items"]
        for obj in items:
            out[(kind, obj["metadata"]["name"])] = obj
    return out


def _create(child: rz.Child, ctx: rz.Context) -> dict:
    """Create a child; one that exists already is only taken when it is this stack's (a
    retried pass): an object of the same name someone else made is never adopted, so the
    stack never changes nor, on rollback or delete, removes it."""
    if child.kind == "Secret":
        try:
            core().create_namespaced_secret(child.namespace, child.body, field_validation="Strict")
            created = True
        except ApiException as exc:
            if exc.status != 409:
                raise
            created = False
        obj = _get("Secret", child.namespace, child.name) or child.body
    else:
        obj, created = objects.create(_gvr(child.kind), child.namespace, child.body)
    if not created and not rz.belongs_to(obj, ctx):
        raise rz.RealizeError(f"a {child.kind} named {child.name} exists already and is not part of this stack")
    return obj


def _patch(kind: str, namespace: str | None, name: str, body: dict) -> dict:
    if kind == "Secret":
        core().patch_namespaced_secret(name, namespace, body, field_validation="Strict")
        return _get("Secret", namespace, name) or {}
    try:
        return objects.patch(_gvr(kind), namespace if rz.KINDS[kind][2] else None, name, body)
    except ApiException as exc:
        if exc.status == 409:
            raise _Conflict(f"{kind} {name} changed meanwhile") from None
        raise


def _delete(kind: str, namespace: str | None, name: str) -> None:
    if kind == "Secret":
        objects.delete_core("secret", namespace, name)
    else:
        objects.delete(_gvr(kind), namespace if rz.KINDS[kind][2] else None, name)


class ForeignStateSecret(Exception):
    """The Secret the stack keeps its record in exists and is not the stack's."""


def _read_state(body: dict) -> dict | None:
    meta = body["metadata"]
    ns, name = meta["namespace"], state_secret_name(meta["name"])
    secret = _get("Secret", ns, name)
    if secret is None:
        return None
    smeta = secret["metadata"]
    if meta["uid"] not in {o.get("uid") for o in smeta.get("ownerReferences") or []}:
        if (smeta.get("labels") or {}).get(STATE_LABEL) == meta["name"]:
            # the record of a deleted Stack of the same name the garbage collector has not
            # removed yet: reading it would resume that stack
            objects.delete_core("secret", ns, name)
            raise Requeue(0.5)
        raise ForeignStateSecret(f"Secret {name} exists and is not this stack's record: the stack keeps its "
                                 "state under that name; rename or delete that Secret")
    raw = (secret.get("data") or {}).get(STATE_KEY)
    return json.loads(base64.b64decode(raw).decode()) if raw else None


def _write_state(body: dict, state: dict) -> None:
    meta = body["metadata"]
    ns, name = meta["namespace"], state_secret_name(meta["name"])
    data = {STATE_KEY: base64.b64encode(json.dumps(state, sort_keys=True).encode()).decode()}
    try:
        core().patch_namespaced_secret(name, ns, {"data": data})
    except ApiException as exc:
        if exc.status != 404:
            raise
        core().create_namespaced_secret(ns, {
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": name, "namespace": ns, "labels": {STATE_LABEL: meta["name"]},
                         "ownerReferences": [objects.owner_reference(body)]},
            "data": data}, field_validation="Strict")


# ------------------------------------------------------------------------------ inputs

class InputError(Exception):
    """The spec's inputs cannot be read. ``missing``: an object they name does not exist (yet)."""

    def __init__(self, message: str, missing: bool = False) -> None:
        super().__init__(message)
        self.missing = missing


def _inputs(body: dict) -> dict:
    """(template, parameters, files, environment) the Stack's spec asks for.

    With ``templateRef`` the template is read from the ConfigMap now, when the spec changed:
    like ``openstack stack update``, a stack changes when its spec does, not when the
    ConfigMap is edited. The ConfigMap's other keys are files for ``get_file`` (as the files
    next to a template are for the openstack client), unless ``spec.files`` gives the same."""
    spec, ns = body.get("spec") or {}, body["metadata"]["namespace"]
    template = spec.get("template")
    files: dict[str, str] = {}
    if template is None:
        ref = spec.get("templateRef") or {}
        name, key = ref.get("configMap"), ref.get("key") or "template.yaml"
        try:
            cm = core().read_namespaced_config_map(name, ns)
        except ApiException as exc:
            if exc.status == 404:
                raise InputError(f"ConfigMap {name} (templateRef) could not be found.", missing=True) from None
            raise
        data = dict(cm.data or {})
        if key not in data:
            raise InputError(f"ConfigMap {name} (templateRef) has no key {key}.", missing=True)
        try:
            template = parse_document(data.pop(key), "template")
        except HeatError as exc:
            raise InputError(f"ConfigMap {name} key {key}: {exc}") from None
        files = data
    params = dict(spec.get("parameters") or {})
    sref = spec.get("parametersSecretRef")
    if sref:
        secret = _get("Secret", ns, sref["name"])
        if secret is None:
            raise InputError(f"Secret {sref['name']} (parametersSecretRef) could not be found.", missing=True)
        for k, v in (secret.get("data") or {}).items():
            params[k] = base64.b64decode(v).decode()
    env = {k: v for k, v in (spec.get("environment") or {}).items() if v is not None}
    return {"template": template, "parameters": params, "files": {**files, **(spec.get("files") or {})},
            "environment": env, "overrides": {}}


def _exists(namespace: str):
    def exists(kind: str, value: str) -> bool:
        if kind == "Flavor":
            return objects.get(objects.kubestack("flavors", "Flavor"), None, value) is not None
        plural = {"Image": "images", "Network": "networks", "KeyPair": "keypairs", "Server": "servers",
                  "Volume": "volumes", "Port": "ports", "Router": "routers",
                  "SecurityGroup": "securitygroups", "FloatingIP": "floatingips"}.get(kind)
        if plural is None:
            return True  # kinds we cannot look up here (Node, StorageClass, Subnet...) pass
        ns, _, name = value.rpartition("/")
        return objects.get(objects.kubestack(plural, kind), ns or namespace, name) is not None
    return exists


def _stack_name(body: dict) -> str:
    return (body["metadata"].get("annotations") or {}).get(STACK_NAME_ANNOTATION) or body["metadata"]["name"]


def _load(body: dict, inputs: dict, state: dict | None = None, check: bool = False):
    """The engine's stack for ``inputs``. From ``state``: the sizes scaling signals gave
    AutoScalingGroups (over their desired_capacity), their members as last resized, and the
    member names ResourceGroups' removal_policies took. ``check``: look up what custom
    constraints name."""
    meta = body["metadata"]
    state = state or {}
    template = copy.deepcopy(inputs["template"])
    for group, size in (state.get("capacity") or {}).items():
        res = (template.get("resources") or {}).get(group)
        if isinstance(res, dict):
            res.setdefault("properties", {})["desired_capacity"] = size
    stack = load_stack(template, inputs["parameters"], inputs["files"], inputs["environment"] or None,
                       stack_name=_stack_name(body), stack_id=meta.get("uid"), project_id=meta["namespace"],
                       exists=_exists(meta["namespace"]) if check else None)
    for name, d in stack.defs.items():
        if d.rtype.name == "OS::Nova::Flavor" and name not in stack.name_overrides:
            stack.name_overrides[name] = rz.flavor_name(meta["namespace"], meta["name"], name)
    stack.name_overrides.update(inputs.get("overrides") or {})
    stack.group_members = {g: scaling.Members.from_dict(m) for g, m in (state.get("members") or {}).items()}
    stack.group_blacklist = {g: frozenset(names) for g, names in (state.get("blacklist") or {}).items()}
    return stack


# ------------------------------------------------------------------------------ signals

def _signals(body: dict, resource: str) -> list[dict]:
    raw = (body["metadata"].get("annotations") or {}).get(SIGNAL_PREFIX + resource)
    if not raw:
        return []
    try:
        value = json.loads(raw)
    except ValueError:
        value = {"data": raw}
    items = value if isinstance(value, list) else [value]
    out = []
    for i, s in enumerate(items):
        s = s if isinstance(s, dict) else {"data": s}
        out.append({"id": str(s.get("id") or i + 1), "status": str(s.get("status") or "SUCCESS").upper(),
                    "reason": s.get("reason") or "Signal", "data": s.get("data")})
    return out


def _scale(body: dict, stack, state: dict) -> bool:
    """Apply new signals of scaling policies to their groups' capacity; True if any."""
    changed = False
    seen = state.setdefault("signals", {})
    capacity = state.setdefault("capacity", {})
    physical = {stack.physical_name(n): n for n in stack.defs}
    for name, d in stack.defs.items():
        if d.rtype.name != "OS::Heat::ScalingPolicy" or not d.enabled:
            continue
        new = [s for s in _signals(body, name) if s["id"] not in seen.get(name, [])]
        if not new:
            continue
        props = stack.resolve(name)
        group = physical.get(props.get("auto_scaling_group_id"), props.get("auto_scaling_group_id"))
        if group not in stack.defs:
            seen.setdefault(name, []).extend(s["id"] for s in new)
            changed = True
            continue
        gprops = stack.resolve(group)
        current = capacity.get(group, scaling.initial_capacity(gprops))
        cooldown = props.get("cooldown") if props.get("cooldown") is not None else gprops.get("cooldown")
        scaled_at = state.setdefault("scaled_at", {})
        for _ in new:
            last = scaled_at.get(group)
            if not scaling.cooldown_over(_age_seconds(last) if last else None, cooldown):
                continue  # Heat drops a signal that comes while the group cools down
            current = scaling.adjusted_capacity(
                current, float(props["scaling_adjustment"]), props["adjustment_type"],
                int(props.get("min_adjustment_step") or 0), int(gprops["min_size"]), int(gprops["max_size"]))
            scaled_at[group] = _now()
        capacity[group] = current
        seen.setdefault(name, []).extend(s["id"] for s in new)
        changed = True
    return changed


# ------------------------------------------------------------------------------ converge

class Pass:
    """One walk over a stack's resources."""

    def __init__(self, body: dict, stack, state: dict, children: dict, action: str):
        self.body, self.stack, self.state, self.children, self.action = body, stack, state, children, action
        meta = body["metadata"]
        self.ns = meta["namespace"]
        owner = objects.owner_reference(body)
        self.ctx = rz.Context(namespace=self.ns, stack=meta["name"], owner=owner)
        self.attrs: dict[str, dict] = {}
        self.secret_attrs: set[tuple[str, str]] = set()
        self.rows: list[dict] = []
        self.wanted: set[tuple[str, str]] = set()
        self.contributions: dict[str, dict] = {}
        self.failure: str | None = None
        self.done = True
        #: AutoScalingGroups' members as this pass sized them
        self.members: dict[str, scaling.Members] = {}
        self.previous_rows = {r.get("name"): r for r in (body.get("status") or {}).get("resources") or []}

    def run(self) -> None:
        stack = self.stack
        for name in stack.resources_in_order():
            d = stack.defs[name]
            if d.rtype.name == "OS::Neutron::Subnet":
                props = stack.resolve(name)
                if isinstance(props.get("network"), str):
                    self.ctx.subnet_networks[stack.physical_name(name)] = props["network"]
        complete: set[str] = set()
        for name in stack.resources_in_order():
            d = stack.defs[name]
            deps = stack.dependencies(name)
            row = {"name": name, "type": d.rtype.name, "kind": d.rtype.kind,
                   "objectName": stack.physical_name(name) if d.rtype.kind else None, "dependsOn": deps}
            if d.rtype.group:
                mt = stack._member_type(d)
                row["kind"] = mt.kind if mt else None
            waiting = [x for x in deps if x not in complete]
            if waiting:
                self._keep_existing(name)
                self.done = False
                prev = self.previous_rows.get(name) or {}
                row.update(status=prev.get("status") if prev.get("status", "").endswith("COMPLETE") and self.action != "CREATE"
                           else "INIT_COMPLETE", statusReason=f"waiting for {', '.join(waiting)}")
                self.rows.append(row)
                continue
            try:
                state, reason = self._resource(name, d)
            except (HeatError, rz.RealizeError) as exc:
                state, reason = rz.FAILED, str(exc)
            except _Conflict:
                state, reason = rz.IN_PROGRESS, "retrying a conflicting write"
            except ApiException as exc:
                if exc.status not in (400, 403, 422):
                    raise
                state, reason = rz.FAILED, _api_message(exc)
            suffix = {rz.COMPLETE: "COMPLETE", rz.IN_PROGRESS: "IN_PROGRESS", rz.FAILED: "FAILED"}[state]
            row.update(status=f"{self.action}_{suffix}", statusReason=reason or
                       ("state changed" if state == rz.COMPLETE else ""))
            if state == rz.COMPLETE:
                complete.add(name)
            else:
                self.done = False
                if state == rz.FAILED and self.failure is None:
                    self.failure = f"Resource {self.action} failed: {d.rtype.name} \"{name}\": {reason}"
            self.rows.append(row)

    def _keep_existing(self, name: str) -> None:
        """Objects of a resource that exist already stay wanted while it waits."""
        label = rz.labels(self.ctx, name)[rz.RESOURCE_LABEL]
        for key, obj in self.children.items():
            if (obj["metadata"].get("labels") or {}).get(rz.RESOURCE_LABEL) == label:
                if self.stack.defs[name].rtype.group or key[1] == self.stack.physical_name(name):
                    self.wanted.add(key)

    # -- one resource ---------------------------------------------------------------------
    def _resource(self, name: str, d) -> tuple[str, str]:
        t = d.rtype.name
        stack = self.stack
        physical = stack.physical_name(name)
        if d.rtype.virtual:
            return rz.COMPLETE, ""
        if t == "OS::Heat::WaitConditionHandle":
            self.attrs[name] = {"endpoint": f"{SIGNAL_PREFIX}{name}", "token": "",
                                "curl_cli": f"kubestack stack signal -n {self.ns} {self.ctx.stack} {name} --data"}
            return rz.COMPLETE, ""
        if t == "OS::Heat::WaitCondition":
            return self._wait_condition(name)
        if t == "OS::Heat::ScalingPolicy":
            hint = f"kubestack stack signal -n {self.ns} {self.ctx.stack} {name}"
            self.attrs[name] = {"alarm_url": hint, "signal_url": hint}
            return rz.COMPLETE, ""
        if d.rtype.group:
            return self._group(name, d)
        props = stack.resolve(name, self.attrs)
        if t in rz.CONTRIBUTIONS:
            return self._contribution(name, t, physical, props)
        return self._child(name, t, physical, props, d.deletion_policy)

    def _child(self, name: str, t: str, physical: str, props: dict, policy: str,
               member: int | None = None) -> tuple[str, str]:
        secret_value = None
        existing = None
        if t == "OS::Heat::RandomString":
            existing = self.children.get(("Secret", physical))
            if existing is None:
                secret_value = generate_random_string(props)
        child = rz.realize(t, name, physical, props, self.ctx, policy, secret_value)
        if member is not None:
            child.body["metadata"]["labels"][MEMBER_LABEL] = str(member)
        key = (child.kind, child.name)
        self.wanted.add(key)
        obj = self.children.get(key)
        if obj is None:
            obj = _create(child, self.ctx)
            self.children[key] = obj
        elif child.kind != "Secret":
            obj = self._update(child, obj)
        secret: dict[str, str] = {}
        if t == "OS::Heat::RandomString":
            data = obj.get("data") or {}
            secret["value"] = base64.b64decode(data["value"]).decode() if data.get("value") else ""
        if t == "OS::Nova::KeyPair" and props.get("save_private_key"):
            ref = (obj.get("status") or {}).get("privateKeySecret")
            ksecret = _get("Secret", self.ns, ref) if ref else None
            raw = ((ksecret or {}).get("data") or {}).get("private_key")
            secret["private_key"] = base64.b64decode(raw).decode() if raw else ""
        attrs = rz.attributes(t, obj, physical, secret=secret)
        for a in rz.SECRET_ATTRIBUTES.get(t, ()):
            self.secret_attrs.add((name, a))
        if member is None:
            self.attrs[name] = attrs
        else:
            self.attrs.setdefault(name, {"members": []})["members"].append(attrs)
        r = rz.readiness(t, obj)
        return r.state, r.reason

    def _update(self, child: rz.Child, obj: dict) -> dict:
        managed = set(filter(None, ((obj["metadata"].get("annotations") or {}).get(rz.FIELDS_ANNOTATION) or "").split(",")))
        desired = rz.merge_contributed(child.kind, child.spec, obj.get("spec") or {})
        patch = rz.spec_patch(obj.get("spec") or {}, desired, managed)
        fields = child.body["metadata"]["annotations"][rz.FIELDS_ANNOTATION]
        meta_patch: dict[str, Any] = {}
        if (obj["metadata"].get("annotations") or {}).get(rz.FIELDS_ANNOTATION) != fields:
            meta_patch["annotations"] = {rz.FIELDS_ANNOTATION: fields}
        ann = obj["metadata"].get("annotations") or {}
        if ann.get(rz.POLICY_ANNOTATION) != child.body["metadata"]["annotations"][rz.POLICY_ANNOTATION]:
            meta_patch.setdefault("annotations", {})[rz.POLICY_ANNOTATION] = \
                child.body["metadata"]["annotations"][rz.POLICY_ANNOTATION]
        if not patch and not meta_patch:
            return obj
        body: dict[str, Any] = {}
        if patch:
            body["spec"] = patch
        if meta_patch:
            body["metadata"] = meta_patch
        updated = _patch(child.kind, child.namespace, child.name, body)
        self.children[(child.kind, child.name)] = updated
        return updated

    def _group(self, name: str, d) -> tuple[str, str]:
        members = self.stack.members(name, self.attrs)
        self.attrs[name] = {"members": []}
        if d.rtype.name == "OS::Heat::AutoScalingGroup":
            self.members[name] = self.stack.resized_members(name, len(members))
        states, reasons = [], []
        for i, m in enumerate(members):
            if m.kind is None:
                raise rz.RealizeError(f"{m.type} cannot be a group member")
            if not m.resolved:
                states.append(rz.IN_PROGRESS)
                continue
            s, r = self._child(name, m.type, m.physical_name, m.properties, d.deletion_policy, member=i)
            states.append(s)
            if s == rz.FAILED:
                reasons.append(f"{m.name}: {r}")
        if rz.FAILED in states:
            return rz.FAILED, "; ".join(reasons)
        pending = sum(1 for s in states if s != rz.COMPLETE)
        if pending:
            return rz.IN_PROGRESS, f"{len(members) - pending} of {len(members)} members complete"
        return rz.COMPLETE, f"{len(members)} members"

    def _contribution(self, name: str, t: str, physical: str, props: dict) -> tuple[str, str]:
        c = rz.realize(t, name, physical, props, self.ctx)
        key = (c.kind, c.target)
        target = self.children.get(key) or _get(c.kind, c.namespace, c.target)
        if target is None:
            if key in {(k, n) for (k, n) in self.children}:
                return rz.IN_PROGRESS, f"waiting for {c.kind} {c.target}"
            return rz.FAILED, f"The {c.kind} ({c.target}) could not be found."
        self.contributions[name] = c.to_dict()
        spec = target.get("spec") or {}
        if not c.present(spec):
            new = c.apply(spec)
            fld = c.field
            patch = {k: new.get(k) for k in c.entry} if fld == "association" else {fld: new[fld]}
            target = _patch(c.kind, c.namespace, c.target,
                            {"metadata": {"resourceVersion": target["metadata"]["resourceVersion"]}, "spec": patch})
            if key in self.children:
                self.children[key] = target
            self.state.setdefault("contributions", {})[name] = c.to_dict()
        elif name not in (self.state.get("contributions") or {}):
            self.state.setdefault("contributions", {})[name] = c.to_dict()
        self.attrs[name] = rz.attributes(t, None, physical, target=target)
        if t == "OS::Cinder::VolumeAttachment":
            r = rz.readiness("OS::Nova::Server", target, c)
            if r.state != rz.COMPLETE:
                return r.state, r.reason
            volume = self.children.get(("Volume", c.entry["name"])) or _get("Volume", self.ns, c.entry["name"])
            r = rz.attachment_readiness(volume, c.target)
            return r.state, r.reason
        r = rz.readiness(t, target, c)
        return r.state, r.reason

    def _wait_condition(self, name: str) -> tuple[str, str]:
        props = self.stack.resolve(name, self.attrs)
        physical = {self.stack.physical_name(n): n for n in self.stack.defs}
        handle = physical.get(props.get("handle"), props.get("handle"))
        signals = _signals(self.body, handle)
        data = {s["id"]: s["data"] for s in signals if s["status"] == "SUCCESS"}
        self.attrs[name] = {"data": json.dumps(data)}
        failed = next((s for s in signals if s["status"] == "FAILURE"), None)
        if failed:
            return rz.FAILED, str(failed.get("reason") or "WaitCondition signalled FAILURE")
        count = int(props.get("count") or 1)
        waiting = self.state.setdefault("waiting", {})
        if len(data) >= count:
            waiting.pop(name, None)
            return rz.COMPLETE, f"Signal: {len(data)} received"
        # Heat's timeout property: seconds from when the condition started waiting
        if _age_seconds(waiting.setdefault(name, _now())) > float(props.get("timeout") or 3600):
            received = [str(s["reason"]) for s in signals if s["status"] == "SUCCESS"]
            return rz.FAILED, lifecycle.wait_condition_timeout(received, count)
        return rz.IN_PROGRESS, f"waiting for {count - len(data)} signal(s) on {handle}"

    # -- outputs --------------------------------------------------------------------------
    def outputs(self) -> list[dict]:
        stack = self.stack
        values = stack.outputs(self.attrs)
        marked = copy.deepcopy(self.attrs)
        for res, attr in self.secret_attrs:
            entry = marked.get(res) or {}
            if "members" in entry:
                for m in entry["members"]:
                    if attr in m:
                        m[attr] = "\x00secret\x00"
            elif attr in entry:
                entry[attr] = "\x00secret\x00"
        probe = stack.outputs(marked) if self.secret_attrs else values
        hidden = {n for n, s in stack.template.parameters.items() if s.hidden}
        descriptions = stack.output_descriptions()
        out = []
        for key, value in values.items():
            secret = probe.get(key) != value or _uses_params(stack.template.outputs[key].get("value"), hidden)
            entry: dict[str, Any] = {"key": key, "description": descriptions.get(key) or None}
            if secret:
                entry["value"] = rz.MASK
                entry["error"] = "secret: derived from a hidden parameter or a generated secret"
            else:
                entry["value"] = value
            out.append({k: v for k, v in entry.items() if v is not None})
        return out


def _api_message(exc: ApiException) -> str:
    try:
        return json.loads(exc.body).get("message") or str(exc.reason)
    except (TypeError, ValueError, AttributeError):
        return str(exc.reason)


def _uses_params(value: Any, names: set[str]) -> bool:
    if not names:
        return False
    if isinstance(value, dict):
        for k, v in value.items():
            if k in ("get_param", "Ref"):
                first = v[0] if isinstance(v, list) and v else v
                if isinstance(first, str) and first in names:
                    return True
            if _uses_params(v, names):
                return True
        return False
    if isinstance(value, list):
        return any(_uses_params(v, names) for v in value)
    return False


# ------------------------------------------------------------------------------ cleanup

def _tier(kind: str) -> int:
    return rz.DELETE_TIERS.index(kind) if kind in rz.DELETE_TIERS else len(rz.DELETE_TIERS)


def _cleanup(body: dict, children: dict, wanted: set, state: dict, keep: dict[str, dict]) -> tuple[bool, list[str]]:
    """Remove stale contributions, then delete (or release) the objects not wanted, one kind
    after the other. Returns (finished, what is still going)."""
    ns = body["metadata"]["namespace"]
    going: list[str] = []
    for name, cd in sorted((state.get("contributions") or {}).items()):
        if name in keep and keep[name] == cd:
            continue
        c = rz.Contribution.from_dict(cd)
        if (c.kind, c.target) in children and (c.kind, c.target) not in wanted:
            state["contributions"].pop(name)  # goes with its target
            continue
        target = children.get((c.kind, c.target)) or _get(c.kind, c.namespace, c.target)
        if target is not None and c.present(target.get("spec") or {}):
            new = c.remove(target.get("spec") or {})
            patch = {k: new.get(k) for k in c.entry} if c.field == "association" else {c.field: new.get(c.field)}
            _patch(c.kind, c.namespace, c.target,
                   {"metadata": {"resourceVersion": target["metadata"]["resourceVersion"]}, "spec": patch})
        state["contributions"].pop(name)
    state.setdefault("contributions", {}).update({k: v for k, v in keep.items()})
    stale = [(k, o) for k, o in children.items() if k not in wanted]
    if not stale:
        return True, going
    first = min(_tier(k[0]) for k, _ in stale)
    for (kind, name), obj in stale:
        if _tier(kind) != first:
            continue
        meta = obj["metadata"]
        going.append(f"{kind} {name}")
        if meta.get("deletionTimestamp"):
            continue
        if (meta.get("annotations") or {}).get(rz.POLICY_ANNOTATION) == "Retain":
            owners = [o for o in meta.get("ownerReferences") or [] if o.get("uid") != body["metadata"]["uid"]]
            _patch(kind, ns if rz.KINDS[kind][2] else None, name, {"metadata": {
                "ownerReferences": owners or None,
                "labels": {rz.STACK_LABEL: None, rz.RESOURCE_LABEL: None, rz.STACK_NAMESPACE_LABEL: None,
                           MEMBER_LABEL: None},
                "annotations": {"kubestack.io/retained-from-stack": f"{ns}/{body['metadata']['name']}"}}})
            events.post(body, events.NORMAL, "Retained", f"{kind} {name} retained (deletion_policy Retain)")
            continue
        _delete(kind, ns if rz.KINDS[kind][2] else None, name)
    return False, going


# ------------------------------------------------------------------------------ reconcile

def _status_for(body: dict, action: str, result: str, reason: str, rows=None, outputs=None,
                params: dict | None = None) -> dict:
    st = body.get("status") or {}
    gen = body["metadata"].get("generation")
    stack_status = f"{action}_{result}"
    out: dict[str, Any] = {
        "stackStatus": stack_status, "stackStatusReason": reason[:4096],
        "observedGeneration": gen,
        "stateSecret": state_secret_name(body["metadata"]["name"]),
        # a rolled back stack is not what its spec asks for (nothing, after a failed create)
        "conditions": set_condition(st.get("conditions"), "Ready",
                                    result == "COMPLETE" and action in ("CREATE", "UPDATE"),
                                    stack_status.title().replace("_", ""), reason[:1024], gen),
        "creationTime": st.get("creationTime") or _now(),
    }
    if action in ("UPDATE", "ROLLBACK") and st.get("stackStatus") != stack_status:
        out["updatedTime"] = _now()
    if rows is not None:
        out["resources"] = rows
    if outputs is not None:
        out["outputs"] = outputs
    if params is not None:
        out["parameters"] = params
    return out


def _write_status(body: dict, desired: dict) -> None:
    current = body.get("status") or {}
    patch = objects.status_diff(current, desired)
    if not patch:
        return
    if "conditions" in patch and set(patch) == {"conditions"}:
        return  # only lastTransitionTime bookkeeping: nothing changed
    try:
        updated = objects.patch_status(STACKS, body["metadata"]["namespace"], body["metadata"]["name"], patch)
    except ApiException as exc:
        if exc.status == 404:
            return
        raise
    store.apply_event("MODIFIED", updated)
    if desired.get("stackStatus") != current.get("stackStatus"):
        failed = desired["stackStatus"].endswith("FAILED")
        events.post(body, events.WARNING if failed else events.NORMAL,
                    desired["stackStatus"].title().replace("_", ""),
                    f"Stack {desired['stackStatus']}: {desired.get('stackStatusReason') or ''}".strip(": "))


def _masked_params(body: dict, inputs: dict | None) -> dict | None:
    if inputs is None:
        return None
    try:
        tmpl = Template.parse(inputs["template"])
    except HeatError:
        return {k: str(v) for k, v in inputs["parameters"].items()}
    return {k: str(v) for k, v in masked(tmpl.parameters, inputs["parameters"]).items()}


def reconcile(key: tuple[str, str]) -> None:
    ns, name = key
    body = objects.get(STACKS, ns, name)
    if body is None:
        return
    store.apply_event("MODIFIED", body)
    if body["metadata"].get("deletionTimestamp"):
        _reconcile_delete(body)
        return
    if FINALIZER not in (body["metadata"].get("finalizers") or []):
        body = objects.patch(STACKS, ns, name, {"metadata": {
            "finalizers": list(body["metadata"].get("finalizers") or []) + [FINALIZER],
            "resourceVersion": body["metadata"]["resourceVersion"]}})
    gen = body["metadata"].get("generation")
    try:
        state = _read_state(body)
    except ForeignStateSecret as exc:
        st = body.get("status") or {}
        action = (st.get("stackStatus") or "CREATE_FAILED").split("_")[0]
        _write_status(body, _status_for(body, action, "FAILED", str(exc)))
        raise Requeue(RETRY) from None
    if state is None or state.get("generation") != gen:
        state = _start(body, state, gen)
        _write_state(body, state)
    elif state.get("result") == "FAILED" and state.get("retry"):
        before = json.dumps(state, sort_keys=True)
        _prepare(body, state)
        if json.dumps(state, sort_keys=True) != before:
            _write_state(body, state)
    _drive(body, state)


def _start(body: dict, state: dict | None, gen: int) -> dict:
    """A new generation of the spec: create or update (the engine's diff names replacements)."""
    previous_target = (state or {}).get("target")
    good = (state or {}).get("good")
    if state is not None and state.get("result") == "COMPLETE" and state.get("action") != "DELETE":
        good = previous_target
    # a stack that has nothing yet (its create was refused, e.g. a template error) is created
    created = state is not None and not (state.get("action") == "CREATE" and previous_target is None)
    action = "UPDATE" if created else "CREATE"
    new_state = {"action": action, "generation": gen, "good": good, "target": previous_target,
                 "signals": (state or {}).get("signals") or {}, "capacity": (state or {}).get("capacity") or {},
                 "members": (state or {}).get("members") or {}, "blacklist": (state or {}).get("blacklist") or {},
                 "contributions": (state or {}).get("contributions") or {}}
    _prepare(body, new_state)
    return new_state


def _prepare(body: dict, state: dict) -> None:
    """Read the spec's inputs and plan them against what the stack has (``state["target"]``).
    On success the action starts; on an error the state is FAILED, and ``retry`` says whether
    the error names an object that may yet appear (a ConfigMap, an image applied after the
    stack), so that the controller tries again."""
    action, previous_target = state["action"], state.get("target")
    try:
        want = _inputs(body)
        new = _load(body, want, check=True)
        capacity: dict[str, int] = {}
        old = None
        if previous_target is not None:
            old = _load(body, previous_target, state)
            for n in list(new.name_overrides):
                if n not in new.defs:
                    new.name_overrides.pop(n)
            plan = diff(old, new)
            log.info("stack %s/%s update: %s", body["metadata"]["namespace"], body["metadata"]["name"],
                     {c.name: c.action for c in plan.changes})
            want["overrides"] = {k: v for k, v in new.name_overrides.items() if k in new.defs}
            capacity = _capacities_after_update(body, previous_target, new, state.get("capacity") or {})
        blacklist = _removal_blacklists(new, old, state.get("blacklist") or {})
        state.update(target=want, capacity=capacity, blacklist=blacklist, result="IN_PROGRESS",
                     reason=f"Stack {action} started", started=_now(), retry=False)
    except (HeatError, InputError) as exc:
        state.update(result="FAILED", reason=str(exc), retry=exc.missing)


def _capacities_after_update(body: dict, previous_target: dict, new, capacity: dict[str, int]) -> dict[str, int]:
    """The sizes of the AutoScalingGroups after an update, as Heat resizes a group whose
    definition changed (see scaling.capacity_after_update). The old definitions are the
    template's own, without the sizes signals set."""
    old = _load(body, previous_target)
    out: dict[str, int] = {}
    for group, d in new.defs.items():
        if d.rtype.name != "OS::Heat::AutoScalingGroup" or not d.enabled or group not in old.defs \
                or not old.defs[group].enabled or old.defs[group].rtype.name != d.rtype.name:
            continue
        size = scaling.capacity_after_update(old.resolve(group), new.resolve(group), capacity.get(group))
        if size is not None:
            out[group] = size
    return out


def _removal_blacklists(new, old, current: dict[str, list[str]]) -> dict[str, list[str]]:
    """The member names each ResourceGroup gives up, its removal_policies resolved against
    the members it has (those of ``old``, the stack before the update; None at create)."""
    out: dict[str, list[str]] = {}
    for group, d in new.defs.items():
        if d.rtype.name != "OS::Heat::ResourceGroup" or not d.enabled:
            continue
        props = new.resolve(group)
        members = None
        od = old.defs.get(group) if old is not None else None
        if od is not None and od.enabled and od.rtype.name == d.rtype.name:
            count = old.resolve(group).get("count")
            ids = old.member_ids(group, count) if isinstance(count, int) else []
            members = {str(i): old.physical_name(group, i) for i in ids}
        names = scaling.removal_blacklist(props.get("removal_policies"), props.get("removal_policies_mode") or "append",
                                          current.get(group) or (), members)
        if names:
            out[group] = sorted(names, key=lambda n: (len(n), n))
    return out


def _drive(body: dict, state: dict) -> None:
    ns, name = body["metadata"]["namespace"], body["metadata"]["name"]
    action, result = state["action"], state["result"]
    target = state.get("target")
    params = _masked_params(body, target)
    if result == "FAILED":
        # nothing moves until the spec changes (or the stack is deleted)...
        _write_status(body, _status_for(body, action, "FAILED", state.get("reason") or "", params=params))
        if state.get("retry"):
            raise Requeue(RETRY)  # ...or what its inputs name appears
        return
    recorded = json.dumps(state, sort_keys=True)

    def save() -> None:
        nonlocal recorded
        now = json.dumps(state, sort_keys=True)
        if now != recorded:
            _write_state(body, state)
            recorded = now

    if target is not None:
        stack = _load(body, target, state)
        if _scale(body, stack, state):
            stack = _load(body, target, state)
        params = {k: v if isinstance(v, str) else json.dumps(v)
                  for k, v in masked(stack.template.parameters, stack.params).items()}
    children = _list_children(ns, name)
    if target is None:
        p = None
        wanted: set = set()
        keep: dict = {}
        done, failure = True, None
    else:
        p = Pass(body, stack, state, children, action)
        p.run()
        wanted, keep, done, failure = p.wanted, p.contributions, p.done, p.failure
    save()  # signals taken, wait conditions' start times
    rows = p.rows if p else []
    outputs = p.outputs() if p else []
    minutes = float((body.get("spec") or {}).get("timeoutMinutes") or 60)
    timed_out = result == "IN_PROGRESS" and _age_seconds(state.get("started")) > minutes * 60
    if result == "IN_PROGRESS" and failure is not None:
        _fail(body, state, failure, rows, outputs, params, "the stack failed")
        raise Requeue(POLL)
    if not done and timed_out:
        _fail(body, state, lifecycle.timed_out(action, minutes, rows), rows, outputs, params, "timed out")
        raise Requeue(POLL)
    if not done:
        _write_status(body, _status_for(body, action, "COMPLETE" if result == "COMPLETE" else "IN_PROGRESS",
                                        state.get("reason") or "", rows, outputs, params))
        raise Requeue(POLL)
    finished, going = _cleanup(body, children, wanted, state, keep)
    save()
    if not finished:
        if timed_out:
            _fail(body, state, lifecycle.timed_out(action, minutes, rows, removing=going), rows, outputs, params,
                  "timed out")
            raise Requeue(POLL)
        _write_status(body, _status_for(body, action, "IN_PROGRESS",
                                        f"removing {', '.join(sorted(going)[:10])}", rows, outputs, params))
        raise Requeue(POLL)
    # every group has the members it should: the next resize starts from these
    state["members"] = {g: m.to_dict() for g, m in (p.members if p else {}).items()}
    if result == "IN_PROGRESS":
        reasons = {"CREATE": "Stack CREATE completed successfully", "UPDATE": "Stack UPDATE completed successfully",
                   "ROLLBACK": "Stack ROLLBACK completed successfully"}
        state.update(result="COMPLETE", reason=reasons.get(action, "completed"))
        if action != "ROLLBACK" or target is not None:
            state["good"] = target
    save()
    _write_status(body, _status_for(body, action, "COMPLETE", state["reason"], rows, outputs, params))


def _fail(body: dict, state: dict, failure: str, rows, outputs, params, cause: str) -> None:
    """The action failed: roll back (spec.rollback, Heat's disable_rollback false) to the
    last good template, or to nothing for a create; else stop, keeping what was made."""
    action = state["action"]
    # what was still going is no longer waited for (Heat: "CREATE aborted")
    rows = lifecycle.abort_in_progress(rows, action, f"{action} aborted ({cause})")
    rollback = bool((body.get("spec") or {}).get("rollback", True))
    if rollback and action in ("CREATE", "UPDATE") and (action == "CREATE" or state.get("good") is not None):
        events.post(body, events.WARNING, f"{action.title()}Failed", failure)
        state.update(action="ROLLBACK", result="IN_PROGRESS", reason=f"{failure}; rolling back",
                     target=state.get("good") if action == "UPDATE" else None, started=_now())
        _write_state(body, state)
        _write_status(body, _status_for(body, "ROLLBACK", "IN_PROGRESS", state["reason"], rows, outputs, params))
        return
    state.update(result="FAILED", reason=failure)
    _write_state(body, state)
    _write_status(body, _status_for(body, action, "FAILED", failure, rows, outputs, params))


def _reconcile_delete(body: dict) -> None:
    ns, name = body["metadata"]["namespace"], body["metadata"]["name"]
    if FINALIZER not in (body["metadata"].get("finalizers") or []):
        return
    try:
        state = _read_state(body) or {}
    except ForeignStateSecret:
        state = {}  # not the stack's: deleting the stack goes on without it (and leaves it)
    children = _list_children(ns, name)
    finished, going = _cleanup(body, children, set(), state, {})
    if not finished:
        _write_status(body, _status_for(body, "DELETE", "IN_PROGRESS",
                                        f"deleting {', '.join(sorted(going)[:10])}", rows=[
                                            r for r in (body.get("status") or {}).get("resources") or []]))
        if state:
            _write_state(body, state)
        raise Requeue(POLL)
    _write_status(body, _status_for(body, "DELETE", "COMPLETE", "Stack DELETE completed successfully", rows=[]))
    finalizers = [f for f in body["metadata"].get("finalizers") or [] if f != FINALIZER]
    try:
        objects.patch(STACKS, ns, name, {"metadata": {"finalizers": finalizers or None,
                                                      "resourceVersion": body["metadata"]["resourceVersion"]}})
    except ApiException as exc:
        if exc.status == 409:
            raise Requeue(0.2) from None
        if exc.status != 404:
            raise


def _reconcile_safely(key: tuple[str, str]) -> None:
    try:
        reconcile(key)
    except _Conflict:
        raise Requeue(0.2) from None


# ------------------------------------------------------------------------------ kopf wiring

@kopf.on.startup()
def stack_startup(**_) -> None:
    global queue
    queue = WorkQueue("stacks", _reconcile_safely, workers=4)
    queue.start()
    for obj in custom().list_cluster_custom_object(API_GROUP, API_VERSION, "stacks")["items"]:
        store.apply_event("ADDED", obj)
        queue.add((obj["metadata"]["namespace"], obj["metadata"]["name"]))


@kopf.on.cleanup()
def stack_cleanup(**_) -> None:
    if queue is not None:
        queue.stop()


@kopf.on.event(API_GROUP, API_VERSION, "stacks")
@instrumented("Stack")
def stack_event(type, body, **_) -> None:  # noqa: A002 - kopf's argument name
    previous = store.apply_event(type, body)
    if type == "DELETED" or queue is None:
        return
    if previous is not None and _same(previous, body):
        return  # our own status write
    queue.add((body["metadata"]["namespace"], body["metadata"]["name"]))


def _same(a: dict, b: dict) -> bool:
    ma, mb = a.get("metadata") or {}, b.get("metadata") or {}
    return (ma.get("generation") == mb.get("generation") and ma.get("annotations") == mb.get("annotations")
            and ma.get("deletionTimestamp") == mb.get("deletionTimestamp")
            and ma.get("finalizers") == mb.get("finalizers"))


def _child_event(kind: str):
    @instrumented(kind)
    def handler(type, body, **_) -> None:  # noqa: A002
        if queue is None:
            return
        meta = body.get("metadata") or {}
        lbl = meta.get("labels") or {}
        stack = lbl.get(rz.STACK_LABEL)
        ns = meta.get("namespace") or lbl.get(rz.STACK_NAMESPACE_LABEL)
        if stack and ns:
            queue.add((ns, stack))
    handler.__name__ = f"stack_child_{kind.lower()}_event"
    return handler


for _kind, (_av, _plural, _ns) in rz.KINDS.items():
    # Servers come from the shared informer (a boot storm's busiest stream; see
    # runtime/informer.py), the rest through kopf
    if _kind in ("Secret", "Server"):
        continue
    kopf.on.event(API_GROUP, API_VERSION, _plural, labels={rz.STACK_LABEL: kopf.PRESENT})(_child_event(_kind))


@kopf.on.startup()
def _watch_servers(**_) -> None:
    on_child = _child_event("Server")
    servers = informer.shared(objects.kubestack("servers", "Server"))
    servers.add_handler(lambda _type, body, _previous: on_child(_type, body))
    servers.start()
