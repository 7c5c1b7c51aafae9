"""The entry points, :func:`seed` and :func:`seed_from_settings`, and what they return."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlalchemy as sa

from cqrs_kit.eventlog import EventLog
from cqrs_kit.persistence import configure_sqlite
from cqrs_kit.projections import Projection, ProjectionEngine, Strategy
from cqrs_kit.projections.checkpoints import CheckpointStore
from reference_app.seed.errors import SeedError
from reference_app.seed.loading import _load, _Plan
from reference_app.seed.processes import _load_in_processes
from reference_app.seed.sinks import _drop_indexes
from reference_app.seed.tables import _READ_MODELS, _READ_TABLES, _WRITE_TABLES
from reference_app.seed.world import default_products, default_users
from reference_app.write.messages import event_types
from reference_app.write.schema import create_write_model
from reference_app.write.schema import (
    metadata as write_metadata,
)

if TYPE_CHECKING:
    from reference_app.config import Settings

PARALLEL_FROM = 500_000
"""From this many orders, two SQLite files are seeded by two processes unless told otherwise.

Two processes spend ~0.5 s more CPU time to start and 15-30% more to run (each draws the
whole random sequence), which pays only while a second core is free. Measured on 2 cores:
100,000 orders in 4.8 s in one process and 3.8 s in two when idle, but 5.6 s and 6.3 to
7.3 s with another job busy on one core; 1,000,000 in 55 s and 42 s when idle, 66 s and
68 s with a core busy. So a seed of the usual benchmark sizes stays in one process on a
shared machine, and the big one gets both cores when it can.
"""

Progress = Callable[[int, int], None]
"""Called as ``progress(orders_done, orders_total)``: once at 0, then after each batch."""


@dataclass(frozen=True, slots=True)
class SeedReport:
    """What a seeding run wrote.

    Attributes:
        users: Users.
        products: Products.
        orders: Orders.
        order_items: Order lines.
        status_changes: Status changes after placing (history rows beyond the first).
        events: Events appended to the log (its head, as the log was empty).
        seconds: Wall-clock time of the run.
    """

    users: int
    products: int
    orders: int
    order_items: int
    status_changes: int
    events: int
    seconds: float


def _plan(orders: int, users: int, products: int, batch: int) -> None:
    if orders < 0 or users < 1 or products < 1 or batch < 1:
        msg = (
            f"seed needs orders >= 0, users >= 1, products >= 1 and batch >= 1; got "
            f"orders={orders}, users={users}, products={products}, batch={batch}"
        )
        raise SeedError(msg)


def seed(
    write_engine: sa.Engine,
    read_engine: sa.Engine,
    *,
    orders: int,
    users: int | None = None,
    products: int | None = None,
    seed: int = 0,
    progress: Progress | None = None,
    batch: int = 10_000,
    projections: Sequence[Projection] | None = None,
    parallel: bool | None = None,
) -> SeedReport:
    """Fill empty write and read databases with a deterministic dataset.

    Creates the tables when missing: the write model and event log in ``write_engine``,
    the read models and projection checkpoints where each projection lives (the read
    database; the write database for an ``inline`` one).

    Args:
        write_engine: The write database.
        read_engine: The read database.
        orders: How many orders.
        users: How many users; :func:`default_users` when omitted.
        products: How many products; :func:`default_products` when omitted.
        seed: The seed of the random generator: same arguments, same data.
        progress: Called as ``progress(orders_done, orders)`` at the start and after each
            batch.
        batch: Orders per transaction (and between two ``progress`` calls).
        projections: The app's projections (their strategies decide where their read
            models live); ``build_projections()`` when omitted.
        parallel: Share the work with a second process: the same data, sooner when a
            second core is free (with both cores busy, its ~10-30% extra CPU time can make
            it slower). Possible when the databases are two SQLite files and every read
            model is in the read one; ``None`` (the default) does it when possible, with
            ``orders >= PARALLEL_FROM`` and two cores or more. (The engines' idle pooled
            connections to SQLite files are closed in any case, so the load can leave the
            WAL.)

    Returns:
        What was written, and how long it took.

    Raises:
        SeedError: A database already holds orders, events or read-model rows, the
            projections lack one of the app's read models, an argument is out of range,
            or ``parallel`` is true and not possible.
    """
    return _seed(
        write_engine,
        read_engine,
        orders=orders,
        users=users,
        products=products,
        seed=seed,
        progress=progress,
        batch=batch,
        projections=projections,
        parallel=parallel,
    )


def _seed(
    write_engine: sa.Engine,
    read_engine: sa.Engine,
    *,
    orders: int,
    users: int | None,
    products: int | None,
    seed: int,
    progress: Progress | None,
    batch: int,
    projections: Sequence[Projection] | None,
    parallel: bool | None,
) -> SeedReport:
    started = time.perf_counter()
    users = default_users(orders) if users is None else users
    products = default_products(orders) if products is None else products
    _plan(orders, users, products, batch)
    if projections is None:
        from reference_app.read.projections import build_projections

        projections = build_projections()
    home = {
        p.name: write_engine if p.strategy is Strategy.INLINE else read_engine for p in projections
    }
    missing = [name for name in _READ_MODELS if name not in home]
    if missing:
        msg = f"the projections {missing} are missing; seed fills {list(_READ_MODELS)}"
        raise SeedError(msg)
    create_write_model(write_engine)
    engine = ProjectionEngine(
        event_log=EventLog(event_types),
        write_engine=write_engine,
        read_engine=read_engine,
        projections=projections,
        write_metadata=write_metadata,
    )
    try:
        engine.setup()
    finally:
        engine.close()
    tables: dict[sa.Engine, list[sa.Table]] = {write_engine: list(_WRITE_TABLES)}
    for name, table in zip(_READ_MODELS, _READ_TABLES, strict=True):
        tables.setdefault(home[name], []).append(table)
    _check_empty(tables)
    files = _sqlite_files(write_engine, read_engine, home)
    if parallel and files is None:
        msg = (
            "parallel seeding needs the write and read databases in two SQLite files, "
            "with every read model in the read one: pass parallel=None or False"
        )
        raise SeedError(msg)
    if parallel is None:
        parallel = orders >= PARALLEL_FROM and (os.cpu_count() or 1) > 1
    for target, loaded in tables.items():
        _drop_indexes(target, loaded)

    for target in tables:
        if _sqlite_file(target) is not None:
            target.dispose()  # an idle connection would keep the database in WAL mode
    plan = _Plan(orders, users, products, seed, batch)
    if files is not None and parallel:
        generator = _load_in_processes(write_engine, *files, plan, progress)
    else:
        generator = _load(tables, plan, progress)
    if progress is not None:
        progress(orders, orders)
    _advance_checkpoints(write_engine, projections, home)
    return SeedReport(
        users=users,
        products=products,
        orders=orders,
        order_items=generator.items,
        status_changes=generator.changes,
        events=generator.events,
        seconds=time.perf_counter() - started,
    )


def seed_from_settings(  # noqa: PLR0917 - the CLI passes these positionally
    settings: Settings,
    orders: int,
    users: int | None = None,
    products: int | None = None,
    seed: int = 0,
    progress: Progress | None = None,
) -> SeedReport:
    """:func:`seed` the databases ``settings`` names, with its projection strategies.

    Args:
        settings: The app's settings (database URLs, projection strategies).
        orders: How many orders.
        users: How many users; :func:`default_users` when omitted.
        products: How many products; :func:`default_products` when omitted.
        seed: The seed of the random generator.
        progress: Called as ``progress(orders_done, orders)``.

    Returns:
        What was written.

    Raises:
        SeedError: See :func:`seed`.
    """
    from reference_app.read.projections import build_projections

    write_engine = _engine(settings.write_database_url)
    read_engine = _engine(settings.read_database_url)
    try:
        return _seed(
            write_engine,
            read_engine,
            orders=orders,
            users=users,
            products=products,
            seed=seed,
            progress=progress,
            batch=10_000,
            projections=build_projections(settings.projections),
            parallel=None,
        )
    finally:
        write_engine.dispose()
        read_engine.dispose()


def _engine(url: str) -> sa.Engine:
    engine = sa.create_engine(url)
    if engine.dialect.name == "sqlite":
        configure_sqlite(engine)
    return engine


def _sqlite_files(
    write_engine: sa.Engine, read_engine: sa.Engine, home: dict[str, sa.Engine]
) -> tuple[str, str] | None:
    """The two files, if the databases are SQLite files with every read model in the read one.

    ``None`` otherwise: in-memory or URI databases, other drivers, one file, inline models.
    """
    write, read = _sqlite_file(write_engine), _sqlite_file(read_engine)
    if write is None or read is None or os.path.samefile(write, read):
        return None
    if any(home[name] is not read_engine for name in _READ_MODELS):
        return None
    return write, read


def _sqlite_file(engine: sa.Engine) -> str | None:
    """The absolute path of a pysqlite database file; ``None`` for anything else."""
    database = engine.url.database
    if engine.dialect.driver != "pysqlite" or not database or not os.path.isfile(database):
        return None
    return os.path.abspath(database)


def _check_empty(tables: dict[sa.Engine, list[sa.Table]]) -> None:
    for engine, loaded in tables.items():
        with engine.connect() as connection:
            full = [
                table.name
                for table in loaded
                if connection.execute(sa.select(sa.literal(1)).select_from(table).limit(1)).first()
            ]
        if full:
            msg = (
                f"{engine.url.render_as_string(hide_password=True)} already holds rows in "
                f"{full}; seed fills empty databases only: use new ones (or delete these)"
            )
            raise SeedError(msg)


def _advance_checkpoints(
    write_engine: sa.Engine,
    projections: Sequence[Projection],
    home: dict[str, sa.Engine],
) -> None:
    """Put every projection's checkpoint at the log head: the seeded rows are its effect."""
    with write_engine.connect() as connection:
        head = EventLog(event_types).head(connection)
    store = CheckpointStore()
    for projection in projections:
        with home[projection.name].begin() as connection:
            checkpoint = store.get(connection, projection.name)
            store.advance(connection, projection.name, checkpoint.position, head)
