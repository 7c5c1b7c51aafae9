"""How query handlers reach a database: no connection churn, and no stale snapshot.

A read-model query is one short statement, so what surrounds it shows. Measured for a page
of orders on SQLite (a busy machine: compare the ratios): 150 us on a kept connection; 180
us when each query takes a pooled connection and gives it back; 255 us when, in addition,
it runs in a ``BEGIN`` ... ``ROLLBACK`` transaction. On PostgreSQL, taking a connection
from the engine's pool for each query and giving it back costs ~100-150 us more than the
~140 us the page query takes on a kept connection (the pool's checkout and checkin, and
switching the connection to autocommit and back each time), and a transaction would cost
two extra round trips. So :class:`ReadDatabase` reads in autocommit, on connections it
keeps:

- Connections are opened once and kept. Between queries they are **parked**; a query takes
  any parked one (or opens one when every parked connection is in use) and parks it again
  afterwards. At most ``keep`` connections stay parked (by default every one on SQLite,
  8 on a server database); a connection beyond that is closed after its query.
- **SQLite**: the connections come from a private engine on the same file, opened with
  ``PRAGMA query_only``: they cannot write, so a ``ReadDatabase`` over the write database
  (the baseline's) is truly read-only; and the given engine's ``BEGIN IMMEDIATE``, meant
  for writers, never runs for a read.
- **PostgreSQL** (and other server databases): the connections come from the given engine,
  so they are made as its own are (URL, connect arguments, ``connect`` events). A connection
  being parked is detached from the engine's pool: it never holds one of the pool's slots
  (the pool may open another in its place), and it is closed, not returned, when it goes.
  Without the pool's pre-ping, a dropped connection is found when a query fails on it: the
  connection is discarded and the query, a read, runs once more on a new connection, so a
  server restart costs no failed query. Reads are read-only by convention (grant the app's
  read role ``SELECT`` only to enforce it).

Kept connections must not cross a ``fork()``: a child would share the parent's sockets and
files. Create a ``ReadDatabase`` in the process that queries through it (the app builds one
per serving process; ``uvicorn.run`` does not fork).

Autocommit is also what keeps a long-lived connection current. Under WAL (SQLite) a
transaction reads from the snapshot of its first read, and under ``REPEATABLE READ``
(PostgreSQL) from its first statement's: a connection left inside a transaction would answer
every later query from that old snapshot (and would keep SQLite's WAL from being
checkpointed). With no transaction, each ``SELECT`` sees everything committed before it
started.

**The driver path.** Even a statement compiled once costs SQLAlchemy ~40 us to execute on
SQLite (execution context, result metadata, row processors), several times the query
itself; on PostgreSQL ~45 us of the page query's ~185 us. :meth:`ReadDatabase.driver_rows`
runs a plain SQL string, in the driver's own dialect and parameter style, on the driver
connection under a parked one, and returns the driver's tuples: no SQLAlchemy on the way.
The caller writes the SQL and converts values itself. The same connections serve both
paths, so nothing else changes. If anything listens for ``before_cursor_execute`` on the
connection (tracing, the benchmarks' statement capture), the string goes through
``exec_driver_sql`` instead, so that listeners still see every statement. The driver
connection under each parked connection is looked up once and remembered, and a connection
that only the driver used is parked again as it is (SQLAlchemy began nothing on it): on
SQLite, ~0.7 us over the bare driver, where asking SQLAlchemy for the driver connection and
ending its transaction record each time cost ~1.4 us.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

__all__ = ["ReadDatabase"]

_T = TypeVar("_T")

_BUSY_TIMEOUT_MS = 10_000
_KEEP_SERVER_CONNECTIONS = 8


class ReadDatabase:
    """Runs query handlers' statements on one database, without per-call churn.

    Thread-safe: any number of threads may query at once (see the module docstring for how
    connections are shared).

    Args:
        engine: The database to read: the read database; or the write database, for the
            baseline queries and for ``inline`` read models. A SQLite database must be a
            file (a private engine opens its own connections to it).
        keep: How many idle connections to keep parked at most; ``0`` for no limit (as
            many as were ever in use at once). ``None`` (the default): no limit on SQLite,
            8 on a server database.

    Raises:
        ValueError: ``engine`` is an in-memory SQLite database, or ``keep`` is negative.

    Example::

        reader = ReadDatabase(read_engine)
        rows = reader.all(statement, {"user_id": 7})
        reader.close()
    """

    __slots__ = ("_drivers", "_engine", "_keep", "_parked", "engine", "is_sqlite")

    def __init__(self, engine: sa.Engine, *, keep: int | None = None) -> None:
        """Prepare the connections for ``engine``'s database."""
        self.engine = engine
        self.is_sqlite = engine.dialect.name == "sqlite"
        """Whether the database is SQLite (the SQL :meth:`driver_rows` takes is SQLite's)."""
        if keep is None:
            keep = 0 if self.is_sqlite else _KEEP_SERVER_CONNECTIONS
        elif keep < 0:
            msg = f"keep must be 0 (no limit) or more, got {keep}"
            raise ValueError(msg)
        self._keep = keep
        if self.is_sqlite:
            self._engine = _sqlite_reader(engine.url)
        else:
            self._engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._parked: list[sa.Connection] | None = []
        # The driver connection under each connection that driver_rows has used.
        self._drivers: dict[sa.Connection, Any] = {}

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
        return self._run(lambda connection: connection.execute(statement, parameters).all())

    def scalar(self, statement: sa.Executable, parameters: Mapping[str, Any] | None = None) -> Any:
        """Run ``statement`` and return the first column of its first row.

        Args:
            statement: A statement built once (e.g. at module level), never per call.
            parameters: Its bound parameters.

        Returns:
            The value, or ``None`` when there is no row.
        """
        return self._run(lambda connection: connection.execute(statement, parameters).scalar())

    def driver_rows(self, sql: str, parameters: Sequence[Any] = ()) -> list[Any]:
        """Run a SQL string on the driver directly; return the driver's rows.

        No SQLAlchemy type processing: values are as the driver returns them (``sqlite3``:
        text, int, float, bytes, ``None``; psycopg: ``Decimal`` for ``numeric``, aware
        datetimes in the session's time zone, and so on).

        Args:
            sql: The statement in the database's own dialect, with the driver's placeholders
                (``?`` for ``sqlite3``, ``%s`` for psycopg); a constant string, built once.
            parameters: Its positional parameters, as the driver binds them.

        Returns:
            Every row, as tuples.
        """
        for retry in (True, False):
            connection, reused = self._take()
            if connection.dispatch.before_cursor_execute:  # someone watches the statements
                try:
                    return list(connection.exec_driver_sql(sql, tuple(parameters)).all())
                except DBAPIError as error:
                    if not (retry and reused and error.connection_invalidated):
                        raise
                    continue
                finally:
                    self._give(connection)
            driver: Any = self._drivers.get(connection)
            if driver is None:
                # The DBAPI connection itself (sqlite3's, psycopg's): what the pool proxies,
                # and what a detached connection still holds.
                driver = self._drivers[connection] = connection.connection.dbapi_connection
            cursor = driver.cursor()
            try:
                cursor.execute(sql, parameters)
                rows: list[Any] = cursor.fetchall()
            except BaseException as error:  # an interrupt too: the connection goes back
                cursor.close()
                if not (isinstance(error, Exception) and _broken(driver)):
                    self._give(connection)
                    raise
                connection.invalidate()  # the server dropped it: never park it again
                self._give(connection)
                if retry and reused:  # it may have died while parked: once more, anew
                    continue
                raise
            cursor.close()
            # SQLAlchemy began nothing on this connection: park it as it is.
            self._park(connection)
            return rows
        raise AssertionError("unreachable: the second attempt returns or raises")

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
        if parked is None:  # closed already
            return
        for connection in parked:
            connection.close()
        if self.is_sqlite:  # the private engine; a server database's engine is the owner's
            self._engine.dispose()

    def _run(self, work: Callable[[sa.Connection], _T]) -> _T:
        """Run ``work`` on a connection; once more on a new one if a parked one was dead."""
        for retry in (True, False):
            connection, reused = self._take()
            try:
                return work(connection)
            except DBAPIError as error:
                if not (retry and reused and error.connection_invalidated):
                    raise
            finally:
                self._give(connection)
        raise AssertionError("unreachable: the second attempt returns or raises")

    def _take(self) -> tuple[sa.Connection, bool]:
        """A parked connection (``True``: it may have died while parked), or a new one."""
        parked = self._parked
        if parked:
            try:
                return parked.pop(), True
            except IndexError:  # another thread took the last one since the check
                pass
        return self._engine.connect(), False

    def _give(self, connection: sa.Connection) -> None:
        # SQLAlchemy used the connection (or the driver failed on it): it may have replaced
        # the driver connection underneath (an invalidated connection reconnects), so the
        # next driver_rows looks the driver up again.
        self._drivers.pop(connection, None)
        if self._parked is None or connection.invalidated:
            connection.close()
            return
        # Ends SQLAlchemy's own record of a transaction; in autocommit it sends nothing.
        connection.rollback()
        self._park(connection)

    def _park(self, connection: sa.Connection) -> None:
        parked = self._parked
        if parked is not None and (not self._keep or len(parked) < self._keep):
            if not self.is_sqlite and not connection.connection.is_detached:
                connection.detach()  # out of the engine's pool: closed, not returned
            parked.append(connection)
            if self._parked is parked:
                return
        # Enough connections are parked, or close() ran meanwhile (before or after the
        # append): this one goes (back to the engine's pool, unless it was detached).
        self._drivers.pop(connection, None)
        connection.close()


def _broken(driver: Any) -> bool:
    """Whether a driver connection is lost (psycopg's ``broken``; ``closed`` elsewhere)."""
    return bool(getattr(driver, "broken", False) or getattr(driver, "closed", False))


class _Borrowed:
    """The context manager of :meth:`ReadDatabase.connect`."""

    __slots__ = ("_connection", "_database")

    def __init__(self, database: ReadDatabase) -> None:
        self._database = database
        self._connection: sa.Connection | None = None

    def __enter__(self) -> sa.Connection:
        self._connection, _reused = self._database._take()
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
