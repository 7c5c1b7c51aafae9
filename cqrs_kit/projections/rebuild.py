"""Blue/green rebuilds: replay the log into a fresh copy while the live tables keep serving.

The fresh copy lives beside the live tables, in a staging schema (PostgreSQL) or an
attached staging database file (SQLite), with the same table names and its own checkpoint.
Handlers need no change: the staging connection translates their unqualified tables to the
staging schema. The replay is batched, strict (an unknown event type fails it) and resumable:
after a crash, running the rebuild again continues from the staging checkpoint.

When the copy has caught up, one transaction switches: it locks the live checkpoint, applies
the last events to the copy, replaces the live rows with the copy's and moves the live
checkpoint to the copy's position. Readers see the old rows until that commit and the new
ones after it; no query ever sees a half-built read model. The staging copy is then dropped.

An in-place rebuild (for small models) clears the live tables and replays the log into them:
queries see a partial model meanwhile, and ``catch_up`` resumes it after a crash.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from cqrs_kit.exceptions import ConfigurationError
from cqrs_kit.projections._apply import SAVEPOINT, LazyConnection
from cqrs_kit.projections.checkpoints import checkpoints

if TYPE_CHECKING:
    from collections.abc import Iterator

    from cqrs_kit.projections.engine import Progress, ProjectionEngine
    from cqrs_kit.projections.projection import Projection

__all__ = ["BlueGreenRebuild", "rebuild_in_place"]

STAGING = "cqrs_rebuild"
"""The staging schema (PostgreSQL: ``cqrs_rebuild_<projection>``; SQLite: an attached file)."""


class BlueGreenRebuild:
    """Rebuilds one projection into a staging copy, then switches it in.

    Args:
        engine: The projection engine.
        name: The projection to rebuild.
    """

    def __init__(self, engine: ProjectionEngine, name: str) -> None:
        """Prepare the staging location of ``name``."""
        self.engine = engine
        self.projection: Projection = engine.projection(name)
        live = engine._engine_of(self.projection)
        self.live = live
        self.postgres = live.dialect.name == "postgresql"
        if not self.postgres and live.dialect.name != "sqlite":
            msg = f"blue/green rebuilds support PostgreSQL and SQLite, not {live.dialect.name}"
            raise ConfigurationError(msg)
        if self.postgres:
            self.schema = f"{STAGING}_{name}".lower()
            self.staging_engine = live
            self._file: Path | None = None
        else:
            database = live.url.database
            if not database or database == ":memory:":
                msg = "blue/green rebuilds on SQLite need a database file; use in_place=True"
                raise ConfigurationError(msg)
            self.schema = STAGING
            self._file = Path(f"{database}.rebuild-{name}")
            self.staging_engine = _attaching_engine(live, self._file, self.schema)
        self._tables = [
            t.to_metadata(sa.MetaData(), schema=self.schema) for t in self.projection.tables
        ]
        self._checkpoints = checkpoints.to_metadata(sa.MetaData(), schema=self.schema)

    @contextlib.contextmanager
    def _staging(self, connection: sa.Connection) -> Iterator[sa.Connection]:
        """Translate unqualified tables to the staging schema while inside the block.

        ``Connection.execution_options`` changes the connection in place, so the map is
        taken off again on the way out.
        """
        connection.execution_options(schema_translate_map={None: self.schema})
        try:
            yield connection
        finally:
            connection.execution_options(schema_translate_map=None)

    @contextlib.contextmanager
    def _staging_transaction(self) -> Iterator[sa.Connection]:
        """A transaction on the staging copy, its tables translated while inside."""
        with self.staging_engine.begin() as connection, self._staging(connection) as staging:
            yield staging

    def run(self, *, restart: bool = False, progress: Progress | None = None) -> int:
        """Replay the log into the staging copy, switch it in, and drop the copy.

        Args:
            restart: Drop a staging copy left by an earlier, interrupted rebuild instead of
                resuming it.
            progress: Called as ``progress(done, total)`` after each batch.

        Returns:
            How many events the handlers applied to the copy.
        """
        if restart:
            self.drop()
        self._prepare()
        engine = self.engine
        with engine._log_engine.connect() as log_connection:
            head = engine.event_log.head(log_connection)
        applied = 0
        more = True
        while more:
            count, reached, more = engine._batches.transact(
                self.projection, self._staging_transaction, strict=True
            )
            applied += count
            if progress is not None:
                progress(min(reached, head), max(head, reached))
        applied += self._switch()
        self.drop()
        return applied

    def _prepare(self) -> None:
        with self.staging_engine.begin() as connection:
            if self.postgres:
                connection.execute(sa.schema.CreateSchema(self.schema, if_not_exists=True))
            for table in [self._checkpoints, *self._tables]:
                table.create(connection, checkfirst=True)
            with self._staging(connection) as staging:
                self.engine.store.ensure(staging, self.projection.name)

    def _switch(self) -> int:
        engine, name = self.engine, self.projection.name
        with engine._locks[name], self.staging_engine.begin() as connection:
            engine.store.get(connection, name, lock=True)  # hold the live projection still
            applied = 0
            more = True
            with LazyConnection(engine._log_engine) as log, self._staging(connection) as staging:
                while more:
                    # One transaction holds the live checkpoint: a failing batch rolls back
                    # to its savepoint and is replayed event by event in this transaction.
                    count, _reached, more = engine._batches.apply_batch(
                        self.projection, staging, log, strict=True, mode=SAVEPOINT
                    )
                    applied += count
                staged = engine.store.get(staging, name)
            for live_table in reversed(self.projection.tables):
                connection.execute(sa.delete(live_table))
            for live_table, staged_table in zip(self.projection.tables, self._tables, strict=True):
                columns = [c.name for c in live_table.columns if c.computed is None]
                connection.execute(
                    sa.insert(live_table).from_select(
                        columns, sa.select(*[staged_table.c[c] for c in columns])
                    )
                )
            connection.execute(
                sa.update(checkpoints)
                .where(checkpoints.c.name == name)
                .values(
                    position=staged.position,
                    state=staged.state,
                    failed_position=staged.failed_position,
                    failed_event_type=staged.failed_event_type,
                    last_error=staged.last_error,
                    updated_at=staged.updated_at,
                )
            )
        return applied

    def drop(self) -> None:
        """Remove the staging copy (if any)."""
        if self.postgres:
            with self.staging_engine.begin() as connection:
                connection.execute(sa.schema.DropSchema(self.schema, cascade=True, if_exists=True))
            return
        self.staging_engine.dispose()
        assert self._file is not None  # noqa: S101 - set for SQLite
        for suffix in ("", "-wal", "-shm", "-journal"):
            with contextlib.suppress(FileNotFoundError):
                Path(f"{self._file}{suffix}").unlink()

    def close(self) -> None:
        """Release the staging engine's connections (SQLite)."""
        if not self.postgres:
            self.staging_engine.dispose()


def rebuild_in_place(
    engine: ProjectionEngine, name: str, *, progress: Progress | None = None
) -> int:
    """Clear the live tables of ``name`` and replay the whole log into them, in batches.

    Args:
        engine: The projection engine.
        name: The projection to rebuild.
        progress: Called as ``progress(done, total)`` after each batch.

    Returns:
        How many events its handlers applied.
    """
    projection = engine.projection(name)
    with engine._locks[name]:
        with engine._engine_of(projection).begin() as connection:
            for table in reversed(projection.tables):
                connection.execute(sa.delete(table))
            engine.store.reset(connection, name)
        with engine._log_engine.connect() as log_connection:
            head = engine.event_log.head(log_connection)
        applied = 0
        while True:
            count, reached, more = engine._batch(projection, strict=True)
            applied += count
            if progress is not None:
                progress(min(reached, head), head)
            if not more:
                return applied


def _attaching_engine(live: sa.Engine, file: Path, schema: str) -> sa.Engine:
    """An engine on the live SQLite database with the staging file attached as ``schema``."""
    from cqrs_kit.persistence import configure_sqlite

    engine = sa.create_engine(live.url)
    configure_sqlite(engine)

    @sa.event.listens_for(engine, "connect")
    def _attach(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"ATTACH DATABASE ? AS {schema}", (str(file),))
        # The live database's pragmas do not carry over to an attached one: without WAL the
        # copy would use a rollback journal, synced on every batch's commit.
        cursor.execute(f"PRAGMA {schema}.journal_mode = WAL")
        cursor.execute(f"PRAGMA {schema}.synchronous = NORMAL")
        cursor.close()

    return engine
