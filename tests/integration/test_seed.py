"""The seeder: its data is what the commands and projections would have produced.

A small dataset (300 orders) is seeded into SQLite files, then checked three ways: every
query answered from the read models equals the baseline's answer from the write model; the
read models equal what a projection rebuild makes of the seeded event log, row for row; and
the app keeps working on top of it (new commands, projections catching up). The fast SQLite
path (raw ``sqlite3``) must store exactly what the SQLAlchemy Core path (used on PostgreSQL)
stores, which pins its value formats. Those datasets are seeded by two processes (the way
large ones are); seeding in one process must store exactly the same thing.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import sessionmaker

from cqrs_kit import Dependencies, Mediator
from cqrs_kit.eventlog import EventLog, event_log
from cqrs_kit.middleware.transaction import TransactionMiddleware
from cqrs_kit.persistence import sqlite_engine
from cqrs_kit.projections import ProjectionEngine
from reference_app import seed as seeding
from reference_app.baseline_handlers import baseline_registry
from reference_app.read.cursor import CursorCodec
from reference_app.read.database import ReadDatabase
from reference_app.read.handlers import registry as read_registry
from reference_app.read.projections import build_projections
from reference_app.read.queries import GetDailyAnalytics, GetOrderDetail, ListUserOrders
from reference_app.read.schema import order_analytics, order_detail, order_summary
from reference_app.seed import NOW, SeedError, SeedReport, loading, processes, seed, sinks
from reference_app.write.domain import Address, OrderId, OrderStatus, UserId
from reference_app.write.handlers import dependencies
from reference_app.write.handlers import registry as write_registry
from reference_app.write.messages import CreateOrder, OrderLine, UpdateOrderStatus, event_types
from reference_app.write.schema import (
    metadata as write_metadata,
)
from reference_app.write.schema import (
    order_items,
    order_status_history,
    orders,
    products,
    users,
)
from tests.answers import assert_identical
from tests.databases import Database

ORDERS = 300
USERS = 12  # few users, so some have several pages of orders
READ_TABLES = (order_summary, order_detail, order_analytics)
WRITE_TABLES = (users, products, orders, order_items, order_status_history, event_log)
FIRST_DAY = (NOW - dt.timedelta(days=365)).date()
LAST_DAY = (NOW - dt.timedelta(days=1)).date()


class Seeded:
    """A seeded write and read database, with mediators over both sides."""

    def __init__(self, directory: Path, **options: Any) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.write_engine = sqlite_engine(directory / "write.db")
        self.read_engine = sqlite_engine(directory / "read.db")
        self.report = seed(
            self.write_engine,
            self.read_engine,
            orders=options.pop("orders", ORDERS),
            users=options.pop("users", USERS),
            **options,
        )
        codec = CursorCodec(b"a test cursor secret")
        self.readers = [ReadDatabase(self.read_engine), ReadDatabase(self.write_engine)]
        self.read = Mediator(
            read_registry, resolver=Dependencies({"reader": self.readers[0], "cursors": codec})
        )
        self.baseline = Mediator(
            baseline_registry,
            resolver=Dependencies({"writer_reader": self.readers[1], "cursors": codec}),
        )

    def projection_engine(self) -> ProjectionEngine:
        return ProjectionEngine(
            event_log=EventLog(event_types),
            write_engine=self.write_engine,
            read_engine=self.read_engine,
            projections=build_projections(),
            write_metadata=write_metadata,
        )

    def rows(self, table: sa.Table) -> list[tuple[Any, ...]]:
        engine = self.read_engine if table in READ_TABLES else self.write_engine
        with engine.connect() as connection:
            query = sa.select(table).order_by(*table.primary_key.columns)
            return [tuple(row) for row in connection.execute(query)]

    def checkpoints(self) -> dict[str, int]:
        engine = self.projection_engine()
        try:
            return engine.positions(engine.names())
        finally:
            engine.close()

    def head(self) -> int:
        with self.write_engine.connect() as connection:
            return EventLog(event_types).head(connection)

    def close(self) -> None:
        for reader in self.readers:
            reader.close()
        self.write_engine.dispose()
        self.read_engine.dispose()


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    data = Seeded(tmp_path_factory.mktemp("seeded"), parallel=True)
    yield data
    data.close()


def _schema(path: Path) -> list[tuple[Any, ...]]:
    connection = sqlite3.connect(path)
    try:
        return connection.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name"
        ).fetchall()
    finally:
        connection.close()


def _journal_mode(path: Path) -> str:
    """The journal mode stored in the file (what a plain connection gets)."""
    connection = sqlite3.connect(path)
    try:
        return str(connection.execute("PRAGMA journal_mode").fetchone()[0])
    finally:
        connection.close()


def _raw_dump(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's stored values, as the database holds them (no type processing)."""
    connection = sqlite3.connect(path)
    try:
        names = [
            row[0]
            for row in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
            )
        ]
        return {
            name: connection.execute(f'SELECT * FROM "{name}" ORDER BY 1, 2').fetchall()  # noqa: S608
            for name in names
            if name != "projection_checkpoints"  # holds update times
        }
    finally:
        connection.close()


# -- what was written ------------------------------------------------------------------------


def test_report_counts_what_was_written(seeded: Seeded) -> None:
    report = seeded.report
    assert (report.orders, report.users) == (ORDERS, USERS)
    assert report.products == seeding.default_products(ORDERS)
    assert len(seeded.rows(orders)) == ORDERS
    assert len(seeded.rows(users)) == USERS
    assert len(seeded.rows(products)) == report.products
    assert len(seeded.rows(order_items)) == report.order_items
    assert len(seeded.rows(order_status_history)) == ORDERS + report.status_changes
    assert report.events == USERS + report.products + ORDERS + report.status_changes
    assert len(seeded.rows(event_log)) == report.events == seeded.head()
    assert len(seeded.rows(order_summary)) == len(seeded.rows(order_detail)) == ORDERS


def test_orders_look_like_a_year_of_business(seeded: Seeded) -> None:
    with seeded.write_engine.connect() as connection:
        rows = connection.execute(sa.select(orders).order_by(orders.c.id)).all()
        changes = connection.execute(sa.select(order_status_history.c.changed_at)).scalars().all()
    placed = [row.placed_at for row in rows]
    assert placed == sorted(placed), "order ids grow with placed_at"
    assert NOW - dt.timedelta(days=365) <= placed[0] < placed[-1] < NOW
    assert {row.status for row in rows} == set(OrderStatus), "every status occurs"
    per_user = [sum(1 for row in rows if row.user_id == user) for user in range(1, USERS + 1)]
    assert max(per_user) > 40, f"some customer has several pages of orders: {per_user}"
    assert max(changes) < NOW, "nothing happens after NOW"


def test_events_decode_to_the_payloads_the_commands_would_record(seeded: Seeded) -> None:
    with seeded.write_engine.connect() as connection:
        stored = EventLog(event_types).read(connection, limit=100_000)
    assert [event.position for event in stored] == list(range(1, len(stored) + 1))
    assert len({event.event_id for event in stored}) == len(stored)
    for event in stored:
        name, version, stream_type, payload = event_types.encode(event_types.decode(event))
        assert (name, version, stream_type) == (
            event.event_type,
            event.schema_version,
            event.stream_type,
        )
        assert payload == event.payload, f"position {event.position} re-encodes differently"
        assert event.metadata["source"] == "seed"
    assert {event.event_type for event in stored} == {
        "user.registered",
        "product.added",
        "order.created",
        "order.status_changed",
    }


def test_projection_checkpoints_are_at_the_log_head(seeded: Seeded) -> None:
    assert seeded.checkpoints() == dict.fromkeys(
        ("order_summary", "order_detail", "order_analytics"), seeded.head()
    )


def test_foreign_keys_hold_and_connection_settings_are_restored(seeded: Seeded) -> None:
    with seeded.write_engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA foreign_key_check").all() == []
        assert connection.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        indexes = {
            row[0]
            for row in connection.exec_driver_sql(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
            )
        }
    expected = {
        index.name for table in WRITE_TABLES for index in table.indexes if index.name is not None
    }
    assert expected <= indexes, "secondary indexes are rebuilt after the load"


# -- the read models answer like the write model -------------------------------------------


def test_every_users_pages_equal_the_baseline(seeded: Seeded) -> None:
    pages = 0
    for user_id in range(1, USERS + 1):
        cursor = None
        while True:
            query = ListUserOrders(user_id=UserId(user_id), cursor=cursor)
            page = seeded.read.ask(query)
            assert_identical(page, seeded.baseline.ask(query), f"user {user_id}, cursor {cursor}")
            pages += 1
            cursor = page.next_cursor
            if cursor is None:
                break
    assert pages > USERS, "some users have more than one page"


def test_order_details_equal_the_baseline(seeded: Seeded) -> None:
    for order_id in [*range(1, ORDERS + 1, 7), ORDERS, ORDERS + 1]:
        query = GetOrderDetail(order_id=OrderId(order_id))
        assert_identical(seeded.read.ask(query), seeded.baseline.ask(query), f"order {order_id}")


def test_daily_analytics_over_the_whole_year_equal_the_baseline(seeded: Seeded) -> None:
    query = GetDailyAnalytics(start=FIRST_DAY, end=LAST_DAY)
    stats = seeded.read.ask(query)
    assert_identical(stats, seeded.baseline.ask(query))
    assert sum(stat.order_count for stat in stats) == ORDERS
    month = GetDailyAnalytics(start=dt.date(2024, 6, 1), end=dt.date(2024, 6, 30))
    assert_identical(seeded.read.ask(month), seeded.baseline.ask(month))


# -- the read models are what the projections make of the log --------------------------------


def test_read_models_equal_a_projection_rebuild(tmp_path: Path) -> None:
    data = Seeded(tmp_path, parallel=True)
    try:
        seeded_rows = {table.name: data.rows(table) for table in READ_TABLES}
        engine = data.projection_engine()
        try:
            for name in engine.names():
                engine.rebuild(name)
        finally:
            engine.close()
        for table in READ_TABLES:
            # Compared as the app reads them (Decimal, aware datetimes), so a rebuilt float
            # sum on SQLite that is off in its last bits still compares equal.
            assert data.rows(table) == seeded_rows[table.name], table.name
        assert data.checkpoints() == dict.fromkeys(engine.names(), data.head())
    finally:
        data.close()


def test_the_app_keeps_working_on_seeded_data(tmp_path: Path) -> None:
    data = Seeded(tmp_path)
    clock_now = NOW + dt.timedelta(hours=1)
    mediator = Mediator(
        write_registry,
        middleware=[TransactionMiddleware(sessionmaker(data.write_engine), EventLog(event_types))],
        resolver=dependencies(clock=lambda: clock_now),
    )
    engine = data.projection_engine()
    try:
        order_id = mediator.send(
            CreateOrder(
                user_id=UserId(1),
                items=(OrderLine(product_id=1, quantity=2), OrderLine(product_id=3, quantity=1)),
                shipping_address=Address(
                    line1="1 Rue de Rivoli", city="Paris", postal_code="75001", country="FR"
                ),
            )
        )
        assert order_id == ORDERS + 1, "order ids go on after the seeded ones"
        pending = next(row[0] for row in data.rows(orders) if row[2] == OrderStatus.PENDING)
        mediator.send(UpdateOrderStatus(order_id=pending, status=OrderStatus.CONFIRMED))
        assert data.head() == data.report.events + 2, "log positions go on after the seed's"
        applied = sum(engine.catch_up(name) for name in engine.names())
        assert applied == 6  # two events, three projections

        for query in (
            GetOrderDetail(order_id=order_id),
            GetOrderDetail(order_id=pending),
            ListUserOrders(user_id=UserId(1)),
            GetDailyAnalytics(start=FIRST_DAY, end=clock_now.date()),
        ):
            assert data.read.ask(query) == data.baseline.ask(query), query
    finally:
        engine.close()
        data.close()


# -- deterministic, batch-independent, and the same on both insert paths ---------------------


def test_same_arguments_same_data_whatever_the_batch_size(tmp_path: Path) -> None:
    first = Seeded(tmp_path / "first", orders=120, seed=7)
    second = Seeded(tmp_path / "second", orders=120, seed=7, batch=13)
    other = Seeded(tmp_path / "other", orders=120, seed=8)
    for data in (first, second, other):
        data.close()
    for name in ("write.db", "read.db"):
        assert _raw_dump(tmp_path / "first" / name) == _raw_dump(tmp_path / "second" / name)
    assert _raw_dump(tmp_path / "first" / "write.db") != _raw_dump(tmp_path / "other" / "write.db")


def test_two_processes_store_what_one_process_stores(tmp_path: Path) -> None:
    one = Seeded(tmp_path / "one", orders=120, seed=7, parallel=False)
    two = Seeded(tmp_path / "two", orders=120, seed=7, parallel=True, batch=50)
    reports = [replace(data.report, seconds=0) for data in (one, two)]
    for data in (one, two):
        data.close()
    assert reports[0] == reports[1]
    for name in ("write.db", "read.db"):
        assert _raw_dump(tmp_path / "two" / name) == _raw_dump(tmp_path / "one" / name), name
        assert _schema(tmp_path / "two" / name) == _schema(tmp_path / "one" / name), name
        assert _journal_mode(tmp_path / "two" / name) == "wal", f"{name} is left in WAL mode"
    assert sorted(path.name for path in (tmp_path / "two").iterdir()) == ["read.db", "write.db"], (
        "the scratch file of the write model is deleted"
    )


def test_seeds_alike_while_another_connection_keeps_the_database_in_wal_mode(
    tmp_path: Path,
) -> None:
    (tmp_path / "held").mkdir()
    holder = sqlite3.connect(tmp_path / "held" / "write.db")
    try:
        holder.execute("PRAGMA journal_mode = WAL")
        holder.execute("SELECT 1 FROM sqlite_master").fetchall()  # open, idle
        Seeded(tmp_path / "held", orders=60, parallel=False).close()
    finally:
        holder.close()
    Seeded(tmp_path / "free", orders=60, parallel=False).close()
    for name in ("write.db", "read.db"):
        assert _raw_dump(tmp_path / "held" / name) == _raw_dump(tmp_path / "free" / name), name
        assert _journal_mode(tmp_path / "held" / name) == "wal"


def test_two_processes_report_progress_up_to_every_order(tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    Seeded(
        tmp_path, orders=120, parallel=True, batch=40, progress=lambda *call: calls.append(call)
    ).close()
    assert calls[0] == (0, 120)
    assert calls[-1] == (120, 120)
    done = [call[0] for call in calls]
    assert done == sorted(done), f"progress never goes back: {calls}"
    assert {call[1] for call in calls} == {120}


def test_parallel_needs_two_sqlite_files(tmp_path: Path) -> None:
    engine = sqlite_engine(tmp_path / "db.sqlite")
    try:
        with pytest.raises(SeedError, match="two SQLite files"):
            seed(engine, engine, orders=10, users=2, parallel=True)
    finally:
        engine.dispose()


def test_inline_read_models_go_to_the_write_database(tmp_path: Path) -> None:
    inline = build_projections({"order_summary": "inline"})
    Seeded(tmp_path / "inline", orders=60, projections=inline, parallel=None).close()
    Seeded(tmp_path / "apart", orders=60).close()  # the next seed is not affected
    write, read = (_raw_dump(tmp_path / "inline" / name) for name in ("write.db", "read.db"))
    apart = {name: _raw_dump(tmp_path / "apart" / name) for name in ("write.db", "read.db")}
    assert write["order_summary"] == apart["read.db"]["order_summary"]
    assert "order_summary" not in read
    assert write["orders"] == apart["write.db"]["orders"]
    assert read["order_detail"] == apart["read.db"]["order_detail"]


@pytest.mark.parametrize(
    ("part", "said"),
    [
        pytest.param(
            "import json, sys; print('error', json.dumps('the disk is full')); sys.exit(1)",
            "the disk is full",
            id="reported",
        ),
        pytest.param("import sys; sys.exit(3)", "exit status 3.*without a word", id="silent"),
    ],
)
def test_a_failed_second_process_fails_the_seed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, part: str, said: str
) -> None:
    monkeypatch.setattr(processes, "_PART_MAIN", part)
    with pytest.raises(SeedError, match=said):
        Seeded(tmp_path, orders=120, parallel=True)
    assert not (tmp_path / "write.db.seed-model").exists(), "the scratch file is deleted"


def test_raw_sqlite_path_stores_what_sqlalchemy_core_stores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    Seeded(tmp_path / "raw", orders=120, seed=3).close()
    monkeypatch.setattr(loading, "_sink", sinks._CoreSink)
    Seeded(tmp_path / "core", orders=120, seed=3).close()
    for name in ("write.db", "read.db"):
        raw, core = _raw_dump(tmp_path / "raw" / name), _raw_dump(tmp_path / "core" / name)
        assert raw.keys() == core.keys()
        for table in raw:
            assert raw[table] == core[table], f"{name}: {table}"


def test_money_and_times_keep_their_exact_values(seeded: Seeded) -> None:
    with seeded.write_engine.connect() as connection:
        order = connection.execute(sa.select(orders).where(orders.c.id == 1)).one()
        lines = connection.execute(
            sa.select(order_items.c.quantity, order_items.c.unit_price).where(
                order_items.c.order_id == 1
            )
        ).all()
    assert order.total == sum((price * quantity for quantity, price in lines), Decimal(0))
    assert order.total.as_tuple().exponent == -2
    assert order.placed_at.tzinfo is dt.UTC


# -- refusals ---------------------------------------------------------------------------------


def test_refuses_databases_that_hold_data(seeded: Seeded) -> None:
    with pytest.raises(SeedError, match="already holds rows"):
        seed(seeded.write_engine, seeded.read_engine, orders=10)


def test_refuses_bad_arguments(tmp_path: Path) -> None:
    engine = sqlite_engine(tmp_path / "db.sqlite")
    try:
        with pytest.raises(SeedError, match="users >= 1"):
            seed(engine, engine, orders=10, users=0)
    finally:
        engine.dispose()


def test_zero_orders_seeds_users_and_products_only(tmp_path: Path) -> None:
    data = Seeded(tmp_path, orders=0, users=3, products=4)
    try:
        assert data.report == SeedReport(
            users=3,
            products=4,
            orders=0,
            order_items=0,
            status_changes=0,
            events=7,
            seconds=data.report.seconds,
        )
        assert data.checkpoints() == dict.fromkeys(
            ("order_summary", "order_detail", "order_analytics"), 7
        )
    finally:
        data.close()


# -- PostgreSQL (SQLAlchemy Core path) -------------------------------------------------------


@pytest.mark.postgres
def test_seeds_postgresql_like_sqlite(postgres_database: Database, tmp_path: Path) -> None:
    engine = sa.create_engine(
        postgres_database.sync_url, connect_args={"options": "-c timezone=Asia/Tokyo"}
    )
    sqlite_data = Seeded(tmp_path, orders=120, seed=5)
    try:
        seed(engine, engine, orders=120, users=USERS, seed=5)
        codec = CursorCodec(b"a test cursor secret")
        reader = ReadDatabase(engine)
        read = Mediator(read_registry, resolver=Dependencies({"reader": reader, "cursors": codec}))
        for query in (
            ListUserOrders(user_id=UserId(1)),
            GetOrderDetail(order_id=OrderId(17)),
            GetDailyAnalytics(start=FIRST_DAY, end=LAST_DAY),
        ):
            assert read.ask(query) == sqlite_data.read.ask(query), query
        with engine.connect() as connection:
            for table in (*WRITE_TABLES[:-1], *READ_TABLES):
                rows = connection.execute(
                    sa.select(table).order_by(*table.primary_key.columns)
                ).all()
                assert [tuple(row) for row in rows] == sqlite_data.rows(table), table.name
        reader.close()
    finally:
        sqlite_data.close()
        engine.dispose()
