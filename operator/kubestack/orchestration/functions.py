"""Intrinsic functions of HOT, each small, evaluated against a *scope* (the stack).

A value that cannot be computed yet (an attribute of a resource not created yet, a pseudo
parameter not known offline) is an :class:`Unresolved`: a ``{function: args}`` map — the
HOT snippet itself, with whatever could be resolved inside it already resolved. Any
function whose arguments contain an Unresolved becomes Unresolved too, so a resolved
value is plain JSON-compatible data and an unresolved one is still valid HOT.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Callable, Protocol
from urllib.parse import quote, urlencode

from .errors import FunctionNotSupported, InvalidFunctionArgs, StackValidationFailed
from .versions import ALL_FUNCTIONS, HotVersion


class Unresolved(dict):
    """A function call deferred until the values it needs exist (JSON-serialisable)."""

    @property
    def function(self) -> str:
        return next(iter(self))

    @property
    def args(self) -> Any:
        return next(iter(self.values()))


class _Ignore:
    """What a two-argument ``if`` yields when its condition is false: the key is dropped."""

    def __repr__(self) -> str:
        return "IGNORE"


IGNORE = _Ignore()


class _Deferred(Exception):
    def __init__(self, value: Unresolved) -> None:
        self.value = value


def has_unresolved(value: Any) -> bool:
    if isinstance(value, Unresolved):
        return True
    if isinstance(value, dict):
        return any(has_unresolved(v) for v in value.values())
    if isinstance(value, list):
        return any(has_unresolved(v) for v in value)
    return False


def unresolved_refs(value: Any) -> list[Unresolved]:
    """The innermost deferred calls in a value (what it still waits for)."""
    found: list[Unresolved] = []

    def walk(v: Any) -> None:
        if isinstance(v, Unresolved):
            before = len(found)
            walk(v.args)
            if len(found) == before:
                found.append(v)
        elif isinstance(v, dict):
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    walk(value)
    return found


def to_plain(value: Any) -> Any:
    """Deep copy into plain dicts/lists (Unresolved becomes its HOT snippet)."""
    if isinstance(value, dict):
        return {k: to_plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_plain(v) for v in value]
    return value


class Scope(Protocol):
    files: dict[str, str]

    def has_param(self, name: str) -> bool: ...

    def get_param(self, name: str, path: list[str]) -> Any: ...

    def get_resource(self, name: str, path: list[str]) -> Any: ...

    def get_attr(self, name: str, attribute: str | None, rest: list[Any], path: list[str]) -> Any: ...

    def resource_facade(self, attribute: str, path: list[str]) -> Any: ...

    def condition(self, name: str, path: list[str]) -> bool: ...


class Evaluator:
    """Evaluates HOT snippets for one template version against a scope."""

    def __init__(self, version: HotVersion, scope: Scope) -> None:
        self.version = version
        self.scope = scope

    # -- walking ----------------------------------------------------------------------------
    def eval(self, snippet: Any, path: list[str]) -> Any:
        if isinstance(snippet, dict) and not isinstance(snippet, Unresolved):
            if len(snippet) == 1:
                key, args = next(iter(snippet.items()))
                if key in ALL_FUNCTIONS:
                    return self.call(key, args, path)
            out: dict[Any, Any] = {}
            for k, v in snippet.items():
                rv = self.eval(v, path + [str(k)])
                if rv is not IGNORE:
                    out[k] = rv
            return out
        if isinstance(snippet, list):
            items = (self.eval(v, path + [str(i)]) for i, v in enumerate(snippet))
            return [v for v in items if v is not IGNORE]
        return snippet

    def call(self, name: str, args: Any, path: list[str]) -> Any:
        v = self.version
        if name not in v.functions:
            if name in v.condition_functions:
                raise FunctionNotSupported(
                    name, v.date, path,
                    f'The function "{name}" can only be used in conditions '
                    f"(heat_template_version {v.date}).")
            raise FunctionNotSupported(name, v.date, path)
        handler = FUNCTIONS.get(name)
        if handler is None:
            raise FunctionNotSupported(name, v.date, path, _UNSUPPORTED[name])
        try:
            return handler(self, args, path + [name])
        except _Deferred as d:
            return d.value

    def resolved_args(self, name: str, args: Any, path: list[str]) -> Any:
        """Evaluate a function's arguments; defer the call when any is not known yet."""
        val = self.eval(args, path)
        if has_unresolved(val):
            raise _Deferred(Unresolved({name: val}))
        return val

    # -- conditions ---------------------------------------------------------------------------
    def condition(self, expr: Any, path: list[str]) -> bool:
        if isinstance(expr, bool):
            return expr
        if isinstance(expr, str):
            low = expr.lower()
            if low in ("true", "false") and not self._is_condition_name(expr):
                return low == "true"
            return self.scope.condition(expr, path)
        if isinstance(expr, dict) and len(expr) == 1:
            name, args = next(iter(expr.items()))
            conds = self.version.condition_functions
            if name not in conds:
                if name in ALL_FUNCTIONS:
                    raise FunctionNotSupported(
                        name, self.version.date, path,
                        f'The function "{name}" is not allowed in conditions '
                        f"(heat_template_version {self.version.date}).")
                raise StackValidationFailed(f"Invalid condition {json.dumps(expr, default=str)}", path)
            handler = CONDITIONS.get(name)
            if handler is None:
                raise FunctionNotSupported(name, self.version.date, path, _UNSUPPORTED[name])
            return handler(self, args, path + [name])
        raise StackValidationFailed(f"Invalid condition {json.dumps(expr, default=str)}", path)

    def _is_condition_name(self, name: str) -> bool:
        checker = getattr(self.scope, "has_condition", None)
        return bool(checker and checker(name))

    def condition_value(self, snippet: Any, path: list[str]) -> Any:
        """A value inside a condition function: only condition functions may be called."""
        if isinstance(snippet, dict) and len(snippet) == 1:
            key, args = next(iter(snippet.items()))
            if key in ALL_FUNCTIONS:
                if key == "get_param":
                    val = self.call("get_param", args, path)
                    if has_unresolved(val):
                        raise StackValidationFailed(
                            f"The condition uses {json.dumps(to_plain(val))}, which is not "
                            "known before the stack is created", path)
                    return val
                return self.condition(snippet, path)
        if isinstance(snippet, dict):
            return {k: self.condition_value(v, path + [str(k)]) for k, v in snippet.items()}
        if isinstance(snippet, list):
            return [self.condition_value(v, path + [str(i)]) for i, v in enumerate(snippet)]
        return snippet


# ---- helpers ------------------------------------------------------------------------------

def _need_list(name: str, args: Any, path: list[str], n: int | tuple[int, int] | None = None) -> list:
    if not isinstance(args, list):
        raise InvalidFunctionArgs(name, "must be a list", path)
    if isinstance(n, int) and len(args) != n:
        raise InvalidFunctionArgs(name, f"must be a list of {n} items", path)
    if isinstance(n, tuple) and not (n[0] <= len(args) <= n[1]):
        raise InvalidFunctionArgs(name, f"must be a list of {n[0]} to {n[1]} items", path)
    return args


def _need_map(name: str, args: Any, path: list[str], keys: set[str] | None = None) -> dict:
    if not isinstance(args, dict):
        raise InvalidFunctionArgs(name, "must be a map", path)
    if keys is not None:
        extra = set(args) - keys
        if extra:
            raise InvalidFunctionArgs(name, f"has unknown key(s) {', '.join(sorted(map(str, extra)))}", path)
    return args


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return str(value)


def _json_text(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=False)
    return _text(value)


def _select(name: str, value: Any, keys: list[Any], path: list[str]) -> Any:
    for key in keys:
        if isinstance(value, dict):
            if key not in value and str(key) in value:
                key = str(key)
            if key not in value:
                raise InvalidFunctionArgs(name, f"path component {key!r} not found", path)
            value = value[key]
        elif isinstance(value, list):
            try:
                value = value[int(key)]
            except (ValueError, TypeError, IndexError):
                raise InvalidFunctionArgs(name, f"path component {key!r} is not a valid index", path) from None
        elif value is None:
            return None
        else:
            raise InvalidFunctionArgs(name, f"path component {key!r} cannot index a {type(value).__name__}", path)
    return value


# ---- references -----------------------------------------------------------------------------

def fn_get_param(ev: Evaluator, args: Any, path: list[str]) -> Any:
    args = ev.resolved_args("get_param", args, path)
    if isinstance(args, list):
        if not args:
            raise InvalidFunctionArgs("get_param", "must name a parameter", path)
        name, keys = args[0], args[1:]
    else:
        name, keys = args, []
    if not isinstance(name, str):
        raise InvalidFunctionArgs("get_param", "must name a parameter", path)
    value = ev.scope.get_param(name, path)
    if isinstance(value, Unresolved):
        raise _Deferred(Unresolved({"get_param": args}))
    return _select("get_param", value, keys, path)


def fn_get_resource(ev: Evaluator, args: Any, path: list[str]) -> Any:
    name = ev.resolved_args("get_resource", args, path)
    if not isinstance(name, str):
        raise InvalidFunctionArgs("get_resource", "must be a resource name", path)
    return ev.scope.get_resource(name, path)


def fn_get_attr(ev: Evaluator, args: Any, path: list[str]) -> Any:
    minimum = 1 if ev.version.get_attr_all else 2
    args = _need_list("get_attr", args, path)
    if len(args) < minimum:
        raise InvalidFunctionArgs("get_attr", f"must be a list of at least {minimum} items", path)
    args = ev.resolved_args("get_attr", args, path)
    name = args[0]
    if not isinstance(name, str):
        raise InvalidFunctionArgs("get_attr", "must start with a resource name", path)
    attribute = args[1] if len(args) > 1 else None
    if attribute is not None and not isinstance(attribute, str):
        raise InvalidFunctionArgs("get_attr", "attribute name must be a string", path)
    return ev.scope.get_attr(name, attribute, list(args[2:]), path)


#: resource_facade's arguments (and Fn::ResourceFacade's) -> the data of the parent resource
_FACADE_ARGS = {
    "resource_facade": {"metadata": "metadata", "deletion_policy": "deletion_policy",
                        "update_policy": "update_policy"},
    "Fn::ResourceFacade": {"Metadata": "metadata", "DeletionPolicy": "deletion_policy",
                           "UpdatePolicy": "update_policy"},
}


def _resource_facade(name: str, ev: Evaluator, args: Any, path: list[str]) -> Any:
    # Heat checks the argument as written: it cannot come from another function
    allowed = _FACADE_ARGS[name]
    if not isinstance(args, str) or args not in allowed:
        raise InvalidFunctionArgs(name, f"should be one of: {', '.join(allowed)}", path)
    return ev.scope.resource_facade(allowed[args], path)


def fn_resource_facade(ev: Evaluator, args: Any, path: list[str]) -> Any:
    return _resource_facade("resource_facade", ev, args, path)


def fn_cfn_resource_facade(ev: Evaluator, args: Any, path: list[str]) -> Any:
    return _resource_facade("Fn::ResourceFacade", ev, args, path)


def fn_get_file(ev: Evaluator, args: Any, path: list[str]) -> Any:
    key = ev.resolved_args("get_file", args, path)
    if not isinstance(key, str):
        raise InvalidFunctionArgs("get_file", "must be a file name", path)
    files = ev.scope.files or {}
    if key not in files:
        raise StackValidationFailed(f'No content found in the "files" section for get_file path: {key}', path)
    return files[key]


# ---- strings ---------------------------------------------------------------------------------

def fn_list_join(ev: Evaluator, args: Any, path: list[str]) -> Any:
    args = _need_list("list_join", args, path)
    if len(args) < 2 or (not ev.version.list_join_multiple and len(args) != 2):
        raise InvalidFunctionArgs("list_join", "must be [delimiter, list]" + (
            " (several lists from 2015-10-15)" if ev.version.list_join_multiple else ""), path)
    args = ev.resolved_args("list_join", args, path)
    delim = args[0]
    if not isinstance(delim, str):
        raise InvalidFunctionArgs("list_join", "delimiter must be a string", path)
    items: list[str] = []
    for lst in args[1:]:
        if lst is None:
            continue
        if not isinstance(lst, list):
            raise InvalidFunctionArgs("list_join", "must join lists", path)
        for item in lst:
            if ev.version.list_join_multiple:
                items.append(_json_text(item))
            elif isinstance(item, str):
                items.append(item)
            elif item is None:
                items.append("")
            else:
                raise InvalidFunctionArgs("list_join", f"items to join must be strings not {item!r}", path)
    return delim.join(items)


def _replace(name: str, ev: Evaluator, args: Any, path: list[str], strict: bool, vstrict: bool) -> Any:
    _need_map(name, args, path, {"template", "params"})
    if "template" not in args or "params" not in args:
        raise InvalidFunctionArgs(name, 'must have "template" and "params"', path)
    args = ev.resolved_args(name, args, path)
    template, params = args["template"], args["params"]
    if not isinstance(template, str):
        raise InvalidFunctionArgs(name, '"template" must be a string', path)
    if not isinstance(params, dict):
        raise InvalidFunctionArgs(name, '"params" must be a map', path)
    mapping: dict[str, str] = {}
    for key, value in params.items():
        key = _text(key)
        if isinstance(value, (dict, list)):
            if not ev.version.list_join_multiple:
                raise InvalidFunctionArgs(name, f'param "{key}" must be a string or number', path)
            value = json.dumps(value)
        if vstrict and (value is None or value == ""):
            raise InvalidFunctionArgs(name, f'param "{key}" has an empty value', path)
        mapping[key] = _text(value)
    if strict or vstrict:
        missing = [k for k in mapping if k not in template]
        if missing:
            raise StackValidationFailed(
                f"The following params were not found in the template: {','.join(missing)}",
                path)
    keys = sorted((k for k in mapping if k), key=len, reverse=True)
    if not keys:
        return template
    pattern = re.compile("|".join(re.escape(k) for k in keys))
    return pattern.sub(lambda m: mapping[m.group(0)], template)


def fn_str_replace(ev, args, path):
    return _replace("str_replace", ev, args, path, False, False)


def fn_str_replace_strict(ev, args, path):
    return _replace("str_replace_strict", ev, args, path, True, False)


def fn_str_replace_vstrict(ev, args, path):
    return _replace("str_replace_vstrict", ev, args, path, True, True)


def fn_str_split(ev: Evaluator, args: Any, path: list[str]) -> Any:
    _need_list("str_split", args, path, (2, 3))
    args = ev.resolved_args("str_split", args, path)
    delim, text = args[0], args[1]
    if not isinstance(delim, str) or not delim:
        raise InvalidFunctionArgs("str_split", "delimiter must be a non-empty string", path)
    if not isinstance(text, str):
        raise InvalidFunctionArgs("str_split", "must split a string", path)
    parts = text.split(delim)
    if len(args) == 3:
        try:
            index = int(args[2])
        except (TypeError, ValueError):
            raise InvalidFunctionArgs("str_split", "index must be an integer", path) from None
        if not 0 <= index < len(parts):
            raise InvalidFunctionArgs(
                "str_split", f"index {index} is out of range: should be between 0 and {len(parts) - 1}", path)
        return parts[index]
    return parts


def fn_digest(ev: Evaluator, args: Any, path: list[str]) -> Any:
    _need_list("digest", args, path, 2)
    alg, value = ev.resolved_args("digest", args, path)
    if not isinstance(alg, str) or alg.lower() not in hashlib.algorithms_available:
        raise InvalidFunctionArgs("digest", f"algorithm must be one of {', '.join(sorted(hashlib.algorithms_guaranteed))}", path)
    if not isinstance(value, str):
        raise InvalidFunctionArgs("digest", "value must be a string", path)
    return hashlib.new(alg.lower(), value.encode()).hexdigest()


def fn_make_url(ev: Evaluator, args: Any, path: list[str]) -> Any:
    keys = {"scheme", "username", "password", "host", "port", "path", "query", "fragment"}
    _need_map("make_url", args, path, keys)
    args = ev.resolved_args("make_url", args, path)
    if not args.get("host"):
        raise InvalidFunctionArgs("make_url", 'must have a "host"', path)
    scheme = args.get("scheme")
    url = f"{scheme}://" if scheme else "//"
    user, password = args.get("username"), args.get("password")
    if user:
        url += quote(str(user), safe="")
        if password:
            url += ":" + quote(str(password), safe="")
        url += "@"
    host = str(args["host"])
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    url += host
    port = args.get("port")
    if port not in (None, ""):
        try:
            port_n = int(port)
        except (TypeError, ValueError):
            raise InvalidFunctionArgs("make_url", f"port {port!r} is not an integer", path) from None
        if not 1 <= port_n <= 65535:
            raise InvalidFunctionArgs("make_url", f"port {port_n} is out of range 1-65535", path)
        url += f":{port_n}"
    p = args.get("path") or ""
    url += "/" + quote(str(p).lstrip("/"), safe="/")
    query = args.get("query")
    if query:
        if not isinstance(query, dict):
            raise InvalidFunctionArgs("make_url", '"query" must be a map', path)
        url += "?" + urlencode({k: _text(v) for k, v in query.items()})
    if args.get("fragment"):
        url += "#" + quote(str(args["fragment"]), safe="")
    return url


# ---- lists and maps ---------------------------------------------------------------------------

def _concat(name: str, ev: Evaluator, args: Any, path: list[str], unique: bool) -> Any:
    args = ev.resolved_args(name, _need_list(name, args, path), path)
    out: list[Any] = []
    for lst in args:
        if lst is None:
            continue
        if not isinstance(lst, list):
            raise InvalidFunctionArgs(name, f"must be lists, not {type(lst).__name__}", path)
        for item in lst:
            if unique and item in out:
                continue
            out.append(item)
    return out


def fn_list_concat(ev, args, path):
    return _concat("list_concat", ev, args, path, False)


def fn_list_concat_unique(ev, args, path):
    return _concat("list_concat_unique", ev, args, path, True)


def _substitute(template: Any, values: dict[str, Any]) -> Any:
    if isinstance(template, str):
        for key, value in values.items():
            if template == key and not isinstance(value, str):
                return value
            template = template.replace(key, _text(value))
        return template
    if isinstance(template, dict):
        return {_substitute(k, values) if isinstance(k, str) else k: _substitute(v, values)
                for k, v in template.items()}
    if isinstance(template, list):
        return [_substitute(v, values) for v in template]
    return template


def fn_repeat(ev: Evaluator, args: Any, path: list[str]) -> Any:
    allowed = {"for_each", "template"} | ({"permutations"} if ev.version.repeat_permutations else set())
    _need_map("repeat", args, path, allowed)
    if "for_each" not in args or "template" not in args:
        raise InvalidFunctionArgs("repeat", 'must have "for_each" and "template"', path)
    args = ev.resolved_args("repeat", args, path)
    for_each = args["for_each"]
    if not isinstance(for_each, dict) or not for_each:
        raise InvalidFunctionArgs("repeat", '"for_each" must be a non-empty map', path)
    for var, values in for_each.items():
        if not isinstance(values, list):
            raise InvalidFunctionArgs("repeat", f'the values of "{var}" in "for_each" must be a list', path)
    permutations = args.get("permutations", True)
    if not isinstance(permutations, bool):
        raise InvalidFunctionArgs("repeat", '"permutations" must be a boolean', path)
    names = list(for_each)
    if permutations:
        combos: list[tuple] = [()]
        for var in names:
            combos = [c + (v,) for c in combos for v in for_each[var]]
    else:
        lengths = {len(for_each[v]) for v in names}
        if len(lengths) > 1:
            raise InvalidFunctionArgs(
                "repeat", 'lists in "for_each" must have the same length when "permutations" is false', path)
        combos = list(zip(*(for_each[v] for v in names)))
    return [_substitute(args["template"], dict(zip(names, combo))) for combo in combos]


def fn_map_merge(ev: Evaluator, args: Any, path: list[str]) -> Any:
    args = ev.resolved_args("map_merge", _need_list("map_merge", args, path), path)
    out: dict[Any, Any] = {}
    for m in args:
        if m is None:
            continue
        if not isinstance(m, dict):
            raise InvalidFunctionArgs("map_merge", f"must be maps, not {type(m).__name__}", path)
        out.update(m)
    return out


def fn_map_replace(ev: Evaluator, args: Any, path: list[str]) -> Any:
    _need_list("map_replace", args, path, 2)
    source, repl = ev.resolved_args("map_replace", args, path)
    if not isinstance(source, dict):
        raise InvalidFunctionArgs("map_replace", "first argument must be a map", path)
    if not isinstance(repl, dict) or set(repl) - {"keys", "values"}:
        raise InvalidFunctionArgs("map_replace", 'second argument must be a map with "keys" and/or "values"', path)
    keys = repl.get("keys") or {}
    values = repl.get("values") or {}
    if not isinstance(keys, dict) or not isinstance(values, dict):
        raise InvalidFunctionArgs("map_replace", '"keys" and "values" must be maps', path)
    out: dict[Any, Any] = {}
    for k, v in source.items():
        nk = keys.get(k, k)
        if nk in out:
            raise InvalidFunctionArgs("map_replace", f'key replacement "{nk}" collides with a key in the input map', path)
        out[nk] = values.get(v, v) if isinstance(v, (str, int, float, bool)) or v is None else v
    return out


def fn_filter(ev: Evaluator, args: Any, path: list[str]) -> Any:
    _need_list("filter", args, path, 2)
    remove, seq = ev.resolved_args("filter", args, path)
    if not isinstance(remove, list) or not isinstance(seq, list):
        raise InvalidFunctionArgs("filter", "must be [values_to_remove, list]", path)
    return [x for x in seq if x not in remove]


def fn_contains(ev: Evaluator, args: Any, path: list[str]) -> Any:
    _need_list("contains", args, path, 2)
    value, seq = ev.resolved_args("contains", args, path)
    if not isinstance(seq, (list, str, dict)):
        raise InvalidFunctionArgs("contains", "second argument must be a sequence", path)
    return value in seq


def fn_if(ev: Evaluator, args: Any, path: list[str]) -> Any:
    n = (2, 3) if ev.version.if_two_args else 3
    _need_list("if", args, path, n)
    chosen = ev.condition(args[0], path + ["0"])
    if chosen:
        return ev.eval(args[1], path + ["1"])
    if len(args) == 2:
        return IGNORE
    return ev.eval(args[2], path + ["2"])


# ---- CloudFormation-compatible functions of 2013-05-23 (Fn::Select until 2015-04-30) --------

def fn_select(ev: Evaluator, args: Any, path: list[str]) -> Any:
    _need_list("Fn::Select", args, path, 2)
    index, collection = ev.resolved_args("Fn::Select", args, path)
    if isinstance(collection, str):
        try:
            collection = json.loads(collection)
        except ValueError:
            raise InvalidFunctionArgs("Fn::Select", "must select from a list or map", path) from None
    if isinstance(collection, list):
        try:
            return collection[int(index)]
        except (IndexError, ValueError, TypeError):
            return ""
    if isinstance(collection, dict):
        return collection.get(index, "")
    if collection is None:
        return ""
    raise InvalidFunctionArgs("Fn::Select", "must select from a list or map", path)


def fn_cfn_join(ev: Evaluator, args: Any, path: list[str]) -> Any:
    _need_list("Fn::Join", args, path, 2)
    delim, items = ev.resolved_args("Fn::Join", args, path)
    if not isinstance(delim, str) or not isinstance(items, list):
        raise InvalidFunctionArgs("Fn::Join", "must be [delimiter, list]", path)
    return delim.join(_text(i) for i in items)


def fn_cfn_split(ev: Evaluator, args: Any, path: list[str]) -> Any:
    _need_list("Fn::Split", args, path, 2)
    delim, text = ev.resolved_args("Fn::Split", args, path)
    if not isinstance(delim, str) or not delim or not isinstance(text, str):
        raise InvalidFunctionArgs("Fn::Split", "must be [delimiter, string]", path)
    return text.split(delim)


def fn_cfn_replace(ev: Evaluator, args: Any, path: list[str]) -> Any:
    _need_list("Fn::Replace", args, path, 2)
    params, template = args
    return _replace("Fn::Replace", ev, {"template": template, "params": params}, path, False, False)


def fn_base64(ev: Evaluator, args: Any, path: list[str]) -> Any:
    value = ev.resolved_args("Fn::Base64", args, path)
    if not isinstance(value, str):
        raise InvalidFunctionArgs("Fn::Base64", "must be a string", path)
    return value  # Heat's Fn::Base64 is a placeholder: user data is passed as plain text


def fn_ref(ev: Evaluator, args: Any, path: list[str]) -> Any:
    name = ev.resolved_args("Ref", args, path)
    if not isinstance(name, str):
        raise InvalidFunctionArgs("Ref", "must be a parameter or resource name", path)
    if ev.scope.has_param(name):
        return fn_get_param(ev, name, path)
    return ev.scope.get_resource(name, path)


def fn_member_list_to_map(ev: Evaluator, args: Any, path: list[str]) -> Any:
    _need_list("Fn::MemberListToMap", args, path, 3)
    key_name, value_name, members = ev.resolved_args("Fn::MemberListToMap", args, path)
    if not isinstance(members, list):
        raise InvalidFunctionArgs("Fn::MemberListToMap", "third argument must be a list", path)
    parsed: dict[str, dict[str, str]] = {}
    for member in members:
        m = re.match(r"^\.member\.(\d+)\.([^=]+)=(.*)$", str(member), re.S)
        if not m:
            raise InvalidFunctionArgs("Fn::MemberListToMap", f"wrong format: {member!r}", path)
        parsed.setdefault(m.group(1), {})[m.group(2)] = m.group(3)
    return {d[key_name]: d.get(value_name) for _, d in sorted(parsed.items()) if key_name in d}


# ---- condition functions ------------------------------------------------------------------

def cond_equals(ev: Evaluator, args: Any, path: list[str]) -> bool:
    _need_list("equals", args, path, 2)
    a, b = (ev.condition_value(x, path + [str(i)]) for i, x in enumerate(args))
    return a == b


def cond_not(ev: Evaluator, args: Any, path: list[str]) -> bool:
    if isinstance(args, list):
        _need_list("not", args, path, 1)
        args = args[0]
    return not ev.condition(args, path)


def cond_and(ev: Evaluator, args: Any, path: list[str]) -> bool:
    args = _need_list("and", args, path)
    if len(args) < 2:
        raise InvalidFunctionArgs("and", "must be a list of at least 2 conditions", path)
    return all([ev.condition(a, path + [str(i)]) for i, a in enumerate(args)])


def cond_or(ev: Evaluator, args: Any, path: list[str]) -> bool:
    args = _need_list("or", args, path)
    if len(args) < 2:
        raise InvalidFunctionArgs("or", "must be a list of at least 2 conditions", path)
    return any([ev.condition(a, path + [str(i)]) for i, a in enumerate(args)])


def cond_contains(ev: Evaluator, args: Any, path: list[str]) -> bool:
    _need_list("contains", args, path, 2)
    value, seq = (ev.condition_value(x, path + [str(i)]) for i, x in enumerate(args))
    if not isinstance(seq, (list, str, dict)):
        raise InvalidFunctionArgs("contains", "second argument must be a sequence", path)
    return value in seq


def cond_get_param(ev: Evaluator, args: Any, path: list[str]) -> bool:
    return bool(ev.condition_value({"get_param": args}, path))


FUNCTIONS: dict[str, Callable[[Evaluator, Any, list[str]], Any]] = {
    "get_param": fn_get_param,
    "get_resource": fn_get_resource,
    "get_attr": fn_get_attr,
    "get_file": fn_get_file,
    "resource_facade": fn_resource_facade,
    "list_join": fn_list_join,
    "str_replace": fn_str_replace,
    "str_replace_strict": fn_str_replace_strict,
    "str_replace_vstrict": fn_str_replace_vstrict,
    "str_split": fn_str_split,
    "digest": fn_digest,
    "make_url": fn_make_url,
    "list_concat": fn_list_concat,
    "list_concat_unique": fn_list_concat_unique,
    "repeat": fn_repeat,
    "map_merge": fn_map_merge,
    "map_replace": fn_map_replace,
    "filter": fn_filter,
    "contains": fn_contains,
    "if": fn_if,
    "Fn::Select": fn_select,
    "Fn::Join": fn_cfn_join,
    "Fn::Split": fn_cfn_split,
    "Fn::Replace": fn_cfn_replace,
    "Fn::Base64": fn_base64,
    "Ref": fn_ref,
    "Fn::MemberListToMap": fn_member_list_to_map,
    "Fn::ResourceFacade": fn_cfn_resource_facade,
}

CONDITIONS: dict[str, Callable[[Evaluator, Any, list[str]], bool]] = {
    "equals": cond_equals,
    "not": cond_not,
    "and": cond_and,
    "or": cond_or,
    "contains": cond_contains,
    "get_param": cond_get_param,
}

# functions of some HOT version that kubestack refuses, with the reason users see
_UNSUPPORTED = {
    "yaql": 'The function "yaql" is not supported by kubestack: use the other intrinsic '
            "functions (repeat, map_merge, list_concat, filter, if, ...) instead.",
    "Fn::GetAZs": 'The function "Fn::GetAZs" is not supported by kubestack: name the availability '
                  "zone (a node's topology.kubernetes.io/zone) explicitly.",
}

__all__ = ["Evaluator", "Unresolved", "IGNORE", "has_unresolved", "unresolved_refs", "to_plain",
           "FUNCTIONS", "CONDITIONS"]
