"""Kubernetes resource quantities ("500m", "16", "64Gi", "1.5e3", "100G").

The grammar is the API machinery's: a signed decimal number, then either a binary SI
suffix (Ki Mi Gi Ti Pi Ei), a decimal SI suffix (n u m "" k M G T P E) or a decimal exponent
(``e3`` / ``E3``). Values are exact (:class:`~decimal.Decimal`); the helpers convert to the
integer units the scheduler counts in and round the way Kubernetes does when it asks for a
whole unit (``MilliValue`` / ``Value`` round up).
"""

from __future__ import annotations

import re
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation

__all__ = [
    "QuantityError", "parse_quantity", "cpu_cores", "cpu_millis", "to_int", "to_mib", "to_gib",
]

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1),
    "k": Decimal("1e3"), "M": Decimal("1e6"), "G": Decimal("1e9"), "T": Decimal("1e12"),
    "P": Decimal("1e15"), "E": Decimal("1e18"),
}
_RE = re.compile(
    r"^(?P<num>[+-]?(?:\d+\.?\d*|\.\d+))"
    r"(?:(?P<exp>[eE][+-]?\d+)|(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])?)$")

_MIB = Decimal(2**20)
_GIB = Decimal(2**30)


class QuantityError(ValueError):
    """The string is not a Kubernetes quantity."""


def parse_quantity(value: str | int | float | Decimal) -> Decimal:
    """The exact value of a quantity: ``parse_quantity("64Gi") == 68719476736``."""
    if isinstance(value, bool):
        raise QuantityError(f"not a quantity: {value!r}")
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    if not isinstance(value, str):
        raise QuantityError(f"not a quantity: {value!r}")
    match = _RE.match(value.strip())
    if not match:
        raise QuantityError(f"not a quantity: {value!r}")
    try:
        number = Decimal(match["num"])
        if match["exp"]:
            return number.scaleb(int(match["exp"][1:]))
    except InvalidOperation as exc:  # pragma: no cover - the regex admits only valid numbers
        raise QuantityError(f"not a quantity: {value!r}") from exc
    suffix = match["suffix"] or ""
    if suffix in _BINARY:
        return number * _BINARY[suffix]
    return number * _DECIMAL[suffix]


def cpu_millis(value: str | int | float | Decimal) -> int:
    """CPU in millicores, rounded up like ``Quantity.MilliValue()``: "1.5" -> 1500."""
    return int((parse_quantity(value) * 1000).to_integral_value(ROUND_CEILING))


def cpu_cores(value: str | int | float | Decimal) -> float:
    """CPU in (fractional) cores at millicore precision: "15500m" -> 15.5."""
    return cpu_millis(value) / 1000


def to_int(value: str | int | float | Decimal) -> int:
    """A count (e.g. ``nvidia.com/gpu``), rounded up like ``Quantity.Value()``."""
    return int(parse_quantity(value).to_integral_value(ROUND_CEILING))


def to_mib(value: str | int | float | Decimal) -> int:
    """Bytes to whole MiB, rounded down (capacity is never over-stated)."""
    return int((parse_quantity(value) / _MIB).to_integral_value(ROUND_FLOOR))


def to_gib(value: str | int | float | Decimal) -> int:
    """Bytes to whole GiB, rounded down (capacity is never over-stated)."""
    return int((parse_quantity(value) / _GIB).to_integral_value(ROUND_FLOOR))
