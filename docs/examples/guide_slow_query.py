"""Guide: migrating a slow query to a read model, step by step.

Shown in docs/guides/migrate-slow-query.md; tests/docs/test_guides.py runs it and checks
what it prints. Run it with ``python docs/examples/guide_slow_query.py``: it builds a shop
with a history of orders in SQLite files in a temporary directory, migrates the "top
customers" query to a read model, and prints the timings on stderr.
"""

import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.orm import sessionmaker

from cqrs_kit import Command, Dependencies, Event, EventTypes, Mediator, Query, Registry
from cqrs_kit.eventlog import EventLog, create_event_log
from cqrs_kit.middleware.projection import ProjectionMiddleware
from cqrs_kit.middleware.transaction import SqlAlchemyUnitOfWork, TransactionMiddleware
from cqrs_kit.persistence import sqlite_engine
from cqrs_kit.projections import Projection, ProjectionContext, ProjectionEngine, Strategy

# -- the app as it is ------------------------------------------------------------------------

write_metadata = sa.MetaData()
customers = sa.Table(
    "customers",
    write_metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(100), nullable=False),
)
orders = sa.Table(
    "orders",
    write_metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("customer_id", sa.ForeignKey("customers.id"), nullable=False),
)
order_lines = sa.Table(
    "order_lines",
    write_metadata,
    sa.Column("order_id", sa.ForeignKey("orders.id"), primary_key=True),
    sa.Column("line", sa.Integer, primary_key=True),
    sa.Column("quantity", sa.Integer, nullable=False),
    sa.Column("unit_price_cents", sa.Integer, nullable=False),
)


class CustomerRevenue(BaseModel):
    """One row of the report."""

    customer_id: int
    name: str
    orders: int
    revenue_cents: int


class TopCustomers(Query[list[CustomerRevenue]]):
    """The customers who spent the most, best first."""

    read_models: ClassVar[tuple[str, ...]] = ("customer_revenue",)

    limit: int = 5


# --8<-- [start:baseline]
_line_total = order_lines.c.quantity * order_lines.c.unit_price_cents
_top_from_write_model = (
    sa.select(
        customers.c.id.label("customer_id"),
        customers.c.name,
        sa.func.count(sa.distinct(orders.c.id)).label("orders"),
        sa.func.sum(_line_total).label("revenue_cents"),
    )
    .join(orders, orders.c.customer_id == customers.c.id)
    .join(order_lines, order_lines.c.order_id == orders.c.id)
    .group_by(customers.c.id, customers.c.name)
    .order_by(sa.desc("revenue_cents"), customers.c.id)
    .limit(sa.bindparam("limit"))
)


def top_customers_from_write_model(
    query: TopCustomers, *, write_db: sa.Engine
) -> list[CustomerRevenue]:
    """The baseline: joins and aggregates every order line on every call."""
    with write_db.connect() as connection:
        rows = connection.execute(_top_from_write_model, {"limit": query.limit})
        return [CustomerRevenue.model_validate(row._mapping) for row in rows]


# --8<-- [end:baseline]


# --8<-- [start:measure]
def measure(run: Callable[[], object], repeat: int = 50) -> float:
    """Median wall time of ``run()`` in milliseconds, after one warm-up call."""
    run()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


# --8<-- [end:measure]


# -- step 2: events ------------------------------------------------------------------------

# --8<-- [start:events]
event_types = EventTypes()


@event_types.define("order.placed", stream_type="order")
class OrderPlaced(Event):
    """An order was placed, with all the report needs: the projection reads nothing else."""

    order_id: int
    customer_id: int
    customer_name: str
    total_cents: int


class Line(BaseModel):
    """One order line."""

    quantity: int
    unit_price_cents: int


class PlaceOrder(Command[int]):
    """Place an order; ``send()`` returns its id."""

    customer_id: int
    lines: list[Line]


registry = Registry()


@registry.handles(PlaceOrder)
def place_order(command: PlaceOrder, *, uow: SqlAlchemyUnitOfWork) -> int:
    """What the handler always did, plus one line: record the event."""
    session = uow.session
    order_id = session.execute(
        sa.insert(orders).values(customer_id=command.customer_id).returning(orders.c.id)
    ).scalar_one()
    session.execute(
        sa.insert(order_lines),
        [
            {"order_id": order_id, "line": n, **line.model_dump()}
            for n, line in enumerate(command.lines)
        ],
    )
    name = session.execute(
        sa.select(customers.c.name).where(customers.c.id == command.customer_id)
    ).scalar_one()
    total = sum(line.quantity * line.unit_price_cents for line in command.lines)
    uow.record(
        OrderPlaced(
            order_id=order_id,
            customer_id=command.customer_id,
            customer_name=name,
            total_cents=total,
        ),
        stream_id=order_id,
    )
    return int(order_id)


# --8<-- [end:events]


# --8<-- [start:backfill]
class BackfillOrderEvents(Command[int]):
    """Record ``OrderPlaced`` for orders placed before the handler recorded it.

    Idempotent: it only picks orders that have no event yet, so it can run in batches, and
    again after a crash, until it returns 0.
    """

    batch: int = 1000


@registry.handles(BackfillOrderEvents)
def backfill_order_events(
    command: BackfillOrderEvents, *, uow: SqlAlchemyUnitOfWork, event_log: EventLog
) -> int:
    """Record one batch of historical events; returns how many."""
    log = event_log.table
    has_event = sa.exists().where(
        log.c.stream_type == "order", log.c.stream_id == sa.cast(orders.c.id, sa.String)
    )
    without_event = (
        sa.select(
            orders.c.id,
            orders.c.customer_id,
            customers.c.name,
            sa.func.sum(_line_total).label("total_cents"),
        )
        .join(customers, customers.c.id == orders.c.customer_id)
        .join(order_lines, order_lines.c.order_id == orders.c.id)
        .where(~has_event)
        .group_by(orders.c.id, orders.c.customer_id, customers.c.name)
        .order_by(orders.c.id)  # oldest first: the log keeps the history's order
        .limit(command.batch)
    )
    rows = uow.session.execute(without_event).all()
    for row in rows:
        event = OrderPlaced(
            order_id=row.id,
            customer_id=row.customer_id,
            customer_name=row.name,
            total_cents=row.total_cents,
        )
        uow.record(event, stream_id=row.id)
    return len(rows)


# --8<-- [end:backfill]


# -- step 3: the read model and its projection ---------------------------------------------

# --8<-- [start:projection]
read_metadata = sa.MetaData()
customer_revenue = sa.Table(
    "customer_revenue",
    read_metadata,
    sa.Column("customer_id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("orders", sa.Integer, nullable=False),
    sa.Column("revenue_cents", sa.BigInteger, nullable=False, index=True),
)
revenue = Projection("customer_revenue", tables=[customer_revenue], strategy=Strategy.SYNC)


@revenue.on(OrderPlaced)
def add_order(event: OrderPlaced, ctx: ProjectionContext) -> None:
    """Add the order to its customer's row."""
    row = customer_revenue.c
    updated = ctx.connection.execute(
        sa.update(customer_revenue)
        .where(row.customer_id == event.customer_id)
        .values(orders=row.orders + 1, revenue_cents=row.revenue_cents + event.total_cents)
    )
    if updated.rowcount == 0:
        ctx.connection.execute(
            sa.insert(customer_revenue).values(
                customer_id=event.customer_id,
                name=event.customer_name,
                orders=1,
                revenue_cents=event.total_cents,
            )
        )


# --8<-- [end:projection]


# -- step 5: the new query handler ---------------------------------------------------------

# --8<-- [start:switch]
_top_from_read_model = (
    sa.select(customer_revenue)
    .order_by(customer_revenue.c.revenue_cents.desc(), customer_revenue.c.customer_id)
    .limit(sa.bindparam("limit"))
)


@registry.handles(TopCustomers)
def top_customers(query: TopCustomers, *, read_db: sa.Engine) -> list[CustomerRevenue]:
    """The query's handler now: one indexed read of precomputed rows."""
    with read_db.connect() as connection:
        rows = connection.execute(_top_from_read_model, {"limit": query.limit})
        return [CustomerRevenue.model_validate(row._mapping) for row in rows]


# --8<-- [end:switch]


def seed_history(write_db: sa.Engine, customer_count: int = 100, order_count: int = 1500) -> None:
    """Orders placed before the migration: written by the old code, without events."""
    rng = random.Random(7)  # noqa: S311 - reproducible test data, not security
    with write_db.begin() as connection:
        connection.execute(
            sa.insert(customers),
            [{"id": i, "name": f"customer {i}"} for i in range(1, customer_count + 1)],
        )
        connection.execute(
            sa.insert(orders),
            [
                {"id": i, "customer_id": rng.randint(1, customer_count)}
                for i in range(1, order_count + 1)
            ],
        )
        connection.execute(
            sa.insert(order_lines),
            [
                {
                    "order_id": i,
                    "line": n,
                    "quantity": rng.randint(1, 5),
                    "unit_price_cents": rng.randint(100, 5000),
                }
                for i in range(1, order_count + 1)
                for n in range(3)
            ],
        )


def main(directory: Path) -> None:
    """Migrate the query and compare it with the baseline."""
    write_db = sqlite_engine(directory / "write.db")
    read_db = sqlite_engine(directory / "read.db")
    write_metadata.create_all(write_db)
    create_event_log(write_db)
    seed_history(write_db)
    event_log = EventLog(event_types)
    engine = ProjectionEngine(
        event_log=event_log,
        write_engine=write_db,
        read_engine=read_db,
        projections=[revenue],
        write_metadata=write_metadata,
    )
    resolver = Dependencies({"read_db": read_db, "write_db": write_db, "event_log": event_log})
    transactions = TransactionMiddleware(sessionmaker(write_db), event_log)

    # --8<-- [start:steps]
    # 1. Measure the baseline.
    query = TopCustomers(limit=5)
    baseline_ms = measure(lambda: top_customers_from_write_model(query, write_db=write_db))

    # 2. Deploy the handler that records events; then backfill the orders placed before.
    mediator = Mediator(registry, middleware=[transactions], resolver=resolver)
    mediator.send(PlaceOrder(customer_id=1, lines=[Line(quantity=1, unit_price_cents=999)]))
    backfilled = 0
    while batch := mediator.send(BackfillOrderEvents(batch=500)):
        backfilled += batch
    print(f"backfilled {backfilled} order events")

    # 3-4. Create the read model and fill it from the whole log.
    engine.setup()
    print(f"rebuilt customer_revenue from {engine.rebuild('customer_revenue')} events")

    # 5. Deploy the projection middleware; TopCustomers reads the read model.
    mediator = Mediator(
        registry, middleware=[ProjectionMiddleware(engine), transactions], resolver=resolver
    )
    mediator.send(PlaceOrder(customer_id=2, lines=[Line(quantity=2, unit_price_cents=1500)]))
    answer = mediator.ask(query)

    # 6. Compare with the baseline: the same answer, and the time it takes now.
    same = answer == top_customers_from_write_model(query, write_db=write_db)
    print(f"same answer as the write model: {same}")
    read_model_ms = measure(lambda: mediator.ask(query))
    # --8<-- [end:steps]
    print(f"baseline {baseline_ms:.3f} ms, read model {read_model_ms:.3f} ms", file=sys.stderr)
    engine.close()
    write_db.dispose()
    read_db.dispose()


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        main(Path(tmp))
