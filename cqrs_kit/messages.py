"""Typed messages: commands, queries and events.

A command or query fixes its result type through its type parameter, so the mediator can
return it typed: ``mediator.ask(GetOrderDetail(...))`` is ``OrderDetail | None`` for::

    class GetOrderDetail(Query[OrderDetail | None]):
        order_id: int

Messages are pydantic models: frozen, and refusing unknown fields.
"""

from __future__ import annotations

import enum
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

__all__ = [
    "Command",
    "Event",
    "Message",
    "MessageKind",
    "Query",
    "is_message_class",
    "result_type_of",
]

TResult_co = TypeVar("TResult_co", covariant=True)


class MessageKind(enum.Enum):
    """What a message asks of the system."""

    COMMAND = "command"
    QUERY = "query"
    EVENT = "event"


class Message(BaseModel):
    """Base of every message: an immutable pydantic model that forbids unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: ClassVar[MessageKind]


class Command(Message, Generic[TResult_co]):
    """A request to change state, handled by exactly one handler that returns ``TResult_co``."""

    kind: ClassVar[MessageKind] = MessageKind.COMMAND


class Query(Message, Generic[TResult_co]):
    """A request to read state, handled by exactly one handler that returns ``TResult_co``."""

    kind: ClassVar[MessageKind] = MessageKind.QUERY


class Event(Message):
    """A fact that happened, handled by zero or more handlers."""

    kind: ClassVar[MessageKind] = MessageKind.EVENT


_GENERIC_BASES = (Command, Query)


def result_type_of(message_type: type[Message]) -> Any:
    """Return the result type a command or query class declares, e.g. ``int`` for ``Command[int]``.

    Args:
        message_type: A subclass of :class:`Command` or :class:`Query`.

    Returns:
        The declared result type, ``None`` for events, or ``Any`` when the class was not
        parametrized (``class Ping(Query): ...``).
    """
    if issubclass(message_type, Event):
        return None
    for klass in message_type.__mro__:
        metadata = getattr(klass, "__pydantic_generic_metadata__", None)
        if metadata and metadata["origin"] in _GENERIC_BASES and metadata["args"]:
            return metadata["args"][0]
    return Any


def is_message_class(obj: object) -> bool:
    """Whether ``obj`` is a message class (``Message`` or a subclass)."""
    return isinstance(obj, type) and issubclass(obj, Message)
