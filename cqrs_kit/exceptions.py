"""The cqrs_kit error tree.

Every error the toolkit raises derives from :class:`CqrsKitError`. Where a caller would
naturally catch a builtin exception, the error also derives from that builtin, so existing
``except LookupError`` or ``except TimeoutError`` blocks keep working::

    CqrsKitError(Exception)
    ├── ConfigurationError                     at start-up, never during dispatch
    │   ├── InvalidHandlerError(ConfigurationError, TypeError)
    │   ├── DuplicateHandlerError(ConfigurationError, TypeError)
    │   ├── UnresolvableDependencyError(ConfigurationError, LookupError)
    │   └── PipelineFrozenError(ConfigurationError, RuntimeError)
    ├── MessageKindError(CqrsKitError, TypeError)   a command passed to ask(), ...
    ├── HandlerNotFoundError(CqrsKitError, LookupError)
    ├── ConsistencyTimeoutError(CqrsKitError, TimeoutError)
    ├── ProjectionError                        .projection, .position, .event_type
    ├── EventLogError                          .event_type, .schema_version, .position
    │   ├── UnknownEventTypeError(EventLogError, LookupError)
    │   └── EventDecodeError(EventLogError, ValueError)
    └── PersistenceError                       translated SQLAlchemy errors
        ├── ConcurrencyError                   transient conflicts that outlived retries
        └── IdempotencyKeyReusedError          same key, different command

Errors raised by handlers (domain errors, pydantic ``ValidationError``) are never wrapped:
they reach the caller as the same object, with their traceback.
"""

from __future__ import annotations

__all__ = [
    "ConcurrencyError",
    "ConfigurationError",
    "ConsistencyTimeoutError",
    "CqrsKitError",
    "DuplicateHandlerError",
    "EventDecodeError",
    "EventLogError",
    "HandlerNotFoundError",
    "IdempotencyKeyReusedError",
    "InvalidHandlerError",
    "MessageKindError",
    "PersistenceError",
    "PipelineFrozenError",
    "ProjectionError",
    "UnknownEventTypeError",
    "UnresolvableDependencyError",
]


class CqrsKitError(Exception):
    """Root of every error raised by cqrs_kit itself."""


class ConfigurationError(CqrsKitError):
    """The mediator, a handler or a middleware is set up wrongly.

    Raised while registering or freezing, never while dispatching a registered message.
    """


class InvalidHandlerError(ConfigurationError, TypeError):
    """A handler's signature or annotations do not fit the message it is registered for."""


class DuplicateHandlerError(ConfigurationError, TypeError):
    """A second handler was registered for a command or query type.

    Attributes:
        message_type: The command or query type.
        existing: The handler already registered.
    """

    def __init__(self, message: str, *, message_type: type, existing: object) -> None:
        super().__init__(message)
        self.message_type = message_type
        self.existing = existing


class UnresolvableDependencyError(ConfigurationError, LookupError):
    """A handler asks for a keyword dependency that the resolver cannot provide.

    Attributes:
        handler: The handler.
        parameter: The name of the parameter that cannot be resolved.
    """

    def __init__(self, message: str, *, handler: object, parameter: str) -> None:
        super().__init__(message)
        self.handler = handler
        self.parameter = parameter


class PipelineFrozenError(ConfigurationError, RuntimeError):
    """Handlers or middleware were added after the pipeline was composed.

    The pipeline is composed once, at the first dispatch or at an explicit ``freeze()``.
    """


class MessageKindError(CqrsKitError, TypeError):
    """A message was passed to the wrong mediator method, e.g. a command to ``ask``."""


class HandlerNotFoundError(CqrsKitError, LookupError):
    """No handler is registered for the dispatched command or query type.

    Attributes:
        message_type: The type that has no handler.
    """

    def __init__(self, message: str, *, message_type: type) -> None:
        super().__init__(message)
        self.message_type = message_type


class ConsistencyTimeoutError(CqrsKitError, TimeoutError):
    """The read models did not reach the requested position in time."""


class ProjectionError(CqrsKitError):
    """A projection failed to apply an event.

    Attributes:
        projection: The projection's name.
        position: The event log position of the failing event, when known.
        event_type: The failing event's type name, when known.
    """

    def __init__(
        self,
        message: str,
        *,
        projection: str,
        position: int | None = None,
        event_type: str | None = None,
    ) -> None:
        super().__init__(message)
        self.projection = projection
        self.position = position
        self.event_type = event_type


class PersistenceError(CqrsKitError):
    """A database error, translated at the unit-of-work boundary (PEP 249 style).

    The original driver or SQLAlchemy exception is kept as ``__cause__``.
    """


class ConcurrencyError(PersistenceError):
    """A transient conflict (serialization failure, deadlock, busy database) outlived its retries.

    Attributes:
        attempts: How many times the command was tried.
    """

    def __init__(self, message: str, *, attempts: int) -> None:
        super().__init__(message)
        self.attempts = attempts


class IdempotencyKeyReusedError(PersistenceError):
    """An idempotency key was used again for a different command.

    Attributes:
        key: The idempotency key.
    """

    def __init__(self, message: str, *, key: str) -> None:
        super().__init__(message)
        self.key = key


class EventLogError(CqrsKitError):
    """An event cannot be written to or read from the event log.

    Attributes:
        event_type: The stable type name involved.
        schema_version: The schema version of the stored payload, when known.
        position: The log position, when known.
    """

    def __init__(
        self,
        message: str,
        *,
        event_type: str,
        schema_version: int | None = None,
        position: int | None = None,
    ) -> None:
        super().__init__(message)
        self.event_type = event_type
        self.schema_version = schema_version
        self.position = position


class UnknownEventTypeError(EventLogError, LookupError):
    """An event class or stored type name is not in the :class:`~cqrs_kit.EventTypes`."""


class EventDecodeError(EventLogError, ValueError):
    """A stored payload does not validate against its event class (after upcasting)."""
