"""The read side's queries answered from the write model: the benchmark baseline and test oracle.

The same query messages as :mod:`reference_app.read.handlers`, answered by the joins and
aggregates of :mod:`reference_app.baseline` over the normalized write model, through a
read-only :class:`~reference_app.read.database.ReadDatabase` on the write database
(``writer_reader``). Pages use the same :class:`~reference_app.read.cursor.CursorCodec`
(``cursors``) and the same paging, so once the projections have caught up, every answer
here equals the read models' answer. Wire them up with::

    mediator = Mediator(
        baseline_registry,
        resolver=Dependencies({"writer_reader": ReadDatabase(write_engine), "cursors": codec}),
    )
"""

from __future__ import annotations

from cqrs_kit import Registry
from reference_app import baseline
from reference_app.read.cursor import CursorCodec
from reference_app.read.database import ReadDatabase
from reference_app.read.handlers import make_page
from reference_app.read.queries import (
    PAGE_SIZE,
    GetDailyAnalytics,
    GetOrderDetail,
    ListUserOrders,
    OrderPage,
)
from reference_app.views import DailyStat, OrderDetail

__all__ = ["baseline_registry"]

baseline_registry = Registry()
"""The baseline's query handlers."""


# --8<-- [start:list_user_orders]
@baseline_registry.handles(ListUserOrders)
def list_user_orders(
    query: ListUserOrders, *, writer_reader: ReadDatabase, cursors: CursorCodec
) -> OrderPage:
    """Return a page of the user's orders, newest first, from ``orders`` and its joins.

    Raises:
        InvalidCursorError: The cursor is malformed, tampered with, or another user's.
    """
    before = None if query.cursor is None else cursors.decode(query.user_id, query.cursor)
    with writer_reader.connect() as connection:
        items = baseline.list_user_orders(connection, query.user_id, before, PAGE_SIZE + 1)
    return make_page(query.user_id, items, cursors)
    # --8<-- [end:list_user_orders]


@baseline_registry.handles(GetOrderDetail)
def get_order_detail(query: GetOrderDetail, *, writer_reader: ReadDatabase) -> OrderDetail | None:
    """Return the order with its customer, lines and history, or ``None``."""
    with writer_reader.connect() as connection:
        return baseline.get_order_detail(connection, query.order_id)


@baseline_registry.handles(GetDailyAnalytics)
def get_daily_analytics(
    query: GetDailyAnalytics, *, writer_reader: ReadDatabase
) -> list[DailyStat]:
    """Return order counts and revenue per day and status, aggregated from ``orders``."""
    with writer_reader.connect() as connection:
        return baseline.daily_analytics(connection, query.start, query.end)
