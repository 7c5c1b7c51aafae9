"""The unit of work a command handler writes through.

The base class holds what every backend shares: the events a handler records. Backends
(:class:`cqrs_kit.middleware.transaction.SqlAlchemyUnitOfWork`, ...) add the session and
append the recorded events to the event log in the command's transaction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cqrs_kit.context import current_context
from cqrs_kit.event_types import PendingEvent

if TYPE_CHECKING:
    import uuid

    from cqrs_kit.messages import Event

__all__ = ["UnitOfWork", "wants_unit_of_work"]


class UnitOfWork:
    """Collects the events of one transaction; appended to the log when it commits.

    Handlers receive it as a dependency: a keyword parameter annotated with this class (or
    a subclass) is filled from the running transaction by the default resolver.

    Attributes:
        positions: The log positions of the appended events, after the commit.
    """

    def __init__(self) -> None:
        """Create an empty unit of work."""
        self._pending: list[PendingEvent] = []
        self.positions: list[int] = []

    def record(
        self,
        event: Event,
        *,
        stream_id: str | int | uuid.UUID = "",
        stream_type: str | None = None,
    ) -> None:
        """Record ``event``: it is appended to the event log in this transaction.

        The event's metadata records the dispatch that recorded it: its correlation id,
        and as causation id the message id of the (possibly nested) command.

        Args:
            event: The event.
            stream_id: The id of the entity it is about (e.g. the order id).
            stream_type: The kind of entity; defaults to the event type's registered
                ``stream_type``.
        """
        ctx = current_context()
        metadata = (
            {
                "correlation_id": ctx.correlation_id,
                "causation_id": ctx.message_id,
                "command_type": type(ctx.message).__qualname__,
            }
            if ctx is not None
            else {}
        )
        self._pending.append(PendingEvent(event, stream_type or "", str(stream_id), metadata))

    @property
    def pending(self) -> list[PendingEvent]:
        """The events recorded and not yet appended."""
        return list(self._pending)

    @property
    def last_position(self) -> int | None:
        """The highest position appended by this unit of work, or ``None``."""
        return self.positions[-1] if self.positions else None


def wants_unit_of_work(annotation: object) -> bool:
    """Whether a handler parameter with this annotation asks for the unit of work."""
    return isinstance(annotation, type) and issubclass(annotation, UnitOfWork)
