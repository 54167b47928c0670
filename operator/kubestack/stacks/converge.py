"""One convergence pass over a stack: walks the template's dependency levels and, for each
resource whose dependencies are complete, creates its object (or patches the fields the
template gives, or applies its contribution to another object), reads its status into Heat
attributes for ``get_attr`` and decides complete / in progress / failed
(`kubestack.orchestration.realize`; a nested stack is a child Stack,
`kubestack.orchestration.nested`). A group under a rolling update (or batch_create) writes
its members a batch at a time (`kubestack.orchestration.rolling`). An object that exists
under a child's name and is not this stack's is never taken over: that resource fails."""

from __future__ import annotations

import base64
import datetime
import itertools
import math
from collections.abc import Iterator, Mapping

from kubestack.k8s.objects import owner_reference
from kubestack.orchestration import HeatError, lifecycle, nested, removal, rolling, scaling, signals, status
from kubestack.orchestration import realize as rz
from kubestack.orchestration.plan import PlannedResource
from kubestack.orchestration.resources import generate_random_string
from kubestack.orchestration.stack import ASG, ResourceDef, Stack

from . import state_secret
from .cluster import Cluster, Conflict, Key, Refused


class Pass:
    """One walk over a stack's resources. After `run`: the resource rows, the objects
    wanted (``wanted``) and contributions made (``contributions``), whether every resource
    is complete (``done``), the first failure, and the AutoScalingGroups' members."""

    def __init__(self, cluster: Cluster, body: dict, stack: Stack, state: dict, children: dict[Key, dict],
                 action: str):
        self.cluster = cluster
        self.body, self.stack, self.state, self.children, self.action = body, stack, state, children, action
        meta = body["metadata"]
        self.ns = meta["namespace"]
        self.ctx = rz.Context(namespace=self.ns, stack=meta["name"], owner=owner_reference(body))
        self.attrs: dict[str, dict] = {}
        #: (resource, attribute, [key...]) of the attributes whose values are secrets
        self.secret_attrs: set[tuple[str, ...]] = set()
        self.rows: list[dict] = []
        self.wanted: set[Key] = set()
        self.contributions: dict[str, dict] = {}
        self.failure: str | None = None
        self.done = True
        #: AutoScalingGroups' members as this pass sized them
        self.members: dict[str, scaling.Members] = {}
        self.previous_rows = {r.get("name"): r for r in (body.get("status") or {}).get("resources") or []}
        #: a nested stack has its parent's timeout (Heat's timeout_mins)
        self.timeout_minutes = int((body.get("spec") or {}).get("timeoutMinutes") or 60)
        self._computed_outputs: tuple[list[dict], dict] | None = None
        #: seconds until a group's pause between batches ends (inf: none pauses)
        self.wake = math.inf

    def run(self) -> None:
        stack = self.stack
        # a shrinking AutoScalingGroup removes its failed members first
        stack.group_failed = scaling.failed_members(stack, self.children)
        self.ctx.subnet_networks.update(rz.subnet_networks(stack))
        complete: set[str] = set()
        for name in stack.resources_in_order():
            row = lifecycle.resource_row(stack, name)
            waiting = [x for x in row["dependsOn"] if x not in complete]
            if waiting:
                # objects of a resource that exist already stay wanted while it waits
                self.wanted |= removal.kept_while_waiting(stack, self.ctx, name, self.children)
                self.done = False
                self.rows.append(lifecycle.waiting_row(row, self.previous_rows.get(name) or {}, self.action, waiting))
                continue
            try:
                state, reason = self._resource(name)
            except (HeatError, rz.RealizeError, Refused) as exc:
                state, reason = rz.FAILED, str(exc)
            except Conflict:
                state, reason = rz.IN_PROGRESS, "retrying a conflicting write"
            self.rows.append(lifecycle.result_row(row, self.action, state, reason))
            if state == rz.COMPLETE:
                complete.add(name)
            else:
                self.done = False
                if state == rz.FAILED and self.failure is None:
                    self.failure = lifecycle.resource_failed(self.action, row, reason)
        rollouts = self.state.get("rollouts") or {}
        for group in [g for g in rollouts if g not in stack.defs or not stack.defs[g].enabled]:
            rollouts.pop(group)  # the group is gone: its extra members go with its other objects

    def outputs(self) -> list[dict]:
        """The outputs for status, what is secret masked (once `run` is over)."""
        return self._outputs()[0]

    def secret_outputs(self) -> dict:
        """The real values of the outputs status masks (a parent stack reads them from the
        record of its nested stack)."""
        return self._outputs()[1]

    def _outputs(self) -> tuple[list[dict], dict]:
        if self._computed_outputs is None:
            self._computed_outputs = status.outputs_and_secrets(self.stack, self.attrs, self.secret_attrs)
        return self._computed_outputs

    # -- one resource ---------------------------------------------------------------------
    def _resource(self, name: str) -> tuple[str, str]:
        stack = self.stack
        d = stack.defs[name]
        t = d.rtype.name
        physical = stack.physical_name(name)
        if d.rtype.virtual:
            return rz.COMPLETE, ""
        if t == "OS::Heat::WaitConditionHandle":
            self.attrs[name] = signals.handle_attributes(self.ns, self.ctx.stack, name)
            return rz.COMPLETE, ""
        if t == "OS::Heat::WaitCondition":
            state, reason, self.attrs[name] = signals.wait_condition(
                stack, name, self.attrs, self.body["metadata"].get("annotations"), self.state)
            return state, reason
        if t == "OS::Heat::ScalingPolicy":
            self.attrs[name] = signals.policy_attributes(self.ns, self.ctx.stack, name)
            return rz.COMPLETE, ""
        if d.rtype.group:
            return self._group(name, d)
        props = stack.resolve(name, self.attrs)
        if t in rz.CONTRIBUTIONS:
            return self._contribution(name, t, physical, props)
        return self._child(name, t, physical, props, d.deletion_policy)

    def _child(self, name: str, t: str, physical: str, props: dict, policy: str) -> tuple[str, str]:
        child, params = self._render(name, t, physical, props, policy)
        obj = self._apply(child, params)
        self.attrs[name], state, reason = self._read(name, t, obj, physical, props)
        return state, reason

    def _render(self, name: str, t: str, physical: str, props: dict, policy: str, member: int | None = None,
                secret: frozenset[str] | None = None) -> tuple[rz.Child, rz.Child | None]:
        """The object of a resource (of a group's member at position ``member``) and, for a
        nested stack, the Secret with its parameters."""
        params = None
        if nested.is_nested(t):
            if secret is None:  # the parameters given a secret (a group's members': given)
                secret = status.secret_parameters(self.stack, name, self.attrs, self.secret_attrs)
            child, params = nested.child(self.stack, t, name, physical, props, self.ctx, policy,
                                         self.timeout_minutes, secret, attrs=self.attrs)
        else:
            secret_value = None
            if t == "OS::Heat::RandomString" and ("Secret", physical) not in self.children:
                secret_value = generate_random_string(props)
            child = rz.realize(t, name, physical, props, self.ctx, policy, secret_value)
        if member is not None:
            child.body["metadata"]["labels"][rz.MEMBER_LABEL] = str(member)
        return child, params

    def _apply(self, child: rz.Child, params: rz.Child | None, write: bool = True) -> dict | None:
        """The object of ``child`` once created or brought to what the template gives (with
        ``write``; else as it is, None when it does not exist). It is wanted either way."""
        key = (child.kind, child.name)
        self.wanted.add(key)
        obj = self.children.get(key)
        if not write:
            return obj
        if params is not None:  # before the Stack names it; content-named, so never patched
            self.wanted.add((params.kind, params.name))
            if (params.kind, params.name) not in self.children:
                self.children[(params.kind, params.name)] = self._create(params)
        if obj is None:
            obj = self.children[key] = self._create(child)
        elif child.kind != "Secret":
            patch = rz.update_patch(child, obj)
            if patch is not None:
                obj = self.children[key] = self.cluster.patch(child.kind, child.namespace, child.name, patch)
        return obj

    def _read(self, name: str, t: str, obj: dict, physical: str, props: dict) -> tuple[dict, str, str]:
        """A resource's attributes and readiness (state, reason) from its object."""
        unknown: list[str] = []
        if nested.is_nested(t):
            attrs, unknown = self._nested_attributes(name, t, obj, physical)
        else:
            attrs = self._attributes(name, t, obj, physical, props)
        r = rz.readiness(t, obj)
        if r.state == rz.COMPLETE and unknown:
            return attrs, rz.IN_PROGRESS, f"waiting for the nested stack's outputs {', '.join(unknown)}"
        return attrs, r.state, r.reason

    def _nested_attributes(self, name: str, t: str, obj: dict, physical: str) -> tuple[dict, list[str]]:
        """A nested stack's attributes, the outputs its status masks with their real values
        from its record (marked secret here in turn), and the masked outputs whose values
        are not there yet."""
        masked = nested.masked_outputs(obj)
        values: dict = {}
        if masked:
            values = (state_secret.peek(self.cluster, obj) or {}).get("secret_outputs") or {}
            for path in nested.secret_attributes(t, masked):
                self.secret_attrs.add((name, *path))
        return nested.attributes(t, obj, physical, values), [k for k in masked if k not in values]

    def _attributes(self, name: str, t: str, obj: dict, physical: str, props: dict) -> dict:
        """The Heat attributes of a child of one of kubestack's types, with those kept in
        Secrets (a RandomString's value, a generated key pair's private key) read."""
        secret: dict[str, str] = {}
        if t == "OS::Heat::RandomString":
            data = obj.get("data") or {}
            secret["value"] = base64.b64decode(data["value"]).decode() if data.get("value") else ""
        if t == "OS::Nova::KeyPair" and props.get("save_private_key"):
            ref = (obj.get("status") or {}).get("privateKeySecret")
            ksecret = self.cluster.get("Secret", self.ns, ref) if ref else None
            raw = ((ksecret or {}).get("data") or {}).get("private_key")
            secret["private_key"] = base64.b64decode(raw).decode() if raw else ""
        for a in rz.SECRET_ATTRIBUTES.get(t, ()):
            self.secret_attrs.add((name, a))
        return rz.attributes(t, obj, physical, secret=secret)

    def _create(self, child: rz.Child) -> dict:
        """Create a child; one that exists already is only taken when it is this stack's (a
        retried pass): an object of the same name someone else made is never adopted, so the
        stack never changes nor, on rollback or delete, removes it."""
        obj, created = self.cluster.create(child)
        if not created and not rz.belongs_to(obj, self.ctx):
            raise rz.RealizeError(f"a {child.kind} named {child.name} exists already and is not part of this stack")
        return obj

    def _group(self, name: str, d: ResourceDef) -> tuple[str, str]:
        members = self.stack.members(name, self.attrs)
        mtype = self.stack.member_type(name)
        secret = status.secret_parameters(self.stack, name, self.attrs, self.secret_attrs) \
            if mtype is not None and nested.is_nested(mtype.name) else None
        self.attrs[name] = {"members": []}
        if d.rtype.name == ASG:
            self.members[name] = self.stack.resized_members(name, len(members))
        for m in members:
            if m.kind is None:
                raise rz.RealizeError(f"{m.type} cannot be a group member")
        policy = self._rolling_policy(name, d)
        if policy is None:
            self._end_rollout(name, d)
        listed = list(zip(self.stack.member_ids(name, len(members)), members))
        if policy is None or not all(m.resolved for m in members):
            return self._all_at_once(name, d, listed, secret)
        return self._roll(name, d, policy, listed, secret)

    def _all_at_once(self, name: str, d: ResourceDef, members: list[tuple[int, PlannedResource]],
                     secret: frozenset[str] | None) -> tuple[str, str]:
        results = []
        for pos, (_, m) in enumerate(members):
            if not m.resolved:
                # its attributes are not known: the others keep their places
                self.attrs[name]["members"].append({})
                results.append((m, rz.IN_PROGRESS, ""))
                continue
            rendered = self._render(name, m.type, m.physical_name, m.properties, d.deletion_policy, pos, secret)
            results.append((m, *self._put_member(name, m, rendered, write=True)))
        return self._group_state(results)

    def _put_member(self, name: str, m: PlannedResource, rendered: tuple[rz.Child, rz.Child | None],
                    write: bool) -> tuple[str, str]:
        """A member's object written (with ``write``) and read: its attributes take its place
        among the group's, and its readiness is returned."""
        obj = self._apply(*rendered, write=write)
        if obj is None:  # its batch has not come yet
            self.attrs[name]["members"].append({})
            r = rz.readiness(m.type, None)
            return r.state, r.reason
        attrs, state, reason = self._read(name, m.type, obj, m.physical_name, m.properties)
        self.attrs[name]["members"].append(attrs)
        return state, reason

    @staticmethod
    def _group_state(results: list[tuple[PlannedResource, str, str]]) -> tuple[str, str]:
        failed = [f"{m.name}: {r}" for m, s, r in results if s == rz.FAILED]
        if failed:
            return rz.FAILED, "; ".join(failed)
        pending = sum(1 for _, s, _ in results if s != rz.COMPLETE)
        if pending:
            return rz.IN_PROGRESS, f"{len(results) - pending} of {len(results)} members complete"
        return rz.COMPLETE, f"{len(results)} members"

    # -- rolling updates (`kubestack.orchestration.rolling`) ------------------------------------
    def _rolling_policy(self, name: str, d: ResourceDef) -> rolling.Policy | None:
        """The group's batches, while an action is in progress (a stack that completed writes
        whatever drifted at once)."""
        if self.state.get("result") != "IN_PROGRESS":
            return None
        return rolling.group_policy(d.rtype.name, self.stack.resolve(name, self.attrs),
                                    self.stack.update_policy(name), self.action)

    def _roll(self, name: str, d: ResourceDef, policy: rolling.Policy, members: list[tuple[int, PlannedResource]],
              secret: frozenset[str] | None) -> tuple[str, str]:
        """A group's members written in batches: which ones are current is read from their
        objects, the rest of the rollout from the record (``rollouts``)."""
        rollout = rolling.Rollout.from_dict((self.state.get("rollouts") or {}).get(name))
        extras = list(zip(rollout.extra, self.stack.extra_members(name, rollout.extra, self.attrs)))
        rendered = {i: self._render(name, m.type, m.physical_name, m.properties, d.deletion_policy, pos, secret)
                    for pos, (i, m) in enumerate(members + extras)}
        seen = {i: self._seen(i, m.type, rendered[i][0]) for i, m in members + extras}
        order = rolling.replace_order(d.rtype.name, [i for i, _ in members], self.stack.group_failed.get(name, ()))
        group = rolling.Group(name, [seen[i] for i in order], [seen[i] for i, _ in extras],
                              self._others(name, [c for c, _ in rendered.values()]))
        step = rolling.step(policy, group, rollout, self._fresh(name, d, rendered, rollout), _clock(),
                            self.timeout_minutes * 60.0)
        if step is None:
            self._end_rollout(name, d)
            return self._group_state([(m, *self._put_member(name, m, rendered[i], write=True)) for i, m in members])
        self.state.setdefault("rollouts", {})[name] = step.rollout.to_dict()
        for i, m in members:
            self._put_member(name, m, rendered[i], write=i in step.write)
        added = [i for i in step.rollout.extra if i not in rendered]
        for pos, (i, m) in enumerate(extras + list(zip(added, self.stack.extra_members(name, added, self.attrs))),
                                     start=len(members)):
            child, params = rendered.get(i) or self._render(name, m.type, m.physical_name, m.properties,
                                                             d.deletion_policy, pos, secret)
            self._apply(child, params, write=i in step.write)
        if step.wake is not None:
            self.wake = min(self.wake, step.wake)
        return step.state, step.reason

    def _seen(self, i: int, t: str, child: rz.Child) -> rolling.Member:
        """What the pass finds of a member: is its object there, is it what the template gives
        (a Secret never changes), is it ready."""
        obj = self.children.get((child.kind, child.name))
        r = rz.readiness(t, obj)
        current = obj is not None and (child.kind == "Secret" or rz.update_patch(child, obj) is None)
        return rolling.Member(i, obj is not None, current, r.state, r.reason)

    def _others(self, name: str, rendered: list[rz.Child]) -> int:
        """How many objects the group has besides ``rendered`` (members it no longer has, not
        removed before the action completes): they are in service meanwhile."""
        mine = {(c.kind, c.name) for c in rendered}
        kinds = {c.kind for c in rendered}
        label = rz.labels(self.ctx, name)[rz.RESOURCE_LABEL]
        return sum(1 for key, obj in self.children.items()
                   if key not in mine and key[0] in kinds and not obj["metadata"].get("deletionTimestamp")
                   and (obj["metadata"].get("labels") or {}).get(rz.RESOURCE_LABEL) == label)

    def _fresh(self, name: str, d: ResourceDef, taken: Mapping[int, object], rollout: rolling.Rollout) -> Iterator[int]:
        """Ids for extra members: none a member has, none whose object is still there; a
        ResourceGroup's not given up by its removal_policies, an AutoScalingGroup's never
        given before (they follow its last)."""
        mtype = self.stack.member_type(name)
        kind = mtype.kind if mtype is not None else None
        blacklist = self.stack.group_blacklist.get(name, frozenset())
        start = max([self.members[name].next_id, *(i + 1 for i in rollout.extra)]) if d.rtype.name == ASG else 0
        for i in itertools.count(start):
            if i not in taken and str(i) not in blacklist \
                    and (kind, self.stack.physical_name(name, i)) not in self.children:
                yield i

    def _end_rollout(self, name: str, d: ResourceDef) -> None:
        """Forget a group's rollout: its extra members are no longer wanted (the cleanup after
        the action removes them). An AutoScalingGroup's ids are never given twice, so its next
        id moves past theirs, recorded now: the group may be resized before the action ends."""
        rollout = rolling.Rollout.from_dict((self.state.get("rollouts") or {}).pop(name, None))
        if d.rtype.name == ASG and rollout.extra:
            m = self.members[name]
            self.members[name] = scaling.Members(m.ids, max(m.next_id, max(rollout.extra) + 1))
            self.state.setdefault("members", {})[name] = self.members[name].to_dict()

    def _contribution(self, name: str, t: str, physical: str, props: dict) -> tuple[str, str]:
        c = rz.realize(t, name, physical, props, self.ctx)
        key = (c.kind, c.target)
        target = self.children.get(key) or self.cluster.get(c.kind, c.namespace, c.target)
        if target is None:
            if key in self.children:
                return rz.IN_PROGRESS, f"waiting for {c.kind} {c.target}"
            return rz.FAILED, f"The {c.kind} ({c.target}) could not be found."
        self.contributions[name] = c.to_dict()
        patch = c.patch(target)
        if patch is not None:
            target = self.cluster.patch(c.kind, c.namespace, c.target, patch)
            if key in self.children:
                self.children[key] = target
        if patch is not None or name not in (self.state.get("contributions") or {}):
            self.state.setdefault("contributions", {})[name] = c.to_dict()
        self.attrs[name] = rz.attributes(t, None, physical, target=target)
        if t == "OS::Cinder::VolumeAttachment":
            r = rz.readiness("OS::Nova::Server", target, c)
            if r.state != rz.COMPLETE:
                return r.state, r.reason
            volume = self.children.get(("Volume", c.entry["name"])) or \
                self.cluster.get("Volume", self.ns, c.entry["name"])
            r = rz.attachment_readiness(volume, c.target)
            return r.state, r.reason
        r = rz.readiness(t, target, c)
        return r.state, r.reason


def _clock() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)
