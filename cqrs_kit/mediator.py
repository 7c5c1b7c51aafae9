"""``Mediator`` and ``AsyncMediator``: twins over one shared core.

The core checks handlers and middleware against the mediator's rules when they are
registered, and composes one route per message type when it freezes (at the first dispatch,
or at an explicit :meth:`~_MediatorCore.freeze`). A dispatch is then a dictionary lookup by
exact type and a call of the composed route. When nothing can observe a dispatch context
(no middleware, no handler taking ``ctx`` or dependencies), the route is the handler itself.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from cqrs_kit.consistency import CONSISTENCY_KEY, AtLeast, Receipt
from cqrs_kit.context import DispatchContext, _current
from cqrs_kit.dependencies import Dependencies, KwargsBuilder, Resolver
from cqrs_kit.exceptions import (
    ConfigurationError,
    HandlerNotFoundError,
    InvalidHandlerError,
    MessageKindError,
    PipelineFrozenError,
)
from cqrs_kit.messages import Command, Event, Message, MessageKind, Query
from cqrs_kit.pipeline import CallNext, chain_for, check_middleware, compose
from cqrs_kit.registry import EventErrorPolicy, Registration, Registry
from cqrs_kit.unit_of_work import wants_unit_of_work

if TYPE_CHECKING:
    from cqrs_kit._handlers import HandlerSpec

__all__ = ["AsyncMediator", "Mediator"]

TResult = TypeVar("TResult")

logger = logging.getLogger("cqrs_kit")

Invoker = Callable[[Any, DispatchContext], Any]
Route = Callable[..., Any]

_RECEIPT_KEY = "cqrs_kit.receipt"

_METHOD = {MessageKind.COMMAND: "send", MessageKind.QUERY: "ask", MessageKind.EVENT: "publish"}


def _close_scope(scope: dict[object, Any], *, failed: bool) -> list[Any]:
    """Close per-dispatch values; return pending awaitables (for async ``close``)."""
    pending: list[Any] = []
    first_error: BaseException | None = None
    for value in reversed(list(scope.values())):
        close = getattr(value, "close", None)
        if close is None:
            continue
        try:
            result = close()
        except Exception as exc:
            if failed:
                logger.exception("closing %r after a failed dispatch", value)
            elif first_error is None:
                first_error = exc
            continue
        if isinstance(result, Awaitable):
            pending.append(result)
    scope.clear()
    if first_error is not None:
        raise first_error
    return pending


class _MediatorCore:
    """What ``Mediator`` and ``AsyncMediator`` share: rules, composition, lookup."""

    _asynchronous: bool

    def __init__(
        self,
        registry: Registry | None = None,
        *,
        middleware: Sequence[Callable[..., Any]] = (),
        resolver: Resolver | None = None,
    ) -> None:
        self.registry = registry if registry is not None else Registry()
        self.resolver: Resolver = resolver if resolver is not None else Dependencies()
        self._middleware: list[Callable[..., Any]] = []
        self._bound: dict[int, KwargsBuilder] = {}
        self._commands: dict[type, Route] = {}
        self._queries: dict[type, Route] = {}
        self._events: dict[type, Route] = {}
        self._full: dict[type, Route] = {}
        self._fast = False
        self._frozen = False
        self._lock = threading.RLock()
        for item in middleware:
            self.add_middleware(item)
        self.registry._observe(self._check_registration)

    # -- configuration -----------------------------------------------------------------

    def register(self, message_type: type[Message], handler: Any, **options: Any) -> None:
        """Register a handler on this mediator's registry (see :meth:`Registry.register`)."""
        self.registry.register(message_type, handler, **options)

    def handles(self, message_type: type[Message], **options: Any) -> Callable[[Any], Any]:
        """Decorator form of :meth:`register` (see :meth:`Registry.handles`)."""
        return self.registry.handles(message_type, **options)

    def add_middleware(self, middleware: Callable[..., Any]) -> None:
        """Append a middleware, innermost so far.

        Raises:
            ConfigurationError: It does not fit this mediator (see :mod:`cqrs_kit.pipeline`).
            PipelineFrozenError: The pipeline has been composed already.
        """
        if self._frozen:
            msg = "cannot add middleware: the pipeline is frozen; add it before the first dispatch"
            raise PipelineFrozenError(msg)
        check_middleware(middleware, asynchronous=self._asynchronous)
        self._middleware.append(middleware)

    @property
    def middleware(self) -> tuple[Callable[..., Any], ...]:
        """The middleware, outermost first."""
        return tuple(self._middleware)

    @property
    def frozen(self) -> bool:
        """Whether the pipeline is composed (no more handlers or middleware)."""
        return self._frozen

    def _check_registration(self, registration: Registration) -> None:
        spec = registration.spec
        if spec.is_async and not self._asynchronous:
            msg = (
                f"{spec.name} is a coroutine handler; use AsyncMediator for async handlers, "
                f"or make it a plain def"
            )
            raise InvalidHandlerError(msg)
        self._bound[id(registration)] = self.resolver.bind(spec)

    def freeze(self) -> None:
        """Compose the route of every registered message type; no registration after this.

        Called by the first dispatch; call it yourself at start-up to pay the composition
        cost early and to fail fast.
        """
        with self._lock:
            if self._frozen:
                return
            self.registry._freeze()
            registrations = self.registry.registrations()
            self._fast = not self._middleware and not any(
                r.spec.takes_context or r.spec.dependencies for r in registrations
            )
            self._frozen = True
            for message_type in self.registry.message_types:
                self._compile(message_type)

    # -- composition ---------------------------------------------------------------------

    def _compile(self, message_type: type[Message]) -> bool:
        """Compose and store the route for ``message_type``; ``False`` if it has no handler."""
        if issubclass(message_type, Event):
            invoker = self._event_invoker(self.registry.handlers_for_event(message_type))
            table = self._events
            fast_route = self._fast_route(invoker) if self._fast else None
            direct = None
        else:
            registration = self.registry.handler_for(message_type)
            if registration is None:
                return False
            self._check_unit_of_work(registration, message_type)
            invoker = self._invoker(registration)
            table = self._commands if issubclass(message_type, Command) else self._queries
            fast_route = self._direct(registration) if self._fast else None
            direct = self._plain(registration)

        if fast_route is not None:
            route = fast_route
        else:
            composed = compose(chain_for(message_type, self._middleware), invoker, direct)
            route = self._context_route(invoker, composed)
        self._full[message_type] = table[message_type] = route
        return True

    def _invoker(self, registration: Registration) -> Invoker:
        """Build ``(message, ctx) -> result`` calling the handler with its dependencies."""
        spec: HandlerSpec = registration.spec
        handler = spec.handler
        build = self._bound[id(registration)]
        if spec.is_class:
            if not spec.dependencies:
                return lambda message, _ctx: handler()(message)
            return lambda message, ctx: handler(**build(ctx))(message)
        if not spec.dependencies:
            if spec.takes_context:
                return lambda message, ctx: handler(message, ctx=ctx)
            return lambda message, _ctx: handler(message)
        if spec.takes_context:
            return lambda message, ctx: handler(message, ctx=ctx, **build(ctx))
        return lambda message, ctx: handler(message, **build(ctx))

    def _direct(self, registration: Registration) -> Route:
        """The route when nothing observes the context: the handler itself, if possible."""
        handler = registration.spec.handler
        if registration.spec.is_class:
            # A class handler is instantiated per dispatch, never shared.
            return lambda message: handler()(message)  # noqa: PLW0108
        return handler  # type: ignore[no-any-return]

    def _check_unit_of_work(self, registration: Registration, message_type: type[Message]) -> None:
        """A handler that writes through a unit of work needs a transaction around it."""
        wants = [d.name for d in registration.spec.dependencies if wants_unit_of_work(d.annotation)]
        if not wants:
            return
        chain = chain_for(message_type, self._middleware)
        if any(getattr(m, "provides_unit_of_work", False) for m in chain):
            return
        msg = (
            f"{registration.spec.name} takes a unit of work ({', '.join(wants)}), but no "
            f"transaction middleware applies to {message_type.__name__}; add "
            f"TransactionMiddleware (it applies to commands) to the mediator"
        )
        raise ConfigurationError(msg)

    def _plain(self, registration: Registration) -> Callable[[Any], Any] | None:
        """The handler itself, when it can be called with the message alone."""
        spec = registration.spec
        if spec.is_class or spec.dependencies or spec.takes_context:
            return None
        if self._asynchronous and not spec.is_async:
            return None
        return spec.handler  # type: ignore[no-any-return]

    def _fast_route(self, invoker: Invoker) -> Route:
        return lambda message: invoker(message, None)  # type: ignore[arg-type]

    def _event_invoker(self, registrations: list[Registration]) -> Invoker:
        raise NotImplementedError

    def _context_route(
        self, invoker: Invoker, composed: tuple[Callable[..., Any], CallNext] | None
    ) -> Route:
        raise NotImplementedError

    def _send_with_receipt(
        self,
        command: Any,
        correlation_id: str | None,
        metadata: Mapping[str, Any] | None,
        receipt: Receipt,
    ) -> Any:
        """Dispatch with the receipt in the metadata; the route fills it at the end."""
        if self._fast:  # no middleware: nothing can append events, so there is no token
            receipt.token = None
            return self._commands[type(command)](command)
        return self._full[type(command)](
            command, correlation_id, {**(metadata or {}), _RECEIPT_KEY: receipt}
        )

    # -- lookup misses -------------------------------------------------------------------

    def _miss(self, message: object, kind: MessageKind) -> Route:
        """Find the route of a type not in the tables yet, or explain why there is none.

        Called from the lookup's ``except KeyError``; errors are raised ``from None`` so
        the caller's traceback does not show that internal ``KeyError``.
        """
        method = _METHOD[kind]
        if not isinstance(message, (Command, Query, Event)):
            expected = {"send": "a Command", "ask": "a Query", "publish": "an Event"}[method]
            msg = f"{method}() takes {expected} instance, got {type(message).__name__}"
            raise MessageKindError(msg) from None
        if message.kind is not kind:
            article = "an" if message.kind is MessageKind.EVENT else "a"
            msg = (
                f"{type(message).__name__} is {article} {message.kind.value}; dispatch it with "
                f"{_METHOD[message.kind]}(), not {method}()"
            )
            raise MessageKindError(msg) from None
        message_type = type(message)
        with self._lock:
            if not self._frozen:
                self.freeze()
            table = {"send": self._commands, "ask": self._queries, "publish": self._events}[method]
            route = table.get(message_type)
            if route is not None or self._compile(message_type):
                return table[message_type]
        base = self.registry.registered_base(message_type)
        hint = (
            f"; {base.__name__} has a handler, but handlers match exact types: register "
            f"{message_type.__name__} too, or register the {base.__name__} handler with "
            f"include_subclasses=True"
            if base is not None
            else f"; register one with @registry.handles({message_type.__name__})"
        )
        msg = f"no handler is registered for {kind.value} {message_type.__name__}{hint}"
        raise HandlerNotFoundError(msg, message_type=message_type) from None


def _fill(receipt: Receipt, ctx: DispatchContext) -> None:
    receipt.token = ctx.consistency_token
    receipt.correlation_id = ctx.correlation_id


def _log_event_error(spec: HandlerSpec, event: Message) -> None:
    logger.exception(
        "event handler %s failed on %s; continuing (on_error='continue')",
        spec.name,
        type(event).__name__,
    )


class Mediator(_MediatorCore):
    """Dispatches commands, queries and events to synchronous handlers.

    Example::

        mediator = Mediator(registry, middleware=[...], resolver=Dependencies({...}))
        order_id = mediator.send(CreateOrder(...))   # typed as the command's result
        detail = mediator.ask(GetOrderDetail(order_id=order_id))

    Coroutine handlers and middleware are refused when they are registered; use
    :class:`AsyncMediator` for those.
    """

    _asynchronous = False

    def __init__(
        self,
        registry: Registry | None = None,
        *,
        middleware: Sequence[Callable[..., Any]] = (),
        resolver: Resolver | None = None,
    ) -> None:
        """Create a mediator.

        Args:
            registry: The handlers; a new empty registry when omitted.
            middleware: Middleware, outermost first.
            resolver: Supplies handler dependencies; an empty :class:`Dependencies` when
                omitted.

        Raises:
            ConfigurationError: A registered handler or a middleware does not fit.
        """
        super().__init__(registry, middleware=middleware, resolver=resolver)

    def send(
        self,
        command: Command[TResult],
        /,
        *,
        correlation_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        receipt: Receipt | None = None,
    ) -> TResult:
        """Dispatch a command to its handler and return its result.

        Args:
            command: The command.
            correlation_id: Correlate this dispatch with the caller's (e.g. a request id).
            metadata: Free metadata for middleware and handlers (``ctx.metadata``).
            receipt: Filled with the consistency token when the command returns.

        Raises:
            HandlerNotFoundError: No handler is registered for the command's type.
            MessageKindError: ``command`` is not a command.
        """
        try:
            route = self._commands[type(command)]
        except KeyError:
            route = self._miss(command, MessageKind.COMMAND)
        if receipt is not None:
            return self._send_with_receipt(command, correlation_id, metadata, receipt)  # type: ignore[no-any-return]
        if self._fast or (correlation_id is None and metadata is None):
            return route(command)  # type: ignore[no-any-return]
        return self._full[type(command)](command, correlation_id, metadata)  # type: ignore[no-any-return]

    def ask(
        self,
        query: Query[TResult],
        /,
        *,
        correlation_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        consistency: AtLeast | None = None,
    ) -> TResult:
        """Dispatch a query to its handler and return its result.

        Args:
            query: The query.
            correlation_id: Correlate this dispatch with the caller's (e.g. a request id).
            metadata: Free metadata for middleware and handlers (``ctx.metadata``).
            consistency: Wait until the read models have applied a command's token (needs
                the consistency middleware of :mod:`cqrs_kit.middleware.projection`).

        Raises:
            HandlerNotFoundError: No handler is registered for the query's type.
            MessageKindError: ``query`` is not a query.
        """
        try:
            route = self._queries[type(query)]
        except KeyError:
            route = self._miss(query, MessageKind.QUERY)
        if consistency is not None:
            metadata = {**(metadata or {}), CONSISTENCY_KEY: consistency}
        if self._fast or (correlation_id is None and metadata is None):
            return route(query)  # type: ignore[no-any-return]
        return self._full[type(query)](query, correlation_id, metadata)  # type: ignore[no-any-return]

    def publish(
        self,
        event: Event,
        /,
        *,
        correlation_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        """Run every handler of ``event``'s type, in registration order.

        An event type without handlers is fine: nothing runs (but middleware does).

        Raises:
            MessageKindError: ``event`` is not an event.
        """
        try:
            route = self._events[type(event)]
        except KeyError:
            route = self._miss(event, MessageKind.EVENT)
        if self._fast or (correlation_id is None and metadata is None):
            route(event)
        else:
            self._full[type(event)](event, correlation_id, metadata)

    # -- composition (sync) ----------------------------------------------------------------

    def _event_invoker(self, registrations: list[Registration]) -> Invoker:
        steps = [(r.spec, self._invoker(r), r.on_error) for r in registrations]

        def run_all(event: Any, ctx: DispatchContext) -> None:
            for spec, invoke, on_error in steps:
                if on_error is EventErrorPolicy.PROPAGATE:
                    invoke(event, ctx)
                    continue
                try:
                    invoke(event, ctx)
                except Exception:  # noqa: BLE001 - the handler opted into "continue"
                    _log_event_error(spec, event)

        return run_all

    def _context_route(
        self, invoker: Invoker, composed: tuple[Callable[..., Any], CallNext] | None
    ) -> Route:
        first, call_next = composed if composed is not None else (None, None)

        def route(
            message: Any,
            correlation_id: str | None = None,
            metadata: Mapping[str, Any] | None = None,
        ) -> Any:
            parent = _current.get()
            if correlation_id is None and metadata is None:
                ctx = DispatchContext(message, parent)
            else:
                ctx = DispatchContext.for_call(message, parent, correlation_id, metadata)
            token = _current.set(ctx)
            try:
                result = (
                    first(message, ctx, call_next) if first is not None else invoker(message, ctx)
                )
            except BaseException:
                _current.reset(token)
                if parent is None and ctx._scope is not None:
                    _close_scope(ctx._scope, failed=True)
                raise
            _current.reset(token)
            if parent is None and ctx._scope is not None:
                _close_scope(ctx._scope, failed=False)
            if metadata is not None and _RECEIPT_KEY in metadata:
                _fill(metadata[_RECEIPT_KEY], ctx)
            return result

        return route


class AsyncMediator(_MediatorCore):
    """Dispatches commands, queries and events to coroutine handlers.

    Plain (``def``) handlers are accepted too and run on the event loop, so keep them
    short. Middleware must be ``async def`` and await ``call_next()``.
    """

    _asynchronous = True

    def __init__(
        self,
        registry: Registry | None = None,
        *,
        middleware: Sequence[Callable[..., Any]] = (),
        resolver: Resolver | None = None,
    ) -> None:
        """Create an async mediator (arguments as for :class:`Mediator`).

        Raises:
            ConfigurationError: A middleware is not async, or a handler does not fit.
        """
        super().__init__(registry, middleware=middleware, resolver=resolver)

    async def send(
        self,
        command: Command[TResult],
        /,
        *,
        correlation_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        receipt: Receipt | None = None,
    ) -> TResult:
        """Dispatch a command to its handler and return its result (see :meth:`Mediator.send`)."""
        try:
            route = self._commands[type(command)]
        except KeyError:
            route = self._miss(command, MessageKind.COMMAND)
        if receipt is not None:
            return await self._send_with_receipt(command, correlation_id, metadata, receipt)  # type: ignore[no-any-return]
        if self._fast or (correlation_id is None and metadata is None):
            return await route(command)  # type: ignore[no-any-return]
        return await self._full[type(command)](command, correlation_id, metadata)  # type: ignore[no-any-return]

    async def ask(
        self,
        query: Query[TResult],
        /,
        *,
        correlation_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        consistency: AtLeast | None = None,
    ) -> TResult:
        """Dispatch a query to its handler and return its result (see :meth:`Mediator.ask`)."""
        try:
            route = self._queries[type(query)]
        except KeyError:
            route = self._miss(query, MessageKind.QUERY)
        if consistency is not None:
            metadata = {**(metadata or {}), CONSISTENCY_KEY: consistency}
        if self._fast or (correlation_id is None and metadata is None):
            return await route(query)  # type: ignore[no-any-return]
        return await self._full[type(query)](query, correlation_id, metadata)  # type: ignore[no-any-return]

    async def publish(
        self,
        event: Event,
        /,
        *,
        correlation_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        """Run every handler of ``event``'s type in order (see :meth:`Mediator.publish`)."""
        try:
            route = self._events[type(event)]
        except KeyError:
            route = self._miss(event, MessageKind.EVENT)
        if self._fast or (correlation_id is None and metadata is None):
            await route(event)
        else:
            await self._full[type(event)](event, correlation_id, metadata)

    # -- composition (async) ---------------------------------------------------------------

    def _invoker(self, registration: Registration) -> Invoker:
        invoke = super()._invoker(registration)
        if registration.spec.is_async:
            return invoke

        async def invoke_sync(message: Any, ctx: DispatchContext) -> Any:
            return invoke(message, ctx)

        return invoke_sync

    def _event_invoker(self, registrations: list[Registration]) -> Invoker:
        steps = [(r.spec, self._invoker(r), r.on_error) for r in registrations]

        async def run_all(event: Any, ctx: DispatchContext) -> None:
            for spec, invoke, on_error in steps:
                if on_error is EventErrorPolicy.PROPAGATE:
                    await invoke(event, ctx)
                    continue
                try:
                    await invoke(event, ctx)
                except Exception:  # noqa: BLE001 - the handler opted into "continue"
                    _log_event_error(spec, event)

        return run_all

    def _direct(self, registration: Registration) -> Route:
        if registration.spec.is_async and not registration.spec.is_class:
            return super()._direct(registration)
        return self._fast_route(self._invoker(registration))

    def _context_route(
        self, invoker: Invoker, composed: tuple[Callable[..., Any], CallNext] | None
    ) -> Route:
        first, call_next = composed if composed is not None else (None, None)

        async def route(
            message: Any,
            correlation_id: str | None = None,
            metadata: Mapping[str, Any] | None = None,
        ) -> Any:
            parent = _current.get()
            if correlation_id is None and metadata is None:
                ctx = DispatchContext(message, parent)
            else:
                ctx = DispatchContext.for_call(message, parent, correlation_id, metadata)
            token = _current.set(ctx)
            try:
                result = await (
                    first(message, ctx, call_next) if first is not None else invoker(message, ctx)
                )
            except BaseException:
                _current.reset(token)
                if parent is None and ctx._scope is not None:
                    for pending in _close_scope(ctx._scope, failed=True):
                        await pending
                raise
            _current.reset(token)
            if parent is None and ctx._scope is not None:
                for pending in _close_scope(ctx._scope, failed=False):
                    await pending
            if metadata is not None and _RECEIPT_KEY in metadata:
                _fill(metadata[_RECEIPT_KEY], ctx)
            return result

        return route
