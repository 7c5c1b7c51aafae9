"""Seed the reference app with a large, deterministic dataset, fast.

Two entry points, one implementation:

- ``seed(write_engine, read_engine, *, orders, users=None, products=None, seed=0,
  progress=None, batch=10_000, projections=None, parallel=None)`` fills the databases
  behind two engines.
- ``seed_from_settings(settings, orders, users, products, seed, progress)`` does the same
  for the databases a :class:`reference_app.config.Settings` names, with its projection
  strategies (what the CLI's ``seed`` subcommand calls).

Both need *empty* databases (they create the tables when missing) and return a
:class:`SeedReport`. The same arguments always give the same data, whichever way it is
produced (batch size, one process or two).

**What is generated.** Users, products, orders with 1 to 5 lines and their status history;
every event the commands would have recorded, in the event log, with the payloads they
would have carried; and the read models those events project to, with each projection's
checkpoint at the log head. A projection rebuild reproduces the read models exactly (the
integration tests check it). Orders are placed over the 365 days before :data:`NOW`
(2025-01-01 UTC), in time order (order ids grow with ``placed_at``); each moves along the
status machine (confirmed, shipped, delivered; or cancelled) at realistic delays, as far as
:data:`NOW` allows, so recent orders are still pending. Some customers order far more than
others (the busiest of 5,000 has ~1,400 of 100,000 orders), so long order lists exist.
Each event's ``recorded_at`` is the moment it describes; an order's events are contiguous in
the log (positions follow orders, not wall-clock time across orders), which no projection
depends on. Event metadata is ``{"source": "seed", "command_type": ...}``.

**How it is fast.** A million ``CreateOrder`` commands followed by the projections would
take the better part of an hour. The seeder instead draws everything from one seeded
``random.Random``, builds rows and JSON payloads from cached fragments (no pydantic model,
no ``datetime`` per value), and bulk-inserts them with ``executemany``, one transaction per
``batch`` orders and database:

- On SQLite it writes through the ``sqlite3`` connection itself, with the values SQLAlchemy
  would store (UTC text timestamps, ``REAL`` money, hex UUIDs). The load runs with
  ``synchronous = OFF``, the rollback journal in memory instead of the WAL (which would
  write every page twice), foreign-key checks off and a 256 MiB page cache; the
  connection's settings and the file's journal mode are restored after. Elsewhere
  (PostgreSQL) it uses SQLAlchemy Core ``executemany`` with Python values; the tests check
  that both paths store the same values.
- When the write and read databases are two SQLite files, the work is split over two
  processes (from :data:`PARALLEL_FROM` orders by default; see ``parallel``): this one
  appends the event log and the order lines, while a second one (``python -c``, see
  :class:`_Part`) writes the read models and the rest of the write model, the latter into
  a scratch file that is copied into the write database at the end (SQLite copies the
  records of identically defined tables and indexes as they are). Both run the same random
  sequence from the same seed and each builds only its own tables' rows, so the data is
  the same as from one process, and no rows travel between processes. The shares are
  about even; the copy costs ~4% of the work.
- Secondary indexes are dropped for the load and rebuilt once at the end.
- Event ids are one random UUID whose last 48 bits count the events, so the unique index
  on ``event_id`` grows at its end.
- Read-model rows are computed alongside the write rows and inserted directly, instead of
  replaying the log through the projections.

A seed that fails part way leaves the batches it committed (and no secondary indexes): seed
new databases again.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import json
import os
import random
import sqlite3
import subprocess
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol, cast

import sqlalchemy as sa
from sqlalchemy.schema import CreateIndex

from cqrs_kit.eventlog import EventLog, event_log
from cqrs_kit.persistence import configure_sqlite
from cqrs_kit.projections import Projection, ProjectionEngine, Strategy
from cqrs_kit.projections.checkpoints import CheckpointStore
from reference_app.read.schema import order_analytics, order_detail, order_summary
from reference_app.write.messages import event_types
from reference_app.write.schema import (
    create_write_model,
    order_items,
    order_status_history,
    orders,
    products,
    users,
)
from reference_app.write.schema import (
    metadata as write_metadata,
)

if TYPE_CHECKING:
    from reference_app.config import Settings

__all__ = [
    "NOW",
    "PARALLEL_FROM",
    "SEED_VERSION",
    "Progress",
    "SeedError",
    "SeedReport",
    "default_products",
    "default_users",
    "seed",
    "seed_from_settings",
]

SEED_VERSION = 1
"""Bumped whenever the same arguments would generate different data (a cache key)."""

NOW = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
"""The seeded world's "now": orders are placed in the year before it, nothing happens after."""

SPAN_DAYS = 365
"""Orders are placed over this many days before :data:`NOW`."""

PARALLEL_FROM = 500_000
"""From this many orders, two SQLite files are seeded by two processes unless told otherwise.

Two processes spend ~0.5 s more CPU time to start and 15-30% more to run (each draws the
whole random sequence), which pays only while a second core is free. Measured on 2 cores:
100,000 orders in 4.8 s in one process and 3.8 s in two when idle, but 5.6 s and 6.3 to
7.3 s with another job busy on one core; 1,000,000 in 55 s and 42 s when idle, 66 s and
68 s with a core busy. So a seed of the usual benchmark sizes stays in one process on a
shared machine, and the big one gets both cores when it can.
"""

Progress = Callable[[int, int], None]
"""Called as ``progress(orders_done, orders_total)``: once at 0, then after each batch."""


class SeedError(RuntimeError):
    """The databases cannot be seeded (they hold data already, or the arguments are bad)."""


@dataclass(frozen=True, slots=True)
class SeedReport:
    """What a seeding run wrote.

    Attributes:
        users: Users.
        products: Products.
        orders: Orders.
        order_items: Order lines.
        status_changes: Status changes after placing (history rows beyond the first).
        events: Events appended to the log (its head, as the log was empty).
        seconds: Wall-clock time of the run.
    """

    users: int
    products: int
    orders: int
    order_items: int
    status_changes: int
    events: int
    seconds: float


def default_users(orders: int) -> int:
    """The number of users for ``orders`` orders when none is given (20 orders each)."""
    return max(1, orders // 20)


def default_products(orders: int) -> int:
    """The number of products for ``orders`` orders when none is given (50 to 5,000)."""
    return min(5_000, max(50, orders // 100))


# -- time and money, as stored ----------------------------------------------------------------

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


# -- writing ---------------------------------------------------------------------------------

_Rows = list[tuple[Any, ...]]


class _Sink(Protocol):
    """Where the generated rows of one database go."""

    values: _Values

    def insert(self, table: sa.Table, columns: Sequence[str], rows: _Rows) -> None:
        """Insert ``rows`` (tuples in ``columns`` order) in the current transaction."""

    def commit(self) -> None:
        """Commit the current transaction (the next insert begins another)."""

    def close(self, *, finish: bool) -> None:
        """Commit and build the secondary indexes (``finish``), or roll back; then release."""


_SQLITE_LOAD_PRAGMAS = {"synchronous": 0, "foreign_keys": 0, "cache_size": -262_144}  # 256 MiB
# A rollback journal in memory: a WAL would hold every page once more until checkpointed,
# and unlike journal_mode = OFF, ROLLBACK still works. Only the WAL mode is stored in the
# file, so it is set back after the load.
_SQLITE_LOAD_JOURNAL = "memory"
_SQLITE_PARAMETERS = 3_000  # per INSERT statement, at most (or SQLite's limit, if lower)


class _SqliteSink:
    """Bulk inserts through the ``sqlite3`` driver, in the generating thread.

    It tunes the connection for the load (no fsync, the journal in memory, no foreign-key
    checks, a 256 MiB page cache), builds the secondary indexes at the end, and restores the
    settings before giving the connection back to the pool. (A writer thread would overlap
    little: ``sqlite3`` takes the GIL back for every row, and gets it only when the
    generating thread lets go. The second core is used by processes instead.)
    """

    def __init__(self, engine: sa.Engine, clock: _Clock, tables: Sequence[sa.Table]) -> None:
        self.values: _Values = _SqliteValues(clock)
        self._quote = engine.dialect.identifier_preparer.quote
        self._dialect = engine.dialect
        self._tables = tables
        self._statements: dict[tuple[str, tuple[str, ...], int], str] = {}
        self._raw = engine.raw_connection()
        db = cast("sqlite3.Connection", self._raw.driver_connection)  # pysqlite's connection
        self._db = db
        self._parameters = min(
            _SQLITE_PARAMETERS, db.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
        )
        self._saved_isolation = db.isolation_level
        self._saved = {
            name: db.execute(f"PRAGMA {name}").fetchone()[0] for name in _SQLITE_LOAD_PRAGMAS
        }
        self._journal: str | None = None
        try:
            db.isolation_level = None  # transactions are begun and ended here, explicitly
            for name, value in _SQLITE_LOAD_PRAGMAS.items():
                db.execute(f"PRAGMA {name} = {value}")
            self._journal = _leave_journal(db)
        except BaseException:
            self._restore()
            raise

    def _statement(self, table: sa.Table, columns: Sequence[str], rows: int) -> str:
        key = (table.name, tuple(columns), rows)
        statement = self._statements.get(key)
        if statement is None:
            names = ", ".join(map(self._quote, columns))
            values = ", ".join([f"({', '.join('?' * len(columns))})"] * rows)
            # Quoted names from the table definitions; every value is bound.
            statement = f"INSERT INTO {self._quote(table.name)} ({names}) VALUES {values}"  # noqa: S608
            self._statements[key] = statement
        return statement

    def insert(self, table: sa.Table, columns: Sequence[str], rows: _Rows) -> None:
        # Many rows a statement: a quarter less work in SQLite than one row a statement (one
        # statement set-up, and one update of an AUTOINCREMENT counter, for all of them).
        if not rows:
            return
        if not self._db.in_transaction:
            self._db.execute("BEGIN IMMEDIATE")
        per = max(1, self._parameters // len(columns))
        whole = len(rows) - len(rows) % per
        chain = itertools.chain.from_iterable
        if whole:
            self._db.executemany(
                self._statement(table, columns, per),
                [list(chain(rows[start : start + per])) for start in range(0, whole, per)],
            )
        if whole < len(rows):
            self._db.execute(
                self._statement(table, columns, len(rows) - whole), list(chain(rows[whole:]))
            )

    def commit(self) -> None:
        if self._db.in_transaction:
            self._db.execute("COMMIT")

    def copy(self, path: str, tables: Sequence[sa.Table]) -> None:
        """Copy ``tables`` (empty here) with their indexes from the database file ``path``.

        The tables and their indexes are defined alike in both files, so SQLite copies the
        stored records as they are, b-tree by b-tree, instead of inserting them anew.
        """
        self.commit()
        self._db.execute("BEGIN IMMEDIATE")
        for statement in _index_ddl(self._dialect, tables):
            self._db.execute(statement)  # on empty tables: copied along with the rows
        self._db.execute("COMMIT")
        self._db.execute("ATTACH DATABASE ? AS seed_part", (path,))
        try:
            self._db.execute("BEGIN IMMEDIATE")
            for table in tables:
                name = self._quote(table.name)
                # Quoted names from the table definitions.
                self._db.execute(f"INSERT INTO main.{name} SELECT * FROM seed_part.{name}")  # noqa: S608
            self._db.execute("COMMIT")
        finally:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            self._db.execute("DETACH DATABASE seed_part")

    def close(self, *, finish: bool) -> None:
        try:
            if finish:
                self.commit()
                self._db.execute("BEGIN IMMEDIATE")
                for statement in _index_ddl(self._dialect, self._tables):
                    self._db.execute(statement)
                self._db.execute("COMMIT")
            elif self._db.in_transaction:
                self._db.execute("ROLLBACK")
        finally:
            self._restore()

    def _restore(self) -> None:
        db = self._db
        try:
            if db.in_transaction:
                db.execute("ROLLBACK")
            if self._journal is not None:
                db.execute(f"PRAGMA journal_mode = {self._journal}")
            for name, value in self._saved.items():
                db.execute(f"PRAGMA {name} = {int(value)}")
            db.isolation_level = self._saved_isolation
        finally:
            self._raw.close()


def _index_ddl(dialect: sa.Dialect, tables: Sequence[sa.Table]) -> list[str]:
    """``CREATE INDEX`` statements of ``tables``' secondary indexes, from their definitions."""
    return [
        str(CreateIndex(index, if_not_exists=True).compile(dialect=dialect))
        for table in tables
        for index in sorted(table.indexes, key=lambda index: str(index.name))
    ]


def _leave_journal(db: sqlite3.Connection) -> str | None:
    """Switch to the load's journal mode; the mode to restore, or ``None`` if it stays.

    Leaving WAL needs the only connection to the database: if another one is open, the load
    keeps the WAL (slower, as right).
    """
    mode = str(db.execute("PRAGMA journal_mode").fetchone()[0])
    if mode == _SQLITE_LOAD_JOURNAL:
        return None
    timeout = db.execute("PRAGMA busy_timeout").fetchone()[0]
    db.execute("PRAGMA busy_timeout = 0")  # fail at once rather than wait for the others
    try:
        db.execute(f"PRAGMA journal_mode = {_SQLITE_LOAD_JOURNAL}")
    except sqlite3.OperationalError:
        return None
    finally:
        db.execute(f"PRAGMA busy_timeout = {int(timeout)}")
    return mode


class _CoreSink:
    """Bulk inserts with SQLAlchemy Core ``executemany`` (any database)."""

    def __init__(self, engine: sa.Engine, clock: _Clock, tables: Sequence[sa.Table]) -> None:
        self.values: _Values = _CoreValues(clock)
        self._tables = tables
        self._connection = engine.connect()
        self._inserts: dict[str, sa.Insert] = {}

    def insert(self, table: sa.Table, columns: Sequence[str], rows: _Rows) -> None:
        if not rows:
            return
        statement = self._inserts.get(table.name)
        if statement is None:
            statement = self._inserts[table.name] = sa.insert(table)
        self._connection.execute(statement, [dict(zip(columns, row, strict=True)) for row in rows])

    def commit(self) -> None:
        self._connection.commit()

    def close(self, *, finish: bool) -> None:
        try:
            if finish:
                self._connection.commit()
                for table in self._tables:
                    for index in table.indexes:
                        index.create(self._connection, checkfirst=True)
                self._connection.commit()
        finally:
            self._connection.close()  # rolls back what was not committed


# -- the catalogue -----------------------------------------------------------------------------

_FIRST = (
    "Ada", "Alan", "Alice", "Amara", "Ana", "Ben", "Carla", "Chen", "Dana", "Diego", "Elif",
    "Emma", "Farid", "Grace", "Hana", "Hugo", "Ines", "Ivan", "Jonas", "Julia", "Kai", "Kofi",
    "Lea", "Liam", "Lina", "Marco", "Maya", "Mei", "Nadia", "Noah", "Omar", "Paula", "Quinn",
    "Rosa", "Sami", "Sara", "Tariq", "Uma", "Vera", "Yuki", "Zoe",
)  # fmt: skip
_LAST = (
    "Abbott", "Bauer", "Costa", "Dubois", "Eriksen", "Fischer", "Garcia", "Haddad", "Ito",
    "Jensen", "Kowalski", "Lopez", "Moreau", "Nakamura", "Novak", "Okafor", "Petrov", "Quinn",
    "Rossi", "Schmidt", "Silva", "Tanaka", "Urban", "Varga", "Weber", "Wong", "Yilmaz",
    "Zimmer",
)  # fmt: skip
_STREETS = (
    "High Street", "Station Road", "Rue de Rivoli", "Hauptstrasse", "Via Roma", "Calle Mayor",
    "Market Square", "Church Lane", "Park Avenue", "Mill Road", "Kungsgatan", "Nowy Swiat",
)  # fmt: skip
_CITIES = (
    ("London", "EC1A", "GB"), ("Paris", "75001", "FR"), ("Berlin", "10115", "DE"),
    ("Rome", "00184", "IT"), ("Madrid", "28013", "ES"), ("Lisbon", "1100", "PT"),
    ("Amsterdam", "1012", "NL"), ("Stockholm", "111 52", "SE"), ("Warsaw", "00-001", "PL"),
    ("Vienna", "1010", "AT"), ("Dublin", "D01", "IE"), ("Prague", "110 00", "CZ"),
)  # fmt: skip
_ADJECTIVES = (
    "Classic", "Compact", "Deluxe", "Eco", "Essential", "Folding", "Heavy", "Light", "Modern",
    "Mini", "Portable", "Premium", "Rustic", "Smart", "Solid", "Travel", "Vintage", "Wireless",
)  # fmt: skip
_MATERIALS = (
    "Bamboo", "Brass", "Canvas", "Ceramic", "Cotton", "Glass", "Leather", "Linen", "Oak",
    "Steel", "Wool",
)  # fmt: skip
_NOUNS = (
    "Backpack", "Blanket", "Bottle", "Bowl", "Candle", "Chair", "Clock", "Desk", "Kettle",
    "Lamp", "Mug", "Notebook", "Pan", "Pen", "Pillow", "Planter", "Scarf", "Shelf", "Speaker",
    "Stool", "Teapot", "Tray", "Umbrella", "Vase", "Wallet",
)  # fmt: skip

# Lines per order (1-5, mean 2.2) and units per line, as lookup tables indexed by random().
_LINES = [1] * 35 + [2] * 30 + [3] * 20 + [4] * 10 + [5] * 5
_UNITS = [1] * 60 + [2] * 25 + [3] * 10 + [4] * 3 + [5] * 2
_STAFF_SHARE = 0.002
_CANCELLED_PENDING = 0.05  # of orders are cancelled before being confirmed,
_CANCELLED_CONFIRMED = 0.08  # minus those, once confirmed; the rest are shipped
_CARRIERS = ("DHL", "UPS", "FedEx", "La Poste", "DPD")
_CANCEL_NOTES = ('"customer request"', '"payment failed"', "null", "null")


@dataclass(slots=True)
class _Customer:
    name: str
    address: tuple[str, str, str, str]
    created_json: str  # '"customer_name": "..."' fragment of OrderCreated
    created_address: str  # the address in OrderCreated (json.dumps spacing)
    detail_json: str  # the customer fragment of the OrderDetail document (compact)
    detail_address: str  # the address in the OrderDetail document (compact)


@dataclass(slots=True)
class _Product:
    cents: int
    created_prefix: str  # OrderCreated item, up to '"quantity": '
    detail_prefix: str  # OrderDetail item, up to '"quantity":'


def _plan(orders: int, users: int, products: int, batch: int) -> None:
    if orders < 0 or users < 1 or products < 1 or batch < 1:
        msg = (
            f"seed needs orders >= 0, users >= 1, products >= 1 and batch >= 1; got "
            f"orders={orders}, users={users}, products={products}, batch={batch}"
        )
        raise SeedError(msg)


class _Generator:
    """Draws the dataset from one ``random.Random`` and hands the rows to the sinks.

    ``sinks`` maps table names to where their rows go. It may hold a part of the dataset:
    the write model's tables, the event log, the read models, in any combination. The rows
    of the other parts are not built, but every random number is drawn all the same, so
    each part is the same as when everything is generated at once.
    """

    def __init__(self, rng: random.Random, sinks: dict[str, _Sink]) -> None:
        self.sinks = sinks
        self.values = (
            sinks.get("orders") or sinks.get("event_log") or sinks["order_summary"]
        ).values
        self.rng = rng
        self.customers: list[_Customer] = []
        self.products: list[_Product] = []
        self.events = 0
        self.items = 0
        self.changes = 0
        # Event ids: one random v4 UUID whose last 48 bits count the events. Unique, and
        # inserted in order, so the unique index on event_id grows at its end.
        self.id_prefix = rng.getrandbits(128) & _UUID_MASK & ~0xFFFF_FFFF_FFFF | _UUID_BITS

    def _insert(self, table: sa.Table, columns: Sequence[str], rows: _Rows) -> None:
        sink = self.sinks.get(table.name)
        if sink is not None:
            sink.insert(table, columns, rows)

    def _append(self, rows: _Rows) -> None:
        self._insert(event_log, _EVENT_COLUMNS, rows)
        self.events += len(rows)

    # -- users and products --------------------------------------------------------------

    def add_users(self, count: int) -> None:
        rng, values = self.rng, self.values
        user_rows: _Rows = []
        event_rows: _Rows = []
        meta = values.json('{"source": "seed", "command_type": "RegisterUser"}')
        for user_id in range(1, count + 1):
            first, last = rng.choice(_FIRST), rng.choice(_LAST)
            name = f"{first} {last}"
            email = f"{first}.{last}.{user_id}@example.com".lower()
            is_staff = rng.random() < _STAFF_SHARE
            registered, registered_json = values.stamp(
                _START_US - rng.randrange(SPAN_DAYS * _DAY_US)
            )
            city, postal_code, country = rng.choice(_CITIES)
            line1 = f"{rng.randint(1, 250)} {rng.choice(_STREETS)}"
            self.customers.append(
                _Customer(
                    name=name,
                    address=(line1, city, postal_code, country),
                    created_json=f'"customer_name": "{name}"',
                    created_address=(
                        f'{{"line1": "{line1}", "city": "{city}", '
                        f'"postal_code": "{postal_code}", "country": "{country}"}}'
                    ),
                    detail_json=f'"customer_name":"{name}","customer_email":"{email}"',
                    detail_address=(
                        f'{{"line1":"{line1}","city":"{city}","postal_code":"{postal_code}",'
                        f'"country":"{country}"}}'
                    ),
                )
            )
            user_rows.append((user_id, name, email, is_staff, registered))
            payload = (
                f'{{"user_id": {user_id}, "name": "{name}", "email": "{email}", '
                f'"is_staff": {"true" if is_staff else "false"}, '
                f'"registered_at": "{registered_json}"}}'
            )
            event_rows.append(
                (
                    values.uuid(self.id_prefix, self.events + user_id),
                    "user.registered",
                    1,
                    "user",
                    str(user_id),
                    values.json(payload),
                    meta,
                    registered,
                )
            )
        self._insert(users, _USER_COLUMNS, user_rows)
        self._append(event_rows)

    def add_products(self, count: int) -> None:
        rng, values = self.rng, self.values
        product_rows: _Rows = []
        event_rows: _Rows = []
        meta = values.json('{"source": "seed", "command_type": "AddProduct"}')
        added, _ = values.stamp(_START_US - (SPAN_DAYS + 30) * _DAY_US)
        for product_id in range(1, count + 1):
            name = f"{rng.choice(_ADJECTIVES)} {rng.choice(_MATERIALS)} {rng.choice(_NOUNS)}"
            # Mostly cheap things, a few expensive ones: 1.00 to ~500.00.
            cents = int(100 + 49_900 * rng.random() ** 3)
            price = _money(cents)
            self.products.append(
                _Product(
                    cents=cents,
                    created_prefix=(
                        f'{{"product_id": {product_id}, "product_name": "{name}", '
                        f'"unit_price": "{price}", "quantity": '
                    ),
                    detail_prefix=(
                        f'{{"product_id":{product_id},"product_name":"{name}",'
                        f'"unit_price":"{price}","quantity":'
                    ),
                )
            )
            product_rows.append((product_id, name, values.money(cents), True))
            payload = f'{{"product_id": {product_id}, "name": "{name}", "price": "{price}"}}'
            event_rows.append(
                (
                    values.uuid(self.id_prefix, self.events + product_id),
                    "product.added",
                    1,
                    "product",
                    str(product_id),
                    values.json(payload),
                    meta,
                    added,
                )
            )
        self._insert(products, _PRODUCT_COLUMNS, product_rows)
        self._append(event_rows)

    # -- orders ----------------------------------------------------------------------------

    def placed_times(self, count: int) -> list[int]:
        """When each order is placed, ascending (so ids grow with time)."""
        span, random_ = SPAN_DAYS * _DAY_US, self.rng.random
        return sorted([_START_US + int(span * random_()) for _ in range(count)])

    def customers_of(self, count: int) -> list[int]:
        """The customer (0-based) of each order: a few order much more than most."""
        rng, n = self.rng, len(self.customers)
        random_ = rng.random
        ranking = list(range(n))
        rng.shuffle(ranking)  # the busiest customers are spread over the ids
        return [ranking[int(n * random_() ** 2)] for _ in range(count)]

    def add_orders(  # noqa: PLR0912, PLR0915 - one hot loop, kept flat for speed
        self,
        first_id: int,
        placed: Sequence[int],
        customers: Sequence[int],
        analytics: dict[tuple[int, str], list[int]],
    ) -> None:
        """Generate the orders ``first_id, first_id + 1, ...``, placed at ``placed``."""
        random_ = self.rng.random
        sinks = self.sinks
        modelling, itemizing, logging, reading = (
            "orders" in sinks,
            "order_items" in sinks,
            "event_log" in sinks,
            "order_summary" in sinks,
        )
        values = self.values
        stamp, money, as_json, new_id = values.stamp, values.money, values.json, values.uuid
        id_prefix, number = self.id_prefix, self.events
        catalogue, people = self.products, self.customers
        n_products = len(catalogue)
        most_lines = min(5, n_products)
        created_meta = values.json('{"source": "seed", "command_type": "CreateOrder"}')
        changed_meta = values.json('{"source": "seed", "command_type": "UpdateOrderStatus"}')
        summary_values = sinks["order_summary"].values if reading else values
        summary_money = summary_values.money
        same_stamps = summary_values is values or type(summary_values) is type(values)

        order_rows: _Rows = []
        item_rows: _Rows = []
        history_rows: _Rows = []
        event_rows: _Rows = []
        summary_rows: _Rows = []
        detail_rows: _Rows = []

        for offset, placed_us in enumerate(placed):
            order_id = first_id + offset
            user_index = customers[offset]
            customer = people[user_index]
            user_id = user_index + 1

            # -- lines, by ascending product id
            count = min(_LINES[int(random_() * 100)], most_lines)
            chosen: set[int] = set()
            while len(chosen) < count:
                chosen.add(int(random_() * n_products))
            total = 0
            created_items = []
            detail_items = []
            for index in sorted(chosen):
                product = catalogue[index]
                units = _UNITS[int(random_() * 100)]
                line_cents = product.cents * units
                total += line_cents
                if itemizing:
                    item_rows.append((order_id, index + 1, units, money(product.cents)))
                if logging:
                    created_items.append(f"{product.created_prefix}{units}}}")
                if reading:
                    detail_items.append(
                        f'{product.detail_prefix}{units},"line_total":"{_money(line_cents)}"}}'
                    )
            total_text = _money(total)

            # -- status changes: (from, to, note as JSON, when), as far as NOW allows
            roll = random_()
            at = placed_us + int((0.1 + 23.9 * random_()) * _HOUR_US)
            if roll < _CANCELLED_PENDING:
                steps = [("pending", "cancelled", _CANCEL_NOTES[order_id % 4], at)]
            elif roll < _CANCELLED_CONFIRMED:
                cancelled = at + int((1 + 47 * random_()) * _HOUR_US)
                steps = [
                    ("pending", "confirmed", "null", at),
                    ("confirmed", "cancelled", _CANCEL_NOTES[order_id % 4], cancelled),
                ]
            else:
                shipped = at + int((12 + 60 * random_()) * _HOUR_US)
                delivered = shipped + int((24 + 120 * random_()) * _HOUR_US)
                tracking = f'"{_CARRIERS[order_id % 5]} tracking {order_id:010d}"'
                steps = [
                    ("pending", "confirmed", "null", at),
                    ("confirmed", "shipped", tracking, shipped),
                    ("shipped", "delivered", "null", delivered),
                ]
            while steps and steps[-1][3] >= _NOW_US:
                steps.pop()
            status = steps[-1][1] if steps else "pending"
            placed_at, placed_json = stamp(placed_us)
            changes = [stamp(step[3]) for step in steps]
            self.items += count
            self.changes += len(steps)

            # -- write model
            if modelling:
                line1, city, postal_code, country = customer.address
                order_rows.append(
                    (
                        order_id,
                        user_id,
                        status,
                        money(total),
                        line1,
                        city,
                        postal_code,
                        country,
                        placed_at,
                    )
                )
                history_rows.append((order_id, None, "pending", None, placed_at))
                history_rows.extend(
                    (
                        order_id,
                        from_status,
                        to_status,
                        None if note == "null" else note[1:-1],
                        changed_at,
                    )
                    for (from_status, to_status, note, _), (changed_at, _) in zip(
                        steps, changes, strict=True
                    )
                )

            # -- events
            if logging:
                stream_id = str(order_id)
                number += 1
                event_rows.append(
                    (
                        new_id(id_prefix, number),
                        "order.created",
                        1,
                        "order",
                        stream_id,
                        as_json(
                            f'{{"order_id": {order_id}, "user_id": {user_id}, '
                            f"{customer.created_json}, "
                            f'"items": [{", ".join(created_items)}], "total": "{total_text}", '
                            f'"shipping_address": {customer.created_address}, '
                            f'"status": "pending", "placed_at": "{placed_json}"}}'
                        ),
                        created_meta,
                        placed_at,
                    )
                )
                for (from_status, to_status, note, _), (changed_at, changed_json) in zip(
                    steps, changes, strict=True
                ):
                    number += 1
                    event_rows.append(
                        (
                            new_id(id_prefix, number),
                            "order.status_changed",
                            1,
                            "order",
                            stream_id,
                            as_json(
                                f'{{"order_id": {order_id}, "from_status": "{from_status}", '
                                f'"to_status": "{to_status}", "note": {note}, '
                                f'"changed_at": "{changed_json}", "placed_at": "{placed_json}", '
                                f'"total": "{total_text}"}}'
                            ),
                            changed_meta,
                            changed_at,
                        )
                    )

            # -- read models
            if reading:
                history_json = [
                    '{"from_status":null,"to_status":"pending","note":null,'
                    f'"changed_at":"{placed_json}"}}'
                ]
                history_json.extend(
                    f'{{"from_status":"{from_status}","to_status":"{to_status}",'
                    f'"note":{note},"changed_at":"{changed_json}"}}'
                    for (from_status, to_status, note, _), (_, changed_json) in zip(
                        steps, changes, strict=True
                    )
                )
                summary_rows.append(
                    (
                        order_id,
                        user_id,
                        status,
                        customer.name,
                        summary_money(total),
                        count,
                        placed_at if same_stamps else summary_values.stamp(placed_us)[0],
                    )
                )
                detail_rows.append(
                    (
                        order_id,
                        user_id,
                        f'{{"order_id":{order_id},"user_id":{user_id},{customer.detail_json},'
                        f'"status":"{status}","total":"{total_text}",'
                        f'"shipping_address":{customer.detail_address},'
                        f'"placed_at":"{placed_json}","items":[{",".join(detail_items)}],'
                        f'"history":[{",".join(history_json)}]}}',
                    )
                )
                # The order counts in its day's bucket of its status; the buckets of the
                # statuses it passed through exist too, emptied (as the projection leaves them).
                day = placed_us // _DAY_US
                for step in steps:
                    if (day, step[0]) not in analytics:
                        analytics[day, step[0]] = [0, 0]
                bucket = analytics.get((day, status))
                if bucket is None:
                    analytics[day, status] = [1, total]
                else:
                    bucket[0] += 1
                    bucket[1] += total

        self._insert(orders, _ORDER_COLUMNS, order_rows)
        self._insert(order_items, _ITEM_COLUMNS, item_rows)
        self._insert(order_status_history, _HISTORY_COLUMNS, history_rows)
        if logging:
            self._append(event_rows)
        self._insert(order_summary, _SUMMARY_COLUMNS, summary_rows)
        self._insert(order_detail, _DETAIL_COLUMNS, detail_rows)

    def add_analytics(self, analytics: dict[tuple[int, str], list[int]]) -> None:
        """Insert the daily analytics, summed over every order."""
        sink = self.sinks.get(order_analytics.name)
        if sink is None:
            return
        values = sink.values
        rows = [
            (values.date(day), status, count, values.money(cents))
            for (day, status), (count, cents) in sorted(analytics.items())
        ]
        sink.insert(order_analytics, _ANALYTICS_COLUMNS, rows)


_USER_COLUMNS = ("id", "name", "email", "is_staff", "created_at")
_PRODUCT_COLUMNS = ("id", "name", "price", "active")
_ORDER_COLUMNS = (
    "id", "user_id", "status", "total", "ship_line1", "ship_city", "ship_postal_code",
    "ship_country", "placed_at",
)  # fmt: skip
_ITEM_COLUMNS = ("order_id", "product_id", "quantity", "unit_price")
_HISTORY_COLUMNS = ("order_id", "from_status", "to_status", "note", "changed_at")
_EVENT_COLUMNS = (
    "event_id", "event_type", "schema_version", "stream_type", "stream_id", "payload",
    "metadata", "recorded_at",
)  # fmt: skip
_SUMMARY_COLUMNS = (
    "order_id", "user_id", "status", "customer_name", "total", "item_count", "placed_at",
)  # fmt: skip
_DETAIL_COLUMNS = ("order_id", "user_id", "document")
_ANALYTICS_COLUMNS = ("day", "status", "order_count", "revenue")

_READ_MODELS = ("order_summary", "order_detail", "order_analytics")

# -- entry points ------------------------------------------------------------------------------


def seed(
    write_engine: sa.Engine,
    read_engine: sa.Engine,
    *,
    orders: int,
    users: int | None = None,
    products: int | None = None,
    seed: int = 0,
    progress: Progress | None = None,
    batch: int = 10_000,
    projections: Sequence[Projection] | None = None,
    parallel: bool | None = None,
) -> SeedReport:
    """Fill empty write and read databases with a deterministic dataset.

    Creates the tables when missing: the write model and event log in ``write_engine``,
    the read models and projection checkpoints where each projection lives (the read
    database; the write database for an ``inline`` one).

    Args:
        write_engine: The write database.
        read_engine: The read database.
        orders: How many orders.
        users: How many users; :func:`default_users` when omitted.
        products: How many products; :func:`default_products` when omitted.
        seed: The seed of the random generator: same arguments, same data.
        progress: Called as ``progress(orders_done, orders)`` at the start and after each
            batch.
        batch: Orders per transaction (and between two ``progress`` calls).
        projections: The app's projections (their strategies decide where their read
            models live); ``build_projections()`` when omitted.
        parallel: Share the work with a second process: the same data, sooner when a
            second core is free (with both cores busy, its ~10-30% extra CPU time can make
            it slower). Possible when the databases are two SQLite files and every read
            model is in the read one; ``None`` (the default) does it when possible, with
            ``orders >= PARALLEL_FROM`` and two cores or more. (The engines' idle pooled
            connections to SQLite files are closed in any case, so the load can leave the
            WAL.)

    Returns:
        What was written, and how long it took.

    Raises:
        SeedError: A database already holds orders, events or read-model rows, the
            projections lack one of the app's read models, an argument is out of range,
            or ``parallel`` is true and not possible.
    """
    return _seed(
        write_engine,
        read_engine,
        orders=orders,
        users=users,
        products=products,
        seed=seed,
        progress=progress,
        batch=batch,
        projections=projections,
        parallel=parallel,
    )


def _seed(
    write_engine: sa.Engine,
    read_engine: sa.Engine,
    *,
    orders: int,
    users: int | None,
    products: int | None,
    seed: int,
    progress: Progress | None,
    batch: int,
    projections: Sequence[Projection] | None,
    parallel: bool | None,
) -> SeedReport:
    started = time.perf_counter()
    users = default_users(orders) if users is None else users
    products = default_products(orders) if products is None else products
    _plan(orders, users, products, batch)
    if projections is None:
        from reference_app.read.projections import build_projections

        projections = build_projections()
    home = {
        p.name: write_engine if p.strategy is Strategy.INLINE else read_engine for p in projections
    }
    missing = [name for name in _READ_MODELS if name not in home]
    if missing:
        msg = f"the projections {missing} are missing; seed fills {list(_READ_MODELS)}"
        raise SeedError(msg)
    create_write_model(write_engine)
    engine = ProjectionEngine(
        event_log=EventLog(event_types),
        write_engine=write_engine,
        read_engine=read_engine,
        projections=projections,
        write_metadata=write_metadata,
    )
    try:
        engine.setup()
    finally:
        engine.close()
    tables: dict[sa.Engine, list[sa.Table]] = {write_engine: list(_WRITE_TABLES)}
    for name, table in zip(_READ_MODELS, _READ_TABLES, strict=True):
        tables.setdefault(home[name], []).append(table)
    _check_empty(tables)
    files = _sqlite_files(write_engine, read_engine, home)
    if parallel and files is None:
        msg = (
            "parallel seeding needs the write and read databases in two SQLite files, "
            "with every read model in the read one: pass parallel=None or False"
        )
        raise SeedError(msg)
    if parallel is None:
        parallel = orders >= PARALLEL_FROM and (os.cpu_count() or 1) > 1
    for target, loaded in tables.items():
        _drop_indexes(target, loaded)

    for target in tables:
        if _sqlite_file(target) is not None:
            target.dispose()  # an idle connection would keep the database in WAL mode
    plan = _Plan(orders, users, products, seed, batch)
    if files is not None and parallel:
        generator = _load_in_processes(write_engine, *files, plan, progress)
    else:
        generator = _load(tables, plan, progress)
    if progress is not None:
        progress(orders, orders)
    _advance_checkpoints(write_engine, projections, home)
    return SeedReport(
        users=users,
        products=products,
        orders=orders,
        order_items=generator.items,
        status_changes=generator.changes,
        events=generator.events,
        seconds=time.perf_counter() - started,
    )


def seed_from_settings(  # noqa: PLR0917 - the CLI passes these positionally
    settings: Settings,
    orders: int,
    users: int | None = None,
    products: int | None = None,
    seed: int = 0,
    progress: Progress | None = None,
) -> SeedReport:
    """:func:`seed` the databases ``settings`` names, with its projection strategies.

    Args:
        settings: The app's settings (database URLs, projection strategies).
        orders: How many orders.
        users: How many users; :func:`default_users` when omitted.
        products: How many products; :func:`default_products` when omitted.
        seed: The seed of the random generator.
        progress: Called as ``progress(orders_done, orders)``.

    Returns:
        What was written.

    Raises:
        SeedError: See :func:`seed`.
    """
    from reference_app.read.projections import build_projections

    write_engine = _engine(settings.write_database_url)
    read_engine = _engine(settings.read_database_url)
    try:
        return _seed(
            write_engine,
            read_engine,
            orders=orders,
            users=users,
            products=products,
            seed=seed,
            progress=progress,
            batch=10_000,
            projections=build_projections(settings.projections),
            parallel=None,
        )
    finally:
        write_engine.dispose()
        read_engine.dispose()


# -- loading -----------------------------------------------------------------------------------

_WRITE_TABLES = (users, products, orders, order_items, order_status_history, event_log)
# When two processes share the work: what the second one writes to the scratch file, and
# what this one writes to the write database directly (the split that evens their loads).
_COPIED_TABLES = (users, products, orders, order_status_history)
_APPENDED_TABLES = (order_items, event_log)
_READ_TABLES = (order_summary, order_detail, order_analytics)
_TABLES = {table.name: table for table in (*_WRITE_TABLES, *_READ_TABLES)}


@dataclass(frozen=True, slots=True)
class _Plan:
    """What to generate (the arguments of :func:`seed` that decide the data)."""

    orders: int
    users: int
    products: int
    seed: int
    batch: int


def _load(
    tables: dict[sa.Engine, list[sa.Table]],
    plan: _Plan,
    progress: Progress | None,
    before_closing: Callable[[dict[sa.Engine, _Sink]], None] | None = None,
) -> _Generator:
    """Generate the rows of ``tables`` and insert them, one transaction per batch of orders.

    Args:
        tables: The databases to load, and the tables of each to generate.
        plan: What to generate.
        progress: Called as ``progress(orders_done, orders)``, at 0 and between batches.
        before_closing: Called with the sinks after the last batch, before they build the
            indexes.

    Returns:
        The generator, which counted what it made.
    """
    clock = _Clock()
    sinks: dict[sa.Engine, _Sink] = {}
    try:
        for target, loaded in tables.items():
            sinks[target] = _sink(target, clock, loaded)
        generator = _Generator(
            random.Random(plan.seed),  # noqa: S311 - reproducible test data, not secrets
            {table.name: sinks[target] for target, loaded in tables.items() for table in loaded},
        )
        if progress is not None:
            progress(0, plan.orders)
        generator.add_users(plan.users)
        generator.add_products(plan.products)
        placed = generator.placed_times(plan.orders)
        customers = generator.customers_of(plan.orders)
        analytics: dict[tuple[int, str], list[int]] = {}
        for start in range(0, plan.orders, plan.batch):
            stop = min(start + plan.batch, plan.orders)
            generator.add_orders(start + 1, placed[start:stop], customers[start:stop], analytics)
            for sink in sinks.values():
                sink.commit()
            if progress is not None and stop < plan.orders:
                progress(stop, plan.orders)
        generator.add_analytics(analytics)
        if before_closing is not None:
            before_closing(sinks)
    except BaseException:
        with contextlib.suppress(Exception):  # the first error is the one to report
            _close(list(sinks.values()), finish=False)
        raise
    _close(list(sinks.values()), finish=True)
    return generator


def _close(sinks: Sequence[_Sink], *, finish: bool) -> None:
    """Close every sink, side by side (``sqlite3`` lets go of the GIL as it builds indexes).

    Raises:
        Exception: The first error of any sink, once all are closed.
    """
    if len(sinks) == 1:
        sinks[0].close(finish=finish)
        return
    with ThreadPoolExecutor(max_workers=len(sinks)) as pool:
        closing = [pool.submit(sink.close, finish=finish) for sink in sinks]
    for future in closing:
        future.result()


def _load_in_processes(
    write_engine: sa.Engine,
    write_path: str,
    read_path: str,
    plan: _Plan,
    progress: Progress | None,
) -> _Generator:
    """Load the event log and order lines here, the rest in a second process, side by side.

    The split evens the loads: the event log is ~80% of the write database's bytes. The
    second process writes its write-model tables to a scratch file beside the write
    database (a database has one writer at a time); they are copied in at the end, record
    by record (a few percent of the time of inserting them), and the scratch file deleted.
    """
    scratch = f"{write_path}.seed-model"
    _remove_database(scratch)
    part = _Part(plan, {scratch: (_COPIED_TABLES, True), read_path: (_READ_TABLES, False)})

    def both(done: int, total: int) -> None:
        if not part.running(wait=0):
            part.check()  # stop at once if it failed (when it is done, this returns)
        if progress is not None:
            progress(min(done, part.done), total)

    def copy_model(sinks: dict[sa.Engine, _Sink]) -> None:
        reported = -1
        while part.running():
            if progress is not None and part.done != reported:
                reported = part.done
                progress(reported, plan.orders)
        part.check()
        sink = sinks[write_engine]
        if not isinstance(sink, _SqliteSink):  # what _sink() makes of a pysqlite file
            msg = f"cannot copy the write model into {sink!r}"
            raise TypeError(msg)
        sink.copy(scratch, _COPIED_TABLES)

    try:
        return _load({write_engine: list(_APPENDED_TABLES)}, plan, both, copy_model)
    finally:
        part.stop()
        _remove_database(scratch)


def _remove_database(path: str) -> None:
    for name in (path, f"{path}-journal", f"{path}-wal", f"{path}-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(name)


class _Part:
    """Some of the tables, loaded into a SQLite file by a second Python process.

    A plain ``python -c`` subprocess rather than :mod:`multiprocessing`: this process may
    have threads (so no fork), and a spawned one would import the caller's ``__main__``
    script again. It gets its task as JSON, and reports on its standard output, one line a
    message: ``progress <orders>``, then ``done`` or ``error <traceback as JSON>``. A thread
    here reads them.
    """

    def __init__(self, plan: _Plan, files: dict[str, tuple[Sequence[sa.Table], bool]]) -> None:
        task = {
            "files": [
                {"path": path, "tables": [table.name for table in tables], "create": create}
                for path, (tables, create) in files.items()
            ],
            "plan": asdict(plan),
            "sys_path": sys.path,
        }
        self._process = subprocess.Popen(  # noqa: S603 - this interpreter, our own code
            [sys.executable, "-c", _PART_MAIN, json.dumps(task)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
        )
        self.done = 0
        self._outcome: str | None = None  # "done", or the error the process reported
        self._listener = threading.Thread(
            target=self._listen, args=(self._process.stdout,), name="seed part"
        )
        self._listener.start()

    def _listen(self, lines: Iterable[bytes]) -> None:
        for line in lines:
            kind, _, value = line.decode().rstrip("\n").partition(" ")
            if kind == "progress":
                self.done = int(value)
            elif kind == "error":
                self._outcome = json.loads(value)
            elif kind == "done":
                self._outcome = "done"

    def running(self, wait: float = 0.2) -> bool:
        """Wait a moment (``wait`` seconds at most) for the process; whether it still runs."""
        self._listener.join(wait)
        return self._listener.is_alive()

    def check(self) -> None:
        """Wait until the process is done.

        Raises:
            SeedError: The process failed (its traceback is in the message).
        """
        self._listener.join()
        status = self._process.wait()
        if self._outcome == "done" and status == 0:
            return
        said = self._outcome or "it ended without a word"
        msg = (
            f"a process seeding part of the databases failed (exit status {status}); seed "
            f"new databases again. It said: {said}"
        )
        raise SeedError(msg)

    def stop(self) -> None:
        """End the process if it still runs (after a failure here), and wait for it."""
        if self._process.poll() is None and self._outcome != "done":
            self._process.terminate()
        self._process.wait()
        self._listener.join()
        if self._process.stdout is not None:
            self._process.stdout.close()


_PART_MAIN = (
    "import json, sys; task = json.loads(sys.argv[1]); sys.path[:] = task['sys_path']; "
    "from reference_app.seed import _seed_part; _seed_part(task)"
)


def _seed_part(task: dict[str, Any]) -> None:
    """A second process: generate some tables into a SQLite file (see :class:`_Part`).

    Args:
        task: ``path`` (the database file), ``tables`` (their names), ``create`` (create
            them first, without their indexes), ``plan`` (a :class:`_Plan` as a dict).
    """
    # The messages get this process's standard output to themselves: print() and the like
    # go to its standard error.
    messages = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    engines: dict[sa.Engine, list[sa.Table]] = {}
    try:
        for file in task["files"]:
            engine = sa.create_engine(sa.URL.create("sqlite+pysqlite", database=file["path"]))
            tables = engines[engine] = [_TABLES[name] for name in file["tables"]]
            if file["create"]:
                with engine.begin() as connection:
                    for table in tables:
                        table.create(connection)
                _drop_indexes(engine, tables)
        _load(
            engines,
            _Plan(**task["plan"]),
            lambda done, _total: print(f"progress {done}", file=messages),
        )
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which raises
        text = "".join(traceback.format_exception(exc))
        print(f"error {json.dumps(text)}", file=messages)
        raise SystemExit(1) from None
    else:
        print(f"progress {task['plan']['orders']}", file=messages)
        print("done", file=messages)
    finally:
        for engine in engines:
            engine.dispose()
        messages.close()


# -- helpers -----------------------------------------------------------------------------------


def _engine(url: str) -> sa.Engine:
    engine = sa.create_engine(url)
    if engine.dialect.name == "sqlite":
        configure_sqlite(engine)
    return engine


def _sink(engine: sa.Engine, clock: _Clock, tables: Sequence[sa.Table]) -> _Sink:
    if engine.dialect.name == "sqlite" and engine.dialect.driver == "pysqlite":
        return _SqliteSink(engine, clock, tables)
    return _CoreSink(engine, clock, tables)


def _sqlite_files(
    write_engine: sa.Engine, read_engine: sa.Engine, home: dict[str, sa.Engine]
) -> tuple[str, str] | None:
    """The two files, if the databases are SQLite files with every read model in the read one.

    ``None`` otherwise: in-memory or URI databases, other drivers, one file, inline models.
    """
    write, read = _sqlite_file(write_engine), _sqlite_file(read_engine)
    if write is None or read is None or os.path.samefile(write, read):
        return None
    if any(home[name] is not read_engine for name in _READ_MODELS):
        return None
    return write, read


def _sqlite_file(engine: sa.Engine) -> str | None:
    """The absolute path of a pysqlite database file; ``None`` for anything else."""
    database = engine.url.database
    if engine.dialect.driver != "pysqlite" or not database or not os.path.isfile(database):
        return None
    return os.path.abspath(database)


def _check_empty(tables: dict[sa.Engine, list[sa.Table]]) -> None:
    for engine, loaded in tables.items():
        with engine.connect() as connection:
            full = [
                table.name
                for table in loaded
                if connection.execute(sa.select(sa.literal(1)).select_from(table).limit(1)).first()
            ]
        if full:
            msg = (
                f"{engine.url.render_as_string(hide_password=True)} already holds rows in "
                f"{full}; seed fills empty databases only: use new ones (or delete these)"
            )
            raise SeedError(msg)


def _drop_indexes(engine: sa.Engine, tables: Sequence[sa.Table]) -> None:
    # Building an index once over loaded rows is much faster than updating it row by row.
    with engine.begin() as connection:
        for table in tables:
            for index in table.indexes:
                index.drop(connection, checkfirst=True)


def _advance_checkpoints(
    write_engine: sa.Engine,
    projections: Sequence[Projection],
    home: dict[str, sa.Engine],
) -> None:
    """Put every projection's checkpoint at the log head: the seeded rows are its effect."""
    with write_engine.connect() as connection:
        head = EventLog(event_types).head(connection)
    store = CheckpointStore()
    for projection in projections:
        with home[projection.name].begin() as connection:
            checkpoint = store.get(connection, projection.name)
            store.advance(connection, projection.name, checkpoint.position, head)
