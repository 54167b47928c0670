"""Template parameters: types, defaults, hidden values, constraints, parameter groups."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from .errors import (InvalidParameter, StackValidationFailed, UnknownUserParameter,
                     UserParameterMissing)

TYPES = ("string", "number", "json", "comma_delimited_list", "boolean")
PARAM_KEYS = {"type", "label", "description", "default", "hidden", "constraints", "immutable", "tags"}
CONSTRAINT_KEYS = {"length", "range", "modulo", "allowed_values", "allowed_pattern", "custom_constraint"}

#: custom constraints naming our kinds: constraint name -> kind
CUSTOM_CONSTRAINTS = {
    "nova.flavor": "Flavor",
    "nova.server": "Server",
    "nova.keypair": "KeyPair",
    "nova.host": "Node",
    "glance.image": "Image",
    "cinder.volume": "Volume",
    "cinder.snapshot": "VolumeSnapshot",
    "cinder.vtype": "StorageClass",
    "neutron.network": "Network",
    "neutron.subnet": "Subnet",
    "neutron.port": "Port",
    "neutron.router": "Router",
    "neutron.security_group": "SecurityGroup",
    "neutron.floating_ip": "FloatingIP",
    "keystone.project": "Project",
}

Exists = Callable[[str, str], bool]

_TRUE = {"true", "t", "on", "y", "yes", "1"}
_FALSE = {"false", "f", "off", "n", "no", "0"}


def to_number(value: Any) -> int | float:
    if isinstance(value, bool):
        raise ValueError(f"Value '{value}' is not a number")
    if isinstance(value, (int, float)):
        return value
    try:
        return int(str(value).strip())
    except ValueError:
        try:
            return float(str(value).strip())
        except ValueError:
            raise ValueError(f"Value '{value}' is not a number") from None


def to_boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"Unrecognized value '{value}', acceptable values are: "
                     "'0', '1', 'f', 'false', 'n', 'no', 'off', 'on', 't', 'true', 'y', 'yes'")


def convert(ptype: str, value: Any) -> Any:
    """A user or default value converted to the parameter's type (ValueError if it can't be)."""
    if ptype == "string":
        if isinstance(value, (dict, list)):
            raise ValueError(f"Value must be a string; got {json.dumps(value)}")
        if isinstance(value, bool):
            return "true" if value else "false"
        return "" if value is None else str(value)
    if ptype == "number":
        return to_number(value)
    if ptype == "boolean":
        return to_boolean(value)
    if ptype == "json":
        if isinstance(value, (dict, list)):
            return value
        if value is None or value == "":
            return {}
        try:
            parsed = json.loads(value) if isinstance(value, str) else value
        except ValueError as e:
            raise ValueError(f"Value must be valid JSON: {e}") from None
        if not isinstance(parsed, (dict, list)):
            raise ValueError(f"Value must be valid JSON map or list; got {value}")
        return parsed
    if ptype == "comma_delimited_list":
        if isinstance(value, list):
            return [str(v) if not isinstance(v, str) else v for v in value]
        if value is None or value == "":
            return []
        if not isinstance(value, str):
            raise ValueError(f"Value must be a comma-delimited list string: {value}")
        return [v.strip() for v in value.split(",")]
    raise ValueError(f"Invalid type ({ptype})")


class _NotFound(str):
    """A constraint failure that is a lookup of an object that does not exist."""


@dataclass
class Constraint:
    kind: str
    arg: Any
    description: str | None = None

    def check(self, name: str, ptype: str, value: Any, exists: Exists | None,
              unchecked: list[str]) -> None:
        msg = self._failure(ptype, value, exists, unchecked, name)
        if msg is not None:
            error = InvalidParameter(name, self.description or msg)
            raise error.not_found() if isinstance(msg, _NotFound) else error

    def _failure(self, ptype: str, value: Any, exists: Exists | None,
                 unchecked: list[str], name: str) -> str | None:
        k, a = self.kind, self.arg
        if k in ("length", "range"):
            lo, hi = a.get("min"), a.get("max")
            measured = len(value) if k == "length" else to_number(value)
            if (lo is not None and measured < lo) or (hi is not None and measured > hi):
                if k == "length":
                    return f"length ({measured}) is out of range (min: {lo}, max: {hi})"
                return f"{value} is out of range (min: {lo}, max: {hi})"
            return None
        if k == "modulo":
            step, offset = a["step"], a["offset"]
            if to_number(value) % step != offset:
                return f"{value} is not a multiple of {step} with an offset of {offset}"
            return None
        if k == "allowed_values":
            allowed = [convert(ptype, v) if ptype in ("number", "boolean") else v for v in a]
            values = value if isinstance(value, list) else [value]
            if ptype == "string":
                allowed = [str(x) for x in allowed]
            if not all(v in allowed for v in values):
                return f'"{value}" is not an allowed value [{", ".join(str(x) for x in a)}]'
            return None
        if k == "allowed_pattern":
            m = re.match(a, str(value))
            if m is None or m.end() != len(str(value)):
                return f'"{value}" does not match pattern "{a}"'
            return None
        if k == "custom_constraint":
            kind = CUSTOM_CONSTRAINTS.get(a)
            if kind is None:
                return f'"{value}" does not validate {a} (constraint not found)'
            if exists is None:
                unchecked.append(f"parameters.{name}: {a} ({value})")
                return None
            values = value if isinstance(value, list) else [value]
            for v in values:
                if v in (None, ""):
                    continue
                if not exists(kind, str(v)):
                    return _NotFound(f"Error validating value '{v}': The {kind} ({v}) could not be found.")
            return None
        raise StackValidationFailed(f"Invalid parameter constraints for parameter {name}, "
                                    f"expected: {', '.join(sorted(CONSTRAINT_KEYS))}")


@dataclass
class ParamSchema:
    name: str
    type: str
    label: str | None = None
    description: str | None = None
    default: Any = None
    has_default: bool = False
    hidden: bool = False
    immutable: bool = False
    constraints: list[Constraint] = field(default_factory=list)

    @classmethod
    def parse(cls, name: str, raw: Any) -> "ParamSchema":
        path = ["parameters", name]
        if not isinstance(raw, dict):
            raise StackValidationFailed(f"Invalid parameter definition for parameter {name}: "
                                        "must be a map", path)
        for key in raw:
            if key not in PARAM_KEYS:
                raise StackValidationFailed(f"Invalid key '{key}' for parameter ({name})", path)
        ptype = raw.get("type")
        if ptype is None:
            raise StackValidationFailed(f"Missing parameter type for parameter: {name}", path)
        if ptype not in TYPES:
            raise StackValidationFailed(f"Invalid type ({ptype})", path)
        cons_raw = raw.get("constraints") or []
        if not isinstance(cons_raw, list):
            raise StackValidationFailed(f"Invalid parameter constraints for parameter {name}, "
                                        "expected a list", path)
        constraints = [cls._parse_constraint(name, ptype, c) for c in cons_raw]
        schema = cls(name=name, type=ptype, label=raw.get("label"),
                     description=raw.get("description"), hidden=bool(raw.get("hidden", False)),
                     immutable=bool(raw.get("immutable", False)), constraints=constraints)
        if "default" in raw:
            schema.has_default = True
            schema.default = raw["default"]
        return schema

    @staticmethod
    def _parse_constraint(name: str, ptype: str, raw: Any) -> Constraint:
        path = ["parameters", name, "constraints"]
        if not isinstance(raw, dict):
            raise StackValidationFailed(f"Invalid parameter constraints for parameter {name}, "
                                        "expected a list of maps", path)
        kinds = [k for k in raw if k != "description"]
        if len(kinds) != 1 or kinds[0] not in CONSTRAINT_KEYS:
            raise StackValidationFailed(f"Invalid parameter constraints for parameter {name}, "
                                        f"expected: {', '.join(sorted(CONSTRAINT_KEYS))}", path)
        kind = kinds[0]
        arg = raw[kind]
        valid_for = {
            "length": ("string", "comma_delimited_list", "json"),
            "range": ("number",),
            "modulo": ("number",),
            "allowed_values": ("string", "number", "comma_delimited_list", "boolean"),
            "allowed_pattern": ("string",),
            "custom_constraint": TYPES,
        }[kind]
        if ptype not in valid_for:
            raise StackValidationFailed(f'Invalid {kind} constraint for parameter {name} of type "{ptype}"', path)
        if kind in ("length", "range"):
            if not isinstance(arg, dict) or not set(arg) <= {"min", "max"} or not arg:
                raise StackValidationFailed(f"A {kind} constraint must have a min value and/or a max value specified.", path)
            for v in arg.values():
                if isinstance(v, bool) or not isinstance(v, (int, float)):
                    raise StackValidationFailed(f"min/max {'length ' if kind == 'length' else ''}must be numeric", path)
        elif kind == "modulo":
            if not isinstance(arg, dict) or "step" not in arg or "offset" not in arg:
                raise StackValidationFailed("A modulo constraint must have a step value and an offset value specified.", path)
            step, offset = arg["step"], arg["offset"]
            if not all(isinstance(x, (int, float)) and not isinstance(x, bool) and int(x) == x for x in (step, offset)):
                raise StackValidationFailed("step/offset must be integer", path)
            if step == 0:
                raise StackValidationFailed("step cannot be 0.", path)
            if abs(offset) >= abs(step):
                raise StackValidationFailed("offset must be smaller (by absolute value) than step.", path)
            if step * offset < 0:
                raise StackValidationFailed("step and offset must be both positive or both negative.", path)
        elif kind == "allowed_values":
            if not isinstance(arg, list):
                raise StackValidationFailed("AllowedValues must be a list", path)
        elif kind == "allowed_pattern":
            if not isinstance(arg, str):
                raise StackValidationFailed("AllowedPattern must be a string", path)
            try:
                re.compile(arg)
            except re.error as e:
                raise StackValidationFailed(f"Invalid allowed_pattern {arg!r}: {e}", path) from None
        elif kind == "custom_constraint":
            if not isinstance(arg, str):
                raise StackValidationFailed("custom_constraint must be a string", path)
        return Constraint(kind, arg, raw.get("description"))

    def validate(self, value: Any, exists: Exists | None, unchecked: list[str]) -> Any:
        try:
            converted = convert(self.type, value)
        except ValueError as e:
            raise InvalidParameter(self.name, str(e)) from None
        for c in self.constraints:
            try:
                c.check(self.name, self.type, converted, exists, unchecked)
            except ValueError as e:
                raise InvalidParameter(self.name, str(e)) from None
        return converted


def resolve_parameters(schemas: dict[str, ParamSchema], user: dict[str, Any],
                       env_params: dict[str, Any], defaults: dict[str, Any],
                       exists: Exists | None, unchecked: list[str]) -> dict[str, Any]:
    """Values for every parameter: user > environment parameters > parameter_defaults >
    template default; each converted and checked against its constraints."""
    for name in list(user) + list(env_params):
        if name not in schemas:
            raise UnknownUserParameter(name)
    values: dict[str, Any] = {}
    for name, schema in schemas.items():
        if name in user:
            raw = user[name]
        elif name in env_params:
            raw = env_params[name]
        elif name in defaults:
            raw = defaults[name]
        elif schema.has_default:
            raw = schema.default
        else:
            raise UserParameterMissing(name)
        values[name] = schema.validate(raw, exists, unchecked)
    return values


def validate_parameter_groups(groups: Any, schemas: dict[str, ParamSchema]) -> None:
    if groups is None:
        return
    path = ["parameter_groups"]
    if not isinstance(groups, list):
        raise StackValidationFailed("Parameter Groups error: The parameter_groups should be a list.", path)
    seen: set[str] = set()
    for i, group in enumerate(groups):
        gpath = path + [str(i)]
        if not isinstance(group, dict) or set(group) - {"label", "description", "parameters"}:
            raise StackValidationFailed(
                "Parameter Groups error: each parameter group must be a map with label, "
                "description and parameters.", gpath)
        params = group.get("parameters")
        if not params:
            raise StackValidationFailed("Parameters must be provided for each Parameter Group.", gpath)
        if not isinstance(params, list):
            raise StackValidationFailed("The parameters of a Parameter Group should be a list.", gpath)
        for p in params:
            if p in seen:
                raise StackValidationFailed(f"The {p} parameter must be assigned to one parameter group only.", gpath)
            seen.add(p)
            if p not in schemas:
                raise StackValidationFailed(f"The grouped parameter {p} does not reference a valid parameter.", gpath)


def masked(schemas: dict[str, ParamSchema], values: dict[str, Any]) -> dict[str, Any]:
    """Parameter values for display: hidden ones as ``******``, as Heat shows them."""
    return {k: ("******" if schemas[k].hidden else v) for k, v in values.items() if k in schemas}


__all__ = ["ParamSchema", "Constraint", "resolve_parameters", "validate_parameter_groups",
           "masked", "convert", "CUSTOM_CONSTRAINTS"]
