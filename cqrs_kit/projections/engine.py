"""The projection engine: reads the event log by position and applies it to read models.

:class:`ProjectionEngine` is the front the middleware, the workers and the CLI use. It
registers projections, creates their tables and owns one lock per projection; the work
itself lives beside it, one concept per module:

- ``_batch.py``: one batch in one transaction (guarded checkpoint, lease check, retries,
  pause or dead letter), with ``_apply.py`` as its inner loop; the conflicts it raises
  live with what they guard (``checkpoints.py``, ``leases.py``);
- ``waiting.py``: waits for checkpoints, woken by this process's batches;
- ``status.py``: :class:`~cqrs_kit.projections.ProjectionStatus` and how it is computed;
- ``rebuild.py``: blue/green and in-place rebuilds.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

import sqlalchemy as sa

from cqrs_kit.eventlog import database_identity
from cqrs_kit.exceptions import ConfigurationError
from cqrs_kit.persistence import configure_sqlite
from cqrs_kit.projections._apply import INLINE, Route, routes
from cqrs_kit.projections._batch import BatchRunner
from cqrs_kit.projections.checkpoints import (
    PAUSED,
    RUNNING,
    Checkpoint,
    CheckpointStore,
    projection_metadata,
)
from cqrs_kit.projections.leases import LeaseStore
from cqrs_kit.projections.projection import Projection, Strategy
from cqrs_kit.projections.status import ProjectionStatus, read_statuses
from cqrs_kit.projections.waiting import Advances

if TYPE_CHECKING:
    from cqrs_kit.eventlog import Appended, EventLog

__all__ = ["ProjectionEngine"]

logger = logging.getLogger("cqrs_kit.projections")

Progress = Callable[[int, int], None]
"""Called as ``progress(done, total)`` while a rebuild replays the log."""


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
        self._write_database = database_identity(write_engine.url)
        self.read_engine = read_engine
        self.store = CheckpointStore()
        self.leases = LeaseStore()
        self._log_engine = _log_reader(write_engine)
        self._projections: dict[str, Projection] = {}
        self._routes: dict[str, dict[str, Route]] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._advances = Advances()
        self._batches = BatchRunner(
            event_log=event_log,
            log_engine=self._log_engine,
            routes=self._routes,
            store=self.store,
            leases=self.leases,
            retry_delay=retry_delay,
        )
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

    @property
    def retry_delay(self) -> float:
        """First delay between retries of a failing handler, doubled each time."""
        return self._batches.retry_delay

    @retry_delay.setter
    def retry_delay(self, value: float) -> None:
        self._batches.retry_delay = value

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
        """Whether ``appended`` went to this engine's log: its database, table, event types."""
        log = appended.event_log
        return (
            bool(appended.positions)
            and appended.database == self._write_database
            and (
                log is self.event_log
                or (
                    log.table is self.event_log.table
                    and log.event_types is self.event_log.event_types
                )
            )
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
                _count, _reached, more = self._batches.apply_batch(
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
        result = self._batches.transact(
            projection,
            self._engine_of(projection).begin,
            strict=strict,
            owner=owner,
            appended=appended,
        )
        self._advances.notify()
        return result

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

        def reached() -> bool:
            positions = self.positions(names)
            return all(positions.get(n, 0) >= token for n in names)

        return self._advances.wait(reached, timeout)

    # -- operations ----------------------------------------------------------------------

    def status(self) -> list[ProjectionStatus]:
        """The status of every projection."""
        return read_statuses(
            event_log=self.event_log,
            log_engine=self._log_engine,
            engines={self.read_engine, self.write_engine},
            store=self.store,
            leases=self.leases,
            projections=self._projections.values(),
        )

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
        self.projection(name)
        from cqrs_kit.projections.rebuild import BlueGreenRebuild, rebuild_in_place

        if in_place:
            return rebuild_in_place(self, name, progress=progress)
        rebuild = BlueGreenRebuild(self, name)
        try:
            return rebuild.run(restart=restart, progress=progress)
        finally:
            rebuild.close()
