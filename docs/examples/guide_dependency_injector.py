"""Guide: wiring handlers with dependency-injector.

Shown in docs/guides/dependency-injector.md; tests/docs/test_guides.py runs it and checks
what it prints. Run it with ``python docs/examples/guide_dependency_injector.py``: it works
in a SQLite file in a temporary directory and deletes it afterwards.

Command handlers are classes whose ``__init__`` parameters (a repository, the unit of work,
a clock) come from the container's providers of the same names. The repository writes
through the command's own session; queries get a session of their own, opened for one
dispatch and closed when it ends.
"""

import datetime as dt
import tempfile
from pathlib import Path

import sqlalchemy as sa
from dependency_injector import containers, providers
from pydantic import BaseModel
from sqlalchemy.orm import Session, sessionmaker

from cqrs_kit import (
    Command,
    Event,
    EventTypes,
    Mediator,
    Query,
    Registry,
    UnresolvableDependencyError,
)
from cqrs_kit.dependencies import unit_of_work_of
from cqrs_kit.eventlog import EventLog, create_event_log
from cqrs_kit.integrations.dependency_injector import (
    ContainerResolver,
    DispatchContextProvider,
    DispatchScoped,
)
from cqrs_kit.middleware.transaction import SqlAlchemyUnitOfWork, TransactionMiddleware
from cqrs_kit.persistence import sqlite_engine

metadata = sa.MetaData()
orders = sa.Table(
    "orders",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("sku", sa.String(50), nullable=False),
    sa.Column("placed_at", sa.DateTime(timezone=True), nullable=False),
)

event_types = EventTypes()


@event_types.define("order.placed", stream_type="order")
class OrderPlaced(Event):
    """An order was placed."""

    order_id: int
    sku: str


class PlaceOrder(Command[int]):
    """Place an order; ``send()`` returns its id."""

    sku: str


class OrderView(BaseModel):
    """An order."""

    order_id: int
    sku: str
    placed_at: dt.datetime


class GetOrder(Query[OrderView | None]):
    """One order, or ``None``."""

    order_id: int


# --8<-- [start:repository]
class SqlAlchemyOrders:
    """A repository: the app's own code, unaware of cqrs_kit. It writes through a session."""

    def __init__(self, session: Session) -> None:
        """Use ``session``; the caller owns its transaction."""
        self.session = session

    def add(self, sku: str, placed_at: dt.datetime) -> int:
        """Insert an order and return its id."""
        insert = sa.insert(orders).values(sku=sku, placed_at=placed_at).returning(orders.c.id)
        return int(self.session.execute(insert).scalar_one())


class SystemClock:
    """The real clock (tests override the provider with a fixed one)."""

    def now(self) -> dt.datetime:
        """Now, in UTC."""
        return dt.datetime.now(dt.UTC)


# --8<-- [end:repository]


# --8<-- [start:container]
class Container(containers.DeclarativeContainer):
    """The composition root: every object the handlers need, by name."""

    config = providers.Configuration()
    engine = providers.Singleton(sqlite_engine, config.database)
    session_factory = providers.Singleton(sessionmaker, bind=engine)
    event_log = providers.Singleton(EventLog, event_types)

    dispatch = DispatchContextProvider()  # the running dispatch's DispatchContext
    # The unit of work TransactionMiddleware opened for the running command, and its session.
    uow = providers.Factory(unit_of_work_of, dispatch)
    orders = providers.Factory(SqlAlchemyOrders, session=uow.provided.session)
    clock = providers.Singleton(SystemClock)

    # Queries open no transaction: one session per query dispatch, closed when it ends.
    read_session = DispatchScoped(Session, bind=engine)


# --8<-- [end:container]

# --8<-- [start:handlers]
registry = Registry()


@registry.handles(PlaceOrder)
class PlaceOrderHandler:
    """A class handler: built for every dispatch, its parameters supplied by name."""

    def __init__(
        self, orders: SqlAlchemyOrders, uow: SqlAlchemyUnitOfWork, clock: SystemClock
    ) -> None:
        """Take the repository, the unit of work and the clock from the container."""
        self.orders, self.uow, self.clock = orders, uow, clock

    def __call__(self, command: PlaceOrder) -> int:
        """Add the order through the repository and record its event."""
        order_id = self.orders.add(command.sku, self.clock.now())
        self.uow.record(OrderPlaced(order_id=order_id, sku=command.sku), stream_id=order_id)
        return order_id


@registry.handles(GetOrder)
def get_order(query: GetOrder, *, read_session: Session) -> OrderView | None:
    """A function handler works the same way: ``read_session`` is the provider's name."""
    row = read_session.execute(sa.select(orders).where(orders.c.id == query.order_id)).first()
    return None if row is None else OrderView(order_id=row.id, sku=row.sku, placed_at=row.placed_at)


# --8<-- [end:handlers]


class MisnamedHandler:
    """A handler whose parameter name matches no provider (see ``main``)."""

    def __init__(self, order_repo: SqlAlchemyOrders) -> None:
        """Take ``order_repo``: the container calls it ``orders``."""
        self.orders = order_repo

    def __call__(self, command: PlaceOrder) -> int:
        """Never runs: the registration fails."""
        return 0


# --8<-- [start:mediator]
def build_mediator(container: Container) -> Mediator:
    """Wire the mediator; a handler parameter without a provider fails here, at start-up."""
    transactions = TransactionMiddleware(container.session_factory(), container.event_log())
    return Mediator(registry, middleware=[transactions], resolver=ContainerResolver(container))


# --8<-- [end:mediator]


def main(directory: Path) -> None:
    """Start the container, place an order and read it back; then show a wiring mistake."""
    # --8<-- [start:main]
    container = Container()
    container.config.database.from_value(directory / "shop.db")
    metadata.create_all(container.engine())
    create_event_log(container.engine())

    mediator = build_mediator(container)
    order_id = mediator.send(PlaceOrder(sku="tea"))
    order = mediator.ask(GetOrder(order_id=order_id))
    print(f"order {order_id}: {order.sku if order else None}")
    # --8<-- [end:main]

    # --8<-- [start:override]
    class FixedClock(SystemClock):
        def now(self) -> dt.datetime:
            return dt.datetime(2030, 1, 2, 3, 4, tzinfo=dt.UTC)

    with container.clock.override(providers.Object(FixedClock())):  # e.g. in a test
        order_id = mediator.send(PlaceOrder(sku="cake"))
    order = mediator.ask(GetOrder(order_id=order_id))
    print(f"order {order_id}: {order.sku if order else None}, placed {order and order.placed_at}")
    # --8<-- [end:override]

    # --8<-- [start:mistake]
    try:
        Mediator(resolver=ContainerResolver(container)).register(PlaceOrder, MisnamedHandler)
    except UnresolvableDependencyError as error:
        print(f"UnresolvableDependencyError: {error}")
    # --8<-- [end:mistake]
    container.engine().dispose()


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        main(Path(tmp))
