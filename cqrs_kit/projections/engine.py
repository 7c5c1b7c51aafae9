"""The projection engine: reads the event log by position and applies it to read models.

One batch is one read-database transaction: the events after the checkpoint are applied by
the projection's handlers and the checkpoint advances to the last scanned position, even
past events the projection does not handle. The checkpoint update is guarded, so a batch
that raced another worker fails instead of applying events twice.
"""

from __future__ import annotations

import contextlib
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
from cqrs_kit.projections._apply import (
    FAST,
    INLINE,
    ONE_BY_ONE,
    SAVEPOINT,
    BatchFailedError,
    LazyConnection,
    Route,
    apply_all,
    apply_one,
    routes,
    savepoint,
)
from cqrs_kit.projections.checkpoints import (
    PAUSED,
    RUNNING,
    Checkpoint,
    CheckpointStore,
    projection_metadata,
)
from cqrs_kit.projections.leases import LeaseStore
from cqrs_kit.projections.projection import FailurePolicy, Projection, Strategy

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from cqrs_kit.event_types import StoredEvent
    from cqrs_kit.eventlog import Appended, EventLog
    from cqrs_kit.messages import Event

__all__ = ["CheckpointConflictError", "LeaseLostError", "ProjectionEngine", "ProjectionStatus"]

logger = logging.getLogger("cqrs_kit.projections")

Progress = Callable[[int, int], None]
"""Called as ``progress(done, total)`` while a rebuild replays the log."""


def _next_after(appended: Appended, position: int) -> bool:
    """Whether ``appended`` holds exactly the log positions right after ``position``."""
    positions = appended.positions
    return positions[0] == position + 1 and positions[-1] - positions[0] == len(positions) - 1


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
        self._routes: dict[str, dict[str, Route]] = {}
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
        self._projections[projection.name] = projection
        self._routes[projection.name] = routes(projection, self.event_log.event_types)
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
        appended: Appended | None = None,
    ) -> int:
        """Apply batches until the projection reaches the log head (or ``until``).

        Args:
            name: The projection.
            until: Stop once this position is applied.
            owner: The worker that must hold the projection's lease (distributed workers);
                each batch checks it in its own transaction.
            max_batches: Stop after this many batches (a worker renews its leases between
                passes, so a long backlog must not keep it away for longer than the TTL).
            appended: Events a command has just appended *and committed* to this engine's
                log table (``ProjectionMiddleware`` passes them; others are ignored). If
                the checkpoint sits right before them, the first batch applies them from
                memory instead of reading the log; otherwise it reads the log as usual.

        Returns:
            How many events its handlers applied.

        Raises:
            LeaseLostError: ``owner`` does not hold the lease (the batch rolled back).
            CheckpointConflictError: Another worker moved the checkpoint first.
        """
        projection = self.projection(name)
        if appended is not None and not self._same_log(appended):
            appended = None
        applied = 0
        batches = 0
        with self._locks[name]:
            while True:
                count, reached, more = self._batch(projection, owner=owner, appended=appended)
                appended = None
                applied += count
                batches += 1
                if not more or (until is not None and reached >= until):
                    return applied
                if max_batches is not None and batches >= max_batches:
                    return applied

    def _same_log(self, appended: Appended) -> bool:
        """Whether ``appended`` went to this engine's log table, with its event types."""
        log = appended.event_log
        return bool(appended.positions) and (
            log is self.event_log
            or (log.table is self.event_log.table and log.event_types is self.event_log.event_types)
        )

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
                    projection, connection, None, strict=False, mode=INLINE
                )
                if not more:
                    break

    def _batch(
        self,
        projection: Projection,
        *,
        strict: bool = False,
        owner: str | None = None,
        appended: Appended | None = None,
    ) -> tuple[int, int, bool]:
        result = self._transact(
            projection,
            self._engine_of(projection).begin,
            strict=strict,
            owner=owner,
            appended=appended,
        )
        with self._advanced:
            self._generation += 1
            self._advanced.notify_all()
        return result

    def _transact(
        self,
        projection: Projection,
        begin: Callable[[], AbstractContextManager[sa.Connection]],
        *,
        strict: bool,
        owner: str | None = None,
        appended: Appended | None = None,
    ) -> tuple[int, int, bool]:
        """Apply one batch in a transaction of its own; ``(applied, reached, more)``.

        The batch first runs without savepoints. If a handler fails, the transaction rolls
        back and the batch runs again in a new one, event by event (see
        :meth:`_apply_one_by_one`).
        """
        mode = FAST
        while True:
            try:
                with begin() as connection, LazyConnection(self._log_engine) as log:
                    if owner is not None and not self.leases.holds(
                        connection, projection.name, owner
                    ):
                        msg = f"{owner} no longer holds the lease of projection {projection.name!r}"
                        raise LeaseLostError(msg, projection=projection.name)
                    return self._apply_batch(
                        projection, connection, log, strict=strict, mode=mode, appended=appended
                    )
            except BatchFailedError as exc:
                logger.info(
                    "projection %s: a batch failed (%r); replaying it event by event",
                    projection.name,
                    exc.__cause__,
                )
                mode = ONE_BY_ONE

    def _apply_batch(
        self,
        projection: Projection,
        connection: sa.Connection,
        log: LazyConnection | None,
        *,
        strict: bool,
        mode: str,
        appended: Appended | None = None,
    ) -> tuple[int, int, bool]:
        """Apply one batch in ``connection``'s transaction; ``(applied, reached, more)``.

        Args:
            projection: The projection.
            connection: Its tables' connection, in a transaction.
            log: Where to read the log (and handlers the write model); ``None`` for inline
                projections, which use ``connection``.
            strict: Fail on event types that are not registered (rebuilds).
            mode: What a handler failure does: ``FAST``, ``SAVEPOINT``, ``ONE_BY_ONE`` or
                ``INLINE`` (see :mod:`cqrs_kit.projections._apply`).
            appended: A command's committed events, applied from memory if they are next.
        """
        if (
            appended is not None
            and mode == FAST
            and len(appended.positions) <= projection.batch_size
        ):
            applied = self._apply_claimed(projection, connection, log, appended)
            if applied is not None:
                return applied, appended.positions[-1], False
        checkpoint = self.store.get(connection, projection.name, lock=True)
        if checkpoint.state == PAUSED:
            return 0, checkpoint.position, False
        start = checkpoint.position
        events, decoded, more = self._next_events(projection, start, connection, log, appended)
        if not events:
            return 0, start, False
        if strict:
            self._check_known(projection, events)
        if mode == ONE_BY_ONE:
            return self._apply_one_by_one(
                projection, events, decoded, (connection, log), start=start, more=more
            )
        try:
            with savepoint(connection) if mode == SAVEPOINT else contextlib.nullcontext():
                applied = apply_all(
                    self._routes[projection.name],
                    events,
                    decoded,
                    connection=connection,
                    write=log,
                    decode=self.event_log.event_types.decode,
                )
        except Exception as exc:
            if mode == INLINE:  # a failure rolls the command back: nothing to isolate
                msg = f"inline projection {projection.name!r} failed: {exc}"
                raise ProjectionError(msg, projection=projection.name) from exc
            if mode == FAST:
                raise BatchFailedError from exc
            logger.info(
                "projection %s: a batch failed; replaying it event by event", projection.name
            )
            return self._apply_one_by_one(
                projection, events, decoded, (connection, log), start=start, more=more
            )
        self._advance(connection, projection, start, events[-1].position)
        return applied, events[-1].position, more

    def _next_events(
        self,
        projection: Projection,
        start: int,
        connection: sa.Connection,
        log: LazyConnection | None,
        appended: Appended | None,
    ) -> tuple[list[StoredEvent], Sequence[Event] | None, bool]:
        """The events after ``start``: ``(log rows, decoded events or None, more)``."""
        size = projection.batch_size
        if appended is not None and _next_after(appended, start):
            # No gap: the command's events are exactly the next positions of the log, so
            # they are what a log read would return. Apply them from memory.
            more = len(appended.positions) > size
            return appended.stored()[:size], appended.events[:size], more
        if appended is not None and start >= appended.positions[-1]:
            return [], None, False  # a concurrent caller applied them already
        source = connection if log is None else log()
        events = self.event_log.read(source, after=start, limit=size)
        return events, None, len(events) == size

    def _apply_claimed(
        self,
        projection: Projection,
        connection: sa.Connection,
        log: LazyConnection | None,
        appended: Appended,
    ) -> int | None:
        """Apply a command's own events if the checkpoint sits right before them.

        The guarded checkpoint update runs first (it also checks that the projection is
        running): if it matches, the events are the log's next positions and this
        transaction owns them; apply them from memory. ``None``: it did not match, nothing
        changed, take the usual path. A handler failure raises :class:`BatchFailedError`,
        which rolls the update back with the rest.
        """
        positions = appended.positions
        if not _next_after(appended, positions[0] - 1) or not self.store.claim(  # contiguous?
            connection, projection.name, positions[0] - 1, positions[-1]
        ):
            return None
        try:
            return apply_all(
                self._routes[projection.name],
                appended.stored(),
                appended.events,
                connection=connection,
                write=log,
                decode=self.event_log.event_types.decode,
            )
        except Exception as exc:
            raise BatchFailedError from exc

    def _apply_one_by_one(
        self,
        projection: Projection,
        events: list[StoredEvent],
        decoded: Sequence[Event] | None,
        connections: tuple[sa.Connection, LazyConnection | None],
        *,
        start: int,
        more: bool,
    ) -> tuple[int, int, bool]:
        """Apply events one at a time with retries; pause or dead-letter a failing one."""
        connection, log = connections
        table = self._routes[projection.name]
        applied = 0
        reached = start
        for index, stored in enumerate(events):
            route = table.get(stored.event_type)
            if route is not None:
                event = decoded[index] if decoded is not None else None
                error = self._apply(projection, route, stored, event, (connection, log))
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
        route: Route,
        stored: StoredEvent,
        event: Event | None,
        connections: tuple[sa.Connection, LazyConnection | None],
    ) -> ProjectionError | None:
        connection, log = connections
        attempts = projection.retries + 1
        for attempt in range(attempts):
            try:
                decoded = event if event is not None else self.event_log.event_types.decode(stored)
                apply_one(route, decoded, stored, connection, log)
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
