r"""Guide: the projections module a worker process loads.

Shown in docs/guides/postgres-workers.md; tests/docs/test_guides.py runs the command line
against it (on SQLite files) and checks what it prints. With docs/examples on the path::

    WRITE_DATABASE_URL=postgresql+psycopg://app@db/orders \\
    READ_DATABASE_URL=postgresql+psycopg://app@db/orders_read \\
    python -m cqrs_kit.projections --app guide_workers:build_engine run
"""

import os

import sqlalchemy as sa

from cqrs_kit import Event, EventTypes
from cqrs_kit.eventlog import EventLog
from cqrs_kit.persistence import configure_sqlite
from cqrs_kit.projections import Projection, ProjectionContext, ProjectionEngine, Strategy

# In an app these come from its own modules (the write side's event types, the read side's
# tables and projections); they are defined here to keep the example in one file.
event_types = EventTypes()


@event_types.define("order.placed", stream_type="order")
class OrderPlaced(Event):
    """An order was placed."""

    order_id: int
    day: str
    total_cents: int


read_metadata = sa.MetaData()
daily_revenue = sa.Table(
    "daily_revenue",
    read_metadata,
    sa.Column("day", sa.String(10), primary_key=True),
    sa.Column("orders", sa.Integer, nullable=False),
    sa.Column("revenue_cents", sa.BigInteger, nullable=False),
)
revenue = Projection("daily_revenue", tables=[daily_revenue], strategy=Strategy.ASYNC)


@revenue.on(OrderPlaced)
def add_order(event: OrderPlaced, ctx: ProjectionContext) -> None:
    """Count the order on its day."""
    row = daily_revenue.c
    added = ctx.connection.execute(
        sa.update(daily_revenue)
        .where(row.day == event.day)
        .values(orders=row.orders + 1, revenue_cents=row.revenue_cents + event.total_cents)
    )
    if added.rowcount == 0:
        ctx.connection.execute(
            sa.insert(daily_revenue).values(
                day=event.day, orders=1, revenue_cents=event.total_cents
            )
        )


# --8<-- [start:build_engine]
def database(url: str) -> sa.Engine:
    """An engine for ``url``; SQLite files get cqrs_kit's settings (WAL, BEGIN IMMEDIATE)."""
    engine = sa.create_engine(url, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":
        configure_sqlite(engine)
    return engine


def build_engine() -> ProjectionEngine:
    """What ``--app guide_workers:build_engine`` loads: the engine, from the environment."""
    return ProjectionEngine(
        event_log=EventLog(event_types),
        write_engine=database(os.environ["WRITE_DATABASE_URL"]),  # the log is read from here
        read_engine=database(os.environ["READ_DATABASE_URL"]),  # read models are written here
        projections=[revenue],
    )


# --8<-- [end:build_engine]
