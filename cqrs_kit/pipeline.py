"""Middleware: its shape, its scoping, and the chain composed once per message type.

A middleware is any callable ``(message, ctx, call_next) -> result``; on an
:class:`~cqrs_kit.AsyncMediator` it returns an awaitable. It usually calls ``call_next()``
once and returns (or transforms) what it returns; it may skip it (a cache hit) or call it
again (a retry of the rest of the chain). Call it in the task or thread that received it.
The list given to a mediator is ordered outermost first::

    def timing(message: Message, ctx: DispatchContext, call_next: CallNext) -> object:
        started = time.perf_counter()
        try:
            return call_next()
        finally:
            ctx.metadata["elapsed"] = time.perf_counter() - started

A middleware applies to every message unless it is scoped: wrap it with :func:`scoped`, or
give it an ``applies_to`` attribute holding a tuple of message classes (``Command``,
``Query``, ``Event`` or your own types). The chain for each message type is composed once,
when the mediator freezes, and reused for every dispatch.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

from cqrs_kit._handlers import describe
from cqrs_kit.context import DispatchContext, _current
from cqrs_kit.exceptions import ConfigurationError
from cqrs_kit.messages import Message, is_message_class

__all__ = ["AsyncMiddleware", "CallNext", "Middleware", "Scoped", "chain_for", "compose", "scoped"]

CallNext: TypeAlias = Callable[[], Any]
"""Continues the chain; returns the handler's result (an awaitable on ``AsyncMediator``)."""

Middleware: TypeAlias = Callable[[Message, DispatchContext, CallNext], Any]
"""A synchronous middleware: ``(message, ctx, call_next) -> result``."""

AsyncMiddleware: TypeAlias = Callable[[Message, DispatchContext, CallNext], Awaitable[Any]]
"""An asynchronous middleware: ``async (message, ctx, call_next) -> result``."""


@dataclass(frozen=True, slots=True)
class Scoped:
    """A middleware that applies only to some message types.

    Attributes:
        middleware: The wrapped middleware.
        applies_to: The message classes it applies to (subclasses included).
    """

    middleware: Callable[..., Any]
    applies_to: tuple[type[Message], ...]

    def __call__(self, message: Message, ctx: DispatchContext, call_next: CallNext) -> Any:
        """Delegate to the wrapped middleware."""
        return self.middleware(message, ctx, call_next)


def scoped(middleware: Callable[..., Any], *message_types: type[Message]) -> Scoped:
    """Apply ``middleware`` only to messages of the given classes.

    Example::

        Mediator(registry, middleware=[logging_mw, scoped(transaction_mw, Command)])

    Raises:
        ConfigurationError: No message type was given, or one is not a message class.
    """
    if not message_types:
        msg = "scoped() needs at least one message class, e.g. scoped(mw, Command)"
        raise ConfigurationError(msg)
    for message_type in message_types:
        if not is_message_class(message_type):
            msg = f"scoped() takes message classes, got {message_type!r}"
            raise ConfigurationError(msg)
    return Scoped(middleware, tuple(message_types))


def _target(middleware: Callable[..., Any]) -> Callable[..., Any]:
    return middleware.middleware if isinstance(middleware, Scoped) else middleware


def is_async_middleware(middleware: Callable[..., Any]) -> bool:
    """Whether ``middleware`` is a coroutine function (or an object whose ``__call__`` is)."""
    target = _target(middleware)
    return inspect.iscoroutinefunction(target) or inspect.iscoroutinefunction(
        getattr(target, "__call__", None)  # noqa: B004 - callable objects
    )


def check_middleware(middleware: Callable[..., Any], *, asynchronous: bool) -> None:
    """Check one middleware for a mediator.

    Raises:
        ConfigurationError: It is not callable, or is async on a sync mediator (or the
            reverse).
    """
    if not callable(middleware):
        msg = f"middleware must be callable (message, ctx, call_next), got {middleware!r}"  # type: ignore[unreachable]
        raise ConfigurationError(msg)
    applies_to = getattr(middleware, "applies_to", None)
    if applies_to is not None and not (
        isinstance(applies_to, tuple) and all(is_message_class(t) for t in applies_to)
    ):
        msg = f"{describe(middleware)}.applies_to must be a tuple of message classes"
        raise ConfigurationError(msg)
    is_async = is_async_middleware(middleware)
    if is_async and not asynchronous:
        msg = (
            f"middleware {describe(_target(middleware))} is async; use AsyncMediator for async "
            f"middleware, or make it a plain def"
        )
        raise ConfigurationError(msg)
    if asynchronous and not is_async:
        msg = (
            f"middleware {describe(_target(middleware))} is not async; AsyncMediator needs "
            f"'async def' middleware that awaits call_next()"
        )
        raise ConfigurationError(msg)


def chain_for(
    message_type: type[Message], middleware: Sequence[Callable[..., Any]]
) -> tuple[Callable[..., Any], ...]:
    """Return the middleware that apply to ``message_type``, outermost first, unwrapped."""
    chain: list[Callable[..., Any]] = []
    for item in middleware:
        applies_to = getattr(item, "applies_to", None)
        if applies_to is None or issubclass(message_type, applies_to):
            chain.append(_target(item))
    return tuple(chain)


Entry = Callable[[Any, DispatchContext], Any]
"""``(message, ctx) -> result``: a handler invoker, or a composed middleware chain."""


def _link(middleware: Callable[..., Any], inner: CallNext) -> CallNext:
    current = _current.get  # bound once: one call per layer, no attribute lookup

    def call_next() -> Any:
        ctx: Any = current()
        return middleware(ctx.message, ctx, inner)

    return call_next


def compose(
    chain: tuple[Callable[..., Any], ...],
    invoker: Entry,
    direct: Callable[[Any], Any] | None = None,
) -> tuple[Callable[..., Any], CallNext] | None:
    """Compose ``chain`` (outermost first) around ``invoker``, once.

    Returns ``(first, call_next)``: a dispatch calls ``first(message, ctx, call_next)``.
    ``None`` when the chain is empty (call ``invoker(message, ctx)``). ``direct``, a handler
    that needs neither the context nor dependencies, is called by the innermost
    continuation instead of ``invoker``, saving a call.

    The continuations are built here, not per dispatch: each finds the running dispatch's
    context through a context variable. So ``call_next`` must be called in the task or
    thread that received it, and it may be called again (a retrying middleware does).
    """
    if not chain:
        return None

    current = _current.get
    if direct is not None:

        def terminal() -> Any:
            ctx: Any = current()
            return direct(ctx.message)

    else:

        def terminal() -> Any:
            ctx: Any = current()
            return invoker(ctx.message, ctx)

    call_next: CallNext = terminal
    for middleware in reversed(chain[1:]):
        call_next = _link(middleware, call_next)
    return chain[0], call_next
