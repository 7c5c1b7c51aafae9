"""Logging middleware: one structlog event per dispatch, and ids bound for the handler's logs.

For the duration of a dispatch, :class:`LoggingMiddleware` (and its async twin
:class:`AsyncLoggingMiddleware`) binds ``message_type``, ``message_kind``, ``message_id``,
``correlation_id`` and ``causation_id`` with :mod:`structlog.contextvars`, so every line the
handler logs carries them (with ``merge_contextvars`` among the processors, as in structlog's
default configuration). The previous bindings are restored afterwards, so a nested dispatch
hands its parent's ids back.

When the dispatch ends it emits exactly one event (``"dispatch"`` by default) with the same
keys plus ``duration_ms`` and ``outcome``: ``"ok"``, or the exception's class name. Failures
are logged at ``failure_level`` with ``exc_info``, and the exception propagates unchanged::

    {"message_type": "GetOrder", "message_kind": "query", "message_id": "1f0c...",
     "correlation_id": "1f0c...", "causation_id": null, "duration_ms": 0.042,
     "outcome": "ok", "event": "dispatch", "level": "info"}

The level is checked once per dispatch with the logger's ``is_enabled_for`` (structlog's
filtering loggers, the default, and ``structlog.stdlib.BoundLogger``); when neither the
event's level nor ``failure_level`` is enabled, nothing is built or timed. A logger without
that method (``structlog.BoundLogger`` with a filtering processor) is treated as enabled.

This module imports structlog, so it is not re-exported from :mod:`cqrs_kit`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final, TypeAlias

import structlog
from structlog.contextvars import bind_contextvars, reset_contextvars

from cqrs_kit.context import DispatchContext
from cqrs_kit.exceptions import ConfigurationError
from cqrs_kit.messages import Message, MessageKind, is_message_class
from cqrs_kit.redaction import redacted_payload

if TYPE_CHECKING:
    from structlog.typing import BindableLogger

    from cqrs_kit.pipeline import CallNext

__all__ = ["AsyncLoggingMiddleware", "LoggingMiddleware"]

_LEVELS: Final = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}
_METHODS: Final = {number: name for name, number in _LEVELS.items()}

# ``structlog.get_logger()`` returns a lazy proxy that assembles a logger from the current
# configuration on each use; its type is not public, so learn it from a proxy.
_LAZY_PROXY: Final[type] = type(structlog.get_logger())

_errors = logging.getLogger("cqrs_kit")

_LevelCheck: TypeAlias = Callable[[Any, int], bool]
_CHECKS: dict[type, _LevelCheck] = {}


def _always(_logger: Any, _level: int) -> bool:
    return True


def _level_check(logger_type: type) -> _LevelCheck:
    """The (unbound) method that tells whether a logger of this class logs at a level."""
    check = _CHECKS.get(logger_type)
    if check is None:
        # Looked up on the class: structlog.BoundLogger turns any instance attribute into
        # a logging method, so only a real method counts.
        check = (
            getattr(logger_type, "is_enabled_for", None)
            or getattr(logger_type, "isEnabledFor", None)  # stdlib BoundLogger before 26.1
            or _always
        )
        _CHECKS[logger_type] = check
    return check


def _level(value: int | str, what: str) -> int:
    number = _LEVELS.get(value.lower()) if isinstance(value, str) else value
    if number not in _METHODS:
        msg = f"{what} must be one of {', '.join(_LEVELS)} (or its logging number), got {value!r}"
        raise ConfigurationError(msg)
    return number


# What a middleware knows about a message class: (success level, class name, kind value).
# Cached by class, because hashing a class is cheaper than reading and hashing an enum.
_TypeInfo: TypeAlias = tuple[int, str, str]

# Per-dispatch state: (logger, ok method, failure method, type info, ctx, fields, start,
# contextvar tokens). A tuple, because one is built on every dispatch. ``fields`` is built
# up front only when binding or logging the payload needs it, else when the event is emitted.
_State: TypeAlias = tuple[
    Any,
    str | None,
    str | None,
    _TypeInfo,
    DispatchContext,
    dict[str, Any] | None,
    float,
    Mapping[str, Any] | None,
]


def _fields(info: _TypeInfo, ctx: DispatchContext) -> dict[str, Any]:
    return {
        "message_type": info[1],
        "message_kind": info[2],
        "message_id": ctx.message_id,
        "correlation_id": ctx.correlation_id,
        "causation_id": ctx.causation_id,
    }


class _LoggingCore:
    """Options and per-dispatch logic shared by the sync and async middleware."""

    __slots__ = (
        "_bind_context",
        "_by_type",
        "_event",
        "_failure_level",
        "_kind_levels",
        "_lazy",
        "_log_payload",
        "_logger",
        "applies_to",
    )

    applies_to: tuple[type[Message], ...] | None

    def __init__(
        self,
        logger: BindableLogger | None = None,
        *,
        event: str = "dispatch",
        level: int | str = "info",
        kind_levels: Mapping[MessageKind | str, int | str] | None = None,
        failure_level: int | str = "warning",
        log_payload: bool = False,
        bind_context: bool = True,
        applies_to: tuple[type[Message], ...] | None = None,
    ) -> None:
        self._logger: Any = logger if logger is not None else structlog.get_logger("cqrs_kit")
        self._lazy = isinstance(self._logger, _LAZY_PROXY)
        self._event = event
        default = _level(level, "level")
        levels = dict.fromkeys(MessageKind, default)
        for kind, kind_level in (kind_levels or {}).items():
            try:
                message_kind = MessageKind(kind)
            except ValueError:
                msg = f"kind_levels keys must be command, query or event, got {kind!r}"
                raise ConfigurationError(msg) from None
            levels[message_kind] = _level(kind_level, f"kind_levels[{message_kind.value!r}]")
        self._kind_levels = levels
        self._by_type: dict[type, _TypeInfo] = {}
        self._failure_level = _level(failure_level, "failure_level")
        self._log_payload = log_payload
        self._bind_context = bind_context
        if applies_to is not None and not (
            isinstance(applies_to, tuple) and all(is_message_class(t) for t in applies_to)
        ):
            msg = f"applies_to must be a tuple of message classes, got {applies_to!r}"
            raise ConfigurationError(msg)
        self.applies_to = applies_to

    def __repr__(self) -> str:
        levels = {kind.value: _METHODS[number] for kind, number in self._kind_levels.items()}
        return (
            f"{type(self).__name__}(event={self._event!r}, levels={levels!r}, "
            f"failure_level={_METHODS[self._failure_level]!r}, "
            f"log_payload={self._log_payload!r}, bind_context={self._bind_context!r})"
        )

    def _begin(self, message: Message, ctx: DispatchContext) -> _State | None:
        """Check levels, bind context, start the clock; ``None`` when there is nothing to do."""
        logger = self._logger.bind() if self._lazy else self._logger
        logger_type = type(logger)
        check = _CHECKS.get(logger_type) or _level_check(logger_type)
        message_type = type(message)
        info = self._by_type.get(message_type)
        if info is None:
            info = self._by_type[message_type] = (
                self._kind_levels[message.kind],
                message_type.__name__,
                message.kind.value,
            )
        ok_level = info[0]
        failure_level = self._failure_level
        # Levels are ordered: if the higher one is off, so is the lower one. Asking about
        # the higher one first makes the all-disabled case a single check.
        higher, lower = (
            (ok_level, failure_level) if ok_level >= failure_level else (failure_level, ok_level)
        )
        if check(logger, higher):
            lower_on = check(logger, lower)
            log_ok = lower_on or ok_level == higher
            log_failure = lower_on or failure_level == higher
        else:
            log_ok = log_failure = False
        if not (log_ok or log_failure):
            if not self._bind_context:
                return None
            bound = bind_contextvars(**_fields(info, ctx))
            return (None, None, None, info, ctx, None, 0.0, bound)
        fields: dict[str, Any] | None = None
        tokens: Mapping[str, Any] | None = None
        if self._bind_context:
            fields = _fields(info, ctx)
            tokens = bind_contextvars(**fields)
        if self._log_payload:
            if fields is None:
                fields = _fields(info, ctx)
            try:
                # Before the handler runs: a misdeclared __sensitive_fields__ fails the
                # dispatch up front instead of after a command has taken effect.
                fields["payload"] = redacted_payload(message)
            except BaseException:
                if tokens is not None:
                    reset_contextvars(**tokens)
                raise
        return (
            logger,
            _METHODS[ok_level] if log_ok else None,
            _METHODS[failure_level] if log_failure else None,
            info,
            ctx,
            fields,
            time.perf_counter(),
            tokens,
        )

    def _finish(self, state: _State, error: BaseException | None) -> None:
        """Emit the dispatch event (if its level is enabled) and restore the bindings."""
        logger, ok_method, failure_method, info, ctx, fields, start, tokens = state
        try:
            method = ok_method if error is None else failure_method
            if method is not None:
                duration_ms = round((time.perf_counter() - start) * 1000.0, 3)
                if fields is None:
                    fields = _fields(info, ctx)
                fields["duration_ms"] = duration_ms
                if error is None:
                    fields["outcome"] = "ok"
                else:
                    fields["outcome"] = type(error).__name__
                    fields["exc_info"] = error
                try:
                    getattr(logger, method)(self._event, **fields)
                except Exception:  # noqa: BLE001 - reported below, never raised
                    # A broken processor must not turn a successful dispatch into a failure,
                    # nor replace the handler's exception.
                    _errors.exception("could not log the dispatch of %s", info[1])
        finally:
            if tokens is not None:
                reset_contextvars(**tokens)


class LoggingMiddleware(_LoggingCore):
    """Logs one structlog event per dispatch and binds its ids for the handler's own logs.

    Example::

        mediator = Mediator(
            registry,
            middleware=[LoggingMiddleware(kind_levels={"query": "debug"})],
        )

    Args:
        logger: The structlog logger to log with. Defaults to ``structlog.get_logger("cqrs_kit")``,
            assembled from the current configuration on each dispatch (cheap with
            ``cache_logger_on_first_use=True``). A lazy proxy passed here is treated the same;
            a bound logger is used as it is.
        event: The event name of the per-dispatch event.
        level: The level of a successful dispatch's event: a name (``"info"``) or a
            ``logging`` number.
        kind_levels: Levels by message kind (``MessageKind`` or its value) that override
            ``level``, e.g. ``{"query": "debug"}``.
        failure_level: The level of a failed dispatch's event (it carries ``exc_info``).
        log_payload: Add the message's fields as ``payload``, with sensitive values replaced
            by ``"***"`` (see :mod:`cqrs_kit.redaction`). Off by default.
        bind_context: Bind the ids with :mod:`structlog.contextvars` during the dispatch, even
            when the event's level is disabled.
        applies_to: Message classes to log (subclasses included); all when ``None``.

    Raises:
        ConfigurationError: A level or kind is unknown, or ``applies_to`` is not a tuple of
            message classes.
    """

    __slots__ = ()

    def __call__(self, message: Message, ctx: DispatchContext, call_next: CallNext) -> Any:
        """Run the rest of the chain, logging around it.

        Args:
            message: The message being dispatched.
            ctx: Its dispatch context.
            call_next: Runs the rest of the chain.

        Returns:
            What ``call_next()`` returns.
        """
        state = self._begin(message, ctx)
        if state is None:
            return call_next()
        try:
            result = call_next()
        except BaseException as exc:
            self._finish(state, exc)
            raise
        self._finish(state, None)
        return result


class AsyncLoggingMiddleware(_LoggingCore):
    """The :class:`LoggingMiddleware` for :class:`~cqrs_kit.AsyncMediator`.

    Takes the same options. Logging itself is synchronous (as structlog's ``info`` is): keep
    slow I/O out of the processors, or hand it to a queue.
    """

    __slots__ = ()

    async def __call__(self, message: Message, ctx: DispatchContext, call_next: CallNext) -> Any:
        """Await the rest of the chain, logging around it.

        Args:
            message: The message being dispatched.
            ctx: Its dispatch context.
            call_next: Runs the rest of the chain; returns an awaitable.

        Returns:
            What the awaited ``call_next()`` returns.
        """
        state = self._begin(message, ctx)
        if state is None:
            return await call_next()
        try:
            result = await call_next()
        except BaseException as exc:
            self._finish(state, exc)
            raise
        self._finish(state, None)
        return result
