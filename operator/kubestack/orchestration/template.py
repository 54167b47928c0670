"""Parsing a HOT template and its environment, and checking their sections."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import yaml

from .errors import StackValidationFailed
from .parameters import ParamSchema, validate_parameter_groups
from .versions import HotVersion, get_version

RESOURCE_KEYS = ("type", "properties", "metadata", "depends_on", "deletion_policy", "update_policy")
OUTPUT_KEYS = ("value", "description")
DELETION_POLICIES = ("Delete", "Retain", "Snapshot")
ENV_SECTIONS = ("parameters", "parameter_defaults", "resource_registry", "event_sinks",
                "encrypted_param_names", "parameter_merge_strategies")


class _Loader(yaml.SafeLoader):
    """YAML as Heat reads it: dates stay strings except the version (handled by get_version)."""


_Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:timestamp"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def parse_document(source: Any, what: str) -> dict[str, Any]:
    """A template or environment given as YAML/JSON text or an already-parsed map."""
    if source is None:
        return {}
    if isinstance(source, (bytes, bytearray)):
        source = source.decode()
    if isinstance(source, str):
        try:
            data = yaml.load(source, Loader=_Loader)
        except yaml.YAMLError as e:
            raise StackValidationFailed(f"Error parsing {what}: {e}") from None
    else:
        data = json.loads(json.dumps(source, default=str))
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise StackValidationFailed(f"The {what} is not a JSON object or YAML mapping.")
    return data


@dataclass
class Template:
    version: HotVersion
    description: str
    parameters: dict[str, ParamSchema]
    parameter_groups: Any
    resources: dict[str, dict[str, Any]]
    outputs: dict[str, dict[str, Any]]
    conditions: dict[str, Any]
    raw: dict[str, Any] = field(repr=False, default_factory=dict)

    @classmethod
    def parse(cls, source: Any) -> "Template":
        t = parse_document(source, "template")
        if "heat_template_version" not in t:
            if "AWSTemplateFormatVersion" in t or "HeatTemplateFormatVersion" in t:
                raise StackValidationFailed(
                    "CloudFormation (CFN) templates are not supported; write a HOT template "
                    "(heat_template_version)")
            raise StackValidationFailed(
                'Template format version not found: "heat_template_version" is required.')
        version = get_version(t["heat_template_version"])
        sections = {"heat_template_version", "description", "parameter_groups", "parameters",
                    "resources", "outputs"}
        if version.has_conditions:
            sections.add("conditions")
        for key in t:
            if key not in sections:
                raise StackValidationFailed(f"The template section is invalid: {key}")
        params_raw = t.get("parameters") or {}
        if not isinstance(params_raw, dict):
            raise StackValidationFailed('"parameters" must be a map of parameter maps', ["parameters"])
        schemas = {str(n): ParamSchema.parse(str(n), s) for n, s in params_raw.items()}
        validate_parameter_groups(t.get("parameter_groups"), schemas)
        resources = cls._section(t, "resources", "resource", "type",
                                 RESOURCE_KEYS + (("condition",) if version.has_conditions else ()))
        outputs = cls._section(t, "outputs", "output", "value",
                               OUTPUT_KEYS + (("condition",) if version.has_conditions else ()))
        conditions = t.get("conditions") or {}
        if not isinstance(conditions, dict):
            raise StackValidationFailed('"conditions" must be a map', ["conditions"])
        for name, res in resources.items():
            _check_resource_keys(name, res)
        desc = t.get("description")
        return cls(version, "" if desc is None else str(desc), schemas, t.get("parameter_groups"),
                   resources, outputs, conditions, t)

    @staticmethod
    def _section(t: dict, section: str, obj: str, required: str, allowed: tuple) -> dict:
        data = t.get(section) or {}
        if not isinstance(data, dict):
            raise StackValidationFailed(
                f'"{section}" must contain a map of {obj} maps. Found a '
                f"[{type(data).__name__}] instead", [section])
        out: dict[str, dict[str, Any]] = {}
        for name, body in data.items():
            path = [section, str(name)]
            if not isinstance(body, dict):
                raise StackValidationFailed(
                    f'"{section}" must contain a map of {obj} maps. Found a '
                    f"[{type(body).__name__}] instead", path)
            for key in body:
                if key not in allowed:
                    raise StackValidationFailed(f'"{key}" is not a valid keyword inside a {obj} definition', path)
            if required not in body:
                if obj == "resource":
                    raise StackValidationFailed(f'Resource {name} is missing "type"', path)
                raise StackValidationFailed(f"Each {obj} must contain a {required} key.", path)
            out[str(name)] = body
        return out


def _check_resource_keys(name: str, res: dict[str, Any]) -> None:
    path = ["resources", name]
    if not isinstance(res.get("type"), str):
        raise StackValidationFailed(f'Resource {name} "type" must be a string', path)
    for key, kinds, label in (("properties", dict, "object"), ("metadata", dict, "object"),
                              ("update_policy", dict, "object")):
        v = res.get(key)
        if v is not None and not isinstance(v, kinds):
            raise StackValidationFailed(f'Resource {name} {key} type must be {label}', path)
    dep = res.get("depends_on")
    if dep is not None and not (isinstance(dep, str) or (isinstance(dep, list) and all(isinstance(d, str) for d in dep))):
        raise StackValidationFailed(f"Resource {name} depends_on type must be list or string", path)
    dp = res.get("deletion_policy")
    if dp is not None and not isinstance(dp, (str, dict)):
        raise StackValidationFailed(f"Resource {name} deletion_policy type must be string", path)


@dataclass
class Environment:
    parameters: dict[str, Any]
    parameter_defaults: dict[str, Any]
    resource_registry: dict[str, str]
    resource_overrides: dict[str, dict[str, str]]
    #: the document as given (a nested stack's environment is made from it)
    raw: dict[str, Any] = field(repr=False, default_factory=dict)

    @classmethod
    def parse(cls, source: Any) -> "Environment":
        env = parse_document(source, "environment")
        for key in env:
            if key not in ENV_SECTIONS:
                raise StackValidationFailed(f'environment has wrong section "{key}"')
        params = env.get("parameters") or {}
        defaults = env.get("parameter_defaults") or {}
        registry_raw = env.get("resource_registry") or {}
        for section, value in (("parameters", params), ("parameter_defaults", defaults),
                               ("resource_registry", registry_raw)):
            if not isinstance(value, dict):
                raise StackValidationFailed(f'environment section "{section}" must be a map')
        registry: dict[str, str] = {}
        overrides: dict[str, dict[str, str]] = {}
        for alias, target in registry_raw.items():
            if alias == "resources":
                if not isinstance(target, dict):
                    raise StackValidationFailed('resource_registry "resources" must be a map')
                for rname, mapping in target.items():
                    if not isinstance(mapping, dict):
                        raise StackValidationFailed(f'resource_registry resources.{rname} must be a map')
                    # a map under a resource's name is for the resources of its nested stack
                    overrides[str(rname)] = {str(a): _registry_target(a, t) for a, t in mapping.items()
                                             if a not in ("hooks", "restricted_actions") and not isinstance(t, dict)}
                continue
            registry[str(alias)] = _registry_target(alias, target)
        return cls(dict(params), dict(defaults), registry, overrides, env)

    def resolve_type(self, type_name: str, resource: str | None = None) -> str:
        """The type an alias stands for (resource-specific mappings first; ``Prefix::*``
        wildcards; chains followed)."""
        seen: set[str] = set()
        current = type_name
        while current not in seen:
            seen.add(current)
            specific = self.resource_overrides.get(resource or "", {})
            nxt = specific.get(current) or self.resource_registry.get(current)
            if nxt is None:
                for pattern, target in self.resource_registry.items():
                    if pattern.endswith("*") and current.startswith(pattern[:-1]) and target.endswith("*"):
                        nxt = target[:-1] + current[len(pattern) - 1:]
                        break
            if nxt is None or nxt == current:
                return current
            current = nxt
        raise StackValidationFailed(f"resource_registry has a loop for type {type_name}")


def _registry_target(alias: Any, target: Any) -> str:
    """A type name or, for a template resource, a template file's name."""
    if not isinstance(target, str):
        raise StackValidationFailed(f"resource_registry entry {alias} must map to a type name")
    return target
