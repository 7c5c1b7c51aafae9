"""The read side: projections, strategies and read-your-own-writes.

Included in docs/concepts/projections.md and docs/concepts/consistency.md;
tests/docs/test_projections_example.py runs it and checks what it prints. Run it with
``python docs/examples/projections_example.py``: it works in two SQLite files (the write
database and the read database) in a temporary directory and deletes them afterwards.

It runs the same shop twice: once with ``sync`` projections (current when ``send``
returns), once with ``async`` projections kept current by a background worker, where a
query waits for the command's token with ``AtLeast``.
"""

import tempfile
from pathlib import Path
from typing import ClassVar

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.orm import sessionmaker

from cqrs_kit import (
    AtLeast,
    Command,
    ConsistencyTimeoutError,
    Dependencies,
    Event,
    EventTypes,
    Mediator,
    Query,
    Receipt,
    Registry,
)
from cqrs_kit.eventlog import EventLog, create_event_log
from cqrs_kit.middleware.projection import ConsistencyMiddleware, ProjectionMiddleware
from cqrs_kit.middleware.transaction import SqlAlchemyUnitOfWork, TransactionMiddleware
from cqrs_kit.persistence import sqlite_engine
from cqrs_kit.projections import (
    Projection,
    ProjectionContext,
    ProjectionEngine,
    ProjectionWorker,
    Strategy,
)

# --8<-- [start:write_model]
write_metadata = sa.MetaData()  # the write model: only command handlers write here
orders = sa.Table(
    "orders",
    write_metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("customer", sa.String(50), nullable=False),
    sa.Column("total_cents", sa.Integer, nullable=False),
)

event_types = EventTypes()


@event_types.define("order.placed", stream_type="order")
class OrderPlaced(Event):
    """An order was placed."""

    order_id: int
    customer: str
    total_cents: int


class PlaceOrder(Command[int]):
    """Place an order; ``send()`` returns its id."""

    customer: str
    total_cents: int


registry = Registry()


@registry.handles(PlaceOrder)
def place_order(command: PlaceOrder, *, uow: SqlAlchemyUnitOfWork) -> int:
    """Insert the order and record its event, in the command's transaction."""
    insert = sa.insert(orders).values(customer=command.customer, total_cents=command.total_cents)
    order_id = int(uow.session.execute(insert.returning(orders.c.id)).scalar_one())
    uow.record(
        OrderPlaced(order_id=order_id, customer=command.customer, total_cents=command.total_cents),
        stream_id=order_id,
    )
    return order_id


# --8<-- [end:write_model]

# --8<-- [start:read_model]
read_metadata = sa.MetaData()  # the read model: its own metadata, in its own database
customer_totals = sa.Table(
    "customer_totals",
    read_metadata,
    sa.Column("customer", sa.String(50), primary_key=True),
    sa.Column("orders", sa.Integer, nullable=False),
    sa.Column("total_cents", sa.Integer, nullable=False),
)
order_list = sa.Table(
    "order_list",
    read_metadata,
    sa.Column("order_id", sa.Integer, primary_key=True),
    sa.Column("customer", sa.String(50), nullable=False),
    sa.Column("total_cents", sa.Integer, nullable=False),
)
# --8<-- [end:read_model]


# --8<-- [start:projections]
def make_projections(strategy: Strategy) -> list[Projection]:
    """The shop's two projections, both run with ``strategy``."""
    # Style 1: the event's data is all the projection needs.
    totals = Projection("customer_totals", tables=[customer_totals], strategy=strategy)

    @totals.on(OrderPlaced)
    def add_order(event: OrderPlaced, ctx: ProjectionContext) -> None:
        row = customer_totals.c
        added = ctx.connection.execute(
            sa.update(customer_totals)
            .where(row.customer == event.customer)
            .values(orders=row.orders + 1, total_cents=row.total_cents + event.total_cents)
        )
        if added.rowcount == 0:  # the customer's first order
            ctx.connection.execute(
                sa.insert(customer_totals).values(
                    customer=event.customer, orders=1, total_cents=event.total_cents
                )
            )

    # Style 2: the event is a trigger; the row is rebuilt from the write model (ctx.write).
    listing = Projection("order_list", tables=[order_list], strategy=strategy)

    @listing.on(OrderPlaced)
    def refresh_order(event: OrderPlaced, ctx: ProjectionContext) -> None:
        order = ctx.write.execute(sa.select(orders).where(orders.c.id == event.order_id)).one()
        ctx.connection.execute(sa.delete(order_list).where(order_list.c.order_id == order.id))
        ctx.connection.execute(
            sa.insert(order_list).values(
                order_id=order.id, customer=order.customer, total_cents=order.total_cents
            )
        )

    return [totals, listing]


# --8<-- [end:projections]


# --8<-- [start:queries]
class CustomerTotalView(BaseModel):
    """What the shop shows about a customer."""

    customer: str
    orders: int
    total_cents: int


class GetCustomerTotal(Query[CustomerTotalView | None]):
    """A customer's order count and total; ``None`` before their first order."""

    read_models: ClassVar[tuple[str, ...]] = ("customer_totals",)  # what AtLeast waits for

    customer: str


class ListOrders(Query[list[tuple[int, str, int]]]):
    """Every order, as ``(id, customer, total_cents)``."""

    read_models: ClassVar[tuple[str, ...]] = ("order_list",)


@registry.handles(GetCustomerTotal)
def get_customer_total(query: GetCustomerTotal, *, read_db: sa.Engine) -> CustomerTotalView | None:
    """Read the customer's row from the read model (never from the write model)."""
    select = sa.select(customer_totals).where(customer_totals.c.customer == query.customer)
    with read_db.connect() as connection:
        row = connection.execute(select).first()
    return None if row is None else CustomerTotalView.model_validate(row._mapping)


@registry.handles(ListOrders)
def list_orders(query: ListOrders, *, read_db: sa.Engine) -> list[tuple[int, str, int]]:
    """Read the order list from the read model."""
    with read_db.connect() as connection:
        rows = connection.execute(sa.select(order_list).order_by(order_list.c.order_id))
        return [(row.order_id, row.customer, row.total_cents) for row in rows]


# --8<-- [end:queries]


def print_status(engine: ProjectionEngine) -> None:
    """Print what an operator's dashboard would show (lag_seconds varies, so it is left out)."""
    for status in engine.status():
        print(
            f"  {status.name}: {status.strategy}, checkpoint {status.checkpoint} of head "
            f"{status.head}, lag {status.lag_events} event(s), {status.state}"
        )


def run(directory: Path, strategy: Strategy) -> None:
    """Wire the shop with ``strategy`` projections and place two orders."""
    directory.mkdir()
    print(f"== {strategy.value} projections ==")
    # --8<-- [start:wiring]
    write_db = sqlite_engine(directory / "write.db")  # WAL, BEGIN IMMEDIATE
    read_db = sqlite_engine(directory / "read.db")  # the read models' own database
    write_metadata.create_all(write_db)
    create_event_log(write_db)
    event_log = EventLog(event_types)

    engine = ProjectionEngine(
        event_log=event_log,
        write_engine=write_db,
        read_engine=read_db,
        projections=make_projections(strategy),
        write_metadata=write_metadata,  # a projection writing these tables is refused
    )
    engine.setup()  # read tables, checkpoint table, one checkpoint row per projection
    worker = ProjectionWorker(engine)  # runs the async projections (none here when sync)

    mediator = Mediator(
        registry,
        middleware=[
            ConsistencyMiddleware(engine),  # queries: waits for AtLeast(token)
            ProjectionMiddleware(engine, worker),  # commands: sync catch-up, wakes the worker
            TransactionMiddleware(  # innermost: the command's transaction
                sessionmaker(write_db),
                event_log,
                after_append=[engine.apply_inline],  # inline projections, before the commit
            ),
        ],
        resolver=Dependencies({"read_db": read_db}),
    )
    # --8<-- [end:wiring]

    if strategy is Strategy.SYNC:
        sync_run(mediator, engine)
    else:
        async_run(mediator, engine, worker)
    print("status:")
    print_status(engine)
    engine.close()  # the connections the engine opened itself
    write_db.dispose()
    read_db.dispose()


def sync_run(mediator: Mediator, engine: ProjectionEngine) -> None:
    """Sync projections: a query right after ``send`` sees the write."""
    # --8<-- [start:sync]
    for total in (500, 750):
        order_id = mediator.send(PlaceOrder(customer="ada", total_cents=total))
        print(f"placed order {order_id}")
    # No token needed: sync projections were caught up before send() returned.
    print(mediator.ask(GetCustomerTotal(customer="ada")))
    print(mediator.ask(ListOrders()))
    # --8<-- [end:sync]


def async_run(mediator: Mediator, engine: ProjectionEngine, worker: ProjectionWorker) -> None:
    """Async projections: the receipt's token and ``AtLeast`` give read-your-own-writes."""
    # --8<-- [start:async_stale]
    receipt = Receipt()
    order_id = mediator.send(PlaceOrder(customer="ada", total_cents=500), receipt=receipt)
    print(f"placed order {order_id}, token {receipt.token}; the worker is not started yet")
    print_status(engine)

    query = GetCustomerTotal(customer="ada")
    try:  # fails closed: no stale answer unless asked for
        mediator.ask(query, consistency=AtLeast(receipt.token, timeout=0.1))
    except ConsistencyTimeoutError as error:
        print(f"ConsistencyTimeoutError: {error}")
    stale_ok = AtLeast(receipt.token, timeout=0.1, allow_stale=True)
    print(f"{mediator.ask(query, consistency=stale_ok)} (stale={stale_ok.stale})")
    # --8<-- [end:async_stale]

    # --8<-- [start:async_worker]
    with worker:  # a daemon thread; stopped (after its current batch) on exit
        order_id = mediator.send(PlaceOrder(customer="ada", total_cents=750), receipt=receipt)
        print(f"placed order {order_id}, token {receipt.token}; the worker is running")
        fresh = AtLeast(receipt.token, timeout=5.0)
        print(f"{mediator.ask(query, consistency=fresh)} (stale={fresh.stale})")
        print(mediator.ask(ListOrders(), consistency=AtLeast(receipt.token, timeout=5.0)))
    # --8<-- [end:async_worker]


def main(directory: Path) -> None:
    """Run the shop with sync projections, then with async ones."""
    run(directory / "sync", Strategy.SYNC)
    run(directory / "async", Strategy.ASYNC)


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        main(Path(tmp))
