# ruff: noqa: D101, D102, D103 - docs/concepts/mediator.md explains every object shown here
"""The mediator, concept by concept: included section by section in docs/concepts/mediator.md.

Run it with ``python docs/examples/mediator_concepts.py``; tests/docs/test_examples.py
checks what it prints.
"""

import time

from pydantic import BaseModel

from cqrs_kit import (
    CallNext,
    Command,
    Dependencies,
    DispatchContext,
    Event,
    Factory,
    HandlerNotFoundError,
    Mediator,
    Message,
    MessageKindError,
    PipelineFrozenError,
    Query,
    Registry,
    scoped,
)


# --8<-- [start:messages]
class OrderView(BaseModel):
    order_id: int
    sku: str
    quantity: int


class PlaceOrder(Command[int]):  # mediator.send(PlaceOrder(...)) is an int
    sku: str
    quantity: int = 1


class GetOrder(Query[OrderView | None]):  # mediator.ask(GetOrder(...)) is OrderView | None
    order_id: int


class OrderPlaced(Event):  # events have no result; zero or more handlers
    order_id: int


# --8<-- [end:messages]


# --8<-- [start:handlers]
class Orders:
    """A stand-in repository."""

    def __init__(self) -> None:
        self.rows: dict[int, OrderView] = {}

    def add(self, sku: str, quantity: int) -> int:
        order_id = len(self.rows) + 1
        self.rows[order_id] = OrderView(order_id=order_id, sku=sku, quantity=quantity)
        return order_id


registry = Registry()


@registry.handles(PlaceOrder)  # a function: the message first, dependencies as keywords
def place_order(command: PlaceOrder, *, orders: Orders, mediator: Mediator) -> int:
    order_id = orders.add(command.sku, command.quantity)
    mediator.publish(OrderPlaced(order_id=order_id))  # a nested dispatch
    return order_id


class GetOrderHandler:  # a class: __init__ takes the dependencies, __call__ the message
    def __init__(self, orders: Orders) -> None:
        self.orders = orders

    def __call__(self, query: GetOrder) -> OrderView | None:
        return self.orders.rows.get(query.order_id)


registry.register(GetOrder, GetOrderHandler)


@registry.handles(OrderPlaced)
def send_confirmation(event: OrderPlaced, ctx: DispatchContext) -> None:
    caused_by = type(ctx.parent.message).__name__ if ctx.parent else None
    print(f"confirming order {event.order_id} (caused by {caused_by})")


# --8<-- [end:handlers]


# --8<-- [start:dependencies]
resolver = Dependencies(
    {
        Orders: Orders(),  # by annotation: the same object for every dispatch
        "mediator": Factory(lambda: mediator),  # by name: called once per dispatch
    }
)
# --8<-- [end:dependencies]


# --8<-- [start:middleware]
def audit(message: Message, ctx: DispatchContext, call_next: CallNext) -> object:
    print(f"{type(message).__name__}: correlation {ctx.correlation_id}")
    return call_next()


def timing(message: Message, ctx: DispatchContext, call_next: CallNext) -> object:
    started = time.perf_counter()
    try:
        return call_next()
    finally:
        ctx.metadata["elapsed_s"] = time.perf_counter() - started


mediator: Mediator = Mediator(
    registry,
    middleware=[audit, scoped(timing, Command)],  # outermost first; timing: commands only
    resolver=resolver,
)
mediator.freeze()  # optional: compose every chain now, instead of at the first dispatch
# --8<-- [end:middleware]


# --8<-- [start:dispatch]
order_id = mediator.send(PlaceOrder(sku="tea", quantity=2), correlation_id="req-1")
print(mediator.ask(GetOrder(order_id=order_id), correlation_id="req-2"))
# --8<-- [end:dispatch]


# --8<-- [start:subclasses]
class GetOrderAsAdmin(GetOrder):  # a subclass is a different message type
    pass


try:
    mediator.ask(GetOrderAsAdmin(order_id=order_id))
except HandlerNotFoundError as error:
    print(f"HandlerNotFoundError: {error}")
# --8<-- [end:subclasses]


# --8<-- [start:errors]
try:
    mediator.ask(PlaceOrder(sku="tea"))  # type: ignore[arg-type]  # mypy rejects it too
except MessageKindError as error:
    print(f"MessageKindError: {error}")

try:
    mediator.add_middleware(audit)
except PipelineFrozenError as error:
    print(f"PipelineFrozenError: {error}")
# --8<-- [end:errors]


# --8<-- [start:testing]
from cqrs_kit.testing import FakeMediator  # noqa: E402 - shown where the docs introduce it


def place_order_endpoint(mediator: Mediator, body: dict[str, str]) -> dict[str, int]:
    """Code under test: depends on a Mediator, not on the handlers behind it."""
    return {"order_id": mediator.send(PlaceOrder(sku=body["sku"]))}


fake = FakeMediator().returns(PlaceOrder, 42)
print(place_order_endpoint(fake, {"sku": "tea"}), fake.sent)
# --8<-- [end:testing]
