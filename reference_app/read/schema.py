"""The read models: one denormalized table per question, in their own metadata.

Each table is shaped like the answer it serves, so a query reads it without a join:

- ``order_summary``: one row per order, holding exactly the fields of a list item. The
  ``(user_id, placed_at desc, order_id desc)`` index serves a page of a user's orders, newest
  first, straight off the index; it also holds the list item's other columns, so a page never
  reads the table: it is a covering index. A user's orders are scattered over the table (in
  order id order, among everyone's); in the index they sit side by side, so a page of 21 rows
  reads one or two index pages instead of ~21 table pages. Measured at 100k orders on
  SQLite, the page query (with its JSON) takes 31 us instead of 53 us; the index takes 7.5
  MB instead of 4.2 (the table: 7.1 MB), and a status change rewrites the order's index
  entry.
- ``order_detail``: one row per order whose ``document`` is the whole
  :class:`~reference_app.views.OrderDetail` as JSON text, so a detail is one primary-key read
  and one decode: on SQLite at 100k orders, ~10 us against ~110 us for the baseline's three
  statements over the order, its lines and its history. The document is never queried
  inside, so it is plain text rather than ``JSON``/``JSONB``: the read path decodes the
  text straight into the views in one pass (:func:`reference_app.views.decoder`), where a
  ``JSONB`` value would first come back as Python dicts and lists.
- ``order_analytics``: one row per day (UTC) and status, holding the order count and revenue
  of the orders placed that day that are now in that status. On SQLite it is a ``WITHOUT
  ROWID`` table, clustered on its primary key ``(day, status)``: a range of days is one
  contiguous scan of the table's own b-tree, not a scan of the key's index plus a lookup of
  every row (30 days: 53 us instead of 59 us at 100k orders). Other databases ignore the
  option. Its ``stat_json`` column is the bucket's :class:`~reference_app.views.DailyStat`
  as JSON text, a stored generated column that the database computes on every write
  (projections and seeds never set it). The SQLite analytics query joins these texts
  instead of building each object per query: 30 days take ~17 us of SQL instead of ~52 us.

The tables are never shared with the write model (:mod:`reference_app.write.schema`): by
default they live in their own database (the ``inline`` strategy puts them beside the write
model's tables, still as tables of their own).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement

from reference_app.sqltypes import UtcDateTime
from reference_app.write.domain import OrderStatus

__all__ = [
    "create_read_model",
    "order_analytics",
    "order_detail",
    "order_summary",
    "read_metadata",
]

read_metadata = sa.MetaData(
    naming_convention={"pk": "pk_%(table_name)s", "ix": "ix_%(table_name)s_%(column_0_name)s"}
)
"""The read models' tables (the projections' checkpoints are in cqrs_kit's own metadata)."""

_Money = sa.Numeric(12, 2)
# A day's revenue sums many orders: the largest valid order alone (50 lines of 1,000 units at
# 99,999.99) is close to the Numeric(12, 2) limit, so the sum gets room to grow.
_Revenue = sa.Numeric(18, 2)
# Statuses are stored as their values ("pending") and read back as OrderStatus members.
_Status = sa.Enum(
    OrderStatus,
    native_enum=False,
    length=20,
    values_callable=lambda statuses: [status.value for status in statuses],
)

order_summary = sa.Table(
    "order_summary",
    read_metadata,
    sa.Column("order_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("user_id", sa.Integer, nullable=False),
    sa.Column("status", _Status, nullable=False),
    sa.Column("customer_name", sa.String(200), nullable=False),
    sa.Column("total", _Money, nullable=False),
    sa.Column("item_count", sa.Integer, nullable=False),
    sa.Column("placed_at", UtcDateTime, nullable=False),
)
sa.Index(
    "ix_order_summary_user_placed",
    order_summary.c.user_id,
    order_summary.c.placed_at.desc(),
    order_summary.c.order_id.desc(),
    # Covering: the rest of a list item, so that a page is read from the index alone. (Key
    # columns rather than PostgreSQL's INCLUDE: SQLite has no INCLUDE, and one definition
    # serves both.)
    order_summary.c.status,
    order_summary.c.customer_name,
    order_summary.c.total,
    order_summary.c.item_count,
)

order_detail = sa.Table(
    "order_detail",
    read_metadata,
    sa.Column("order_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("user_id", sa.Integer, nullable=False),
    sa.Column("document", sa.Text, nullable=False),
)


class _DailyStatJson(ColumnElement[str]):
    """A bucket as the JSON text of its :class:`~reference_app.views.DailyStat`.

    The SQLite read path concatenates these instead of building each object per query:
    30 days' statement takes ~17 us instead of ~52 us (100k orders). The text is what
    ``json_object`` writes, amounts with two places (``printf``), so that the views' fast
    amount path applies; PostgreSQL stores the same text (its handler does not read it).
    """

    inherit_cache = True
    type = sa.Text()


@compiles(_DailyStatJson, "sqlite")
def _daily_stat_json_sqlite(element: _DailyStatJson, compiler: Any, **kw: Any) -> str:
    return (
        "json_object('day', day, 'status', status, 'order_count', order_count,"
        " 'revenue', printf('%.2f', revenue))"
    )


@compiles(_DailyStatJson)
def _daily_stat_json_other(element: _DailyStatJson, compiler: Any, **kw: Any) -> str:
    # PostgreSQL (a generation expression must be immutable: json_build_object and
    # date::text are not, extract, lpad and numeric::text are); the same text as SQLite's.
    def part(field: str, width: int) -> str:
        return f"lpad(extract({field} from day)::int::text, {width}, '0')"

    return (
        '\'{"day":"\' || '
        + f"{part('year', 4)} || '-' || {part('month', 2)} || '-' || {part('day', 2)}"
        + ' || \'","status":"\' || status || \'","order_count":\' || order_count::text'
        + " || ',\"revenue\":\"' || revenue::text || '\"}'"
    )


order_analytics = sa.Table(
    "order_analytics",
    read_metadata,
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("status", _Status, primary_key=True),
    sa.Column("order_count", sa.Integer, nullable=False),
    sa.Column("revenue", _Revenue, nullable=False),
    # Generated and stored by the database on every write: projections and seeds never set it.
    sa.Column("stat_json", sa.Text, sa.Computed(_DailyStatJson(), persisted=True)),
    sqlite_with_rowid=False,  # clustered on (day, status): a range of days is one scan
)


def create_read_model(engine: sa.Engine) -> None:
    """Create the read models' tables, if they do not exist.

    :meth:`cqrs_kit.projections.ProjectionEngine.setup` creates them too, with the
    projections' checkpoints; this is for tools that only need the tables.

    Args:
        engine: The read database (or, for ``inline`` projections, the write database).
    """
    read_metadata.create_all(engine)
