"""cqrs_kit: a framework-agnostic CQRS toolkit.

Typed commands and queries dispatched by a mediator to their handlers, middleware around
every dispatch, and (in the integration modules) transactions, an event log and projections
that keep read models current.

``import cqrs_kit`` imports only the standard library and pydantic; SQLAlchemy, structlog
and dependency-injector are imported by the modules that integrate them.
"""

from cqrs_kit._handlers import Dependency, HandlerSpec
from cqrs_kit.context import DispatchContext, current_context
from cqrs_kit.dependencies import Dependencies, Factory, KwargsBuilder, Resolver
from cqrs_kit.exceptions import (
    ConcurrencyError,
    ConfigurationError,
    ConsistencyTimeoutError,
    CqrsKitError,
    DuplicateHandlerError,
    HandlerNotFoundError,
    InvalidHandlerError,
    MessageKindError,
    PersistenceError,
    PipelineFrozenError,
    ProjectionError,
    UnresolvableDependencyError,
)
from cqrs_kit.mediator import AsyncMediator, Mediator
from cqrs_kit.messages import Command, Event, Message, MessageKind, Query, result_type_of
from cqrs_kit.pipeline import AsyncMiddleware, CallNext, Middleware, Scoped, scoped
from cqrs_kit.registry import EventErrorPolicy, Registration, Registry

__all__ = [
    "AsyncMediator",
    "AsyncMiddleware",
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
    "EventErrorPolicy",
    "Factory",
    "HandlerNotFoundError",
    "HandlerSpec",
    "InvalidHandlerError",
    "KwargsBuilder",
    "Mediator",
    "Message",
    "MessageKind",
    "MessageKindError",
    "Middleware",
    "PersistenceError",
    "PipelineFrozenError",
    "ProjectionError",
    "Query",
    "Registration",
    "Registry",
    "Resolver",
    "Scoped",
    "UnresolvableDependencyError",
    "current_context",
    "result_type_of",
    "scoped",
]

__version__ = "0.1.0"
