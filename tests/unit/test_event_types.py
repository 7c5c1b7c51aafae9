"""EventTypes: stable names, schema versions, upcasting, and typed decode errors."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest

from cqrs_kit import (
    ConfigurationError,
    Event,
    EventDecodeError,
    EventTypes,
    StoredEvent,
    UnknownEventTypeError,
)


class Placed(Event):
    order_id: int
    total: str
    currency: str


def add_currency(payload: dict[str, Any]) -> dict[str, Any]:
    return {**payload, "currency": "EUR"}


def stored(
    event_type: str, version: int, payload: dict[str, Any], position: int = 7
) -> StoredEvent:
    return StoredEvent(
        position=position,
        event_id=uuid.uuid4(),
        event_type=event_type,
        schema_version=version,
        stream_type="order",
        stream_id="1",
        payload=payload,
        metadata={},
        recorded_at=dt.datetime.now(dt.UTC),
    )


@pytest.fixture
def types() -> EventTypes:
    registry = EventTypes()
    registry.register(
        Placed, name="order.placed", version=2, stream_type="order", upcasters={1: add_currency}
    )
    return registry


def test_encodes_with_the_stable_name_and_current_version(types: EventTypes) -> None:
    name, version, stream_type, payload = types.encode(
        Placed(order_id=1, total="9.50", currency="USD")
    )
    assert (name, version, stream_type) == ("order.placed", 2, "order")
    assert payload == {"order_id": 1, "total": "9.50", "currency": "USD"}
    assert types.name_of(Placed) == "order.placed"
    assert types.class_of("order.placed") is Placed


def test_decodes_current_and_upcasts_old_versions(types: EventTypes) -> None:
    assert types.decode(
        stored("order.placed", 2, {"order_id": 1, "total": "1", "currency": "USD"})
    ) == Placed(order_id=1, total="1", currency="USD")
    assert types.decode(stored("order.placed", 1, {"order_id": 1, "total": "1"})).currency == "EUR"


def test_unknown_type_names_type_version_and_position(types: EventTypes) -> None:
    with pytest.raises(UnknownEventTypeError) as info:
        types.decode(stored("order.lost", 3, {}, position=42))
    assert (info.value.event_type, info.value.schema_version, info.value.position) == (
        "order.lost",
        3,
        42,
    )
    assert "order.lost" in str(info.value)
    assert isinstance(info.value, LookupError)


@pytest.mark.parametrize(
    ("version", "payload"),
    [
        (2, {"order_id": "x", "total": "1", "currency": "EUR"}),
        (3, {"order_id": 1}),
        (2, {"order_id": 1}),
    ],
    ids=["invalid-field", "newer-than-registered", "missing-field"],
)
def test_payloads_that_do_not_validate_are_typed_errors(
    types: EventTypes, version: int, payload: dict[str, Any]
) -> None:
    with pytest.raises(EventDecodeError) as info:
        types.decode(stored("order.placed", version, payload, position=5))
    assert (info.value.event_type, info.value.schema_version, info.value.position) == (
        "order.placed",
        version,
        5,
    )
    assert "position 5" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_registration_rules() -> None:
    registry = EventTypes()
    registry.register(Placed, name="order.placed")
    with pytest.raises(ConfigurationError, match="already registered"):
        registry.register(Placed, name="other")

    class Other(Event):
        n: int

    with pytest.raises(ConfigurationError, match="already taken"):
        registry.register(Other, name="order.placed")
    with pytest.raises(ConfigurationError, match="upcasters are missing for versions \\[1\\]"):
        registry.register(Other, version=2)
    with pytest.raises(ConfigurationError, match="start at 1"):
        registry.register(Other, version=0)
    with pytest.raises(UnknownEventTypeError, match="not a registered event type"):
        registry.encode(Other(n=1))
    registry.register(Other)
    assert registry.name_of(Other) == "Other", "the class name is the default stable name"
