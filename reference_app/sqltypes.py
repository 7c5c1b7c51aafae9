"""Column types the write and read models share.

SQLite has no time zones: its ``DATETIME`` keeps naive text, and silently drops an offset.
PostgreSQL's ``timestamptz`` keeps the instant but returns it in the session's time zone.
:class:`UtcDateTime` makes both behave the same: aware datetimes go in, they are stored as
UTC (naive UTC text on SQLite), and they come back aware, in UTC, on every database.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

__all__ = ["UtcDateTime"]


class UtcDateTime(sa.TypeDecorator[dt.datetime]):
    """A timezone-aware datetime, stored in UTC and read back in UTC on every database.

    Raises:
        ValueError: When binding a naive datetime (its time zone would be a guess).
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(
        self, value: dt.datetime | None, dialect: sa.Dialect
    ) -> dt.datetime | None:
        """Convert to UTC; naive UTC for SQLite, which cannot store an offset."""
        if value is None:
            return None
        if value.tzinfo is None:
            msg = f"naive datetime {value!r}: pass an aware one, e.g. datetime.now(UTC)"
            raise ValueError(msg)
        utc = value.astimezone(dt.UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(
        self, value: dt.datetime | None, dialect: sa.Dialect
    ) -> dt.datetime | None:
        """Return an aware datetime in UTC (naive values are UTC by construction)."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)
