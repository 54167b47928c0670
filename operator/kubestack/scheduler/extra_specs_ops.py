"""Nova's extra-spec value matching (``extra_specs_ops.match``), operator by operator.

A requirement string is either a literal (exact string equality) or ``<op> <operand>``:

=========  ==============================================================
``=``      numeric: capability >= operand ("at least")
``==``     numeric equality            ``!=`` numeric inequality
``>=``     numeric >=                  ``<=`` numeric <=
``s==``    string equality             ``s!=`` string inequality
``s>=``    string >=  (also ``s<=``, ``s<``, ``s>``)
``<in>``   operand is a substring of the capability
``<all-in>``  every operand is an element of the (list) capability
``<or>``   ``<or> a <or> b``: the capability equals one of the alternatives
=========  ==============================================================

A non-numeric value for a numeric operator fails the match (it never raises).
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

__all__ = ["match", "OPERATORS"]


def _num(op: Callable[[float, float], bool]) -> Callable[[Any, str], bool]:
    return lambda value, operand: op(float(value), float(operand))


def _str(op: Callable[[str, str], bool]) -> Callable[[Any, str], bool]:
    return lambda value, operand: op(str(value), operand)


OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "=": _num(operator.ge),
    "==": _num(operator.eq),
    "!=": _num(operator.ne),
    ">=": _num(operator.ge),
    "<=": _num(operator.le),
    "s==": _str(operator.eq),
    "s!=": _str(operator.ne),
    "s<": _str(operator.lt),
    "s<=": _str(operator.le),
    "s>": _str(operator.gt),
    "s>=": _str(operator.ge),
    "<in>": lambda value, operand: operand in str(value),
}


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def match(value: Any, requirement: str) -> bool:
    """Does a host's ``value`` satisfy an extra spec ``requirement``?"""
    words = requirement.split()
    op = words[0] if words else None
    if op == "<or>":
        if value is None:
            return False
        text = _as_text(value)
        alternatives = words[1::2]
        connectors = words[2::2]
        if any(c != "<or>" for c in connectors):
            return False
        return text in alternatives
    if op == "<all-in>":
        if value is None or len(words) < 2:
            return False
        have = {str(v) for v in value} if isinstance(value, (list, tuple, set, frozenset)) \
            else set(str(value).split())
        return all(w in have for w in words[1:])
    method = OPERATORS.get(op) if op is not None else None
    if method is None:
        return value is not None and _as_text(value) == requirement
    if value is None or len(words) < 2:
        return False
    try:
        return bool(method(value, words[1]))
    except (TypeError, ValueError):
        return False
