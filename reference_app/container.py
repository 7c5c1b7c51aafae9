"""The composition root: every object the app runs on, wired once, in one container.

Nothing else in the app builds engines, mediators or projections; the HTTP layer, the CLI,
the benchmarks and the tests all ask a :class:`Container` for them::

    container = build_container(Settings.from_env())
    create_schema(container)                     # once per database
    order_id = container.mediator().send(CreateOrder(...))
    close_container(container)                   # stops the worker, disposes the engines

What is in it:

- Engines, one per database (one in all when the read models share the write database, as
  ``inline`` projections require). On SQLite both begin with ``BEGIN IMMEDIATE`` (writers queue
  for the lock up front): commands write the write database, projections the read one.
  Queries, the baseline and API token checks read through
  :class:`~reference_app.read.database.ReadDatabase` (``reader`` on the read database,
  ``writer_reader`` on the write one): reused read-only connections that never take the
  write lock.
- The event log; the projection engine over
  :func:`~reference_app.read.projections.build_projections` with the configured strategies;
  and a background :class:`~cqrs_kit.projections.ProjectionWorker` when some projection is
  ``async`` (and ``ORDERS_EMBEDDED_WORKER`` is on).
- The handlers' dependencies, as providers named like the handler parameters (``uow``,
  ``clock``, ``reader``, ``writer_reader``, ``cursors``), resolved per dispatch by
  :class:`~cqrs_kit.integrations.dependency_injector.ContainerResolver`.
- ``mediator``: the write handlers and the read-model query handlers, behind
  ``[logging, consistency wait, projections, transaction]``. ``baseline_mediator``: the same
  queries answered from the write model, with no middleware, for benchmarks and as an oracle.

Engines, the projection engine, the worker and the read databases are ``Resource`` providers,
so :func:`close_container` releases them in reverse dependency order (the worker stops before
the engines it uses are disposed).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import sqlalchemy as sa
import structlog
from dependency_injector import containers, providers
from pydantic import ValidationError
from sqlalchemy.orm import Session, sessionmaker

from cqrs_kit import Mediator, Registry
from cqrs_kit.dependencies import unit_of_work_of
from cqrs_kit.eventlog import EventLog
from cqrs_kit.integrations.dependency_injector import ContainerResolver, DispatchContextProvider
from cqrs_kit.middleware.logging import LoggingMiddleware
from cqrs_kit.middleware.projection import ConsistencyMiddleware, ProjectionMiddleware
from cqrs_kit.middleware.transaction import TransactionMiddleware
from cqrs_kit.persistence import sqlite_engine
from cqrs_kit.projections import Projection, ProjectionEngine, ProjectionWorker, Strategy
from cqrs_kit.projections.checkpoints import projection_metadata
from reference_app.baseline_handlers import baseline_registry
from reference_app.config import Settings
from reference_app.read.cursor import CursorCodec, InvalidCursorError
from reference_app.read.database import ReadDatabase
from reference_app.read.handlers import registry as read_registry
from reference_app.read.projections import build_projections
from reference_app.read.schema import create_read_model
from reference_app.write.domain import OrderError
from reference_app.write.handlers import registry as write_registry
from reference_app.write.handlers import system_clock
from reference_app.write.messages import event_types
from reference_app.write.schema import create_write_model
from reference_app.write.schema import metadata as write_metadata

__all__ = [
    "Container",
    "build_container",
    "close_container",
    "configure_logging",
    "create_schema",
    "merged_registry",
    "missing_schema",
]


# -- factories -------------------------------------------------------------------------------


def _engine(url: str) -> Iterator[sa.Engine]:
    """An engine for ``url`` (``BEGIN IMMEDIATE`` on SQLite), disposed at shutdown.

    Args:
        url: A normalized SQLAlchemy URL (see :class:`~reference_app.config.Settings`).
    """
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = sqlite_engine(str(parsed.database))
    else:
        engine = sa.create_engine(url, pool_pre_ping=True)
    try:
        yield engine
    finally:
        engine.dispose()


def _read_engine(settings: Settings, write_engine: sa.Engine) -> Iterator[sa.Engine]:
    """The read models' engine: the write engine itself when they share a database.

    That is always so with an ``inline`` projection (its tables are written in the command's
    transaction, so they live in the write database, and the settings require both URLs to be
    equal); one engine then serves both, so the queries (``reader``), the read-model tables
    (:func:`create_schema`) and the projections all see the one database. Otherwise, an
    engine of its own, disposed at shutdown.
    """
    inline = any(s is Strategy.INLINE for s in settings.projections.values())
    if inline or settings.read_database_url == settings.write_database_url:
        yield write_engine  # disposed by its own provider
        return
    yield from _engine(settings.read_database_url)


def _projection_engine(
    event_log: EventLog,
    write_engine: sa.Engine,
    read_engine: sa.Engine,
    projections: Sequence[Projection],
) -> Iterator[ProjectionEngine]:
    engine = ProjectionEngine(
        event_log=event_log,
        write_engine=write_engine,
        read_engine=read_engine,
        projections=projections,
        write_metadata=write_metadata,
    )
    try:
        yield engine
    finally:
        engine.close()


def _worker(engine: ProjectionEngine, settings: Settings) -> Iterator[ProjectionWorker | None]:
    """The background worker of the ``async`` projections, running; ``None`` if there are none."""
    names = settings.async_projections
    if not names or not settings.embedded_worker:
        yield None
        return
    worker = ProjectionWorker(engine, names)
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()


def _read_database(engine: sa.Engine) -> Iterator[ReadDatabase]:
    database = ReadDatabase(engine)
    try:
        yield database
    finally:
        database.close()


def _transaction(
    session_factory: sessionmaker[Session], event_log: EventLog, engine: ProjectionEngine
) -> TransactionMiddleware:
    return TransactionMiddleware(session_factory, event_log, after_append=[engine.apply_inline])


def merged_registry(*registries: Registry) -> Registry:
    """A new registry holding the registrations of ``registries`` (:meth:`Registry.include`).

    The module-level registries stay unfrozen and unobserved, so several containers (tests,
    benchmarks) can build mediators from them in one process.

    Raises:
        DuplicateHandlerError: Two registries handle the same command or query.
    """
    merged = Registry()
    for registry in registries:
        merged.include(registry)
    return merged


def _mediator(
    registries: Sequence[Registry],
    middleware: Sequence[Callable[..., Any]],
    resolver: ContainerResolver,
) -> Mediator:
    """A mediator, frozen now so a missing dependency fails at start-up, not mid-request."""
    mediator = Mediator(merged_registry(*registries), middleware=middleware, resolver=resolver)
    mediator.freeze()
    return mediator


# -- the container -----------------------------------------------------------------------------


class Container(containers.DeclarativeContainer):
    """The app's providers; see the module docstring. Build it with :func:`build_container`."""

    __self__ = providers.Self()

    settings = providers.Dependency(instance_of=Settings)

    # Databases.
    write_engine = providers.Resource(_engine, settings.provided.write_database_url)
    read_engine = providers.Resource(_read_engine, settings, write_engine)
    session_factory = providers.Singleton(sessionmaker, bind=write_engine)

    # Event log and projections.
    event_log = providers.Singleton(EventLog, event_types)
    projections = providers.Singleton(build_projections, settings.provided.projections)
    projection_engine = providers.Resource(
        _projection_engine, event_log, write_engine, read_engine, projections
    )
    worker = providers.Resource(_worker, projection_engine, settings)

    # Handler dependencies, by parameter name (ContainerResolver matches names).
    uow = providers.Callable(unit_of_work_of, DispatchContextProvider())
    clock = providers.Object(system_clock)
    cursors = providers.Singleton(CursorCodec, settings.provided.cursor_key)
    reader = providers.Resource(_read_database, read_engine)
    writer_reader = providers.Resource(_read_database, write_engine)

    resolver = providers.Singleton(ContainerResolver, __self__)
    middleware = providers.List(
        providers.Singleton(LoggingMiddleware),
        providers.Singleton(ConsistencyMiddleware, projection_engine),
        providers.Singleton(ProjectionMiddleware, projection_engine, worker),
        providers.Singleton(_transaction, session_factory, event_log, projection_engine),
    )
    mediator = providers.Singleton(
        _mediator,
        providers.List(providers.Object(write_registry), providers.Object(read_registry)),
        middleware,
        resolver,
    )
    baseline_mediator = providers.Singleton(
        _mediator, providers.List(providers.Object(baseline_registry)), providers.List(), resolver
    )


def build_container(settings: Settings) -> Container:
    """Return a container for ``settings``; objects are made when first asked for.

    Args:
        settings: The configuration.

    Returns:
        The container. Release it with :func:`close_container`.
    """
    return Container(settings=settings)


def close_container(container: Container) -> None:
    """Stop the worker, close the read databases and dispose the engines (idempotent)."""
    container.shutdown_resources()
    container.reset_singletons()


# -- operations the CLI, the tests and the server share ----------------------------------------


def create_schema(container: Container) -> None:
    """Create the write model, the event log, the read models and the checkpoints, if missing."""
    create_write_model(container.write_engine())
    create_read_model(container.read_engine())
    container.projection_engine().setup()


def missing_schema(container: Container) -> list[str]:
    """Name what :func:`create_schema` would create; empty when the databases are ready."""
    missing = []
    expected = [
        (container.writer_reader(), [*write_metadata.tables, "event_log"], "write"),
        (container.reader(), [*projection_metadata.tables], "read"),
    ]
    for database, tables, where in expected:
        with database.connect() as connection:
            inspector = sa.inspect(connection)
            missing += [f"{where}:{t}" for t in tables if not inspector.has_table(t)]
    return missing


def configure_logging(settings: Settings) -> None:
    """Send structlog and standard-library logs (uvicorn, cqrs_kit) to stderr in one format.

    A dispatch that failed with an error the client caused (a domain refusal, a bad cursor,
    an invalid message) is logged with its outcome but without a traceback: it is an
    answer, not a fault.

    Args:
        settings: ``log_format`` (``console`` or ``json``) and ``log_level``.
    """
    level = logging.getLevelNamesMapping()[settings.log_level.upper()]
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    rendering: list[structlog.typing.Processor] = (
        [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
        if settings.log_format == "json"
        else [structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())]
    )
    structlog.configure(
        processors=[
            _without_expected_tracebacks,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(level),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *rendering],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


_EXPECTED_FAILURES = (OrderError, InvalidCursorError, ValidationError)


def _without_expected_tracebacks(
    _logger: object, _method: str, event: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    if isinstance(event.get("exc_info"), _EXPECTED_FAILURES):
        del event["exc_info"]
    return event
