"""Command handlers: one function per command, writing through the unit of work.

Each handler takes the command and, as keyword dependencies, the unit of work of the
command's transaction (``uow``, supplied by ``TransactionMiddleware``) and a ``clock``. It
writes rows with SQLAlchemy Core statements built once, below, and records the events that
describe what changed; both commit together, or not at all. Wire them up with::

    mediator = Mediator(
        registry,
        middleware=[TransactionMiddleware(sessionmaker(engine), EventLog(event_types))],
        resolver=dependencies(),
    )
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal

import sqlalchemy as sa

from cqrs_kit import Dependencies, Registry
from cqrs_kit.middleware.transaction import SqlAlchemyUnitOfWork
from reference_app.write.domain import (
    EmailTakenError,
    OrderId,
    OrderStatus,
    ProductId,
    UnknownOrderError,
    UnknownProductError,
    UnknownUserError,
    UserId,
    check_transition,
)
from reference_app.write.messages import (
    AddProduct,
    CreateOrder,
    IssueApiToken,
    OrderCreated,
    OrderedItem,
    OrderStatusChanged,
    ProductAdded,
    RegisterUser,
    UpdateOrderStatus,
    UserRegistered,
)
from reference_app.write.schema import (
    api_tokens,
    order_items,
    order_status_history,
    orders,
    products,
    users,
)
from reference_app.write.tokens import hash_token, new_token

__all__ = ["Clock", "dependencies", "registry", "system_clock"]

Clock = Callable[[], dt.datetime]
"""Returns the current time, timezone-aware, in UTC."""


def system_clock() -> dt.datetime:
    """The real clock: now, in UTC."""
    return dt.datetime.now(dt.UTC)


def dependencies(clock: Clock = system_clock) -> Dependencies:
    """Return the resolver the handlers need: pass it to the ``Mediator``.

    ``uow`` needs no entry: the default resolver fills a parameter annotated
    ``SqlAlchemyUnitOfWork`` from the running transaction. ``clock`` has no such default,
    so it is given here.

    Args:
        clock: The time source; tests and the seeder pass one they control.

    Returns:
        A resolver with the ``clock`` entry.
    """
    return Dependencies({"clock": clock})


registry = Registry()
"""The write side's command handlers."""

# -- statements, built once ----------------------------------------------------------------

_user_with_email = sa.select(users.c.id).where(users.c.email == sa.bindparam("email"))
_user_name = sa.select(users.c.name).where(users.c.id == sa.bindparam("user_id"))
_insert_user = sa.insert(users).returning(users.c.id)
_insert_product = sa.insert(products).returning(products.c.id)
_insert_token = sa.insert(api_tokens)
_products_for_sale = sa.select(products.c.id, products.c.name, products.c.price).where(
    products.c.id.in_(sa.bindparam("product_ids", expanding=True)),
    products.c.active.is_(True),
)
_insert_order = sa.insert(orders).returning(orders.c.id)
_insert_items = sa.insert(order_items)
_insert_history = sa.insert(order_status_history)
# FOR UPDATE serializes concurrent status changes of one order on PostgreSQL; SQLite
# ignores it (its writers are serialized already).
_order_for_update = (
    sa.select(orders.c.status, orders.c.total, orders.c.placed_at)
    .where(orders.c.id == sa.bindparam("order_id"))
    .with_for_update()
)
_set_status = (
    sa.update(orders)
    .where(orders.c.id == sa.bindparam("order_id"))
    .values(status=sa.bindparam("new_status"))
)

# -- handlers ------------------------------------------------------------------------------


@registry.handles(RegisterUser)
def register_user(command: RegisterUser, *, uow: SqlAlchemyUnitOfWork, clock: Clock) -> UserId:
    """Store a new user and record ``UserRegistered``.

    Raises:
        EmailTakenError: Another user has the email address.
    """
    session = uow.session
    # The unique index still guards a concurrent registration (as a PersistenceError).
    if session.execute(_user_with_email, {"email": command.email}).first() is not None:
        raise EmailTakenError(command.email)
    now = clock()
    user_id = UserId(
        session.execute(
            _insert_user,
            {
                "name": command.name,
                "email": command.email,
                "is_staff": command.is_staff,
                "created_at": now,
            },
        ).scalar_one()
    )
    uow.record(
        UserRegistered(
            user_id=user_id,
            name=command.name,
            email=command.email,
            is_staff=command.is_staff,
            registered_at=now,
        ),
        stream_id=user_id,
    )
    return user_id


@registry.handles(AddProduct)
def add_product(command: AddProduct, *, uow: SqlAlchemyUnitOfWork) -> ProductId:
    """Store a new, active product and record ``ProductAdded``."""
    product_id = ProductId(
        uow.session.execute(
            _insert_product, {"name": command.name, "price": command.price, "active": True}
        ).scalar_one()
    )
    uow.record(
        ProductAdded(product_id=product_id, name=command.name, price=command.price),
        stream_id=product_id,
    )
    return product_id


@registry.handles(IssueApiToken)
def issue_api_token(command: IssueApiToken, *, uow: SqlAlchemyUnitOfWork, clock: Clock) -> str:
    """Store the hash of a new token and return the token.

    No event is recorded: tokens are credentials, and the event log is read by every
    projection.

    Raises:
        UnknownUserError: The user does not exist.
    """
    session = uow.session
    if session.execute(_user_name, {"user_id": command.user_id}).first() is None:
        raise UnknownUserError(command.user_id)
    token = new_token()
    session.execute(
        _insert_token,
        {"token_hash": hash_token(token), "user_id": command.user_id, "created_at": clock()},
    )
    return token


@registry.handles(CreateOrder)
def create_order(command: CreateOrder, *, uow: SqlAlchemyUnitOfWork, clock: Clock) -> OrderId:
    """Place an order at the current prices and record ``OrderCreated``.

    The order, its lines and its first history row (from nothing to ``pending``) are
    written together. Lines are stored and reported by ascending product id.

    Raises:
        UnknownUserError: The user does not exist.
        UnknownProductError: Some products do not exist or are not active; names them all.
    """
    session = uow.session
    customer_name = session.execute(_user_name, {"user_id": command.user_id}).scalar_one_or_none()
    if customer_name is None:
        raise UnknownUserError(command.user_id)
    wanted = [line.product_id for line in command.items]
    for_sale = {row.id: row for row in session.execute(_products_for_sale, {"product_ids": wanted})}
    missing = set(wanted) - for_sale.keys()
    if missing:
        raise UnknownProductError(missing)

    items = tuple(
        OrderedItem(
            product_id=line.product_id,
            product_name=for_sale[line.product_id].name,
            unit_price=for_sale[line.product_id].price,
            quantity=line.quantity,
        )
        for line in sorted(command.items, key=lambda line: line.product_id)
    )
    total = sum((item.unit_price * item.quantity for item in items), start=Decimal(0))
    address = command.shipping_address
    placed_at = clock()
    order_id = OrderId(
        session.execute(
            _insert_order,
            {
                "user_id": command.user_id,
                "status": OrderStatus.PENDING,
                "total": total,
                "ship_line1": address.line1,
                "ship_city": address.city,
                "ship_postal_code": address.postal_code,
                "ship_country": address.country,
                "placed_at": placed_at,
            },
        ).scalar_one()
    )
    session.execute(
        _insert_items,
        [
            {
                "order_id": order_id,
                "product_id": item.product_id,
                "quantity": item.quantity,
                "unit_price": item.unit_price,
            }
            for item in items
        ],
    )
    session.execute(
        _insert_history,
        {
            "order_id": order_id,
            "from_status": None,
            "to_status": OrderStatus.PENDING,
            "note": None,
            "changed_at": placed_at,
        },
    )
    uow.record(
        OrderCreated(
            order_id=order_id,
            user_id=command.user_id,
            customer_name=customer_name,
            items=items,
            total=total,
            shipping_address=address,
            status=OrderStatus.PENDING,
            placed_at=placed_at,
        ),
        stream_id=order_id,
    )
    return order_id


@registry.handles(UpdateOrderStatus)
def update_order_status(
    command: UpdateOrderStatus, *, uow: SqlAlchemyUnitOfWork, clock: Clock
) -> None:
    """Move an order to a new status, add a history row and record ``OrderStatusChanged``.

    Raises:
        UnknownOrderError: The order does not exist.
        IllegalTransitionError: The status machine does not allow the move.
    """
    session = uow.session
    order = session.execute(_order_for_update, {"order_id": command.order_id}).first()
    if order is None:
        raise UnknownOrderError(command.order_id)
    current: OrderStatus = order.status
    check_transition(current, command.status)
    changed_at = clock()
    session.execute(_set_status, {"order_id": command.order_id, "new_status": command.status})
    session.execute(
        _insert_history,
        {
            "order_id": command.order_id,
            "from_status": current,
            "to_status": command.status,
            "note": command.note,
            "changed_at": changed_at,
        },
    )
    uow.record(
        OrderStatusChanged(
            order_id=command.order_id,
            from_status=current,
            to_status=command.status,
            note=command.note,
            changed_at=changed_at,
            placed_at=order.placed_at,
            total=order.total,
        ),
        stream_id=command.order_id,
    )
