"""Helpers for testing code built on cqrs_kit.

- :class:`RecordingMiddleware` and :class:`AsyncRecordingMiddleware` record every dispatch
  of a real mediator, with its context and outcome, in dispatch order. Use them to assert
  what a handler sent, asked or published (nested dispatch included).
- :class:`FakeMediator` and :class:`FakeAsyncMediator` stand in for a mediator in code
  that depends on one (an HTTP endpoint, a CLI command, a worker). They are ``Mediator`` and
  ``AsyncMediator`` subclasses with the same typed ``send``/``ask``/``publish``, return
  results you configure per message type, and record what they received.
- :func:`static_resolver` supplies handler dependencies from keyword arguments.

Example::

    fake = FakeMediator().returns(CreateOrder, 42)
    assert create_order_endpoint(fake, {"user_id": 7}) == {"order_id": 42}
    assert fake.sent == [CreateOrder(user_id=7)]

This module imports only the standard library, pydantic and the cqrs_kit core.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Self, TypeVar

from cqrs_kit.dependencies import Dependencies
from cqrs_kit.exceptions import ConfigurationError, HandlerNotFoundError, MessageKindError
from cqrs_kit.mediator import AsyncMediator, Mediator
from cqrs_kit.messages import Command, Event, Message, MessageKind, Query, is_message_class

if TYPE_CHECKING:
    from cqrs_kit.consistency import AtLeast, Receipt
    from cqrs_kit.context import DispatchContext
    from cqrs_kit.pipeline import CallNext

__all__ = [
    "AsyncRecordingMiddleware",
    "FakeAsyncMediator",
    "FakeCall",
    "FakeMediator",
    "RecordedDispatch",
    "RecordingMiddleware",
    "static_resolver",
]

TMessage = TypeVar("TMessage", bound=Message)
TResult = TypeVar("TResult")

Outcome = Literal["pending", "ok", "error"]
"""How a recorded dispatch ended: ``"pending"`` while it runs."""

_METHOD = {MessageKind.COMMAND: "send", MessageKind.QUERY: "ask", MessageKind.EVENT: "publish"}


# -- recording a real mediator -------------------------------------------------------------


@dataclass(slots=True, eq=False)
class RecordedDispatch:
    """One dispatch seen by a recording middleware.

    Attributes:
        message: The dispatched message.
        message_id: The dispatch's id (``ctx.message_id``).
        correlation_id: The id shared by a top-level dispatch and everything it caused.
        causation_id: The ``message_id`` of the dispatch whose handler sent this message,
            or ``None`` for a top-level dispatch.
        metadata: A copy of ``ctx.metadata`` when the dispatch reached the recorder.
        outcome: ``"ok"``, ``"error"``, or ``"pending"`` while the dispatch runs.
        result: What the rest of the chain returned, when the outcome is ``"ok"``.
        exception: What the rest of the chain raised, when the outcome is ``"error"``.
    """

    message: Message
    message_id: str
    correlation_id: str
    causation_id: str | None
    metadata: dict[str, Any]
    outcome: Outcome = "pending"
    # Any, not object: tests read attributes of the result without a cast.
    result: Any = None
    exception: BaseException | None = None

    @property
    def kind(self) -> MessageKind:
        """Whether the message is a command, a query or an event."""
        return self.message.kind


class _Recorder:
    """What the sync and async recording middleware share: the records and their views."""

    __slots__ = ("_records",)

    def __init__(self) -> None:
        self._records: list[RecordedDispatch] = []

    @property
    def dispatches(self) -> list[RecordedDispatch]:
        """Every recorded dispatch, in the order the dispatches started (a copy)."""
        return list(self._records)

    @property
    def messages(self) -> list[Message]:
        """Every recorded message, in the order the dispatches started."""
        return [record.message for record in self._records]

    def of_type(self, message_type: type[TMessage]) -> list[TMessage]:
        """Return the recorded messages that are instances of ``message_type``, in order.

        Args:
            message_type: A message class; ``Command``, ``Query`` or ``Event`` select a kind.

        Returns:
            The matching messages (subclass instances included).
        """
        return [r.message for r in self._records if isinstance(r.message, message_type)]

    def clear(self) -> None:
        """Forget every recorded dispatch."""
        self._records.clear()

    def _start(self, message: Message, ctx: DispatchContext) -> RecordedDispatch:
        record = RecordedDispatch(
            message=message,
            message_id=ctx.message_id,
            correlation_id=ctx.correlation_id,
            causation_id=ctx.causation_id,
            metadata=dict(ctx.metadata),
        )
        self._records.append(record)
        return record

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self._records)} dispatches)"


def _finish_ok(record: RecordedDispatch, result: object) -> None:
    record.outcome = "ok"
    record.result = result


def _finish_error(record: RecordedDispatch, exc: BaseException) -> None:
    record.outcome = "error"
    record.exception = exc


class RecordingMiddleware(_Recorder):
    """Records every dispatch of a :class:`~cqrs_kit.Mediator`, with its context and outcome.

    Put it first in the middleware list to see every message as the caller sent it, or
    wrap it with :func:`~cqrs_kit.scoped` to record only some kinds. Dispatches are recorded
    when they start, so a nested dispatch comes after the one that caused it; placed inside
    a retrying middleware, it records every attempt.

    Example::

        recorder = RecordingMiddleware()
        mediator = Mediator(registry, middleware=[recorder])
        mediator.send(PlaceOrder(...))
        assert recorder.of_type(OrderPlaced) == [OrderPlaced(...)]
        assert recorder.dispatches[1].causation_id == recorder.dispatches[0].message_id
    """

    __slots__ = ()

    def __call__(self, message: Message, ctx: DispatchContext, call_next: CallNext) -> Any:
        """Record ``message``, run the rest of the chain, record its outcome."""
        record = self._start(message, ctx)
        try:
            result = call_next()
        except BaseException as exc:
            _finish_error(record, exc)
            raise
        _finish_ok(record, result)
        return result


class AsyncRecordingMiddleware(_Recorder):
    """Records every dispatch of an :class:`~cqrs_kit.AsyncMediator`.

    The async twin of :class:`RecordingMiddleware`, with the same records and views.
    """

    __slots__ = ()

    async def __call__(self, message: Message, ctx: DispatchContext, call_next: CallNext) -> Any:
        """Record ``message``, await the rest of the chain, record its outcome."""
        record = self._start(message, ctx)
        try:
            result = await call_next()
        except BaseException as exc:
            _finish_error(record, exc)
            raise
        _finish_ok(record, result)
        return result


# -- standing in for a mediator ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FakeCall:
    """One message a fake mediator received.

    Attributes:
        message: The message.
        correlation_id: The ``correlation_id`` argument, if one was passed.
        metadata: A copy of the ``metadata`` argument (empty when none was passed).
        consistency: The ``consistency`` argument of ``ask``, if one was passed.
    """

    message: Message
    correlation_id: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    consistency: AtLeast | None = None


_Answer = Callable[[Any], Any]


class _FakeCore:
    """What ``FakeMediator`` and ``FakeAsyncMediator`` share: configuration and records.

    Mixed in before ``Mediator``/``AsyncMediator``, so a fake is accepted (by isinstance and
    by mypy) wherever the real mediator is; it overrides dispatch and refuses handlers.
    """

    _asynchronous: bool

    def __init__(self) -> None:
        super().__init__()
        self._answers: dict[type[Message], _Answer] = {}
        self.calls: list[FakeCall] = []
        """Every message received, in order, with the dispatch arguments."""

    # -- what a fake does not do -----------------------------------------------------------

    def register(self, message_type: type[Message], handler: Any, **options: Any) -> None:
        """Refuse: a fake runs no handlers.

        Raises:
            ConfigurationError: Always; configure answers with :meth:`returns`,
                :meth:`answers` or :meth:`raises`.
        """
        raise ConfigurationError(self._no_handlers(message_type))

    def handles(self, message_type: type[Message], **options: Any) -> Callable[[Any], Any]:
        """Refuse: a fake runs no handlers (see :meth:`register`).

        Raises:
            ConfigurationError: Always.
        """
        raise ConfigurationError(self._no_handlers(message_type))

    def add_middleware(self, middleware: Callable[..., Any]) -> None:
        """Refuse: a fake runs no middleware.

        Raises:
            ConfigurationError: Always; test middleware on a real mediator, with
                :class:`RecordingMiddleware` to see what it dispatched.
        """
        msg = (
            f"{type(self).__name__} runs no middleware; test middleware on a real mediator "
            f"(RecordingMiddleware records what it dispatches)"
        )
        raise ConfigurationError(msg)

    def _no_handlers(self, message_type: type[Message]) -> str:
        name = getattr(message_type, "__name__", repr(message_type))
        return (
            f"{type(self).__name__} runs no handlers; configure what it answers for {name} "
            f"with .returns({name}, result), .answers({name}, function) or "
            f".raises({name}, error)"
        )

    # -- configuration -------------------------------------------------------------------

    def returns(
        self, message_type: type[Command[TResult]] | type[Query[TResult]], result: TResult
    ) -> Self:
        """Answer every ``message_type`` message with ``result``.

        Replaces any earlier answer for the type. Answers match exact types, as handlers do.

        Args:
            message_type: A command or query class.
            result: The result ``send``/``ask`` returns.

        Returns:
            This fake, so configuration calls can be chained.

        Raises:
            MessageKindError: ``message_type`` is not a command or query class.
        """
        self._configure(message_type, "returns")
        if message_type.kind is MessageKind.EVENT:
            msg = (
                f"{message_type.__name__} is an event, and events have no result; use "
                f"answers() to run a function or raises() to fail its publish()"
            )
            raise MessageKindError(msg)
        self._answers[message_type] = lambda _message: result
        return self

    def answers(self, message_type: type[TMessage], answer: Callable[[TMessage], Any]) -> Self:
        """Answer every ``message_type`` message by calling ``answer(message)``.

        For an event, ``answer`` runs on every ``publish`` and its result is ignored.
        Replaces any earlier answer for the type.

        Args:
            message_type: A command, query or event class.
            answer: Called with each message; returns the result (a fake async mediator
                also accepts a coroutine function). It may raise.

        Returns:
            This fake, so configuration calls can be chained.

        Raises:
            MessageKindError: ``message_type`` is not a message class.
            TypeError: ``answer`` is not callable, or is a coroutine function given to
                :class:`FakeMediator`.
        """
        self._configure(message_type, "answers")
        if not callable(answer):
            msg = f"answers() needs a callable taking the message, got {answer!r}"  # type: ignore[unreachable]
            raise TypeError(msg)
        if not self._asynchronous and inspect.iscoroutinefunction(answer):
            msg = (
                f"the answer for {message_type.__name__} is a coroutine function; use "
                f"FakeAsyncMediator for async answers, or make it a plain def"
            )
            raise TypeError(msg)
        self._answers[message_type] = answer
        return self

    def raises(
        self, message_type: type[Message], error: BaseException | type[BaseException]
    ) -> Self:
        """Raise ``error`` for every ``message_type`` message (events included).

        Replaces any earlier answer for the type.

        Args:
            message_type: A command, query or event class.
            error: The exception (instance or class) to raise.

        Returns:
            This fake, so configuration calls can be chained.

        Raises:
            MessageKindError: ``message_type`` is not a message class.
        """
        self._configure(message_type, "raises")

        def fail(_message: object) -> None:
            raise error

        self._answers[message_type] = fail
        return self

    def _configure(self, message_type: object, method: str) -> None:
        if not is_message_class(message_type) or message_type in (Command, Query, Event):
            msg = (
                f"{method}() takes your own Command, Query or Event subclass, got {message_type!r}"
            )
            raise MessageKindError(msg)

    # -- records -------------------------------------------------------------------------

    @property
    def messages(self) -> list[Message]:
        """Every message received, in order."""
        return [call.message for call in self.calls]

    @property
    def sent(self) -> list[Command[Any]]:
        """The commands received by ``send``, in order."""
        return [c.message for c in self.calls if isinstance(c.message, Command)]

    @property
    def asked(self) -> list[Query[Any]]:
        """The queries received by ``ask``, in order."""
        return [c.message for c in self.calls if isinstance(c.message, Query)]

    @property
    def published(self) -> list[Event]:
        """The events received by ``publish``, in order."""
        return [c.message for c in self.calls if isinstance(c.message, Event)]

    def of_type(self, message_type: type[TMessage]) -> list[TMessage]:
        """Return the received messages that are instances of ``message_type``, in order."""
        return [c.message for c in self.calls if isinstance(c.message, message_type)]

    def clear(self) -> None:
        """Forget the received messages; the configured answers stay."""
        self.calls.clear()

    # -- dispatch ------------------------------------------------------------------------

    def _receive(
        self,
        message: object,
        kind: MessageKind,
        correlation_id: str | None,
        metadata: Mapping[str, Any] | None,
        consistency: AtLeast | None = None,
    ) -> Any:
        """Check and record ``message``; return what its answer returns (maybe awaitable)."""
        method = _METHOD[kind]
        if not isinstance(message, Message):
            expected = kind.name.capitalize()
            msg = f"{method}() takes a {expected} instance, got {type(message).__name__}"
            raise MessageKindError(msg)
        if message.kind is not kind:
            msg = (
                f"{type(message).__name__} is a {message.kind.value}; dispatch it with "
                f"{_METHOD[message.kind]}(), not {method}()"
            )
            raise MessageKindError(msg)
        self.calls.append(FakeCall(message, correlation_id, dict(metadata or {}), consistency))
        answer = self._answers.get(type(message))
        if answer is not None:
            return answer(message)
        if kind is MessageKind.EVENT:
            return None
        raise HandlerNotFoundError(self._no_answer(type(message)), message_type=type(message))

    def _no_answer(self, message_type: type[Message]) -> str:
        name = message_type.__name__
        hint = next(
            (
                f" (answers match exact types: {base.__name__} has one, {name} does not)"
                for base in message_type.__mro__[1:]
                if base in self._answers
            ),
            "",
        )
        return (
            f"{type(self).__name__} has no answer for {message_type.kind.value} {name}{hint}; "
            f"configure one with .returns({name}, result), .answers({name}, function) or "
            f".raises({name}, error)"
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self._answers)} answers, {len(self.calls)} calls)"


class FakeMediator(_FakeCore, Mediator):
    """Stands in for a :class:`~cqrs_kit.Mediator` in code under test.

    ``send``, ``ask`` and ``publish`` take the same arguments and are typed the same way.
    Configure answers per message type; every message received is recorded in
    :attr:`calls` (also as :attr:`sent`, :attr:`asked` and :attr:`published`). A command
    or query without an answer raises :class:`~cqrs_kit.HandlerNotFoundError`; an event
    without one is recorded and ignored. No handler, middleware or dispatch context runs.

    It is a ``Mediator`` subclass, so it goes wherever code takes a ``Mediator``; but it
    refuses handlers and middleware (:meth:`register`, :meth:`add_middleware` raise
    :class:`~cqrs_kit.ConfigurationError`).

    Example::

        fake = FakeMediator()
        fake.returns(CreateOrder, 42).answers(GetOrder, lambda q: OrderView(id=q.order_id))
        fake.raises(CancelOrder, OrderNotFound(7))
    """

    _asynchronous = False

    def send(
        self,
        command: Command[TResult],
        /,
        *,
        correlation_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        receipt: Receipt | None = None,
    ) -> TResult:
        """Record ``command`` and return its configured answer.

        A ``receipt`` gets no consistency token (a fake appends no events) and the
        ``correlation_id`` passed.

        Raises:
            HandlerNotFoundError: No answer is configured for the command's type.
            MessageKindError: ``command`` is not a command.
        """
        result = self._receive(command, MessageKind.COMMAND, correlation_id, metadata)
        _fill_receipt(receipt, correlation_id)
        return result  # type: ignore[no-any-return]

    def ask(
        self,
        query: Query[TResult],
        /,
        *,
        correlation_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        consistency: AtLeast | None = None,
    ) -> TResult:
        """Record ``query`` (and ``consistency``, never waited for) and return its answer.

        Raises:
            HandlerNotFoundError: No answer is configured for the query's type.
            MessageKindError: ``query`` is not a query.
        """
        return self._receive(query, MessageKind.QUERY, correlation_id, metadata, consistency)  # type: ignore[no-any-return]

    def publish(
        self,
        event: Event,
        /,
        *,
        correlation_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        """Record ``event`` and run its configured answer, if any.

        Raises:
            MessageKindError: ``event`` is not an event.
        """
        self._receive(event, MessageKind.EVENT, correlation_id, metadata)


class FakeAsyncMediator(_FakeCore, AsyncMediator):
    """Stands in for an :class:`~cqrs_kit.AsyncMediator` (see :class:`FakeMediator`).

    Answers given to :meth:`answers` may be plain or coroutine functions.
    """

    _asynchronous = True

    async def send(
        self,
        command: Command[TResult],
        /,
        *,
        correlation_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        receipt: Receipt | None = None,
    ) -> TResult:
        """Record ``command`` and return its configured answer (see :meth:`FakeMediator.send`)."""
        result = self._receive(command, MessageKind.COMMAND, correlation_id, metadata)
        if inspect.isawaitable(result):
            result = await result
        _fill_receipt(receipt, correlation_id)
        return result  # type: ignore[no-any-return]

    async def ask(
        self,
        query: Query[TResult],
        /,
        *,
        correlation_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        consistency: AtLeast | None = None,
    ) -> TResult:
        """Record ``query`` and return its configured answer (see :meth:`FakeMediator.ask`)."""
        result = self._receive(query, MessageKind.QUERY, correlation_id, metadata, consistency)
        return await result if inspect.isawaitable(result) else result  # type: ignore[no-any-return]

    async def publish(
        self,
        event: Event,
        /,
        *,
        correlation_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        """Record ``event`` and run its configured answer (see :meth:`FakeMediator.publish`)."""
        result = self._receive(event, MessageKind.EVENT, correlation_id, metadata)
        if inspect.isawaitable(result):
            await result


def _fill_receipt(receipt: Receipt | None, correlation_id: str | None) -> None:
    if receipt is not None:
        receipt.token = None
        receipt.correlation_id = correlation_id


# -- dependencies --------------------------------------------------------------------------


def static_resolver(**dependencies: object) -> Dependencies:
    """Return a resolver that supplies handler dependencies by parameter name.

    A shorthand for ``Dependencies({...})`` in tests; values wrapped in
    :class:`~cqrs_kit.Factory` are still called once per dispatch.

    Example::

        mediator = Mediator(registry, resolver=static_resolver(orders=FakeOrders()))

    Args:
        **dependencies: Values (or factories) keyed by the handler parameter they fill.

    Returns:
        A :class:`~cqrs_kit.Dependencies` resolver.
    """
    entries: dict[str | type, object] = {}
    entries.update(dependencies)
    return Dependencies(entries)
