"""The questions the app answers, as typed queries.

Each query names the read models it reads (``read_models``), so a caller that passes a
consistency token waits for exactly those. The same queries are answered from the write
model by :mod:`reference_app.baseline` handlers, for benchmarks and as the test oracle.
"""

from __future__ import annotations

import datetime as dt
from typing import ClassVar

import msgspec
from pydantic import model_validator

from cqrs_kit import Query
from reference_app.views import DailyStat, OrderDetail, OrderListItem
from reference_app.write.domain import OrderId, UserId

__all__ = ["PAGE_SIZE", "GetDailyAnalytics", "GetOrderDetail", "ListUserOrders", "OrderPage"]

PAGE_SIZE = 20
"""Orders per page of :class:`ListUserOrders`."""

MAX_ANALYTICS_DAYS = 366
"""The longest date range :class:`GetDailyAnalytics` accepts."""


class OrderPage(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One page of a user's orders, newest first (a view, like :mod:`reference_app.views`).

    Attributes:
        items: Up to :data:`PAGE_SIZE` orders.
        next_cursor: Pass it back for the next page; ``None`` on the last page.
    """

    items: tuple[OrderListItem, ...]
    next_cursor: str | None


class ListUserOrders(Query[OrderPage]):
    """A user's orders, newest first, :data:`PAGE_SIZE` a page.

    Attributes:
        user_id: Whose orders.
        cursor: The ``next_cursor`` of the previous page (opaque, tamper-evident).
    """

    read_models: ClassVar[tuple[str, ...]] = ("order_summary",)

    user_id: UserId
    cursor: str | None = None


class GetOrderDetail(Query[OrderDetail | None]):
    """Everything about one order, or ``None`` if there is no such order.

    Attributes:
        order_id: The order.
    """

    read_models: ClassVar[tuple[str, ...]] = ("order_detail",)

    order_id: OrderId


class GetDailyAnalytics(Query[list[DailyStat]]):
    """Order count and revenue per day (UTC) and status, for orders placed in a range.

    Attributes:
        start: First day, inclusive.
        end: Last day, inclusive.
    """

    read_models: ClassVar[tuple[str, ...]] = ("order_analytics",)

    start: dt.date
    end: dt.date

    @model_validator(mode="after")
    def _ordered(self) -> GetDailyAnalytics:
        if self.end < self.start:
            msg = "end must not be before start"
            raise ValueError(msg)
        if (self.end - self.start).days >= MAX_ANALYTICS_DAYS:
            msg = f"the range may span at most {MAX_ANALYTICS_DAYS} days"
            raise ValueError(msg)
        return self
