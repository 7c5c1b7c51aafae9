"""Defining a projection: the events it handles and the read-model tables it writes."""

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

__all__ = ["FailurePolicy", "Projection", "ProjectionContext", "Strategy"]

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
            ``connection`` for both).
    """

    connection: sa.Connection
    stored: StoredEvent
    write_connection: sa.Connection | None = None

    @property
    def write(self) -> sa.Connection:
        """The connection to read the write model from."""
        return self.write_connection if self.write_connection is not None else self.connection


Handler = Callable[[Any, ProjectionContext], None]


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
    """

    name: str
    tables: Sequence[sa.Table] = ()
    strategy: Strategy = Strategy.ASYNC
    on_failure: FailurePolicy = FailurePolicy.PAUSE
    retries: int = 3
    batch_size: int = 500
    handlers: dict[type[Event], Handler] = field(default_factory=dict)

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
        if not (is_message_class(event_type) and issubclass(event_type, Event)):
            msg = f"projection {self.name!r}: on() takes an Event subclass, got {event_type!r}"
            raise ConfigurationError(msg)
        if event_type in self.handlers:
            msg = f"projection {self.name!r} already handles {event_type.__name__}"
            raise ConfigurationError(msg)

        def decorate(
            handler: Callable[[TEvent, ProjectionContext], None],
        ) -> Callable[[TEvent, ProjectionContext], None]:
            self.handlers[event_type] = handler
            return handler

        return decorate

    @property
    def event_types(self) -> list[type[Event]]:
        """The event classes it handles."""
        return list(self.handlers)
