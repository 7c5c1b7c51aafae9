"""Applying a batch of events to a projection's handlers: the engine's inner loop.

The common path calls each handler directly, grouping consecutive events that go to one
batch handler into a *run* (one call). It pays for no savepoint per event: a failure rolls
the whole batch back and the engine replays it event by event, each event in a savepoint
(sent as plain SQL, so it is not compiled on every use), with retries.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from cqrs_kit.projections.projection import BatchContext, ProjectionContext

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence
    from types import TracebackType

    import sqlalchemy as sa

    from cqrs_kit.event_types import EventTypes, StoredEvent
    from cqrs_kit.messages import Event
    from cqrs_kit.projections.projection import Projection

Route = tuple[bool, "Callable[..., None]"]
"""How one event type is handled: ``(is a batch handler, the handler)``."""


# How ``BatchRunner.apply_batch`` (``_batch.py``) reacts to a failing handler.
FAST = "fast"
"""Raise :class:`BatchFailedError`: the caller rolls the transaction back and replays."""
SAVEPOINT = "savepoint"
"""Roll the batch's savepoint back and replay it event by event, in the same transaction."""
ONE_BY_ONE = "one by one"
"""No common path: event by event from the start, each in a savepoint."""
INLINE = "inline"
"""Raise :class:`~cqrs_kit.ProjectionError`: the command rolls back with its projection."""


class BatchFailedError(Exception):
    """A handler failed on a batch's common path; its ``__cause__`` is the handler's error.

    The engine rolls the batch's transaction back and replays it event by event.
    """


def routes(projection: Projection, event_types: EventTypes) -> dict[str, Route]:
    """The handler of each event type name ``projection`` handles."""
    table: dict[str, Route] = {
        event_types.name_of(cls): (False, handler) for cls, handler in projection.handlers.items()
    }
    for cls, batch_handler in projection.batch_handlers.items():
        table[event_types.name_of(cls)] = (True, batch_handler)
    return table


class LazyConnection:
    """A connection to ``engine``, opened by the first call and closed on exit.

    Args:
        engine: The engine to connect to.
    """

    __slots__ = ("_engine", "current")

    def __init__(self, engine: sa.Engine) -> None:
        """Open nothing yet."""
        self._engine = engine
        self.current: sa.Connection | None = None

    def __call__(self) -> sa.Connection:
        """The connection, opened on first use."""
        if self.current is None:
            self.current = self._engine.connect()
        return self.current

    def __enter__(self) -> LazyConnection:
        """Nothing to do: the connection opens on first use."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Close the connection if it was opened."""
        if self.current is not None:
            self.current.close()
            self.current = None


_SAVEPOINT = "SAVEPOINT cqrs_kit_projection"
_ROLLBACK_TO = "ROLLBACK TO SAVEPOINT cqrs_kit_projection"
_RELEASE = "RELEASE SAVEPOINT cqrs_kit_projection"


@contextlib.contextmanager
def savepoint(connection: sa.Connection) -> Iterator[None]:
    """Run the block in a savepoint: rolled back (and the error re-raised) if it raises.

    The statements go to the driver as they are: SQLAlchemy compiles its own savepoint
    clauses anew on every use, which cost more than the handler's insert.
    """
    connection.exec_driver_sql(_SAVEPOINT)
    try:
        yield
    except BaseException:
        connection.exec_driver_sql(_ROLLBACK_TO)
        connection.exec_driver_sql(_RELEASE)
        raise
    connection.exec_driver_sql(_RELEASE)


def apply_all(
    table: Mapping[str, Route],
    events: Sequence[StoredEvent],
    decoded: Sequence[Event] | None,
    *,
    connection: sa.Connection,
    write: LazyConnection | None,
    decode: Callable[[StoredEvent], Event],
) -> int:
    """Apply ``events`` in log order, a run of one batch handler's events in one call.

    Args:
        table: The routes by event type name.
        events: The log rows.
        decoded: The events already decoded (a command's own events), else ``None``.
        connection: The read-model connection.
        write: Where handlers read the write model (``None``: ``connection`` itself).
        decode: Turns a log row into its event.

    Returns:
        How many events a handler took.
    """
    opened = write.current if write is not None else None
    applied = 0
    run: list[Any] = []
    run_stored: list[StoredEvent] = []
    run_handler: Callable[..., None] | None = None
    for index, stored in enumerate(events):
        route = table.get(stored.event_type)
        if route is None:
            continue
        batch, handler = route
        event = decode(stored) if decoded is None else decoded[index]
        if batch:
            if handler is not run_handler:
                if run_handler is not None:
                    run_handler(run, BatchContext(connection, run_stored, opened, write))
                run, run_stored, run_handler = [], [], handler
            run.append(event)
            run_stored.append(stored)
        else:
            if run_handler is not None:
                run_handler(run, BatchContext(connection, run_stored, opened, write))
                run, run_stored, run_handler = [], [], None
            handler(event, ProjectionContext(connection, stored, opened, write))
        applied += 1
    if run_handler is not None:
        run_handler(run, BatchContext(connection, run_stored, opened, write))
    return applied


def apply_one(
    route: Route,
    event: Event,
    stored: StoredEvent,
    connection: sa.Connection,
    write: LazyConnection | None,
) -> None:
    """Apply one event (a batch handler gets a batch of one) in a savepoint."""
    batch, handler = route
    opened = write.current if write is not None else None
    with savepoint(connection):
        if batch:
            handler([event], BatchContext(connection, [stored], opened, write))
        else:
            handler(event, ProjectionContext(connection, stored, opened, write))
