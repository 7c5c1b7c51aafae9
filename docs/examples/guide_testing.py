# ruff: noqa: D103, S101, PLR2004 - a test module, as in tests/: names say it all, asserts assert
"""Guide: testing handlers, code that uses a mediator, and projections.

Shown in docs/guides/testing.md. The ``test_*`` functions below are ordinary pytest tests:
tests/docs/test_guides.py collects and runs them. The application code comes first; in a
real project it lives in your package and the tests in ``tests/``.
"""

from pathlib import Path
from typing import Protocol

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import sessionmaker

from cqrs_kit import Command, Event, EventTypes, HandlerNotFoundError, Mediator, Registry
from cqrs_kit.eventlog import EventLog, create_event_log
from cqrs_kit.middleware.transaction import SqlAlchemyUnitOfWork, TransactionMiddleware
from cqrs_kit.persistence import sqlite_engine
from cqrs_kit.projections import Projection, ProjectionContext, ProjectionEngine
from cqrs_kit.testing import FakeMediator, RecordingMiddleware, static_resolver

# -- the application ------------------------------------------------------------------------

# --8<-- [start:app]
event_types = EventTypes()


@event_types.define("stock.reserved", stream_type="sku")
class StockReserved(Event):
    """Units of a product were reserved."""

    sku: str
    quantity: int


class ReserveStock(Command[int]):
    """Reserve units of a product; ``send()`` returns how many are left."""

    sku: str
    quantity: int


class OutOfStockError(Exception):
    """Fewer units are left than asked for."""


class Inventory(Protocol):
    """Where stock levels are kept (a port: the app has a SQL one, tests a fake)."""

    def left(self, sku: str) -> int:
        """Units of ``sku`` left."""
        ...

    def take(self, sku: str, quantity: int) -> None:
        """Take units of ``sku``."""
        ...


registry = Registry()


@registry.handles(ReserveStock)
def reserve_stock(command: ReserveStock, *, inventory: Inventory) -> int:
    """Take the units if there are enough."""
    left = inventory.left(command.sku)
    if command.quantity > left:
        msg = f"{left} {command.sku} left, {command.quantity} asked"
        raise OutOfStockError(msg)
    inventory.take(command.sku, command.quantity)
    return left - command.quantity


def reserve_endpoint(mediator: Mediator, body: dict[str, object]) -> tuple[int, dict[str, object]]:
    """An HTTP endpoint (or a CLI command): it only translates, the mediator does the work."""
    try:
        left = mediator.send(ReserveStock.model_validate(body))
    except OutOfStockError as error:
        return 409, {"error": str(error)}
    return 200, {"left": left}


# --8<-- [end:app]


# -- testing a handler: a real mediator, fake dependencies ----------------------------------


# --8<-- [start:handler_tests]
class FakeInventory:
    """An in-memory Inventory: a fake, not a mock, so tests read like the domain."""

    def __init__(self, **stock: int) -> None:
        """Start with ``stock`` units per SKU."""
        self.stock = stock

    def left(self, sku: str) -> int:
        """Units left."""
        return self.stock.get(sku, 0)

    def take(self, sku: str, quantity: int) -> None:
        """Take units."""
        self.stock[sku] -= quantity


def test_reserving_takes_the_units_and_returns_what_is_left() -> None:
    inventory = FakeInventory(tea=5)
    mediator = Mediator(registry, resolver=static_resolver(inventory=inventory))

    assert mediator.send(ReserveStock(sku="tea", quantity=2)) == 3
    assert inventory.stock == {"tea": 3}


def test_reserving_more_than_is_left_fails_and_takes_nothing() -> None:
    inventory = FakeInventory(tea=1)
    recorder = RecordingMiddleware()  # records every dispatch, with its outcome
    mediator = Mediator(
        registry, middleware=[recorder], resolver=static_resolver(inventory=inventory)
    )

    with pytest.raises(OutOfStockError):
        mediator.send(ReserveStock(sku="tea", quantity=2), correlation_id="req-1")

    assert inventory.stock == {"tea": 1}
    [dispatch] = recorder.dispatches
    assert dispatch.outcome == "error"
    assert isinstance(dispatch.exception, OutOfStockError)
    assert dispatch.correlation_id == "req-1"


# --8<-- [end:handler_tests]


# -- testing code that uses a mediator: a fake mediator ------------------------------------


# --8<-- [start:fake_tests]
def test_the_endpoint_sends_the_command_and_returns_its_result() -> None:
    fake = FakeMediator().returns(ReserveStock, 3)  # no handler runs

    assert reserve_endpoint(fake, {"sku": "tea", "quantity": 2}) == (200, {"left": 3})
    assert fake.sent == [ReserveStock(sku="tea", quantity=2)]


def test_the_endpoint_maps_out_of_stock_to_409() -> None:
    fake = FakeMediator().raises(ReserveStock, OutOfStockError("0 tea left, 2 asked"))

    assert reserve_endpoint(fake, {"sku": "tea", "quantity": 2}) == (
        409,
        {"error": "0 tea left, 2 asked"},
    )


def test_a_fake_without_an_answer_fails_like_a_mediator_without_a_handler() -> None:
    with pytest.raises(HandlerNotFoundError, match=r"\.returns\(ReserveStock, result\)"):
        reserve_endpoint(FakeMediator(), {"sku": "tea", "quantity": 2})


# --8<-- [end:fake_tests]


# -- testing a projection: real SQLite files, real events ----------------------------------

# --8<-- [start:projection]
read_metadata = sa.MetaData()
reserved = sa.Table(
    "reserved_per_sku",
    read_metadata,
    sa.Column("sku", sa.String(50), primary_key=True),
    sa.Column("units", sa.Integer, nullable=False),
)
reservations = Projection("reserved_per_sku", tables=[reserved])


@reservations.on(StockReserved)
def add_reserved(event: StockReserved, ctx: ProjectionContext) -> None:
    """Add the event's units to the SKU's row."""
    added = ctx.connection.execute(
        sa.update(reserved)
        .where(reserved.c.sku == event.sku)
        .values(units=reserved.c.units + event.quantity)
    )
    if added.rowcount == 0:
        ctx.connection.execute(sa.insert(reserved).values(sku=event.sku, units=event.quantity))


# --8<-- [end:projection]


# --8<-- [start:projection_tests]
class RecordEvent(Command[None]):
    """A test-only command: record one event, as the real handlers would."""

    event: StockReserved


def record_event(command: RecordEvent, *, uow: SqlAlchemyUnitOfWork) -> None:
    """Record the event in the command's transaction (so it lands in the event log)."""
    uow.record(command.event, stream_id=command.event.sku)


def projection_engine(tmp_path: Path) -> tuple[Mediator, ProjectionEngine]:
    """A write database with an event log, a read database, and the projection."""
    write_db, read_db = sqlite_engine(tmp_path / "write.db"), sqlite_engine(tmp_path / "read.db")
    create_event_log(write_db)
    event_log = EventLog(event_types)
    engine = ProjectionEngine(
        event_log=event_log, write_engine=write_db, read_engine=read_db, projections=[reservations]
    )
    engine.setup()
    test_registry = Registry()
    test_registry.register(RecordEvent, record_event)
    mediator = Mediator(
        test_registry, middleware=[TransactionMiddleware(sessionmaker(write_db), event_log)]
    )
    return mediator, engine


def rows(engine: ProjectionEngine) -> list[tuple[str, int]]:
    """The read model's rows."""
    with engine.read_engine.connect() as connection:
        return [tuple(row) for row in connection.execute(sa.select(reserved).order_by("sku"))]


def test_the_projection_adds_up_reservations_per_sku(tmp_path: Path) -> None:
    mediator, engine = projection_engine(tmp_path)
    for sku, quantity in [("tea", 2), ("cake", 1), ("tea", 3)]:
        mediator.send(RecordEvent(event=StockReserved(sku=sku, quantity=quantity)))

    engine.catch_up("reserved_per_sku")  # what the worker does, once, in the test's thread

    assert rows(engine) == [("cake", 1), ("tea", 5)]
    assert engine.checkpoint("reserved_per_sku").position == 3


def test_a_rebuild_reproduces_the_read_model(tmp_path: Path) -> None:
    mediator, engine = projection_engine(tmp_path)
    for quantity in (1, 2, 3):
        mediator.send(RecordEvent(event=StockReserved(sku="tea", quantity=quantity)))
    engine.catch_up("reserved_per_sku")
    before = rows(engine)

    engine.rebuild("reserved_per_sku")

    assert rows(engine) == before == [("tea", 6)]


# --8<-- [end:projection_tests]
