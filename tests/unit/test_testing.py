"""cqrs_kit.testing: recording middleware, fake mediators, static resolver."""

from __future__ import annotations

import pytest

from cqrs_kit import (
    AsyncMediator,
    AtLeast,
    Command,
    ConfigurationError,
    DispatchContext,
    Event,
    Factory,
    HandlerNotFoundError,
    Mediator,
    Message,
    MessageKind,
    MessageKindError,
    Query,
    Receipt,
    Registry,
    scoped,
)
from cqrs_kit.testing import (
    AsyncRecordingMiddleware,
    FakeAsyncMediator,
    FakeCall,
    FakeMediator,
    RecordingMiddleware,
    static_resolver,
)


class PlaceOrder(Command[int]):
    user_id: int


class OrderPlaced(Event):
    order_id: int


class GetOrder(Query[str | None]):
    order_id: int


class GetArchivedOrder(GetOrder):
    pass


class Boom(Command[None]):
    pass


class OutOfStockError(Exception):
    pass


# -- RecordingMiddleware ---------------------------------------------------------------------


def _sync_mediator(recorder: RecordingMiddleware) -> Mediator:
    registry = Registry()

    @registry.handles(PlaceOrder)
    def place_order(command: PlaceOrder) -> int:
        mediator.publish(OrderPlaced(order_id=10 + command.user_id))
        return 10 + command.user_id

    @registry.handles(OrderPlaced)
    def on_placed(event: OrderPlaced) -> None:
        pass

    @registry.handles(GetOrder)
    def get_order(query: GetOrder) -> str | None:
        return f"order {query.order_id}"

    @registry.handles(Boom)
    def boom(command: Boom) -> None:
        raise OutOfStockError

    mediator = Mediator(registry, middleware=[recorder])
    return mediator


def test_recording_middleware_records_dispatches_in_start_order_with_context() -> None:
    recorder = RecordingMiddleware()
    mediator = _sync_mediator(recorder)

    assert mediator.send(PlaceOrder(user_id=1), correlation_id="req-1") == 11

    outer, inner = recorder.dispatches
    assert recorder.messages == [PlaceOrder(user_id=1), OrderPlaced(order_id=11)]
    assert (outer.kind, inner.kind) == (MessageKind.COMMAND, MessageKind.EVENT)
    assert outer.correlation_id == inner.correlation_id == "req-1"
    assert outer.causation_id is None
    assert inner.causation_id == outer.message_id
    assert (outer.outcome, outer.result) == ("ok", 11)
    assert (inner.outcome, inner.result) == ("ok", None)


def test_recording_middleware_records_the_exception_and_lets_it_through() -> None:
    recorder = RecordingMiddleware()
    mediator = _sync_mediator(recorder)

    with pytest.raises(OutOfStockError) as raised:
        mediator.send(Boom())

    (record,) = recorder.dispatches
    assert record.outcome == "error"
    assert record.exception is raised.value
    assert record.result is None


def test_recording_middleware_copies_the_metadata_passed_by_the_caller() -> None:
    recorder = RecordingMiddleware()
    mediator = _sync_mediator(recorder)

    mediator.ask(GetOrder(order_id=3), metadata={"user": "ada"})

    assert recorder.dispatches[0].metadata == {"user": "ada"}


def test_recording_middleware_filters_by_type_and_clears() -> None:
    recorder = RecordingMiddleware()
    mediator = _sync_mediator(recorder)
    mediator.send(PlaceOrder(user_id=1))
    mediator.ask(GetOrder(order_id=2))

    assert recorder.of_type(OrderPlaced) == [OrderPlaced(order_id=11)]
    assert recorder.of_type(Command) == [PlaceOrder(user_id=1)]
    assert recorder.of_type(Message) == recorder.messages
    assert len(recorder.dispatches) == 3

    recorder.clear()
    assert recorder.dispatches == []
    assert recorder.messages == []


def test_recording_middleware_can_be_scoped_to_one_kind() -> None:
    recorder = RecordingMiddleware()
    registry = Registry()
    registry.register(GetOrder, lambda query: "x")
    registry.register(PlaceOrder, lambda command: 1)
    mediator = Mediator(registry, middleware=[scoped(recorder, Query)])

    mediator.send(PlaceOrder(user_id=1))
    mediator.ask(GetOrder(order_id=1))

    assert recorder.messages == [GetOrder(order_id=1)]


def test_sync_mediator_refuses_the_async_recorder() -> None:
    with pytest.raises(ConfigurationError, match="use AsyncMediator"):
        Mediator(middleware=[AsyncRecordingMiddleware()])


def test_async_mediator_refuses_the_sync_recorder() -> None:
    with pytest.raises(ConfigurationError, match="async def"):
        AsyncMediator(middleware=[RecordingMiddleware()])


@pytest.mark.asyncio
async def test_async_recording_middleware_records_nested_dispatch_and_errors() -> None:
    recorder = AsyncRecordingMiddleware()
    registry = Registry()

    @registry.handles(PlaceOrder)
    async def place_order(command: PlaceOrder) -> int:
        await mediator.publish(OrderPlaced(order_id=7))
        return 7

    @registry.handles(Boom)
    async def boom(command: Boom) -> None:
        raise OutOfStockError

    mediator = AsyncMediator(registry, middleware=[recorder])

    assert await mediator.send(PlaceOrder(user_id=1)) == 7
    with pytest.raises(OutOfStockError):
        await mediator.send(Boom())

    placed, published, failed = recorder.dispatches
    assert recorder.of_type(OrderPlaced) == [OrderPlaced(order_id=7)]
    assert published.causation_id == placed.message_id
    assert published.correlation_id == placed.correlation_id
    assert failed.correlation_id != placed.correlation_id
    assert (placed.outcome, placed.result) == ("ok", 7)
    assert failed.outcome == "error"
    assert isinstance(failed.exception, OutOfStockError)


# -- FakeMediator ----------------------------------------------------------------------------


def create_order_endpoint(mediator: FakeMediator, body: dict[str, int]) -> dict[str, object]:
    """A stand-in for code under test that depends on a mediator."""
    order_id = mediator.send(PlaceOrder(user_id=body["user_id"]), correlation_id="req-9")
    return {"order_id": order_id, "view": mediator.ask(GetOrder(order_id=order_id))}


def test_fake_mediator_returns_configured_results_and_records_calls() -> None:
    fake = FakeMediator()
    fake.returns(PlaceOrder, 42).answers(GetOrder, lambda q: f"view of {q.order_id}")

    assert create_order_endpoint(fake, {"user_id": 7}) == {"order_id": 42, "view": "view of 42"}
    assert fake.sent == [PlaceOrder(user_id=7)]
    assert fake.asked == [GetOrder(order_id=42)]
    assert fake.published == []
    assert fake.calls[0] == FakeCall(PlaceOrder(user_id=7), "req-9", {})
    assert fake.messages == [PlaceOrder(user_id=7), GetOrder(order_id=42)]


def test_fake_mediator_raises_the_configured_error() -> None:
    error = OutOfStockError("sold out")
    fake = FakeMediator().raises(PlaceOrder, error).raises(GetOrder, LookupError)

    with pytest.raises(OutOfStockError) as raised:
        fake.send(PlaceOrder(user_id=1))
    with pytest.raises(LookupError):
        fake.ask(GetOrder(order_id=1))

    assert raised.value is error
    assert fake.sent == [PlaceOrder(user_id=1)], "a message whose answer raises is recorded"


def test_fake_mediator_without_an_answer_raises_handler_not_found_naming_the_fix() -> None:
    fake = FakeMediator()

    with pytest.raises(HandlerNotFoundError, match=r"\.returns\(PlaceOrder, result\)") as raised:
        fake.send(PlaceOrder(user_id=1))

    assert raised.value.message_type is PlaceOrder
    assert isinstance(raised.value, LookupError)


def test_fake_mediator_matches_exact_types_and_says_so() -> None:
    fake = FakeMediator().returns(GetOrder, "base")

    with pytest.raises(HandlerNotFoundError, match="exact types: GetOrder has one"):
        fake.ask(GetArchivedOrder(order_id=1))


def test_fake_mediator_rejects_the_wrong_kind_like_the_real_mediator() -> None:
    fake = FakeMediator().returns(PlaceOrder, 1)

    with pytest.raises(MessageKindError, match=r"dispatch it with send\(\), not ask\(\)"):
        fake.ask(PlaceOrder(user_id=1))  # type: ignore[arg-type]
    with pytest.raises(MessageKindError, match=r"publish\(\) takes a Event"):
        fake.publish("not a message")  # type: ignore[arg-type]

    assert fake.calls == [], "rejected messages are not recorded"


def test_fake_mediator_publishes_events_without_an_answer() -> None:
    seen: list[int] = []
    fake = FakeMediator()

    fake.publish(OrderPlaced(order_id=1))
    fake.answers(OrderPlaced, lambda event: seen.append(event.order_id))
    fake.publish(OrderPlaced(order_id=2), metadata={"source": "test"})

    assert fake.published == [OrderPlaced(order_id=1), OrderPlaced(order_id=2)]
    assert fake.calls[1].metadata == {"source": "test"}
    assert seen == [2]


def test_fake_mediator_later_configuration_replaces_earlier() -> None:
    fake = FakeMediator().returns(PlaceOrder, 1)
    fake.returns(PlaceOrder, 2)

    assert fake.send(PlaceOrder(user_id=1)) == 2


def test_fake_mediator_clear_forgets_calls_but_keeps_answers() -> None:
    fake = FakeMediator().returns(PlaceOrder, 1)
    fake.send(PlaceOrder(user_id=1))

    fake.clear()

    assert fake.calls == []
    assert fake.send(PlaceOrder(user_id=2)) == 1
    assert fake.of_type(PlaceOrder) == [PlaceOrder(user_id=2)]


def test_fake_mediator_goes_where_a_mediator_goes_but_runs_no_handlers() -> None:
    fake = FakeMediator()

    assert isinstance(fake, Mediator)
    assert isinstance(FakeAsyncMediator(), AsyncMediator)
    with pytest.raises(ConfigurationError, match=r"runs no handlers.*\.returns\(PlaceOrder"):
        fake.register(PlaceOrder, lambda command: 1)
    with pytest.raises(ConfigurationError, match="runs no handlers"):
        fake.handles(PlaceOrder)
    with pytest.raises(ConfigurationError, match="RecordingMiddleware"):
        fake.add_middleware(RecordingMiddleware())


def test_fake_mediator_fills_receipts_and_records_consistency_without_waiting() -> None:
    fake = FakeMediator().returns(PlaceOrder, 1).returns(GetOrder, "view")
    receipt = Receipt(token=99)

    fake.send(PlaceOrder(user_id=1), correlation_id="req-3", receipt=receipt)
    fake.ask(GetOrder(order_id=1), consistency=AtLeast(receipt.token))

    assert (receipt.token, receipt.correlation_id) == (None, "req-3")
    assert fake.calls[1].consistency == AtLeast(None)


def test_fake_mediator_refuses_bad_configuration() -> None:
    fake = FakeMediator()

    with pytest.raises(MessageKindError, match="events have no result"):
        fake.returns(OrderPlaced, 1)  # type: ignore[arg-type]
    with pytest.raises(MessageKindError, match="your own"):
        fake.returns(Query, 1)
    with pytest.raises(MessageKindError, match="your own"):
        fake.raises(int, ValueError)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="FakeAsyncMediator"):
        fake.answers(GetOrder, _async_answer)
    with pytest.raises(TypeError, match="callable"):
        fake.answers(GetOrder, "nope")  # type: ignore[arg-type]


async def _async_answer(query: GetOrder) -> str:
    return f"async {query.order_id}"


# -- FakeAsyncMediator -----------------------------------------------------------------------


@pytest.mark.asyncio
async def test_fake_async_mediator_awaits_async_answers_and_returns_plain_ones() -> None:
    fake = FakeAsyncMediator().answers(GetOrder, _async_answer).returns(PlaceOrder, 5)

    assert await fake.ask(GetOrder(order_id=3)) == "async 3"
    receipt = Receipt()
    assert await fake.send(PlaceOrder(user_id=1), receipt=receipt, correlation_id="r") == 5
    assert receipt.correlation_id == "r"
    assert fake.asked == [GetOrder(order_id=3)]
    assert fake.sent == [PlaceOrder(user_id=1)]


@pytest.mark.asyncio
async def test_fake_async_mediator_publishes_raises_and_rejects_like_the_sync_one() -> None:
    seen: list[int] = []

    async def on_placed(event: OrderPlaced) -> None:
        seen.append(event.order_id)

    fake = FakeAsyncMediator().answers(OrderPlaced, on_placed).raises(Boom, OutOfStockError)

    await fake.publish(OrderPlaced(order_id=4))
    with pytest.raises(OutOfStockError):
        await fake.send(Boom())
    with pytest.raises(HandlerNotFoundError, match="FakeAsyncMediator has no answer for query"):
        await fake.ask(GetOrder(order_id=1))
    with pytest.raises(MessageKindError):
        await fake.send(GetOrder(order_id=1))  # type: ignore[arg-type]

    assert seen == [4]
    assert fake.messages == [OrderPlaced(order_id=4), Boom(), GetOrder(order_id=1)]


# -- static_resolver -------------------------------------------------------------------------


def test_static_resolver_supplies_values_and_factories_by_name() -> None:
    made: list[int] = []
    registry = Registry()

    @registry.handles(GetOrder)
    def get_order(query: GetOrder, *, prefix: str, counter: int, ctx: DispatchContext) -> str:
        return f"{prefix}{query.order_id}/{counter}"

    def count() -> int:
        made.append(1)
        return len(made)

    mediator = Mediator(registry, resolver=static_resolver(prefix="#", counter=Factory(count)))

    assert mediator.ask(GetOrder(order_id=1)) == "#1/1"
    assert mediator.ask(GetOrder(order_id=2)) == "#2/2"
