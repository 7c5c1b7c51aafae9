"""``AsyncMediator``: the async twin of ``test_mediator.py``, plus what only async has."""

import asyncio
import logging
import re
import traceback
from typing import Any

import pytest

from cqrs_kit import (
    AsyncMediator,
    Command,
    ConfigurationError,
    Dependencies,
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


async def freeze_by(mediator: AsyncMediator, how: str) -> None:
    if how == "first dispatch":
        await mediator.ask(GetOrders(user_id=1))
    else:
        mediator.freeze()


def recorder(calls: list[Any], value: Any) -> Any:
    """An async event handler appending ``value`` to ``calls``."""

    async def handler(event: OrderCreated) -> None:
        calls.append(value)

    return handler


@pytest.fixture
def mediator() -> AsyncMediator:
    """A mediator with a handler for every message used by the wrong-method tests."""
    mediator = AsyncMediator()

    async def create_order(command: CreateOrder) -> int:
        return 1

    async def get_order(query: GetOrder) -> OrderView | None:
        return None

    mediator.register(CreateOrder, create_order)
    mediator.register(GetOrder, get_order)
    mediator.register(GetOrders, lambda query: [])
    mediator.register(OrderCreated, lambda event: None)
    return mediator


# -- results -------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_send_returns_the_command_handlers_result_for_the_same_command_object() -> None:
    received = []
    mediator = AsyncMediator()

    @mediator.handles(CreateOrder)
    async def create_order(command: CreateOrder) -> int:
        received.append(command)
        return 42

    command = CreateOrder(user_id=7)

    assert await mediator.send(command) == 42
    assert received == [command]
    assert received[0] is command, "the handler must receive the caller's object, not a copy"


@pytest.mark.asyncio
async def test_ask_returns_the_query_handlers_result_for_the_same_query_object() -> None:
    received = []
    view = OrderView(3)
    mediator = AsyncMediator()

    @mediator.handles(GetOrder)
    async def get_order(query: GetOrder) -> OrderView | None:
        received.append(query)
        return view

    query = GetOrder(order_id=3)

    assert await mediator.ask(query) is view
    assert received[0] is query


@pytest.mark.asyncio
async def test_publish_runs_the_event_handler_with_the_same_event_object_and_returns_none():
    received = []
    mediator = AsyncMediator()

    @mediator.handles(OrderCreated)
    async def on_order_created(event: OrderCreated) -> None:
        received.append(event)

    event = OrderCreated(order_id=5)

    assert await mediator.publish(event) is None  # type: ignore[func-returns-value]
    assert len(received) == 1
    assert received[0] is event


@pytest.mark.asyncio
async def test_publishing_an_event_without_handlers_does_nothing() -> None:
    mediator = AsyncMediator()

    await mediator.publish(OrderCancelled(order_id=1))


@pytest.mark.asyncio
async def test_mediator_built_from_a_registry_uses_its_handlers() -> None:
    registry = Registry()

    @registry.handles(CreateOrder)
    async def create_order(command: CreateOrder) -> int:
        return 11

    mediator = AsyncMediator(registry)

    assert mediator.registry is registry
    assert await mediator.send(CreateOrder(user_id=1)) == 11


# -- sync handlers on AsyncMediator ----------------------------------------------------


@pytest.mark.asyncio
async def test_plain_function_handlers_work_on_an_async_mediator() -> None:
    events = []
    mediator = AsyncMediator()
    mediator.register(CreateOrder, lambda command: command.user_id * 10)
    mediator.register(GetOrders, lambda query: [query.user_id])
    mediator.register(OrderCreated, events.append)

    assert await mediator.send(CreateOrder(user_id=2)) == 20
    assert await mediator.ask(GetOrders(user_id=4)) == [4]
    event = OrderCreated(order_id=1)
    await mediator.publish(event)
    assert events == [event]


@pytest.mark.asyncio
async def test_sync_and_async_handlers_mix_on_one_async_mediator() -> None:
    calls = []
    mediator = AsyncMediator()
    mediator.register(OrderCreated, lambda event: calls.append("sync"))
    mediator.register(OrderCreated, recorder(calls, "async"))
    mediator.register(OrderCreated, lambda event: calls.append("sync again"))

    await mediator.publish(OrderCreated(order_id=1))

    assert calls == ["sync", "async", "sync again"]


@pytest.mark.asyncio
@pytest.mark.parametrize("with_context", [False, True], ids=["fast path", "with ctx"])
async def test_sync_handler_result_is_returned_not_a_coroutine(with_context: bool) -> None:
    mediator = AsyncMediator()
    if with_context:
        mediator.register(CreateOrder, lambda command, ctx: 3)
    else:
        mediator.register(CreateOrder, lambda command: 3)

    assert await mediator.send(CreateOrder(user_id=1)) == 3


# -- wrong method ----------------------------------------------------------------------


@pytest.mark.asyncio
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
async def test_message_passed_to_the_wrong_method_raises_message_kind_error(
    mediator: AsyncMediator, method: str, message: Any, expected: str
) -> None:
    with pytest.raises(MessageKindError, match=re.escape(expected)) as excinfo:
        await getattr(mediator, method)(message)

    assert isinstance(excinfo.value, TypeError), "MessageKindError must also be a TypeError"


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("method", "value", "expected"),
    [
        ("send", 42, r"send\(\) takes a Command instance, got int"),
        ("ask", {"order_id": 1}, r"ask\(\) takes a Query instance, got dict"),
        ("publish", "OrderCreated", r"publish\(\) takes an? Event instance, got str"),
    ],
    ids=["int", "dict", "str"],
)
async def test_non_message_raises_message_kind_error(
    mediator: AsyncMediator, method: str, value: Any, expected: str
) -> None:
    with pytest.raises(MessageKindError, match=expected) as excinfo:
        await getattr(mediator, method)(value)

    assert isinstance(excinfo.value, TypeError)


# -- handler not found ---------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("method", "message", "expected"),
    [
        ("send", CancelOrder(order_id=1), "no handler is registered for command CancelOrder"),
        ("ask", GetOrder(order_id=1), "no handler is registered for query GetOrder"),
    ],
)
async def test_unregistered_message_raises_handler_not_found_error(
    method: str, message: Any, expected: str
) -> None:
    mediator = AsyncMediator()

    with pytest.raises(HandlerNotFoundError) as excinfo:
        await getattr(mediator, method)(message)

    error = excinfo.value
    assert isinstance(error, LookupError), "HandlerNotFoundError must also be a LookupError"
    assert error.message_type is type(message)
    assert expected in str(error)
    name = type(message).__name__
    assert f"register one with @registry.handles({name})" in str(error), "must say how to fix"


@pytest.mark.asyncio
async def test_subclass_of_a_registered_query_is_not_handled_and_the_error_mentions_include_subclasses():  # noqa: E501
    mediator = AsyncMediator()
    mediator.register(GetOrders, lambda query: [])

    with pytest.raises(HandlerNotFoundError) as excinfo:
        await mediator.ask(GetArchivedOrders(user_id=1))

    text = str(excinfo.value)
    assert "no handler is registered for query GetArchivedOrders" in text
    assert "GetOrders has a handler, but handlers match exact types" in text
    assert "include_subclasses=True" in text


@pytest.mark.asyncio
async def test_include_subclasses_makes_the_base_handler_handle_subclass_messages() -> None:
    received = []
    mediator = AsyncMediator()

    @mediator.handles(GetOrders, include_subclasses=True)
    async def get_orders(query: GetOrders) -> list[int]:
        received.append(query)
        return [1, 2]

    query = GetArchivedOrders(user_id=1)

    assert await mediator.ask(query) == [1, 2]
    assert received[0] is query, "the base handler must receive the subclass instance"


@pytest.mark.asyncio
async def test_exact_registration_wins_over_an_including_base_handler() -> None:
    mediator = AsyncMediator()
    mediator.register(GetOrders, lambda query: ["base"], include_subclasses=True)
    mediator.register(GetArchivedOrders, lambda query: ["archived"])

    assert await mediator.ask(GetArchivedOrders(user_id=1)) == ["archived"]
    assert await mediator.ask(GetOrders(user_id=1)) == ["base"]


# -- events ------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_event_handlers_run_in_registration_order() -> None:
    calls: list[str] = []
    mediator = AsyncMediator()
    for name in ("first", "second", "third"):
        mediator.register(OrderCreated, recorder(calls, name))

    await mediator.publish(OrderCreated(order_id=1))

    assert calls == ["first", "second", "third"]


@pytest.mark.asyncio
async def test_event_handler_error_propagates_by_default_and_stops_later_handlers() -> None:
    calls: list[str] = []
    error = OrderRejectedError("no stock")
    mediator = AsyncMediator()

    async def failing(event: OrderCreated) -> None:
        calls.append("failing")
        raise error

    mediator.register(OrderCreated, recorder(calls, "before"))
    mediator.register(OrderCreated, failing, on_error="propagate")
    mediator.register(OrderCreated, recorder(calls, "after"))

    with pytest.raises(OrderRejectedError) as excinfo:
        await mediator.publish(OrderCreated(order_id=1))

    assert excinfo.value is error, "the handler's exception must reach the caller unchanged"
    assert calls == ["before", "failing"], "handlers after a propagating failure must not run"


@pytest.mark.asyncio
@pytest.mark.parametrize("handler_kind", ["async def", "def"])
async def test_event_handler_with_on_error_continue_is_logged_and_the_next_handler_runs(
    caplog: pytest.LogCaptureFixture, handler_kind: str
) -> None:
    calls: list[str] = []
    error = OrderRejectedError("no stock")
    mediator = AsyncMediator()

    async def failing(event: OrderCreated) -> None:
        raise error

    def failing_sync(event: OrderCreated) -> None:
        raise error

    mediator.register(
        OrderCreated, failing if handler_kind == "async def" else failing_sync, on_error="continue"
    )
    mediator.register(OrderCreated, recorder(calls, "after"))
    caplog.set_level(logging.ERROR, logger="cqrs_kit")

    await mediator.publish(OrderCreated(order_id=1))

    assert calls == ["after"], "the handler after a 'continue' failure must still run"
    records = [r for r in caplog.records if r.name == "cqrs_kit"]
    assert len(records) == 1, f"expected one error logged on 'cqrs_kit', got {records}"
    assert records[0].levelno == logging.ERROR
    assert records[0].exc_info is not None
    assert records[0].exc_info[1] is error, "the log record must carry the handler's exception"
    assert "failing" in records[0].getMessage()


# -- async only ------------------------------------------------------------------------


def test_sync_middleware_is_refused_naming_async_def() -> None:
    def middleware(message, ctx, call_next):
        return call_next()

    with pytest.raises(ConfigurationError, match="AsyncMediator needs 'async def' middleware"):
        AsyncMediator(middleware=[middleware])
    with pytest.raises(ConfigurationError, match="AsyncMediator needs 'async def' middleware"):
        AsyncMediator().add_middleware(middleware)


@pytest.mark.asyncio
async def test_async_middleware_object_is_accepted() -> None:
    class Doubling:
        async def __call__(self, message, ctx, call_next):
            return 2 * await call_next()

    mediator = AsyncMediator(middleware=[Doubling()])
    mediator.register(CreateOrder, lambda command: 21)

    assert await mediator.send(CreateOrder(user_id=1)) == 42


def test_registry_with_coroutine_handlers_is_refused_by_a_sync_mediator_but_not_an_async_one():
    registry = Registry()

    @registry.handles(CreateOrder)
    async def create_order(command: CreateOrder) -> int:
        return 1

    AsyncMediator(registry)
    with pytest.raises(InvalidHandlerError, match="use AsyncMediator"):
        Mediator(registry)


# -- class handlers ----------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("with_middleware", [False, True], ids=["fast path", "with middleware"])
@pytest.mark.parametrize("call_kind", ["async def", "def"])
async def test_class_handler_is_instantiated_once_per_dispatch(
    with_middleware: bool, call_kind: str
) -> None:
    instances: list[object] = []

    class AsyncHandler:
        def __init__(self) -> None:
            instances.append(self)

        async def __call__(self, command: CreateOrder) -> int:
            return len(instances)

    class SyncHandler:
        def __init__(self) -> None:
            instances.append(self)

        def __call__(self, command: CreateOrder) -> int:
            return len(instances)

    async def passthrough(message, ctx, call_next):
        return await call_next()

    mediator = AsyncMediator(middleware=[passthrough] if with_middleware else [])
    mediator.register(CreateOrder, AsyncHandler if call_kind == "async def" else SyncHandler)

    results = [await mediator.send(CreateOrder(user_id=1)) for _ in range(3)]

    assert results == [1, 2, 3]
    assert len({id(instance) for instance in instances}) == 3, "instances must not be shared"


@pytest.mark.asyncio
async def test_class_handler_receives_dependencies_through_init() -> None:
    repo = object()
    seen = []

    class CreateOrderHandler:
        def __init__(self, repo: object) -> None:
            self.repo = repo

        async def __call__(self, command: CreateOrder) -> int:
            seen.append(self.repo)
            return 1

    mediator = AsyncMediator(resolver=Dependencies({"repo": repo}))
    mediator.register(CreateOrder, CreateOrderHandler)

    assert await mediator.send(CreateOrder(user_id=1)) == 1
    assert seen[0] is repo


# -- errors pass through -------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("handler_kind", ["async def", "def"])
async def test_handler_exception_reaches_the_caller_unchanged_with_its_traceback(
    handler_kind: str,
) -> None:
    error = OrderRejectedError("no stock")
    mediator = AsyncMediator()

    async def reject_order(command: CreateOrder) -> int:
        raise error

    def reject_order_sync(command: CreateOrder) -> int:
        raise error

    handler = reject_order if handler_kind == "async def" else reject_order_sync
    mediator.register(CreateOrder, handler)

    with pytest.raises(OrderRejectedError) as excinfo:
        await mediator.send(CreateOrder(user_id=1))

    assert excinfo.value is error
    frames = [frame.name for frame in traceback.extract_tb(excinfo.value.__traceback__)]
    assert handler.__name__ in frames, f"handler frame missing from traceback: {frames}"
    assert excinfo.value.__cause__ is None
    assert excinfo.value.__context__ is None, "must not be chained to an internal exception"


# -- freezing ----------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("how", ["first dispatch", "freeze()"])
async def test_registering_a_handler_after_freezing_raises_pipeline_frozen_error(how: str):
    mediator = AsyncMediator()
    mediator.register(GetOrders, lambda query: [])
    await freeze_by(mediator, how)

    with pytest.raises(PipelineFrozenError) as excinfo:
        mediator.register(CreateOrder, lambda command: 1)

    assert isinstance(excinfo.value, RuntimeError), "PipelineFrozenError must be a RuntimeError"
    assert mediator.frozen
    assert mediator.registry.frozen


@pytest.mark.asyncio
@pytest.mark.parametrize("how", ["first dispatch", "freeze()"])
async def test_adding_middleware_after_freezing_raises_pipeline_frozen_error(how: str) -> None:
    async def passthrough(message, ctx, call_next):
        return await call_next()

    mediator = AsyncMediator()
    mediator.register(GetOrders, lambda query: [])
    await freeze_by(mediator, how)

    with pytest.raises(PipelineFrozenError, match="cannot add middleware: the pipeline is frozen"):
        mediator.add_middleware(passthrough)


# -- fast path ---------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_fast_path_returns_correct_results_and_still_freezes() -> None:
    class GetOrderHandler:
        async def __call__(self, query: GetOrder) -> OrderView | None:
            return OrderView(query.order_id)

    async def create_order(command: CreateOrder) -> int:
        return command.user_id + 1

    events: list[Any] = []
    mediator = AsyncMediator()
    mediator.register(CreateOrder, create_order)
    mediator.register(GetOrder, GetOrderHandler)
    mediator.register(GetOrders, lambda query: [1], include_subclasses=True)
    mediator.register(OrderCreated, events.append)

    assert await mediator.send(CreateOrder(user_id=1)) == 2
    view = await mediator.ask(GetOrder(order_id=9))
    assert view is not None
    assert view.order_id == 9
    assert await mediator.ask(GetArchivedOrders(user_id=1)) == [1]
    event = OrderCreated(order_id=3)
    await mediator.publish(event)
    assert events == [event]
    assert await mediator.send(CreateOrder(user_id=1), correlation_id="abc", metadata={}) == 2
    assert mediator.frozen
    assert mediator.registry.frozen
    with pytest.raises(PipelineFrozenError):
        mediator.register(CancelOrder, lambda command: None)


@pytest.mark.asyncio
async def test_concurrent_dispatches_each_get_their_own_result() -> None:
    async def create_order(command: CreateOrder) -> int:
        await asyncio.sleep(0)  # yield to the other dispatches
        return command.user_id

    mediator = AsyncMediator()
    mediator.register(CreateOrder, create_order)

    results = await asyncio.gather(*(mediator.send(CreateOrder(user_id=i)) for i in range(5)))

    assert results == [0, 1, 2, 3, 4]


@pytest.mark.asyncio
async def test_handler_taking_ctx_gets_a_context_even_without_middleware() -> None:
    contexts: list[DispatchContext] = []
    mediator = AsyncMediator()

    @mediator.handles(CancelOrder)
    async def cancel_order(command: CancelOrder, ctx: DispatchContext) -> None:
        contexts.append(ctx)

    command = CancelOrder(order_id=1)
    await mediator.send(command)

    assert len(contexts) == 1
    assert contexts[0].message is command


@pytest.mark.asyncio
@pytest.mark.parametrize("method", ["send", "ask", "publish"])
async def test_message_that_is_not_a_command_query_or_event_raises_message_kind_error(
    mediator: AsyncMediator, method: str
) -> None:
    class Note(Message):  # a Message, but neither a Command, a Query nor an Event
        text: str = "hi"

    with pytest.raises(MessageKindError, match=rf"{method}\(\) takes an? \w+ instance, got Note"):
        await getattr(mediator, method)(Note())
