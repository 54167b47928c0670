"""The facade the Stack controller and the CLI use: a loaded, validated stack."""

from __future__ import annotations

import copy
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from . import graph, nested, rolling
from .errors import (HeatError, InvalidTemplateAttribute, InvalidTemplateReference, PropertyError,
                     StackValidationFailed, UserParameterMissing)
from .functions import IGNORE, Evaluator, Unresolved, has_unresolved, to_plain, unresolved_refs
from .parameters import CUSTOM_CONSTRAINTS, Exists, resolve_parameters
from .plan import (CreatePlan, DeletePlan, PlannedResource, ResourceChange, UpdatePlan)
from .resources import (ResourceType, constraint_checks, get_type, validate_properties,
                        virtual_attributes)
from .scaling import Members, check_policy, group_indices
from .template import DELETION_POLICIES, Environment, Template
from .versions import ALL_FUNCTIONS

PSEUDO_PARAMETERS = ("OS::stack_name", "OS::stack_id", "OS::project_id")
ASG = "OS::Heat::AutoScalingGroup"
RESOURCE_GROUP = "OS::Heat::ResourceGroup"
SCALING_POLICY = "OS::Heat::ScalingPolicy"
#: types whose deletion_policy may be Snapshot (a VolumeSnapshot / server snapshot image)
SNAPSHOT_TYPES = ("OS::Cinder::Volume", "OS::Nova::Server")
_DNS = re.compile(r"[^a-z0-9-]+")


def dns_name(*parts: str) -> str:
    """A DNS-1123 label from the parts (lowercased; a hash suffix when it had to be cut)."""
    raw = "-".join(parts)
    name = _DNS.sub("-", raw.lower()).strip("-") or "x"
    if len(name) > 63:
        digest = hashlib.sha256(raw.encode()).hexdigest()[:8]
        name = name[:54].rstrip("-") + "-" + digest
    return name


@dataclass
class ResourceDef:
    name: str
    type_name: str            # as written in the template
    rtype: ResourceType       # after resource_registry aliases
    raw: dict[str, Any]
    enabled: bool
    depends_on: list[str]
    deletion_policy: str
    refs: set[str] = field(default_factory=set)

    @property
    def deps(self) -> set[str]:
        return set(self.depends_on) | self.refs


class Stack:
    """A template with its parameters resolved and its resources validated.

    ``attrs`` (for :meth:`resolve`, :meth:`outputs`, :meth:`plan`) maps a resource name to
    the attributes the controller read from that resource's child object (``first_address``,
    ``networks``...). For groups give ``{"members": [attrs of member 0, ...]}``; for
    OS::Heat::RandomString ``{"value": ...}``.
    """

    def __init__(self, template: Template, environment: Environment, parameters: dict[str, Any],
                 files: dict[str, str], stack_name: str, stack_id: str | None,
                 project_id: str | None, exists: Exists | None,
                 facade: nested.ResourceFacade | None = None) -> None:
        self.template = template
        self.version = template.version
        self.environment = environment
        self.files = dict(files or {})
        self.stack_name = stack_name
        self.stack_id = stack_id
        self.project_id = project_id
        self.exists = exists
        #: what resource_facade reads: the data of the resource whose nested stack this is (None:
        #: a stack of its own, where resource_facade is an error)
        self.parent_facade = facade
        self.unchecked_constraints: list[str] = []
        #: physical names to use instead of the derived ones (replacements during updates)
        self.name_overrides: dict[str, str] = {}
        #: the members AutoScalingGroups had when last resized (kept by the controller):
        #: a resize keeps the newest and names new ones with new ids, as Heat does
        self.group_members: dict[str, Members] = {}
        #: member names ResourceGroups no longer use (removal_policies; kept by the controller)
        self.group_blacklist: dict[str, frozenset[str]] = {}
        #: the ids of AutoScalingGroups' members whose objects failed (found by the controller,
        #: `scaling.failed_members`): a shrinking group removes them first, and its attributes
        #: leave them out, as Heat's do
        self.group_failed: dict[str, frozenset[int]] = {}
        #: the resources not COMPLETE at the controller's last pass (`lifecycle.unfinished`): a
        #: scaling signal to a group among them is dropped, as Heat's adjust drops it
        self.unfinished: frozenset[str] = frozenset()
        #: how deep this stack is nested in others (0: a top-level stack; see `nested`)
        self.nested_depth = 0
        #: parameters the parent stack passed a secret in: masked like hidden ones (see `nested`)
        self.secret_parameters: frozenset[str] = frozenset()
        self._template_types: dict[str, ResourceType] = {}
        self.params = resolve_parameters(template.parameters, parameters, environment.parameters,
                                         environment.parameter_defaults, exists,
                                         self.unchecked_constraints)
        self._evaluator = Evaluator(self.version, self)
        self._conditions: dict[str, bool] = {}
        self._evaluating: list[str] = []
        self._attrs: dict[str, dict[str, Any]] = {}
        self._virtual: dict[str, dict[str, Any]] = {}
        for name in template.conditions:
            self.condition(name, ["conditions", name])
        self.defs: dict[str, ResourceDef] = {}
        for name, raw in template.resources.items():
            self.defs[name] = self._definition(name, raw)
        for d in self.defs.values():
            if d.enabled:
                d.refs = self._references(d)
                # depends_on a resource its condition left out is dropped, as Heat does
                d.depends_on = [t for t in d.depends_on if self.defs[t].enabled]
        self._levels = graph.levels({n: d.deps for n, d in self.defs.items() if d.enabled})
        self._validate()

    # -- scope for the evaluator -----------------------------------------------------------------
    def has_param(self, name: str) -> bool:
        return name in self.params or name in PSEUDO_PARAMETERS

    def get_param(self, name: str, path: list[str]) -> Any:
        if name == "OS::stack_name":
            return self.stack_name
        if name == "OS::stack_id":
            return self.stack_id if self.stack_id else Unresolved({"get_param": name})
        if name == "OS::project_id":
            return self.project_id if self.project_id else Unresolved({"get_param": name})
        if name not in self.params:
            raise UserParameterMissing(name).at(path)
        return copy.deepcopy(self.params[name])

    def resource_facade(self, attribute: str, path: list[str]) -> Any:
        if self.parent_facade is None:
            raise StackValidationFailed(
                '"resource_facade" is only valid in a template used as a nested stack (the template of a '
                "template resource): it reads the parent resource's metadata and policies, and this stack "
                "has no parent resource", path)
        return copy.deepcopy(getattr(self.parent_facade, attribute))

    def has_condition(self, name: str) -> bool:
        return name in self.template.conditions

    def condition(self, name: str, path: list[str]) -> bool:
        if name in self._conditions:
            return self._conditions[name]
        if name not in self.template.conditions:
            raise StackValidationFailed(f'Invalid condition "{name}"', path)
        if name in self._evaluating:
            cycle = self._evaluating[self._evaluating.index(name):] + [name]
            raise StackValidationFailed(f"Circular Dependency Found: {' -> '.join(cycle)}",
                                        ["conditions", name])
        self._evaluating.append(name)
        try:
            value = self._evaluator.condition(self.template.conditions[name], ["conditions", name])
        finally:
            self._evaluating.pop()
        self._conditions[name] = bool(value)
        return self._conditions[name]

    def _referrer(self, path: list[str]) -> str:
        return path[1] if len(path) > 1 else "template"

    def _target(self, name: str, path: list[str]) -> ResourceDef:
        d = self.defs.get(name)
        if d is None or not d.enabled:
            raise InvalidTemplateReference(name, self._referrer(path), path)
        return d

    def physical_name(self, name: str, index: int | None = None) -> str:
        if index is None and name in self.name_overrides:
            return self.name_overrides[name]
        base = self.name_overrides.get(name, dns_name(self.stack_name, name))
        return base if index is None else dns_name(base, str(index))

    def get_resource(self, name: str, path: list[str]) -> Any:
        d = self._target(name, path)
        if d.rtype.ref_attribute:
            value = self._known_attrs(name).get(d.rtype.ref_attribute)
            return value if value is not None else Unresolved({"get_resource": name})
        return self.physical_name(name)

    def get_attr(self, name: str, attribute: str | None, rest: list[Any], path: list[str]) -> Any:
        d = self._target(name, path)
        rt = d.rtype
        snippet = Unresolved({"get_attr": [name] + ([attribute] if attribute is not None else []) + rest})
        if attribute is None:
            return self._all_attrs(d, path, snippet)
        if rt.group:
            return self._group_attr(d, attribute, rest, path, snippet)
        if attribute not in rt.attributes:
            raise InvalidTemplateAttribute(name, attribute, path)
        known = self._known_attrs(name)
        if attribute not in known:
            return snippet
        return self._select(known[attribute], rest, path)

    def _all_attrs(self, d: ResourceDef, path: list[str], snippet: Unresolved) -> Any:
        """``get_attr: [name]`` (HOT 2015-10-15 on), as Heat's FnGetAtts: a map of each attribute
        of the resource's type but ``show``, less those it cannot give without a key (a group's
        ``attributes``, ``outputs``, ``outputs_list``); deferred until all are known."""
        if not d.rtype.virtual and d.name not in self._attrs:
            return snippet
        out: dict[str, Any] = {}
        for attribute in sorted(d.rtype.attributes - {"show"}):
            try:
                value = self.get_attr(d.name, attribute, [], path)
            except InvalidTemplateAttribute:
                continue
            if has_unresolved(value):
                return snippet
            out[attribute] = value
        return out

    @staticmethod
    def _select(value: Any, rest: list[Any], path: list[str]) -> Any:
        for key in rest:
            if isinstance(value, dict):
                value = value.get(key, value.get(str(key)))
            elif isinstance(value, list):
                try:
                    value = value[int(key)]
                except (ValueError, TypeError, IndexError):
                    return None
            else:
                return None
        return copy.deepcopy(value)

    def _group_attr(self, d: ResourceDef, attribute: str, rest: list[Any], path: list[str],
                    snippet: Unresolved) -> Any:
        """A group's attribute, as Heat resolves it: ``resource.<n>`` (a member's reference)
        and ``resource.<n>.<attribute>`` or ``resource.<n>, <attribute>`` (a member's attribute:
        for a member that is a nested stack, one of its outputs); the group's own attributes
        (``refs``, ``refs_map``, ``attributes``/``outputs``, ``outputs_list``...); any other
        name, on a ResourceGroup, is the list of that attribute of each member."""
        member_type = self._member_type(d)
        asg = d.rtype.name == ASG
        m = re.match(r"^resource\.(\d+)(?:\.(.+))?$", attribute)
        own = m is None and attribute in d.rtype.attributes
        if m is None and not own:
            if not d.rtype.passthrough_attributes or (member_type and attribute not in member_type.attributes):
                raise InvalidTemplateAttribute(d.name, attribute, path)
        if m is not None and member_type is not None:
            sub = m.group(2) if m.group(2) is not None else (rest[0] if rest else None)
            if sub is not None and (not isinstance(sub, str) or sub not in member_type.attributes):
                raise InvalidTemplateAttribute(d.name, f"resource.{m.group(1)}.{sub}", path)
        known = self._known_attrs(d.name)
        members = known.get("members")
        if members is None:
            return snippet
        ids = self.member_ids(d.name, len(members))
        pairs = list(zip(ids, members))
        if asg:
            # an AutoScalingGroup's attributes leave out its failed members, as Heat's do
            failed = self.group_failed.get(d.name, frozenset())
            pairs = [(i, a) for i, a in pairs if i not in failed]
        ids, members = [i for i, _ in pairs], [a for _, a in pairs]
        refs = [self._member_ref(d, member_type, i, a) for i, a in pairs]
        # a ResourceGroup's maps are keyed by index, an AutoScalingGroup's by member name
        keys = [self.physical_name(d.name, i) for i in ids] if asg else [str(i) for i in ids]
        if m:
            # resource.<name>: a ResourceGroup's member of that index (its name), an
            # AutoScalingGroup's member at that position
            wanted = int(m.group(1))
            i = wanted if asg else (ids.index(wanted) if wanted in ids else len(members))
            if i >= len(members):
                raise InvalidTemplateAttribute(d.name, attribute, path)
            sub = m.group(2)
            if sub is None and not rest:
                return refs[i]
            if sub is None:
                sub, rest = rest[0], rest[1:]
            if sub not in members[i]:
                return snippet  # that member's attribute is not known yet
            return self._select(members[i][sub], rest, path)
        if not own:
            return [self._select(a.get(attribute), rest, path) for a in members]
        if attribute == "refs":
            return self._select(refs, rest, path)
        if attribute == "refs_map":
            return self._select(dict(zip(keys, refs)), rest, path)
        if attribute == "current_size":
            return len(members)
        if attribute == "removed_rsrc_list":
            return sorted(self.group_blacklist.get(d.name, ()), key=lambda n: (len(n), n))
        if attribute in ("attributes", "outputs"):
            if not rest:
                raise InvalidTemplateAttribute(d.name, attribute, path)
            key, rest = rest[0], rest[1:]
            return {k: self._select(a.get(key), rest, path) for k, a in zip(keys, members)}
        if attribute == "outputs_list":
            if not rest:
                raise InvalidTemplateAttribute(d.name, attribute, path)
            key, rest = rest[0], rest[1:]
            return [self._select(a.get(key), rest, path) for a in members]
        if attribute == "show":
            return copy.deepcopy(members)
        return [self._select(a.get(attribute), rest, path) for a in members]

    def _member_ref(self, d: ResourceDef, member_type: ResourceType | None, i: int, attrs: dict) -> Any:
        if member_type is not None and member_type.ref_attribute:
            return attrs.get(member_type.ref_attribute)
        return self.physical_name(d.name, i)

    def member_ids(self, name: str, count: int) -> list[int]:
        """The ids (name suffixes) of a group's ``count`` members, oldest first: a
        ResourceGroup's are its indices, less those removal_policies took (``group_blacklist``);
        an AutoScalingGroup's come from its members as last resized (``group_members``)."""
        if self.defs[name].rtype.name == ASG:
            return list(self.resized_members(name, count).ids)
        return group_indices(count, self.group_blacklist.get(name, ()))

    def resized_members(self, name: str, count: int) -> Members:
        """An AutoScalingGroup's members once it has ``count``, for the controller to keep:
        a shrink removes the failed members first, then the oldest."""
        return self.group_members.get(name, Members()).resized(count, self.group_failed.get(name, frozenset()))

    def member_type(self, name: str) -> ResourceType | None:
        """The type of a group's members (None when it is not a group or its members' type is
        not known yet)."""
        d = self.defs[name]
        return self._member_type(d) if d.rtype.group else None

    def _member_type(self, d: ResourceDef) -> ResourceType | None:
        key = "resource_def" if d.rtype.name == RESOURCE_GROUP else "resource"
        spec = (d.raw.get("properties") or {}).get(key)
        if isinstance(spec, dict) and isinstance(spec.get("type"), str):
            return self._type(spec["type"], None, ["resources", d.name, "properties", key, "type"])
        return None

    def _type(self, type_name: str, resource: str | None, path: list[str]) -> ResourceType:
        """A type after the environment's aliases: one of kubestack's, or the one a template
        file defines (a template resource)."""
        name = self.environment.resolve_type(type_name, resource)
        if not nested.is_template(name):
            return get_type(name, path)
        if name not in self._template_types:
            self._template_types[name] = nested.template_type(name, self.files, self.environment.parameter_defaults,
                                                              path)
        return self._template_types[name]

    def _known_attrs(self, name: str) -> dict[str, Any]:
        d = self.defs[name]
        if d.rtype.virtual:
            if name not in self._virtual:
                props = self._resolve_props(d)
                self._virtual[name] = {} if has_unresolved(props) else virtual_attributes(d.rtype, props)
            return self._virtual[name]
        return self._attrs.get(name) or {}

    # -- loading ------------------------------------------------------------------------------
    def _definition(self, name: str, raw: dict[str, Any]) -> ResourceDef:
        path = ["resources", name]
        enabled = True
        if "condition" in raw:
            cond = raw["condition"]
            enabled = self._evaluator.condition(cond, path + ["condition"])
        rtype = self._type(raw["type"], name, path)
        dep = raw.get("depends_on") or []
        depends_on = [dep] if isinstance(dep, str) else list(dep)
        policy = raw.get("deletion_policy", "Delete")
        if isinstance(policy, dict):
            policy = self._evaluator.eval(policy, path + ["deletion_policy"])
        if policy not in DELETION_POLICIES:
            raise StackValidationFailed(f'Invalid deletion policy "{policy}"', path)
        if policy == "Snapshot" and rtype.name not in SNAPSHOT_TYPES:
            raise StackValidationFailed(f'"{policy}" deletion policy not supported by {rtype.name}', path)
        if enabled:
            for target in depends_on:
                if target not in self.template.resources:
                    raise InvalidTemplateReference(target, name, path + ["depends_on"])
        return ResourceDef(name, raw["type"], rtype, raw, enabled, depends_on, policy)

    def _references(self, d: ResourceDef) -> set[str]:
        refs: set[str] = set()
        path = ["resources", d.name]

        def walk(v: Any, p: list[str]) -> None:
            if isinstance(v, dict):
                if len(v) == 1:
                    key, args = next(iter(v.items()))
                    if key in ALL_FUNCTIONS:
                        if key == "get_resource" and isinstance(args, str):
                            refs.add(args)
                        elif key == "get_attr" and isinstance(args, list) and args and isinstance(args[0], str):
                            refs.add(args[0])
                        elif key == "Ref" and isinstance(args, str) and not self.has_param(args):
                            refs.add(args)
                        elif key == "if" and isinstance(args, list) and len(args) in (2, 3):
                            taken = self._evaluator.condition(args[0], p + ["if"])
                            if taken:
                                walk(args[1], p)
                            elif len(args) == 3:
                                walk(args[2], p)
                            return
                        walk(args, p + [key])
                        return
                for k, x in v.items():
                    walk(x, p + [str(k)])
            elif isinstance(v, list):
                for i, x in enumerate(v):
                    walk(x, p + [str(i)])

        walk(d.raw.get("properties"), path + ["properties"])
        walk(d.raw.get("metadata"), path + ["metadata"])
        for r in sorted(refs):
            self._target(r, path)
        return refs

    def _validate(self) -> None:
        for name in self.resources_in_order():
            d = self.defs[name]
            props = self._resolve_props(d)
            self._check_constraints(d.rtype, d.raw.get("properties") or {}, props,
                                    ["resources", name, "properties"])
            self._expand_members(d, props)
            if d.rtype.name == SCALING_POLICY:
                check_policy(props, ["resources", name, "properties"])
            if d.rtype.name == ASG:
                rolling.check(props.get("rolling_updates"), ["resources", name, "properties", "rolling_updates"])
            if d.raw.get("metadata") is not None:
                self._evaluator.eval(d.raw["metadata"], ["resources", name, "metadata"])
            if d.raw.get("update_policy") is not None:
                self._check_update_policy(d)
        self.outputs({})

    def _check_update_policy(self, d: ResourceDef) -> None:
        """Heat's checks of an update_policy: it resolves and, for the types that say which
        keys it may have (groups), has those keys with values in their ranges."""
        path = ["resources", d.name, "update_policy"]
        policy = self._evaluator.eval(d.raw["update_policy"], path)
        if d.rtype.update_policy is None:
            return
        policy = validate_properties(d.rtype.update_policy, policy, path, defaults=False)
        for key, values in policy.items():
            rolling.check(values, path + [key])

    def _check_constraints(self, rtype: ResourceType, raw: Any, props: dict[str, Any],
                           at: list[str]) -> None:
        for constraint, value, path in constraint_checks(rtype.properties, raw, props, at):
            kind = CUSTOM_CONSTRAINTS[constraint]
            if self.exists is None:
                note = f"{'.'.join(path)}: {constraint} ({value})"
                if note not in self.unchecked_constraints:
                    self.unchecked_constraints.append(note)
            elif not self.exists(kind, value):
                raise PropertyError(f"Error validating value '{value}': The {kind} ({value}) "
                                    "could not be found.", path).not_found()

    # -- resolution ---------------------------------------------------------------------------
    def _resolve_props(self, d: ResourceDef, defaults: bool = True) -> dict[str, Any]:
        path = ["resources", d.name, "properties"]
        value = self._evaluator.eval(d.raw.get("properties") or {}, path)
        if value is IGNORE or value is None:
            value = {}
        if not isinstance(value, dict):
            raise PropertyError("Properties must be a map", path)
        return validate_properties(d.rtype.properties, value, path, defaults)

    def _with_attrs(self, attrs: dict[str, dict[str, Any]] | None, fn: Callable[[], Any]) -> Any:
        saved = (self._attrs, self._virtual)
        self._attrs, self._virtual = dict(attrs or {}), {}
        try:
            return fn()
        finally:
            self._attrs, self._virtual = saved

    def resources_in_order(self) -> list[str]:
        """Enabled resources in a creation order (dependencies first)."""
        return [n for level in self._levels for n in level]

    def levels(self) -> list[list[str]]:
        """Creation order in levels; the resources of a level can be created in parallel."""
        return [list(level) for level in self._levels]

    def dependencies(self, name: str) -> list[str]:
        return sorted(self.defs[name].deps)

    def resolve(self, name: str, attrs: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
        """The properties of a resource, resolved with the attributes of the resources created
        so far; what still needs missing attributes stays a HOT snippet."""
        d = self._target(name, ["resources", name])
        return to_plain(self._with_attrs(attrs, lambda: self._resolve_props(d)))

    def nested_facade(self, name: str, attrs: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
        """The data a nested stack of resource ``name`` (of each of its members, for a group)
        reads with resource_facade (see `nested.ResourceFacade`), resolved with ``attrs``; what
        needs attributes not known stays a deferred call (`functions.Unresolved`).

        A group member's comes from the group's member definition (``resource_def``/``resource``:
        its metadata, no update_policy) and has the group's deletion_policy, the one kubestack
        gives its members."""
        d = self._target(name, ["resources", name])
        path = ["resources", name]

        def compute() -> dict[str, Any]:
            if d.rtype.group:
                spec = self._resolve_props(d).get("resource_def" if d.rtype.name == RESOURCE_GROUP else "resource")
                metadata = spec if isinstance(spec, Unresolved) else (spec or {}).get("metadata")
                update_policy = None
            else:
                metadata = self._evaluator.eval(d.raw.get("metadata") or {}, path + ["metadata"])
                update_policy = self._evaluator.eval(d.raw.get("update_policy") or {}, path + ["update_policy"])
            return {"metadata": metadata or {}, "deletion_policy": d.deletion_policy,
                    "update_policy": update_policy or {}}

        return self._with_attrs(attrs, compute)

    def resolve_metadata(self, name: str, attrs: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
        d = self._target(name, ["resources", name])
        raw = d.raw.get("metadata") or {}
        return to_plain(self._with_attrs(attrs, lambda: self._evaluator.eval(raw, ["resources", name, "metadata"])))

    def members(self, name: str, attrs: dict[str, dict[str, Any]] | None = None) -> list[PlannedResource]:
        """The member resources of a group (ResourceGroup, AutoScalingGroup)."""
        d = self._target(name, ["resources", name])
        return self._with_attrs(attrs, lambda: self._expand_members(d, self._resolve_props(d)))

    def extra_members(self, name: str, ids: Sequence[int],
                      attrs: dict[str, dict[str, Any]] | None = None) -> list[PlannedResource]:
        """Members of a group with the given ids besides its own, with its member definition:
        those a rolling update makes past the group's size (see `rolling`)."""
        d = self._target(name, ["resources", name])
        return self._with_attrs(attrs, lambda: self._expand_members(d, self._resolve_props(d), ids))

    def update_policy(self, name: str) -> dict[str, Any]:
        """A resource's update_policy, resolved."""
        d = self._target(name, ["resources", name])
        return to_plain(self._evaluator.eval(d.raw.get("update_policy") or {}, ["resources", name, "update_policy"]))

    def _expand_members(self, d: ResourceDef, props: dict[str, Any],
                        ids: Sequence[int] | None = None) -> list[PlannedResource]:
        """A group's members (those ``ids`` instead of its own when given)."""
        if not d.rtype.group:
            return []
        sizes = [props.get(k) for k in ("count", "min_size", "max_size", "desired_capacity")]
        spec = props.get("resource_def", props.get("resource"))
        if any(isinstance(v, Unresolved) for v in sizes) or not isinstance(spec, dict) \
                or isinstance(spec, Unresolved) or isinstance(spec.get("type"), Unresolved):
            return []
        path = ["resources", d.name, "properties"]
        if d.rtype.name == RESOURCE_GROUP:
            spec, count, index_var = props["resource_def"], props.get("count", 1), props.get("index_var") or "%index%"
            if count < 0:
                raise PropertyError(f"{count} is out of range (min: 0, max: None)", path + ["count"])
            key = "resource_def"
        else:
            lo, hi = props["min_size"], props["max_size"]
            desired = props.get("desired_capacity")
            count = lo if desired is None else desired
            if lo < 0 or hi < lo or not lo <= count <= hi:
                raise PropertyError(f"desired_capacity {count} must be between min_size {lo} and "
                                    f"max_size {hi}", path)
            spec, index_var, key = props["resource"], None, "resource"
        mpath = path + [key]
        mtype = self._type(spec["type"], None, mpath + ["type"])
        if mtype.group:
            raise StackValidationFailed("nested groups are not supported", mpath + ["type"])
        members = []
        for i in self.member_ids(d.name, count) if ids is None else ids:
            mprops = spec.get("properties") or {}
            if index_var:
                mprops = _replace_index(mprops, index_var, str(i))
            mprops = validate_properties(mtype.properties, mprops, mpath + ["properties"])
            raw_spec = (d.raw.get("properties") or {}).get(key)
            raw_props = raw_spec.get("properties") if isinstance(raw_spec, dict) else None
            self._check_constraints(mtype, raw_props or {}, mprops, mpath + ["properties"])
            members.append(PlannedResource(
                name=f"{d.name}[{i}]", type=mtype.name, kind=mtype.kind,
                physical_name=self.physical_name(d.name, i), properties=to_plain(mprops),
                metadata=to_plain(spec.get("metadata") or {}), depends_on=sorted(d.deps),
                deletion_policy=d.deletion_policy, admin_only=mtype.admin_only,
                resolved=not has_unresolved(mprops)))
        return members

    def outputs(self, attrs: dict[str, dict[str, Any]] | None = None,
                keep_unresolved: bool = False) -> dict[str, Any]:
        """Output values; ``None`` for an output whose condition is false or (unless
        ``keep_unresolved``) whose value still needs attributes not known yet."""

        def compute() -> dict[str, Any]:
            out: dict[str, Any] = {}
            for name, body in self.template.outputs.items():
                path = ["outputs", name]
                if "condition" in body and not self._evaluator.condition(body["condition"], path + ["condition"]):
                    out[name] = None
                    continue
                value = self._evaluator.eval(body.get("value"), path + ["value"])
                if value is IGNORE:
                    value = None
                if has_unresolved(value) and not keep_unresolved:
                    value = None
                out[name] = to_plain(value)
            return out

        return self._with_attrs(attrs, compute)

    def output_descriptions(self) -> dict[str, str]:
        return {n: str(b.get("description") or "") for n, b in self.template.outputs.items()}

    # -- plans -----------------------------------------------------------------------------
    def plan(self, attrs: dict[str, dict[str, Any]] | None = None, defaults: bool = True) -> CreatePlan:
        """The create plan. With ``defaults=False`` the properties are those the template
        gives (resolved), without the schema defaults filled in."""

        def compute() -> CreatePlan:
            planned = []
            for name in self.resources_in_order():
                d = self.defs[name]
                props = self._resolve_props(d)
                meta = self._evaluator.eval(d.raw.get("metadata") or {}, ["resources", name, "metadata"])
                upd = self._evaluator.eval(d.raw.get("update_policy") or {}, ["resources", name, "update_policy"])
                waiting = sorted({u.args[0] if u.function == "get_attr" else str(u.args)
                                  for u in unresolved_refs(props) if u.function in ("get_attr", "get_resource")})
                kind = d.rtype.kind
                members = self._expand_members(d, props)
                if d.rtype.group:
                    mt = self._member_type(d)
                    kind = mt.kind if mt else None
                planned.append(PlannedResource(
                    name=name, type=d.rtype.name, kind=kind, physical_name=self.physical_name(name),
                    properties=to_plain(props if defaults else self._resolve_props(d, False)),
                    metadata=to_plain(meta), depends_on=self.dependencies(name),
                    deletion_policy=d.deletion_policy, update_policy=to_plain(upd),
                    admin_only=d.rtype.admin_only, resolved=not has_unresolved(props),
                    waiting_for=waiting, members=members))
            return CreatePlan(stack_name=self.stack_name, levels=self.levels(), resources=planned,
                              outputs=self.outputs(attrs), unchecked_constraints=list(self.unchecked_constraints))

        return self._with_attrs(attrs, compute)

    def delete_plan(self) -> DeletePlan:
        deps = {n: self.defs[n].deps for n in self.resources_in_order()}
        order = graph.reverse_levels(deps)
        flat = [n for level in order for n in level]
        return DeletePlan(
            levels=order,
            delete=[n for n in flat if self.defs[n].deletion_policy == "Delete"],
            retain=[n for n in flat if self.defs[n].deletion_policy == "Retain"],
            snapshot=[n for n in flat if self.defs[n].deletion_policy == "Snapshot"],
        )


def _replace_index(value: Any, var: str, index: str) -> Any:
    if isinstance(value, str):
        return value.replace(var, index)
    if isinstance(value, dict):
        return type(value)({k: _replace_index(v, var, index) for k, v in value.items()})
    if isinstance(value, list):
        return [_replace_index(v, var, index) for v in value]
    return value


def load_stack(template: Any, parameters: dict[str, Any] | None = None,
               files: dict[str, str] | None = None, environment: Any = None,
               stack_name: str = "stack", stack_id: str | None = None,
               project_id: str | None = None, exists: Exists | None = None,
               facade: nested.ResourceFacade | None = None) -> Stack:
    """Parse and validate a template (YAML/JSON text or a map) with its parameters, files
    and environment. ``exists(kind, name)`` checks custom constraints against the cluster;
    without it they are listed in ``Stack.unchecked_constraints`` instead. ``facade``: the
    parent resource's data, for a nested stack's resource_facade.
    Raises a :class:`HeatError` with Heat's wording when anything is wrong."""
    tmpl = Template.parse(template)
    env = Environment.parse(environment)
    return Stack(tmpl, env, dict(parameters or {}), dict(files or {}), stack_name, stack_id,
                 project_id, exists, facade)


# ---- updates -------------------------------------------------------------------------------

_POLICY_PROPS = {
    # (property, policy property, policy value meaning "replace instead")
    "OS::Nova::Server": [("flavor", "flavor_update_policy", "REPLACE"),
                         ("image", "image_update_policy", "REPLACE")],
}


def _compare(old: Stack, new: Stack, name: str, old_props: dict, new_props: dict) -> ResourceChange:
    od, nd = old.defs[name], new.defs[name]
    base = dict(name=name, type=nd.rtype.name, kind=nd.rtype.kind, physical_name=old.physical_name(name))
    if od.rtype.name != nd.rtype.name:
        return ResourceChange(action="replace", reason=f"type changed from {od.rtype.name}", **base)
    changed = sorted(k for k in set(old_props) | set(new_props) if old_props.get(k) != new_props.get(k))
    if nd.rtype.name == "OS::Nova::Server" and "user_data" in changed and \
            new_props.get("user_data_update_policy") == "IGNORE":
        changed.remove("user_data")
    meta_changed = old.resolve_metadata(name) != new.resolve_metadata(name)
    if not changed and not meta_changed:
        return ResourceChange(action="keep", **base)
    fixed = [k for k in changed if not nd.rtype.updatable(k)]
    for prop, policy, replace_value in _POLICY_PROPS.get(nd.rtype.name, []):
        if prop in changed and new_props.get(policy) == replace_value:
            fixed.append(prop)
    if fixed:
        return ResourceChange(action="replace", changed_properties=changed,
                              reason=f"cannot update {', '.join(sorted(set(fixed)))} in place", **base)
    return ResourceChange(action="update", changed_properties=changed,
                          reason="metadata changed" if not changed else "", **base)


def diff(old: Stack, new: Stack) -> UpdatePlan:
    """What turns ``old`` into ``new``: per resource create / update in place / replace
    (create new, then delete old) / delete (or retain) / keep.

    A replaced resource gets a new physical name (``new_physical_name``, recorded in
    ``new.name_overrides``), so the new object can exist next to the old one; resources
    referring to it are then updated or replaced in turn. The controller keeps
    ``name_overrides`` (e.g. in the Stack's status) and sets them on the stacks it loads
    later. A Stack is not thread-safe: resolve with one thread at a time."""
    old_names = set(old.resources_in_order())
    new_order = new.resources_in_order()
    new.name_overrides.update({k: v for k, v in old.name_overrides.items() if k in new.defs})
    changes: dict[str, ResourceChange] = {}
    while True:
        old_props = {n: old.resolve(n) for n in old_names}
        replaced_now = False
        for name in new_order:
            if name not in old_names:
                changes[name] = ResourceChange(name=name, action="create", type=new.defs[name].rtype.name,
                                               kind=new.defs[name].rtype.kind,
                                               physical_name=new.physical_name(name))
                continue
            change = _compare(old, new, name, old_props[name], new.resolve(name))
            if change.action == "replace" and name not in new.name_overrides.keys() - old.name_overrides.keys():
                generation = hashlib.sha256(json.dumps(new.resolve(name), sort_keys=True,
                                                       default=str).encode()).hexdigest()[:6]
                new_name = dns_name(old.physical_name(name), generation)
                new.name_overrides[name] = new_name
                replaced_now = True
            if change.action == "replace":
                change.new_physical_name = new.name_overrides[name]
            changes[name] = change
        if not replaced_now:
            break
    ordered = [changes[n] for n in new_order]
    deps = {n: old.defs[n].deps for n in old_names}
    for level in graph.reverse_levels(deps):
        for name in level:
            if name in changes:
                continue
            d = old.defs[name]
            action = "retain" if d.deletion_policy == "Retain" else "delete"
            ordered.append(ResourceChange(name=name, action=action, type=d.rtype.name, kind=d.rtype.kind,
                                          physical_name=old.physical_name(name),
                                          reason="removed from the template"))
    return UpdatePlan(changes=ordered)


__all__ = ["Stack", "load_stack", "diff", "dns_name", "HeatError", "PSEUDO_PARAMETERS"]
