"""Nested stacks (pure): template resources and OS::Heat::Stack.

A template resource is one whose type is a template file's name (``type: lib/web_tier.yaml``,
or an alias the environment's resource_registry maps to one, ``My::WebTier: web_tier.yaml``);
the file comes from the stack's files, as the openstack client sends them. The template's
parameters are the resource's properties and its outputs the resource's attributes
(:func:`template_type`). An OS::Heat::Stack gives its template (text: a file through
``get_file``, or inline YAML) and parameters as properties; its attributes are ``outputs``
and ``stack_name``.

Either becomes a child Stack object (:func:`child`) with the nested template, the
properties as its parameters (in a Secret beside it: in the Stack's spec they would be plain to
anyone who may read Stacks, a project reader included, hidden ones too, which Heat never
shows), the parent's files (nested ``get_file`` and deeper nesting
work) and environment, no rollback of its own (the parent rolls it back, as Heat does) and the
parent's timeout. The parent waits for it like for any child (`realize.readiness`) and reads
its attributes from its status (:func:`attributes`). Heat's ``max_nested_stack_depth`` bounds
how deep stacks nest, so a template that nests itself fails instead of growing forever.

Secrets cross the boundary both ways without being shown. An output the child's status masks
(:func:`masked_outputs`: derived from a hidden parameter or a generated secret) is an attribute
with its real value, as Heat's ``get_attr`` gives it, read from the child's record (kept in its
state Secret); the parent then masks what it derives from it (:func:`secret_attributes`).
Parameters the parent passes a secret in are named on the child (:func:`secret_parameters`),
which masks them and what derives from them as if they were hidden.

A template resource's nested template may call ``resource_facade`` (Heat's provider-template
facade): it reads its parent resource's metadata, deletion_policy and update_policy
(:class:`ResourceFacade`). The parent gives them when the template calls it (:func:`uses_facade`),
under a key of the parameters Secret (``FACADE_PARAMETER``): a changed facade is a new Secret
name, so the child updates like for changed parameters, and metadata derived from a hidden
parameter stays out of the Stack's spec. The child takes them out of its parameters
(:func:`take_facade`). An OS::Heat::Stack is a stack of its own in Heat, with no facade.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from pydantic import BaseModel, ConfigDict, ValidationError

from . import realize as rz
from .errors import HeatError, StackValidationFailed
from .functions import has_unresolved, to_plain, unresolved_refs
from .parameters import ParamSchema
from .plan import DeletionPolicy
from .resources import P, Prop, ResourceType
from .template import Template, parse_document

if TYPE_CHECKING:
    from .stack import Stack

HEAT_STACK = "OS::Heat::Stack"
#: Heat's max_nested_stack_depth default: a top-level stack is at depth 0
MAX_NESTED_DEPTH = 5
#: how deep a child Stack is nested (on the child Stack object)
DEPTH_ANNOTATION = "kubestack.io/nested-depth"
#: the child's parameters that carry a secret of the parent (on the child Stack object)
SECRET_PARAMETERS_ANNOTATION = rz.SECRET_PARAMETERS_ANNOTATION
#: a template resource's output whose value ``get_resource`` gives (else the child's name)
STACK_ID_OUTPUT = "OS::stack_id"
TEMPLATE_SUFFIXES = (".yaml", ".yml", ".template")
#: the key of a nested stack's parameters Secret that holds its ResourceFacade (a Secret key
#: may not hold "/": no HOT parameter of a template is likely to be named so)
FACADE_PARAMETER = "kubestack.io.resource-facade"
_FACADE_FUNCTIONS = ("resource_facade", "Fn::ResourceFacade")

#: parameter type -> the type of the property that feeds it (json takes a map, a list or text)
_PROPERTY_TYPES = {"string": "string", "number": "number", "boolean": "boolean",
                   "comma_delimited_list": "list", "json": "any"}


def is_template(type_name: str) -> bool:
    """The (resolved) type is a template file's name: a template resource."""
    return type_name.endswith(TEMPLATE_SUFFIXES)


def is_nested(type_name: str) -> bool:
    """A resource of this (resolved) type is a nested stack."""
    return type_name == HEAT_STACK or is_template(type_name)


def depth(meta: Mapping[str, Any]) -> int:
    """How deep the Stack object with metadata ``meta`` is nested (0: a top-level stack)."""
    return int((meta.get("annotations") or {}).get(DEPTH_ANNOTATION) or 0)


def secret_parameters(meta: Mapping[str, Any]) -> frozenset[str]:
    """The parameters of the Stack object with metadata ``meta`` its parent passed a secret in."""
    return frozenset(filter(None, ((meta.get("annotations") or {}).get(SECRET_PARAMETERS_ANNOTATION) or "").split(",")))


def _template(source: str, what: str, path: list[str]) -> tuple[dict[str, Any], Template]:
    """A nested template's text: the document and the parsed template."""
    try:
        doc = parse_document(source, "template")
        return doc, Template.parse(doc)
    except HeatError as exc:
        raise StackValidationFailed(f"{what}: {exc}", path) from None


def _file(name: str, files: Mapping[str, str], path: list[str]) -> str:
    if name not in files:
        raise StackValidationFailed(f'Could not fetch remote template "{name}": it is not in the stack\'s files '
                                    "(spec.files, or a key of the templateRef ConfigMap)", path)
    return files[name]


def _property(schema: ParamSchema, parameter_defaults: Mapping[str, Any]) -> Prop:
    # no default: a property left out leaves the nested template's own default to apply
    required = not schema.has_default and schema.name not in parameter_defaults
    return P(_PROPERTY_TYPES[schema.type], required=required, update=True)


def template_type(name: str, files: Mapping[str, str], parameter_defaults: Mapping[str, Any],
                  path: list[str]) -> ResourceType:
    """The resource type the template file ``name`` defines: a property for each parameter
    (required when it has no default, here or in the environment's parameter_defaults), an
    attribute for each output. Every property updates in place: Heat updates a nested stack
    and lets its resources decide."""
    _, tmpl = _template(_file(name, files, path), f"template {name}", path)
    props = {n: _property(s, parameter_defaults) for n, s in tmpl.parameters.items()}
    outputs = frozenset(tmpl.outputs)
    return ResourceType(name, "Stack", props, outputs,
                        ref_attribute=STACK_ID_OUTPUT if STACK_ID_OUTPUT in outputs else None,
                        description=tmpl.description)


class ResourceFacade(BaseModel):
    """What ``resource_facade`` gives a nested stack: the data of its parent resource (a
    group member's: the group's member definition, which has no update_policy)."""

    model_config = ConfigDict(frozen=True)

    metadata: dict[str, Any] = {}
    deletion_policy: DeletionPolicy = "Delete"
    update_policy: dict[str, Any] = {}


def uses_facade(document: Any) -> bool:
    """The template (a parsed document) calls resource_facade somewhere."""
    if isinstance(document, dict):
        if len(document) == 1 and next(iter(document)) in _FACADE_FUNCTIONS:
            return True
        return any(uses_facade(v) for v in document.values())
    if isinstance(document, list):
        return any(uses_facade(v) for v in document)
    return False


def facade_of(parent: Stack, resource: str, attrs: Mapping[str, dict] | None) -> ResourceFacade:
    """The facade of the nested stack of ``resource`` of ``parent`` (of each member, for a
    group), resolved with ``attrs``. Raises `realize.RealizeError` when it needs attributes
    not known."""
    raw = parent.nested_facade(resource, dict(attrs) if attrs is not None else None)
    if has_unresolved(raw):
        waiting = json.dumps(to_plain(unresolved_refs(raw)))
        raise rz.RealizeError(f"the metadata or update_policy of {resource}, which its nested template reads "
                              f"with resource_facade, is not known yet: it needs {waiting}")
    return ResourceFacade.model_validate(raw)


def take_facade(inputs: dict[str, Any]) -> None:
    """Move the facade a parent gave in the parameters Secret (see the module) out of the
    ``inputs``' parameters into ``inputs["facade"]``. Raises StackValidationFailed when it is
    not one."""
    raw = (inputs.get("parameters") or {}).get(FACADE_PARAMETER)
    if raw is None:
        return
    try:
        facade = ResourceFacade.model_validate_json(raw)
    except ValidationError as exc:
        raise StackValidationFailed(f"parameter {FACADE_PARAMETER} is not the data of a parent resource: "
                                    f"{exc.errors()[0]['msg']}") from None
    inputs["parameters"] = {k: v for k, v in inputs["parameters"].items() if k != FACADE_PARAMETER}
    inputs["facade"] = facade.model_dump()


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def parameters(template: Template, values: Mapping[str, Any]) -> dict[str, str]:
    """The child stack's parameters, text as Heat passes them, from the values given: a list
    for a comma_delimited_list is joined with commas, another map or list is JSON; values
    not given (None) are left out."""
    out: dict[str, str] = {}
    for name, value in values.items():
        if value is None:
            continue
        schema = template.parameters.get(name)
        if isinstance(value, list) and schema is not None and schema.type == "comma_delimited_list":
            out[name] = ",".join("" if v is None else _text(v) for v in value)
        else:
            out[name] = _text(value)
    return out


def child_environment(env: Mapping[str, Any], resource: str, template: str | None) -> dict[str, Any]:
    """Heat's child environment: the parent's parameter_defaults and resource_registry, less
    the mappings to ``template`` (a template standing in for a type, ``OS::Nova::Server:
    server.yaml``, uses that type itself) and, of the resource-specific mappings
    (``resources``), only the maps under ``resource``'s name: they are for the nested stack's
    resources. Its parameters are the parent's own, not the child's."""
    registry = dict(env.get("resource_registry") or {})
    specific = (registry.pop("resources", None) or {}).get(resource) or {}
    registry = {alias: target for alias, target in registry.items() if target != template}
    inner = {name: mapping for name, mapping in specific.items() if isinstance(mapping, dict)}
    if inner:
        registry["resources"] = inner
    out: dict[str, Any] = {}
    if env.get("parameter_defaults"):
        out["parameter_defaults"] = dict(env["parameter_defaults"])
    if registry:
        out["resource_registry"] = registry
    return out


def parameters_secret_name(physical_name: str, parameters: Mapping[str, str]) -> str:
    """The Secret holding a nested stack's parameters, named after its content: changed
    parameters are a new name in the child's spec (a new generation, which the child acts on),
    and the Secret they replace is no longer wanted, so the stack's cleanup removes it."""
    digest = hashlib.sha256(json.dumps(dict(parameters), sort_keys=True).encode()).hexdigest()[:10]
    return f"{physical_name[:253 - 19]}-params-{digest}"


def child(parent: Stack, type_name: str, resource: str, physical_name: str, props: Mapping[str, Any],
          ctx: rz.Context, deletion_policy: str, timeout_minutes: int,
          secret: Iterable[str] = (), attrs: Mapping[str, dict] | None = None) -> tuple[rz.Child, rz.Child | None]:
    """The child Stack of the nested stack ``resource`` of ``parent`` (``type_name``: its
    resolved type; ``props``: its resolved properties; ``secret``: the parameters given a
    secret, see `status.secret_parameters`; ``attrs``: the attributes known, for the metadata
    its template may read with resource_facade) and the Secret with its parameters (None
    when it has none); the Secret is to exist before the Stack names it. Raises
    `realize.RealizeError` when it would nest deeper than ``MAX_NESTED_DEPTH`` or its facade
    is not known, `HeatError` when its template is not one."""
    if parent.nested_depth >= MAX_NESTED_DEPTH:
        raise rz.RealizeError(f"Recursion depth exceeds {MAX_NESTED_DEPTH}.")
    path = ["resources", resource]
    if type_name == HEAT_STACK:
        doc, tmpl = _template(props["template"], "template", path + ["properties", "template"])
        values, template_name = props.get("parameters") or {}, None
        timeout_minutes = props.get("timeout") or timeout_minutes
    else:
        doc, tmpl = _template(_file(type_name, parent.files, path), f"template {type_name}", path)
        values, template_name = props, type_name
    params = parameters(tmpl, values)
    data = dict(params)
    if template_name is not None and uses_facade(doc):
        data[FACADE_PARAMETER] = facade_of(parent, resource, attrs).model_dump_json()
    params_secret = rz.secret_child(resource, parameters_secret_name(physical_name, data), data, ctx,
                                    deletion_policy) if data else None
    spec = {"template": doc, "parametersSecretRef": {"name": params_secret.name} if params_secret else None,
            "files": dict(parent.files),
            "environment": child_environment(parent.environment.raw, resource, template_name) or None,
            "rollback": False, "timeoutMinutes": timeout_minutes}
    c = rz.child("Stack", resource, physical_name, spec, ctx, deletion_policy)
    c.body["metadata"]["annotations"][DEPTH_ANNOTATION] = str(parent.nested_depth + 1)
    hidden = sorted(set(secret) & set(params))
    if hidden:
        c.body["metadata"]["annotations"][SECRET_PARAMETERS_ANNOTATION] = ",".join(hidden)
    return c, params_secret


def masked_outputs(obj: dict[str, Any] | None) -> list[str]:
    """The keys of the outputs the nested Stack ``obj``'s status masks."""
    return [o["key"] for o in ((obj or {}).get("status") or {}).get("outputs") or []
            if o.get("value") == rz.MASK and o.get("error") == rz.SECRET_OUTPUT]


def attributes(type_name: str, obj: dict[str, Any] | None, physical_name: str,
               secret_values: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A nested stack's attributes from its Stack's status: a template resource's are its
    outputs; an OS::Heat::Stack's ``outputs`` (all of them) and ``stack_name``. An output the
    status masks has its real value from ``secret_values`` (the child's record), and is left
    out (not known yet) without one: the mask is never taken for a value."""
    outputs = {o["key"]: o.get("value") for o in ((obj or {}).get("status") or {}).get("outputs") or []}
    for key in masked_outputs(obj):
        if secret_values is not None and key in secret_values:
            outputs[key] = secret_values[key]
        else:
            outputs.pop(key)
    if type_name == HEAT_STACK:
        return {"stack_name": physical_name, "outputs": outputs}
    return outputs


def secret_attributes(type_name: str, keys: Iterable[str]) -> list[tuple[str, ...]]:
    """The attribute paths the outputs ``keys`` of a nested stack of type ``type_name`` are
    at: a template resource's own attribute, an OS::Heat::Stack's ``outputs`` entry."""
    return [("outputs", k) if type_name == HEAT_STACK else (k,) for k in keys]


__all__ = ["HEAT_STACK", "MAX_NESTED_DEPTH", "DEPTH_ANNOTATION", "SECRET_PARAMETERS_ANNOTATION", "STACK_ID_OUTPUT",
           "FACADE_PARAMETER", "ResourceFacade", "uses_facade", "facade_of", "take_facade",
           "is_template", "is_nested", "depth", "secret_parameters", "template_type", "parameters",
           "parameters_secret_name", "child_environment", "child", "masked_outputs", "attributes",
           "secret_attributes"]
