"""Property: once the projections have caught up, the read models answer as the write model.

Hypothesis generates histories of commands (users registering, products added, orders placed,
statuses changed: invalid and illegal ones included) on a deterministic clock that jumps by
zero seconds to two days. Each history runs through a ``Mediator`` with the read side under
one projection strategy; then every question is asked of the read models and of the
baseline (the same queries over the write model), and the answers must be equal: every page
of every user's orders, every order's detail (and an unknown order's), the daily analytics
over the whole history.

SQLite gets a fresh pair of database files per example; PostgreSQL (when configured) one
database whose tables are recreated per example, with fewer examples. Every example runs
real databases, so shrinking a failure to a minimal history can take Hypothesis's whole
shrinking budget (about five minutes); the result is worth it (typically two commands).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from sqlalchemy.orm import sessionmaker

from cqrs_kit import Dependencies, Mediator, Registry
from cqrs_kit import eventlog as cqrs_eventlog
from cqrs_kit.eventlog import EventLog
from cqrs_kit.middleware.projection import ConsistencyMiddleware, ProjectionMiddleware
from cqrs_kit.middleware.transaction import TransactionMiddleware
from cqrs_kit.persistence import sqlite_engine
from cqrs_kit.projections import ProjectionEngine, Strategy, projection_metadata
from reference_app.baseline_handlers import baseline_registry
from reference_app.read.cursor import CursorCodec
from reference_app.read.database import ReadDatabase
from reference_app.read.handlers import registry as read_registry
from reference_app.read.projections import PROJECTION_NAMES, build_projections
from reference_app.read.queries import GetDailyAnalytics, GetOrderDetail, ListUserOrders
from reference_app.read.schema import read_metadata
from reference_app.write import schema as write_schema
from reference_app.write.domain import (
    Address,
    OrderError,
    OrderId,
    OrderStatus,
    ProductId,
    UserId,
    can_transition,
)
from reference_app.write.handlers import dependencies
from reference_app.write.handlers import registry as write_registry
from reference_app.write.messages import (
    AddProduct,
    CreateOrder,
    OrderLine,
    RegisterUser,
    UpdateOrderStatus,
    event_types,
)
from tests.answers import assert_identical
from tests.databases import Database

T0 = dt.datetime(2024, 3, 1, 23, 0, tzinfo=dt.UTC)  # an hour before a UTC day ends
PARIS = Address(line1="1 Rue de Rivoli", city="Paris", postal_code="75001", country="FR")
SECRET = b"property-test-cursor-secret"
UNKNOWN = 10_000  # ids from here on exist nowhere

SQLITE_EXAMPLES = 15
POSTGRES_EXAMPLES = 3


# -- the commands, as data ----------------------------------------------------------------


@dataclass(frozen=True)
class Tick:
    """The clock moves on (0 keeps orders at the same instant: ties by id)."""

    seconds: int


@dataclass(frozen=True)
class Register:
    name: str
    mailbox: int  # a few mailboxes only: some registrations find their email taken


@dataclass(frozen=True)
class Add:
    price: Decimal


@dataclass(frozen=True)
class Order:
    user: int  # an index into the users registered so far; past the end: an unknown user
    lines: tuple[tuple[int, int], ...]  # (product index, quantity); may be empty or repeat


@dataclass(frozen=True)
class Burst:
    """Several orders in a row by one user: long enough lists to page through."""

    user: int
    product: int
    count: int


@dataclass(frozen=True)
class Move:
    """Any status for any order: mostly illegal moves, and unknown orders."""

    order: int  # an index into the orders placed so far; past the end: an unknown order
    status: OrderStatus


@dataclass(frozen=True)
class Advance:
    """A legal move of a placed order (confirm, ship, deliver or cancel), if it has one."""

    order: int  # which of the orders placed so far (modulo their number)
    pick: int  # which of the legal next statuses


Step = Tick | Register | Add | Order | Burst | Move | Advance

PREAMBLE: tuple[Step, ...] = (
    Register("Ada", 0),
    Register("Bob", 0),
    Register("Cyd", 0),
    Add(Decimal("1.99")),
    Add(Decimal("12.50")),
    Add(Decimal("99999.99")),  # the highest price: large totals, still exact to the cent
)
"""Every history starts here, so that most generated orders are valid."""

# Indices past the preamble's three users and products name unknown ones, until a
# generated registration or product fills them.
_user = st.integers(min_value=0, max_value=3)
_product = st.integers(min_value=0, max_value=3)
_order = st.integers(min_value=0, max_value=40)
_lines = st.lists(
    st.tuples(_product, st.sampled_from([1, 1, 2, 3, 7, 1_000])),
    min_size=1,
    max_size=3,
    unique_by=lambda line: line[0],
)
# Empty, a product twice, no units: refused by the command's validation.
_bad_lines = st.lists(st.tuples(_product, st.integers(0, 2)), max_size=3)

_ticks = st.builds(Tick, st.sampled_from([0, 1, 3_600, 13 * 3_600, 2 * 86_400]))
_registrations = st.builds(Register, st.sampled_from(["Ada", "Bob", "Dee"]), st.integers(0, 2))
_products = st.builds(
    Add, st.decimals(min_value=Decimal("0.01"), max_value=Decimal("99999.99"), places=2)
)
_orders = st.builds(Order, _user, _lines.map(tuple))
_bad_orders = st.builds(Order, _user, _bad_lines.map(tuple))
_bursts = st.builds(Burst, _user, _product, st.integers(1, 23))
_moves = st.builds(Move, _order, st.sampled_from(list(OrderStatus)))
_advances = st.builds(Advance, _order, st.integers(0, 1))
steps = st.lists(
    # A strategy listed twice is drawn twice as often.
    st.sampled_from(
        [
            _ticks,
            _ticks,
            _registrations,
            _products,
            _orders,
            _orders,
            _orders,
            _bad_orders,
            _bursts,
            _moves,
            _advances,
            _advances,
            _advances,
            _advances,
        ]
    ).flatmap(lambda step: step),
    min_size=15,  # long enough for orders to be placed, then moved on
    max_size=40,
)


class History:
    """Runs steps through a mediator, mapping indices to the ids the commands returned."""

    def __init__(self, send: Callable[[Any], Any], clock: Callable[[int], None]) -> None:
        self.send = send
        self.tick = clock
        self.users: list[UserId] = []
        self.products: list[ProductId] = []
        self.orders: list[OrderId] = []
        self.statuses: dict[OrderId, OrderStatus] = {}

    def run(self, step: Step) -> None:
        # Refused commands change nothing: unknown ids, illegal moves, a bad request shape.
        with contextlib.suppress(OrderError, ValidationError):
            self._run(step)

    def _run(self, step: Step) -> None:
        match step:
            case Tick(seconds):
                self.tick(seconds)
            case Register(name, mailbox):
                email = f"{name.lower()}.{mailbox}@example.com"
                self.users.append(self.send(RegisterUser(name=name, email=email)))
            case Add(price):
                self.products.append(self.send(AddProduct(name=f"P{price}", price=price)))
            case Order(user, lines):
                items = tuple(
                    OrderLine(product_id=self._id(self.products, p), quantity=q) for p, q in lines
                )
                command = CreateOrder(
                    user_id=self._id(self.users, user), items=items, shipping_address=PARIS
                )
                order_id = self.send(command)
                self.orders.append(order_id)
                self.statuses[order_id] = OrderStatus.PENDING
            case Burst(user, product, count):
                for _ in range(count):
                    self._run(Order(user, ((product, 1),)))
            case Move(order, status):
                self._move(self._id(self.orders, order), status)
            case Advance(order, pick) if self.orders:
                order_id = self.orders[order % len(self.orders)]
                current = self.statuses[order_id]
                legal = [status for status in OrderStatus if can_transition(current, status)]
                if legal:
                    self._move(order_id, legal[pick % len(legal)])

    def _move(self, order_id: OrderId, status: OrderStatus) -> None:
        self.send(UpdateOrderStatus(order_id=order_id, status=status))
        self.statuses[order_id] = status

    @staticmethod
    def _id(known: list[Any], index: int) -> Any:
        return known[index] if index < len(known) else UNKNOWN + index


# -- the app under one strategy ------------------------------------------------------------


def merged(*registries: Registry) -> Registry:
    registry = Registry()
    for source in registries:
        for registration in source.registrations():
            registry.register(registration.spec.message_type, registration.spec.handler)
    return registry


def check(write: sa.Engine, read: sa.Engine, strategy: Strategy, history: list[Step]) -> None:
    """Run ``history`` under ``strategy``, catch up, and compare every answer with the baseline."""
    write_schema.create_write_model(write)
    now = [T0]
    log = EventLog(event_types)
    engine = ProjectionEngine(
        event_log=log,
        write_engine=write,
        read_engine=read,
        projections=build_projections(dict.fromkeys(PROJECTION_NAMES, strategy)),
        write_metadata=write_schema.metadata,
    )
    engine.setup()
    cursors = CursorCodec(SECRET)
    reader = ReadDatabase(write if strategy is Strategy.INLINE else read)
    writer_reader = ReadDatabase(write)
    resolver = dependencies(lambda: now[0])
    resolver["reader"] = reader
    resolver["cursors"] = cursors
    mediator = Mediator(
        merged(write_registry, read_registry),
        middleware=[
            ConsistencyMiddleware(engine),
            ProjectionMiddleware(engine),  # no worker: async projections wait for run_once
            TransactionMiddleware(sessionmaker(write), log, after_append=[engine.apply_inline]),
        ],
        resolver=resolver,
    )
    baseline = Mediator(
        baseline_registry,
        resolver=Dependencies({"writer_reader": writer_reader, "cursors": cursors}),
    )

    def tick(seconds: int) -> None:
        now[0] += dt.timedelta(seconds=seconds)

    try:
        commands = History(mediator.send, tick)
        for step in (*PREAMBLE, *history):
            commands.run(step)
        engine.run_once()  # catch up (only the async strategy has anything left to do)
        assert all(s.lag_events == 0 and s.state == "running" for s in engine.status())

        for user_id in [*dict.fromkeys(commands.users), UserId(UNKNOWN)]:
            query = ListUserOrders(user_id=user_id)
            while True:
                page = mediator.ask(query)
                assert_identical(
                    page, baseline.ask(query), f"user {user_id}, cursor {query.cursor}"
                )
                if page.next_cursor is None:
                    break
                query = ListUserOrders(user_id=user_id, cursor=page.next_cursor)

        for order_id in [*commands.orders, OrderId(UNKNOWN)]:
            query = GetOrderDetail(order_id=order_id)
            assert_identical(mediator.ask(query), baseline.ask(query), f"order {order_id}")

        everything = GetDailyAnalytics(start=T0.date(), end=now[0].date())
        assert_identical(mediator.ask(everything), baseline.ask(everything))
        last_day = GetDailyAnalytics(start=now[0].date(), end=now[0].date())
        assert_identical(mediator.ask(last_day), baseline.ask(last_day))
    finally:
        reader.close()
        writer_reader.close()
        engine.close()


_strategies = pytest.mark.parametrize(
    "strategy", list(Strategy), ids=lambda strategy: strategy.value
)


@_strategies
@settings(max_examples=SQLITE_EXAMPLES, deadline=None)
@given(history=steps)
def test_read_models_match_the_baseline_on_sqlite(strategy: Strategy, history: list[Step]) -> None:
    with tempfile.TemporaryDirectory() as directory:
        write = sqlite_engine(Path(directory) / "write.db")
        read = sqlite_engine(Path(directory) / "read.db")
        try:
            check(write, read, strategy, history)
        finally:
            write.dispose()
            read.dispose()


@pytest.fixture
def postgres(postgres_database: Database) -> Iterator[sa.Engine]:
    engine = sa.create_engine(
        postgres_database.sync_url, connect_args={"options": "-c timezone=Asia/Tokyo"}
    )
    yield engine
    engine.dispose()


_every_table = (read_metadata, projection_metadata, write_schema.metadata, cqrs_eventlog.metadata)


@_strategies
@settings(
    max_examples=POSTGRES_EXAMPLES,
    deadline=None,
    # One database for the test; each example drops and recreates every table in it.
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(history=steps)
def test_read_models_match_the_baseline_on_postgres(
    postgres: sa.Engine, strategy: Strategy, history: list[Step]
) -> None:
    for metadata in _every_table:
        metadata.drop_all(postgres)
    check(postgres, postgres, strategy, history)
