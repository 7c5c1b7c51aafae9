"""Defining a projection: the events it handles and the read-model tables it writes.

A handler takes one event (``@projection.on(EventType)``) or, for throughput, all of a
batch's consecutive events of a type at once (``@projection.on_batch(EventType)``), so it can
write them with one ``executemany``.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from cqrs_kit.exceptions import ConfigurationError
from cqrs_kit.messages import Event, is_message_class

if TYPE_CHECKING:
    import sqlalchemy as sa

    from cqrs_kit.event_types import StoredEvent

__all__ = [
    "BatchContext",
    "BatchHandler",
    "FailurePolicy",
    "Handler",
    "Projection",
    "ProjectionContext",
    "Strategy",
]

TEvent = TypeVar("TEvent", bound=Event)


class Strategy(enum.Enum):
    """When a projection applies a command's events."""

    INLINE = "inline"
    """In the command's transaction (read tables in the write database). Strongest, slowest."""
    SYNC = "sync"
    """After the command commits, before ``send`` returns: the caller sees its own write."""
    ASYNC = "async"
    """In a background worker: eventually consistent; the fastest writes."""


class FailurePolicy(enum.Enum):
    """What happens when a handler still fails after its retries."""

    PAUSE = "pause"
    """Stop the projection at the failing event and record the error (the default)."""
    DEAD_LETTER = "dead_letter"
    """Record the event as a dead letter and go on with the next one."""


@dataclass(slots=True)
class ProjectionContext:
    """What a projection handler gets besides the event.

    Attributes:
        connection: The read database connection, inside the batch's transaction.
        stored: The log row of the event (position, ids, metadata, recorded_at).
        write_connection: A connection to the write database, for projections that rebuild
            a row from the write model (``None`` for inline projections, which use
            ``connection`` for both, and until :attr:`write` first opens it).
    """

    connection: sa.Connection
    stored: StoredEvent
    write_connection: sa.Connection | None = None
    _open_write: Callable[[], sa.Connection] | None = field(default=None, repr=False)

    @property
    def write(self) -> sa.Connection:
        """The connection to read the write model from (opened on first use)."""
        return _write_of(self)


@dataclass(slots=True)
class BatchContext:
    """What a batch handler gets besides the events.

    Attributes:
        connection: The read database connection, inside the batch's transaction.
        stored: The log rows of the events, in the same order as the events.
        write_connection: A connection to the write database (see
            :attr:`ProjectionContext.write_connection`).
    """

    connection: sa.Connection
    stored: Sequence[StoredEvent]
    write_connection: sa.Connection | None = None
    _open_write: Callable[[], sa.Connection] | None = field(default=None, repr=False)

    @property
    def write(self) -> sa.Connection:
        """The connection to read the write model from (opened on first use)."""
        return _write_of(self)


def _write_of(context: ProjectionContext | BatchContext) -> sa.Connection:
    # The write connection is opened lazily: a sync projection applying a command's own
    # events from memory never reads the log, so most batches need no second connection.
    if context.write_connection is None and context._open_write is not None:
        context.write_connection = context._open_write()
    return context.write_connection if context.write_connection is not None else context.connection


Handler = Callable[[Any, ProjectionContext], None]
"""A per-event handler: ``handler(event, ctx)``."""

BatchHandler = Callable[[Sequence[Any], BatchContext], None]
"""A batch handler: ``handler(events, ctx)``, the events in log order (see
:meth:`Projection.on_batch`)."""


@dataclass
class Projection:
    """A named projection: event handlers and the read-model tables they write.

    Example::

        order_summary = Projection("order_summary", tables=[order_summary_table])

        @order_summary.on(OrderCreated)
        def created(event: OrderCreated, ctx: ProjectionContext) -> None:
            ctx.connection.execute(insert_summary, {...})

    Attributes:
        name: A stable name; it keys the checkpoint.
        tables: The read-model tables it owns (cleared by an in-place rebuild).
        strategy: When it runs (see :class:`Strategy`).
        on_failure: What a handler failure does after retries.
        retries: How many times a failing handler is retried before ``on_failure``.
        batch_size: Events applied per read-database transaction.
        handlers: The per-event handlers, by event class (see :meth:`on`).
        batch_handlers: The batch handlers, by event class (see :meth:`on_batch`).
    """

    name: str
    tables: Sequence[sa.Table] = ()
    strategy: Strategy = Strategy.ASYNC
    on_failure: FailurePolicy = FailurePolicy.PAUSE
    retries: int = 3
    batch_size: int = 500
    handlers: dict[type[Event], Handler] = field(default_factory=dict)
    batch_handlers: dict[type[Event], BatchHandler] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Validate the options."""
        self.strategy = Strategy(self.strategy)
        self.on_failure = FailurePolicy(self.on_failure)
        if not self.name or self.batch_size < 1 or self.retries < 0:
            msg = f"projection {self.name!r}: needs a name, batch_size >= 1 and retries >= 0"
            raise ConfigurationError(msg)

    def on(
        self, event_type: type[TEvent]
    ) -> Callable[
        [Callable[[TEvent, ProjectionContext], None]], Callable[[TEvent, ProjectionContext], None]
    ]:
        """Register the decorated function as the handler of ``event_type``.

        Raises:
            ConfigurationError: Not an event class, or it already has a handler here.
        """
        self._check_new(event_type, "on")

        def decorate(
            handler: Callable[[TEvent, ProjectionContext], None],
        ) -> Callable[[TEvent, ProjectionContext], None]:
            self.handlers[event_type] = handler
            return handler

        return decorate

    def on_batch(
        self, event_type: type[TEvent]
    ) -> Callable[
        [Callable[[Sequence[TEvent], BatchContext], None]],
        Callable[[Sequence[TEvent], BatchContext], None],
    ]:
        """Register the decorated function as the batch handler of ``event_type``.

        A batch handler receives many events at once, so it can write them with one
        ``executemany``. The engine calls it once per *run*: consecutive events of a batch
        (events the projection does not handle left out) that go to this same function.
        Register one function for several types to let a run span them. Runs are applied
        in log order, so a batch handler sees the read model as every earlier event left it,
        and must apply its events as if one by one, in order: the result must not depend on
        how the log was cut into batches and runs.

        If a batch fails, it is rolled back and replayed event by event: the handler is then
        called with one event at a time, so retries, pausing and dead letters
        (``on_failure``) apply to exactly the failing event.

        Example::

            @order_summary.on_batch(OrderCreated)
            def created(events: Sequence[OrderCreated], ctx: BatchContext) -> None:
                ctx.connection.execute(insert_summary, [{...} for event in events])

        Raises:
            ConfigurationError: Not an event class, or it already has a handler here.
        """
        self._check_new(event_type, "on_batch")

        def decorate(
            handler: Callable[[Sequence[TEvent], BatchContext], None],
        ) -> Callable[[Sequence[TEvent], BatchContext], None]:
            self.batch_handlers[event_type] = handler
            return handler

        return decorate

    def _check_new(self, event_type: type[Event], method: str) -> None:
        if not (is_message_class(event_type) and issubclass(event_type, Event)):
            msg = (
                f"projection {self.name!r}: {method}() takes an Event subclass, got {event_type!r}"
            )
            raise ConfigurationError(msg)
        if event_type in self.handlers or event_type in self.batch_handlers:
            msg = f"projection {self.name!r} already handles {event_type.__name__}"
            raise ConfigurationError(msg)

    @property
    def event_types(self) -> list[type[Event]]:
        """The event classes it handles."""
        return [*self.handlers, *self.batch_handlers]
