"""The views: decoded from JSON with every field's type checked, written back the same way.

The read side turns stored JSON into views with :func:`reference_app.views.decoder`
(:mod:`reference_app.read.handlers`), and the projection writes the detail documents with
:func:`reference_app.views.to_json`. These tests pin what a decoder accepts and refuses, and
that writing then reading a view gives an equal view.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from reference_app.views import (
    AddressView,
    DailyStat,
    OrderDetail,
    OrderItemView,
    OrderListItem,
    StatusChangeView,
    decoder,
    to_json,
)
from reference_app.write.domain import OrderId, OrderStatus, ProductId, UserId

PLACED = dt.datetime(2024, 5, 1, 9, 30, 0, 123456, tzinfo=dt.UTC)

DETAIL = OrderDetail(
    order_id=OrderId(7),
    user_id=UserId(3),
    customer_name="Ada Lovelace",
    customer_email="ada@example.com",
    status=OrderStatus.CONFIRMED,
    total=Decimal("25.00"),
    shipping_address=AddressView(
        line1="1 Main St", city="Paris", postal_code="75001", country="FR"
    ),
    placed_at=PLACED,
    items=(
        OrderItemView(
            product_id=ProductId(1),
            product_name="Lamp",
            unit_price=Decimal("12.50"),
            quantity=2,
            line_total=Decimal("25.00"),
        ),
    ),
    history=(
        StatusChangeView(
            from_status=None, to_status=OrderStatus.PENDING, note=None, changed_at=PLACED
        ),
        StatusChangeView(
            from_status=OrderStatus.PENDING,
            to_status=OrderStatus.CONFIRMED,
            note="paid",
            changed_at=PLACED + dt.timedelta(hours=1),
        ),
    ),
)

STAT = {"day": "2024-05-01", "status": "pending", "order_count": 2, "revenue": "12.50"}


def _stat(**changes: Any) -> str:
    fields = {**STAT, **changes}
    return json.dumps({name: value for name, value in fields.items() if value is not ...})


def test_a_detail_written_as_json_decodes_to_an_equal_detail() -> None:
    text = to_json(DETAIL)

    assert decoder(OrderDetail).decode(text) == DETAIL
    assert decoder(OrderDetail).decode(text.encode()) == DETAIL


def test_json_writes_amounts_as_text_and_times_in_utc_with_a_z() -> None:
    document = json.loads(to_json(DETAIL))

    assert document["total"] == "25.00"
    assert document["items"][0]["unit_price"] == "12.50"
    assert document["placed_at"] == "2024-05-01T09:30:00.123456Z"
    assert document["status"] == "confirmed"
    assert document["history"][0]["from_status"] is None
    assert list(document) == list(OrderDetail.__struct_fields__)


def test_a_decoded_stat_has_the_declared_types() -> None:
    (stat,) = decoder(list[DailyStat]).decode(f"[{_stat()}]")

    assert stat == DailyStat(
        day=dt.date(2024, 5, 1),
        status=OrderStatus.PENDING,
        order_count=2,
        revenue=Decimal("12.50"),
    )
    assert type(stat.day) is dt.date
    assert stat.status is OrderStatus.PENDING
    assert type(stat.revenue) is Decimal


def test_a_decoded_time_is_aware() -> None:
    item = decoder(OrderListItem).decode(
        '{"order_id": 1, "status": "shipped", "customer_name": "Ada", "total": "1.00",'
        ' "item_count": 1, "placed_at": "2024-05-01T09:30:00Z"}'
    )

    assert item.placed_at == dt.datetime(2024, 5, 1, 9, 30, tzinfo=dt.UTC)
    assert item.placed_at.utcoffset() == dt.timedelta(0)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        (_stat(day="2024-02-30"), "day"),
        (_stat(day=20240501), "day"),
        (_stat(status="lost"), "status"),
        (_stat(order_count="2"), "order_count"),
        (_stat(order_count=2.5), "order_count"),
        (_stat(revenue="twelve"), "revenue"),
        (_stat(revenue=None), "revenue"),
        (_stat(revenue=...), "revenue"),
        (_stat(extra=1), "extra"),
    ],
)
def test_a_decoder_refuses_a_field_of_the_wrong_type_naming_it(text: str, named: str) -> None:
    with pytest.raises(msgspec.ValidationError, match=named):
        decoder(DailyStat).decode(text)


def test_a_decoder_refuses_a_time_without_an_offset() -> None:
    history = '{"from_status": null, "to_status": "pending", "note": null, "changed_at": "%s"}'

    with pytest.raises(msgspec.ValidationError, match="changed_at"):
        decoder(StatusChangeView).decode(history % "2024-05-01T09:30:00")
    paris = decoder(StatusChangeView).decode(history % "2024-05-01T11:30:00+02:00").changed_at
    assert paris == dt.datetime(2024, 5, 1, 9, 30, tzinfo=dt.UTC)
    assert paris.utcoffset() == dt.timedelta(hours=2), "decoding keeps the offset"


def test_a_decoder_refuses_text_that_is_not_json() -> None:
    with pytest.raises(msgspec.DecodeError):
        decoder(list[DailyStat]).decode("[{")


def test_views_are_immutable_hashable_and_equal_by_value() -> None:
    same = decoder(OrderDetail).decode(to_json(DETAIL))

    assert same is not DETAIL
    assert hash(same) == hash(DETAIL)
    assert DailyStat(
        day=dt.date(2024, 5, 1), status=OrderStatus.PENDING, order_count=1, revenue=Decimal("1.0")
    ) == DailyStat(
        day=dt.date(2024, 5, 1), status=OrderStatus.PENDING, order_count=1, revenue=Decimal("1.00")
    )
    with pytest.raises(AttributeError):
        DETAIL.total = Decimal(0)  # type: ignore[misc]
