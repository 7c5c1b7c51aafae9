"""Guide: adding cqrs_kit to an existing synchronous web app, one view at a time.

Shown in docs/guides/existing-sync-app.md; tests/docs/test_guides.py drives its views.
The "framework" is three plain pieces that stand in for Flask or Django: a ``Request``, a
``Response`` and view functions that take one and return the other, with an extension
object set up at start-up (like ``flask_sqlalchemy.SQLAlchemy`` and its ``init_app``).
Run it with ``python docs/examples/guide_sync_app.py`` to see a few requests go through.
"""

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session, sessionmaker

from cqrs_kit import Command, Dependencies, Event, EventTypes, Mediator, Query, Registry
from cqrs_kit.eventlog import EventLog, create_event_log
from cqrs_kit.middleware.transaction import SqlAlchemyUnitOfWork, TransactionMiddleware
from cqrs_kit.persistence import sqlite_engine

# -- the app as it is: its web layer and its tables ---------------------------------------


@dataclass(frozen=True)
class Request:
    """What the framework hands a view."""

    user_id: int
    json: dict[str, Any] = field(default_factory=dict)
    args: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Response:
    """What a view returns."""

    status: int
    body: Any = None


metadata = sa.MetaData()  # the app's existing schema; cqrs_kit adds only its event_log
products = sa.Table(
    "products",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("stock", sa.Integer, nullable=False),
)
orders = sa.Table(
    "orders",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("user_id", sa.Integer, nullable=False),
    sa.Column("product_id", sa.ForeignKey("products.id"), nullable=False),
    sa.Column("quantity", sa.Integer, nullable=False),
)


# --8<-- [start:before]
def place_order_before(request: Request, engine: sa.Engine) -> Response:
    """The view as it was: parsing, rules, SQL and the transaction, all in one place."""
    product_id, quantity = int(request.json["product_id"]), int(request.json["quantity"])
    with Session(engine) as session, session.begin():
        stock = session.execute(
            sa.select(products.c.stock).where(products.c.id == product_id)
        ).scalar_one()
        if quantity > stock:
            return Response(409, {"error": "out of stock"})
        session.execute(
            sa.update(products)
            .where(products.c.id == product_id)
            .values(stock=products.c.stock - quantity)
        )
        order_id = session.execute(
            sa.insert(orders)
            .values(user_id=request.user_id, product_id=product_id, quantity=quantity)
            .returning(orders.c.id)
        ).scalar_one()
    return Response(201, {"order_id": order_id})


# --8<-- [end:before]


# -- step 1: messages and a handler --------------------------------------------------------

# --8<-- [start:messages]
event_types = EventTypes()


@event_types.define("order.placed", stream_type="order")
class OrderPlaced(Event):
    """An order was placed."""

    order_id: int
    user_id: int
    product_id: int
    quantity: int


class PlaceOrder(Command[int]):
    """Place an order for one product; ``send()`` returns the order id."""

    user_id: int
    product_id: int
    quantity: int


class OrderView(BaseModel):
    """An order, as the API shows it."""

    order_id: int
    product: str
    quantity: int


class GetOrder(Query[OrderView | None]):
    """One of the user's orders, or ``None``."""

    user_id: int
    order_id: int


class OutOfStockError(Exception):
    """Not enough stock for the order (a domain error: the view maps it to 409)."""


# --8<-- [end:messages]

# --8<-- [start:handlers]
registry = Registry()


@registry.handles(PlaceOrder)
def place_order(command: PlaceOrder, *, uow: SqlAlchemyUnitOfWork) -> int:
    """The old view's body, minus HTTP and minus the transaction (the middleware owns it)."""
    session = uow.session
    stock = session.execute(
        sa.select(products.c.stock).where(products.c.id == command.product_id)
    ).scalar_one()
    if command.quantity > stock:
        msg = f"only {stock} left of product {command.product_id}"
        raise OutOfStockError(msg)
    session.execute(
        sa.update(products)
        .where(products.c.id == command.product_id)
        .values(stock=products.c.stock - command.quantity)
    )
    order_id = session.execute(
        sa.insert(orders)
        .values(user_id=command.user_id, product_id=command.product_id, quantity=command.quantity)
        .returning(orders.c.id)
    ).scalar_one()
    placed = OrderPlaced(
        order_id=order_id,
        user_id=command.user_id,
        product_id=command.product_id,
        quantity=command.quantity,
    )
    uow.record(placed, stream_id=order_id)  # commits with the order, or not at all
    return int(order_id)


@registry.handles(GetOrder)
def get_order(query: GetOrder, *, engine: sa.Engine) -> OrderView | None:
    """The same SQL the old view ran, behind a query: the seam for a read model later."""
    select = (
        sa.select(
            orders.c.id.label("order_id"), products.c.name.label("product"), orders.c.quantity
        )
        .join(products, products.c.id == orders.c.product_id)
        .where(orders.c.id == query.order_id, orders.c.user_id == query.user_id)
    )
    with engine.connect() as connection:
        row = connection.execute(select).first()
    return None if row is None else OrderView.model_validate(row._mapping)


# --8<-- [end:handlers]


# -- step 2: one mediator, built at start-up -----------------------------------------------


# --8<-- [start:extension]
class Cqrs:
    """The app's mediator, made once at start-up (``init_app``) and shared by every view.

    In Flask, call ``cqrs.init_app(engine)`` in the app factory; in Django, in your
    ``AppConfig.ready()``. Views import ``cqrs`` and use ``cqrs.mediator``.
    """

    def __init__(self) -> None:
        """Create the extension; it has no mediator until :meth:`init_app`."""
        self._mediator: Mediator | None = None

    def init_app(self, engine: sa.Engine) -> None:
        """Build the mediator on the app's own engine and session factory."""
        self._mediator = Mediator(
            registry,
            middleware=[TransactionMiddleware(sessionmaker(engine), EventLog(event_types))],
            resolver=Dependencies({"engine": engine}),
        )
        self._mediator.freeze()  # check every handler and dependency now, not on a request

    @property
    def mediator(self) -> Mediator:
        """The mediator; a clear error if ``init_app`` was never called."""
        if self._mediator is None:
            msg = "call cqrs.init_app(engine) at start-up"
            raise RuntimeError(msg)
        return self._mediator


cqrs = Cqrs()
# --8<-- [end:extension]


# -- step 3: thin views ----------------------------------------------------------------------


# --8<-- [start:views]
def place_order_view(request: Request) -> Response:
    """POST /orders: parse, send, answer. No SQL, no transaction, no business rule."""
    try:
        command = PlaceOrder(user_id=request.user_id, **request.json)
    except ValidationError as error:
        return Response(422, {"errors": error.errors(include_url=False, include_context=False)})
    try:
        order_id = cqrs.mediator.send(command, correlation_id=request.headers.get("X-Request-ID"))
    except OutOfStockError as error:
        return Response(409, {"error": str(error)})
    return Response(201, {"order_id": order_id})


def get_order_view(request: Request, order_id: int) -> Response:
    """GET /orders/<order_id>: one of the caller's own orders."""
    order = cqrs.mediator.ask(GetOrder(user_id=request.user_id, order_id=order_id))
    if order is None:
        return Response(404, {"error": "not found"})
    return Response(200, order.model_dump())


# --8<-- [end:views]


def main(directory: Path) -> None:
    """Start the app, then serve a few requests."""
    engine = sqlite_engine(directory / "app.db")
    metadata.create_all(engine)
    create_event_log(engine)  # the one table cqrs_kit adds to the app's database
    with engine.begin() as connection:
        connection.execute(sa.insert(products).values(id=1, name="tea", stock=5))
    cqrs.init_app(engine)

    print(place_order_view(Request(user_id=7, json={"product_id": 1, "quantity": 2})))
    print(place_order_view(Request(user_id=7, json={"product_id": 1, "quantity": 9})))
    print(place_order_view(Request(user_id=7, json={"product_id": 1})).status)
    print(place_order_before(Request(user_id=8, json={"product_id": 1, "quantity": 1}), engine))
    print(get_order_view(Request(user_id=7), order_id=1))
    print(get_order_view(Request(user_id=8), order_id=1))
    engine.dispose()


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        main(Path(tmp))
