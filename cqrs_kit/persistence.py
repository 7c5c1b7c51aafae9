"""SQLAlchemy glue shared by the write and read sides: engines and error translation.

SQLite write engines begin every transaction with ``BEGIN IMMEDIATE``: the write lock is
taken up front, so concurrent writers queue (up to ``busy_timeout``) instead of failing
half way with "database is locked" when a reader upgrades to a writer. WAL lets readers
run beside the writer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from cqrs_kit.exceptions import ConcurrencyError, PersistenceError

if TYPE_CHECKING:
    from pathlib import Path

__all__ = [
    "async_sqlite_engine",
    "configure_sqlite",
    "is_transient",
    "sqlite_engine",
    "translate_error",
]

# SQLSTATEs worth retrying the whole transaction for.
_TRANSIENT_SQLSTATES = frozenset({"40001", "40P01"})  # serialization failure, deadlock
_SQLITE_BUSY = ("database is locked", "database table is locked")


def configure_sqlite(
    engine: sa.Engine, *, immediate: bool = True, busy_timeout_ms: int = 10_000
) -> None:
    """Set up a SQLite engine: WAL, foreign keys, a busy timeout, ``BEGIN IMMEDIATE``.

    Args:
        engine: A ``sqlite`` engine (for aiosqlite, pass ``async_engine.sync_engine``).
        immediate: Begin transactions with ``BEGIN IMMEDIATE`` (write engines); plain
            ``BEGIN`` otherwise (read-only use).
        busy_timeout_ms: How long a connection waits for the write lock.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event, not the driver, start transactions.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    begin = "BEGIN IMMEDIATE" if immediate else "BEGIN"

    @event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        connection.exec_driver_sql(begin)


def sqlite_engine(path: str | Path, *, immediate: bool = True, **kwargs: Any) -> sa.Engine:
    """Create a SQLite engine for a database file, set up by :func:`configure_sqlite`.

    Args:
        path: The database file (created when missing).
        immediate: ``BEGIN IMMEDIATE`` for write engines (the default).
        **kwargs: Passed to :func:`sqlalchemy.create_engine`.
    """
    engine = sa.create_engine(f"sqlite+pysqlite:///{path}", **kwargs)
    configure_sqlite(engine, immediate=immediate)
    return engine


def async_sqlite_engine(path: str | Path, *, immediate: bool = True, **kwargs: Any) -> AsyncEngine:
    """Create an aiosqlite engine for a database file, set up by :func:`configure_sqlite`."""
    engine = create_async_engine(f"sqlite+aiosqlite:///{path}", **kwargs)
    configure_sqlite(engine.sync_engine, immediate=immediate)
    return engine


def is_transient(exc: BaseException) -> bool:
    """Whether retrying the whole transaction may succeed.

    True for serialization failures and deadlocks (SQLSTATE 40001, 40P01), a SQLite
    database still locked after its busy timeout, and a connection lost mid-transaction.
    """
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    orig = exc.orig
    code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if code in _TRANSIENT_SQLSTATES:
        return True
    return isinstance(exc, OperationalError) and any(text in str(orig) for text in _SQLITE_BUSY)


def translate_error(exc: SQLAlchemyError, *, attempts: int = 1) -> PersistenceError:
    """Translate a SQLAlchemy error into the :class:`~cqrs_kit.PersistenceError` branch.

    The caller raises the result ``from exc``, so the original stays the ``__cause__``.
    """
    if is_transient(exc):
        return ConcurrencyError(
            f"transient database conflict persisted after {attempts} attempt(s): "
            f"{type(exc).__name__}: {exc.args[0] if exc.args else exc}",
            attempts=attempts,
        )
    return PersistenceError(f"{type(exc).__name__}: {exc.args[0] if exc.args else exc}")
