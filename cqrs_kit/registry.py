"""Handler registration and its checks.

Rules, all enforced here, once, when a handler is registered:

- Exactly one handler per command or query type; a second raises
  :class:`~cqrs_kit.exceptions.DuplicateHandlerError`.
- Zero or more handlers per event type, run in registration order, each with a failure
  policy: ``"propagate"`` (the default: the error reaches the publisher and later handlers
  do not run) or ``"continue"`` (the error is logged and the next handler runs).
- Handlers are matched by exact type. A handler registered for ``GetOrders`` is not used
  for ``class GetArchivedOrders(GetOrders)`` unless it was registered with
  ``include_subclasses=True`` (or registered for the subclass too).
- Signatures and result annotations are checked against the message type
  (see :func:`register`).
"""

from __future__ import annotations

import enum
import threading
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from cqrs_kit._handlers import HandlerSpec, describe, inspect_handler
from cqrs_kit.exceptions import DuplicateHandlerError, InvalidHandlerError, PipelineFrozenError
from cqrs_kit.messages import Command, Event, Message, Query, is_message_class

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["EventErrorPolicy", "Registration", "Registry"]

THandler = TypeVar("THandler")


class EventErrorPolicy(enum.Enum):
    """What happens when an event handler raises."""

    PROPAGATE = "propagate"
    """The error reaches the publisher; later handlers of the event do not run."""
    CONTINUE = "continue"
    """The error is logged (logger ``cqrs_kit``) and the next handler runs."""


@dataclass(frozen=True, slots=True)
class Registration:
    """One registered handler.

    Attributes:
        spec: What was learned about the handler at registration.
        include_subclasses: Whether subclasses of the message type use this handler too.
        on_error: For event handlers, the failure policy.
    """

    spec: HandlerSpec
    include_subclasses: bool = False
    on_error: EventErrorPolicy = EventErrorPolicy.PROPAGATE


class Registry:
    """Maps message types to their handlers.

    A registry can be built at import time (with the :meth:`handles` decorator) and given to
    a :class:`~cqrs_kit.Mediator` or :class:`~cqrs_kit.AsyncMediator`, which checks the
    handlers against its own rules (sync or async) and its resolver. It freezes when a
    mediator composes its pipeline.
    """

    def __init__(self) -> None:
        """Create an empty registry."""
        self._single: dict[type[Message], Registration] = {}
        self._events: dict[type[Event], list[Registration]] = {}
        self._frozen = False
        # Weak references: a registry outlives the mediators built on it (tests, CLIs).
        self._observers: list[weakref.WeakMethod[Callable[[Registration], None]]] = []
        self._lock = threading.Lock()

    # -- registering ----------------------------------------------------------------------

    def register(
        self,
        message_type: type[Message],
        handler: Any,
        *,
        include_subclasses: bool = False,
        on_error: EventErrorPolicy | Literal["propagate", "continue"] = EventErrorPolicy.PROPAGATE,
    ) -> None:
        """Register ``handler`` for ``message_type``.

        Args:
            message_type: A :class:`Command`, :class:`Query` or :class:`Event` subclass.
            handler: A function taking the message first and its dependencies as keyword
                parameters (plus ``ctx`` for the dispatch context), or a class whose
                ``__init__`` takes the dependencies and whose ``__call__`` takes the message.
            include_subclasses: Also handle subclasses of ``message_type`` that have no
                handler of their own.
            on_error: For event handlers: ``"propagate"`` or ``"continue"``.

        Raises:
            InvalidHandlerError: The message type is not a message class, or the handler's
                signature or result annotation does not fit it.
            DuplicateHandlerError: A command or query type already has a handler.
            PipelineFrozenError: A mediator using this registry has already composed its
                pipeline.
        """
        if not is_message_class(message_type):
            msg = (
                f"can only register handlers for Command, Query or Event subclasses, "
                f"got {message_type!r}"
            )
            raise InvalidHandlerError(msg)
        origin = message_type.__pydantic_generic_metadata__["origin"]
        if message_type in (Message, Command, Query, Event) or origin in (Command, Query):
            base = origin or message_type
            msg = (
                f"register handlers for your own subclasses of {base.__name__}, not the base class"
            )
            raise InvalidHandlerError(msg)
        if not issubclass(message_type, (Command, Query, Event)):
            msg = (
                f"can only register handlers for Command, Query or Event subclasses, "
                f"got {message_type.__name__}"
            )
            raise InvalidHandlerError(msg)
        policy = EventErrorPolicy(on_error)
        if policy is not EventErrorPolicy.PROPAGATE and not issubclass(message_type, Event):
            msg = (
                "on_error applies to event handlers only; command and query errors always propagate"
            )
            raise InvalidHandlerError(msg)
        spec = inspect_handler(message_type, handler)
        registration = Registration(spec, include_subclasses, policy)
        with self._lock:
            if self._frozen:
                msg = (
                    f"cannot register {describe(handler)} for {message_type.__name__}: the "
                    f"pipeline is frozen (a mediator has dispatched or was frozen); register "
                    f"every handler before the first dispatch"
                )
                raise PipelineFrozenError(msg)
            for observer in self._live_observers():
                observer(registration)
            if issubclass(message_type, Event):
                self._events.setdefault(message_type, []).append(registration)
                return
            existing = self._single.get(message_type)
            if existing is not None:
                msg = (
                    f"{message_type.__name__} already has the handler "
                    f"{existing.spec.name}; a {message_type.kind.value} has exactly one "
                    f"handler, so remove one of the registrations (or publish an Event to "
                    f"reach several handlers)"
                )
                raise DuplicateHandlerError(
                    msg, message_type=message_type, existing=existing.spec.handler
                )
            self._single[message_type] = registration

    def handles(
        self,
        message_type: type[Message],
        *,
        include_subclasses: bool = False,
        on_error: EventErrorPolicy | Literal["propagate", "continue"] = EventErrorPolicy.PROPAGATE,
    ) -> Callable[[THandler], THandler]:
        """Decorator form of :meth:`register`; returns the handler unchanged.

        Example::

            @registry.handles(CreateOrder)
            def create_order(command: CreateOrder, *, uow: UnitOfWork) -> OrderId: ...
        """

        def decorate(handler: THandler) -> THandler:
            self.register(
                message_type, handler, include_subclasses=include_subclasses, on_error=on_error
            )
            return handler

        return decorate

    def include(self, other: Registry) -> None:
        """Register every handler of ``other`` here too (e.g. a write and a read registry).

        Each registration keeps its options and goes through the same checks as
        :meth:`register`, so a command registered in both raises ``DuplicateHandlerError``.
        """
        for registration in other.registrations():
            spec = registration.spec
            self.register(
                spec.message_type,
                spec.handler,
                include_subclasses=registration.include_subclasses,
                on_error=registration.on_error,
            )

    # -- reading ---------------------------------------------------------------------------

    def handler_for(self, message_type: type[Message]) -> Registration | None:
        """Return the registration used for a command or query type, or ``None``.

        Exact types win; otherwise the nearest base registered with ``include_subclasses``.
        """
        registration = self._single.get(message_type)
        if registration is not None:
            return registration
        for base in message_type.__mro__[1:]:
            registration = self._single.get(base)
            if registration is not None and registration.include_subclasses:
                return registration
        return None

    def handlers_for_event(self, event_type: type[Event]) -> list[Registration]:
        """Return the registrations used for an event type, in registration order."""
        found = list(self._events.get(event_type, ()))
        for base in event_type.__mro__[1:]:
            found.extend(r for r in self._events.get(base, ()) if r.include_subclasses)
        return found

    def registered_base(self, message_type: type[Message]) -> type[Message] | None:
        """Return a registered base class of ``message_type`` (for helpful error messages)."""
        for base in message_type.__mro__[1:]:
            if base in self._single:
                return base
        return None

    @property
    def message_types(self) -> list[type[Message]]:
        """Every command, query and event type with a registered handler."""
        return [*self._single, *self._events]

    def registrations(self) -> list[Registration]:
        """Every registration, commands and queries first, then events in order."""
        return [*self._single.values(), *(r for rs in self._events.values() for r in rs)]

    # -- mediator hooks -------------------------------------------------------------------

    @property
    def frozen(self) -> bool:
        """Whether a mediator has composed its pipeline from this registry."""
        return self._frozen

    def _observe(self, observer: Callable[[Registration], None]) -> None:
        """Check every existing and future registration with ``observer`` (a bound method).

        The registry holds it weakly, so a mediator that is dropped is not kept alive.
        """
        with self._lock:
            for registration in self.registrations():
                observer(registration)
            self._observers.append(weakref.WeakMethod(observer))

    def _live_observers(self) -> list[Callable[[Registration], None]]:
        live = [ref() for ref in self._observers]
        self._observers = [ref for ref, obs in zip(self._observers, live, strict=True) if obs]
        return [obs for obs in live if obs is not None]

    def _freeze(self) -> None:
        with self._lock:
            self._frozen = True
