from typing import Any, NewType

import pytest
from pydantic import BaseModel, ValidationError

from cqrs_kit import Command, Event, Message, MessageKind, Query, result_type_of

OrderId = NewType("OrderId", int)


class OrderView(BaseModel):
    order_id: int


class CreateOrder(Command[OrderId]):
    user_id: int


class CreateRushOrder(CreateOrder):
    pass


class CancelOrder(Command[None]):
    order_id: int


class CountOrders(Command[int]):
    pass


class GetOrder(Query[OrderView | None]):
    order_id: int


class Ping(Query):  # deliberately unparametrized: the result is Any
    pass


class OrderCreated(Event):
    order_id: int


MESSAGES = [CreateOrder(user_id=1), GetOrder(order_id=1), OrderCreated(order_id=1)]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_assigning_a_field_of_a_message_raises_validation_error(message: Message) -> None:
    field = next(iter(type(message).model_fields))
    before = getattr(message, field)

    with pytest.raises(ValidationError, match="frozen"):
        setattr(message, field, 99)

    assert getattr(message, field) == before, "a refused assignment must not change the message"


@pytest.mark.parametrize(
    ("message_type", "fields"),
    [
        (CreateOrder, {"user_id": 1, "coupon": "FREE"}),
        (GetOrder, {"order_id": 1, "include_items": True}),
        (OrderCreated, {"order_id": 1, "source": "web"}),
    ],
    ids=["command", "query", "event"],
)
def test_unknown_fields_are_refused(message_type: type[Message], fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        message_type(**fields)


def test_fields_are_validated_on_construction() -> None:
    with pytest.raises(ValidationError, match="user_id"):
        CreateOrder(user_id="not a number")


def test_messages_with_equal_fields_are_equal_and_hashable() -> None:
    assert GetOrder(order_id=1) == GetOrder(order_id=1)
    assert hash(GetOrder(order_id=1)) == hash(GetOrder(order_id=1))


@pytest.mark.parametrize(
    ("message_type", "kind"),
    [
        (CreateOrder, MessageKind.COMMAND),
        (CreateRushOrder, MessageKind.COMMAND),
        (GetOrder, MessageKind.QUERY),
        (Ping, MessageKind.QUERY),
        (OrderCreated, MessageKind.EVENT),
    ],
)
def test_each_message_class_knows_its_kind(message_type: type[Message], kind: MessageKind) -> None:
    assert message_type.kind is kind


@pytest.mark.parametrize(
    ("message_type", "expected"),
    [
        (CountOrders, int),
        (CreateOrder, OrderId),
        (CreateRushOrder, OrderId),
        (CancelOrder, None),
        (GetOrder, OrderView | None),
        (Ping, Any),
        (OrderCreated, None),
    ],
    ids=[
        "Command[int]",
        "Command[NewType]",
        "subclass of a parametrized command",
        "Command[None]",
        "Query[X | None]",
        "unparametrized query is Any",
        "event is None",
    ],
)
def test_result_type_of_returns_the_declared_result(
    message_type: type[Message], expected: object
) -> None:
    assert result_type_of(message_type) == expected
