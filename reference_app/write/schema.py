"""The write model: normalized tables, in their own metadata.

``orders`` holds one row per order with its current status; ``order_items`` the lines, with
the unit price captured when the order was placed (later price changes do not touch placed
orders); ``order_status_history`` every status an order has had, the first row going from
nothing to ``pending``. API tokens are stored as SHA-256 hashes, never in plain text.

Money is ``Numeric(12, 2)``; timestamps are :class:`~reference_app.sqltypes.UtcDateTime`.
The event log lives in cqrs_kit's own metadata: create both (see :func:`create_write_model`).
"""

from __future__ import annotations

import sqlalchemy as sa

from cqrs_kit.eventlog import create_event_log
from reference_app.sqltypes import UtcDateTime
from reference_app.write.domain import OrderStatus

__all__ = [
    "api_tokens",
    "create_write_model",
    "metadata",
    "order_items",
    "order_status_history",
    "orders",
    "products",
    "users",
]

metadata = sa.MetaData(
    naming_convention={
        "pk": "pk_%(table_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ix": "ix_%(table_name)s_%(column_0_name)s",
    }
)
"""The write model's tables (the event log is in ``cqrs_kit.eventlog.metadata``)."""

_Money = sa.Numeric(12, 2)
# Statuses are stored as their values ("pending"), as plain strings, and read back as members.
_Status = sa.Enum(
    OrderStatus,
    native_enum=False,
    length=20,
    values_callable=lambda statuses: [status.value for status in statuses],
)

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("email", sa.String(254), nullable=False, unique=True),
    sa.Column("is_staff", sa.Boolean, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
)

products = sa.Table(
    "products",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("price", _Money, nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
)

orders = sa.Table(
    "orders",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("user_id", sa.ForeignKey(users.c.id), nullable=False),
    sa.Column("status", _Status, nullable=False),
    sa.Column("total", _Money, nullable=False),
    sa.Column("ship_line1", sa.String(200), nullable=False),
    sa.Column("ship_city", sa.String(200), nullable=False),
    sa.Column("ship_postal_code", sa.String(20), nullable=False),
    sa.Column("ship_country", sa.String(2), nullable=False),
    sa.Column("placed_at", UtcDateTime, nullable=False),
)
# A user's orders, newest first: the list query's keyset order, read straight off the index.
sa.Index("ix_orders_user_placed", orders.c.user_id, orders.c.placed_at.desc(), orders.c.id.desc())
# Orders placed in a date range: the daily analytics query.
sa.Index("ix_orders_placed_at", orders.c.placed_at)

order_items = sa.Table(
    "order_items",
    metadata,
    sa.Column("order_id", sa.ForeignKey(orders.c.id), primary_key=True),
    sa.Column("product_id", sa.ForeignKey(products.c.id), primary_key=True),
    sa.Column("quantity", sa.Integer, nullable=False),
    sa.Column("unit_price", _Money, nullable=False),
)

order_status_history = sa.Table(
    "order_status_history",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("order_id", sa.ForeignKey(orders.c.id), nullable=False, index=True),
    sa.Column("from_status", _Status, nullable=True),
    sa.Column("to_status", _Status, nullable=False),
    sa.Column("note", sa.String(500), nullable=True),
    sa.Column("changed_at", UtcDateTime, nullable=False),
)

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.ForeignKey(users.c.id), nullable=False, index=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
)


def create_write_model(engine: sa.Engine) -> None:
    """Create the write model's tables and the event log, if they do not exist.

    Args:
        engine: The write database.
    """
    metadata.create_all(engine)
    create_event_log(engine)
