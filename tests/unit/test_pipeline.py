"""Middleware: order, scoping, short-circuits, retries and error pass-through (sync and async)."""

import traceback
from typing import Any

import pytest

from cqrs_kit import (
    AsyncMediator,
    Command,
    ConfigurationError,
    DispatchContext,
    Event,
    Mediator,
    Query,
    Scoped,
    scoped,
)


class CreateOrder(Command[int]):
    user_id: int = 1


class CreateRushOrder(CreateOrder):
    pass


class CancelOrder(Command[None]):
    order_id: int = 1


class GetOrders(Query[list[int]]):
    user_id: int = 1


class OrderCreated(Event):
    order_id: int = 1


class OrderRejectedError(Exception):
    pass


def tracing(name: str, trace: list[str]) -> Any:
    def middleware(message, ctx, call_next):
        trace.append(f"{name}:before")
        result = call_next()
        trace.append(f"{name}:after")
        return result

    middleware.__name__ = name
    return middleware


def async_tracing(name: str, trace: list[str]) -> Any:
    async def middleware(message, ctx, call_next):
        trace.append(f"{name}:before")
        result = await call_next()
        trace.append(f"{name}:after")
        return result

    middleware.__name__ = name
    return middleware


def traced_mediator(trace: list[str], middleware: list[Any]) -> Mediator:
    mediator = Mediator(middleware=middleware)

    def create_order(command: CreateOrder) -> int:
        trace.append("handler")
        return 1

    def cancel_order(command: CancelOrder) -> None:
        trace.append("handler")

    def get_orders(query: GetOrders) -> list[int]:
        trace.append("handler")
        return [1]

    mediator.register(CreateOrder, create_order, include_subclasses=True)
    mediator.register(CancelOrder, cancel_order)
    mediator.register(GetOrders, get_orders)
    mediator.register(OrderCreated, lambda event: trace.append("handler"))
    return mediator


def async_traced_mediator(trace: list[str], middleware: list[Any]) -> AsyncMediator:
    mediator = AsyncMediator(middleware=middleware)

    async def create_order(command: CreateOrder) -> int:
        trace.append("handler")
        return 1

    async def cancel_order(command: CancelOrder) -> None:
        trace.append("handler")

    async def get_orders(query: GetOrders) -> list[int]:
        trace.append("handler")
        return [1]

    async def on_order_created(event: OrderCreated) -> None:
        trace.append("handler")

    mediator.register(CreateOrder, create_order, include_subclasses=True)
    mediator.register(CancelOrder, cancel_order)
    mediator.register(GetOrders, get_orders)
    mediator.register(OrderCreated, on_order_created)
    return mediator


ONION = ["outer:before", "inner:before", "handler", "inner:after", "outer:after"]


# -- order -------------------------------------------------------------------------------


def test_middleware_runs_outermost_first() -> None:
    trace: list[str] = []
    mediator = traced_mediator(trace, [tracing("outer", trace), tracing("inner", trace)])

    mediator.send(CreateOrder())

    assert trace == ONION


@pytest.mark.asyncio
async def test_async_middleware_runs_outermost_first() -> None:
    trace: list[str] = []
    mediator = async_traced_mediator(
        trace, [async_tracing("outer", trace), async_tracing("inner", trace)]
    )

    await mediator.send(CreateOrder())

    assert trace == ONION


def test_add_middleware_appends_innermost() -> None:
    trace: list[str] = []
    mediator = traced_mediator(trace, [tracing("outer", trace)])
    mediator.add_middleware(tracing("inner", trace))

    mediator.ask(GetOrders())

    assert trace == ONION
    assert [m.__name__ for m in mediator.middleware] == ["outer", "inner"]


@pytest.mark.asyncio
async def test_async_add_middleware_appends_innermost() -> None:
    trace: list[str] = []
    mediator = async_traced_mediator(trace, [async_tracing("outer", trace)])
    mediator.add_middleware(async_tracing("inner", trace))

    await mediator.ask(GetOrders())

    assert trace == ONION


def test_middleware_runs_for_commands_queries_and_events() -> None:
    trace: list[str] = []
    mediator = traced_mediator(trace, [tracing("mw", trace)])

    mediator.send(CreateOrder())
    mediator.ask(GetOrders())
    mediator.publish(OrderCreated())

    assert trace == ["mw:before", "handler", "mw:after"] * 3


def test_middleware_runs_for_an_event_without_handlers() -> None:
    class OrderShipped(Event):
        pass

    trace: list[str] = []
    mediator = Mediator(middleware=[tracing("mw", trace)])

    mediator.publish(OrderShipped())

    assert trace == ["mw:before", "mw:after"]


def test_middleware_receives_the_message_and_its_context() -> None:
    seen: list[tuple[Any, DispatchContext]] = []

    def middleware(message, ctx, call_next):
        seen.append((message, ctx))
        return call_next()

    mediator = Mediator(middleware=[middleware])
    mediator.register(CreateOrder, lambda command: 1)
    command = CreateOrder()

    mediator.send(command)

    ((message, ctx),) = seen
    assert message is command
    assert isinstance(ctx, DispatchContext)
    assert ctx.message is command


# -- results -----------------------------------------------------------------------------


def test_middleware_can_transform_the_result() -> None:
    mediator = Mediator(middleware=[lambda message, ctx, call_next: call_next() * 10])
    mediator.register(CreateOrder, lambda command: 4)

    assert mediator.send(CreateOrder()) == 40


@pytest.mark.asyncio
async def test_async_middleware_can_transform_the_result() -> None:
    async def times_ten(message, ctx, call_next):
        return await call_next() * 10

    mediator = AsyncMediator(middleware=[times_ten])
    mediator.register(CreateOrder, lambda command: 4)

    assert await mediator.send(CreateOrder()) == 40


def test_middleware_can_short_circuit_without_calling_the_handler() -> None:
    trace: list[str] = []
    mediator = traced_mediator(
        trace, [tracing("outer", trace), lambda message, ctx, call_next: [99]]
    )

    assert mediator.ask(GetOrders()) == [99]
    assert trace == ["outer:before", "outer:after"], "the handler must not have run"


@pytest.mark.asyncio
async def test_async_middleware_can_short_circuit_without_calling_the_handler() -> None:
    async def cached(message, ctx, call_next):
        return [99]

    trace: list[str] = []
    mediator = async_traced_mediator(trace, [async_tracing("outer", trace), cached])

    assert await mediator.ask(GetOrders()) == [99]
    assert trace == ["outer:before", "outer:after"], "the handler must not have run"


def test_middleware_calling_call_next_twice_runs_the_handler_twice() -> None:
    attempts: list[int] = []

    def retry_once(message, ctx, call_next):
        try:
            return call_next()
        except OrderRejectedError:
            return call_next()

    def flaky(command: CreateOrder) -> int:
        attempts.append(1)
        if len(attempts) == 1:
            raise OrderRejectedError
        return len(attempts)

    trace: list[str] = []
    mediator = Mediator(middleware=[retry_once, tracing("inner", trace)])
    mediator.register(CreateOrder, flaky)

    assert mediator.send(CreateOrder()) == 2
    assert len(attempts) == 2, "the retry must re-run the handler"
    assert trace == ["inner:before", "inner:before", "inner:after"], "and the inner middleware"


@pytest.mark.asyncio
async def test_async_middleware_awaiting_call_next_twice_runs_the_handler_twice() -> None:
    attempts: list[int] = []

    async def retry_once(message, ctx, call_next):
        try:
            return await call_next()
        except OrderRejectedError:
            return await call_next()

    async def flaky(command: CreateOrder) -> int:
        attempts.append(1)
        if len(attempts) == 1:
            raise OrderRejectedError
        return len(attempts)

    mediator = AsyncMediator(middleware=[retry_once])
    mediator.register(CreateOrder, flaky)

    assert await mediator.send(CreateOrder()) == 2
    assert len(attempts) == 2


# -- scoping -----------------------------------------------------------------------------


def test_middleware_scoped_to_command_applies_only_to_commands() -> None:
    trace: list[str] = []
    mediator = traced_mediator(trace, [scoped(tracing("tx", trace), Command)])

    mediator.ask(GetOrders())
    mediator.publish(OrderCreated())
    assert trace == ["handler", "handler"], "a Command-scoped middleware ran for a query/event"

    trace.clear()
    mediator.send(CancelOrder())
    assert trace == ["tx:before", "handler", "tx:after"]


@pytest.mark.asyncio
async def test_async_middleware_scoped_to_command_applies_only_to_commands() -> None:
    trace: list[str] = []
    mediator = async_traced_mediator(trace, [scoped(async_tracing("tx", trace), Command)])

    await mediator.ask(GetOrders())
    await mediator.publish(OrderCreated())
    assert trace == ["handler", "handler"], "a Command-scoped middleware ran for a query/event"

    trace.clear()
    await mediator.send(CancelOrder())
    assert trace == ["tx:before", "handler", "tx:after"]


def test_middleware_scoped_to_a_type_applies_to_it_and_its_subclasses_only() -> None:
    trace: list[str] = []
    mediator = traced_mediator(trace, [scoped(tracing("mw", trace), CreateOrder)])

    mediator.send(CancelOrder())
    assert trace == ["handler"]

    trace.clear()
    mediator.send(CreateOrder())
    mediator.send(CreateRushOrder())
    assert trace == ["mw:before", "handler", "mw:after"] * 2


def test_middleware_scoped_to_several_kinds_applies_to_each() -> None:
    trace: list[str] = []
    mediator = traced_mediator(trace, [scoped(tracing("mw", trace), Query, Event)])

    mediator.send(CreateOrder())
    assert trace == ["handler"]

    trace.clear()
    mediator.ask(GetOrders())
    mediator.publish(OrderCreated())
    assert trace == ["mw:before", "handler", "mw:after"] * 2


def test_middleware_object_with_applies_to_attribute_is_scoped() -> None:
    trace: list[str] = []

    class QueryTiming:
        applies_to = (Query,)

        def __call__(self, message, ctx, call_next):
            trace.append("timing")
            return call_next()

    mediator = traced_mediator(trace, [QueryTiming()])

    mediator.send(CreateOrder())
    mediator.ask(GetOrders())

    assert trace == ["handler", "timing", "handler"]


@pytest.mark.asyncio
async def test_async_middleware_object_with_applies_to_attribute_is_scoped() -> None:
    trace: list[str] = []

    class QueryTiming:
        applies_to = (Query,)

        async def __call__(self, message, ctx, call_next):
            trace.append("timing")
            return await call_next()

    mediator = async_traced_mediator(trace, [QueryTiming()])

    await mediator.send(CreateOrder())
    await mediator.ask(GetOrders())

    assert trace == ["handler", "timing", "handler"]


def test_scoped_returns_a_scoped_wrapper() -> None:
    def middleware(message, ctx, call_next):
        return call_next()

    wrapped = scoped(middleware, Command, GetOrders)

    assert wrapped == Scoped(middleware, (Command, GetOrders))


def test_scoped_without_message_types_raises_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match=r"scoped\(\) needs at least one message class"):
        scoped(lambda message, ctx, call_next: call_next())


@pytest.mark.parametrize("not_a_message_type", [int, "Command", CreateOrder()], ids=repr)
def test_scoped_with_a_non_message_type_raises_configuration_error(not_a_message_type: Any):
    with pytest.raises(ConfigurationError, match=r"scoped\(\) takes message classes"):
        scoped(lambda message, ctx, call_next: call_next(), Command, not_a_message_type)


@pytest.mark.parametrize("applies_to", [Command, [Command], (int,)], ids=repr)
def test_invalid_applies_to_attribute_raises_configuration_error(applies_to: Any) -> None:
    class Middleware:
        def __call__(self, message, ctx, call_next):
            return call_next()

    middleware = Middleware()
    middleware.applies_to = applies_to  # type: ignore[attr-defined]

    with pytest.raises(ConfigurationError, match="applies_to must be a tuple of message classes"):
        Mediator(middleware=[middleware])


@pytest.mark.parametrize("mediator_type", [Mediator, AsyncMediator])
def test_non_callable_middleware_raises_configuration_error(mediator_type: type[Any]) -> None:
    with pytest.raises(ConfigurationError, match="middleware must be callable"):
        mediator_type(middleware=["not a middleware"])


# -- errors pass through -------------------------------------------------------------------


def test_handler_exception_passes_through_middleware_unchanged() -> None:
    error = OrderRejectedError("no stock")
    seen: list[BaseException] = []

    def observing(message, ctx, call_next):
        try:
            return call_next()
        except OrderRejectedError as exc:
            seen.append(exc)
            raise

    def reject_order(command: CreateOrder) -> int:
        raise error

    mediator = Mediator(middleware=[observing, lambda message, ctx, call_next: call_next()])
    mediator.register(CreateOrder, reject_order)

    with pytest.raises(OrderRejectedError) as excinfo:
        mediator.send(CreateOrder())

    assert excinfo.value is error, "the caller must get the handler's exception object"
    assert seen == [error], "the middleware must see the same exception object"
    frames = [frame.name for frame in traceback.extract_tb(excinfo.value.__traceback__)]
    assert "reject_order" in frames, f"the handler frame is missing from the traceback: {frames}"
    assert excinfo.value.__context__ is None, "must not be chained to an internal exception"


@pytest.mark.asyncio
async def test_async_handler_exception_passes_through_middleware_unchanged() -> None:
    error = OrderRejectedError("no stock")
    seen: list[BaseException] = []

    async def observing(message, ctx, call_next):
        try:
            return await call_next()
        except OrderRejectedError as exc:
            seen.append(exc)
            raise

    async def passthrough(message, ctx, call_next):
        return await call_next()

    async def reject_order(command: CreateOrder) -> int:
        raise error

    mediator = AsyncMediator(middleware=[observing, passthrough])
    mediator.register(CreateOrder, reject_order)

    with pytest.raises(OrderRejectedError) as excinfo:
        await mediator.send(CreateOrder())

    assert excinfo.value is error
    assert seen == [error]
    frames = [frame.name for frame in traceback.extract_tb(excinfo.value.__traceback__)]
    assert "reject_order" in frames, f"the handler frame is missing from the traceback: {frames}"
    assert excinfo.value.__context__ is None


def test_middleware_chain_is_composed_once_not_per_dispatch() -> None:
    # The applies_to attribute is read when the chain is composed; reading it per dispatch
    # would show up here as extra lookups.
    lookups: list[int] = []

    class Counting:
        def __call__(self, message, ctx, call_next):
            return call_next()

        @property
        def applies_to(self) -> tuple[type, ...]:
            lookups.append(1)
            return (Command,)

    mediator = Mediator(middleware=[Counting()])
    mediator.register(CreateOrder, lambda command: 1)
    mediator.send(CreateOrder())
    composed = len(lookups)

    for _ in range(5):
        mediator.send(CreateOrder())

    assert len(lookups) == composed, "the chain must not be recomposed on later dispatches"
