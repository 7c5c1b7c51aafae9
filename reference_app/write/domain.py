"""The orders domain: typed ids, money, addresses, the order status machine and its errors.

An order moves forward one step at a time, or is cancelled before it ships::

    pending -> confirmed -> shipped -> delivered
       |           |
       +-----------+--> cancelled

Every domain error derives from :class:`OrderError`, and from the builtin a caller would
already catch (attrs-style), so ``except LookupError`` keeps working::

    OrderError(Exception)
    ├── UnknownUserError(OrderError, LookupError)         .user_id
    ├── UnknownProductError(OrderError, LookupError)      .product_ids
    ├── UnknownOrderError(OrderError, LookupError)        .order_id
    ├── EmailTakenError(OrderError, ValueError)           .email
    └── IllegalTransitionError(OrderError, ValueError)    .from_status, .to_status

The shape of a request (an empty order, a duplicated line, an oversized order) is checked
earlier, by the command models in :mod:`reference_app.write.messages`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Annotated, NewType

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

__all__ = [
    "Address",
    "EmailTakenError",
    "IllegalTransitionError",
    "Money",
    "OrderError",
    "OrderId",
    "OrderStatus",
    "Price",
    "ProductId",
    "Text",
    "UnknownOrderError",
    "UnknownProductError",
    "UnknownUserError",
    "UserId",
    "can_transition",
    "check_transition",
]

UserId = NewType("UserId", int)
ProductId = NewType("ProductId", int)
OrderId = NewType("OrderId", int)

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
"""A name or an address line: surrounding blanks stripped, 1 to 200 characters."""

Money = Annotated[Decimal, Field(ge=0, decimal_places=2)]
"""An amount in the shop's currency, exact to the cent."""

Price = Annotated[Decimal, Field(gt=0, max_digits=7, decimal_places=2)]
"""A unit price, at most 99,999.99: so the largest valid order (50 lines of 1,000 units)
still fits the ``Numeric(12, 2)`` total column."""

_PostalCode = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20)]
_CountryCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]


class Address(BaseModel):
    """A shipping address.

    Attributes:
        line1: Street and number.
        city: City.
        postal_code: Postal code, as written locally.
        country: ISO 3166-1 alpha-2 country code, e.g. ``"FR"``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    line1: Text
    city: Text
    postal_code: _PostalCode
    country: _CountryCode


class OrderStatus(enum.StrEnum):
    """Where an order is in its life; stored and serialized as its value."""

    PENDING = "pending"
    CONFIRMED = "confirmed"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"


_NEXT: Mapping[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.PENDING: frozenset({OrderStatus.CONFIRMED, OrderStatus.CANCELLED}),
    OrderStatus.CONFIRMED: frozenset({OrderStatus.SHIPPED, OrderStatus.CANCELLED}),
    OrderStatus.SHIPPED: frozenset({OrderStatus.DELIVERED}),
    OrderStatus.DELIVERED: frozenset(),
    OrderStatus.CANCELLED: frozenset(),
}


def can_transition(from_status: OrderStatus, to_status: OrderStatus) -> bool:
    """Whether an order in ``from_status`` may move to ``to_status``.

    Args:
        from_status: The order's current status.
        to_status: The requested status.

    Returns:
        ``True`` for the five allowed moves, ``False`` for everything else (including
        staying in the same status).
    """
    return to_status in _NEXT[from_status]


def check_transition(from_status: OrderStatus, to_status: OrderStatus) -> None:
    """Refuse a move the status machine does not allow.

    Args:
        from_status: The order's current status.
        to_status: The requested status.

    Raises:
        IllegalTransitionError: ``to_status`` is not reachable from ``from_status``.
    """
    if not can_transition(from_status, to_status):
        raise IllegalTransitionError(from_status, to_status)


class OrderError(Exception):
    """Root of the orders domain errors: the request is well formed but cannot be done."""


class UnknownUserError(OrderError, LookupError):
    """No user has the given id.

    Attributes:
        user_id: The id that was looked up.
    """

    def __init__(self, user_id: UserId) -> None:
        """Name the missing user."""
        super().__init__(f"there is no user {user_id}")
        self.user_id = user_id


class UnknownProductError(OrderError, LookupError):
    """Some ordered products do not exist or are no longer sold (not active).

    Attributes:
        product_ids: The ids that cannot be ordered, ascending.
    """

    def __init__(self, product_ids: Iterable[ProductId]) -> None:
        """Name every product that cannot be ordered."""
        self.product_ids = tuple(sorted(product_ids))
        listed = ", ".join(map(str, self.product_ids))
        super().__init__(f"these products do not exist or are not sold: {listed}")


class UnknownOrderError(OrderError, LookupError):
    """No order has the given id.

    Attributes:
        order_id: The id that was looked up.
    """

    def __init__(self, order_id: OrderId) -> None:
        """Name the missing order."""
        super().__init__(f"there is no order {order_id}")
        self.order_id = order_id


class EmailTakenError(OrderError, ValueError):
    """Another user already registered with this email address.

    Attributes:
        email: The address.
    """

    def __init__(self, email: str) -> None:
        """Name the address."""
        super().__init__(f"a user with the email {email!r} already exists")
        self.email = email


class IllegalTransitionError(OrderError, ValueError):
    """The status machine does not allow this move.

    Attributes:
        from_status: The order's current status.
        to_status: The refused status.
    """

    def __init__(self, from_status: OrderStatus, to_status: OrderStatus) -> None:
        """Name the refused move and the allowed ones."""
        allowed = ", ".join(sorted(_NEXT[from_status])) or "none (it is final)"
        super().__init__(
            f"an order cannot go from {from_status} to {to_status}; from {from_status} "
            f"it can go to: {allowed}"
        )
        self.from_status = from_status
        self.to_status = to_status
