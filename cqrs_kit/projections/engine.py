"""The projection engine: reads the event log by position and applies it to read models.

One batch is one read-database transaction: the events after the checkpoint are applied by
the projection's handlers and the checkpoint advances to the last scanned position, even
past events the projection does not handle. The checkpoint update is guarded, so a batch
that raced another worker fails instead of applying events twice.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlalchemy as sa

from cqrs_kit.exceptions import ConfigurationError, ProjectionError, UnknownEventTypeError
from cqrs_kit.persistence import configure_sqlite
from cqrs_kit.projections.checkpoints import (
    PAUSED,
    RUNNING,
    Checkpoint,
    CheckpointStore,
    projection_metadata,
)
from cqrs_kit.projections.leases import LeaseStore
from cqrs_kit.projections.projection import (
    FailurePolicy,
    Handler,
    Projection,
    ProjectionContext,
    Strategy,
)

if TYPE_CHECKING:
    from cqrs_kit.event_types import StoredEvent
    from cqrs_kit.eventlog import EventLog

__all__ = ["CheckpointConflictError", "LeaseLostError", "ProjectionEngine", "ProjectionStatus"]

logger = logging.getLogger("cqrs_kit.projections")

Progress = Callable[[int, int], None]
"""Called as ``progress(done, total)`` while a rebuild replays the log."""


class CheckpointConflictError(ProjectionError):
    """Another worker advanced the checkpoint first; this batch was rolled back."""


class LeaseLostError(ProjectionError):
    """The worker no longer holds the projection's lease; its batch was rolled back."""


@dataclass(frozen=True, slots=True)
class ProjectionStatus:
    """Where a projection stands.

    Attributes:
        name: The projection.
        strategy: Its strategy.
        head: The highest position in the event log.
        checkpoint: The last position it applied.
        lag_events: ``head - checkpoint``.
        lag_seconds: Age of the oldest event it has not applied (0 when caught up).
        state: ``"running"`` or ``"paused"``.
        failed_position: Where it paused, if paused.
        last_error: Why it paused, if paused.
        owner: The worker holding its lease, if any (and unexpired).
        updated_at: When its checkpoint last moved (the last batch).
    """

    name: str
    strategy: str
    head: int
    checkpoint: int
    lag_events: int
    lag_seconds: float
    state: str
    failed_position: int | None
    last_error: str | None
    owner: str | None = None
    updated_at: dt.datetime | None = None


def _live_owner(lease: tuple[str | None, float] | None) -> str | None:
    if lease is None or lease[0] is None or lease[1] < time.time():
        return None
    return lease[0]


def _log_reader(write_engine: sa.Engine) -> sa.Engine:
    """An engine that reads the write database without taking its write lock."""
    if write_engine.dialect.name != "sqlite":
        return write_engine
    reader = sa.create_engine(write_engine.url)
    configure_sqlite(reader, immediate=False)
    return reader


class ProjectionEngine:
    """Runs projections: catch-up, inline application, waits, rebuilds, operations.

    Args:
        event_log: The event log (and its event types) to read.
        write_engine: The write database. Inline projections live there; other
            projections read the log (and, if they rebuild rows from the write model, the
            write tables) through it, read-only.
        read_engine: The read database of sync and async projections.
        projections: The projections.
        write_metadata: The write model's metadata; a projection whose tables belong to it
            is refused (read models never share tables with the write model).
        retry_delay: First delay between retries of a failing handler, doubled each time.
    """

    def __init__(
        self,
        *,
        event_log: EventLog,
        write_engine: sa.Engine,
        read_engine: sa.Engine,
        projections: Sequence[Projection],
        write_metadata: sa.MetaData | None = None,
        retry_delay: float = 0.05,
    ) -> None:
        """Check the projections and prepare their handler tables."""
        self.event_log = event_log
        self.write_engine = write_engine
        self.read_engine = read_engine
        self.retry_delay = retry_delay
        self.store = CheckpointStore()
        self.leases = LeaseStore()
        self._log_engine = _log_reader(write_engine)
        self._projections: dict[str, Projection] = {}
        self._handlers: dict[str, dict[str, Handler]] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._advanced = threading.Condition()
        self._generation = 0  # bumped on every local batch, so a wait cannot miss a wake-up
        write_tables = set(write_metadata.tables) if write_metadata is not None else set()
        write_tables |= set(event_log.table.metadata.tables)
        for projection in projections:
            self._add(projection, write_tables)

    def _add(self, projection: Projection, write_tables: set[str]) -> None:
        if projection.name in self._projections:
            msg = f"two projections are named {projection.name!r}"
            raise ConfigurationError(msg)
        shared = sorted(t.name for t in projection.tables if t.name in write_tables)
        if shared:
            msg = (
                f"projection {projection.name!r} writes {shared}, which are write-model "
                f"tables; give read models their own tables (and MetaData)"
            )
            raise ConfigurationError(msg)
        names = {
            self.event_log.event_types.name_of(cls): h for cls, h in projection.handlers.items()
        }
        self._projections[projection.name] = projection
        self._handlers[projection.name] = names
        self._locks[projection.name] = threading.Lock()

    def close(self) -> None:
        """Release the connections the engine opened itself (not the engines it was given)."""
        if self._log_engine is not self.write_engine:
            self._log_engine.dispose()

    # -- set-up and lookup -------------------------------------------------------------

    @property
    def projections(self) -> list[Projection]:
        """Every projection, in registration order."""
        return list(self._projections.values())

    def projection(self, name: str) -> Projection:
        """Return the projection called ``name``.

        Raises:
            ConfigurationError: There is none.
        """
        try:
            return self._projections[name]
        except KeyError:
            msg = f"no projection is named {name!r}; known: {sorted(self._projections)}"
            raise ConfigurationError(msg) from None

    def names(self, strategy: Strategy | None = None) -> list[str]:
        """The names of the projections (with ``strategy``, only those)."""
        return [p.name for p in self._projections.values() if strategy in (None, p.strategy)]

    def _engine_of(self, projection: Projection) -> sa.Engine:
        return self.write_engine if projection.strategy is Strategy.INLINE else self.read_engine

    def setup(self) -> None:
        """Create the read-model tables, checkpoint tables and checkpoint rows if missing."""
        for engine in {self.read_engine, self.write_engine}:
            projections = [p for p in self._projections.values() if self._engine_of(p) is engine]
            if not projections:
                continue
            projection_metadata.create_all(engine)
            for projection in projections:
                for table in projection.tables:
                    table.create(engine, checkfirst=True)
            with engine.begin() as connection:
                for projection in projections:
                    self.store.ensure(connection, projection.name)

    # -- applying ----------------------------------------------------------------------

    def catch_up(
        self,
        name: str,
        *,
        until: int | None = None,
        owner: str | None = None,
        max_batches: int | None = None,
    ) -> int:
        """Apply batches until the projection reaches the log head (or ``until``).

        Args:
            name: The projection.
            until: Stop once this position is applied.
            owner: The worker that must hold the projection's lease (distributed workers);
                each batch checks it in its own transaction.
            max_batches: Stop after this many batches (a worker renews its leases between
                passes, so a long backlog must not keep it away for longer than the TTL).

        Returns:
            How many events its handlers applied.

        Raises:
            LeaseLostError: ``owner`` does not hold the lease (the batch rolled back).
            CheckpointConflictError: Another worker moved the checkpoint first.
        """
        projection = self.projection(name)
        applied = 0
        batches = 0
        with self._locks[name]:
            while True:
                count, reached, more = self._batch(projection, owner=owner)
                applied += count
                batches += 1
                if not more or (until is not None and reached >= until):
                    return applied
                if max_batches is not None and batches >= max_batches:
                    return applied

    def run_once(self, names: Iterable[str] | None = None) -> int:
        """Catch every (or each named) projection up once; returns the events applied.

        A projection that fails is logged and left for the next run; the others go on.
        """
        applied = 0
        for name in names if names is not None else self.names():
            try:
                applied += self.catch_up(name)
            except Exception:
                logger.exception("projection %s failed to catch up", name)
        return applied

    def apply_inline(self, connection: sa.Connection) -> None:
        """Apply inline projections inside a command's transaction (a transaction hook).

        Errors propagate, so the command rolls back with its projection.
        """
        for name in self.names(Strategy.INLINE):
            projection = self._projections[name]
            while True:
                _count, _reached, more = self._apply_batch(
                    projection, connection, connection, strict=False, inline=True
                )
                if not more:
                    break

    def _batch(
        self, projection: Projection, *, strict: bool = False, owner: str | None = None
    ) -> tuple[int, int, bool]:
        engine = self._engine_of(projection)
        with engine.begin() as connection, self._log_engine.connect() as log_connection:
            if owner is not None and not self.leases.holds(connection, projection.name, owner):
                msg = f"{owner} no longer holds the lease of projection {projection.name!r}"
                raise LeaseLostError(msg, projection=projection.name)
            result = self._apply_batch(
                projection, connection, log_connection, strict=strict, inline=False
            )
        with self._advanced:
            self._generation += 1
            self._advanced.notify_all()
        return result

    def _apply_batch(
        self,
        projection: Projection,
        connection: sa.Connection,
        log_connection: sa.Connection,
        *,
        strict: bool,
        inline: bool,
    ) -> tuple[int, int, bool]:
        """Apply one batch in ``connection``'s transaction; ``(applied, reached, more)``."""
        checkpoint = self.store.get(connection, projection.name, lock=True)
        if checkpoint.state == PAUSED:
            return 0, checkpoint.position, False
        events = self.event_log.read(
            log_connection, after=checkpoint.position, limit=projection.batch_size
        )
        if not events:
            return 0, checkpoint.position, False
        handlers = self._handlers[projection.name]
        more = len(events) == projection.batch_size
        if strict:
            self._check_known(projection, events)
        # Fast path: the whole batch under one savepoint. Only if a handler fails is the
        # batch replayed event by event, each in its own savepoint with retries.
        try:
            if inline:  # a failure rolls the command back: nothing to isolate
                applied = self._apply_all(handlers, events, connection, None)
            else:
                with connection.begin_nested():
                    applied = self._apply_all(handlers, events, connection, log_connection)
        except Exception as exc:
            if inline:
                msg = f"inline projection {projection.name!r} failed: {exc}"
                raise ProjectionError(msg, projection=projection.name) from exc
            logger.info(
                "projection %s: a batch failed; replaying it event by event", projection.name
            )
        else:
            self._advance(connection, projection, checkpoint.position, events[-1].position)
            return applied, events[-1].position, more
        return self._apply_one_by_one(
            projection, events, (connection, log_connection), start=checkpoint.position, more=more
        )

    def _apply_one_by_one(
        self,
        projection: Projection,
        events: list[StoredEvent],
        connections: tuple[sa.Connection, sa.Connection],
        *,
        start: int,
        more: bool,
    ) -> tuple[int, int, bool]:
        """Apply events one at a time with retries; pause or dead-letter a failing one."""
        connection, log_connection = connections
        handlers = self._handlers[projection.name]
        applied = 0
        reached = start
        for stored in events:
            handler = handlers.get(stored.event_type)
            if handler is not None:
                context = ProjectionContext(connection, stored, log_connection)
                error = self._apply(projection, handler, stored, context)
                if error is None:
                    applied += 1
                elif projection.on_failure is FailurePolicy.PAUSE:
                    self._advance(connection, projection, start, reached)
                    self.store.set_state(
                        connection,
                        projection.name,
                        PAUSED,
                        failed_position=stored.position,
                        failed_event_type=stored.event_type,
                        last_error=f"{type(error.__cause__).__name__}: {error.__cause__}",
                    )
                    logger.error(
                        "projection %s paused at %s: %s",
                        projection.name,
                        stored.position,
                        error.__cause__,
                    )
                    return applied, reached, False
                else:
                    self.store.dead_letter(
                        connection,
                        projection.name,
                        stored.position,
                        stored.event_type,
                        repr(error.__cause__),
                    )
            reached = stored.position
        self._advance(connection, projection, start, reached)
        return applied, reached, more

    def _check_known(self, projection: Projection, events: list[StoredEvent]) -> None:
        for stored in events:
            if stored.event_type not in self.event_log.event_types:
                msg = (
                    f"rebuild of {projection.name!r} met the unknown event type "
                    f"{stored.event_type!r} at position {stored.position}"
                )
                raise UnknownEventTypeError(
                    msg, event_type=stored.event_type, position=stored.position
                )

    def _apply_all(
        self,
        handlers: dict[str, Handler],
        events: list[StoredEvent],
        connection: sa.Connection,
        log_connection: sa.Connection | None,
    ) -> int:
        decode = self.event_log.event_types.decode
        applied = 0
        for stored in events:
            handler = handlers.get(stored.event_type)
            if handler is not None:
                handler(decode(stored), ProjectionContext(connection, stored, log_connection))
                applied += 1
        return applied

    def _advance(
        self, connection: sa.Connection, projection: Projection, expected: int, reached: int
    ) -> None:
        if reached != expected and not self.store.advance(
            connection, projection.name, expected, reached
        ):
            msg = (
                f"projection {projection.name!r}: another worker moved the checkpoint "
                f"from {expected}"
            )
            raise CheckpointConflictError(msg, projection=projection.name, position=expected)

    def _apply(
        self,
        projection: Projection,
        handler: Handler,
        stored: StoredEvent,
        context: ProjectionContext,
    ) -> ProjectionError | None:
        attempts = projection.retries + 1
        for attempt in range(attempts):
            try:
                with context.connection.begin_nested():
                    handler(self.event_log.event_types.decode(stored), context)
            except Exception as exc:  # noqa: BLE001 - every handler failure is retried, then reported
                if attempt + 1 < attempts:
                    time.sleep(self.retry_delay * 2**attempt)
                    continue
                error = ProjectionError(
                    f"projection {projection.name!r} failed on {stored.event_type!r} at "
                    f"position {stored.position}: {exc}",
                    projection=projection.name,
                    position=stored.position,
                    event_type=stored.event_type,
                )
                error.__cause__ = exc
                return error
            return None
        return None  # pragma: no cover - the loop always returns

    # -- waiting -------------------------------------------------------------------------

    def positions(self, names: Iterable[str]) -> dict[str, int]:
        """The checkpoint positions of the named projections."""
        result: dict[str, int] = {}
        wanted = set(names)
        for engine in {self._engine_of(self._projections[n]) for n in wanted}:
            with engine.connect() as connection:
                for checkpoint in self.store.all(connection):
                    if checkpoint.name in wanted:
                        result[checkpoint.name] = checkpoint.position
        return result

    def wait_for(self, names: Iterable[str], token: int, timeout: float) -> bool:
        """Wait until every named projection has applied ``token``; ``False`` on timeout.

        Checkpoints advanced by this process wake the wait at once; others (another
        process's worker) are seen by polling with backoff.
        """
        names = list(names)
        deadline = time.monotonic() + timeout
        poll = 0.005
        while True:
            with self._advanced:
                generation = self._generation
            positions = self.positions(names)
            if all(positions.get(n, 0) >= token for n in names):
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            with self._advanced:
                if self._generation == generation:  # nothing advanced since we looked
                    self._advanced.wait(min(remaining, poll))
            poll = min(poll * 2, 0.25)

    # -- operations ----------------------------------------------------------------------

    def status(self) -> list[ProjectionStatus]:
        """The status of every projection."""
        with self._log_engine.connect() as log_connection:
            head = self.event_log.head(log_connection)
            checkpoints = {}
            owners: dict[str, tuple[str | None, float]] = {}
            for engine in {self.read_engine, self.write_engine}:
                with engine.connect() as connection:
                    if sa.inspect(connection).has_table("projection_checkpoints"):
                        checkpoints.update({c.name: c for c in self.store.all(connection)})
                        owners.update(self.leases.owners(connection))
            now = dt.datetime.now(dt.UTC)
            statuses = []
            for projection in self._projections.values():
                checkpoint = checkpoints.get(projection.name)
                position = checkpoint.position if checkpoint else 0
                lag_seconds = 0.0
                if position < head:
                    oldest = self.event_log.read(log_connection, after=position, limit=1)
                    if oldest:
                        age = now - oldest[0].recorded_at  # read back in UTC
                        lag_seconds = max(0.0, age.total_seconds())
                statuses.append(
                    ProjectionStatus(
                        name=projection.name,
                        strategy=projection.strategy.value,
                        head=head,
                        checkpoint=position,
                        lag_events=max(0, head - position),
                        lag_seconds=lag_seconds,
                        state=checkpoint.state if checkpoint else "new",
                        failed_position=checkpoint.failed_position if checkpoint else None,
                        last_error=checkpoint.last_error if checkpoint else None,
                        owner=_live_owner(owners.get(projection.name)),
                        updated_at=checkpoint.updated_at if checkpoint else None,
                    )
                )
        return statuses

    def checkpoint(self, name: str) -> Checkpoint:
        """The checkpoint row of ``name``."""
        with self._engine_of(self.projection(name)).connect() as connection:
            return self.store.get(connection, name)

    def pause(self, name: str, reason: str = "paused by an operator") -> None:
        """Stop applying events to ``name`` until :meth:`resume`."""
        with self._engine_of(self.projection(name)).begin() as connection:
            self.store.set_state(connection, name, PAUSED, last_error=reason)

    def resume(self, name: str) -> None:
        """Resume ``name``; its next batch retries the event it stopped at."""
        with self._engine_of(self.projection(name)).begin() as connection:
            self.store.set_state(connection, name, RUNNING)

    def skip(self, name: str) -> int:
        """Skip the event a paused ``name`` stopped at, resume it, and return that position.

        Raises:
            ConfigurationError: The projection is not paused at a failed event.
        """
        with self._engine_of(self.projection(name)).begin() as connection:
            checkpoint = self.store.get(connection, name, lock=True)
            if checkpoint.state != PAUSED or checkpoint.failed_position is None:
                msg = f"projection {name!r} is not paused at a failed event; nothing to skip"
                raise ConfigurationError(msg)
            self.store.advance(connection, name, checkpoint.position, checkpoint.failed_position)
            self.store.set_state(connection, name, RUNNING)
            return checkpoint.failed_position

    def retry(self, name: str) -> int:
        """Resume ``name`` and catch it up now; returns the events applied."""
        self.resume(name)
        return self.catch_up(name)

    def rebuild(
        self,
        name: str,
        *,
        in_place: bool = False,
        restart: bool = False,
        progress: Progress | None = None,
    ) -> int:
        """Replay the whole log into ``name``'s tables, in batches.

        By default the rebuild is blue/green (see :mod:`cqrs_kit.projections.rebuild`): the
        log is replayed into a staging copy while the live tables keep serving, then one
        transaction switches the copy in. ``in_place=True`` clears the live tables and
        replays into them (for small models: queries see a partial model meanwhile).
        Unknown event types fail a rebuild (continuous processing skips them). Both kinds
        resume from their checkpoint after a crash: run the rebuild (blue/green) or
        :meth:`catch_up` (in place) again.

        Args:
            name: The projection.
            in_place: Rebuild the live tables directly.
            restart: Blue/green only: discard an interrupted staging copy instead of
                resuming it.
            progress: Called as ``progress(done, total)`` after each batch.

        Returns:
            How many events its handlers applied.
        """
        projection = self.projection(name)
        if not in_place:
            from cqrs_kit.projections.rebuild import BlueGreenRebuild

            rebuild = BlueGreenRebuild(self, name)
            try:
                return rebuild.run(restart=restart, progress=progress)
            finally:
                rebuild.close()
        with self._locks[name]:
            with self._engine_of(projection).begin() as connection:
                for table in reversed(projection.tables):
                    connection.execute(sa.delete(table))
                self.store.reset(connection, name)
            with self._log_engine.connect() as log_connection:
                head = self.event_log.head(log_connection)
            applied = 0
            while True:
                count, reached, more = self._batch(projection, strict=True)
                applied += count
                if progress is not None:
                    progress(min(reached, head), head)
                if not more:
                    return applied
