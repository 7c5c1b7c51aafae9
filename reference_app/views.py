"""What the order queries return, whoever answers them.

The read models (the CQRS answer) and :mod:`reference_app.baseline` (the same questions
answered from the write model) return these same frozen models, so their answers can be
compared with ``==``. Money is ``Decimal``; times are aware, in UTC.
"""

from __future__ import annotations

import datetime as dt

from pydantic import AwareDatetime, BaseModel, ConfigDict

from reference_app.write.domain import Address, Money, OrderId, OrderStatus, ProductId, UserId

__all__ = ["DailyStat", "OrderDetail", "OrderItemView", "OrderListItem", "StatusChangeView"]


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
    total: Money
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
    unit_price: Money
    quantity: int
    line_total: Money


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
    total: Money
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
    revenue: Money
