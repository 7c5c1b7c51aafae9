"""The views' amounts: a fast path for two-place text that accepts exactly what Money accepts.

The read side validates its answers from JSON whose amounts are ``"12.50"``-shaped text
(:mod:`reference_app.views`); such text skips ``Money``'s Python callbacks. These tests pin
that the shortcut changes nothing a caller can see: the same values accepted and refused, in
JSON and in Python, the same serialization and the same JSON schema.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from reference_app.views import DailyStat, OrderDetail, OrderItemView, OrderListItem
from reference_app.write.domain import Money, OrderStatus

MONEY = TypeAdapter(Money)

# Two-place text (the fast path), other text Money accepts, and values it refuses.
JSON_AMOUNTS = [
    '"12.50"',
    '"0.00"',
    '"007.05"',
    '"99999999.99"',
    '"12.5"',
    '"12"',
    '"1.100"',
    '"1E+2"',
    '" 12.50"',
    "12.5",
    "7",
    '"-1.00"',
    '"-0.00"',
    '"1.234"',
    '"12.50 "',
    '"NaN"',
    '"Infinity"',
    '"12,50"',
    '""',
    "null",
    "true",
]
PYTHON_AMOUNTS: list[Any] = [
    "12.50",
    "12.5",
    Decimal("12.50"),
    Decimal("1.100"),
    Decimal("-1.00"),
    Decimal("1.234"),
    Decimal("NaN"),
    7,
    12.5,
    b"12.50",
    None,
]


def _outcome(validate: Any, value: Any) -> tuple[str, Decimal | None]:
    try:
        result = validate(value)
    except ValidationError:
        return ("refused", None)
    return ("accepted", result)


def _revenue_from_json(amount: str) -> Decimal:
    document = (
        f'{{"day": "2024-05-01", "status": "pending", "order_count": 1, "revenue": {amount}}}'
    )
    return DailyStat.model_validate_json(document).revenue


def _revenue_from_python(amount: Any) -> Decimal:
    stat = DailyStat.model_validate(
        {"day": dt.date(2024, 5, 1), "status": "pending", "order_count": 1, "revenue": amount}
    )
    return stat.revenue


@pytest.mark.parametrize("amount", JSON_AMOUNTS)
def test_a_view_accepts_the_json_amounts_money_accepts(amount: str) -> None:
    view = _outcome(_revenue_from_json, amount)
    money = _outcome(MONEY.validate_json, amount)
    assert view == money, f"{amount}: the view says {view}, Money says {money}"
    if view[1] is not None:
        assert str(view[1]) == str(money[1]), "the same Decimal, down to its exponent"


@pytest.mark.parametrize("amount", PYTHON_AMOUNTS, ids=repr)
def test_a_view_accepts_the_python_amounts_money_accepts(amount: Any) -> None:
    view = _outcome(_revenue_from_python, amount)
    money = _outcome(MONEY.validate_python, amount)
    assert view == money, f"{amount!r}: the view says {view}, Money says {money}"


def test_a_refused_amount_still_names_money_s_rule() -> None:
    with pytest.raises(ValidationError) as raised:
        _revenue_from_json('"-1.00"')
    types = {error["type"] for error in raised.value.errors()}
    assert "greater_than_equal" in types, raised.value


@pytest.mark.parametrize(
    ("view", "field"),
    [
        (DailyStat, "revenue"),
        (OrderListItem, "total"),
        (OrderDetail, "total"),
        (OrderItemView, "unit_price"),
        (OrderItemView, "line_total"),
    ],
)
@pytest.mark.parametrize("mode", ["validation", "serialization"])
def test_every_amount_keeps_money_s_json_schema(view: Any, field: str, mode: Any) -> None:
    schema = view.model_json_schema(mode=mode)["properties"][field]
    schema.pop("title")
    assert schema == MONEY.json_schema(mode=mode)


def test_amounts_serialize_as_before() -> None:
    stat = DailyStat(
        day=dt.date(2024, 5, 1),
        status=OrderStatus.PENDING,
        order_count=2,
        revenue=Decimal("12.50"),
    )
    assert json.loads(stat.model_dump_json())["revenue"] == "12.50"
    assert stat.model_dump()["revenue"] == Decimal("12.50")
    assert DailyStat.model_validate_json(stat.model_dump_json()) == stat
