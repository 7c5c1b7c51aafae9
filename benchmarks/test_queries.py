"""Queries: the same questions answered from the read models and from the write model.

Four questions, on one seeded dataset (:mod:`benchmarks.dataset`):

- ``list_first_page``: a user's newest 20 orders (``ListUserOrders``);
- ``list_later_page``: the 3rd page of a user's orders, through the 2nd page's cursor;
- ``order_detail``: one order with its customer, lines and status history (``GetOrderDetail``);
- ``daily_analytics_30d``: order count and revenue per day and status over 30 days
  (``GetDailyAnalytics``).

Each is answered from two sources, ``read_model`` (the read side's handlers over the read
database) and ``write_model`` (the baseline's handlers: joins and aggregates over the
normalized write model), by two paths:

- ``mediator``: ``Mediator.ask(query)``, a bare mediator (no middleware) with the app's
  handlers and dependencies (``ReadDatabase``, ``CursorCodec``): dispatch, SQLAlchemy Core,
  and decoding the answer into the views (msgspec structs);
- ``raw_driver``: the floor. The driver (``sqlite3``, or psycopg) runs the very SQL the
  mediator path sent, with the same bound values, and fetches every row; nothing else. The
  statements are captured once per parameter set, on separate connections (an event
  listener on the timed connections would slow them down).

Parameters are random but seeded: 50 per question, the same for every source and path,
used in turn, one per round. Each case is warmed up (every parameter once), then timed for
``rounds`` single calls: as many as fit in ``BENCH_SECONDS`` (2 s), at least
``BENCH_MIN_ROUNDS`` (20) and at most ``BENCH_ROUNDS`` (300). ``extra_info`` holds the
median and p95 in microseconds, and the case (backend, size, query, source, path).

Settings (environment): ``BENCH_SIZE`` orders (10,000), ``BENCH_SEED`` (0),
``BENCH_BACKEND`` (``sqlite``, or ``postgres`` with ``BENCH_POSTGRES_URL``). Run it through
``python -m benchmarks.report`` (``make bench``), which adds the size ladder, repeats and the
reports, or alone::

    BENCH_SIZE=100000 .venv/bin/pytest benchmarks/test_queries.py --benchmark-only
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import statistics
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from benchmarks.dataset import (
    ANALYTICS_DAYS,
    LATER_PAGE,
    Dataset,
    draw_parameters,
    open_dataset,
)
from cqrs_kit import Dependencies, Mediator, Query, Registry
from reference_app.baseline_handlers import baseline_registry
from reference_app.read.cursor import CursorCodec
from reference_app.read.database import ReadDatabase
from reference_app.read.handlers import registry as read_registry
from reference_app.read.queries import GetDailyAnalytics, GetOrderDetail, ListUserOrders
from reference_app.write.domain import OrderId, UserId

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

SIZE = int(os.environ.get("BENCH_SIZE", "10000"))
SEED = int(os.environ.get("BENCH_SEED", "0"))
BACKEND = os.environ.get("BENCH_BACKEND", "sqlite")
MAX_ROUNDS = int(os.environ.get("BENCH_ROUNDS", "300"))
MIN_ROUNDS = int(os.environ.get("BENCH_MIN_ROUNDS", "20"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "2"))
PARAMETERS = 50
CURSOR_KEY = b"benchmark cursor key, not a secret"

QUERIES = ("list_first_page", "list_later_page", "order_detail", "daily_analytics_30d")
SOURCES = ("read_model", "write_model")
PATHS = ("mediator", "raw_driver")
CASES = [(q, s, p) for q in QUERIES for s in SOURCES for p in PATHS]

Statement = tuple[str, Any]
"""SQL text and its bound parameters, as the driver received them."""


# -- the dataset and the two sides ---------------------------------------------------------


@dataclass
class Side:
    """One source: the mediator that answers from it, and how to reach it raw."""

    mediator: Mediator
    capture: Callable[[Query[Any]], list[Statement]]
    raw: Callable[[list[Statement]], object]
    close: Callable[[], None]


def _postgres_url() -> str | None:
    if BACKEND == "sqlite":
        return None
    url = os.environ.get("BENCH_POSTGRES_URL")
    if BACKEND != "postgres" or not url:
        pytest.exit(f"BENCH_BACKEND={BACKEND!r}: use sqlite, or postgres with BENCH_POSTGRES_URL")
    return url


def _side(registry: Registry, name: str, engine: sa.Engine, path: Any) -> Side:
    codec = CursorCodec(CURSOR_KEY)
    reader = ReadDatabase(engine)
    mediator = Mediator(registry, resolver=Dependencies({name: reader, "cursors": codec}))
    mediator.freeze()

    # The capture runs the same handlers on other connections, with a statement listener.
    captured: list[Statement] = []

    def listener(*args: Any) -> None:
        _connection, _cursor, statement, parameters, _context, _many = args
        captured.append((statement, parameters))

    if engine.dialect.name == "sqlite":
        capture_reader = ReadDatabase(engine)
        with capture_reader.connect() as connection:  # parked, then reused by every query
            event.listen(connection, "before_cursor_execute", listener)
        capture_engine: sa.Engine | None = None
    else:
        capture_engine = sa.create_engine(engine.url)
        event.listen(capture_engine, "before_cursor_execute", listener)
        capture_reader = ReadDatabase(capture_engine)
    capturer = Mediator(registry, resolver=Dependencies({name: capture_reader, "cursors": codec}))

    def capture(query: Query[Any]) -> list[Statement]:
        captured.clear()
        capturer.ask(query)
        return list(captured)

    if engine.dialect.name == "sqlite":
        db = sqlite3.connect(path, check_same_thread=False)

        def raw(statements: list[Statement]) -> object:
            for sql, parameters in statements:
                rows = db.execute(sql, parameters).fetchall()
            return rows

        def close_raw() -> None:
            db.close()
    else:
        import psycopg

        pg = psycopg.connect(
            engine.url.set(drivername="postgresql").render_as_string(hide_password=False),
            autocommit=True,
        )

        def raw(statements: list[Statement]) -> object:
            with pg.cursor() as cursor:
                for sql, parameters in statements:
                    cursor.execute(sql, parameters)
                    rows = cursor.fetchall()
            return rows

        def close_raw() -> None:
            pg.close()

    def close() -> None:
        close_raw()
        reader.close()
        capture_reader.close()
        if capture_engine is not None:
            capture_engine.dispose()

    return Side(mediator, capture, raw, close)


@dataclass
class Bench:
    """The dataset, both sides, and every case's parameters (queries and captured SQL)."""

    dataset: Dataset
    sides: dict[str, Side]
    queries: dict[str, list[Query[Any]]]
    statements: dict[tuple[str, str], list[list[Statement]]]


def _queries(dataset: Dataset, read: Mediator) -> dict[str, list[Query[Any]]]:
    drawn = draw_parameters(dataset, PARAMETERS, SEED)
    later = []
    for user_id in drawn.later_page_users:
        query = ListUserOrders(user_id=UserId(user_id))
        for _ in range(LATER_PAGE - 1):  # follow the cursors to the page
            query = ListUserOrders(user_id=UserId(user_id), cursor=read.ask(query).next_cursor)
        later.append(query)
    span = dt.timedelta(days=ANALYTICS_DAYS - 1)
    return {
        "list_first_page": [ListUserOrders(user_id=UserId(u)) for u in drawn.first_page_users],
        "list_later_page": later,
        "order_detail": [GetOrderDetail(order_id=OrderId(o)) for o in drawn.order_ids],
        "daily_analytics_30d": [
            GetDailyAnalytics(start=start, end=start + span) for start in drawn.analytics_starts
        ],
    }


@pytest.fixture(scope="module")
def bench() -> Iterator[Bench]:
    dataset = open_dataset(SIZE, seed=SEED, postgres_url=_postgres_url())
    sides = {
        "read_model": _side(read_registry, "reader", dataset.read_engine, dataset.read_path),
        "write_model": _side(
            baseline_registry, "writer_reader", dataset.write_engine, dataset.write_path
        ),
    }
    try:
        queries = _queries(dataset, sides["read_model"].mediator)
        statements = {}
        for name, batch in queries.items():
            for source, side in sides.items():
                statements[name, source] = [side.capture(query) for query in batch]
            # Both sources answer the same question the same way.
            for query in batch[:10]:
                assert sides["read_model"].mediator.ask(query) == sides["write_model"].mediator.ask(
                    query
                ), query
        yield Bench(dataset, sides, queries, statements)
    finally:
        for side in sides.values():
            side.close()
        dataset.close()


# -- the cases -----------------------------------------------------------------------------


def _percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


@pytest.mark.parametrize(("query", "source", "path"), CASES, ids=["-".join(c) for c in CASES])
def test_query(bench: Bench, benchmark: Any, query: str, source: str, path: str) -> None:
    side = bench.sides[source]
    if path == "mediator":
        target: Callable[[Any], object] = side.mediator.ask
        arguments: list[Any] = bench.queries[query]
    else:
        target = side.raw
        arguments = bench.statements[query, source]

    # Warm up on every parameter once (caches, statement preparation), timing the calls
    # to decide how many rounds fit in the time budget.
    durations = []
    for argument in arguments:
        started = time.perf_counter()
        target(argument)
        durations.append(time.perf_counter() - started)
    rounds = max(MIN_ROUNDS, min(MAX_ROUNDS, int(SECONDS / statistics.median(durations))))

    turn = iter(range(10**9))

    def next_argument() -> tuple[tuple[Any, ...], dict[str, Any]]:
        return (arguments[next(turn) % len(arguments)],), {}

    benchmark.group = f"{query} ({BACKEND}, {SIZE:,} orders)"
    benchmark.pedantic(target, setup=next_argument, rounds=rounds, warmup_rounds=0)
    samples = benchmark.stats.stats.data
    benchmark.extra_info.update(
        backend=BACKEND,
        size=SIZE,
        query=query,
        source=source,
        path=path,
        rounds=len(samples),
        median_us=statistics.median(samples) * 1e6,
        p95_us=_percentile(samples, 0.95) * 1e6,
        dataset=bench.dataset.manifest.key,
    )
