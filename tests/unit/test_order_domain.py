"""The orders domain: the status machine, the domain errors and the commands' validation."""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from reference_app.write.domain import (
    Address,
    EmailTakenError,
    IllegalTransitionError,
    OrderError,
    OrderStatus,
    UnknownOrderError,
    UnknownProductError,
    UnknownUserError,
    can_transition,
    check_transition,
)
from reference_app.write.messages import (
    MAX_LINE_QUANTITY,
    MAX_ORDER_LINES,
    AddProduct,
    CreateOrder,
    RegisterUser,
    UpdateOrderStatus,
    event_types,
)
from reference_app.write.tokens import hash_token, new_token

S = OrderStatus
ALLOWED = {
    (S.PENDING, S.CONFIRMED),
    (S.CONFIRMED, S.SHIPPED),
    (S.SHIPPED, S.DELIVERED),
    (S.PENDING, S.CANCELLED),
    (S.CONFIRMED, S.CANCELLED),
}
EVERY_PAIR = list(itertools.product(OrderStatus, repeat=2))
ADDRESS = {"line1": "1 Rue de Rivoli", "city": "Paris", "postal_code": "75001", "country": "FR"}


# -- the status machine ---------------------------------------------------------------------


@pytest.mark.parametrize(("from_status", "to_status"), sorted(ALLOWED))
def test_allowed_transitions_pass(from_status: OrderStatus, to_status: OrderStatus) -> None:
    assert can_transition(from_status, to_status)
    check_transition(from_status, to_status)  # does not raise


@pytest.mark.parametrize(
    ("from_status", "to_status"), [pair for pair in EVERY_PAIR if pair not in ALLOWED]
)
def test_every_other_transition_is_refused(
    from_status: OrderStatus, to_status: OrderStatus
) -> None:
    assert not can_transition(from_status, to_status)
    with pytest.raises(IllegalTransitionError) as info:
        check_transition(from_status, to_status)
    assert (info.value.from_status, info.value.to_status) == (from_status, to_status)
    assert f"from {from_status} to {to_status}" in str(info.value)


def test_the_machine_covers_all_25_pairs() -> None:
    assert len(EVERY_PAIR) == 25
    assert sum(can_transition(*pair) for pair in EVERY_PAIR) == len(ALLOWED) == 5


def test_refusal_names_the_allowed_moves() -> None:
    with pytest.raises(IllegalTransitionError, match="it can go to: cancelled, shipped"):
        check_transition(S.CONFIRMED, S.DELIVERED)
    with pytest.raises(IllegalTransitionError, match=r"none \(it is final\)"):
        check_transition(S.DELIVERED, S.CANCELLED)


def test_statuses_are_stored_as_their_values() -> None:
    assert [status.value for status in OrderStatus] == [
        "pending",
        "confirmed",
        "shipped",
        "delivered",
        "cancelled",
    ]


# -- domain errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "builtin"),
    [
        (UnknownUserError(7), LookupError),
        (UnknownProductError([3, 1]), LookupError),
        (UnknownOrderError(9), LookupError),
        (EmailTakenError("a@example.com"), ValueError),
        (IllegalTransitionError(S.SHIPPED, S.PENDING), ValueError),
    ],
)
def test_domain_errors_share_a_root_and_a_builtin(error: OrderError, builtin: type) -> None:
    assert isinstance(error, OrderError)
    assert isinstance(error, builtin)


def test_unknown_product_error_names_every_id_in_order() -> None:
    error = UnknownProductError([5, 2, 9])
    assert error.product_ids == (2, 5, 9)
    assert "2, 5, 9" in str(error)


# -- command validation ---------------------------------------------------------------------


def _order(items: list[dict[str, Any]], **fields: Any) -> CreateOrder:
    return CreateOrder.model_validate(
        {"user_id": 1, "items": items, "shipping_address": ADDRESS, **fields}
    )


def _error(info: pytest.ExceptionInfo[ValidationError]) -> dict[str, Any]:
    errors = info.value.errors()
    assert len(errors) == 1, errors
    return dict(errors[0])


def test_a_well_formed_order_validates() -> None:
    order = _order([{"product_id": 2, "quantity": 3}, {"product_id": 1, "quantity": 1}])
    assert [line.product_id for line in order.items] == [2, 1], "the request's order is kept"
    assert order.shipping_address == Address(**ADDRESS)


def test_an_order_without_lines_is_refused() -> None:
    with pytest.raises(ValidationError) as info:
        _order([])
    assert _error(info)["type"] == "empty_order"


@pytest.mark.parametrize("quantity", [0, -1])
def test_a_quantity_below_one_is_refused(quantity: int) -> None:
    with pytest.raises(ValidationError) as info:
        _order([{"product_id": 1, "quantity": quantity}])
    error = _error(info)
    assert error["type"] == "greater_than_equal"
    assert error["loc"] == ("items", 0, "quantity")


def test_a_product_on_two_lines_is_refused() -> None:
    with pytest.raises(ValidationError) as info:
        _order(
            [
                {"product_id": 4, "quantity": 1},
                {"product_id": 2, "quantity": 1},
                {"product_id": 4, "quantity": 2},
            ]
        )
    error = _error(info)
    assert error["type"] == "duplicate_product"
    assert error["ctx"] == {"product_ids": [4]}


def test_too_many_lines_is_an_oversized_order() -> None:
    lines = [{"product_id": i, "quantity": 1} for i in range(1, MAX_ORDER_LINES + 2)]
    with pytest.raises(ValidationError) as info:
        _order(lines)
    error = _error(info)
    assert error["type"] == "oversized_order"
    assert error["ctx"] == {"max": 50, "count": 51}


def test_too_many_units_is_an_oversized_order() -> None:
    with pytest.raises(ValidationError) as info:
        _order([{"product_id": 1, "quantity": MAX_LINE_QUANTITY + 1}])
    error = _error(info)
    assert error["type"] == "oversized_order"
    assert error["loc"] == ("items", 0, "quantity")


def test_the_largest_order_is_accepted() -> None:
    lines = [
        {"product_id": i, "quantity": MAX_LINE_QUANTITY} for i in range(1, MAX_ORDER_LINES + 1)
    ]
    assert len(_order(lines).items) == 50


@pytest.mark.parametrize(
    ("field", "value"),
    [("country", "France"), ("country", "fr"), ("city", "   "), ("postal_code", "")],
)
def test_bad_addresses_are_refused(field: str, value: str) -> None:
    with pytest.raises(ValidationError) as info:
        _order([{"product_id": 1, "quantity": 1}], shipping_address={**ADDRESS, field: value})
    assert _error(info)["loc"] == ("shipping_address", field)


@pytest.mark.parametrize("price", ["0", "-1.00", "1.999", "100000.00"])
def test_bad_prices_are_refused(price: str) -> None:
    with pytest.raises(ValidationError):
        AddProduct(name="Pen", price=Decimal(price))


def test_the_dearest_price_keeps_the_largest_total_within_numeric_12_2() -> None:
    dearest = AddProduct(name="Gold", price=Decimal("99999.99")).price
    assert dearest * MAX_LINE_QUANTITY * MAX_ORDER_LINES < Decimal("9999999999.99")


def test_register_user_strips_and_checks_the_email() -> None:
    assert RegisterUser(name=" Ada ", email=" ada@example.com ").name == "Ada"
    with pytest.raises(ValidationError):
        RegisterUser(name="Ada", email="not an email")


def test_update_status_refuses_unknown_statuses_and_empty_notes() -> None:
    with pytest.raises(ValidationError):
        UpdateOrderStatus.model_validate({"order_id": 1, "status": "lost"})
    with pytest.raises(ValidationError):
        UpdateOrderStatus.model_validate({"order_id": 1, "status": "shipped", "note": " "})


# -- events and tokens ----------------------------------------------------------------------


def test_event_names_are_pinned() -> None:
    assert sorted(event_types.names) == [
        "order.created",
        "order.status_changed",
        "product.added",
        "user.registered",
    ], "event names are stored forever: renaming one orphans every logged event"


def test_tokens_are_random_and_hashed_with_sha256() -> None:
    token = new_token()
    assert token != new_token()
    assert len(token) >= 43
    digest = hash_token(token)
    assert len(digest) == 64
    assert digest == hash_token(token)
    assert token not in digest
