"""Defining a projection: per-event and batch handlers (no I/O)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from cqrs_kit import ConfigurationError, Event, EventTypes
from cqrs_kit.projections import BatchContext, Projection, ProjectionContext
from cqrs_kit.projections._apply import routes

event_types = EventTypes()


@event_types.define("unit.placed")
class Placed(Event):
    order_id: int


@event_types.define("unit.cancelled")
class Cancelled(Event):
    order_id: int


def test_on_batch_registers_a_batch_handler_and_returns_it() -> None:
    projection = Projection("orders")

    @projection.on_batch(Placed)
    def placed(events: Sequence[Placed], ctx: BatchContext) -> None: ...

    @projection.on(Cancelled)
    def cancelled(event: Cancelled, ctx: ProjectionContext) -> None: ...

    assert projection.batch_handlers == {Placed: placed}
    assert projection.handlers == {Cancelled: cancelled}
    assert projection.event_types == [Cancelled, Placed]
    assert routes(projection, event_types) == {
        "unit.placed": (True, placed),
        "unit.cancelled": (False, cancelled),
    }


def test_an_event_type_has_one_handler_per_projection_of_either_kind() -> None:
    projection = Projection("orders")
    projection.on(Placed)(lambda event, ctx: None)
    with pytest.raises(ConfigurationError, match="already handles Placed"):
        projection.on_batch(Placed)
    projection.on_batch(Cancelled)(lambda events, ctx: None)
    with pytest.raises(ConfigurationError, match="already handles Cancelled"):
        projection.on(Cancelled)


def test_on_batch_takes_event_classes_only() -> None:
    with pytest.raises(ConfigurationError, match=r"on_batch\(\) takes an Event subclass"):
        Projection("orders").on_batch(int)  # type: ignore[type-var]
