"""Client-side validation of manifests against the CRD schemas the local control plane installs.

    from tests.support.schemas import validate, assert_valid
    assert validate(vm) == []           # or: assert_valid(vm)

The CRD for ``obj['apiVersion']`` / ``obj['kind']`` is looked up in ``hack/crds/*.yaml``
(third-party: KubeVirt, CDI, Multus, VolumeSnapshot) and ``crds/*.yaml`` (ours; the directory may
be empty). The object is validated with jsonschema against that version's ``openAPIV3Schema``,
with the apiserver's reading of a structural schema applied on top:

* an object schema without ``additionalProperties`` and without
  ``x-kubernetes-preserve-unknown-fields: true`` is closed: any other field is reported as
  ``<path>: unknown field`` (what kube-apiserver says with ``fieldValidation=Strict``);
* ``x-kubernetes-int-or-string`` accepts an integer or a string; ``nullable`` accepts null;
* ``x-kubernetes-list-type: set`` / ``map`` reject duplicate items / keys;
* ``metadata`` at the root is the apiserver's business and is only checked to be an object.

Not evaluated client-side: ``x-kubernetes-validations`` (CEL) and ``format`` (e.g. date-time).
"""
from __future__ import annotations

import copy
import json
from functools import lru_cache
from pathlib import Path

import jsonschema
import yaml

REPO = Path(__file__).resolve().parents[2]
CRD_DIRS = (REPO / "hack" / "crds", REPO / "crds")
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

__all__ = ["validate", "assert_valid", "find_schema", "load_crds"]


# ---------------------------------------------------------------------------------------------
# CRD lookup


def _crd_files() -> tuple[tuple[str, float], ...]:
    files = []
    for d in CRD_DIRS:
        if d.is_dir():
            files += [(str(p), p.stat().st_mtime) for p in sorted(d.glob("*.yaml"))]
    return tuple(files)


@lru_cache(maxsize=4)
def _load(files: tuple[tuple[str, float], ...]) -> dict:
    index: dict[tuple[str, str, str], dict] = {}
    for path, _mtime in files:
        with open(path) as fh:
            docs = list(yaml.load_all(fh, Loader=_Loader))
        for doc in docs:
            if not isinstance(doc, dict) or doc.get("kind") != "CustomResourceDefinition":
                continue
            spec = doc["spec"]
            for version in spec.get("versions") or []:
                schema = ((version.get("schema") or {}).get("openAPIV3Schema"))
                if schema is None:
                    continue
                key = (spec["group"], version["name"], spec["names"]["kind"])
                index[key] = {"schema": schema, "served": version.get("served", False),
                              "file": path, "name": doc["metadata"]["name"]}
    return index


def load_crds() -> dict:
    """{(group, version, kind): {'schema', 'served', 'file', 'name'}} for every CRD on disk."""
    return _load(_crd_files())


def find_schema(api_version: str, kind: str) -> dict | None:
    """The openAPIV3Schema of the served CRD version for apiVersion/kind, or None."""
    group, _, version = api_version.rpartition("/")
    entry = load_crds().get((group, version, kind))
    if entry is None or not entry["served"]:
        return None
    return entry["schema"]


# ---------------------------------------------------------------------------------------------
# structural schema -> JSON Schema


def _to_jsonschema(node: dict, root: bool = False) -> dict:
    out = {k: v for k, v in node.items()
           if k not in ("properties", "items", "additionalProperties", "anyOf", "allOf", "oneOf",
                        "not", "nullable", "type", "description", "default", "format")}
    typ = node.get("type")
    if node.get("x-kubernetes-int-or-string") and typ is None:
        typ = ["integer", "string"]
    if typ is not None:
        types = list(typ) if isinstance(typ, list) else [typ]
        if node.get("nullable"):
            types.append("null")
            if "enum" in out:
                out["enum"] = list(out["enum"]) + [None]
        out["type"] = types[0] if len(types) == 1 else types
    for junctor in ("anyOf", "allOf", "oneOf"):
        if junctor in node:
            out[junctor] = [_to_jsonschema(s) for s in node[junctor]]
    if "not" in node:
        out["not"] = _to_jsonschema(node["not"])
    if "properties" in node:
        out["properties"] = {k: _to_jsonschema(v) for k, v in node["properties"].items()}
    if "items" in node:
        out["items"] = _to_jsonschema(node["items"])
    addl = node.get("additionalProperties")
    preserve = node.get("x-kubernetes-preserve-unknown-fields") is True
    if isinstance(addl, dict):
        out["additionalProperties"] = _to_jsonschema(addl)
    elif addl is True or preserve:
        pass
    elif typ == "object" or "properties" in node:
        out["additionalProperties"] = False
    if node.get("x-kubernetes-list-type") == "set":
        out["uniqueItems"] = True
    if root:
        props = out.setdefault("properties", {})
        props["metadata"] = {"type": "object"}
        props.setdefault("apiVersion", {"type": "string"})
        props.setdefault("kind", {"type": "string"})
    return out


def _list_map_keys(validator, keys, instance, schema):
    """Duplicate keys in an x-kubernetes-list-type: map list (the apiserver rejects them)."""
    if schema.get("x-kubernetes-list-type") != "map" or not validator.is_type(instance, "array"):
        return
    seen: dict[tuple, int] = {}
    for i, item in enumerate(instance):
        if not isinstance(item, dict):
            continue
        key = tuple(json.dumps(item.get(k), sort_keys=True) for k in keys)
        if key in seen:
            yield jsonschema.ValidationError(
                f"duplicate entry for key ({', '.join(f'{k}={item.get(k)!r}' for k in keys)}) "
                f"also at [{seen[key]}]", path=[i])
        else:
            seen[key] = i


_Validator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator, {"x-kubernetes-list-map-keys": _list_map_keys})


@lru_cache(maxsize=64)
def _validator_for(api_version: str, kind: str, files: tuple) -> object | None:
    schema = find_schema(api_version, kind)
    if schema is None:
        return None
    return _Validator(_to_jsonschema(copy.deepcopy(schema), root=True))


# ---------------------------------------------------------------------------------------------
# error formatting


def _path(parts) -> str:
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += ("." if out else "") + str(p)
    return out or "<root>"


def _type_name(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _short(value) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _messages(error: jsonschema.ValidationError) -> list[str]:
    where = list(error.absolute_path)
    path = _path(where)
    v = error.validator
    if v == "additionalProperties":
        allowed = set(error.schema.get("properties") or {})
        extra = sorted(k for k in error.instance if k not in allowed)
        return [f"{_path(where + [k])}: unknown field" for k in extra]
    if v == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        return [f"{_path(where + [missing])}: Required value"]
    if v == "type":
        want = error.validator_value
        want = " or ".join(want) if isinstance(want, list) else want
        return [f"{path}: Invalid value: {_type_name(error.instance)} {_short(error.instance)}: "
                f"must be of type {want}"]
    if v == "enum":
        return [f"{path}: Unsupported value: {_short(error.instance)}: supported values: "
                + ", ".join(_short(x) for x in error.validator_value)]
    if v == "pattern":
        return [f"{path}: Invalid value: {_short(error.instance)}: must match "
                f"{error.validator_value}"]
    if v == "oneOf":
        options = [s.get("required") for s in error.validator_value]
        if all(isinstance(o, list) for o in options):
            names = ", ".join("/".join(o) for o in options)
            return [f"{path}: Invalid value: exactly one of {names} must be set"]
    if v == "uniqueItems":
        return [f"{path}: Duplicate value: list-type set items must be unique"]
    return [f"{path}: {error.message}"]


def _sort_key(error: jsonschema.ValidationError):
    return ([str(p) for p in error.absolute_path], error.validator)


# ---------------------------------------------------------------------------------------------
# API


def validate(obj: dict) -> list[str]:
    """Validate a manifest against its CRD; return readable errors (empty list: valid)."""
    if not isinstance(obj, dict):
        return [f"<root>: Invalid value: {_type_name(obj)}: must be an object"]
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str) or "/" not in api_version:
        return [f"<root>: apiVersion/kind missing or not a custom resource: "
                f"{_short(api_version)} {_short(kind)}"]
    validator = _validator_for(api_version, kind, _crd_files())
    if validator is None:
        searched = ", ".join(str(d.relative_to(REPO)) for d in CRD_DIRS)
        return [f"<root>: no served CRD for {api_version} {kind} in {searched}"]
    errors: list[str] = []
    for error in sorted(validator.iter_errors(obj), key=_sort_key):
        for msg in _messages(error):
            if msg not in errors:
                errors.append(msg)
    return errors


def assert_valid(obj: dict) -> None:
    """Raise AssertionError listing every schema violation of `obj`."""
    errors = validate(obj)
    if errors:
        name = (obj.get("metadata") or {}).get("name", "?") if isinstance(obj, dict) else "?"
        kind = obj.get("kind", "?") if isinstance(obj, dict) else "?"
        raise AssertionError(f"{kind}/{name} does not match its CRD schema:\n  "
                             + "\n  ".join(errors))
