"""The synchronous ``Mediator``: dispatch, lookup errors, event fan-out, freezing.

``test_async_mediator.py`` mirrors these tests for ``AsyncMediator``.
"""

import logging
import re
import traceback
from typing import Any

import pytest

from cqrs_kit import (
    AsyncMediator,
    Command,
    ConfigurationError,
    DispatchContext,
    Event,
    HandlerNotFoundError,
    InvalidHandlerError,
    Mediator,
    Message,
    MessageKindError,
    PipelineFrozenError,
    Query,
    Registry,
)


class OrderView:
    def __init__(self, order_id: int) -> None:
        self.order_id = order_id


class CreateOrder(Command[int]):
    user_id: int


class CancelOrder(Command[None]):
    order_id: int


class GetOrder(Query[OrderView | None]):
    order_id: int


class GetOrders(Query[list[int]]):
    user_id: int


class GetArchivedOrders(GetOrders):
    pass


class OrderCreated(Event):
    order_id: int


class OrderCancelled(Event):
    order_id: int


class OrderRejectedError(Exception):
    pass


def freeze_by(mediator: Mediator, how: str) -> None:
    if how == "first dispatch":
        mediator.ask(GetOrders(user_id=1))
    else:
        mediator.freeze()


@pytest.fixture
def mediator() -> Mediator:
    """A mediator with a handler for every message used by the wrong-method tests."""
    mediator = Mediator()
    mediator.register(CreateOrder, lambda command: 1)
    mediator.register(GetOrder, lambda query: None)
    mediator.register(GetOrders, lambda query: [])
    mediator.register(OrderCreated, lambda event: None)
    return mediator


# -- results -------------------------------------------------------------------------------


def test_send_returns_the_command_handlers_result_for_the_same_command_object() -> None:
    received = []
    mediator = Mediator()

    @mediator.handles(CreateOrder)
    def create_order(command: CreateOrder) -> int:
        received.append(command)
        return 42

    command = CreateOrder(user_id=7)

    assert mediator.send(command) == 42
    assert received == [command]
    assert received[0] is command, "the handler must receive the caller's object, not a copy"


def test_ask_returns_the_query_handlers_result_for_the_same_query_object() -> None:
    received = []
    view = OrderView(3)
    mediator = Mediator()

    @mediator.handles(GetOrder)
    def get_order(query: GetOrder) -> OrderView | None:
        received.append(query)
        return view

    query = GetOrder(order_id=3)

    assert mediator.ask(query) is view
    assert received[0] is query


def test_publish_runs_the_event_handler_with_the_same_event_object_and_returns_none() -> None:
    received = []
    mediator = Mediator()
    mediator.register(OrderCreated, received.append)
    event = OrderCreated(order_id=5)

    assert mediator.publish(event) is None  # type: ignore[func-returns-value]
    assert len(received) == 1
    assert received[0] is event


def test_publishing_an_event_without_handlers_does_nothing() -> None:
    mediator = Mediator()

    mediator.publish(OrderCancelled(order_id=1))


def test_each_message_type_reaches_its_own_handler() -> None:
    mediator = Mediator()
    mediator.register(CreateOrder, lambda command: command.user_id * 10)
    mediator.register(CancelOrder, lambda command: None)
    mediator.register(GetOrders, lambda query: [query.user_id])

    assert mediator.send(CreateOrder(user_id=2)) == 20
    assert mediator.send(CancelOrder(order_id=2)) is None  # type: ignore[func-returns-value]
    assert mediator.ask(GetOrders(user_id=4)) == [4]


def test_mediator_built_from_a_registry_uses_its_handlers() -> None:
    registry = Registry()

    @registry.handles(CreateOrder)
    def create_order(command: CreateOrder) -> int:
        return 11

    mediator = Mediator(registry)

    assert mediator.registry is registry
    assert mediator.send(CreateOrder(user_id=1)) == 11


# -- wrong method ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "message", "expected"),
    [
        (
            "ask",
            CreateOrder(user_id=1),
            "CreateOrder is a command; dispatch it with send(), not ask()",
        ),
        ("publish", CreateOrder(user_id=1), "dispatch it with send(), not publish()"),
        ("send", GetOrder(order_id=1), "GetOrder is a query; dispatch it with ask(), not send()"),
        ("publish", GetOrder(order_id=1), "dispatch it with ask(), not publish()"),
        ("send", OrderCreated(order_id=1), "dispatch it with publish(), not send()"),
        ("ask", OrderCreated(order_id=1), "dispatch it with publish(), not ask()"),
    ],
    ids=[
        "command to ask",
        "command to publish",
        "query to send",
        "query to publish",
        "event to send",
        "event to ask",
    ],
)
def test_message_passed_to_the_wrong_method_raises_message_kind_error(
    mediator: Mediator, method: str, message: Any, expected: str
) -> None:
    with pytest.raises(MessageKindError, match=re.escape(expected)) as excinfo:
        getattr(mediator, method)(message)

    assert isinstance(excinfo.value, TypeError), "MessageKindError must also be a TypeError"


@pytest.mark.parametrize(
    ("method", "value", "expected"),
    [
        ("send", 42, r"send\(\) takes a Command instance, got int"),
        ("ask", {"order_id": 1}, r"ask\(\) takes a Query instance, got dict"),
        ("publish", "OrderCreated", r"publish\(\) takes an? Event instance, got str"),
    ],
    ids=["int", "dict", "str"],
)
def test_non_message_raises_message_kind_error(
    mediator: Mediator, method: str, value: Any, expected: str
) -> None:
    with pytest.raises(MessageKindError, match=expected) as excinfo:
        getattr(mediator, method)(value)

    assert isinstance(excinfo.value, TypeError)


def test_wrong_method_is_detected_after_the_pipeline_is_frozen_too(mediator: Mediator) -> None:
    mediator.send(CreateOrder(user_id=1))
    assert mediator.frozen

    with pytest.raises(MessageKindError, match=re.escape("dispatch it with send(), not ask()")):
        mediator.ask(CreateOrder(user_id=1))  # type: ignore[arg-type]


# -- handler not found ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "message", "expected"),
    [
        ("send", CancelOrder(order_id=1), "no handler is registered for command CancelOrder"),
        ("ask", GetOrder(order_id=1), "no handler is registered for query GetOrder"),
    ],
)
def test_unregistered_message_raises_handler_not_found_error(
    method: str, message: Any, expected: str
) -> None:
    mediator = Mediator()

    with pytest.raises(HandlerNotFoundError) as excinfo:
        getattr(mediator, method)(message)

    error = excinfo.value
    assert isinstance(error, LookupError), "HandlerNotFoundError must also be a LookupError"
    assert error.message_type is type(message)
    assert expected in str(error)
    name = type(message).__name__
    assert f"register one with @registry.handles({name})" in str(error), "must say how to fix"


def test_subclass_of_a_registered_query_is_not_handled_and_the_error_mentions_include_subclasses():
    mediator = Mediator()
    mediator.register(GetOrders, lambda query: [])

    with pytest.raises(HandlerNotFoundError) as excinfo:
        mediator.ask(GetArchivedOrders(user_id=1))

    text = str(excinfo.value)
    assert "no handler is registered for query GetArchivedOrders" in text
    assert "GetOrders has a handler, but handlers match exact types" in text
    assert "include_subclasses=True" in text
    assert excinfo.value.message_type is GetArchivedOrders


def test_include_subclasses_makes_the_base_handler_handle_subclass_messages() -> None:
    received = []
    mediator = Mediator()

    @mediator.handles(GetOrders, include_subclasses=True)
    def get_orders(query: GetOrders) -> list[int]:
        received.append(query)
        return [1, 2]

    query = GetArchivedOrders(user_id=1)

    assert mediator.ask(query) == [1, 2]
    assert received[0] is query, "the base handler must receive the subclass instance"
    assert mediator.ask(GetOrders(user_id=1)) == [1, 2]


def test_exact_registration_wins_over_an_including_base_handler() -> None:
    mediator = Mediator()
    mediator.register(GetOrders, lambda query: ["base"], include_subclasses=True)
    mediator.register(GetArchivedOrders, lambda query: ["archived"])

    assert mediator.ask(GetArchivedOrders(user_id=1)) == ["archived"]
    assert mediator.ask(GetOrders(user_id=1)) == ["base"]


# -- events ------------------------------------------------------------------------------


def test_event_handlers_run_in_registration_order() -> None:
    calls = []
    mediator = Mediator()
    for name in ("first", "second", "third"):
        mediator.register(OrderCreated, lambda event, name=name: calls.append(name))

    mediator.publish(OrderCreated(order_id=1))

    assert calls == ["first", "second", "third"]


def test_event_handler_error_propagates_by_default_and_stops_later_handlers() -> None:
    calls = []
    error = OrderRejectedError("no stock")
    mediator = Mediator()

    def failing(event: OrderCreated) -> None:
        calls.append("failing")
        raise error

    mediator.register(OrderCreated, lambda event: calls.append("before"))
    mediator.register(OrderCreated, failing, on_error="propagate")
    mediator.register(OrderCreated, lambda event: calls.append("after"))

    with pytest.raises(OrderRejectedError) as excinfo:
        mediator.publish(OrderCreated(order_id=1))

    assert excinfo.value is error, "the handler's exception must reach the caller unchanged"
    assert calls == ["before", "failing"], "handlers after a propagating failure must not run"


def test_event_handler_with_on_error_continue_is_logged_and_the_next_handler_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls = []
    error = OrderRejectedError("no stock")
    mediator = Mediator()

    def failing(event: OrderCreated) -> None:
        raise error

    mediator.register(OrderCreated, failing, on_error="continue")
    mediator.register(OrderCreated, lambda event: calls.append("after"))
    caplog.set_level(logging.ERROR, logger="cqrs_kit")

    mediator.publish(OrderCreated(order_id=1))

    assert calls == ["after"], "the handler after a 'continue' failure must still run"
    records = [r for r in caplog.records if r.name == "cqrs_kit"]
    assert len(records) == 1, f"expected one error logged on 'cqrs_kit', got {records}"
    record = records[0]
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None
    assert record.exc_info[1] is error, "the log record must carry the handler's exception"
    assert "failing" in record.getMessage()
    assert "OrderCreated" in record.getMessage()


def test_event_handler_with_include_subclasses_runs_for_subclass_events() -> None:
    class OrderCreatedByAdmin(OrderCreated):
        pass

    calls = []
    mediator = Mediator()
    mediator.register(OrderCreated, lambda event: calls.append("base"), include_subclasses=True)
    mediator.register(OrderCreatedByAdmin, lambda event: calls.append("exact"))

    mediator.publish(OrderCreatedByAdmin(order_id=1))

    assert calls == ["exact", "base"]


def test_event_handler_without_include_subclasses_does_not_run_for_subclass_events() -> None:
    class OrderCreatedByAdmin(OrderCreated):
        pass

    calls = []
    mediator = Mediator()
    mediator.register(OrderCreated, calls.append)

    mediator.publish(OrderCreatedByAdmin(order_id=1))

    assert calls == []


# -- sync only -------------------------------------------------------------------------


async def create_order_async(command: CreateOrder) -> int:
    return 1


class AsyncCreateOrderHandler:
    async def __call__(self, command: CreateOrder) -> int:
        return 1


class AsyncCallable:
    async def __call__(self, command: CreateOrder) -> int:
        return 1


COROUTINE_HANDLERS = [create_order_async, AsyncCreateOrderHandler, AsyncCallable()]
COROUTINE_HANDLER_IDS = ["async def", "class with async __call__", "object with async __call__"]


@pytest.mark.parametrize("handler", COROUTINE_HANDLERS, ids=COROUTINE_HANDLER_IDS)
def test_coroutine_handler_registered_on_a_mediator_is_refused_naming_async_mediator(
    handler: Any,
) -> None:
    mediator = Mediator()

    with pytest.raises(InvalidHandlerError) as excinfo:
        mediator.register(CreateOrder, handler)

    text = str(excinfo.value)
    assert "is a coroutine handler; use AsyncMediator for async handlers" in text
    assert mediator.registry.handler_for(CreateOrder) is None, "it must not stay registered"


@pytest.mark.parametrize("handler", COROUTINE_HANDLERS, ids=COROUTINE_HANDLER_IDS)
def test_coroutine_handler_in_a_registry_is_refused_when_the_mediator_is_created(
    handler: Any,
) -> None:
    registry = Registry()
    registry.register(CreateOrder, handler)

    with pytest.raises(InvalidHandlerError, match="use AsyncMediator for async handlers"):
        Mediator(registry)


def test_async_middleware_is_refused_naming_async_mediator() -> None:
    async def middleware(message, ctx, call_next):
        return await call_next()

    with pytest.raises(ConfigurationError, match="is async; use AsyncMediator"):
        Mediator(middleware=[middleware])
    with pytest.raises(ConfigurationError, match="is async; use AsyncMediator"):
        Mediator().add_middleware(middleware)


def test_registry_with_coroutine_handlers_still_serves_an_async_mediator() -> None:
    registry = Registry()
    registry.register(CreateOrder, create_order_async)

    AsyncMediator(registry)


# -- class handlers ----------------------------------------------------------------------


@pytest.mark.parametrize("with_middleware", [False, True], ids=["fast path", "with middleware"])
def test_class_handler_is_instantiated_once_per_dispatch(with_middleware: bool) -> None:
    instances: list[object] = []

    class CreateOrderHandler:
        def __init__(self) -> None:
            instances.append(self)

        def __call__(self, command: CreateOrder) -> int:
            return len(instances)

    middleware = [lambda message, ctx, call_next: call_next()] if with_middleware else []
    mediator = Mediator(middleware=middleware)
    mediator.register(CreateOrder, CreateOrderHandler)

    results = [mediator.send(CreateOrder(user_id=1)) for _ in range(3)]

    assert results == [1, 2, 3]
    assert len({id(instance) for instance in instances}) == 3, "instances must not be shared"


def test_class_handler_receives_dependencies_through_init() -> None:
    from cqrs_kit import Dependencies

    repo = object()
    seen = []

    class CreateOrderHandler:
        def __init__(self, repo: object) -> None:
            self.repo = repo

        def __call__(self, command: CreateOrder) -> int:
            seen.append(self.repo)
            return 1

    mediator = Mediator(resolver=Dependencies({"repo": repo}))
    mediator.register(CreateOrder, CreateOrderHandler)

    assert mediator.send(CreateOrder(user_id=1)) == 1
    assert seen == [repo]
    assert seen[0] is repo


# -- errors pass through -------------------------------------------------------------------


def test_handler_exception_reaches_the_caller_unchanged_with_its_traceback() -> None:
    error = OrderRejectedError("no stock")
    mediator = Mediator()

    def reject_order(command: CreateOrder) -> int:
        raise error

    mediator.register(CreateOrder, reject_order)

    with pytest.raises(OrderRejectedError) as excinfo:
        mediator.send(CreateOrder(user_id=1))

    assert excinfo.value is error
    frames = [frame.name for frame in traceback.extract_tb(excinfo.value.__traceback__)]
    assert "reject_order" in frames, f"handler frame missing from traceback: {frames}"
    assert excinfo.value.__cause__ is None
    assert excinfo.value.__context__ is None, "must not be chained to an internal exception"


# -- freezing ----------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["first dispatch", "freeze()"])
def test_registering_a_handler_after_freezing_raises_pipeline_frozen_error(how: str) -> None:
    mediator = Mediator()
    mediator.register(GetOrders, lambda query: [])
    freeze_by(mediator, how)

    with pytest.raises(PipelineFrozenError) as excinfo:
        mediator.register(CreateOrder, lambda command: 1)

    assert isinstance(excinfo.value, RuntimeError), "PipelineFrozenError must be a RuntimeError"
    assert "the pipeline is frozen" in str(excinfo.value)
    assert "register every handler before the first dispatch" in str(excinfo.value)
    assert mediator.frozen
    assert mediator.registry.frozen


@pytest.mark.parametrize("how", ["first dispatch", "freeze()"])
def test_registering_through_the_registry_after_freezing_raises_pipeline_frozen_error(
    how: str,
) -> None:
    registry = Registry()
    registry.register(GetOrders, lambda query: [])
    mediator = Mediator(registry)
    freeze_by(mediator, how)

    with pytest.raises(PipelineFrozenError):
        registry.register(OrderCreated, lambda event: None)


@pytest.mark.parametrize("how", ["first dispatch", "freeze()"])
def test_adding_middleware_after_freezing_raises_pipeline_frozen_error(how: str) -> None:
    mediator = Mediator()
    mediator.register(GetOrders, lambda query: [])
    freeze_by(mediator, how)

    with pytest.raises(PipelineFrozenError, match="cannot add middleware: the pipeline is frozen"):
        mediator.add_middleware(lambda message, ctx, call_next: call_next())


def test_dispatch_of_an_unregistered_message_freezes_the_pipeline_too() -> None:
    mediator = Mediator()

    with pytest.raises(HandlerNotFoundError):
        mediator.send(CreateOrder(user_id=1))

    assert mediator.frozen
    with pytest.raises(PipelineFrozenError):
        mediator.register(CreateOrder, lambda command: 1)


def test_freeze_is_idempotent_and_dispatch_works_after_it() -> None:
    mediator = Mediator()
    mediator.register(CreateOrder, lambda command: 5)

    mediator.freeze()
    mediator.freeze()

    assert mediator.send(CreateOrder(user_id=1)) == 5


# -- fast path ---------------------------------------------------------------------------


def test_fast_path_returns_correct_results_and_still_freezes() -> None:
    class GetOrderHandler:
        def __call__(self, query: GetOrder) -> OrderView | None:
            return OrderView(query.order_id)

    events = []
    mediator = Mediator()
    mediator.register(CreateOrder, lambda command: command.user_id + 1)
    mediator.register(GetOrder, GetOrderHandler)
    mediator.register(GetOrders, lambda query: [1], include_subclasses=True)
    mediator.register(OrderCreated, events.append)

    assert mediator.send(CreateOrder(user_id=1)) == 2
    view = mediator.ask(GetOrder(order_id=9))
    assert view is not None
    assert view.order_id == 9
    assert mediator.ask(GetArchivedOrders(user_id=1)) == [1]
    event = OrderCreated(order_id=3)
    mediator.publish(event)
    assert events == [event]
    assert mediator.send(CreateOrder(user_id=1), correlation_id="abc", metadata={"a": 1}) == 2
    assert mediator.frozen
    assert mediator.registry.frozen
    with pytest.raises(PipelineFrozenError):
        mediator.register(CancelOrder, lambda command: None)


def test_handler_taking_ctx_gets_a_context_even_without_middleware() -> None:
    contexts: list[DispatchContext] = []
    mediator = Mediator()
    mediator.register(CreateOrder, lambda command: 1)

    @mediator.handles(CancelOrder)
    def cancel_order(command: CancelOrder, ctx: DispatchContext) -> None:
        contexts.append(ctx)

    command = CancelOrder(order_id=1)
    mediator.send(command)

    assert len(contexts) == 1
    assert isinstance(contexts[0], DispatchContext)
    assert contexts[0].message is command


def test_bound_method_and_callable_object_handlers_work() -> None:
    class OrderService:
        def __init__(self) -> None:
            self.created = 0

        def create_order(self, command: CreateOrder) -> int:
            self.created += 1
            return self.created

    class GetOrdersCallable:
        def __call__(self, query: GetOrders) -> list[int]:
            return [query.user_id]

    service = OrderService()
    mediator = Mediator()
    mediator.register(CreateOrder, service.create_order)
    mediator.register(GetOrders, GetOrdersCallable())

    assert mediator.send(CreateOrder(user_id=1)) == 1
    assert mediator.send(CreateOrder(user_id=1)) == 2
    assert mediator.ask(GetOrders(user_id=3)) == [3]


@pytest.mark.parametrize("method", ["send", "ask", "publish"])
def test_message_that_is_not_a_command_query_or_event_raises_message_kind_error(
    mediator: Mediator, method: str
) -> None:
    class Note(Message):  # a Message, but neither a Command, a Query nor an Event
        text: str = "hi"

    with pytest.raises(MessageKindError, match=rf"{method}\(\) takes an? \w+ instance, got Note"):
        getattr(mediator, method)(Note())
