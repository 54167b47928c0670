"""pydantic JSON schema -> Kubernetes structural OpenAPI v3 schema.

What the API server needs and pydantic does not emit by itself:

* no ``$ref``/``$defs``: every reference is inlined (field-level keys override the target's);
* no ``anyOf`` with ``null``: ``Optional[X]`` becomes plain ``X`` (absence means None);
  ``anyOf`` of integer and string becomes ``x-kubernetes-int-or-string``;
* every node typed; free-form values (``Any``, ``dict[str, Any]``) become
  ``x-kubernetes-preserve-unknown-fields``;
* JSON-Schema-2020 spellings mapped to OpenAPI v3.0 (``exclusiveMinimum`` as a boolean,
  ``uniqueItems`` as ``x-kubernetes-list-type: set``), unsupported keys (``title``,
  ``propertyNames``, ``const``) dropped, ``null`` defaults dropped.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel

# Keys a structural schema may carry (apiextensions.k8s.io/v1 JSONSchemaProps).
_ALLOWED = {
    "type", "format", "description", "default", "enum", "maximum", "minimum",
    "exclusiveMaximum", "exclusiveMinimum", "maxLength", "minLength", "pattern", "maxItems",
    "minItems", "multipleOf", "maxProperties", "minProperties", "required", "items",
    "properties", "additionalProperties", "nullable",
    "x-kubernetes-validations", "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-int-or-string", "x-kubernetes-list-type", "x-kubernetes-list-map-keys",
    "x-kubernetes-map-type", "x-kubernetes-embedded-resource",
}


class SchemaError(ValueError):
    """The model cannot be expressed as a structural schema."""


_INT_OR_STRING_KEYS = ("description", "default", "maxLength", "minLength", "pattern", "minimum",
                       "maximum", "x-kubernetes-validations")


def _merge(target: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Field-level keys override the referenced schema's, except CEL rules, which add up."""
    rules = list(target.get("x-kubernetes-validations", []))
    for r in overrides.get("x-kubernetes-validations", []):
        if r not in rules:
            rules.append(r)
    target.update(overrides)
    if rules:
        target["x-kubernetes-validations"] = rules
    return target


def _is_null(node: dict[str, Any]) -> bool:
    return node.get("type") == "null"


def _convert(node: Any, defs: dict[str, Any], path: str) -> dict[str, Any]:
    if node is True or node == {}:
        return {"x-kubernetes-preserve-unknown-fields": True}
    if not isinstance(node, dict):
        raise SchemaError(f"{path}: unexpected schema node {node!r}")
    node = dict(node)

    # $ref (possibly with sibling keys that override the referenced schema)
    if "$ref" in node:
        ref = node.pop("$ref")
        name = ref.rsplit("/", 1)[-1]
        if name not in defs:
            raise SchemaError(f"{path}: unresolvable $ref {ref}")
        target = copy.deepcopy(defs[name])
        return _convert(_merge(target, node), defs, path)
    if "allOf" in node:
        parts = node.pop("allOf")
        if len(parts) != 1:
            raise SchemaError(f"{path}: allOf with {len(parts)} members is not structural")
        return _convert(_merge(dict(parts[0]), node), defs, path)
    if "anyOf" in node or "oneOf" in node:
        options = node.pop("anyOf", None) or node.pop("oneOf")
        non_null = [o for o in options if not _is_null(o)]
        if len(non_null) == 1:
            merged = _merge(dict(non_null[0]), node)
            if merged.get("default", 0) is None:
                merged.pop("default")
            return _convert(merged, defs, path)
        types = sorted(o.get("type", "") for o in non_null)
        if types == ["integer", "string"]:
            out = {}
            for option in non_null:  # value constraints of either branch apply to it alone
                out.update({k: v for k, v in option.items() if k in _INT_OR_STRING_KEYS})
            out.update({k: v for k, v in node.items() if k in _INT_OR_STRING_KEYS})
            if out.get("default", 0) is None:
                out.pop("default")
            out["x-kubernetes-int-or-string"] = True
            return out
        raise SchemaError(f"{path}: union {types} cannot be expressed structurally")

    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("title", "$defs", "propertyNames", "discriminator", "examples"):
            continue
        if key == "default" and value is None:
            continue
        if key == "uniqueItems":
            if value:
                out.setdefault("x-kubernetes-list-type", "set")
            continue
        if key == "exclusiveMinimum" and not isinstance(value, bool):
            out["minimum"] = value
            out["exclusiveMinimum"] = True
            continue
        if key == "exclusiveMaximum" and not isinstance(value, bool):
            out["maximum"] = value
            out["exclusiveMaximum"] = True
            continue
        if key == "const":
            out["enum"] = [value]
            continue
        if key not in _ALLOWED:
            raise SchemaError(f"{path}: schema key {key!r} is not supported by Kubernetes")
        out[key] = value

    if "properties" in out:
        out["properties"] = {k: _convert(v, defs, f"{path}.{k}")
                             for k, v in out["properties"].items()}
        out.setdefault("type", "object")
    if "items" in out:
        out["items"] = _convert(out["items"], defs, f"{path}[]")
    if "additionalProperties" in out:
        ap = out["additionalProperties"]
        if ap is True or ap == {}:
            out.pop("additionalProperties")
            out["x-kubernetes-preserve-unknown-fields"] = True
        elif ap is False:
            out.pop("additionalProperties")
        else:
            out["additionalProperties"] = _convert(ap, defs, f"{path}.*")
    if out.get("type") == "object" and "properties" not in out and \
            "additionalProperties" not in out:
        out["x-kubernetes-preserve-unknown-fields"] = True
    if "type" not in out and not out.get("x-kubernetes-preserve-unknown-fields") \
            and not out.get("x-kubernetes-int-or-string"):
        if "enum" in out:
            kinds = {type(v) for v in out["enum"]}
            if kinds == {str}:
                out["type"] = "string"
            elif kinds <= {int}:
                out["type"] = "integer"
            else:
                raise SchemaError(f"{path}: mixed enum {out['enum']!r}")
        else:
            out["x-kubernetes-preserve-unknown-fields"] = True
    if out.get("required") == []:
        out.pop("required")
    return out


def model_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The structural OpenAPI v3 schema of a model (camelCase property names)."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.pop("$defs", {})
    return _convert(raw, defs, model.__name__)


def walk(schema: dict[str, Any], path: str = ""):
    """Yield (path, node) for every node of a structural schema."""
    yield path, schema
    for k, v in schema.get("properties", {}).items():
        yield from walk(v, f"{path}.{k}")
    if isinstance(schema.get("items"), dict):
        yield from walk(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from walk(schema["additionalProperties"], f"{path}.*")


def structural_problems(schema: dict[str, Any]) -> list[str]:
    """Why a schema is not structural (empty when it is)."""
    problems = []
    for path, node in walk(schema):
        for bad in ("$ref", "anyOf", "oneOf", "allOf", "$defs", "nullable"):
            if bad in node:
                problems.append(f"{path or '<root>'}: has {bad}")
        if "type" not in node and not node.get("x-kubernetes-preserve-unknown-fields") \
                and not node.get("x-kubernetes-int-or-string"):
            problems.append(f"{path or '<root>'}: no type")
        for key in node:
            if key not in _ALLOWED:
                problems.append(f"{path or '<root>'}: unsupported key {key}")
    return problems
