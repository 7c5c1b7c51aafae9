"""Where generated rows go: bulk inserts into one database, indexes dropped and rebuilt.

On SQLite (pysqlite) through the ``sqlite3`` connection itself, tuned for the load
(:class:`_SqliteSink`); elsewhere with SQLAlchemy Core ``executemany`` (:class:`_CoreSink`).
Both store the same values.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Sequence
from typing import Any, Protocol, cast

import sqlalchemy as sa
from sqlalchemy.schema import CreateIndex

from reference_app.seed.values import _Clock, _CoreValues, _SqliteValues, _Values

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


def _sink(engine: sa.Engine, clock: _Clock, tables: Sequence[sa.Table]) -> _Sink:
    if engine.dialect.name == "sqlite" and engine.dialect.driver == "pysqlite":
        return _SqliteSink(engine, clock, tables)
    return _CoreSink(engine, clock, tables)


def _drop_indexes(engine: sa.Engine, tables: Sequence[sa.Table]) -> None:
    # Building an index once over loaded rows is much faster than updating it row by row.
    with engine.begin() as connection:
        for table in tables:
            for index in table.indexes:
                index.drop(connection, checkfirst=True)
