"""The reference app's read side, end to end: commands in, the three queries answered.

Each scenario runs under every projection strategy (``inline``: read models in the write
database; ``sync``; ``async``: a background worker, with queries waiting on the command's
token), on SQLite (``write.db`` and ``read.db``) and on PostgreSQL (one database, sessions in
Asia/Tokyo to prove days are UTC days), through ``Mediator`` and ``AsyncMediator``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session, sessionmaker

from cqrs_kit import AsyncMediator, AtLeast, ConfigurationError, Mediator, Receipt, Registry
from cqrs_kit.eventlog import EventLog
from cqrs_kit.middleware.projection import (
    AsyncConsistencyMiddleware,
    AsyncProjectionMiddleware,
    ConsistencyMiddleware,
    ProjectionMiddleware,
)
from cqrs_kit.middleware.transaction import (
    AsyncSqlAlchemyUnitOfWork,
    AsyncTransactionMiddleware,
    SqlAlchemyUnitOfWork,
    TransactionMiddleware,
)
from cqrs_kit.persistence import async_sqlite_engine, sqlite_engine
from cqrs_kit.projections import (
    AsyncProjectionWorker,
    ProjectionEngine,
    ProjectionWorker,
    Strategy,
)
from reference_app.read.cursor import CursorCodec, InvalidCursorError
from reference_app.read.database import ReadDatabase
from reference_app.read.handlers import registry as read_registry
from reference_app.read.projections import PROJECTION_NAMES, build_projections
from reference_app.read.queries import GetDailyAnalytics, GetOrderDetail, ListUserOrders, OrderPage
from reference_app.views import (
    AddressView,
    DailyStat,
    OrderDetail,
    OrderItemView,
    OrderListItem,
    StatusChangeView,
)
from reference_app.write import schema as write_schema
from reference_app.write.domain import Address, OrderId, OrderStatus, ProductId, UserId
from reference_app.write.handlers import Clock, dependencies
from reference_app.write.handlers import registry as write_registry
from reference_app.write.messages import (
    AddProduct,
    CreateOrder,
    OrderLine,
    RegisterUser,
    UpdateOrderStatus,
    event_types,
)
from tests.databases import Database

T0 = dt.datetime(2024, 3, 1, 9, 30, tzinfo=dt.UTC)
PARIS = Address(line1="1 Rue de Rivoli", city="Paris", postal_code="75001", country="FR")
PARIS_VIEW = AddressView(**PARIS.model_dump())
SECRET = b"read-side-tests-cursor-secret"
TOKYO = "Asia/Tokyo"
S = OrderStatus


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


def merged(*registries: Registry) -> Registry:
    """One registry holding the handlers of several (a mediator takes one)."""
    registry = Registry()
    for source in registries:
        for registration in source.registrations():
            registry.register(registration.spec.message_type, registration.spec.handler)
    return registry


class _JoinedUnitOfWork(SqlAlchemyUnitOfWork):
    """The sync face of an async unit of work: its session's sync ``Session``; records on it."""

    def __init__(self, session: Session, outer: AsyncSqlAlchemyUnitOfWork) -> None:
        super().__init__(session)
        self.outer = outer

    def record(self, event: Any, **options: Any) -> None:
        self.outer.record(event, **options)


def _bridged(handler: Any, *, wants_clock: bool) -> Any:
    async def handle(command: Any, *, uow: AsyncSqlAlchemyUnitOfWork, clock: Clock) -> Any:
        def run(session: Session) -> Any:
            options: dict[str, Any] = {"uow": _JoinedUnitOfWork(session, uow)}
            if wants_clock:
                options["clock"] = clock
            return handler(command, **options)

        return await uow.session.run_sync(run)

    return handle


def async_write_registry() -> Registry:
    """The write side's handlers for AsyncMediator: each runs in the AsyncSession's ``run_sync``.

    The reference app's write handlers are synchronous (they take a ``Session``).
    """
    registry = Registry()
    for registration in write_registry.registrations():
        wants_clock = any(d.name == "clock" for d in registration.spec.dependencies)
        handler = _bridged(registration.spec.handler, wants_clock=wants_clock)
        registry.register(registration.spec.message_type, handler)
    return registry


@dataclass
class Backend:
    """The engines of one database backend."""

    write: sa.Engine
    read: sa.Engine
    async_write: Callable[[], AsyncEngine]  # called inside the event loop that uses it


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        write, read = sqlite_engine(tmp_path / "write.db"), sqlite_engine(tmp_path / "read.db")
        yield Backend(write, read, lambda: async_sqlite_engine(tmp_path / "write.db"))
        read.dispose()
    else:
        database: Database = request.getfixturevalue("postgres_database")
        write = sa.create_engine(
            database.sync_url, connect_args={"options": f"-c timezone={TOKYO}"}
        )

        def async_write() -> AsyncEngine:
            return create_async_engine(
                database.async_url, connect_args={"server_settings": {"timezone": TOKYO}}
            )

        yield Backend(write, write, async_write)  # one database; read models in own tables
    write.dispose()


class ReadSideApp:
    """The write side, the projections and the read handlers behind one mediator.

    ``send`` and ``ask`` are synchronous for both mediators: with ``AsyncMediator`` they
    run the coroutine in one event loop kept for the app's life (the async worker's loop).
    Every ``ask`` waits for the last command's token, which only the async strategy needs.
    """

    def __init__(self, backend: Backend, strategy: Strategy, *, asynchronous: bool) -> None:
        write_schema.create_write_model(backend.write)
        self.backend = backend
        self.strategy = strategy
        self.clock = FakeClock(T0)
        self.log = EventLog(event_types)
        self.engine = ProjectionEngine(
            event_log=self.log,
            write_engine=backend.write,
            read_engine=backend.read,
            projections=build_projections(dict.fromkeys(PROJECTION_NAMES, strategy)),
            write_metadata=write_schema.metadata,
            retry_delay=0.001,
        )
        self.engine.setup()
        self.models = backend.write if strategy is Strategy.INLINE else backend.read
        self.reader = ReadDatabase(self.models)
        resolver = dependencies(self.clock)
        resolver["reader"] = self.reader
        resolver["cursors"] = CursorCodec(SECRET)
        self.token: int | None = None
        self._runner: asyncio.Runner | None = None
        if asynchronous:
            self._runner = asyncio.Runner()
            self._async_write = self._runner.run(self._start_async(resolver))
        else:
            self.worker = ProjectionWorker(self.engine) if strategy is Strategy.ASYNC else None
            if self.worker is not None:
                self.worker.start()
            self.mediator: Mediator | AsyncMediator = Mediator(
                merged(write_registry, read_registry),
                middleware=[
                    ConsistencyMiddleware(self.engine),
                    ProjectionMiddleware(self.engine, self.worker),
                    TransactionMiddleware(
                        sessionmaker(backend.write),
                        self.log,
                        after_append=[self.engine.apply_inline],
                    ),
                ],
                resolver=resolver,
            )

    async def _start_async(self, resolver: Any) -> AsyncEngine:
        async_write = self.backend.async_write()
        self.async_worker = (
            AsyncProjectionWorker(self.engine) if self.strategy is Strategy.ASYNC else None
        )
        if self.async_worker is not None:
            self.async_worker.start()
        self.mediator = AsyncMediator(
            merged(async_write_registry(), read_registry),
            middleware=[
                AsyncConsistencyMiddleware(self.engine),
                AsyncProjectionMiddleware(self.engine, self.async_worker),
                AsyncTransactionMiddleware(
                    async_sessionmaker(async_write),
                    self.log,
                    after_append=[self.engine.apply_inline],
                ),
            ],
            resolver=resolver,
        )
        return async_write

    def send(self, command: Any) -> Any:
        receipt = Receipt()
        if isinstance(self.mediator, AsyncMediator):
            assert self._runner is not None
            result = self._runner.run(self.mediator.send(command, receipt=receipt))
        else:
            result = self.mediator.send(command, receipt=receipt)
        self.token = receipt.token
        return result

    def ask(self, query: Any) -> Any:
        consistency = AtLeast(self.token, timeout=10)
        if isinstance(self.mediator, AsyncMediator):
            assert self._runner is not None
            return self._runner.run(self.mediator.ask(query, consistency=consistency))
        return self.mediator.ask(query, consistency=consistency)

    def close(self) -> None:
        if self._runner is not None:
            self._runner.run(self._stop_async())
            self._runner.close()
        elif self.worker is not None:
            self.worker.stop()
        self.reader.close()
        self.engine.close()

    async def _stop_async(self) -> None:
        if self.async_worker is not None:
            await self.async_worker.stop()
        await self._async_write.dispose()

    # -- shortcuts ---------------------------------------------------------------------------

    def user(self, name: str) -> UserId:
        return UserId(self.send(RegisterUser(name=name, email=f"{name.lower()}@example.com")))

    def product(self, name: str, price: str) -> ProductId:
        return ProductId(self.send(AddProduct(name=name, price=Decimal(price))))

    def order(self, user_id: UserId, *lines: tuple[ProductId, int]) -> OrderId:
        items = tuple(OrderLine(product_id=p, quantity=q) for p, q in lines)
        return OrderId(self.send(CreateOrder(user_id=user_id, items=items, shipping_address=PARIS)))

    def move(self, order_id: OrderId, status: OrderStatus, note: str | None = None) -> None:
        self.send(UpdateOrderStatus(order_id=order_id, status=status, note=note))

    def pages(self, user_id: UserId) -> list[OrderPage]:
        pages = [self.ask(ListUserOrders(user_id=user_id))]
        while pages[-1].next_cursor is not None:
            pages.append(self.ask(ListUserOrders(user_id=user_id, cursor=pages[-1].next_cursor)))
        return pages


@pytest.fixture(params=list(Strategy), ids=lambda strategy: strategy.value)
def strategy(request: pytest.FixtureRequest) -> Strategy:
    return Strategy(request.param)


@pytest.fixture(params=["Mediator", "AsyncMediator"])
def app(
    request: pytest.FixtureRequest, backend: Backend, strategy: Strategy
) -> Iterator[ReadSideApp]:
    app = ReadSideApp(backend, strategy, asynchronous=request.param == "AsyncMediator")
    yield app
    app.close()


@pytest.fixture
def sync_app(backend: Backend, strategy: Strategy) -> Iterator[ReadSideApp]:
    """For behaviour of the read models, the same whichever mediator sends the commands."""
    app = ReadSideApp(backend, strategy, asynchronous=False)
    yield app
    app.close()


# -- the three queries ----------------------------------------------------------------------


def test_the_queries_answer_from_the_read_models(app: ReadSideApp) -> None:
    ada, bob = app.user("Ada"), app.user("Bob")
    pen, ink = app.product("Pen", "1.99"), app.product("Ink", "12.50")
    first = app.order(ada, (ink, 3), (pen, 2))  # 09:30 on March 1st
    app.clock.now = T0.replace(hour=23, minute=59, second=59)  # March 2nd already in Tokyo
    second = app.order(ada, (pen, 1))
    app.clock.now = T0.replace(day=2, hour=0, minute=0)  # midnight UTC: March 2nd
    bobs = app.order(bob, (ink, 1))
    app.clock.now += dt.timedelta(hours=2)
    app.move(first, S.CONFIRMED, "paid")
    app.move(first, S.SHIPPED, "tracking FR123")
    app.move(second, S.CANCELLED)

    assert app.ask(ListUserOrders(user_id=ada)) == OrderPage(
        items=(
            OrderListItem(
                order_id=second,
                status=S.CANCELLED,
                customer_name="Ada",
                total=Decimal("1.99"),
                item_count=1,
                placed_at=T0.replace(hour=23, minute=59, second=59),
            ),
            OrderListItem(
                order_id=first,
                status=S.SHIPPED,
                customer_name="Ada",
                total=Decimal("41.48"),
                item_count=2,
                placed_at=T0,
            ),
        ),
        next_cursor=None,
    )
    assert [item.order_id for item in app.ask(ListUserOrders(user_id=bob)).items] == [bobs]
    assert app.ask(ListUserOrders(user_id=UserId(404))) == OrderPage(items=(), next_cursor=None)

    changed_at = T0.replace(day=2, hour=2, minute=0)
    assert app.ask(GetOrderDetail(order_id=first)) == OrderDetail(
        order_id=first,
        user_id=ada,
        customer_name="Ada",
        customer_email="ada@example.com",
        status=S.SHIPPED,
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
                from_status=S.PENDING, to_status=S.CONFIRMED, note="paid", changed_at=changed_at
            ),
            StatusChangeView(
                from_status=S.CONFIRMED,
                to_status=S.SHIPPED,
                note="tracking FR123",
                changed_at=changed_at,
            ),
        ),
    )
    assert app.ask(GetOrderDetail(order_id=OrderId(404))) is None

    stats = app.ask(GetDailyAnalytics(start=dt.date(2024, 3, 1), end=dt.date(2024, 3, 2)))
    assert stats == [
        DailyStat(
            day=dt.date(2024, 3, 1), status=S.CANCELLED, order_count=1, revenue=Decimal("1.99")
        ),
        DailyStat(
            day=dt.date(2024, 3, 1), status=S.SHIPPED, order_count=1, revenue=Decimal("41.48")
        ),
        DailyStat(
            day=dt.date(2024, 3, 2), status=S.PENDING, order_count=1, revenue=Decimal("12.50")
        ),
    ], "each order counts once, on its UTC day, in its current status"
    assert app.ask(GetDailyAnalytics(start=dt.date(2024, 3, 2), end=dt.date(2024, 3, 9))) == [
        stats[-1]
    ]

    page, detail = app.ask(ListUserOrders(user_id=ada)), app.ask(GetOrderDetail(order_id=first))
    assert detail is not None
    for status in (page.items[0].status, detail.status, stats[0].status):
        assert type(status) is OrderStatus, "an enum member, not its value"
    for money in (page.items[0].total, detail.total, detail.items[0].line_total, stats[0].revenue):
        assert type(money) is Decimal
    for moment in (page.items[0].placed_at, detail.placed_at, detail.history[-1].changed_at):
        assert moment.utcoffset() == dt.timedelta(0), f"{moment!r} is not in UTC"

    if app.backend.write is not app.backend.read:  # SQLite: two files
        in_write_db = sa.inspect(app.backend.write).has_table("order_summary")
        assert in_write_db is (app.strategy is Strategy.INLINE), "read models stay in read.db"


def test_rebuilt_read_models_answer_the_same(sync_app: ReadSideApp) -> None:
    app = sync_app
    ada = app.user("Ada")
    pen = app.product("Pen", "1.99")
    orders = []
    for hours in range(6):
        app.clock.now = T0 + dt.timedelta(hours=7 * hours)
        orders.append(app.order(ada, (pen, hours + 1)))
    app.move(orders[0], S.CONFIRMED)
    app.move(orders[1], S.CANCELLED)

    def answers() -> list[Any]:
        return [
            app.pages(ada),
            [app.ask(GetOrderDetail(order_id=order_id)) for order_id in orders],
            app.ask(GetDailyAnalytics(start=T0.date(), end=T0.date() + dt.timedelta(days=3))),
        ]

    before = answers()
    for name in PROJECTION_NAMES:
        app.engine.rebuild(name)
    assert answers() == before


# -- pages and cursors ----------------------------------------------------------------------


def test_pages_through_45_orders_newest_first(app: ReadSideApp) -> None:
    ada, bob = app.user("Ada"), app.user("Bob")
    pen = app.product("Pen", "1.99")
    placed: list[tuple[dt.datetime, OrderId]] = []
    for n in range(45):
        if n % 3 == 0:  # orders placed in threes at the same instant: ties broken by id
            app.clock.now += dt.timedelta(minutes=7)
        placed.append((app.clock.now, app.order(ada, (pen, n + 1))))
        if n % 10 == 0:
            app.order(bob, (pen, 1))  # never in Ada's list

    pages = app.pages(ada)

    assert [len(page.items) for page in pages] == [20, 20, 5]
    assert [page.next_cursor is None for page in pages] == [False, False, True]
    expected = [order_id for _, order_id in sorted(placed, reverse=True)]
    assert [item.order_id for page in pages for item in page.items] == expected

    cursor = pages[0].next_cursor
    assert cursor is not None
    tampered = cursor[:-2] + ("A" if cursor[-2] != "A" else "B") + cursor[-1]
    with pytest.raises(InvalidCursorError):
        app.ask(ListUserOrders(user_id=ada, cursor=tampered))
    with pytest.raises(InvalidCursorError, match="another user"):
        app.ask(ListUserOrders(user_id=bob, cursor=cursor))
    with pytest.raises(InvalidCursorError):
        app.ask(ListUserOrders(user_id=ada, cursor="not a cursor"))


def test_exactly_one_page_of_orders_has_no_next_cursor(sync_app: ReadSideApp) -> None:
    ada = sync_app.user("Ada")
    pen = sync_app.product("Pen", "1.99")
    for _ in range(20):
        sync_app.clock.now += dt.timedelta(seconds=1)
        sync_app.order(ada, (pen, 1))

    (page,) = sync_app.pages(ada)

    assert len(page.items) == 20
    assert page.next_cursor is None


# -- ReadDatabase ---------------------------------------------------------------------------

_counters = sa.MetaData()
_counter = sa.Table("counter", _counters, sa.Column("n", sa.Integer, primary_key=True))
_count = sa.select(sa.func.count()).select_from(_counter)


@pytest.fixture
def counted(backend: Backend) -> Iterator[tuple[sa.Engine, ReadDatabase]]:
    _counters.create_all(backend.read)
    reader = ReadDatabase(backend.read)
    yield backend.read, reader
    reader.close()


@pytest.fixture
def sqlite_counted(tmp_path: Path) -> Iterator[tuple[sa.Engine, ReadDatabase]]:
    engine = sqlite_engine(tmp_path / "read.db")
    _counters.create_all(engine)
    reader = ReadDatabase(engine)
    yield engine, reader
    reader.close()
    engine.dispose()


@pytest.fixture
def postgres_reader(postgres_database: Database) -> Iterator[tuple[sa.Engine, ReadDatabase]]:
    engine = sa.create_engine(postgres_database.sync_url)
    reader = ReadDatabase(engine)
    yield engine, reader
    reader.close()
    engine.dispose()


def test_a_kept_connection_sees_every_commit(counted: tuple[sa.Engine, ReadDatabase]) -> None:
    engine, reader = counted
    with reader.connect() as connection:
        first = connection.connection.dbapi_connection
    assert reader.scalar(_count) == 0

    for n in range(1, 4):
        with engine.begin() as writing:
            writing.execute(sa.insert(_counter).values(n=n))
        assert reader.scalar(_count) == n, "a query never reads from an old snapshot"
        with reader.connect() as connection:
            assert connection.execute(_count).scalar() == n
            again = connection.connection.dbapi_connection
        assert again is first, "connections are kept, not reopened per query"


def test_queries_from_many_threads_get_the_right_answers(
    counted: tuple[sa.Engine, ReadDatabase],
) -> None:
    engine, reader = counted
    with engine.begin() as connection:
        connection.execute(sa.insert(_counter), [{"n": n} for n in range(1, 11)])
    by_n = sa.select(_counter.c.n).where(_counter.c.n == sa.bindparam("n"))
    wrong: list[tuple[int, Any]] = []

    def query(offset: int) -> None:
        for i in range(40):
            n = (offset + i) % 10 + 1
            rows = reader.all(by_n, {"n": n})
            if [row.n for row in rows] != [n]:
                wrong.append((n, rows))

    threads = [threading.Thread(target=query, args=(offset,)) for offset in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []


def test_driver_rows_keep_the_connection_and_see_every_commit(
    sqlite_counted: tuple[sa.Engine, ReadDatabase],
) -> None:
    engine, reader = sqlite_counted
    count = "SELECT count(*) FROM counter"
    assert reader.driver_rows(count) == [(0,)]
    with reader.connect() as connection:
        first = connection.connection.dbapi_connection

    for n in range(1, 4):
        with engine.begin() as writing:
            writing.execute(sa.insert(_counter).values(n=n))
        assert reader.driver_rows(count) == [(n,)], "a query never reads from an old snapshot"
        assert reader.scalar(_count) == n, "the same connection serves SQLAlchemy statements"
    with reader.connect() as connection:
        assert connection.connection.dbapi_connection is first, "one connection, kept"
    reader.close()
    assert connection.closed


def test_a_failed_sqlite_statement_leaves_the_connection_usable(
    sqlite_counted: tuple[sa.Engine, ReadDatabase],
) -> None:
    _engine, reader = sqlite_counted

    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        reader.driver_rows("SELECT * FROM missing")
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        reader.driver_rows("INSERT INTO counter (n) VALUES (1)")

    assert reader.driver_rows("SELECT count(*) FROM counter WHERE n > ?", (0,)) == [(0,)]
    assert reader.scalar(_count) == 0


def test_driver_rows_follow_a_connection_that_reconnected(
    sqlite_counted: tuple[sa.Engine, ReadDatabase],
) -> None:
    _engine, reader = sqlite_counted
    assert reader.driver_rows("SELECT count(*) FROM counter") == [(0,)]  # driver remembered
    with reader.connect() as connection:
        before = connection.connection.driver_connection
        connection.invalidate()  # closes the driver connection
        assert connection.execute(_count).scalar() == 0  # SQLAlchemy reconnects
        assert connection.connection.driver_connection is not before

    for _ in range(3):
        assert reader.driver_rows("SELECT count(*) FROM counter") == [(0,)]


def test_statement_listeners_see_the_driver_rows_statements(
    sqlite_counted: tuple[sa.Engine, ReadDatabase],
) -> None:
    _engine, reader = sqlite_counted
    assert reader.driver_rows("SELECT count(*) FROM counter") == [(0,)]  # parked, driver known
    seen: list[str] = []

    def listen(*args: Any) -> None:
        seen.append(args[2])

    with reader.connect() as connection:
        sa.event.listen(connection, "before_cursor_execute", listen)

    assert reader.driver_rows("SELECT n FROM counter WHERE n = ?", (1,)) == []
    assert seen == ["SELECT n FROM counter WHERE n = ?"]


def test_a_server_connection_is_kept_outside_the_engines_pool(
    postgres_reader: tuple[sa.Engine, ReadDatabase],
) -> None:
    engine, reader = postgres_reader
    pid = "SELECT pg_backend_pid()"

    first = reader.driver_rows(pid)
    assert reader.driver_rows(pid) == first, "the connection is kept"
    assert reader.scalar(sa.select(sa.func.pg_backend_pid())) == first[0][0]
    assert engine.pool.checkedout() == 0, "a parked connection holds no slot of the pool"  # type: ignore[attr-defined]
    reader.close()
    with engine.connect() as connection:
        alive = connection.execute(
            sa.text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"),
            {"pid": first[0][0]},
        ).scalar()
    assert alive == 0, "close() closes it"


@pytest.mark.parametrize("path", ["driver", "sqlalchemy"])
def test_a_query_on_a_dropped_server_connection_runs_again_on_a_new_one(
    postgres_reader: tuple[sa.Engine, ReadDatabase], path: str
) -> None:
    engine, reader = postgres_reader

    def backend_pid() -> int:
        if path == "driver":
            return int(reader.driver_rows("SELECT pg_backend_pid()")[0][0])
        return int(reader.scalar(sa.select(sa.func.pg_backend_pid())))

    parked = backend_pid()
    with engine.connect() as admin:
        assert admin.execute(sa.select(sa.func.pg_terminate_backend(parked))).scalar()

    again = backend_pid()

    assert again != parked
    assert backend_pid() == again, "the new connection is kept in its place"


def test_a_query_error_on_a_live_server_connection_is_not_retried(
    postgres_reader: tuple[sa.Engine, ReadDatabase],
) -> None:
    _, reader = postgres_reader
    pid = reader.driver_rows("SELECT pg_backend_pid()")

    with pytest.raises(Exception, match="division by zero"):
        reader.driver_rows("SELECT 1 / 0")

    assert reader.driver_rows("SELECT pg_backend_pid()") == pid, "the connection is kept"


def test_keep_bounds_the_parked_connections(counted: tuple[sa.Engine, ReadDatabase]) -> None:
    engine, _ = counted
    reader = ReadDatabase(engine, keep=1)
    first, second = reader.connect(), reader.connect()
    one, two = first.__enter__(), second.__enter__()

    second.__exit__(None, None, None)
    first.__exit__(None, None, None)

    assert not two.closed, "parked"
    assert one.closed, "one connection is parked already: this one goes"
    with reader.connect() as connection:
        assert connection is two
    reader.close()
    with pytest.raises(ValueError, match="keep"):
        ReadDatabase(engine, keep=-1)


def test_sqlite_reads_cannot_write(tmp_path: Path) -> None:
    engine = sqlite_engine(tmp_path / "read.db")
    _counters.create_all(engine)
    reader = ReadDatabase(engine)
    with (
        pytest.raises(OperationalError, match="readonly"),
        reader.connect() as connection,
    ):
        connection.execute(sa.insert(_counter).values(n=1))
    reader.close()
    engine.dispose()


def test_close_closes_the_kept_connections(tmp_path: Path) -> None:
    engine = sqlite_engine(tmp_path / "read.db")
    reader = ReadDatabase(engine)
    with reader.connect() as connection:
        pass
    assert not connection.closed, "kept for the next query"
    reader.close()
    assert connection.closed
    engine.dispose()


def test_an_in_memory_sqlite_database_is_refused() -> None:
    with pytest.raises(ValueError, match="file"):
        ReadDatabase(sa.create_engine("sqlite://"))


# -- building the projections ---------------------------------------------------------------


def test_projections_run_sync_unless_told_otherwise() -> None:
    projections = build_projections({"order_analytics": "async", "order_detail": Strategy.INLINE})

    assert {p.name: p.strategy for p in projections} == {
        "order_summary": Strategy.SYNC,
        "order_detail": Strategy.INLINE,
        "order_analytics": Strategy.ASYNC,
    }
    assert [p.name for p in projections] == list(PROJECTION_NAMES)
    with pytest.raises(ConfigurationError, match="order_summaries"):
        build_projections({"order_summaries": "sync"})
    with pytest.raises(ValueError, match="eventually"):
        build_projections({"order_summary": "eventually"})
