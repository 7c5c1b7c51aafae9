"""cqrs_kit: a framework-agnostic CQRS toolkit.

Typed commands and queries dispatched by a mediator to their handlers, middleware around
every dispatch, and (in the integration modules) transactions, an event log and projections
that keep read models current.

``import cqrs_kit`` imports only the standard library and pydantic; SQLAlchemy, structlog
and dependency-injector are imported by the modules that integrate them.
"""

from cqrs_kit._handlers import Dependency, HandlerSpec
from cqrs_kit.consistency import AtLeast, Receipt
from cqrs_kit.context import DispatchContext, current_context
from cqrs_kit.dependencies import Dependencies, Factory, KwargsBuilder, Resolver
from cqrs_kit.event_types import EventTypes, PendingEvent, StoredEvent, Upcaster
from cqrs_kit.exceptions import (
    ConcurrencyError,
    ConfigurationError,
    ConsistencyTimeoutError,
    CqrsKitError,
    DuplicateHandlerError,
    EventDecodeError,
    EventLogError,
    HandlerNotFoundError,
    IdempotencyKeyReusedError,
    InvalidHandlerError,
    MessageKindError,
    PersistenceError,
    PipelineFrozenError,
    ProjectionError,
    UnknownEventTypeError,
    UnresolvableDependencyError,
)
from cqrs_kit.mediator import AsyncMediator, Mediator
from cqrs_kit.messages import Command, Event, Message, MessageKind, Query, result_type_of
from cqrs_kit.pipeline import AsyncMiddleware, CallNext, Middleware, Scoped, scoped
from cqrs_kit.redaction import Sensitive, redacted_payload
from cqrs_kit.registry import EventErrorPolicy, Registration, Registry
from cqrs_kit.unit_of_work import UnitOfWork

__all__ = [
    "AsyncMediator",
    "AsyncMiddleware",
    "AtLeast",
    "CallNext",
    "Command",
    "ConcurrencyError",
    "ConfigurationError",
    "ConsistencyTimeoutError",
    "CqrsKitError",
    "Dependencies",
    "Dependency",
    "DispatchContext",
    "DuplicateHandlerError",
    "Event",
    "EventDecodeError",
    "EventErrorPolicy",
    "EventLogError",
    "EventTypes",
    "Factory",
    "HandlerNotFoundError",
    "HandlerSpec",
    "IdempotencyKeyReusedError",
    "InvalidHandlerError",
    "KwargsBuilder",
    "Mediator",
    "Message",
    "MessageKind",
    "MessageKindError",
    "Middleware",
    "PendingEvent",
    "PersistenceError",
    "PipelineFrozenError",
    "ProjectionError",
    "Query",
    "Receipt",
    "Registration",
    "Registry",
    "Resolver",
    "Scoped",
    "Sensitive",
    "StoredEvent",
    "UnitOfWork",
    "UnknownEventTypeError",
    "UnresolvableDependencyError",
    "Upcaster",
    "current_context",
    "redacted_payload",
    "result_type_of",
    "scoped",
]

__version__ = "0.1.0"
