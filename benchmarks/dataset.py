"""The benchmark datasets: seeded once, cached, and the query parameters drawn from them.

A dataset is a write database and a read database filled by :func:`reference_app.seed.seed`
(default users and products for the size, the app's default projections, random seed
``BENCH_SEED``). It is cached under ``benchmarks/results/data/`` (git-ignored), keyed by
backend, size, seed, :data:`reference_app.seed.SEED_VERSION` and a fingerprint of every
table's DDL, so a change to the schema or to the generator makes a new one. A dataset is
complete when its ``manifest.json`` exists (written last); an unfinished one is seeded again.
From :data:`reference_app.seed.PARALLEL_FROM` orders the seed runs in two processes (the
same data), with a scratch file beside ``write.db`` while it runs.

On PostgreSQL (``BENCH_POSTGRES_URL``, a server where that user may create databases) the
dataset is two databases, ``<key>_w`` and ``<key>_r``, and the manifest is the write
database's comment.

The benchmarks only read: a cached dataset stays as it was seeded.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random
import shutil
import sqlite3
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.schema import CreateIndex, CreateTable

from cqrs_kit.eventlog import metadata as event_log_metadata
from cqrs_kit.persistence import sqlite_engine
from cqrs_kit.projections import projection_metadata
from reference_app import seed as seeding
from reference_app.read.queries import PAGE_SIZE
from reference_app.read.schema import read_metadata
from reference_app.write.schema import metadata as write_metadata
from reference_app.write.schema import orders as orders_table

if TYPE_CHECKING:
    from collections.abc import Callable

DATA_DIR = Path(__file__).parent / "results" / "data"
"""Where SQLite datasets are cached (``benchmarks/results/`` is git-ignored)."""

LATER_PAGE = 3
"""The page the "later page" list query asks for (through two cursors)."""

ANALYTICS_DAYS = 30
"""The length of the analytics range."""


def schema_fingerprint(dialect: sa.Dialect) -> str:
    """A short hash of every table and index the dataset holds, as ``dialect`` creates them."""
    ddl = []
    for metadata in (write_metadata, event_log_metadata, read_metadata, projection_metadata):
        for table in metadata.sorted_tables:
            ddl.append(str(CreateTable(table).compile(dialect=dialect)))
            ddl.extend(
                str(CreateIndex(index).compile(dialect=dialect))
                for index in sorted(table.indexes, key=lambda index: str(index.name))
            )
    return hashlib.sha256("\n".join(ddl).encode()).hexdigest()[:10]


@dataclass(frozen=True)
class Manifest:
    """What a cached dataset holds, and how long it took to seed."""

    key: str
    backend: str
    orders: int
    users: int
    products: int
    order_items: int
    status_changes: int
    events: int
    seed: int
    seed_seconds: float
    seeded_at: str


@dataclass
class Dataset:
    """A seeded dataset, opened.

    Attributes:
        manifest: What it holds.
        write_engine: The write database (the write model and the event log).
        read_engine: The read database (the read models).
        cached: Whether it was found in the cache (``False``: seeded by this call).
        write_path: The SQLite write database file (``None`` on PostgreSQL).
        read_path: The SQLite read database file (``None`` on PostgreSQL).
    """

    manifest: Manifest
    write_engine: sa.Engine
    read_engine: sa.Engine
    cached: bool
    write_path: Path | None = None
    read_path: Path | None = None

    def close(self) -> None:
        """Release the engines' connections."""
        self.write_engine.dispose()
        self.read_engine.dispose()


def dataset_key(backend: str, orders: int, seed: int) -> str:
    """The cache key of a dataset."""
    dialect = sa.create_engine(
        "sqlite://" if backend == "sqlite" else "postgresql+psycopg://"
    ).dialect
    return f"{backend}_{orders}_s{seed}_v{seeding.SEED_VERSION}_{schema_fingerprint(dialect)}"


def open_dataset(
    orders: int,
    *,
    seed: int = 0,
    postgres_url: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Dataset:
    """Open the cached dataset of ``orders`` orders, seeding it first when it is missing.

    Args:
        orders: The size.
        seed: The generator's seed.
        postgres_url: Seed PostgreSQL databases on this server instead of SQLite files.
        progress: Called as ``progress(done, total)`` while seeding.

    Returns:
        The dataset; close it when done.
    """
    if postgres_url:
        return _open_postgres(orders, seed, postgres_url, progress)
    return _open_sqlite(orders, seed, progress)


def _manifest(key: str, backend: str, seed: int, report: seeding.SeedReport) -> Manifest:
    return Manifest(
        key=key,
        backend=backend,
        orders=report.orders,
        users=report.users,
        products=report.products,
        order_items=report.order_items,
        status_changes=report.status_changes,
        events=report.events,
        seed=seed,
        seed_seconds=round(report.seconds, 2),
        seeded_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    )


def _open_sqlite(orders: int, seed: int, progress: Callable[[int, int], None] | None) -> Dataset:
    key = dataset_key("sqlite", orders, seed)
    directory = DATA_DIR / key
    manifest_path = directory / "manifest.json"
    cached = manifest_path.exists()
    if not cached:
        shutil.rmtree(directory, ignore_errors=True)
        building = DATA_DIR / f"{key}.building"
        shutil.rmtree(building, ignore_errors=True)
        building.mkdir(parents=True)
        write_engine = sqlite_engine(building / "write.db")
        read_engine = sqlite_engine(building / "read.db")
        try:
            report = seeding.seed(
                write_engine, read_engine, orders=orders, seed=seed, progress=progress
            )
        finally:
            write_engine.dispose()
            read_engine.dispose()
        _checkpoint_wal(building / "write.db", building / "read.db")
        manifest = _manifest(key, "sqlite", seed, report)
        (building / "manifest.json").write_text(json.dumps(asdict(manifest), indent=2) + "\n")
        building.rename(directory)
    manifest = Manifest(**json.loads(manifest_path.read_text()))
    return Dataset(
        manifest=manifest,
        write_engine=sqlite_engine(directory / "write.db"),
        read_engine=sqlite_engine(directory / "read.db"),
        cached=cached,
        write_path=directory / "write.db",
        read_path=directory / "read.db",
    )


def _checkpoint_wal(*paths: Path) -> None:
    """Fold the WAL into the database files, so a cached dataset is two plain files."""
    for path in paths:
        connection = sqlite3.connect(path)
        try:
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            connection.close()


def _open_postgres(
    orders: int, seed: int, url: str, progress: Callable[[int, int], None] | None
) -> Dataset:
    key = dataset_key("postgres", orders, seed)
    base = make_url(url).set(drivername="postgresql+psycopg")
    names = {"write": f"{key}_w", "read": f"{key}_r"}
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            comment = connection.execute(
                sa.text(
                    "SELECT shobj_description(oid, 'pg_database') FROM pg_database "
                    "WHERE datname = :name"
                ),
                {"name": names["write"]},
            ).scalar()
            cached = bool(comment)
            if not cached:
                for name in names.values():
                    connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                    connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        engines = {role: sa.create_engine(base.set(database=name)) for role, name in names.items()}
        if not cached:
            report = seeding.seed(
                engines["write"], engines["read"], orders=orders, seed=seed, progress=progress
            )
            manifest = _manifest(key, "postgres", seed, report)
            comment = json.dumps(asdict(manifest))
            with engines["write"].connect() as connection:
                connection.exec_driver_sql("ANALYZE")
            with engines["read"].connect() as connection:
                connection.exec_driver_sql("ANALYZE")
            quoted = sa.String().literal_processor(admin.dialect)(comment)  # type: ignore[misc]
            with admin.connect() as connection:
                # The manifest, written last: the mark of a complete dataset.
                connection.exec_driver_sql(f'COMMENT ON DATABASE "{names["write"]}" IS {quoted}')
    finally:
        admin.dispose()
    return Dataset(
        manifest=Manifest(**json.loads(comment)),
        write_engine=engines["write"],
        read_engine=engines["read"],
        cached=cached,
    )


# -- query parameters --------------------------------------------------------------------------


@dataclass(frozen=True)
class Parameters:
    """Random but seeded parameters for each query, the same for every source and path.

    Attributes:
        first_page_users: Users with more than one page of orders (their first page is full).
        later_page_users: Users with at least :data:`LATER_PAGE` full pages.
        order_ids: Orders to look up (uniform over all orders).
        analytics_starts: First days of :data:`ANALYTICS_DAYS`-day ranges within the year.
    """

    first_page_users: list[int]
    later_page_users: list[int]
    order_ids: list[int]
    analytics_starts: list[dt.date]


def draw_parameters(dataset: Dataset, count: int, seed: int = 0) -> Parameters:
    """Draw ``count`` parameters per query from ``dataset``, with a seeded generator."""
    rng = random.Random(f"benchmark parameters {seed}")  # noqa: S311 - not for security
    per_user = sa.select(orders_table.c.user_id, sa.func.count().label("n")).group_by(
        orders_table.c.user_id
    )
    with dataset.write_engine.connect() as connection:
        counts = {row.user_id: row.n for row in connection.execute(per_user)}
    first = sorted(user for user, n in counts.items() if n > PAGE_SIZE)
    later = sorted(user for user, n in counts.items() if n >= LATER_PAGE * PAGE_SIZE)
    if not first or not later:
        msg = f"the dataset has too few orders per user for the list queries ({dataset.manifest})"
        raise ValueError(msg)
    first_day = (seeding.NOW - dt.timedelta(days=seeding.SPAN_DAYS)).date()
    windows = seeding.SPAN_DAYS - ANALYTICS_DAYS
    return Parameters(
        first_page_users=[rng.choice(first) for _ in range(count)],
        later_page_users=[rng.choice(later) for _ in range(count)],
        order_ids=[rng.randint(1, dataset.manifest.orders) for _ in range(count)],
        analytics_starts=[
            first_day + dt.timedelta(days=rng.randrange(windows)) for _ in range(count)
        ],
    )


def describe(dataset: Dataset) -> dict[str, Any]:
    """The dataset's manifest as a dict (for reports)."""
    return asdict(dataset.manifest)
