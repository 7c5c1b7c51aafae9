"""The event log: the transactional outbox and the source of every projection.

Events recorded by a command are appended in the command's transaction, so the log holds
exactly what was committed. Readers take rows by position (``read(after=n)``).

**Gap safety.** A reader that remembers the last position it saw must never miss a row
that commits later with a lower position. SQLite serializes writers (``BEGIN IMMEDIATE``),
so positions commit in order. On PostgreSQL, sequence values are handed out at insert time
but rows become visible at commit, in any order; so each appending transaction takes
``pg_advisory_xact_lock`` right before its insert, at the end of the unit of work, and holds
it until it commits: insert order is then commit order. Transactions that record no events
never take the lock.

**What was just appended.** Each append also remembers, in the current context (thread or
asyncio task), the events it wrote: :func:`take_appended` returns them. After a command has
committed, ``ProjectionMiddleware`` hands them to its ``sync`` projections from memory
instead of reading them back from the log.

Create the table with :func:`create_event_log` or include :data:`metadata` in your
migrations (``target_metadata = [app_metadata, cqrs_kit.eventlog.metadata]`` in Alembic).
"""

from __future__ import annotations

import contextvars
import datetime as dt
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from cqrs_kit.event_types import EventTypes, PendingEvent, StoredEvent

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

    from cqrs_kit.messages import Event

__all__ = [
    "Appended",
    "EventLog",
    "create_event_log",
    "event_log_table",
    "forget_appended",
    "metadata",
    "take_appended",
]

metadata = sa.MetaData()
"""The metadata holding cqrs_kit's write-side tables (``event_log``, idempotency keys)."""

_Position = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def event_log_table(target: sa.MetaData, name: str = "event_log") -> sa.Table:
    """Define the event log table in ``target`` (to keep it in your own metadata)."""
    return sa.Table(
        name,
        target,
        sa.Column("position", _Position, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.Uuid(), nullable=False, unique=True),
        sa.Column("event_type", sa.String(200), nullable=False),
        sa.Column("schema_version", sa.Integer(), nullable=False),
        sa.Column("stream_type", sa.String(100), nullable=False),
        sa.Column("stream_id", sa.String(200), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Index(f"ix_{name}_stream", "stream_type", "stream_id"),
        sqlite_autoincrement=True,
    )


event_log = event_log_table(metadata)


def create_event_log(engine: sa.Engine) -> None:
    """Create cqrs_kit's write-side tables if they do not exist."""
    metadata.create_all(engine)


async def acreate_event_log(engine: AsyncEngine) -> None:
    """Create cqrs_kit's write-side tables if they do not exist (async engine)."""
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)


@dataclass(frozen=True, slots=True)
class Appended:
    """The events one :meth:`EventLog.append` wrote, kept in memory.

    Attributes:
        event_log: The log they were appended to.
        database: Which database: backend, host, port and database name of the connection's
            URL (``None`` when the connection does not tell); a hand-over compares it with
            the projection engine's write database, so that positions of another database
            that happen to match are never taken for this one's.
        positions: Their positions, in order.
        rows: The inserted rows (the parameters of the insert), in the same order.
        events: The event objects, in the same order.
    """

    event_log: EventLog
    database: tuple[object, ...] | None
    positions: Sequence[int]
    rows: Sequence[Mapping[str, Any]]
    events: Sequence[Event]

    def stored(self) -> list[StoredEvent]:
        """The events as :meth:`EventLog.read` would return them (once they committed)."""
        return [
            StoredEvent(
                position=position,
                event_id=row["event_id"],
                event_type=row["event_type"],
                schema_version=row["schema_version"],
                stream_type=row["stream_type"],
                stream_id=row["stream_id"],
                payload=row["payload"],
                metadata=row["metadata"],
                recorded_at=row["recorded_at"],
            )
            for position, row in zip(self.positions, self.rows, strict=True)
        ]


_appended: contextvars.ContextVar[Appended | None] = contextvars.ContextVar(
    "cqrs_kit_appended", default=None
)


def forget_appended() -> None:
    """Forget what this context appended (call before a dispatch that may append)."""
    _appended.set(None)


def take_appended() -> Appended | None:
    """Return (and forget) the events the last append in this context wrote, if any.

    The caller must know that the append committed: a rolled-back append is remembered too.
    ``ProjectionMiddleware`` knows it, because the command it wraps returned normally, and
    it checks that the last position equals the command's consistency token.
    """
    appended = _appended.get()
    if appended is not None:
        _appended.set(None)
    return appended


def _lock_key(table_name: str) -> int:
    # A stable signed 32-bit key per table; pg_advisory_xact_lock takes a bigint.
    return zlib.crc32(f"cqrs_kit:{table_name}".encode())


class EventLog:
    """Appends to and reads from one event log table, with statements built once.

    Args:
        event_types: Names, versions and (de)serialization of the events.
        table: The event log table; :data:`event_log` by default.
        lock: Take the PostgreSQL advisory lock before appending (gap safety). Turning it
            off exists only to demonstrate the gap problem in tests.
        notify_channel: On PostgreSQL, ``NOTIFY`` this channel in the appending transaction
            (delivered at commit) so projection workers wake at once; ``None`` to disable.
            Wake-ups are hints: workers poll anyway.
    """

    NOTIFY_CHANNEL = "cqrs_kit_event_log"

    def __init__(
        self,
        event_types: EventTypes,
        table: sa.Table = event_log,
        *,
        lock: bool = True,
        notify_channel: str | None = NOTIFY_CHANNEL,
    ) -> None:
        """Build the statements for ``table``."""
        self.event_types = event_types
        self.table = table
        self.lock = lock
        self.notify_channel = notify_channel
        self._notify = sa.select(
            sa.func.pg_notify(sa.bindparam("channel"), sa.bindparam("payload"))
        )
        self.lock_key = _lock_key(table.name)
        c = table.c
        self._insert = sa.insert(table).returning(c.position, sort_by_parameter_order=True)
        self._lock = sa.select(
            sa.func.pg_advisory_xact_lock(sa.bindparam("key", type_=sa.BigInteger))
        )
        # The notification is queued in the transaction and delivered at commit, so it can
        # go with the lock: one round trip instead of two.
        self._lock_and_notify = sa.select(
            sa.func.pg_advisory_xact_lock(sa.bindparam("key", type_=sa.BigInteger)),
            sa.func.pg_notify(sa.bindparam("channel"), ""),
        )
        self._read = (
            sa.select(
                c.position,
                c.event_id,
                c.event_type,
                c.schema_version,
                c.stream_type,
                c.stream_id,
                c.payload,
                c.metadata,
                c.recorded_at,
            )
            .where(c.position > sa.bindparam("after"))
            .order_by(c.position)
            .limit(sa.bindparam("limit"))
        )
        self._head = sa.select(sa.func.coalesce(sa.func.max(c.position), 0))

    # -- appending ---------------------------------------------------------------------

    def rows(
        self, pending: Sequence[PendingEvent], meta: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        """Encode pending events as insert parameters."""
        now = dt.datetime.now(dt.UTC)
        rows = []
        for item in pending:
            name, version, stream_type, payload = self.event_types.encode(item.event)
            rows.append(
                {
                    "event_id": item.event_id,
                    "event_type": name,
                    "schema_version": version,
                    "stream_type": item.stream_type or stream_type,
                    "stream_id": item.stream_id,
                    "payload": payload,
                    "metadata": {**meta, **item.metadata},
                    "recorded_at": now,
                }
            )
        return rows

    def append(
        self,
        connection: sa.Connection | Any,
        pending: Sequence[PendingEvent],
        meta: Mapping[str, Any] | None = None,
    ) -> list[int]:
        """Append ``pending`` in the connection's (or session's) current transaction.

        Call it last in the transaction: on PostgreSQL it takes the log's advisory lock,
        held until commit. Returns the new positions, in order; nothing for no events.
        """
        if not pending:
            return []
        rows = self.rows(pending, meta or {})
        statement = self._before_insert(connection)
        if statement is not None:
            connection.execute(*statement)
        positions = [row[0] for row in connection.execute(self._insert, rows)]
        self._remember(connection, positions, rows, pending)
        return positions

    async def aappend(
        self,
        connection: AsyncConnection | Any,
        pending: Sequence[PendingEvent],
        meta: Mapping[str, Any] | None = None,
    ) -> list[int]:
        """Async :meth:`append`, for an ``AsyncConnection`` or ``AsyncSession``."""
        if not pending:
            return []
        rows = self.rows(pending, meta or {})
        statement = self._before_insert(connection)
        if statement is not None:
            await connection.execute(*statement)
        positions = [row[0] for row in await connection.execute(self._insert, rows)]
        self._remember(connection, positions, rows, pending)
        return positions

    def _remember(
        self,
        connection: Any,
        positions: list[int],
        rows: list[dict[str, Any]],
        pending: Sequence[PendingEvent],
    ) -> None:
        """Keep what was just appended for :func:`take_appended` (this thread or task)."""
        _appended.set(
            Appended(
                self, database_of(connection), positions, rows, [item.event for item in pending]
            )
        )

    def _before_insert(self, connection: Any) -> tuple[Any, dict[str, Any]] | None:
        """PostgreSQL: the lock (gap safety) and the commit-time wake-up, in one statement."""
        if _dialect_name(connection) != "postgresql":
            return None
        if self.lock and self.notify_channel:
            return self._lock_and_notify, {"key": self.lock_key, "channel": self.notify_channel}
        if self.lock:
            return self._lock, {"key": self.lock_key}
        if self.notify_channel:
            return self._notify, {"channel": self.notify_channel, "payload": ""}
        return None

    # -- reading -----------------------------------------------------------------------

    @staticmethod
    def _stored(rows: Sequence[Any]) -> list[StoredEvent]:
        # Rows are fetched at once and unpacked by position (the columns of ``_read``): a
        # rebuild reads tens of thousands, and per-row fetches and lookups by name showed.
        stored = []
        for (
            position,
            event_id,
            event_type,
            schema_version,
            stream_type,
            stream_id,
            payload,
            metadata,
            recorded_at,
        ) in rows:
            if recorded_at.tzinfo is None:  # SQLite keeps no offset; we always write UTC
                recorded_at = recorded_at.replace(tzinfo=dt.UTC)  # noqa: PLW2901 - normalized in place
            stored.append(
                StoredEvent(
                    position,
                    event_id,
                    event_type,
                    schema_version,
                    stream_type,
                    stream_id,
                    payload,
                    metadata,
                    recorded_at,
                )
            )
        return stored

    def read(
        self, connection: sa.Connection | Any, *, after: int = 0, limit: int = 1000
    ) -> list[StoredEvent]:
        """Return up to ``limit`` events with ``position > after``, in position order."""
        result = connection.execute(self._read, {"after": after, "limit": limit})
        return self._stored(result.all())

    async def aread(
        self, connection: AsyncConnection | Any, *, after: int = 0, limit: int = 1000
    ) -> list[StoredEvent]:
        """Async :meth:`read`."""
        result = await connection.execute(self._read, {"after": after, "limit": limit})
        return self._stored(result.all())

    def head(self, connection: sa.Connection | Any) -> int:
        """Return the highest position in the log (0 when empty)."""
        return int(connection.execute(self._head).scalar_one())

    async def ahead(self, connection: AsyncConnection | Any) -> int:
        """Async :meth:`head`."""
        return int((await connection.execute(self._head)).scalar_one())


def database_identity(url: sa.URL) -> tuple[object, ...]:
    """Which database ``url`` names, whatever the driver: backend, host, port, database."""
    return (url.get_backend_name(), url.host, url.port, url.database)


def database_of(connection: Any) -> tuple[object, ...] | None:
    """:func:`database_identity` of a Connection, Session, AsyncConnection or AsyncSession."""
    bind = connection if hasattr(connection, "engine") else connection.get_bind()
    url = getattr(getattr(bind, "engine", None), "url", None)
    return database_identity(url) if isinstance(url, sa.URL) else None


def _dialect_name(connection: Any) -> str:
    """The dialect of a Connection, Session, AsyncConnection or AsyncSession."""
    dialect = getattr(connection, "dialect", None)
    if dialect is None:
        dialect = connection.get_bind().dialect
    return str(dialect.name)
