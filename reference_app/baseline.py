"""The order queries answered from the write model: the benchmark baseline and the test oracle.

Each question is answered with joins and aggregates over the normalized tables of
:mod:`reference_app.write.schema`: the "single model" a team starts with. The statements are
built once and rows go straight into the views of :mod:`reference_app.views`, so a benchmark
measures the data model, not query building. The read side answers the same questions from
its read models; once the projections have caught up, both answers must be equal.

Days are calendar days in UTC on every database (see :func:`daily_analytics`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from reference_app.sqltypes import UtcDateTime
from reference_app.views import (
    AddressView,
    DailyStat,
    OrderDetail,
    OrderItemView,
    OrderListItem,
    StatusChangeView,
)
from reference_app.write.domain import OrderId, UserId
from reference_app.write.schema import order_items, order_status_history, orders, products, users

__all__ = ["daily_analytics", "get_order_detail", "list_user_orders"]


class _UtcDay(FunctionElement[dt.date]):
    """The calendar day, in UTC, of a :class:`~reference_app.sqltypes.UtcDateTime` column."""

    type = sa.Date()
    name = "utc_day"
    inherit_cache = True


@compiles(_UtcDay)
def _utc_day_sqlite(element: _UtcDay, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite stores UtcDateTime as naive UTC text: its date part is the UTC day.
    return f"date({compiler.process(element.clauses, **kw)})"


@compiles(_UtcDay, "postgresql")
def _utc_day_postgresql(element: _UtcDay, compiler: SQLCompiler, **kw: Any) -> str:
    # A plain cast would take the day in the session's time zone; shift to UTC first.
    return f"CAST(timezone('UTC', {compiler.process(element.clauses, **kw)}) AS DATE)"


# -- a user's orders, newest first ---------------------------------------------------------

_item_count = (
    sa.select(sa.func.count()).where(order_items.c.order_id == orders.c.id).scalar_subquery()
)


def _user_orders(*conditions: sa.ColumnElement[bool]) -> sa.Select[Any]:
    return (
        sa.select(
            orders.c.id.label("order_id"),
            orders.c.status,
            users.c.name.label("customer_name"),
            orders.c.total,
            _item_count.label("item_count"),
            orders.c.placed_at,
        )
        .join_from(orders, users, orders.c.user_id == users.c.id)
        .where(orders.c.user_id == sa.bindparam("user_id"), *conditions)
        .order_by(orders.c.placed_at.desc(), orders.c.id.desc())
        .limit(sa.bindparam("limit"))
    )


_first_page = _user_orders()
_page_before = _user_orders(
    sa.tuple_(orders.c.placed_at, orders.c.id)
    < sa.tuple_(
        sa.bindparam("before_placed_at", type_=UtcDateTime),
        sa.bindparam("before_id", type_=sa.Integer),
    )
)


def list_user_orders(
    conn: sa.Connection,
    user_id: UserId,
    before: tuple[dt.datetime, OrderId] | None = None,
    limit: int = 20,
) -> list[OrderListItem]:
    """Return a page of a user's orders, newest first.

    Pages are keyset-paginated on ``(placed_at, order_id)``, which the
    ``ix_orders_user_placed`` index serves in order: pass the last item of a page as
    ``before`` to get the next one. Orders placed at the same instant are ordered by id.

    Args:
        conn: A connection to the write database.
        user_id: The customer.
        before: ``(placed_at, order_id)`` of the last order already seen, or ``None`` for
            the first page.
        limit: The page size (at least 1).

    Returns:
        Up to ``limit`` orders; fewer (or none) on the last page.

    Raises:
        ValueError: ``limit`` is below 1.
    """
    if limit < 1:
        msg = f"limit must be at least 1, got {limit}"
        raise ValueError(msg)
    if before is None:
        result = conn.execute(_first_page, {"user_id": user_id, "limit": limit})
    else:
        placed_at, order_id = before
        result = conn.execute(
            _page_before,
            {
                "user_id": user_id,
                "before_placed_at": placed_at,
                "before_id": order_id,
                "limit": limit,
            },
        )
    return [
        OrderListItem(
            order_id=row.order_id,
            status=row.status,
            customer_name=row.customer_name,
            total=row.total,
            item_count=row.item_count,
            placed_at=row.placed_at,
        )
        for row in result
    ]


# -- one order, in full --------------------------------------------------------------------

_order = (
    sa.select(
        orders.c.id.label("order_id"),
        orders.c.user_id,
        users.c.name.label("customer_name"),
        users.c.email.label("customer_email"),
        orders.c.status,
        orders.c.total,
        orders.c.ship_line1,
        orders.c.ship_city,
        orders.c.ship_postal_code,
        orders.c.ship_country,
        orders.c.placed_at,
    )
    .join_from(orders, users, orders.c.user_id == users.c.id)
    .where(orders.c.id == sa.bindparam("order_id"))
)
_order_lines = (
    sa.select(
        order_items.c.product_id,
        products.c.name.label("product_name"),
        order_items.c.unit_price,
        order_items.c.quantity,
    )
    .join_from(order_items, products, order_items.c.product_id == products.c.id)
    .where(order_items.c.order_id == sa.bindparam("order_id"))
    .order_by(order_items.c.product_id)
)
_order_history = (
    sa.select(
        order_status_history.c.from_status,
        order_status_history.c.to_status,
        order_status_history.c.note,
        order_status_history.c.changed_at,
    )
    .where(order_status_history.c.order_id == sa.bindparam("order_id"))
    .order_by(order_status_history.c.id)
)


def get_order_detail(conn: sa.Connection, order_id: OrderId) -> OrderDetail | None:
    """Return an order with its customer, lines and status history.

    Three primary-key lookups: the order joined to its customer, its lines joined to their
    products, its history in the order it happened.

    Args:
        conn: A connection to the write database.
        order_id: The order.

    Returns:
        The order, or ``None`` when there is no such order.
    """
    params = {"order_id": order_id}
    order = conn.execute(_order, params).first()
    if order is None:
        return None
    items = tuple(
        OrderItemView(
            product_id=line.product_id,
            product_name=line.product_name,
            unit_price=line.unit_price,
            quantity=line.quantity,
            line_total=line.unit_price * line.quantity,
        )
        for line in conn.execute(_order_lines, params)
    )
    history = tuple(
        StatusChangeView(
            from_status=change.from_status,
            to_status=change.to_status,
            note=change.note,
            changed_at=change.changed_at,
        )
        for change in conn.execute(_order_history, params)
    )
    return OrderDetail(
        order_id=order.order_id,
        user_id=order.user_id,
        customer_name=order.customer_name,
        customer_email=order.customer_email,
        status=order.status,
        total=order.total,
        shipping_address=AddressView(
            line1=order.ship_line1,
            city=order.ship_city,
            postal_code=order.ship_postal_code,
            country=order.ship_country,
        ),
        placed_at=order.placed_at,
        items=items,
        history=history,
    )


# -- daily analytics -----------------------------------------------------------------------

_day = _UtcDay(orders.c.placed_at)
_daily = (
    sa.select(
        _day.label("day"),
        orders.c.status,
        sa.func.count().label("order_count"),
        sa.func.sum(orders.c.total).label("revenue"),
    )
    # A range on placed_at itself (not on its day) lets the ix_orders_placed_at index serve it.
    .where(
        orders.c.placed_at >= sa.bindparam("since", type_=UtcDateTime),
        orders.c.placed_at < sa.bindparam("until", type_=UtcDateTime),
    )
    .group_by(_day, orders.c.status)
    .order_by(_day, orders.c.status)
)


def daily_analytics(conn: sa.Connection, start: dt.date, end: dt.date) -> list[DailyStat]:
    """Count orders and sum their totals per day placed and current status.

    Days are UTC calendar days, the same on SQLite and PostgreSQL whatever the session's
    time zone.

    Args:
        conn: A connection to the write database.
        start: The first day, included.
        end: The last day, included.

    Returns:
        One entry per day and status that has orders, by day, then by status name.
    """
    since = dt.datetime.combine(start, dt.time(), dt.UTC)
    until = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), dt.UTC)
    result = conn.execute(_daily, {"since": since, "until": until})
    return [
        DailyStat(
            day=row.day,
            status=row.status,
            order_count=row.order_count,
            revenue=row.revenue,
        )
        for row in result
    ]
