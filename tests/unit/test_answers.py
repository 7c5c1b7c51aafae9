"""The exact comparison the read-vs-baseline tests rely on sees what ``==`` does not."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from reference_app.views import DailyStat, OrderListItem
from reference_app.write.domain import OrderId, OrderStatus
from tests.answers import assert_identical, difference

DAY = dt.date(2024, 5, 1)
PLACED = dt.datetime(2024, 5, 1, 9, 30, tzinfo=dt.UTC)


def _stat(**changes: object) -> DailyStat:
    fields: dict[str, object] = {
        "day": DAY,
        "status": OrderStatus.PENDING,
        "order_count": 2,
        "revenue": Decimal("12.50"),
    }
    return DailyStat(**{**fields, **changes})  # type: ignore[arg-type]


def _item(placed_at: dt.datetime) -> OrderListItem:
    return OrderListItem(
        order_id=OrderId(1),
        status=OrderStatus.SHIPPED,
        customer_name="Ada",
        total=Decimal("1.00"),
        item_count=1,
        placed_at=placed_at,
    )


@pytest.mark.parametrize(
    ("other", "named"),
    [
        (_stat(status="pending"), "answer[0].status: str"),
        (_stat(revenue=Decimal("12.5")), "answer[0].revenue"),
        (_stat(order_count=2.0), "answer[0].order_count: float"),
    ],
)
def test_equal_views_of_other_types_or_forms_differ(other: DailyStat, named: str) -> None:
    assert [other] == [_stat()], "== alone sees no difference"

    found = difference([other], [_stat()])

    assert found is not None
    assert found.startswith(named)


def test_the_same_instant_at_another_offset_differs() -> None:
    paris = PLACED.astimezone(dt.timezone(dt.timedelta(hours=2)))
    assert _item(paris) == _item(PLACED)

    with pytest.raises(AssertionError, match="placed_at"):
        assert_identical(_item(paris), _item(PLACED), "list")


def test_identical_answers_pass() -> None:
    assert_identical((_stat(), [_item(PLACED)], None), (_stat(), [_item(PLACED)], None))
    assert difference([_stat()], [_stat(), _stat()]) == "answer: 1 items vs 2"
