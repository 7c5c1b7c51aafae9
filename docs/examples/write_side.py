"""The write side: one transaction per command, its events committed with it.

Included in docs/concepts/transactions.md; tests/docs/test_write_side_example.py runs it and
checks what it prints. Run it with ``python docs/examples/write_side.py``: it works in a
SQLite file in a temporary directory and deletes it afterwards.
"""

import tempfile
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import sessionmaker

from cqrs_kit import Command, Event, EventTypes, Mediator, Registry
from cqrs_kit.eventlog import EventLog, create_event_log
from cqrs_kit.middleware.transaction import SqlAlchemyUnitOfWork, TransactionMiddleware
from cqrs_kit.persistence import sqlite_engine

metadata = sa.MetaData()
orders = sa.Table(
    "orders",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("sku", sa.String(50), nullable=False),
    sa.Column("quantity", sa.Integer, nullable=False),
)

event_types = EventTypes()


@event_types.define("order.placed", stream_type="order")  # a stable name, version 1
class OrderPlaced(Event):
    """An order was placed."""

    order_id: int
    sku: str
    quantity: int


class PlaceOrder(Command[int]):
    """Place an order; ``send()`` returns its id."""

    sku: str
    quantity: int


class OutOfStockError(Exception):
    """A domain error: the mediator hands it back unchanged, after the rollback."""


STOCK = 10

registry = Registry()


@registry.handles(PlaceOrder)
def place_order(command: PlaceOrder, *, uow: SqlAlchemyUnitOfWork) -> int:
    """Insert the order and record its event, in the command's transaction."""
    insert = sa.insert(orders).values(sku=command.sku, quantity=command.quantity)
    order_id = int(uow.session.execute(insert.returning(orders.c.id)).scalar_one())
    uow.record(
        OrderPlaced(order_id=order_id, sku=command.sku, quantity=command.quantity),
        stream_id=order_id,
    )
    if command.quantity > STOCK:  # checked late on purpose: the rollback undoes the insert
        msg = f"only {STOCK} {command.sku} in stock, {command.quantity} asked"
        raise OutOfStockError(msg)
    return order_id


def _shown(key: str, value: Any) -> Any:
    """Message ids are random per process: print their place, so the output is reproducible."""
    return "<message id>" if key == "causation_id" else value


def main(directory: Path) -> None:
    """Place orders through the mediator, then print the tables."""
    engine = sqlite_engine(directory / "shop.db")  # WAL, BEGIN IMMEDIATE
    metadata.create_all(engine)
    create_event_log(engine)  # event_log and the idempotency keys table
    event_log = EventLog(event_types)
    mediator = Mediator(
        registry,
        middleware=[TransactionMiddleware(sessionmaker(engine), event_log)],
    )

    first = mediator.send(PlaceOrder(sku="tea", quantity=2), correlation_id="req-1")
    print(f"placed order {first}")

    try:
        mediator.send(PlaceOrder(sku="tea", quantity=50), correlation_id="req-2")
    except OutOfStockError as error:
        print(f"OutOfStockError: {error} (rolled back)")

    # An idempotency key, here from the dispatch metadata (e.g. an Idempotency-Key header).
    key = {"idempotency_key": "basket-7"}
    second = mediator.send(PlaceOrder(sku="cake", quantity=1), correlation_id="req-3", metadata=key)
    repeat = mediator.send(PlaceOrder(sku="cake", quantity=1), correlation_id="req-4", metadata=key)
    print(f"placed order {second}; the repeat with key basket-7 returned {repeat}")

    with engine.connect() as connection:
        print("orders:")
        for row in connection.execute(sa.select(orders).order_by(orders.c.id)):
            print(f"  {row.id}: {row.quantity} x {row.sku}")
        print("event_log:")
        for event in event_log.read(connection, after=0):
            print(
                f"  position {event.position}: {event.event_type} v{event.schema_version} "
                f"{event.stream_type}/{event.stream_id} {event.payload}"
            )
            meta = ", ".join(
                f"{key}: {_shown(key, value)}" for key, value in event.metadata.items()
            )
            print(f"    metadata {{{meta}}}")
            print(f"    decoded {event_types.decode(event)!r}")
    engine.dispose()


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        main(Path(tmp))
