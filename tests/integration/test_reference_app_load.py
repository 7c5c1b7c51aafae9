"""The reference app under load on PostgreSQL, and its read side in the write database.

The load test runs the app the way it is deployed: the schema from
``python -m reference_app schema``, three ``python -m reference_app worker`` processes, and
four writer processes (:mod:`tests.integration.order_writer`) sending ``CreateOrder`` and
``UpdateOrderStatus`` through the mediator for ``CQRS_KIT_LOAD_SECONDS`` seconds (6 by
default, to keep ``make test`` fast; 60 is the full run the worker guide quotes). It samples
every projection's ``lag_seconds`` four times a second, waits until the workers have caught
up, stops them with SIGTERM, and then checks that the read models answer every question
exactly like the baseline (the same queries over the write model). It prints, and records
as test properties, the commands per second and the p99 lag (in a JUnit report, with
``-o junit_family=xunit1 --junitxml=...``: ``record_property`` needs xunit1)::

    CQRS_KIT_LOAD_SECONDS=60 CQRS_KIT_POSTGRES_URL=postgresql://postgres@127.0.0.1/test \
        pytest tests/integration/test_reference_app_load.py -k load -s

The other tests check that ``inline`` read models are created in, and read from, the write
database (one engine for both), and that a separate read database gets its own engine.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from reference_app.config import Settings
from reference_app.container import Container, build_container, close_container, create_schema
from reference_app.read.projections import PROJECTION_NAMES
from reference_app.read.queries import GetDailyAnalytics, GetOrderDetail, ListUserOrders
from reference_app.write.domain import Address, OrderId, OrderStatus, UserId
from reference_app.write.messages import (
    AddProduct,
    CreateOrder,
    OrderLine,
    RegisterUser,
    UpdateOrderStatus,
)
from reference_app.write.schema import orders, users
from tests.databases import Database
from tests.integration.processes import spawn

ROOT = Path(__file__).resolve().parents[2]
LOAD_SECONDS = float(os.environ.get("CQRS_KIT_LOAD_SECONDS", "6"))
WRITERS = 4
WORKERS = 3
SECRET = "load-tests-cursor-secret-0123456789"  # noqa: S105 - a test-only signing key


# -- helpers ----------------------------------------------------------------------------------


@pytest.fixture
def read_url(postgres_database: Database) -> Iterator[str]:
    """A second fresh database on the same server, for the read models."""
    admin = sa.create_engine(postgres_database.sync_url, isolation_level="AUTOCOMMIT")
    name = f"{postgres_database.name}_read"
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield (
            make_url(postgres_database.sync_url)
            .set(database=name)
            .render_as_string(hide_password=False)
        )
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def _env(tmp_path: Path, write_url: str, read_url: str, strategy: str) -> dict[str, str]:
    return {
        "ORDERS_DATA_DIR": str(tmp_path),
        "ORDERS_WRITE_DATABASE_URL": write_url,
        "ORDERS_READ_DATABASE_URL": read_url,
        "ORDERS_CURSOR_SECRET": SECRET,
        "ORDERS_PROJECTIONS": ",".join(f"{name}={strategy}" for name in PROJECTION_NAMES),
        "ORDERS_EMBEDDED_WORKER": "false",
        "ORDERS_LOG_LEVEL": "warning",
    }


class _Process:
    """A child process whose output goes to files (a pipe left unread could block it)."""

    def __init__(self, tmp_path: Path, name: str, args: list[str], env: Mapping[str, str]) -> None:
        self.name = name
        self.stdout_path = tmp_path / f"{name}.out"
        self.stderr_path = tmp_path / f"{name}.err"
        self._files: list[IO[bytes]] = [self.stdout_path.open("wb"), self.stderr_path.open("wb")]
        self.popen = spawn(
            [sys.executable, "-m", *args],
            env={**os.environ, "PYTHONPATH": str(ROOT), **env},
            cwd=ROOT,
            stdout=self._files[0],
            stderr=self._files[1],
        )

    def finish(self, timeout: float, sig: int | None = None) -> tuple[int, str, str]:
        """Signal (optionally), wait, close the files; return status, stdout and stderr."""
        try:
            if sig is not None and self.popen.poll() is None:
                self.popen.send_signal(sig)
            status = self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(10)
            raise
        finally:
            for file in self._files:
                file.close()
        return status, self.stdout_path.read_text(), self.stderr_path.read_text()


def _wait_until(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def _caught_up(container: Container) -> bool:
    return all(
        s.lag_events == 0 and s.lag_seconds == 0 and s.state == "running"
        for s in container.projection_engine().status()
    )


def _owners_split(container: Container) -> bool:
    owners = [s.owner for s in container.projection_engine().status()]
    return None not in owners and len(set(owners)) == min(WORKERS, len(owners))


def assert_read_models_match_baseline(container: Container) -> int:
    """Ask every question of the read models and of the baseline; return the orders checked.

    Every user's whole list (page by page, through the cursors), every order's detail, and
    the daily analytics over every day with orders.
    """
    mediator, baseline = container.mediator(), container.baseline_mediator()
    with container.write_engine().connect() as connection:
        user_ids = [UserId(u) for u in connection.execute(sa.select(users.c.id)).scalars()]
        order_ids = [OrderId(o) for o in connection.execute(sa.select(orders.c.id)).scalars()]
        first, last = connection.execute(
            sa.select(sa.func.min(orders.c.placed_at), sa.func.max(orders.c.placed_at))
        ).one()
    assert order_ids, "no orders were placed"

    listed = 0
    for user_id in user_ids:
        query = ListUserOrders(user_id=user_id)
        while True:
            page = mediator.ask(query)
            assert page == baseline.ask(query), f"user {user_id}, cursor {query.cursor}"
            listed += len(page.items)
            if page.next_cursor is None:
                break
            query = ListUserOrders(user_id=user_id, cursor=page.next_cursor)
    assert listed == len(order_ids), "every order is in its user's list"

    for order_id in order_ids:
        query = GetOrderDetail(order_id=order_id)
        detail = mediator.ask(query)
        assert detail is not None, f"order {order_id} has no detail"
        assert detail == baseline.ask(query), f"order {order_id}"

    one_day = dt.timedelta(days=1)
    everything = GetDailyAnalytics(start=first.date() - one_day, end=last.date() + one_day)
    analytics = mediator.ask(everything)
    assert analytics, "analytics are empty"
    assert analytics == baseline.ask(everything)
    return len(order_ids)


# -- the load test ----------------------------------------------------------------------------


@pytest.mark.postgres
def test_load_four_writers_three_workers_read_models_match_the_baseline(
    postgres_database: Database,
    read_url: str,
    tmp_path: Path,
    record_property: Callable[[str, object], None],
) -> None:
    """Writers for ``CQRS_KIT_LOAD_SECONDS`` (6 by default; set 60 for the full load run)."""
    env = _env(tmp_path, postgres_database.sync_url, read_url, "async")
    status, out, err = _Process(tmp_path, "schema", ["reference_app", "schema"], env).finish(60)
    assert status == 0, err
    assert out.startswith("schema ready"), out

    container = build_container(Settings.from_env(env))
    workers: list[_Process] = []
    writers: list[_Process] = []
    try:
        workers = [
            _Process(tmp_path, f"worker{i}", ["reference_app", "worker"], env)
            for i in range(WORKERS)
        ]
        engine = container.projection_engine()
        # Load starts once the workers have shared the projections out (one each): the
        # first worker to start takes them all and gives two back as the others join.
        _wait_until(lambda: _owners_split(container), timeout=60)

        head = max(s.head for s in engine.status())
        writers = [
            _Process(
                tmp_path,
                f"writer{i}",
                [
                    "tests.integration.order_writer",
                    "--seconds",
                    str(LOAD_SECONDS),
                    "--seed",
                    str(i),
                ],
                env,
            )
            for i in range(WRITERS)
        ]
        # Lag samples count from the first event the writers append (starting the
        # interpreters takes a while, and an idle log's zero lag says nothing).
        lags: list[float] = []
        while any(w.popen.poll() is None for w in writers):
            statuses = engine.status()
            if max(s.head for s in statuses) > head:
                lags += [s.lag_seconds for s in statuses]
            time.sleep(0.25)
        results = [w.finish(30) for w in writers]
        for writer, (status, _out, err) in zip(writers, results, strict=True):
            assert status == 0, f"{writer.name} failed:\n{err}"
        # Each writer sends for LOAD_SECONDS, all at once: the sum of their rates.
        commands = sum(int(out) for _status, out, _err in results)
        assert lags, "no lag sample was taken under load"

        _wait_until(lambda: _caught_up(container), timeout=120)
        owners = {s.name: s.owner for s in engine.status()}
        assert all(owners.values()), f"every projection has an owner: {owners}"
        stopped = [w.finish(30, signal.SIGTERM) for w in workers]
        for worker, (status, _out, err) in zip(workers, stopped, strict=True):
            assert status == 0, f"{worker.name} exited with {status}:\n{err}"
            assert "Traceback" not in err, err
        workers = []

        checked = assert_read_models_match_baseline(container)
    finally:
        for process in [*writers, *workers]:
            if process.popen.returncode is None:
                process.finish(30, signal.SIGKILL)
        close_container(container)

    rate = commands / LOAD_SECONDS
    p99 = statistics.quantiles(lags, n=100)[98] if len(lags) >= 2 else lags[0]
    record_property("commands_per_second", round(rate, 1))
    record_property("lag_p99_seconds", round(p99, 3))
    record_property("orders_checked", checked)
    print(
        f"\nreference app load: {commands} commands in {LOAD_SECONDS:.0f}s ({rate:.0f}/s) from "
        f"{WRITERS} writers, {WORKERS} workers; lag p99 {p99:.3f}s, max {max(lags):.3f}s; "
        f"{checked} orders match the baseline"
    )


# -- inline: the read models in the write database --------------------------------------------


def _place_and_move(container: Container) -> None:
    send = container.mediator().send
    user = send(RegisterUser(name="Ada", email="ada@example.com"))
    product = send(AddProduct(name="Teapot", price="24.90"))
    address = Address(line1="1 Rue de Rivoli", city="Paris", postal_code="75001", country="FR")
    for quantity in range(1, 4):
        order = send(
            CreateOrder(
                user_id=user,
                items=(OrderLine(product_id=product, quantity=quantity),),
                shipping_address=address,
            )
        )
        send(UpdateOrderStatus(order_id=order, status=OrderStatus.CONFIRMED))


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_inline_read_models_live_in_and_are_read_from_the_write_database(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if backend == "postgres":
        url = request.getfixturevalue("postgres_database").sync_url
    else:
        url = f"sqlite:///{tmp_path / 'orders.db'}"
    container = build_container(Settings.from_env(_env(tmp_path, url, url, "inline")))
    try:
        assert container.read_engine() is container.write_engine(), "one database, one engine"
        assert container.reader().engine is container.write_engine()
        create_schema(container)
        _place_and_move(container)  # inline: current when send returns, no worker, no wait
        assert assert_read_models_match_baseline(container) == 3
    finally:
        close_container(container)


def test_separate_read_database_gets_its_own_engine(tmp_path: Path) -> None:
    write, read = (f"sqlite:///{tmp_path / name}" for name in ("write.db", "read.db"))
    container = build_container(Settings.from_env(_env(tmp_path, write, read, "sync")))
    try:
        assert container.read_engine() is not container.write_engine()
        assert container.reader().engine is container.read_engine()
        create_schema(container)
        _place_and_move(container)
        assert assert_read_models_match_baseline(container) == 3
        with container.write_engine().connect() as connection:
            assert not sa.inspect(connection).has_table("order_summary"), "not in the write db"
    finally:
        close_container(container)
