"""The projections that keep the read models current, in both of cqrs_kit's styles.

- **Event-driven** (``order_summary``, ``order_analytics``): the event carries everything the
  read model needs. ``OrderCreated`` holds the whole order (customer name, lines, total,
  placing time) and ``OrderStatusChanged`` repeats the order's total and placing time, so
  these projections never read the write model.
- **Trigger** (``order_detail``): the event only says which order changed; the handler
  rebuilds the row from the write model through ``ctx.write`` (the seed's
  ``updateReadModel``), reusing the baseline's detail query. The row is the order as it is
  now, so replaying old events converges on the current state too.

Every handler is a batch handler (``Projection.on_batch``): it gets a run of consecutive
events and writes them with as few statements as it can (one ``executemany``, one upsert per
bucket, one refresh per order), which is what makes a rebuild fast. Each handler gives the
same rows as applying its events one by one, in order.

Every statement is built once, below. ``order_analytics`` keeps one bucket per day (UTC)
and status: an order placed on a day counts in that day's ``pending`` bucket, and each
status change moves it (count and total) from its old bucket to its new one. A bucket is
created on first use with ``INSERT ... ON CONFLICT DO UPDATE``, which SQLite and
PostgreSQL both speak, each through its dialect's ``insert()``.

:func:`build_projections` gives the projections to a
:class:`~cqrs_kit.projections.ProjectionEngine`, each with its strategy.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from cqrs_kit import ConfigurationError
from cqrs_kit.projections import BatchContext, Projection, Strategy
from reference_app import baseline
from reference_app.read.schema import order_analytics, order_detail, order_summary
from reference_app.views import to_json
from reference_app.write.messages import OrderCreated, OrderStatusChanged

__all__ = ["PROJECTION_NAMES", "build_projections"]

PROJECTION_NAMES = ("order_summary", "order_detail", "order_analytics")
"""The projections' names, which key their checkpoints (and ``read_models`` of the queries)."""

_DEFAULT_STRATEGY = Strategy.SYNC

# -- upserts: one statement per dialect, built once ----------------------------------------

_Upsert = Mapping[str, sa.Executable]
"""The same ``INSERT ... ON CONFLICT (primary key) DO UPDATE``, by dialect name."""


def _upsert(table: sa.Table, updates: Callable[[Any], Mapping[str, Any]]) -> _Upsert:
    """Build the upsert of ``table`` for SQLite and for PostgreSQL.

    Args:
        table: The table; its primary key is the conflict target.
        updates: Given the row that was to be inserted (``excluded``), the columns to set
            on the existing row instead.
    """
    key = list(table.primary_key.columns)
    on_sqlite = sqlite.insert(table)
    on_postgresql = postgresql.insert(table)
    return {
        "sqlite": on_sqlite.on_conflict_do_update(
            index_elements=key, set_=updates(on_sqlite.excluded)
        ),
        "postgresql": on_postgresql.on_conflict_do_update(
            index_elements=key, set_=updates(on_postgresql.excluded)
        ),
    }


def _run_upsert(
    upsert: _Upsert, connection: sa.Connection, rows: Mapping[str, Any] | list[dict[str, Any]]
) -> None:
    try:
        statement = upsert[connection.dialect.name]
    except KeyError:
        msg = f"the read models support {sorted(upsert)}, not {connection.dialect.name!r}"
        raise ConfigurationError(msg) from None
    connection.execute(statement, rows)


# -- order_summary: event-driven -----------------------------------------------------------

# --8<-- [start:summary]
_insert_summary = sa.insert(order_summary)
_set_summary_status = (
    sa.update(order_summary)
    .where(order_summary.c.order_id == sa.bindparam("b_order_id"))
    .values(status=sa.bindparam("b_status"))
)


def _add_summaries(events: Sequence[OrderCreated], ctx: BatchContext) -> None:
    ctx.connection.execute(
        _insert_summary,
        [
            {
                "order_id": event.order_id,
                "user_id": event.user_id,
                "status": event.status,
                "customer_name": event.customer_name,
                "total": event.total,
                "item_count": len(event.items),
                "placed_at": event.placed_at,
            }
            for event in events
        ],
    )


def _update_summary_statuses(events: Sequence[OrderStatusChanged], ctx: BatchContext) -> None:
    # One UPDATE per event, in log order (an order may change twice in one run).
    ctx.connection.execute(
        _set_summary_status,
        [{"b_order_id": event.order_id, "b_status": event.to_status} for event in events],
    )
    # --8<-- [end:summary]


# -- order_detail: the event triggers a rebuild from the write model ------------------------

_upsert_detail = _upsert(
    order_detail, lambda new: {"user_id": new.user_id, "document": new.document}
)
_delete_detail = sa.delete(order_detail).where(order_detail.c.order_id == sa.bindparam("order_id"))


# --8<-- [start:detail]
def _refresh_details(
    events: Sequence[OrderCreated | OrderStatusChanged], ctx: BatchContext
) -> None:
    # The row is the order as it is now: one refresh per order of the run is enough.
    for order_id in dict.fromkeys(event.order_id for event in events):
        detail = baseline.get_order_detail(ctx.write, order_id)
        if detail is None:  # not in the write model (any more): neither in the read model
            ctx.connection.execute(_delete_detail, {"order_id": order_id})
            continue
        _run_upsert(
            _upsert_detail,
            ctx.connection,
            {
                "order_id": detail.order_id,
                "user_id": detail.user_id,
                "document": to_json(detail),
            },
        )
    # --8<-- [end:detail]


# -- order_analytics: event-driven, one bucket per day and status --------------------------

_add_to_bucket = _upsert(
    order_analytics,
    lambda new: {
        "order_count": order_analytics.c.order_count + new.order_count,
        "revenue": order_analytics.c.revenue + new.revenue,
    },
)


def _utc_day(moment: dt.datetime) -> dt.date:
    return moment.astimezone(dt.UTC).date()


# --8<-- [start:analytics]
def _count_orders(events: Sequence[OrderCreated | OrderStatusChanged], ctx: BatchContext) -> None:
    # Sum the run's moves per bucket first: one upsert per bucket touched, and each bucket
    # once per statement (PostgreSQL may send an executemany as one multi-row upsert).
    moves: dict[tuple[dt.date, str], tuple[int, Decimal]] = {}

    def move(day: dt.date, status: str, count: int, revenue: Decimal) -> None:
        old_count, old_revenue = moves.get((day, status), (0, Decimal(0)))
        moves[day, status] = (old_count + count, old_revenue + revenue)

    for event in events:
        day = _utc_day(event.placed_at)
        if isinstance(event, OrderCreated):
            move(day, event.status, 1, event.total)  # into its day's pending bucket
        else:  # from the old bucket (it was counted there) to the new one, maybe a new row
            move(day, event.from_status, -1, -event.total)
            move(day, event.to_status, 1, event.total)
    rows = [
        {"day": day, "status": status, "order_count": count, "revenue": revenue}
        for (day, status), (count, revenue) in moves.items()
    ]
    _run_upsert(_add_to_bucket, ctx.connection, rows)
    # --8<-- [end:analytics]


# -- building them ------------------------------------------------------------------------


def build_projections(strategies: Mapping[str, Strategy | str] | None = None) -> list[Projection]:
    """Build the three read-model projections.

    Args:
        strategies: A strategy per projection name (``"inline"``, ``"sync"``, ``"async"``,
            or a :class:`~cqrs_kit.projections.Strategy`); projections left out run
            ``sync``.

    Returns:
        The ``order_summary``, ``order_detail`` and ``order_analytics`` projections, new
        objects on every call.

    Raises:
        ConfigurationError: ``strategies`` names a projection that does not exist.
        ValueError: A strategy is not one of the three.
    """
    chosen = dict(strategies or {})
    unknown = sorted(set(chosen) - set(PROJECTION_NAMES))
    if unknown:
        msg = f"no projections are named {unknown}; the projections are {list(PROJECTION_NAMES)}"
        raise ConfigurationError(msg)

    # --8<-- [start:build]
    def projection(name: str, table: sa.Table) -> Projection:
        strategy = Strategy(chosen.get(name, _DEFAULT_STRATEGY))
        return Projection(name, tables=[table], strategy=strategy)

    summary = projection("order_summary", order_summary)
    summary.on_batch(OrderCreated)(_add_summaries)
    summary.on_batch(OrderStatusChanged)(_update_summary_statuses)

    # One function for both types: a run spans them (see Projection.on_batch).
    detail = projection("order_detail", order_detail)
    detail.on_batch(OrderCreated)(_refresh_details)
    detail.on_batch(OrderStatusChanged)(_refresh_details)

    analytics = projection("order_analytics", order_analytics)
    analytics.on_batch(OrderCreated)(_count_orders)
    analytics.on_batch(OrderStatusChanged)(_count_orders)

    return [summary, detail, analytics]
    # --8<-- [end:build]
