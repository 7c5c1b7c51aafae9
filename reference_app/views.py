"""What the order queries return, whoever answers them.

The read models (the CQRS answer) and :mod:`reference_app.baseline` (the same questions
answered from the write model) return these same frozen models, so their answers can be
compared with ``==``. Money is ``Decimal``; times are aware, in UTC.

**Money from text, validated in Rust.** The read side validates its answers from JSON in which
every amount is plain decimal text with two places (``"12.50"``): SQLite's
``printf('%.2f', ...)``, and the documents the projection writes with ``model_dump_json``
from ``Numeric(12, 2)`` values. For :data:`~reference_app.write.domain.Money`'s rules
(finite, ``>= 0``, at most two places) pydantic-core calls back into Python five times per
amount (``is_finite``, ``normalize``, ``as_tuple`` twice, the comparison): ~0.65 us an
amount, a third of the cost of validating a page of orders, two fifths of 30 days of
analytics. So the views' amounts (:data:`_Money`) first try a strict string with the pattern
``^[0-9]+[.][0-9]{2}$``, matched in Rust: any such text is valid ``Money``, and only
``Decimal(text)`` remains to run. Anything else (a ``Decimal``, an ``int``, text of another
shape) gets ``Money``'s full validation, so the views accept exactly what they accepted
before; only an invalid amount's error also names the failed pattern.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

from reference_app.write.domain import Address, Money, OrderId, OrderStatus, ProductId, UserId

__all__ = ["DailyStat", "OrderDetail", "OrderItemView", "OrderListItem", "StatusChangeView"]


class _TwoPlacesText:
    """Validate ``"12.50"``-shaped text without ``Money``'s Python callbacks (see above)."""

    def __get_pydantic_core_schema__(
        self, source: type[Any], handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        checked = handler(source)  # Money's own schema: finite, >= 0, at most two places
        text = core_schema.chain_schema(
            [
                # strict: text only (lax mode would also take bytes, which Money refuses)
                core_schema.str_schema(pattern=r"^[0-9]+[.][0-9]{2}$", strict=True),
                # the pattern has ruled out infinities and NaN: skip the is_finite callback
                core_schema.decimal_schema(allow_inf_nan=True),
            ]
        )
        return core_schema.union_schema([text, checked], mode="left_to_right")

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        # Describe Money's rules, as before: the text branch accepts a subset of them.
        if schema["type"] == "union":
            checked = schema["choices"][-1]
            return handler(checked[0] if isinstance(checked, tuple) else checked)
        return handler(schema)


_Money = Annotated[Money, _TwoPlacesText()]
""":data:`~reference_app.write.domain.Money`, validated faster from two-place text."""


class _View(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class OrderListItem(_View):
    """One row of a user's order list.

    Attributes:
        order_id: The order.
        status: Its current status.
        customer_name: The customer's name.
        total: The order's total.
        item_count: How many lines (distinct products) it has.
        placed_at: When it was placed.
    """

    order_id: OrderId
    status: OrderStatus
    customer_name: str
    total: _Money
    item_count: int
    placed_at: AwareDatetime


class OrderItemView(_View):
    """One line of an order, at the price captured when it was placed.

    Attributes:
        product_id: The product.
        product_name: Its name.
        unit_price: Its price when the order was placed.
        quantity: How many units.
        line_total: ``unit_price * quantity``.
    """

    product_id: ProductId
    product_name: str
    unit_price: _Money
    quantity: int
    line_total: _Money


class StatusChangeView(_View):
    """One entry of an order's status history.

    Attributes:
        from_status: The status before; ``None`` for the first entry (the order was placed).
        to_status: The status after.
        note: Why, if the caller said.
        changed_at: When.
    """

    from_status: OrderStatus | None
    to_status: OrderStatus
    note: str | None
    changed_at: AwareDatetime


class OrderDetail(_View):
    """Everything about one order.

    Attributes:
        order_id: The order.
        user_id: The customer (to check who may see it).
        customer_name: The customer's name.
        customer_email: The customer's email address.
        status: Its current status.
        total: The order's total.
        shipping_address: Where it ships.
        placed_at: When it was placed.
        items: Its lines, by ascending product id.
        history: Every status change, oldest first; the first is the placing.
    """

    order_id: OrderId
    user_id: UserId
    customer_name: str
    customer_email: str
    status: OrderStatus
    total: _Money
    shipping_address: Address
    placed_at: AwareDatetime
    items: tuple[OrderItemView, ...]
    history: tuple[StatusChangeView, ...]


class DailyStat(_View):
    """Orders placed on one day (UTC) that are now in one status.

    Attributes:
        day: The day the orders were placed, in UTC.
        status: Their current status.
        order_count: How many orders.
        revenue: The sum of their totals.
    """

    day: dt.date
    status: OrderStatus
    order_count: int
    revenue: _Money
