"""The HTTP API end to end: the seed's flow on SQLite and PostgreSQL, with every strategy."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from dependency_injector import providers

from cqrs_kit import ConcurrencyError
from cqrs_kit.projections import Strategy
from reference_app.read.projections import PROJECTION_NAMES
from reference_app.read.queries import GetDailyAnalytics, GetOrderDetail, ListUserOrders
from reference_app.write.domain import OrderId
from tests.e2e.conftest import ADDRESS, World, make_world, postgres_env, sqlite_env

STRATEGIES = ["sync", "async"]


def _projections(strategy: str) -> str:
    return ",".join(f"{name}={strategy}" for name in PROJECTION_NAMES)


_WORLDS = {
    **{f"sqlite-{s}": pytest.param(("sqlite", s), id=f"sqlite-{s}") for s in STRATEGIES},
    # inline keeps the read models in the write database: one file for both
    "sqlite-inline": pytest.param(("sqlite-one-file", "inline"), id="sqlite-inline"),
    **{
        f"postgres-{s}": pytest.param(
            ("postgres", s), id=f"postgres-{s}", marks=pytest.mark.postgres
        )
        for s in STRATEGIES
    },
}


def worlds(*names: str) -> pytest.MarkDecorator:
    """Run a test in the named worlds (all when none are named)."""
    return pytest.mark.parametrize("world", [_WORLDS[n] for n in names or _WORLDS], indirect=True)


@pytest.fixture
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    backend, strategy = request.param
    projections = _projections(strategy)
    if backend == "postgres":
        urls = request.getfixturevalue("postgres_urls")
        env = postgres_env(urls, tmp_path, ORDERS_PROJECTIONS=projections)
    elif backend == "sqlite-one-file":
        url = f"sqlite:///{tmp_path / 'orders.db'}"
        env = sqlite_env(
            tmp_path,
            ORDERS_PROJECTIONS=projections,
            ORDERS_WRITE_DATABASE_URL=url,
            ORDERS_READ_DATABASE_URL=url,
        )
    else:
        env = sqlite_env(tmp_path, ORDERS_PROJECTIONS=projections)
    with make_world(env) as built:
        yield built


@worlds()
def test_full_flow_create_read_update_analytics(world: World) -> None:
    client = world.client
    tea, teapot, _ = world.products

    created = client.post(
        "/orders",
        json={
            "items": [{"productId": tea, "quantity": 4}, {"productId": teapot, "quantity": 1}],
            "shippingAddress": ADDRESS,
        },
        headers=world.alice,
    )
    assert created.status_code == 201, created.text
    order_id = created.json()["orderId"]
    assert created.json() == {"orderId": order_id}
    assert created.headers["Location"] == f"/orders/{order_id}"
    token = created.headers["X-Consistency-Token"]
    fresh = {**world.alice, "X-Consistency-Token": token}

    detail = client.get(f"/orders/{order_id}", headers=fresh)
    assert detail.status_code == 200, detail.text
    body = detail.json()
    assert body["orderId"] == order_id
    assert body["customerName"] == "Alice"
    assert body["customerEmail"] == "alice@example.com"
    assert body["status"] == "pending"
    assert body["total"] == "20.00"
    assert body["shippingAddress"] == ADDRESS
    assert [
        (i["productName"], i["unitPrice"], i["quantity"], i["lineTotal"]) for i in body["items"]
    ] == [
        ("Tea", "2.50", 4, "10.00"),
        ("Teapot", "10.00", 1, "10.00"),
    ]
    assert [(h["fromStatus"], h["toStatus"]) for h in body["history"]] == [(None, "pending")]

    listed = client.get("/orders", headers=fresh)
    assert listed.status_code == 200, listed.text
    assert listed.json()["nextCursor"] is None
    (item,) = listed.json()["items"]
    assert item == {
        "orderId": order_id,
        "status": "pending",
        "customerName": "Alice",
        "total": "20.00",
        "itemCount": 2,
        "placedAt": body["placedAt"],
    }

    updated = client.patch(
        f"/orders/{order_id}/status",
        json={"status": "confirmed", "note": "paid by card"},
        headers=world.staff,
    )
    assert updated.status_code == 204, updated.text
    assert updated.content == b""
    newer = updated.headers["X-Consistency-Token"]
    assert int(newer) > int(token)

    detail = client.get(
        f"/orders/{order_id}", headers={**world.alice, "X-Consistency-Token": newer}
    ).json()
    assert detail["status"] == "confirmed"
    assert detail["history"][-1]["note"] == "paid by card"

    day = dt.datetime.fromisoformat(body["placedAt"]).date().isoformat()
    analytics = client.get(
        "/analytics/daily",
        params={"start": day, "end": day},
        headers={**world.staff, "X-Consistency-Token": newer},
    )
    assert analytics.status_code == 200, analytics.text
    assert analytics.json() == {
        "items": [{"day": day, "status": "confirmed", "orderCount": 1, "revenue": "20.00"}]
    }

    # The read models answer what the write model does (the baseline is the oracle).
    world.container.projection_engine().run_once()
    start = dt.date.fromisoformat(day)
    for query in (
        GetOrderDetail(order_id=OrderId(order_id)),
        ListUserOrders(user_id=world.alice_id),
        GetDailyAnalytics(start=start, end=start),
    ):
        assert world.container.mediator().ask(query) == world.container.baseline_mediator().ask(
            query
        ), f"read model and write model disagree on {query!r}"


@worlds("sqlite-sync", "sqlite-async", "postgres-sync")
def test_cursor_pages_through_a_users_orders_newest_first(world: World) -> None:
    ids = [world.order(world.alice)[0] for _ in range(23)]
    _, token = world.order(world.bob)
    headers = {**world.alice, "X-Consistency-Token": token}

    first = world.client.get("/orders", headers=headers).json()
    assert [i["orderId"] for i in first["items"]] == ids[::-1][:20]
    assert first["nextCursor"]

    second = world.client.get(
        "/orders", params={"cursor": first["nextCursor"]}, headers=headers
    ).json()
    assert [i["orderId"] for i in second["items"]] == ids[::-1][20:]
    assert second["nextCursor"] is None


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_consistency_token_waits_for_the_worker_and_times_out_with_503(
    tmp_path: Path, strategy: str
) -> None:
    env = sqlite_env(
        tmp_path,
        ORDERS_PROJECTIONS=_projections(strategy),
        ORDERS_EMBEDDED_WORKER="false",  # nothing applies async projections but this test
        ORDERS_CONSISTENCY_TIMEOUT="0.2",
    )
    with make_world(env) as world:
        order_id, token = world.order(world.alice)
        fresh = {**world.alice, "X-Consistency-Token": token}

        response = world.client.get(f"/orders/{order_id}", headers=fresh)
        if world.container.settings().projections["order_detail"] is Strategy.SYNC:
            assert response.status_code == 200, "sync projections are current when send returns"
            return
        assert response.status_code == 503, response.text
        assert response.headers["Retry-After"] == "1"
        assert response.json()["type"] == "consistency_timeout"

        world.container.projection_engine().run_once()  # what the worker process would do
        response = world.client.get(f"/orders/{order_id}", headers=fresh)
        assert response.status_code == 200, response.text
        assert response.json()["orderId"] == order_id


def test_openapi_lists_the_routes_status_codes_and_bearer_security(tmp_path: Path) -> None:
    with make_world(sqlite_env(tmp_path)) as world:
        schema = world.client.get("/openapi.json").json()

    assert schema["components"]["securitySchemes"]["HTTPBearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "An API token, issued by `python -m reference_app token USER_ID`.",
    }
    expected = {
        ("/orders", "post"): {"201", "401", "422", "503"},
        ("/orders/{order_id}/status", "patch"): {"204", "401", "403", "404", "409", "422", "503"},
        ("/orders", "get"): {"200", "400", "401", "422", "503"},
        ("/orders/{order_id}", "get"): {"200", "401", "404", "422", "503"},
        ("/analytics/daily", "get"): {"200", "401", "403", "422", "503"},
    }
    paths = schema["paths"]
    for (path, method), statuses in expected.items():
        operation = paths[path][method]
        assert set(operation["responses"]) == statuses, (path, method)
        assert operation["security"] == [{"HTTPBearer": []}], (path, method)
    assert set(paths) == {path for path, _ in expected} | {"/orders/{order_id}"}
    created = paths["/orders"]["post"]["responses"]["201"]
    assert "X-Consistency-Token" in created["headers"]
    assert created["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/OrderCreatedResponse"
    }
    assert set(schema["components"]["schemas"]["OrderListItemResponse"]["properties"]) == {
        "orderId",
        "status",
        "customerName",
        "total",
        "itemCount",
        "placedAt",
    }
    assert set(schema["components"]["schemas"]["CreateOrderRequest"]["properties"]) == {
        "items",
        "shippingAddress",
    }


def test_a_write_that_keeps_conflicting_is_a_503_with_retry_after(tmp_path: Path) -> None:
    def conflicted() -> dt.datetime:
        raise ConcurrencyError("database is locked, after 5 attempts", attempts=5)

    with make_world(sqlite_env(tmp_path)) as world:
        # The handlers' dependencies come from the container, so a test can swap one.
        with world.container.clock.override(providers.Object(conflicted)):
            response = world.client.post(
                "/orders",
                json={
                    "items": [{"productId": world.products[0], "quantity": 1}],
                    "shippingAddress": ADDRESS,
                },
                headers=world.alice,
            )
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "1"
        assert response.json()["type"] == "write_conflict"
        assert world.client.get("/orders", headers=world.alice).json()["items"] == []
