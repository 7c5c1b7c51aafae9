"""The projections that keep the read models current, in both of cqrs_kit's styles.

- **Event-driven** (``order_summary``, ``order_analytics``): the event carries everything the
  read model needs. ``OrderCreated`` holds the whole order (customer name, lines, total,
  placing time) and ``OrderStatusChanged`` repeats the order's total and placing time, so
  these projections never read the write model.
- **Trigger** (``order_detail``): the event only says which order changed; the handler
  rebuilds the row from the write model through ``ctx.write`` (the seed's
  ``updateReadModel``), reusing the baseline's detail query. The row is the order as it is
  now, so replaying old events converges on the current state too.

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
from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from cqrs_kit import ConfigurationError
from cqrs_kit.projections import Projection, ProjectionContext, Strategy
from reference_app import baseline
from reference_app.read.schema import order_analytics, order_detail, order_summary
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


def _add_summary(event: OrderCreated, ctx: ProjectionContext) -> None:
    ctx.connection.execute(
        _insert_summary,
        {
            "order_id": event.order_id,
            "user_id": event.user_id,
            "status": event.status,
            "customer_name": event.customer_name,
            "total": event.total,
            "item_count": len(event.items),
            "placed_at": event.placed_at,
        },
    )


def _update_summary_status(event: OrderStatusChanged, ctx: ProjectionContext) -> None:
    ctx.connection.execute(
        _set_summary_status, {"b_order_id": event.order_id, "b_status": event.to_status}
    )
    # --8<-- [end:summary]


# -- order_detail: the event triggers a rebuild from the write model ------------------------

_upsert_detail = _upsert(
    order_detail, lambda new: {"user_id": new.user_id, "document": new.document}
)
_delete_detail = sa.delete(order_detail).where(order_detail.c.order_id == sa.bindparam("order_id"))


# --8<-- [start:detail]
def _refresh_detail(event: OrderCreated | OrderStatusChanged, ctx: ProjectionContext) -> None:
    detail = baseline.get_order_detail(ctx.write, event.order_id)
    if detail is None:  # not in the write model (any more): neither in the read model
        ctx.connection.execute(_delete_detail, {"order_id": event.order_id})
        return
    _run_upsert(
        _upsert_detail,
        ctx.connection,
        {
            "order_id": detail.order_id,
            "user_id": detail.user_id,
            "document": detail.model_dump_json(),
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
def _count_new_order(event: OrderCreated, ctx: ProjectionContext) -> None:
    new_order = {
        "day": _utc_day(event.placed_at),
        "status": event.status,  # pending
        "order_count": 1,
        "revenue": event.total,
    }
    _run_upsert(_add_to_bucket, ctx.connection, new_order)


def _move_order(event: OrderStatusChanged, ctx: ProjectionContext) -> None:
    day = _utc_day(event.placed_at)
    # The old bucket exists (the order was counted in it); the new one may not, yet.
    old = {"day": day, "status": event.from_status, "order_count": -1, "revenue": -event.total}
    new = {"day": day, "status": event.to_status, "order_count": 1, "revenue": event.total}
    _run_upsert(_add_to_bucket, ctx.connection, [old, new])
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
    summary.on(OrderCreated)(_add_summary)
    summary.on(OrderStatusChanged)(_update_summary_status)

    detail = projection("order_detail", order_detail)
    detail.on(OrderCreated)(_refresh_detail)
    detail.on(OrderStatusChanged)(_refresh_detail)

    analytics = projection("order_analytics", order_analytics)
    analytics.on(OrderCreated)(_count_new_order)
    analytics.on(OrderStatusChanged)(_move_order)

    return [summary, detail, analytics]
    # --8<-- [end:build]
