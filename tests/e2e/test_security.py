"""Every access rule of the HTTP API, and no 500 for anything a client can send.

One app (SQLite, sync projections) serves the whole module, so hypothesis can drive it
with many requests quickly.
"""

from __future__ import annotations

import json
import string
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.e2e.conftest import ADDRESS, World, make_world, sqlite_env

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    # A token ahead of the log (fuzzed headers send them) waits only this long.
    env = sqlite_env(tmp_path_factory.mktemp("security"), ORDERS_CONSISTENCY_TIMEOUT="0.05")
    with make_world(env) as built:
        yield built


@pytest.fixture(scope="module")
def alices_order(world: World) -> int:
    return world.order(world.alice)[0]


@pytest.fixture(scope="module")
def bobs_order(world: World) -> int:
    return world.order(world.bob)[0]


ROUTES = [
    ("POST", "/orders", {"items": [{"productId": 1, "quantity": 1}], "shippingAddress": ADDRESS}),
    ("PATCH", "/orders/1/status", {"status": "confirmed"}),
    ("GET", "/orders", None),
    ("GET", "/orders/1", None),
    ("GET", "/analytics/daily?start=2024-01-01&end=2024-01-31", None),
]


def _call(world: World, method: str, url: str, body: Any, headers: dict[str, str]) -> Any:
    return world.client.request(method, url, json=body, headers=headers)


# -- authentication ----------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "url", "body"), ROUTES)
def test_every_route_needs_a_bearer_token(world: World, method: str, url: str, body: Any) -> None:
    response = _call(world, method, url, body, {})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.json()["type"] == "not_authenticated"


@pytest.mark.parametrize(("method", "url", "body"), ROUTES)
@pytest.mark.parametrize(
    "authorization",
    ["Bearer not-a-token", "Bearer ", "Basic YWxpY2U6c2VjcmV0", "Bearer " + "x" * 10_000],
)
def test_a_bad_token_is_a_401(
    world: World, method: str, url: str, body: Any, authorization: str
) -> None:
    response = _call(world, method, url, body, {"Authorization": authorization})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_token_of_one_user_never_shows_another_users_order(
    world: World, alices_order: int, bobs_order: int
) -> None:
    mine = world.client.get(f"/orders/{alices_order}", headers=world.alice)
    assert mine.status_code == 200
    theirs = world.client.get(f"/orders/{bobs_order}", headers=world.alice)
    missing = world.client.get("/orders/999999", headers=world.alice)
    assert theirs.status_code == missing.status_code == 404
    # Indistinguishable from a missing order, except for the id in the message.
    assert theirs.json()["type"] == missing.json()["type"] == "unknown_order"
    assert theirs.json()["detail"] == f"there is no order {bobs_order}"


def test_a_list_holds_only_the_callers_orders(
    world: World, alices_order: int, bobs_order: int
) -> None:
    alice_ids = {
        i["orderId"] for i in world.client.get("/orders", headers=world.alice).json()["items"]
    }
    bob_ids = {i["orderId"] for i in world.client.get("/orders", headers=world.bob).json()["items"]}
    assert alices_order in alice_ids
    assert bobs_order in bob_ids
    assert not alice_ids & bob_ids


def test_staff_may_read_any_order(world: World, bobs_order: int) -> None:
    assert world.client.get(f"/orders/{bobs_order}", headers=world.staff).status_code == 200


# -- authorization -----------------------------------------------------------------------------


def test_customers_may_not_change_a_status_even_of_their_own_order(
    world: World, alices_order: int
) -> None:
    response = world.client.patch(
        f"/orders/{alices_order}/status", json={"status": "cancelled"}, headers=world.alice
    )
    assert response.status_code == 403
    assert response.json()["type"] == "forbidden"
    detail = world.client.get(f"/orders/{alices_order}", headers=world.alice).json()
    assert detail["status"] == "pending", "a refused request changes nothing"


def test_customers_may_not_read_analytics(world: World) -> None:
    response = world.client.get(
        "/analytics/daily", params={"start": "2024-01-01", "end": "2024-01-02"}, headers=world.bob
    )
    assert response.status_code == 403


def test_forbidden_comes_before_validation(world: World) -> None:
    response = world.client.patch("/orders/1/status", json={"status": "??"}, headers=world.bob)
    assert response.status_code == 403


# -- cursors -----------------------------------------------------------------------------------


def test_a_tampered_cursor_is_a_400(world: World) -> None:
    for _ in range(21):
        world.order(world.alice)
    cursor = world.client.get("/orders", headers=world.alice).json()["nextCursor"]
    assert cursor
    flipped = cursor[:-2] + ("A" if cursor[-2] != "A" else "B") + cursor[-1]
    for bad in (flipped, cursor + "x", cursor[:10], "not a cursor", "%%%"):
        response = world.client.get("/orders", params={"cursor": bad}, headers=world.alice)
        assert response.status_code == 400, bad
        assert response.json()["type"] == "invalid_cursor"


def test_another_users_cursor_is_a_400(world: World) -> None:
    for _ in range(21):
        world.order(world.alice)
    cursor = world.client.get("/orders", headers=world.alice).json()["nextCursor"]
    response = world.client.get("/orders", params={"cursor": cursor}, headers=world.bob)
    assert response.status_code == 400
    assert "another user" in response.json()["detail"]


@FUZZ
@given(
    cursor=st.text(min_size=1, max_size=200)
    | st.text(string.ascii_letters + string.digits + "-_", min_size=1, max_size=200)
)
def test_random_cursors_are_a_400(world: World, cursor: str) -> None:
    response = world.client.get("/orders", params={"cursor": cursor}, headers=world.alice)
    assert response.status_code == 400, response.text


# -- invalid requests --------------------------------------------------------------------------


def _body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"items": [{"productId": 1, "quantity": 1}], "shippingAddress": ADDRESS}
    body.update(changes)
    return body


@pytest.mark.parametrize(
    ("body", "loc", "error_type"),
    [
        ({"shippingAddress": ADDRESS}, ["body", "items"], "missing"),
        (_body(items=[]), ["body", "items"], "empty_order"),
        (
            _body(items=[{"productId": 1, "quantity": 1}] * 2),
            ["body", "items"],
            "duplicate_product",
        ),
        (
            _body(items=[{"productId": 1, "quantity": 0}]),
            ["body", "items", 0, "quantity"],
            "greater_than_equal",
        ),
        (
            _body(items=[{"productId": 1, "quantity": 1001}]),
            ["body", "items", 0, "quantity"],
            "oversized_order",
        ),
        (
            _body(items=[{"productId": i, "quantity": 1} for i in range(1, 52)]),
            ["body", "items"],
            "oversized_order",
        ),
        (
            _body(items=[{"productId": 2**40, "quantity": 1}]),
            ["body", "items", 0, "productId"],
            "less_than_equal",
        ),
        (
            _body(items=[{"product_id": 1, "quantity": 1}]),
            ["body", "items", 0, "productId"],
            "missing",
        ),
        (_body(userId=2), ["body", "userId"], "extra_forbidden"),
        (
            _body(shippingAddress={**ADDRESS, "country": "France"}),
            ["body", "shippingAddress", "country"],
            "string_pattern_mismatch",
        ),
        (
            _body(shippingAddress={**ADDRESS, "postalCode": ""}),
            ["body", "shippingAddress", "postalCode"],
            "string_too_short",
        ),
        (
            _body(shippingAddress={**ADDRESS, "line1": "a\x00b"}),
            ["body", "shippingAddress", "line1"],
            "invalid_text",
        ),
        (
            _body(shippingAddress={**ADDRESS, "city": "\ud800"}),
            ["body", "shippingAddress", "city"],
            "invalid_text",
        ),
        ([1, 2], ["body"], "model_attributes_type"),
    ],
)
def test_an_invalid_order_is_a_422_naming_the_field(
    world: World, body: Any, loc: list[Any], error_type: str
) -> None:
    response = world.client.post(
        "/orders",
        content=json.dumps(body),
        headers={**world.alice, "Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text
    errors = response.json()["detail"]
    assert [loc, error_type] in [[e["loc"], e["type"]] for e in errors], errors


def test_malformed_json_is_a_422(world: World) -> None:
    response = world.client.post(
        "/orders",
        content=b'{"items": [',
        headers={**world.alice, "Content-Type": "application/json"},
    )
    assert response.status_code == 422


def test_an_unknown_product_is_a_422_listing_it(world: World) -> None:
    response = world.client.post(
        "/orders",
        json=_body(
            items=[
                {"productId": world.products[0], "quantity": 1},
                {"productId": 4242, "quantity": 1},
            ]
        ),
        headers=world.alice,
    )
    assert response.status_code == 422
    assert response.json()["detail"] == [
        {
            "type": "unknown_product",
            "loc": ["body", "items"],
            "msg": "these products do not exist or are not sold: 4242",
            "input": [4242],
        }
    ]


@pytest.mark.parametrize(
    ("body", "error_type"),
    [
        ({"status": "lost"}, "enum"),
        ({}, "missing"),
        ({"status": "confirmed", "note": ""}, "string_too_short"),
    ],
)
def test_an_invalid_status_change_is_a_422(
    world: World, alices_order: int, body: Any, error_type: str
) -> None:
    response = world.client.patch(f"/orders/{alices_order}/status", json=body, headers=world.staff)
    assert response.status_code == 422
    assert error_type in [e["type"] for e in response.json()["detail"]]


@pytest.mark.parametrize(
    ("params", "loc"),
    [
        ({"start": "2024-02-01", "end": "2024-01-01"}, ["query"]),
        ({"start": "2020-01-01", "end": "2024-01-01"}, ["query"]),
        ({"start": "yesterday", "end": "2024-01-01"}, ["query", "start"]),
        ({"end": "2024-01-01"}, ["query", "start"]),
    ],
)
def test_a_bad_analytics_range_is_a_422(
    world: World, params: dict[str, str], loc: list[str]
) -> None:
    response = world.client.get("/analytics/daily", params=params, headers=world.staff)
    assert response.status_code == 422, response.text
    assert loc in [e["loc"] for e in response.json()["detail"]]


# -- domain refusals ---------------------------------------------------------------------------


def test_an_unknown_order_is_a_404(world: World) -> None:
    for response in (
        world.client.get("/orders/424242", headers=world.staff),
        world.client.patch(
            "/orders/424242/status", json={"status": "confirmed"}, headers=world.staff
        ),
    ):
        assert response.status_code == 404
        assert response.json() == {"detail": "there is no order 424242", "type": "unknown_order"}


def test_an_illegal_transition_is_a_409(world: World) -> None:
    order_id, _ = world.order(world.alice)
    response = world.client.patch(
        f"/orders/{order_id}/status", json={"status": "delivered"}, headers=world.staff
    )
    assert response.status_code == 409
    assert response.json()["type"] == "illegal_transition"
    assert "from pending it can go to: cancelled, confirmed" in response.json()["detail"]


@pytest.mark.parametrize("order_id", ["0", "-1", "abc", "1.5", str(2**31), "9" * 400])
def test_an_out_of_range_order_id_is_a_422(world: World, order_id: str) -> None:
    assert world.client.get(f"/orders/{order_id}", headers=world.alice).status_code == 422


# -- fuzzing: no 500, whatever comes in --------------------------------------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
_texts = st.text(max_size=30) | st.sampled_from(["", " ", "\x00", "\ud800", "FR", "x" * 300])
_ids = st.integers(min_value=-3, max_value=8) | st.integers() | _json
_line = st.fixed_dictionaries({"productId": _ids, "quantity": st.integers(-2, 1200) | _json})
_address = st.fixed_dictionaries(
    dict.fromkeys(ADDRESS, _texts | _json), optional={"extra": _json}
) | st.just(ADDRESS)
_order_bodies = _json | st.fixed_dictionaries(
    {"items": st.lists(_line, max_size=6) | _json, "shippingAddress": _address},
    optional={"userId": _json, "note": _json},
)
_status_bodies = _json | st.fixed_dictionaries(
    {
        "status": st.sampled_from(["pending", "confirmed", "shipped", "delivered", "cancelled"])
        | _texts
    },
    optional={"note": _texts | _json},
)
ALLOWED = {201, 204, 400, 404, 409, 422}


def _post_json(world: World, method: str, url: str, body: Any, headers: dict[str, str]) -> Any:
    # ensure_ascii escapes unpaired surrogates, as a hostile client could.
    return world.client.request(
        method,
        url,
        content=json.dumps(body),
        headers={**headers, "Content-Type": "application/json"},
    )


@FUZZ
@given(body=_order_bodies)
def test_no_500_for_any_order_body(world: World, body: Any) -> None:
    response = _post_json(world, "POST", "/orders", body, world.alice)
    assert response.status_code in ALLOWED, response.text


@FUZZ
@given(order_id=st.integers(-2, 60) | st.integers(), body=_status_bodies)
def test_no_500_for_any_status_change(world: World, order_id: int, body: Any) -> None:
    response = _post_json(world, "PATCH", f"/orders/{order_id}/status", body, world.staff)
    assert response.status_code in ALLOWED, response.text


@FUZZ
@given(
    order_id=st.text(min_size=1, max_size=30) | st.integers().map(str),
    token=st.none() | st.integers().map(str) | st.text(max_size=10),
)
def test_no_500_for_any_order_id_or_consistency_token(
    world: World, order_id: str, token: str | None
) -> None:
    headers = dict(world.alice)
    if token is not None:
        if any(ord(c) > 127 or c in "\r\n\x00" for c in token):  # not sendable as a header
            token = token.encode("ascii", "ignore").decode().strip() or "x"
        headers["X-Consistency-Token"] = token.strip() or "x"
    response = world.client.get(f"/orders/{quote(order_id, safe='')}", headers=headers)
    # 404 also for ids that decode to another path ("a/b"); 200 for "." (-> /orders).
    assert response.status_code in {200, 404, 422, 503}, response.text


@FUZZ
@given(start=st.dates() | st.text(max_size=12), end=st.dates() | st.text(max_size=12))
def test_no_500_for_any_analytics_range(world: World, start: Any, end: Any) -> None:
    response = world.client.get(
        "/analytics/daily", params={"start": str(start), "end": str(end)}, headers=world.staff
    )
    assert response.status_code in {200, 422}, response.text
