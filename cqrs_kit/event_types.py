"""Stable names and schema versions for events, and their (de)serialization.

Events are stored by a stable name and a schema version, never by a Python import path, so
classes can move and be renamed without breaking the log. When an event's schema changes,
bump its version and register an upcaster that turns an old payload into the new shape::

    events = EventTypes()

    @events.define("order.created", version=2, upcasters={1: add_currency})
    class OrderCreated(Event):
        order_id: int
        total: Decimal
        currency: str
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import ValidationError

from cqrs_kit.exceptions import ConfigurationError, EventDecodeError, UnknownEventTypeError
from cqrs_kit.messages import Event, is_message_class

if TYPE_CHECKING:
    import datetime as dt

__all__ = ["EventTypes", "PendingEvent", "StoredEvent", "Upcaster"]

TEvent = TypeVar("TEvent", bound=type[Event])

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
"""Turns a payload of version ``n`` into version ``n + 1``."""


@dataclass(frozen=True, slots=True)
class _Definition:
    event_class: type[Event]
    name: str
    version: int
    stream_type: str
    upcasters: Mapping[int, Upcaster]


@dataclass(slots=True)
class PendingEvent:
    """An event recorded in a unit of work, not yet appended to the log.

    Attributes:
        event: The event.
        stream_type: The kind of entity it is about (e.g. ``"order"``).
        stream_id: The entity's id, as text.
        metadata: The ids of the dispatch that recorded it.
        event_id: A new unique id.
    """

    event: Event
    stream_type: str
    stream_id: str
    metadata: dict[str, Any] = field(default_factory=dict)
    event_id: uuid.UUID = field(default_factory=uuid.uuid4)


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One row of the event log, as read back.

    Attributes:
        position: The event's position in the log (monotonic, gap-safe for readers).
        event_id: The event's unique id.
        event_type: Its stable type name.
        schema_version: The version of ``payload``'s schema.
        stream_type: The kind of entity it is about.
        stream_id: The entity's id.
        payload: The event's fields, as JSON-compatible data.
        metadata: Correlation id, causation id and command id of the dispatch that
            recorded it.
        recorded_at: When it was appended (UTC).
    """

    position: int
    event_id: uuid.UUID
    event_type: str
    schema_version: int
    stream_type: str
    stream_id: str
    payload: dict[str, Any]
    metadata: dict[str, Any]
    recorded_at: dt.datetime


class EventTypes:
    """The registry of event classes by stable name and schema version."""

    def __init__(self) -> None:
        """Create an empty registry."""
        self._by_class: dict[type[Event], _Definition] = {}
        self._by_name: dict[str, _Definition] = {}

    def define(
        self,
        name: str | None = None,
        *,
        version: int = 1,
        stream_type: str = "",
        upcasters: Mapping[int, Upcaster] | None = None,
    ) -> Callable[[TEvent], TEvent]:
        """Class decorator form of :meth:`register`."""

        def decorate(event_class: TEvent) -> TEvent:
            self.register(
                event_class,
                name=name,
                version=version,
                stream_type=stream_type,
                upcasters=upcasters,
            )
            return event_class

        return decorate

    def register(
        self,
        event_class: type[Event],
        *,
        name: str | None = None,
        version: int = 1,
        stream_type: str = "",
        upcasters: Mapping[int, Upcaster] | None = None,
    ) -> None:
        """Register an event class.

        Args:
            event_class: An :class:`~cqrs_kit.Event` subclass.
            name: Its stable name in the log; defaults to the class name. Choose it once:
                the log keeps it forever.
            version: The current schema version (>= 1).
            stream_type: The default stream type of its events (e.g. ``"order"``).
            upcasters: For each older version ``n``, a function from a version-``n``
                payload to a version-``n + 1`` payload.

        Raises:
            ConfigurationError: Not an event class, a name or class registered twice, a
                version below 1, or an upcaster missing for an older version.
        """
        if not (is_message_class(event_class) and issubclass(event_class, Event)):
            msg = f"EventTypes.register() takes an Event subclass, got {event_class!r}"
            raise ConfigurationError(msg)
        type_name = name or event_class.__name__
        if version < 1:
            msg = f"{type_name}: schema versions start at 1, got {version}"
            raise ConfigurationError(msg)
        upcasters = dict(upcasters or {})
        missing = [v for v in range(1, version) if v not in upcasters]
        if missing:
            msg = f"{type_name} v{version}: upcasters are missing for versions {missing}"
            raise ConfigurationError(msg)
        if event_class in self._by_class:
            taken = self._by_class[event_class].name
            msg = f"{event_class.__name__} is already registered as {taken!r}"
            raise ConfigurationError(msg)
        if type_name in self._by_name:
            other = self._by_name[type_name].event_class.__name__
            msg = f"the event type name {type_name!r} is already taken by {other}"
            raise ConfigurationError(msg)
        definition = _Definition(event_class, type_name, version, stream_type, upcasters)
        self._by_class[event_class] = definition
        self._by_name[type_name] = definition

    def __contains__(self, item: object) -> bool:
        return item in self._by_class or item in self._by_name

    @property
    def names(self) -> list[str]:
        """Every registered type name."""
        return list(self._by_name)

    def name_of(self, event_class: type[Event]) -> str:
        """Return the stable name of ``event_class``.

        Raises:
            UnknownEventTypeError: The class is not registered.
        """
        return self._definition(event_class).name

    def class_of(self, name: str) -> type[Event]:
        """Return the class registered under ``name``.

        Raises:
            UnknownEventTypeError: No class has that name.
        """
        definition = self._by_name.get(name)
        if definition is None:
            msg = f"unknown event type {name!r}; register its class with EventTypes.define()"
            raise UnknownEventTypeError(msg, event_type=name)
        return definition.event_class

    def _definition(self, event_class: type[Event]) -> _Definition:
        definition = self._by_class.get(event_class)
        if definition is None:
            msg = (
                f"{event_class.__name__} is not a registered event type; decorate it with "
                f"@event_types.define('a.stable.name')"
            )
            raise UnknownEventTypeError(msg, event_type=event_class.__name__)
        return definition

    def encode(self, event: Event) -> tuple[str, int, str, dict[str, Any]]:
        """Return ``(name, version, default stream type, JSON payload)`` for ``event``.

        Raises:
            UnknownEventTypeError: The event's class is not registered.
        """
        definition = self._definition(type(event))
        return (
            definition.name,
            definition.version,
            definition.stream_type,
            event.model_dump(mode="json"),
        )

    def decode(self, stored: StoredEvent) -> Event:
        """Rebuild the event of a log row, upcasting an old payload first.

        Raises:
            UnknownEventTypeError: The row's type name is not registered.
            EventDecodeError: The payload does not validate, or its version is newer than
                the registered one, or an upcaster failed.
        """
        definition = self._by_name.get(stored.event_type)
        if definition is None:
            msg = (
                f"unknown event type {stored.event_type!r} (version {stored.schema_version}) "
                f"at position {stored.position}; register its class with EventTypes.define()"
            )
            raise UnknownEventTypeError(
                msg,
                event_type=stored.event_type,
                schema_version=stored.schema_version,
                position=stored.position,
            )
        payload = stored.payload
        version = stored.schema_version
        try:
            if version > definition.version:
                msg = (
                    f"the log holds version {version}, newer than the registered "
                    f"{definition.version}"
                )
                raise ValueError(msg)
            while version < definition.version:
                payload = definition.upcasters[version](dict(payload))
                version += 1
            return definition.event_class.model_validate(payload)
        except (ValidationError, ValueError, KeyError, TypeError) as exc:
            msg = (
                f"cannot decode {stored.event_type!r} version {stored.schema_version} at "
                f"position {stored.position}: {exc}"
            )
            raise EventDecodeError(
                msg,
                event_type=stored.event_type,
                schema_version=stored.schema_version,
                position=stored.position,
            ) from exc
