"""Type-checked only (mypy --strict): the result type follows the message type."""

from __future__ import annotations

from typing import assert_type

from pydantic import BaseModel

from cqrs_kit import AsyncMediator, Command, Event, Mediator, Query


class OrderDetail(BaseModel):
    order_id: int


class GetOrderDetail(Query[OrderDetail | None]):
    order_id: int


class CreateOrder(Command[int]):
    user_id: int


class CancelOrder(Command[None]):
    order_id: int


class OrderCreated(Event):
    order_id: int


def sync_results(mediator: Mediator) -> None:
    assert_type(mediator.ask(GetOrderDetail(order_id=1)), OrderDetail | None)
    assert_type(mediator.send(CreateOrder(user_id=1)), int)
    assert_type(mediator.send(CancelOrder(order_id=1)), None)
    assert_type(mediator.publish(OrderCreated(order_id=1)), None)


async def async_results(mediator: AsyncMediator) -> None:
    assert_type(await mediator.ask(GetOrderDetail(order_id=1)), OrderDetail | None)
    assert_type(await mediator.send(CreateOrder(user_id=1)), int)
    assert_type(await mediator.send(CancelOrder(order_id=1)), None)


def wrong_methods(mediator: Mediator) -> None:
    mediator.ask(CreateOrder(user_id=1))  # type: ignore[arg-type]
    mediator.send(GetOrderDetail(order_id=1))  # type: ignore[arg-type]
    mediator.publish(CreateOrder(user_id=1))  # type: ignore[arg-type]


async def wrong_methods_async(mediator: AsyncMediator) -> None:
    await mediator.ask(CreateOrder(user_id=1))  # type: ignore[arg-type]
    await mediator.send(GetOrderDetail(order_id=1))  # type: ignore[arg-type]
