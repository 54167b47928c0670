from decimal import Decimal

import pytest

from kubestack.scheduler.quantity import (
    QuantityError, cpu_cores, cpu_millis, parse_quantity, to_gib, to_int, to_mib,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("text,value", [
    ("16", Decimal(16)), ("500m", Decimal("0.5")), ("64Gi", Decimal(64 * 2**30)),
    ("100G", Decimal(10**11)), ("1.5", Decimal("1.5")), ("1e3", Decimal(1000)),
    ("1E3", Decimal(1000)), ("2Ki", Decimal(2048)), ("1E", Decimal(10**18)),
    ("+3", Decimal(3)), ("-1", Decimal(-1)), (".5", Decimal("0.5")), ("100n", Decimal("1e-7")),
    (4, Decimal(4)), (1.25, Decimal("1.25")),
])
def test_parse(text, value):
    assert parse_quantity(text) == value


@pytest.mark.parametrize("bad", ["", "Gi", "1.2.3", "12 Gi", "1Xi", "abc", True, None])
def test_rejects(bad):
    with pytest.raises(QuantityError):
        parse_quantity(bad)


def test_conversions_round_like_kubernetes():
    assert cpu_millis("1.0001") == 1001  # MilliValue rounds up
    assert cpu_cores("15500m") == 15.5
    assert to_mib("64Gi") == 65536
    assert to_mib("1000") == 0  # capacity is rounded down
    assert to_gib("100Gi") == 100 and to_gib("107374182399") == 99
    assert to_int("2") == 2 and to_int("1500m") == 2
