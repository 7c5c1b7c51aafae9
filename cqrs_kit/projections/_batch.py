"""One batch of a projection, in one transaction: the engine's catch-up step.

One batch is one read-database transaction: the events after the checkpoint are applied by
the projection's handlers and the checkpoint advances to the last scanned position, even
past events the projection does not handle. The checkpoint update is guarded, so a batch
that raced another worker fails instead of applying events twice.

A failing handler is retried; if it keeps failing, the projection's
:class:`~cqrs_kit.projections.FailurePolicy` pauses it at that event or dead-letters the
event and goes on (see :mod:`cqrs_kit.projections._apply` for how a batch is applied).
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import TYPE_CHECKING

from cqrs_kit.exceptions import ProjectionError, UnknownEventTypeError
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
    savepoint,
)
from cqrs_kit.projections.checkpoints import PAUSED, CheckpointConflictError
from cqrs_kit.projections.leases import LeaseLostError
from cqrs_kit.projections.projection import FailurePolicy

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from contextlib import AbstractContextManager

    import sqlalchemy as sa

    from cqrs_kit.event_types import StoredEvent
    from cqrs_kit.eventlog import Appended, EventLog
    from cqrs_kit.messages import Event
    from cqrs_kit.projections.checkpoints import CheckpointStore
    from cqrs_kit.projections.leases import LeaseStore
    from cqrs_kit.projections.projection import Projection

logger = logging.getLogger("cqrs_kit.projections")


def next_after(appended: Appended, position: int) -> bool:
    """Whether ``appended`` holds exactly the log positions right after ``position``."""
    positions = appended.positions
    return positions[0] == position + 1 and positions[-1] - positions[0] == len(positions) - 1


class BatchRunner:
    """Applies one batch of a projection at a time, in a transaction given to it.

    Args:
        event_log: The event log (and its event types) to read.
        log_engine: Where batches of non-inline projections read the log (and their
            handlers the write model).
        routes: The handler routes of each projection, by projection name.
        store: The checkpoint and dead-letter statements.
        leases: The lease statements.
        retry_delay: First delay between retries of a failing handler, doubled each time.
    """

    __slots__ = ("event_log", "leases", "log_engine", "retry_delay", "routes", "store")

    def __init__(
        self,
        *,
        event_log: EventLog,
        log_engine: sa.Engine,
        routes: Mapping[str, Mapping[str, Route]],
        store: CheckpointStore,
        leases: LeaseStore,
        retry_delay: float,
    ) -> None:
        """Keep what batches need."""
        self.event_log = event_log
        self.log_engine = log_engine
        self.routes = routes
        self.store = store
        self.leases = leases
        self.retry_delay = retry_delay

    def transact(
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
                with begin() as connection, LazyConnection(self.log_engine) as log:
                    if owner is not None and not self.leases.holds(
                        connection, projection.name, owner
                    ):
                        msg = f"{owner} no longer holds the lease of projection {projection.name!r}"
                        raise LeaseLostError(msg, projection=projection.name)
                    return self.apply_batch(
                        projection, connection, log, strict=strict, mode=mode, appended=appended
                    )
            except BatchFailedError as exc:
                logger.info(
                    "projection %s: a batch failed (%r); replaying it event by event",
                    projection.name,
                    exc.__cause__,
                )
                mode = ONE_BY_ONE

    def apply_batch(
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
                    self.routes[projection.name],
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
        if appended is not None and next_after(appended, start):
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
        if not next_after(appended, positions[0] - 1) or not self.store.claim(  # contiguous?
            connection, projection.name, positions[0] - 1, positions[-1]
        ):
            return None
        try:
            return apply_all(
                self.routes[projection.name],
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
        table = self.routes[projection.name]
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
