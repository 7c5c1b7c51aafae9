"""The dispatch context: ids, metadata, nesting, current_context() and the per-dispatch scope."""

import asyncio
from typing import Any

import pytest

from cqrs_kit import (
    AsyncMediator,
    Command,
    DispatchContext,
    Event,
    Mediator,
    Query,
    current_context,
)


class PlaceOrder(Command[int]):
    user_id: int = 1


class ReserveStock(Command[str]):
    sku: str = "sku-1"


class GetOrders(Query[list[int]]):
    user_id: int = 1


class OrderPlaced(Event):
    order_id: int = 1


class OrderRejectedError(Exception):
    pass


class Seen:
    """What a handler saw of its context, read during the dispatch."""

    def __init__(self, ctx: DispatchContext) -> None:
        self.ctx = ctx
        self.message_id = ctx.message_id
        self.correlation_id = ctx.correlation_id
        self.causation_id = ctx.causation_id
        self.metadata = dict(ctx.metadata)
        self.current = current_context()


def recording_mediator(seen: list[Seen]) -> Mediator:
    """PlaceOrder's handler sends ReserveStock through the same mediator."""
    mediator = Mediator()

    @mediator.handles(PlaceOrder)
    def place_order(command: PlaceOrder, ctx: DispatchContext) -> int:
        seen.append(Seen(ctx))
        mediator.send(ReserveStock())
        return 1

    @mediator.handles(ReserveStock)
    def reserve_stock(command: ReserveStock, ctx: DispatchContext) -> str:
        seen.append(Seen(ctx))
        return "reserved"

    @mediator.handles(GetOrders)
    def get_orders(query: GetOrders, ctx: DispatchContext) -> list[int]:
        seen.append(Seen(ctx))
        return []

    return mediator


def async_recording_mediator(seen: list[Seen]) -> AsyncMediator:
    """PlaceOrder's handler sends ReserveStock through the same mediator."""
    mediator = AsyncMediator()

    @mediator.handles(PlaceOrder)
    async def place_order(command: PlaceOrder, ctx: DispatchContext) -> int:
        seen.append(Seen(ctx))
        await mediator.send(ReserveStock())
        return 1

    @mediator.handles(ReserveStock)
    async def reserve_stock(command: ReserveStock, ctx: DispatchContext) -> str:
        seen.append(Seen(ctx))
        return "reserved"

    @mediator.handles(GetOrders)
    async def get_orders(query: GetOrders, ctx: DispatchContext) -> list[int]:
        seen.append(Seen(ctx))
        await asyncio.sleep(0)  # let concurrent dispatches interleave
        seen.append(Seen(ctx))
        return []

    return mediator


# -- correlation id ------------------------------------------------------------------------


def test_each_top_level_dispatch_gets_a_new_correlation_id() -> None:
    seen: list[Seen] = []
    mediator = recording_mediator(seen)

    mediator.ask(GetOrders())
    mediator.ask(GetOrders())

    first, second = seen
    assert first.correlation_id
    assert first.correlation_id != second.correlation_id
    assert first.message_id != second.message_id


@pytest.mark.asyncio
async def test_async_each_top_level_dispatch_gets_a_new_correlation_id() -> None:
    seen: list[Seen] = []
    mediator = async_recording_mediator(seen)

    await mediator.ask(GetOrders())
    await mediator.ask(GetOrders())

    assert seen[0].correlation_id != seen[2].correlation_id


def test_correlation_id_is_taken_from_the_caller() -> None:
    seen: list[Seen] = []
    mediator = recording_mediator(seen)

    mediator.ask(GetOrders(), correlation_id="abc")

    assert seen[0].correlation_id == "abc"
    assert seen[0].message_id != "abc", "the caller's id correlates; it does not name the dispatch"


@pytest.mark.asyncio
async def test_async_correlation_id_is_taken_from_the_caller() -> None:
    seen: list[Seen] = []
    mediator = async_recording_mediator(seen)

    await mediator.ask(GetOrders(), correlation_id="abc")

    assert seen[0].correlation_id == "abc"


def test_metadata_from_the_caller_is_visible_in_the_context() -> None:
    seen: list[Seen] = []
    mediator = recording_mediator(seen)

    mediator.ask(GetOrders(), metadata={"user": "alice", "request_id": "r-1"})

    assert seen[0].metadata == {"user": "alice", "request_id": "r-1"}


@pytest.mark.asyncio
async def test_async_metadata_from_the_caller_is_visible_in_the_context() -> None:
    seen: list[Seen] = []
    mediator = async_recording_mediator(seen)

    await mediator.ask(GetOrders(), metadata={"user": "alice"})

    assert seen[0].metadata == {"user": "alice"}


def test_caller_metadata_is_copied_not_shared() -> None:
    seen: list[Seen] = []
    mediator = recording_mediator(seen)
    metadata = {"user": "alice"}

    mediator.ask(GetOrders(), metadata=metadata)
    seen[0].ctx.metadata["added"] = True

    assert metadata == {"user": "alice"}, "the caller's mapping must not be modified"


def test_without_caller_metadata_the_metadata_is_empty() -> None:
    seen: list[Seen] = []
    mediator = recording_mediator(seen)

    mediator.ask(GetOrders())

    assert seen[0].metadata == {}


# -- nesting -----------------------------------------------------------------------------


def test_nested_dispatch_inherits_correlation_id_and_is_caused_by_the_parent() -> None:
    seen: list[Seen] = []
    mediator = recording_mediator(seen)

    mediator.send(PlaceOrder())

    outer, inner = seen
    assert outer.causation_id is None, "a top-level dispatch has no cause"
    assert inner.correlation_id == outer.correlation_id
    assert inner.causation_id == outer.message_id
    assert inner.message_id != outer.message_id
    assert inner.ctx.parent is outer.ctx
    assert inner.ctx.root is outer.ctx


@pytest.mark.asyncio
async def test_async_nested_dispatch_inherits_correlation_id_and_is_caused_by_the_parent():
    seen: list[Seen] = []
    mediator = async_recording_mediator(seen)

    await mediator.send(PlaceOrder())

    outer, inner = seen
    assert outer.causation_id is None, "a top-level dispatch has no cause"
    assert inner.correlation_id == outer.correlation_id
    assert inner.causation_id == outer.message_id
    assert inner.ctx.parent is outer.ctx


def test_nested_dispatch_inherits_the_callers_correlation_id_and_metadata() -> None:
    seen: list[Seen] = []
    mediator = recording_mediator(seen)

    mediator.send(PlaceOrder(), correlation_id="req-7", metadata={"user": "alice"})

    outer, inner = seen
    assert outer.correlation_id == inner.correlation_id == "req-7"
    assert inner.metadata == {"user": "alice"}


@pytest.mark.asyncio
async def test_async_nested_dispatch_inherits_the_callers_correlation_id_and_metadata() -> None:
    seen: list[Seen] = []
    mediator = async_recording_mediator(seen)

    await mediator.send(PlaceOrder(), correlation_id="req-7", metadata={"user": "alice"})

    outer, inner = seen
    assert outer.correlation_id == inner.correlation_id == "req-7"
    assert inner.metadata == {"user": "alice"}


def test_nested_dispatch_inherits_the_unit_of_work() -> None:
    units: list[Any] = []
    uow = object()

    def transaction(message, ctx, call_next):
        if ctx.parent is None:
            ctx.unit_of_work = uow
        units.append(ctx.unit_of_work)
        return call_next()

    mediator = Mediator(middleware=[transaction])

    @mediator.handles(PlaceOrder)
    def place_order(command: PlaceOrder) -> int:
        mediator.send(ReserveStock())
        return 1

    mediator.register(ReserveStock, lambda command: "reserved")

    mediator.send(PlaceOrder())

    assert units == [uow, uow], "the nested dispatch must join the outer unit of work"


@pytest.mark.asyncio
async def test_concurrent_async_dispatches_get_different_correlation_ids() -> None:
    seen: list[Seen] = []
    mediator = async_recording_mediator(seen)

    await asyncio.gather(mediator.ask(GetOrders()), mediator.ask(GetOrders()))

    correlation_ids = {s.correlation_id for s in seen}
    assert len(correlation_ids) == 2, "two concurrent top-level dispatches shared an id"
    assert all(s.causation_id is None for s in seen), "neither is nested in the other"
    assert all(s.current is s.ctx for s in seen), "each task must see its own context"


# -- current_context() -------------------------------------------------------------------


def test_current_context_is_none_outside_a_dispatch() -> None:
    assert current_context() is None


def test_current_context_is_the_dispatch_context_during_a_dispatch_and_none_after() -> None:
    seen: list[Seen] = []
    mediator = recording_mediator(seen)

    mediator.send(PlaceOrder())

    outer, inner = seen
    assert outer.current is outer.ctx
    assert inner.current is inner.ctx
    assert current_context() is None


@pytest.mark.asyncio
async def test_async_current_context_is_the_dispatch_context_during_a_dispatch_and_none_after():
    seen: list[Seen] = []
    mediator = async_recording_mediator(seen)
    assert current_context() is None

    await mediator.send(PlaceOrder())

    outer, inner = seen
    assert outer.current is outer.ctx
    assert inner.current is inner.ctx
    assert current_context() is None


def test_current_context_is_reset_after_a_failed_dispatch() -> None:
    mediator = Mediator()

    @mediator.handles(PlaceOrder)
    def place_order(command: PlaceOrder, ctx: DispatchContext) -> int:
        raise OrderRejectedError

    with pytest.raises(OrderRejectedError):
        mediator.send(PlaceOrder())

    assert current_context() is None


@pytest.mark.asyncio
async def test_async_current_context_is_reset_after_a_failed_dispatch() -> None:
    mediator = AsyncMediator()

    @mediator.handles(PlaceOrder)
    async def place_order(command: PlaceOrder, ctx: DispatchContext) -> int:
        raise OrderRejectedError

    with pytest.raises(OrderRejectedError):
        await mediator.send(PlaceOrder())

    assert current_context() is None


# -- DispatchContext itself ----------------------------------------------------------------


def test_top_level_context_ids_are_stable_and_correlation_defaults_to_message_id() -> None:
    ctx = DispatchContext(PlaceOrder())

    assert ctx.message_id == ctx.message_id
    assert ctx.correlation_id == ctx.message_id
    assert ctx.causation_id is None
    assert ctx.parent is None
    assert ctx.root is ctx


def test_child_context_links_to_its_parent() -> None:
    parent = DispatchContext.for_call(PlaceOrder(), None, "corr", {"user": "alice"})
    parent.unit_of_work = uow = object()

    child = DispatchContext.for_call(ReserveStock(), parent, None, {"step": 2})

    assert child.correlation_id == "corr"
    assert child.causation_id == parent.message_id
    assert child.metadata == {"user": "alice", "step": 2}
    assert parent.metadata == {"user": "alice"}, "the child's metadata must not leak upwards"
    assert child.unit_of_work is uow
    assert child.root is parent
    assert "ReserveStock" in repr(child)
    assert "corr" in repr(child)


def test_scope_is_shared_by_the_top_level_dispatch_and_everything_nested() -> None:
    parent = DispatchContext(PlaceOrder())
    child = DispatchContext(ReserveStock(), parent)

    child.scope["session"] = session = object()

    assert parent.scope["session"] is session


class Closable:
    def __init__(self) -> None:
        self.closed = 0

    def close(self) -> None:
        self.closed += 1


class AsyncClosable:
    def __init__(self) -> None:
        self.closed = 0

    async def close(self) -> None:
        self.closed += 1


def scoped_resource_mediator(resource: Any, fail: bool) -> tuple[Mediator, list[int]]:
    closed_during: list[int] = []
    mediator = Mediator()

    @mediator.handles(PlaceOrder)
    def place_order(command: PlaceOrder, ctx: DispatchContext) -> int:
        ctx.scope["session"] = resource
        mediator.send(ReserveStock())
        closed_during.append(resource.closed)
        if fail:
            raise OrderRejectedError
        return 1

    @mediator.handles(ReserveStock)
    def reserve_stock(command: ReserveStock, ctx: DispatchContext) -> str:
        assert ctx.scope["session"] is resource, "the nested dispatch shares the scope"
        return "reserved"

    return mediator, closed_during


@pytest.mark.parametrize("fail", [False, True], ids=["success", "failure"])
def test_scoped_values_are_closed_once_when_the_top_level_dispatch_ends(fail: bool) -> None:
    resource = Closable()
    mediator, closed_during = scoped_resource_mediator(resource, fail)

    if fail:
        with pytest.raises(OrderRejectedError):
            mediator.send(PlaceOrder())
    else:
        mediator.send(PlaceOrder())

    assert closed_during == [0], "the nested dispatch must not close the shared scope"
    assert resource.closed == 1


@pytest.mark.asyncio
@pytest.mark.parametrize("fail", [False, True], ids=["success", "failure"])
async def test_async_scoped_values_are_closed_and_awaited_when_the_dispatch_ends(fail: bool):
    resource = AsyncClosable()
    mediator = AsyncMediator()

    @mediator.handles(PlaceOrder)
    async def place_order(command: PlaceOrder, ctx: DispatchContext) -> int:
        ctx.scope["session"] = resource
        if fail:
            raise OrderRejectedError
        return 1

    if fail:
        with pytest.raises(OrderRejectedError):
            await mediator.send(PlaceOrder())
    else:
        await mediator.send(PlaceOrder())

    assert resource.closed == 1
