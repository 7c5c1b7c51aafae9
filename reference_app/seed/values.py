"""Time and money as stored: generated values turned into what each database driver is given.

Values are generated as integers (microseconds since the epoch, cents, day numbers, UUID
bits) and formatted from cached fragments, since a seed formats millions of them.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal
from typing import Any, Protocol

from reference_app.seed.world import NOW, SPAN_DAYS

_US = 1_000_000
_DAY_US = 86_400 * _US
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_NOW_US = (NOW - _EPOCH) // dt.timedelta(microseconds=1)
_START_US = _NOW_US - SPAN_DAYS * _DAY_US
_HOUR_US = 3_600 * _US
# A v4 UUID from 128 random bits: clear the version and variant bits, then set them.
_UUID_MASK = ~((0xF000 << 64) | (0xC000 << 48)) & ((1 << 128) - 1)
_UUID_BITS = (0x4000 << 64) | (0x8000 << 48)


class _Clock:
    """Formats microseconds since the epoch (UTC) as text, from cached day and second strings.

    ``datetime`` arithmetic and ``isoformat`` cost microseconds per call, and a seed formats
    millions of timestamps.
    """

    __slots__ = ("_days", "_hms")

    def __init__(self) -> None:
        self._days: dict[int, str] = {}
        self._hms = [f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(86_400)]

    def day(self, day: int) -> str:
        """``YYYY-MM-DD`` of a day number (days since the epoch)."""
        text = self._days.get(day)
        if text is None:
            text = self._days[day] = (_EPOCH + dt.timedelta(days=day)).date().isoformat()
        return text

    def json(self, us: int) -> str:
        """Pydantic's JSON form of an aware UTC datetime (no fraction when it is zero)."""
        day, rest = divmod(us, _DAY_US)
        second, micro = divmod(rest, _US)
        if micro:
            return f"{self.day(day)}T{self._hms[second]}.{micro:06d}Z"
        return f"{self.day(day)}T{self._hms[second]}Z"

    def sql_and_json(self, us: int) -> tuple[str, str]:
        """SQLAlchemy's SQLite ``DATETIME`` text (``YYYY-MM-DD HH:MM:SS.ffffff``) and JSON."""
        day, rest = divmod(us, _DAY_US)
        second, micro = divmod(rest, _US)
        date, hms = self.day(day), self._hms[second]
        if micro:
            return f"{date} {hms}.{micro:06d}", f"{date}T{hms}.{micro:06d}Z"
        return f"{date} {hms}.000000", f"{date}T{hms}Z"


def _money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


class _Values(Protocol):
    """Turns generated values into what the database driver is given."""

    def stamp(self, us: int) -> tuple[Any, str]:
        """A time (microseconds since the epoch): its bound value, and its JSON text."""

    def money(self, cents: int) -> Any:
        """An amount in cents."""

    def date(self, day: int) -> Any:
        """A day (days since the epoch)."""

    def uuid(self, prefix: int, number: int) -> Any:
        """The UUID ``prefix | number``."""

    def json(self, text: str) -> Any:
        """A JSON column's value, from its text."""


class _SqliteValues:
    """What SQLAlchemy would bind on SQLite, so the raw driver stores the same values."""

    def __init__(self, clock: _Clock) -> None:
        self.stamp = clock.sql_and_json
        self.date = clock.day

    @staticmethod
    def money(cents: int) -> float:
        return cents / 100

    @staticmethod
    def uuid(prefix: int, number: int) -> str:
        return f"{prefix | number:032x}"

    @staticmethod
    def json(text: str) -> str:
        return text


class _CoreValues:
    """Python values, for SQLAlchemy Core to bind on any database."""

    def __init__(self, clock: _Clock) -> None:
        self._json = clock.json

    def stamp(self, us: int) -> tuple[dt.datetime, str]:
        return _EPOCH + dt.timedelta(microseconds=us), self._json(us)

    @staticmethod
    def money(cents: int) -> Decimal:
        return Decimal(cents).scaleb(-2)

    @staticmethod
    def date(day: int) -> dt.date:
        return (_EPOCH + dt.timedelta(days=day)).date()

    @staticmethod
    def uuid(prefix: int, number: int) -> uuid.UUID:
        return uuid.UUID(int=prefix | number)

    @staticmethod
    def json(text: str) -> Any:
        return json.loads(text)
