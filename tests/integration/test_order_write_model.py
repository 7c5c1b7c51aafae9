"""The reference app's write side and its baseline queries, on SQLite and on PostgreSQL.

Commands go through a real ``Mediator`` with ``TransactionMiddleware`` and the event log;
time comes from a fake clock. PostgreSQL sessions run in Asia/Tokyo (UTC+9) to prove that
times and days are UTC whatever the session's time zone.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import sessionmaker

from cqrs_kit import Mediator, StoredEvent
from cqrs_kit.eventlog import EventLog, event_log
from cqrs_kit.middleware.transaction import TransactionMiddleware
from cqrs_kit.persistence import sqlite_engine
from reference_app import baseline
from reference_app.views import (
    AddressView,
    DailyStat,
    OrderDetail,
    OrderItemView,
    OrderListItem,
    StatusChangeView,
)
from reference_app.write.domain import (
    Address,
    EmailTakenError,
    IllegalTransitionError,
    OrderId,
    OrderStatus,
    ProductId,
    UnknownOrderError,
    UnknownProductError,
    UnknownUserError,
    UserId,
)
from reference_app.write.handlers import dependencies, registry
from reference_app.write.messages import (
    AddProduct,
    CreateOrder,
    IssueApiToken,
    OrderCreated,
    OrderLine,
    OrderStatusChanged,
    ProductAdded,
    RegisterUser,
    UpdateOrderStatus,
    UserRegistered,
    event_types,
)
from reference_app.write.schema import (
    api_tokens,
    create_write_model,
    metadata,
    order_items,
    order_status_history,
    orders,
    products,
    users,
)
from reference_app.write.tokens import hash_token
from tests.databases import Database

T0 = dt.datetime(2024, 3, 1, 9, 30, tzinfo=dt.UTC)
PARIS = Address(line1="1 Rue de Rivoli", city="Paris", postal_code="75001", country="FR")
PARIS_VIEW = AddressView(**PARIS.model_dump())
S = OrderStatus


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


class App:
    """The write side over one database, and ways to look inside it."""

    def __init__(self, engine: sa.Engine) -> None:
        create_write_model(engine)
        self.engine = engine
        self.clock = FakeClock(T0)
        self.event_log = EventLog(event_types)
        self.mediator = Mediator(
            registry,
            middleware=[TransactionMiddleware(sessionmaker(engine), self.event_log)],
            resolver=dependencies(clock=self.clock),
        )

    def send(self, command: Any) -> Any:
        return self.mediator.send(command)

    def rows(self, table: sa.Table) -> list[tuple[Any, ...]]:
        with self.engine.connect() as conn:
            query = sa.select(table).order_by(*table.primary_key.columns)
            return [tuple(row) for row in conn.execute(query)]

    def events(self) -> list[StoredEvent]:
        with self.engine.connect() as conn:
            return self.event_log.read(conn, limit=10_000)

    def event_types(self) -> list[str]:
        return [event.event_type for event in self.events()]

    def order_state(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row an order touches, to prove that a refused command wrote nothing."""
        return {
            table.name: self.rows(table)
            for table in (orders, order_items, order_status_history, event_log)
        }

    # -- the baseline queries, each on its own connection ---------------------------------

    def list_user_orders(self, user_id: UserId, **options: Any) -> list[OrderListItem]:
        with self.engine.connect() as conn:
            return baseline.list_user_orders(conn, user_id, **options)

    def get_order_detail(self, order_id: OrderId) -> OrderDetail | None:
        with self.engine.connect() as conn:
            return baseline.get_order_detail(conn, order_id)

    def daily_analytics(self, start: dt.date, end: dt.date) -> list[DailyStat]:
        with self.engine.connect() as conn:
            return baseline.daily_analytics(conn, start, end)

    # -- shortcuts ---------------------------------------------------------------------------

    def user(self, name: str = "Ada", **fields: Any) -> UserId:
        email = f"{name.lower()}@example.com"
        return UserId(self.send(RegisterUser(name=name, email=email, **fields)))

    def product(self, name: str, price: str) -> ProductId:
        return ProductId(self.send(AddProduct(name=name, price=Decimal(price))))

    def order(self, user_id: UserId, *lines: tuple[ProductId, int]) -> OrderId:
        items = tuple(OrderLine(product_id=p, quantity=q) for p, q in lines)
        return OrderId(self.send(CreateOrder(user_id=user_id, items=items, shipping_address=PARIS)))

    def move(self, order_id: OrderId, status: OrderStatus, note: str | None = None) -> None:
        self.send(UpdateOrderStatus(order_id=order_id, status=status, note=note))


def _sqlite(tmp_path: Path) -> sa.Engine:
    return sqlite_engine(tmp_path / "write.db")


def _postgres(database: Database) -> sa.Engine:
    return sa.create_engine(database.sync_url, connect_args={"options": "-c timezone=Asia/Tokyo"})


@pytest.fixture(params=["sqlite", "postgres"])
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[App]:
    if request.param == "sqlite":
        engine = _sqlite(tmp_path)
    else:
        engine = _postgres(request.getfixturevalue("postgres_database"))
    yield App(engine)
    engine.dispose()


# -- users, products, tokens ----------------------------------------------------------------


def test_registers_users_and_adds_products_with_events(app: App) -> None:
    ada = app.user("Ada", is_staff=True)
    pen = app.product("Pen", "1.99")

    assert app.rows(users) == [(ada, "Ada", "ada@example.com", True, T0)]
    assert app.rows(products) == [(pen, "Pen", Decimal("1.99"), True)]
    registered, added = app.events()
    assert (registered.event_type, registered.stream_type, registered.stream_id) == (
        "user.registered",
        "user",
        str(ada),
    )
    assert registered.payload == {
        "user_id": ada,
        "name": "Ada",
        "email": "ada@example.com",
        "is_staff": True,
        "registered_at": "2024-03-01T09:30:00Z",
    }
    assert (added.event_type, added.stream_type, added.stream_id) == (
        "product.added",
        "product",
        str(pen),
    )
    assert added.payload == {"product_id": pen, "name": "Pen", "price": "1.99"}


def test_an_email_address_registers_once(app: App) -> None:
    app.user("Ada")
    with pytest.raises(EmailTakenError) as info:
        app.send(RegisterUser(name="Other Ada", email="ada@example.com"))
    assert info.value.email == "ada@example.com"
    assert len(app.rows(users)) == 1
    assert app.event_types() == ["user.registered"]


def test_api_tokens_are_returned_once_and_stored_hashed(app: App) -> None:
    ada = app.user()
    app.clock.advance(hours=1)
    token = app.send(IssueApiToken(user_id=ada))

    assert app.rows(api_tokens) == [(hash_token(token), ada, T0 + dt.timedelta(hours=1))]
    everything = [app.rows(table) for table in (*metadata.sorted_tables, event_log)]
    assert token not in repr(everything), "the plain token must never reach the database"
    assert app.event_types() == ["user.registered"], "issuing a token records no event"


def test_a_token_for_an_unknown_user_is_refused(app: App) -> None:
    with pytest.raises(UnknownUserError) as info:
        app.send(IssueApiToken(user_id=UserId(404)))
    assert info.value.user_id == 404
    assert app.rows(api_tokens) == []


# -- creating orders ------------------------------------------------------------------------


def test_creates_an_order_with_its_lines_first_history_row_and_event(app: App) -> None:
    ada = app.user()
    pen, ink = app.product("Pen", "1.99"), app.product("Ink", "12.50")

    order_id = app.order(ada, (ink, 3), (pen, 2))

    assert app.rows(orders) == [
        (order_id, ada, S.PENDING, Decimal("41.48"), "1 Rue de Rivoli", "Paris", "75001", "FR", T0)
    ]
    assert app.rows(order_items) == [
        (order_id, pen, 2, Decimal("1.99")),
        (order_id, ink, 3, Decimal("12.50")),
    ]
    assert [row[1:] for row in app.rows(order_status_history)] == [
        (order_id, None, S.PENDING, None, T0)
    ]
    created = app.events()[-1]
    assert (created.event_type, created.stream_type, created.stream_id) == (
        "order.created",
        "order",
        str(order_id),
    )
    assert created.metadata["command_type"] == "CreateOrder"
    assert created.payload == {
        "order_id": order_id,
        "user_id": ada,
        "customer_name": "Ada",
        "items": [
            {"product_id": pen, "product_name": "Pen", "unit_price": "1.99", "quantity": 2},
            {"product_id": ink, "product_name": "Ink", "unit_price": "12.50", "quantity": 3},
        ],
        "total": "41.48",
        "shipping_address": {
            "line1": "1 Rue de Rivoli",
            "city": "Paris",
            "postal_code": "75001",
            "country": "FR",
        },
        "status": "pending",
        "placed_at": "2024-03-01T09:30:00Z",
    }


def test_an_unknown_user_cannot_order_and_nothing_is_written(app: App) -> None:
    pen = app.product("Pen", "1.99")
    before = app.order_state()

    with pytest.raises(UnknownUserError) as info:
        app.order(UserId(404), (pen, 1))

    assert info.value.user_id == 404
    assert app.order_state() == before


def test_unknown_and_inactive_products_are_named_and_nothing_is_written(app: App) -> None:
    ada = app.user()
    pen, retired = app.product("Pen", "1.99"), app.product("Quill", "30.00")
    with app.engine.begin() as conn:
        conn.execute(sa.update(products).where(products.c.id == retired).values(active=False))
    before = app.order_state()

    with pytest.raises(UnknownProductError) as info:
        app.order(ada, (ProductId(405), 1), (pen, 1), (retired, 1), (ProductId(404), 2))

    assert info.value.product_ids == tuple(sorted((retired, 404, 405)))
    assert app.order_state() == before


# -- changing status ------------------------------------------------------------------------


def test_status_changes_add_history_rows_and_events(app: App) -> None:
    ada = app.user()
    order_id = app.order(ada, (app.product("Pen", "1.99"), 2))
    moves = [(S.CONFIRMED, None), (S.SHIPPED, "tracking FR123"), (S.DELIVERED, "signed")]

    for status, note in moves:
        app.clock.advance(days=1)
        app.move(order_id, status, note)

    assert app.rows(orders)[0][2] == S.DELIVERED
    day = dt.timedelta(days=1)
    assert [row[1:] for row in app.rows(order_status_history)] == [
        (order_id, None, S.PENDING, None, T0),
        (order_id, S.PENDING, S.CONFIRMED, None, T0 + day),
        (order_id, S.CONFIRMED, S.SHIPPED, "tracking FR123", T0 + 2 * day),
        (order_id, S.SHIPPED, S.DELIVERED, "signed", T0 + 3 * day),
    ]
    changes = [e for e in app.events() if e.event_type == "order.status_changed"]
    assert {e.stream_id for e in changes} == {str(order_id)}
    assert changes[1].payload == {
        "order_id": order_id,
        "from_status": "confirmed",
        "to_status": "shipped",
        "note": "tracking FR123",
        "changed_at": "2024-03-03T09:30:00Z",
        "placed_at": "2024-03-01T09:30:00Z",
        "total": "3.98",
    }


@pytest.mark.parametrize("confirm_first", [False, True], ids=["from-pending", "from-confirmed"])
def test_an_order_can_be_cancelled_before_it_ships(app: App, confirm_first: bool) -> None:
    order_id = app.order(app.user(), (app.product("Pen", "1.99"), 1))
    if confirm_first:
        app.move(order_id, S.CONFIRMED)
    app.move(order_id, S.CANCELLED, "customer asked")
    assert app.rows(orders)[0][2] == S.CANCELLED


@pytest.mark.parametrize(
    ("path", "refused"),
    [([], S.SHIPPED), ([S.CONFIRMED, S.SHIPPED], S.CANCELLED), ([S.CANCELLED], S.CONFIRMED)],
    ids=["pending-to-shipped", "shipped-to-cancelled", "cancelled-to-confirmed"],
)
def test_an_illegal_transition_is_refused_and_nothing_changes(
    app: App, path: list[OrderStatus], refused: OrderStatus
) -> None:
    order_id = app.order(app.user(), (app.product("Pen", "1.99"), 1))
    for status in path:
        app.move(order_id, status)
    before = app.order_state()
    current = path[-1] if path else S.PENDING

    with pytest.raises(IllegalTransitionError) as info:
        app.move(order_id, refused)

    assert (info.value.from_status, info.value.to_status) == (current, refused)
    assert app.order_state() == before


def test_an_unknown_order_cannot_change_status(app: App) -> None:
    with pytest.raises(UnknownOrderError) as info:
        app.move(OrderId(404), S.CONFIRMED)
    assert info.value.order_id == 404
    assert app.events() == []


def test_every_recorded_event_decodes_back_to_its_class(app: App) -> None:
    ada = app.user()
    order_id = app.order(ada, (app.product("Pen", "1.99"), 2))
    app.move(order_id, S.CONFIRMED, "paid")

    decoded = [event_types.decode(stored) for stored in app.events()]

    assert [type(event) for event in decoded] == [
        UserRegistered,
        ProductAdded,
        OrderCreated,
        OrderStatusChanged,
    ]
    created = decoded[2]
    assert isinstance(created, OrderCreated)
    assert (created.total, created.placed_at) == (Decimal("3.98"), T0)


# -- baseline: a user's orders, newest first ------------------------------------------------


def test_lists_a_users_orders_newest_first_in_keyset_pages(app: App) -> None:
    ada, bob = app.user("Ada"), app.user("Bob")
    pen, ink = app.product("Pen", "1.99"), app.product("Ink", "12.50")
    placed: list[tuple[dt.datetime, OrderId]] = []
    for n in range(45):
        if n % 3 == 0:  # orders placed in threes at the same instant: ties broken by id
            app.clock.advance(minutes=7)
        placed.append((app.clock.now, app.order(ada, (pen, n + 1), (ink, 1))))
        if n % 10 == 0:
            app.order(bob, (pen, 1))  # never in Ada's list
    expected = [order_id for _, order_id in sorted(placed, reverse=True)]

    pages: list[list[OrderListItem]] = [app.list_user_orders(ada)]
    while pages[-1]:
        last = pages[-1][-1]
        pages.append(app.list_user_orders(ada, before=(last.placed_at, last.order_id)))

    assert [len(page) for page in pages] == [20, 20, 5, 0]
    assert [item.order_id for page in pages for item in page] == expected
    newest_time, newest_id = max(placed)
    assert pages[0][0] == OrderListItem(
        order_id=newest_id,
        status=S.PENDING,
        customer_name="Ada",
        total=Decimal("1.99") * 45 + Decimal("12.50"),
        item_count=2,
        placed_at=newest_time,
    )
    assert len(app.list_user_orders(ada, limit=3)) == 3
    assert app.list_user_orders(UserId(404)) == []


def test_a_page_size_below_one_is_refused(app: App) -> None:
    with pytest.raises(ValueError, match="limit must be at least 1"):
        app.list_user_orders(UserId(1), limit=0)


# -- baseline: one order in full ------------------------------------------------------------


def test_order_detail_has_customer_lines_and_history(app: App) -> None:
    ada = app.user()
    pen, ink = app.product("Pen", "1.99"), app.product("Ink", "12.50")
    order_id = app.order(ada, (ink, 3), (pen, 2))
    app.clock.advance(hours=2)
    app.move(order_id, S.CONFIRMED, "paid")

    assert app.get_order_detail(order_id) == OrderDetail(
        order_id=order_id,
        user_id=ada,
        customer_name="Ada",
        customer_email="ada@example.com",
        status=S.CONFIRMED,
        total=Decimal("41.48"),
        shipping_address=PARIS_VIEW,
        placed_at=T0,
        items=(
            OrderItemView(
                product_id=pen,
                product_name="Pen",
                unit_price=Decimal("1.99"),
                quantity=2,
                line_total=Decimal("3.98"),
            ),
            OrderItemView(
                product_id=ink,
                product_name="Ink",
                unit_price=Decimal("12.50"),
                quantity=3,
                line_total=Decimal("37.50"),
            ),
        ),
        history=(
            StatusChangeView(from_status=None, to_status=S.PENDING, note=None, changed_at=T0),
            StatusChangeView(
                from_status=S.PENDING,
                to_status=S.CONFIRMED,
                note="paid",
                changed_at=T0 + dt.timedelta(hours=2),
            ),
        ),
    )


def test_order_detail_keeps_the_price_paid_when_the_price_changes(app: App) -> None:
    pen = app.product("Pen", "1.99")
    order_id = app.order(app.user(), (pen, 2))
    with app.engine.begin() as conn:
        conn.execute(sa.update(products).where(products.c.id == pen).values(price=Decimal("5")))

    detail = app.get_order_detail(order_id)

    assert detail is not None
    assert (detail.total, detail.items[0].unit_price) == (Decimal("3.98"), Decimal("1.99"))


def test_order_detail_of_an_unknown_order_is_none(app: App) -> None:
    assert app.get_order_detail(OrderId(404)) is None


# -- baseline: daily analytics --------------------------------------------------------------


def test_daily_analytics_groups_by_utc_day_and_current_status(app: App) -> None:
    ada = app.user()
    pen, ink = app.product("Pen", "1.99"), app.product("Ink", "12.50")

    def order_at(when: dt.datetime, *lines: tuple[ProductId, int]) -> OrderId:
        app.clock.now = when
        return app.order(ada, *lines)

    march = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)
    last_second = order_at(march + dt.timedelta(hours=23, minutes=59, seconds=59), (pen, 1))
    order_at(march - dt.timedelta(microseconds=1), (ink, 9))  # Feb 29: before the range
    order_at(march + dt.timedelta(days=1), (ink, 1))  # midnight: the 2nd
    tokyo_3rd = order_at(
        march + dt.timedelta(days=1, hours=16), (pen, 2), (ink, 2)
    )  # 01:00 3rd JST
    order_at(march + dt.timedelta(days=1, hours=20), (pen, 3))
    order_at(march + dt.timedelta(days=2), (ink, 4))  # the 3rd: after the range
    app.move(last_second, S.CONFIRMED)
    app.move(tokyo_3rd, S.CANCELLED)

    stats = app.daily_analytics(dt.date(2024, 3, 1), dt.date(2024, 3, 2))

    assert stats == [
        DailyStat(
            day=dt.date(2024, 3, 1), status=S.CONFIRMED, order_count=1, revenue=Decimal("1.99")
        ),
        DailyStat(
            day=dt.date(2024, 3, 2), status=S.CANCELLED, order_count=1, revenue=Decimal("28.98")
        ),
        DailyStat(
            day=dt.date(2024, 3, 2), status=S.PENDING, order_count=2, revenue=Decimal("18.47")
        ),
    ]
    assert all(isinstance(stat.revenue, Decimal) for stat in stats)
    assert app.daily_analytics(dt.date(2024, 3, 3), dt.date(2024, 3, 3)) == [
        DailyStat(
            day=dt.date(2024, 3, 3), status=S.PENDING, order_count=1, revenue=Decimal("50.00")
        )
    ]
    assert app.daily_analytics(dt.date(2024, 4, 1), dt.date(2024, 4, 30)) == []


# -- the same commands, the same answers ----------------------------------------------------


def _run_scenario(app: App) -> dict[str, Any]:
    """Send a fixed, varied history of commands, then ask every baseline question."""
    rng = random.Random(20240301)
    customers = [app.user(name) for name in ("Ada", "Bob", "Cyd")]
    catalogue = [
        app.product(name, price)
        for name, price in [("Pen", "1.99"), ("Ink", "12.50"), ("Pad", "3.10"), ("Nib", "0.35")]
    ]
    order_ids = []
    for _ in range(60):
        app.clock.advance(hours=rng.choice([0, 1, 5, 11]))
        chosen = rng.sample(catalogue, rng.randint(1, len(catalogue)))
        lines = [(product, rng.randint(1, 7)) for product in chosen]
        order_id = app.order(rng.choice(customers), *lines)
        order_ids.append(order_id)
        moves = (S.CONFIRMED, S.SHIPPED, S.DELIVERED)[: rng.randint(0, 3)]
        for status in moves:
            app.clock.advance(minutes=rng.randint(1, 90))
            app.move(order_id, status, rng.choice([None, "ok"]))
        if len(moves) < 2 and rng.random() < 0.3:  # not shipped yet: may be cancelled
            app.move(order_id, S.CANCELLED, "changed my mind")
    pages = {}
    for user_id in customers:
        page = app.list_user_orders(user_id, limit=7)
        pages[user_id] = [page]
        while page:
            page = app.list_user_orders(
                user_id, before=(page[-1].placed_at, page[-1].order_id), limit=7
            )
            pages[user_id].append(page)
    return {
        "pages": pages,
        "details": [app.get_order_detail(order_id) for order_id in order_ids],
        "analytics": app.daily_analytics(T0.date(), (T0 + dt.timedelta(days=30)).date()),
        "events": [(e.event_type, e.stream_id, e.payload) for e in app.events()],
    }


def test_sqlite_and_postgres_answer_the_same_commands_identically(
    tmp_path: Path, postgres_database: Database
) -> None:
    answers = []
    for engine in (_sqlite(tmp_path), _postgres(postgres_database)):
        answers.append(_run_scenario(App(engine)))
        engine.dispose()
    on_sqlite, on_postgres = answers

    assert len(on_sqlite["analytics"]) > 5, "the scenario spans several days and statuses"
    for key in ("pages", "details", "analytics", "events"):
        assert on_sqlite[key] == on_postgres[key], f"{key} differ between SQLite and PostgreSQL"
