"""Write side: a command through the pipeline next to the same transaction written by hand.

The work is the same on both sides: insert an order and its three lines and append one
``order.placed`` event to the event log, in one SQLite transaction (a file under
``tmp_path``, WAL, ``BEGIN IMMEDIATE``, as :func:`cqrs_kit.persistence.sqlite_engine` sets
up). The hand-written side opens a session, runs the inserts and ``EventLog.append`` in one
``with session.begin():`` block and writes the same rows, metadata included. The pipeline
side sends a ``PlaceOrder`` command through a ``Mediator`` with ``TransactionMiddleware``
and, in a third case, ``LoggingMiddleware`` outside it, emitting one JSON event per command
into a null logger. Both sides take the same pre-built command, so input validation is not
measured. Every SQLite case runs the same fixed number of rounds, so each database grows by
the same amount.

The PostgreSQL cases (``CQRS_KIT_POSTGRES_URL``, a fresh database per test) measure
throughput: four writer threads send a fixed number of commands with events (so the
advisory lock is taken at every append, and by default a NOTIFY wakes projection workers),
with events but no NOTIFY, or without events (no lock).
``extra_info["commands_per_second"]`` (in ``--benchmark-json``) holds the figure. A fourth,
diagnostic case appends the events without the lock or the NOTIFY. It is NOT gap-safe and
exists only to separate the lock's cost from the cost of the extra statements.

Run: ``.venv/bin/pytest benchmarks/test_write_side.py --benchmark-only -m "slow or not slow"``.
On a busy machine prefer ``python -m benchmarks.test_write_side [commands] [pg rounds]``,
which interleaves the cases so that they all see the same load (see benchmarks/README.md).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa
import structlog
from pydantic import BaseModel
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from cqrs_kit import Command, Event, EventTypes, Mediator, PendingEvent, Registry
from cqrs_kit.eventlog import EventLog, create_event_log
from cqrs_kit.middleware.logging import LoggingMiddleware
from cqrs_kit.middleware.transaction import SqlAlchemyUnitOfWork, TransactionMiddleware
from cqrs_kit.persistence import sqlite_engine
from tests.databases import POSTGRES_ENV, postgres_url_or_skip

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

# -- the write model -----------------------------------------------------------------------

metadata = sa.MetaData()
orders = sa.Table(
    "orders",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("customer", sa.String(100), nullable=False),
)
order_lines = sa.Table(
    "order_lines",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("order_id", sa.Integer, sa.ForeignKey("orders.id"), nullable=False),
    sa.Column("sku", sa.String(50), nullable=False),
    sa.Column("quantity", sa.Integer, nullable=False),
    sa.Column("price_cents", sa.Integer, nullable=False),
)

event_types = EventTypes()


@event_types.define("order.placed", stream_type="order")
class OrderPlaced(Event):
    order_id: int
    customer: str
    total_cents: int


class Line(BaseModel):
    sku: str
    quantity: int
    price_cents: int


class PlaceOrder(Command[int]):
    customer: str
    lines: list[Line]
    record_event: bool = True


COMMAND = PlaceOrder(
    customer="ada",
    lines=[
        Line(sku="tea", quantity=2, price_cents=450),
        Line(sku="cake", quantity=1, price_cents=300),
        Line(sku="jam", quantity=3, price_cents=250),
    ],
)
NO_EVENT = COMMAND.model_copy(update={"record_event": False})

INSERT_ORDER = sa.insert(orders).returning(orders.c.id)
INSERT_LINES = sa.insert(order_lines)

ROUNDS = 2000  # per SQLite case: the same number of orders in every database
WARMUP = 200


def write_order(session: Session, command: PlaceOrder) -> tuple[int, OrderPlaced]:
    """The state change both sides make: one order, its lines; returns the event to record."""
    order_id = int(session.execute(INSERT_ORDER, {"customer": command.customer}).scalar_one())
    session.execute(
        INSERT_LINES,
        [
            {
                "order_id": order_id,
                "sku": line.sku,
                "quantity": line.quantity,
                "price_cents": line.price_cents,
            }
            for line in command.lines
        ],
    )
    total = sum(line.quantity * line.price_cents for line in command.lines)
    return order_id, OrderPlaced(order_id=order_id, customer=command.customer, total_cents=total)


def place_order(command: PlaceOrder, *, uow: SqlAlchemyUnitOfWork) -> int:
    order_id, event = write_order(uow.session, command)
    if command.record_event:
        uow.record(event, stream_id=order_id)
    return order_id


def pipeline(
    session_factory: Callable[[], Session],
    *middleware: Any,
    lock: bool = True,
    notify: bool = True,
) -> Mediator:
    registry = Registry()
    registry.register(PlaceOrder, place_order)
    channel = EventLog.NOTIFY_CHANNEL if notify else None
    event_log = EventLog(event_types, lock=lock, notify_channel=channel)
    mediator = Mediator(
        registry, middleware=[*middleware, TransactionMiddleware(session_factory, event_log)]
    )
    mediator.freeze()
    return mediator


def by_hand(session_factory: Callable[[], Session]) -> Callable[[PlaceOrder], int]:
    """The same transaction, written out: what a handler-less service function would do."""
    event_log = EventLog(event_types)
    # Ids made as cqrs_kit.context makes message ids (a per-process prefix and a counter), so
    # both sides write the same rows at the same cost; the overhead is the pipeline's alone.
    prefix, counter = uuid.uuid4().hex[:16], itertools.count(1)

    def place(command: PlaceOrder) -> int:
        message_id = f"{prefix}-{next(counter):x}"
        meta = {
            "correlation_id": message_id,
            "causation_id": message_id,
            "command_type": "PlaceOrder",
        }
        with session_factory() as session, session.begin():
            order_id, event = write_order(session, command)
            event_log.append(session, [PendingEvent(event, "", str(order_id))], meta)
        return order_id

    return place


def by_hand_logged(
    session_factory: Callable[[], Session], logger: Any
) -> Callable[[PlaceOrder], int]:
    """The hand-written transaction plus the one log line a service would write by hand.

    The fair reference for "pipeline + logging": both emit one JSON event per command with
    the command type, ids, duration and outcome.
    """
    place = by_hand(session_factory)
    clock = time.perf_counter

    def place_logged(command: PlaceOrder) -> int:
        started = clock()
        order_id = place(command)
        logger.info(
            "dispatch",
            message_type="PlaceOrder",
            message_kind="command",
            duration_ms=(clock() - started) * 1000,
            outcome="ok",
        )
        return order_id

    return place_logged


class NullLogger:
    """Drops what it is given; counts the calls, to check that the middleware emits."""

    def __init__(self) -> None:
        self.calls = 0

    def msg(self, *args: Any, **kwargs: Any) -> None:
        self.calls += 1

    debug = info = warning = error = critical = msg


def null_json_logger(sink: NullLogger) -> Any:
    """A production-like structlog chain (JSON rendering included) whose output is dropped."""
    return structlog.wrap_logger(
        sink,
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
    )


# -- SQLite: pipeline vs hand-written ---------------------------------------------------------


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[sa.Engine]:
    engine = sqlite_engine(tmp_path / "bench.db")
    metadata.create_all(engine)
    create_event_log(engine)
    yield engine
    engine.dispose()


def run_fixed(benchmark: Any, engine: sa.Engine, place: Callable[[PlaceOrder], int]) -> None:
    benchmark.pedantic(place, args=(COMMAND,), rounds=ROUNDS, warmup_rounds=WARMUP)
    with engine.connect() as connection:
        counts = [
            connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
            for table in (orders, order_lines, EventLog(event_types).table)
        ]
    total = ROUNDS + WARMUP
    assert counts == [total, 3 * total, total], f"orders, lines, events: {counts}"


@pytest.mark.benchmark(group="write side: order + 3 lines + 1 event (SQLite)")
def test_sqlite_hand_written_transaction(benchmark: Any, engine: sa.Engine) -> None:
    run_fixed(benchmark, engine, by_hand(sessionmaker(engine)))


@pytest.mark.benchmark(group="write side: order + 3 lines + 1 event (SQLite)")
def test_sqlite_pipeline_transaction(benchmark: Any, engine: sa.Engine) -> None:
    run_fixed(benchmark, engine, pipeline(sessionmaker(engine)).send)


@pytest.mark.benchmark(group="write side: order + 3 lines + 1 event (SQLite)")
def test_sqlite_hand_written_transaction_and_log_line(benchmark: Any, engine: sa.Engine) -> None:
    sink = NullLogger()
    run_fixed(benchmark, engine, by_hand_logged(sessionmaker(engine), null_json_logger(sink)))
    assert sink.calls == ROUNDS + WARMUP


@pytest.mark.benchmark(group="write side: order + 3 lines + 1 event (SQLite)")
def test_sqlite_pipeline_logging_and_transaction(benchmark: Any, engine: sa.Engine) -> None:
    sink = NullLogger()
    mediator = pipeline(sessionmaker(engine), LoggingMiddleware(null_json_logger(sink)))
    run_fixed(benchmark, engine, mediator.send)
    assert sink.calls == ROUNDS + WARMUP, "one JSON event rendered per command"


# -- PostgreSQL: 4 concurrent writers, with and without the event log's lock ------------------

WRITERS = 4
COMMANDS = 400  # per round, split evenly between the writers
PG_ROUNDS = 5  # after one warm-up round
PG_GROUP = f"write side: {WRITERS} writers x {COMMANDS // WRITERS} commands (PostgreSQL)"
PG_CASES = {  # name: (command, take the advisory lock, NOTIFY the workers)
    "with events (lock + NOTIFY, the defaults)": (COMMAND, True, True),
    "with events (lock, no NOTIFY)": (COMMAND, True, False),
    "without events (no lock)": (NO_EVENT, True, True),
    "with events, unlocked, no NOTIFY (diagnostic)": (COMMAND, False, False),
}


@contextlib.contextmanager
def fresh_postgres_database(server_url: str) -> Iterator[sa.Engine]:
    """A new database on ``server_url``'s server with the benchmark's tables, dropped after."""
    server = make_url(server_url).set(drivername="postgresql+psycopg")
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    name = f"cqrs_kit_bench_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = server.set(database=name)
    engine = sa.create_engine(url, pool_size=WRITERS + 1)
    try:
        metadata.create_all(engine)
        create_event_log(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture
def pg_engine() -> Iterator[sa.Engine]:
    with fresh_postgres_database(postgres_url_or_skip()) as engine:
        yield engine


def writer_round(pool: ThreadPoolExecutor, mediator: Mediator, command: PlaceOrder) -> None:
    """Send ``COMMANDS`` commands from ``WRITERS`` threads that start together."""
    start = threading.Barrier(WRITERS)

    def writer() -> None:
        start.wait()
        for _ in range(COMMANDS // WRITERS):
            mediator.send(command)

    for future in [pool.submit(writer) for _ in range(WRITERS)]:
        future.result()


def concurrent_writers(benchmark: Any, engine: sa.Engine, case: str) -> None:
    command, lock, notify = PG_CASES[case]
    mediator = pipeline(sessionmaker(engine), lock=lock, notify=notify)
    with ThreadPoolExecutor(WRITERS) as pool:
        benchmark.pedantic(
            writer_round, args=(pool, mediator, command), rounds=PG_ROUNDS, warmup_rounds=1
        )
    benchmark.extra_info["writers"] = WRITERS
    benchmark.extra_info["commands_per_round"] = COMMANDS
    benchmark.extra_info["commands_per_second"] = round(COMMANDS / benchmark.stats.stats.median)
    with engine.connect() as connection:
        appended = EventLog(event_types).head(connection)
    expected = (PG_ROUNDS + 1) * COMMANDS if command.record_event else 0
    assert appended == expected, f"appended {appended} events, expected {expected}"


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.benchmark(group=PG_GROUP)
def test_postgres_writers_with_events(benchmark: Any, pg_engine: sa.Engine) -> None:
    """The defaults: every command appends one event under the advisory lock, and NOTIFYs."""
    concurrent_writers(benchmark, pg_engine, "with events (lock + NOTIFY, the defaults)")


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.benchmark(group=PG_GROUP)
def test_postgres_writers_with_events_without_notify(benchmark: Any, pg_engine: sa.Engine) -> None:
    """Events under the lock, with ``notify_channel=None`` (workers poll instead)."""
    concurrent_writers(benchmark, pg_engine, "with events (lock, no NOTIFY)")


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.benchmark(group=PG_GROUP)
def test_postgres_writers_without_events(benchmark: Any, pg_engine: sa.Engine) -> None:
    """The same rows without the event: no append, so no lock and no NOTIFY."""
    concurrent_writers(benchmark, pg_engine, "without events (no lock)")


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.benchmark(group=PG_GROUP)
def test_postgres_writers_with_events_unlocked_diagnostic(
    benchmark: Any, pg_engine: sa.Engine
) -> None:
    """Diagnostic only, NOT gap-safe: events appended without the lock, to isolate its cost."""
    concurrent_writers(benchmark, pg_engine, "with events, unlocked, no NOTIFY (diagnostic)")


# -- interleaved runner: python -m benchmarks.test_write_side [commands] [pg rounds] -----------
#
# pytest-benchmark runs the cases one after the other, so a change in machine load between
# them shows up as a difference between them. The runner interleaves the cases (command by
# command on SQLite, round by round on PostgreSQL), so every case sees the same load.


def sqlite_paired(commands: int) -> dict[str, list[float]]:
    """Seconds per command of each SQLite case, the cases interleaved command by command."""
    with tempfile.TemporaryDirectory() as directory:
        engines: list[sa.Engine] = []
        cases: dict[str, Callable[[PlaceOrder], int]] = {}
        for name in ("hand-written", "pipeline", "hand-written + log line", "pipeline + logging"):
            engine = sqlite_engine(Path(directory) / f"{len(engines)}.db")
            metadata.create_all(engine)
            create_event_log(engine)
            engines.append(engine)
            factory = sessionmaker(engine)
            if name == "hand-written":
                cases[name] = by_hand(factory)
            elif name == "pipeline":
                cases[name] = pipeline(factory).send
            elif name == "hand-written + log line":
                cases[name] = by_hand_logged(factory, null_json_logger(NullLogger()))
            else:
                logger = null_json_logger(NullLogger())
                cases[name] = pipeline(factory, LoggingMiddleware(logger)).send
        for place in cases.values():
            for _ in range(WARMUP):
                place(COMMAND)
        times: dict[str, list[float]] = {name: [] for name in cases}
        clock = time.perf_counter
        for _ in range(commands):
            for name, place in cases.items():
                start = clock()
                place(COMMAND)
                times[name].append(clock() - start)
        for engine in engines:
            engine.dispose()
    return times


def postgres_paired(server_url: str, rounds: int) -> dict[str, list[float]]:
    """Seconds per round of each PostgreSQL case, the cases interleaved round by round."""
    times: dict[str, list[float]] = {name: [] for name in PG_CASES}
    with fresh_postgres_database(server_url) as engine, ThreadPoolExecutor(WRITERS) as pool:
        mediators = {
            name: pipeline(sessionmaker(engine), lock=lock, notify=notify)
            for name, (_, lock, notify) in PG_CASES.items()
        }
        for round_number in range(rounds + 1):  # the first round warms up
            for name, (command, _, _) in PG_CASES.items():
                start = time.perf_counter()
                writer_round(pool, mediators[name], command)
                if round_number:
                    times[name].append(time.perf_counter() - start)
    return times


def main() -> None:
    commands = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    times = sqlite_paired(commands)
    base = statistics.median(times["hand-written"])
    print(f"SQLite: {commands} commands per case, interleaved; microseconds per command")
    print(f"  {'case':20} {'min':>8} {'median':>8} {'overhead (median)':>18}")
    for name, samples in times.items():
        median = statistics.median(samples)
        print(
            f"  {name:20} {min(samples) * 1e6:8.1f} {median * 1e6:8.1f} "
            f"{(median / base - 1) * 100:+17.1f}%"
        )
    server_url = os.environ.get(POSTGRES_ENV)
    if not server_url:
        print(f"PostgreSQL: skipped, set {POSTGRES_ENV}")
        return
    per_round = postgres_paired(server_url, rounds)
    print(
        f"PostgreSQL: {WRITERS} writers x {COMMANDS // WRITERS} commands, {rounds} rounds "
        f"per case, interleaved; commands/second (median round, best round)"
    )
    for name, samples in per_round.items():
        print(
            f"  {name:48} {COMMANDS / statistics.median(samples):6.0f} "
            f"{COMMANDS / min(samples):6.0f}"
        )


if __name__ == "__main__":
    main()
