"""Read side: what projections cost a command, how far async ones lag, how fast a rebuild is.

The write model is one table (``orders``); a command inserts one order and records one
``order.placed`` event, in one SQLite transaction (a file under ``tmp_path``, WAL,
``BEGIN IMMEDIATE``, as :func:`cqrs_kit.persistence.sqlite_engine` sets up). The projection
inserts one row per event into its read table (``order_summary``): in the write database
for ``inline``, in a second SQLite file (the read database) for ``sync`` and ``async``.

1. **Command latency** (one group): the same command with no projection (the mediator has
   only ``TransactionMiddleware``), then with one projection run ``inline``, ``sync`` and
   ``async`` (full wiring: ``ConsistencyMiddleware``, ``ProjectionMiddleware``,
   ``TransactionMiddleware(after_append=[engine.apply_inline])``). For ``async`` a
   ``ProjectionWorker`` runs during the measurement; only ``send`` is timed. Every case runs
   the same fixed number of rounds. ``extra_info`` holds the ratio of each median to the
   no-projection median (goals: sync <= 2.0x, async <= 1.2x). A slow variant runs the
   four cases interleaved, command by command, so that load changes on a shared machine
   hit every case alike; there the async worker catches up (untimed) after each command.
2. **Async lag** (slow): one writer thread sends commands at a steady rate (200/s for 3 s)
   while a ``ProjectionWorker`` runs. Commit times are taken by an ``after_commit`` session
   hook (one writer, one event per command: the n-th commit is position n). The lag of an
   event ends when the worker's batch that moves the checkpoint past it commits (taken by
   engine hooks on the read database: the checkpoint ``UPDATE``, then its ``commit``).
   Separately, an observer thread waits with ``engine.wait_for`` (what ``AtLeast`` uses)
   and stamps each position when the wait returns: the lag a reader with a token sees.
   ``extra_info`` holds p50/p99/max of both, in ms, and the write rate actually achieved.
3. **Rebuild throughput** (slow): 50,000 events are appended straight to the event log
   (``EventLog.append``, 1,000 per transaction), then ``engine.rebuild()`` replays them into
   the read table, in place (``in_place=True``) and blue/green (the default: a staging
   copy in an attached SQLite file, switched in at the end), once with the per-event
   handler (``@projection.on``: one ``INSERT`` per event) and once with a batch handler
   (``@projection.on_batch``: one ``executemany`` per run of events).
   ``extra_info["events_per_second"]`` (goal >= 20,000).

Run: ``.venv/bin/pytest benchmarks/test_projections.py --benchmark-only -m "slow or not slow"``.
"""

from __future__ import annotations

import statistics
import threading
import time
from typing import TYPE_CHECKING, Any, NamedTuple

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from cqrs_kit import Command, Event, EventTypes, Mediator, PendingEvent, Receipt, Registry
from cqrs_kit.eventlog import EventLog, create_event_log
from cqrs_kit.middleware.projection import ConsistencyMiddleware, ProjectionMiddleware
from cqrs_kit.middleware.transaction import SqlAlchemyUnitOfWork, TransactionMiddleware
from cqrs_kit.persistence import sqlite_engine
from cqrs_kit.projections import (
    BatchContext,
    Projection,
    ProjectionContext,
    ProjectionEngine,
    ProjectionWorker,
    Strategy,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
    from pathlib import Path

# -- the write model -----------------------------------------------------------------------

write_metadata = sa.MetaData()
orders = sa.Table(
    "orders",
    write_metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("customer", sa.String(100), nullable=False),
    sa.Column("total_cents", sa.Integer, nullable=False),
)

event_types = EventTypes()


@event_types.define("order.placed", stream_type="order")
class OrderPlaced(Event):
    order_id: int
    customer: str
    total_cents: int


class PlaceOrder(Command[int]):
    customer: str
    total_cents: int


COMMAND = PlaceOrder(customer="ada", total_cents=1250)
INSERT_ORDER = sa.insert(orders).returning(orders.c.id)


def place_order(command: PlaceOrder, *, uow: SqlAlchemyUnitOfWork) -> int:
    params = {"customer": command.customer, "total_cents": command.total_cents}
    order_id = int(uow.session.execute(INSERT_ORDER, params).scalar_one())
    uow.record(OrderPlaced(order_id=order_id, **params), stream_id=order_id)
    return order_id


# -- the read model --------------------------------------------------------------------------

read_metadata = sa.MetaData()
order_summary = sa.Table(
    "order_summary",
    read_metadata,
    sa.Column("order_id", sa.Integer, primary_key=True),
    sa.Column("customer", sa.String(100), nullable=False),
    sa.Column("total_cents", sa.Integer, nullable=False),
)
INSERT_SUMMARY = sa.insert(order_summary)
PROJECTION = "order_summary"


def summary_projection(strategy: Strategy, *, batch: bool = False) -> Projection:
    """The projection, with a per-event handler or (``batch``) a batch handler."""
    projection = Projection(PROJECTION, tables=[order_summary], strategy=strategy)

    def row(event: OrderPlaced) -> dict[str, Any]:
        return {
            "order_id": event.order_id,
            "customer": event.customer,
            "total_cents": event.total_cents,
        }

    if batch:

        @projection.on_batch(OrderPlaced)
        def placed_many(events: Sequence[OrderPlaced], ctx: BatchContext) -> None:
            ctx.connection.execute(INSERT_SUMMARY, [row(event) for event in events])

    else:

        @projection.on(OrderPlaced)
        def placed(event: OrderPlaced, ctx: ProjectionContext) -> None:
            ctx.connection.execute(INSERT_SUMMARY, row(event))

    return projection


class App(NamedTuple):
    mediator: Mediator
    write: sa.Engine
    read: sa.Engine
    engine: ProjectionEngine | None
    worker: ProjectionWorker | None
    session_factory: sessionmaker[Session]


def build(directory: Path, strategy: Strategy | None, *, batch: bool = False) -> App:
    """The shop, with no projection (``None``) or one projection run with ``strategy``."""
    directory.mkdir(parents=True, exist_ok=True)
    write = sqlite_engine(directory / "write.db")
    read = sqlite_engine(directory / "read.db")
    write_metadata.create_all(write)
    create_event_log(write)
    event_log = EventLog(event_types)
    registry = Registry()
    registry.register(PlaceOrder, place_order)
    session_factory = sessionmaker(write)
    if strategy is None:
        mediator = Mediator(
            registry, middleware=[TransactionMiddleware(session_factory, event_log)]
        )
        mediator.freeze()
        return App(mediator, write, read, None, None, session_factory)
    engine = ProjectionEngine(
        event_log=event_log,
        write_engine=write,
        read_engine=read,
        projections=[summary_projection(strategy, batch=batch)],
        write_metadata=write_metadata,
    )
    engine.setup()
    worker = ProjectionWorker(engine) if strategy is Strategy.ASYNC else None
    mediator = Mediator(
        registry,
        middleware=[
            ConsistencyMiddleware(engine),
            ProjectionMiddleware(engine, worker),
            TransactionMiddleware(session_factory, event_log, after_append=[engine.apply_inline]),
        ],
    )
    mediator.freeze()
    return App(mediator, write, read, engine, worker, session_factory)


def dispose(app: App) -> None:
    if app.worker is not None:
        app.worker.stop()
    app.write.dispose()
    app.read.dispose()
    if app.engine is not None:
        app.engine.close()


def count(engine: sa.Engine, table: sa.Table) -> int:
    with engine.connect() as connection:
        return int(connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


# -- 1. command latency ------------------------------------------------------------------------

ROUNDS = 2000  # per case: the same number of orders in every database
WARMUP = 200
GOALS = {"no projection": None, "inline": None, "sync": 2.0, "async": 1.2}
MEDIANS: dict[str, float] = {}  # case -> median seconds, for the ratios


@pytest.fixture
def app_factory(tmp_path: Path) -> Iterator[Callable[..., App]]:
    apps: list[App] = []

    def make(strategy: Strategy | None, *, batch: bool = False) -> App:
        apps.append(build(tmp_path / f"app{len(apps)}", strategy, batch=batch))
        return apps[-1]

    yield make
    for app in apps:
        dispose(app)


def run_commands(benchmark: Any, app: App, case: str) -> None:
    benchmark.pedantic(app.mediator.send, args=(COMMAND,), rounds=ROUNDS, warmup_rounds=WARMUP)
    total = ROUNDS + WARMUP
    assert count(app.write, orders) == total
    median = benchmark.stats.stats.median
    MEDIANS[case] = median
    benchmark.extra_info["median_us"] = round(median * 1e6, 1)
    baseline = MEDIANS.get("no projection")
    if baseline and case != "no projection":
        ratio = median / baseline
        benchmark.extra_info["ratio_vs_no_projection"] = round(ratio, 2)
        goal = GOALS[case]
        if goal is not None:
            benchmark.extra_info["goal_ratio"] = goal
            benchmark.extra_info["meets_goal"] = ratio <= goal
    if app.engine is None:
        return
    receipt_token = total  # one event per command
    assert app.engine.wait_for([PROJECTION], receipt_token, timeout=30), "projection caught up"
    table_engine = (
        app.write if app.engine.projection(PROJECTION).strategy is Strategy.INLINE else app.read
    )
    assert count(table_engine, order_summary) == total, "every event projected exactly once"


GROUP = "projections: command latency, insert + 1 event (SQLite)"


@pytest.mark.benchmark(group=GROUP)
def test_command_without_projection(benchmark: Any, app_factory: Callable[..., App]) -> None:
    run_commands(benchmark, app_factory(None), "no projection")


@pytest.mark.benchmark(group=GROUP)
def test_command_with_inline_projection(benchmark: Any, app_factory: Callable[..., App]) -> None:
    run_commands(benchmark, app_factory(Strategy.INLINE), "inline")


@pytest.mark.benchmark(group=GROUP)
def test_command_with_sync_projection(benchmark: Any, app_factory: Callable[..., App]) -> None:
    run_commands(benchmark, app_factory(Strategy.SYNC), "sync")


@pytest.mark.benchmark(group=GROUP)
def test_command_with_async_projection(benchmark: Any, app_factory: Callable[..., App]) -> None:
    app = app_factory(Strategy.ASYNC)
    assert app.worker is not None
    app.worker.start()
    run_commands(benchmark, app, "async")


# The four cases again, interleaved command by command (the starting case rotates each round),
# so that a change in machine load between cases cannot skew the ratios. After each async
# command the worker is let catch up (untimed), so its work never overlaps a timed command.
CASES = {
    "no projection": None,
    "inline": Strategy.INLINE,
    "sync": Strategy.SYNC,
    "async": Strategy.ASYNC,
}


def interleaved_latencies(apps: dict[str, App]) -> dict[str, tuple[list[float], list[float]]]:
    """Per case: (wall-clock seconds, CPU seconds of the calling thread) of each command."""
    names = list(apps)
    samples: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in names}
    for round_ in range(WARMUP + ROUNDS):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            app = apps[name]
            cpu = time.thread_time()
            start = time.perf_counter()
            app.mediator.send(COMMAND)
            elapsed = time.perf_counter() - start
            cpu = time.thread_time() - cpu
            if round_ >= WARMUP:
                samples[name][0].append(elapsed)
                samples[name][1].append(cpu)
            if app.worker is not None:
                assert app.engine is not None
                assert app.engine.wait_for([PROJECTION], round_ + 1, timeout=30)
    return samples


@pytest.mark.slow
@pytest.mark.benchmark(group="projections: command latency, interleaved (SQLite)")
def test_command_latency_interleaved(benchmark: Any, app_factory: Callable[..., App]) -> None:
    """Wall-clock medians, and the calling thread's CPU time per command.

    On a busy machine a command that needs more CPU than a scheduler slice gets preempted
    and waits for other processes, so wall-clock ratios grow with load; the CPU-time ratio
    is the cost of the work itself (for async it leaves out the worker thread's CPU).
    """
    apps = {name: app_factory(strategy) for name, strategy in CASES.items()}
    worker = apps["async"].worker
    assert worker is not None
    worker.start()
    samples = benchmark.pedantic(interleaved_latencies, args=(apps,), rounds=1, iterations=1)
    wall_baseline = statistics.median(samples["no projection"][0])
    cpu_baseline = statistics.median(samples["no projection"][1])
    for name, (wall, cpu) in samples.items():
        key = name.replace(" ", "_")
        median = statistics.median(wall)
        benchmark.extra_info[f"{key}_median_us"] = round(median * 1e6, 1)
        benchmark.extra_info[f"{key}_p90_us"] = round(percentile(wall, 0.9) * 1e6, 1)
        benchmark.extra_info[f"{key}_ratio"] = round(median / wall_baseline, 2)
        benchmark.extra_info[f"{key}_cpu_median_us"] = round(statistics.median(cpu) * 1e6, 1)
        benchmark.extra_info[f"{key}_cpu_ratio"] = round(statistics.median(cpu) / cpu_baseline, 2)
        goal = GOALS[name]
        if goal is not None:
            benchmark.extra_info[f"{key}_meets_goal_{goal}x"] = median / wall_baseline <= goal
    print(f"\ninterleaved: {benchmark.extra_info}")
    for app in apps.values():
        assert count(app.write, orders) == WARMUP + ROUNDS


# -- 2. async lag --------------------------------------------------------------------------------

RATE = 200  # commands per second
DURATION = 3.0  # seconds


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def steady_writes_with_worker(app: App) -> dict[str, float]:
    assert app.engine is not None
    assert app.worker is not None
    engine, worker = app.engine, app.worker
    commands = int(RATE * DURATION)
    committed: list[float] = []  # committed[n - 1]: when position n committed
    applied: dict[int, float] = {}  # position -> when the batch covering it committed
    visible: dict[int, float] = {}  # position -> when engine.wait_for saw it
    sa.event.listen(
        app.session_factory, "after_commit", lambda _s: committed.append(time.perf_counter())
    )
    batch: dict[str, int] = {}  # the position the worker's open batch moves the checkpoint to

    def on_execute(_c: Any, _cur: Any, statement: str, _p: Any, context: Any, _m: Any) -> None:
        if statement.startswith("UPDATE projection_checkpoints SET position"):
            batch["reached"] = context.compiled_parameters[0]["position"]

    def on_commit(_connection: Any) -> None:
        reached = batch.pop("reached", None)
        if reached is not None:
            now = time.perf_counter()
            for p in range(max(applied, default=0) + 1, reached + 1):
                applied[p] = now

    sa.event.listen(app.read, "after_cursor_execute", on_execute)
    sa.event.listen(app.read, "commit", on_commit)

    def observe() -> None:
        # engine.wait_for is what AtLeast uses: woken by every batch the worker commits in
        # this process, so the observer costs one checkpoint read per batch, not a busy poll.
        last = 0
        deadline = time.monotonic() + DURATION * 10
        while last < commands and time.monotonic() < deadline:
            if not engine.wait_for([PROJECTION], last + 1, timeout=1.0):
                continue
            now = time.perf_counter()
            position = engine.checkpoint(PROJECTION).position
            for p in range(last + 1, position + 1):
                visible[p] = now
            last = max(last, position)

    observer = threading.Thread(target=observe, name="lag-observer")
    worker.start()
    observer.start()
    receipt = Receipt()
    start = time.perf_counter()
    late = 0
    for n in range(commands):
        due = start + n / RATE
        pause = due - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        elif pause < -0.001:  # more than 1 ms behind schedule: the writer cannot keep up
            late += 1
        app.mediator.send(COMMAND, receipt=receipt)
    elapsed = time.perf_counter() - start
    observer.join(timeout=30)
    assert receipt.token == commands == len(committed), "one commit, one position per command"
    lags = [applied[p] - committed[p - 1] for p in range(1, commands + 1)]
    seen = [visible[p] - committed[p - 1] for p in range(1, commands + 1)]
    return {
        "commands": commands,
        "achieved_rate": round(commands / elapsed, 1),
        "late_sends": late,
        "lag_p50_ms": round(percentile(lags, 0.50) * 1e3, 2),
        "lag_p99_ms": round(percentile(lags, 0.99) * 1e3, 2),
        "lag_max_ms": round(max(lags) * 1e3, 2),
        "wait_for_p50_ms": round(percentile(seen, 0.50) * 1e3, 2),
        "wait_for_p99_ms": round(percentile(seen, 0.99) * 1e3, 2),
        "wait_for_max_ms": round(max(seen) * 1e3, 2),
    }


@pytest.mark.slow
@pytest.mark.benchmark(group="projections: async lag, 200 commands/s for 3 s (SQLite)")
def test_async_projection_lag(benchmark: Any, app_factory: Callable[..., App]) -> None:
    app = app_factory(Strategy.ASYNC)
    figures = benchmark.pedantic(steady_writes_with_worker, args=(app,), rounds=1, iterations=1)
    benchmark.extra_info.update(figures)
    print(f"\nasync lag: {figures}")
    assert count(app.read, order_summary) == figures["commands"]


# -- 3. rebuild throughput ---------------------------------------------------------------------

SEEDED = 50_000
SEED_BATCH = 1_000
SEED_IDS = 1_000_000  # seeded order ids start here, clear of the ids commands insert
REBUILD_ROUNDS = 3


def seed_log(app: App, events: int) -> None:
    """Append ``events`` straight to the log (no write-model rows: the projection needs none)."""
    event_log = EventLog(event_types)
    meta = {"correlation_id": "seed", "causation_id": "seed", "command_type": "PlaceOrder"}
    for first in range(1, events + 1, SEED_BATCH):
        pending = [
            PendingEvent(
                OrderPlaced(
                    order_id=SEED_IDS + n, customer=f"customer-{n % 500}", total_cents=n % 10_000
                ),
                "",
                str(n),
            )
            for n in range(first, min(first + SEED_BATCH, events + 1))
        ]
        with app.write.begin() as connection:
            event_log.append(connection, pending, meta)


@pytest.mark.slow
@pytest.mark.benchmark(group="projections: rebuild 50k events (SQLite)")
@pytest.mark.parametrize("batch", [False, True], ids=["per-event handler", "batch handler"])
@pytest.mark.parametrize("in_place", [True, False], ids=["in place", "blue-green"])
def test_rebuild_throughput(
    benchmark: Any, app_factory: Callable[..., App], in_place: bool, batch: bool
) -> None:
    app = app_factory(Strategy.ASYNC, batch=batch)  # no worker: the rebuild is the only reader
    engine = app.engine
    assert engine is not None
    seed_log(app, SEEDED)
    progress: list[tuple[int, int]] = []
    cpu: list[float] = []  # CPU seconds per round: barely changed by other processes' load

    def rebuild() -> int:
        progress.clear()
        started = time.process_time()
        applied = engine.rebuild(
            PROJECTION,
            in_place=in_place,
            progress=lambda done, total: progress.append((done, total)),
        )
        cpu.append(time.process_time() - started)
        return applied

    applied = benchmark.pedantic(rebuild, rounds=REBUILD_ROUNDS, iterations=1)
    assert applied == SEEDED
    assert progress[-1] == (SEEDED, SEEDED)
    assert count(app.read, order_summary) == SEEDED
    assert engine.checkpoint(PROJECTION).position == SEEDED
    median = benchmark.stats.stats.median
    benchmark.extra_info["events"] = SEEDED
    benchmark.extra_info["handler"] = "batch" if batch else "per event"
    benchmark.extra_info["batch_size"] = engine.projection(PROJECTION).batch_size
    benchmark.extra_info["events_per_second"] = round(SEEDED / median)
    benchmark.extra_info["events_per_cpu_second"] = round(SEEDED / statistics.median(cpu))
    benchmark.extra_info["goal_events_per_second"] = 20_000
    mode = "in place" if in_place else "blue/green"
    handler = "batch handler" if batch else "per-event handler"
    print(
        f"\nrebuild ({mode}, {handler}): {SEEDED / median:,.0f} events/s, "
        f"{SEEDED / statistics.median(cpu):,.0f} events per CPU-second"
    )
