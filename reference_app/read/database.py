"""How query handlers reach a database: no connection churn, and no stale snapshot.

A read-model query is one short statement, so what surrounds it shows. Measured for a page
of orders on SQLite (a busy machine: compare the ratios): 150 us on a kept connection; 180
us when each query takes a pooled connection and gives it back; 255 us when, in addition,
it runs in a ``BEGIN`` ... ``ROLLBACK`` transaction. On PostgreSQL that transaction costs
two extra round trips (a third more). So :class:`ReadDatabase` reads in autocommit, and
keeps connections where that pays:

- **SQLite** (in-process, no server): connections to the database file are opened once and
  kept. Between queries they are parked; a query takes any parked one (or opens one when
  every parked connection is in use) and parks it again afterwards.
- **PostgreSQL** (a network round trip per statement): each query takes a connection from
  the engine's pool and gives it back. The checkout is small beside the round trip, and the
  pool keeps what parked connections would lose: a bound on server connections, pre-ping,
  recycling, and discarding connections the server dropped.

Autocommit is also what keeps a long-lived SQLite connection current. Under WAL, a
transaction reads from the snapshot of its first read: a connection left inside a
transaction would answer every later query from that old snapshot (and would keep the WAL
from being checkpointed). With no transaction, each ``SELECT`` takes a fresh snapshot and
sees everything committed before it started.

The SQLite connections come from a private engine on the same file, opened with
``PRAGMA query_only``: they cannot write, so a ``ReadDatabase`` over the write database (the
baseline's) is truly read-only; and the given engine's ``BEGIN IMMEDIATE``, meant for
writers, never runs for a read. On PostgreSQL the queries run on the given engine's pool,
read-only by convention (grant the app's read role ``SELECT`` only to enforce it).

**The driver path (SQLite only).** Even a statement compiled once costs SQLAlchemy ~40 us
to execute (execution context, result metadata, row processors), several times the query
itself. :meth:`ReadDatabase.sqlite_rows` runs a plain SQL string on the ``sqlite3``
connection under a parked one, and returns the driver's tuples: no SQLAlchemy on the way.
The caller writes SQLite SQL and converts values itself. The same connections serve both
paths, so nothing else changes (read-only, autocommit, fresh snapshot per statement). If
anything listens for ``before_cursor_execute`` on the connection (tracing, the benchmarks'
statement capture), the string goes through ``exec_driver_sql`` instead, so that listeners
still see every statement. The driver connection under each parked connection is looked up
once and remembered, and a connection used only by the driver goes back to the park as it
is (SQLAlchemy began nothing on it): ~0.7 us over the bare driver, where asking SQLAlchemy
for the driver connection and ending its transaction record each time cost ~1.4 us.
PostgreSQL keeps SQLAlchemy Core: there the round trip dominates.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.pool import NullPool

__all__ = ["ReadDatabase"]

_BUSY_TIMEOUT_MS = 10_000


class ReadDatabase:
    """Runs query handlers' statements on one database, without per-call churn.

    Thread-safe: any number of threads may query at once (see the module docstring for how
    connections are shared).

    Args:
        engine: The database to read: the read database; or the write database, for the
            baseline queries and for ``inline`` read models. A SQLite database must be a
            file (a private engine opens its own connections to it).

    Raises:
        ValueError: ``engine`` is an in-memory SQLite database.

    Example::

        reader = ReadDatabase(read_engine)
        rows = reader.all(statement, {"user_id": 7})
        reader.close()
    """

    __slots__ = ("_drivers", "_engine", "_parked", "engine", "is_sqlite")

    def __init__(self, engine: sa.Engine) -> None:
        """Prepare the connections for ``engine``'s database."""
        self.engine = engine
        self._parked: list[sa.Connection] | None
        # The sqlite3 connection under each connection that sqlite_rows has used.
        self._drivers: dict[sa.Connection, Any] = {}
        self.is_sqlite = engine.dialect.name == "sqlite"
        """Whether :meth:`sqlite_rows` may be used (the database is SQLite)."""
        if self.is_sqlite:
            self._engine = _sqlite_reader(engine.url)
            self._parked = []
        else:
            self._engine = engine.execution_options(isolation_level="AUTOCOMMIT")
            self._parked = None  # use the pool

    def all(
        self, statement: sa.Executable, parameters: Mapping[str, Any] | None = None
    ) -> Sequence[sa.Row[Any]]:
        """Run ``statement`` and return every row.

        Args:
            statement: A statement built once (e.g. at module level), never per call.
            parameters: Its bound parameters.

        Returns:
            The rows, typed by the statement's columns.
        """
        connection = self._take()
        try:
            return connection.execute(statement, parameters).all()
        finally:
            self._give(connection)

    def scalar(self, statement: sa.Executable, parameters: Mapping[str, Any] | None = None) -> Any:
        """Run ``statement`` and return the first column of its first row.

        Args:
            statement: A statement built once (e.g. at module level), never per call.
            parameters: Its bound parameters.

        Returns:
            The value, or ``None`` when there is no row.
        """
        connection = self._take()
        try:
            return connection.execute(statement, parameters).scalar()
        finally:
            self._give(connection)

    def sqlite_rows(self, sql: str, parameters: Sequence[Any] = ()) -> list[Any]:
        """Run a SQLite SQL string on the driver directly; return the driver's rows.

        Only for a SQLite database (see :attr:`is_sqlite`). No SQLAlchemy type processing:
        values are as ``sqlite3`` returns them (text, int, float, bytes, ``None``).

        Args:
            sql: The statement, with ``?`` placeholders; a constant string, built once.
            parameters: Its positional parameters, as SQLite stores the values.

        Returns:
            Every row, as tuples.
        """
        connection = self._take()
        if connection.dispatch.before_cursor_execute:  # someone watches the statements
            try:
                return list(connection.exec_driver_sql(sql, tuple(parameters)).all())
            finally:
                self._give(connection)
        driver: Any = self._drivers.get(connection)
        if driver is None:
            driver = self._drivers[connection] = connection.connection.driver_connection
        try:
            rows: list[Any] = driver.execute(sql, parameters).fetchall()
        except BaseException:
            self._give(connection)
            raise
        # SQLAlchemy began nothing on this connection: park it as it is.
        self._park(connection)
        return rows

    def connect(self) -> AbstractContextManager[sa.Connection]:
        """Borrow a connection for several statements (for code that takes a connection).

        Each statement still sees the latest committed data; use it for reads only.

        Returns:
            A context manager that gives the connection and takes it back on exit::

                with reader.connect() as connection:
                    detail = baseline.get_order_detail(connection, order_id)
        """
        return _Borrowed(self)

    def close(self) -> None:
        """Close the parked connections; call it once, when the app shuts down.

        Connections in use at that moment are closed when their query returns.
        """
        parked, self._parked = self._parked, None
        self._drivers.clear()
        if parked is None:  # PostgreSQL: the pool belongs to the engine's owner; or closed
            return
        for connection in parked:
            connection.close()
        self._engine.dispose()

    def _take(self) -> sa.Connection:
        parked = self._parked
        if parked:
            try:
                return parked.pop()
            except IndexError:  # another thread took the last one since the check
                pass
        return self._engine.connect()

    def _give(self, connection: sa.Connection) -> None:
        # SQLAlchemy used the connection (or the driver failed on it): it may have replaced
        # the driver connection underneath (an invalidated connection reconnects), so the
        # next sqlite_rows looks the driver up again.
        self._drivers.pop(connection, None)
        if self._parked is None or connection.invalidated:
            connection.close()  # back to the pool (PostgreSQL), or closed
            return
        # Ends SQLAlchemy's own record of a transaction; in autocommit it sends nothing.
        connection.rollback()
        self._park(connection)

    def _park(self, connection: sa.Connection) -> None:
        parked = self._parked
        if parked is not None:
            parked.append(connection)
            if self._parked is parked:
                return
        # close() ran meanwhile (before the append, or after it)
        self._drivers.pop(connection, None)
        connection.close()


class _Borrowed:
    """The context manager of :meth:`ReadDatabase.connect`."""

    __slots__ = ("_connection", "_database")

    def __init__(self, database: ReadDatabase) -> None:
        self._database = database
        self._connection: sa.Connection | None = None

    def __enter__(self) -> sa.Connection:
        self._connection = self._database._take()
        return self._connection

    def __exit__(self, *exc_info: object) -> None:
        if self._connection is not None:
            self._database._give(self._connection)
            self._connection = None


def _sqlite_reader(url: sa.URL) -> sa.Engine:
    """A private engine of read-only, autocommit connections to a SQLite database file."""
    if url.database in (None, "", ":memory:"):
        msg = (
            "ReadDatabase needs a SQLite database file: an in-memory database is private to "
            "the connection that created it"
        )
        raise ValueError(msg)
    reader = sa.create_engine(
        url.set(drivername="sqlite+pysqlite"),  # a sync driver, even for an aiosqlite URL
        isolation_level="AUTOCOMMIT",
        # ReadDatabase parks the connections itself: a pool would only cap them.
        poolclass=NullPool,
        # A parked connection is used by one thread at a time, but not always the same one.
        connect_args={"check_same_thread": False},
    )

    @event.listens_for(reader, "connect")
    def _read_only(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA query_only = ON")
        cursor.close()

    return reader
