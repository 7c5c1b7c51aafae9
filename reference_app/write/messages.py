"""The write side's messages: the commands it accepts and the events it records.

Commands validate their own shape (pydantic), so a handler only meets well-formed requests.
An order has 1 to 50 lines, one per product, each of 1 to 1,000 units; a request outside
these bounds fails with a ``ValidationError`` whose error types a client can act on:
``empty_order``, ``duplicate_product`` and ``oversized_order``.

Events are registered in :data:`event_types` under stable names (``"order.created"``), the
names the event log keeps forever. They carry everything an event-driven projection needs,
so no projection has to read the write model back.
"""

from __future__ import annotations

from collections import Counter
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints
from pydantic_core import PydanticCustomError

from cqrs_kit import Command, Event, EventTypes
from reference_app.write.domain import (
    Address,
    Money,
    OrderId,
    OrderStatus,
    Price,
    ProductId,
    Text,
    UserId,
)

__all__ = [
    "MAX_LINE_QUANTITY",
    "MAX_ORDER_LINES",
    "AddProduct",
    "CreateOrder",
    "IssueApiToken",
    "OrderCreated",
    "OrderLine",
    "OrderStatusChanged",
    "OrderedItem",
    "ProductAdded",
    "RegisterUser",
    "UpdateOrderStatus",
    "UserRegistered",
    "event_types",
]

MAX_ORDER_LINES = 50
"""The most lines (distinct products) one order may have."""

MAX_LINE_QUANTITY = 1000
"""The most units of one product one order may have."""

_Email = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")
]
_Note = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


def _not_oversized(quantity: int) -> int:
    if quantity > MAX_LINE_QUANTITY:
        raise PydanticCustomError(
            "oversized_order",
            "an order has at most {max} units of one product, got {quantity}",
            {"max": MAX_LINE_QUANTITY, "quantity": quantity},
        )
    return quantity


_Quantity = Annotated[int, Field(ge=1), AfterValidator(_not_oversized)]


class OrderLine(BaseModel):
    """One line of an order request: how many units of which product.

    Attributes:
        product_id: The product.
        quantity: How many units, 1 to :data:`MAX_LINE_QUANTITY`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    product_id: ProductId
    quantity: _Quantity


def _valid_lines(lines: tuple[OrderLine, ...]) -> tuple[OrderLine, ...]:
    if not lines:
        raise PydanticCustomError("empty_order", "an order needs at least one line")
    if len(lines) > MAX_ORDER_LINES:
        raise PydanticCustomError(
            "oversized_order",
            "an order has at most {max} lines, got {count}",
            {"max": MAX_ORDER_LINES, "count": len(lines)},
        )
    counts = Counter(line.product_id for line in lines)
    repeated = sorted(product_id for product_id, count in counts.items() if count > 1)
    if repeated:
        raise PydanticCustomError(
            "duplicate_product",
            "products {product_ids} are on more than one line; order each product on one "
            "line, with the total quantity",
            {"product_ids": repeated},
        )
    return lines


# -- commands ------------------------------------------------------------------------------


class RegisterUser(Command[UserId]):
    """Register a customer (or a staff member); returns the new user's id.

    Attributes:
        name: Display name, shown on orders.
        email: Email address, unique among users.
        is_staff: Staff may see and update every order.
    """

    name: Text
    email: _Email
    is_staff: bool = False


class AddProduct(Command[ProductId]):
    """Add a product to the catalogue; returns the new product's id.

    Attributes:
        name: Product name.
        price: Unit price; orders capture it when they are placed.
    """

    name: Text
    price: Price


class IssueApiToken(Command[str]):
    """Issue an API token for a user; returns the token, the only time it is ever shown.

    Only its SHA-256 hash is stored (see :mod:`reference_app.write.tokens`).

    Attributes:
        user_id: The user the token authenticates.
    """

    user_id: UserId


class CreateOrder(Command[OrderId]):
    """Place an order at the current prices; returns the new order's id.

    Attributes:
        user_id: The customer.
        items: The lines: 1 to :data:`MAX_ORDER_LINES`, one per product.
        shipping_address: Where to ship it.
    """

    user_id: UserId
    items: Annotated[tuple[OrderLine, ...], AfterValidator(_valid_lines)]
    shipping_address: Address


class UpdateOrderStatus(Command[None]):
    """Move an order along its status machine (see :mod:`reference_app.write.domain`).

    Attributes:
        order_id: The order.
        status: The new status.
        note: Why, for the status history (e.g. a tracking number).
    """

    order_id: OrderId
    status: OrderStatus
    note: _Note | None = None


# -- events --------------------------------------------------------------------------------

event_types = EventTypes()
"""The write side's event types, by stable name; give it to the ``EventLog``."""


@event_types.define("user.registered", stream_type="user")
class UserRegistered(Event):
    """A user registered.

    Attributes:
        user_id: The new user's id.
        name: Display name.
        email: Email address.
        is_staff: Whether the user is staff.
        registered_at: When (UTC).
    """

    user_id: UserId
    name: str
    email: str
    is_staff: bool
    registered_at: AwareDatetime


@event_types.define("product.added", stream_type="product")
class ProductAdded(Event):
    """A product was added to the catalogue.

    Attributes:
        product_id: The new product's id.
        name: Product name.
        price: Unit price.
    """

    product_id: ProductId
    name: str
    price: Money


class OrderedItem(BaseModel):
    """One line of a placed order, as the order captured it.

    Attributes:
        product_id: The product.
        product_name: Its name when the order was placed.
        unit_price: Its price when the order was placed.
        quantity: How many units.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    product_id: ProductId
    product_name: str
    unit_price: Money
    quantity: int


@event_types.define("order.created", stream_type="order")
class OrderCreated(Event):
    """An order was placed. It carries the whole order, so projections need nothing else.

    Attributes:
        order_id: The new order's id.
        user_id: The customer.
        customer_name: The customer's name when the order was placed.
        items: The lines, by ascending product id.
        total: Sum of the lines' unit price times quantity.
        shipping_address: Where to ship it.
        status: Always ``pending``: where every order starts.
        placed_at: When (UTC).
    """

    order_id: OrderId
    user_id: UserId
    customer_name: str
    items: tuple[OrderedItem, ...]
    total: Money
    shipping_address: Address
    status: OrderStatus
    placed_at: AwareDatetime


@event_types.define("order.status_changed", stream_type="order")
class OrderStatusChanged(Event):
    """An order moved to a new status.

    ``placed_at`` and ``total`` are repeated from the order so that a projection bucketing
    orders by day (daily analytics) can move the order between status buckets on its own.

    Attributes:
        order_id: The order.
        from_status: Its status before.
        to_status: Its status now.
        note: Why, if the caller said.
        changed_at: When (UTC).
        placed_at: When the order was placed (UTC).
        total: The order's total.
    """

    order_id: OrderId
    from_status: OrderStatus
    to_status: OrderStatus
    note: str | None
    changed_at: AwareDatetime
    placed_at: AwareDatetime
    total: Money
