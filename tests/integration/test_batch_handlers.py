"""Batch handlers (``Projection.on_batch``): runs, order, failures, rebuilds.

On SQLite, and on PostgreSQL when configured.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from cqrs_kit import Event, EventTypes, PendingEvent, ProjectionError
from cqrs_kit.eventlog import EventLog, create_event_log
from cqrs_kit.persistence import sqlite_engine
from cqrs_kit.projections import (
    BatchContext,
    FailurePolicy,
    Projection,
    ProjectionContext,
    ProjectionEngine,
    Strategy,
)

event_types = EventTypes()


@event_types.define("test.added")
class Added(Event):
    key: int


@event_types.define("test.removed")
class Removed(Event):
    key: int


@event_types.define("test.noted")
class Noted(Event):
    key: int


@event_types.define("test.ignored")
class Ignored(Event):
    key: int


read_metadata = sa.MetaData()
keys = sa.Table(
    "batch_keys",
    read_metadata,
    sa.Column("key", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("position", sa.Integer, nullable=False),
)
INSERT_KEY = sa.insert(keys)
DELETE_KEY = sa.delete(keys).where(keys.c.key == sa.bindparam("b_key"))

POISON = 13
"""An ``Added`` with this key makes the batch handler raise."""


class Recorder:
    """A projection whose handlers record each call, as (handler, positions)."""

    def __init__(self, *, shared: bool = False, **options: Any) -> None:
        self.calls: list[tuple[str, list[int]]] = []
        self.poison_failures = 0
        self.projection = Projection("batch_keys", tables=[keys], **options)

        def added(events: Sequence[Added | Removed], ctx: BatchContext) -> None:
            self.calls.append(("added", [s.position for s in ctx.stored]))
            assert [type(e) for e in events] == [
                Added if s.event_type == "test.added" else Removed for s in ctx.stored
            ], "the events and ctx.stored are parallel"
            for event, stored in zip(events, ctx.stored, strict=True):
                if isinstance(event, Removed):
                    ctx.connection.execute(DELETE_KEY, {"b_key": event.key})
                    continue
                ctx.connection.execute(INSERT_KEY, {"key": event.key, "position": stored.position})
                if event.key == POISON:
                    self.poison_failures += 1
                    raise RuntimeError("poison")

        def removed(events: Sequence[Removed], ctx: BatchContext) -> None:
            self.calls.append(("removed", [s.position for s in ctx.stored]))
            ctx.connection.execute(DELETE_KEY, [{"b_key": event.key} for event in events])

        def noted(event: Noted, ctx: ProjectionContext) -> None:
            self.calls.append(("noted", [ctx.stored.position]))

        self.projection.on_batch(Added)(added)
        self.projection.on_batch(Removed)(added if shared else removed)
        self.projection.on(Noted)(noted)


class Log:
    def __init__(self, write: sa.Engine, read: sa.Engine, recorder: Recorder) -> None:
        create_event_log(write)
        self.write, self.read = write, read
        self.log = EventLog(event_types)
        self.engine = ProjectionEngine(
            event_log=self.log,
            write_engine=write,
            read_engine=read,
            projections=[recorder.projection],
            retry_delay=0.001,
        )
        self.engine.setup()

    def append(self, *events: Event) -> None:
        with self.write.begin() as connection:
            self.log.append(connection, [PendingEvent(e, "", "") for e in events])

    def rows(self) -> list[tuple[int, int]]:
        with self.read.connect() as connection:
            return [
                (row.key, row.position)
                for row in connection.execute(sa.select(keys).order_by(keys.c.key))
            ]


MIXED = [Added(key=1), Added(key=2), Ignored(key=0), Added(key=3), Removed(key=1)]
MIXED += [Added(key=4), Noted(key=0), Removed(key=2), Removed(key=3), Added(key=5)]
# positions:  1 2 (3 ignored) 4 5r | 6 7n 8r 9r 10


def test_batch_handlers_get_runs_of_consecutive_events_in_log_order(
    engines: tuple[sa.Engine, sa.Engine],
) -> None:
    recorder = Recorder()
    log = Log(*engines, recorder)
    log.append(*MIXED)
    assert log.engine.catch_up("batch_keys") == 9
    assert recorder.calls == [
        ("added", [1, 2, 4]),  # an event the projection ignores does not cut a run
        ("removed", [5]),
        ("added", [6]),
        ("noted", [7]),  # a per-event handler in between keeps its place
        ("removed", [8, 9]),
        ("added", [10]),
    ]
    assert log.rows() == [(4, 6), (5, 10)], "the same rows as applying one event at a time"
    assert log.engine.checkpoint("batch_keys").position == 10


def test_one_function_for_several_types_gets_one_run_across_them(
    engines: tuple[sa.Engine, sa.Engine],
) -> None:
    recorder = Recorder(shared=True, batch_size=4)
    log = Log(*engines, recorder)
    log.append(*MIXED)
    log.engine.catch_up("batch_keys")
    assert recorder.calls == [
        ("added", [1, 2, 4]),  # the first batch is positions 1-4
        ("added", [5, 6]),  # runs never cross batches
        ("noted", [7]),
        ("added", [8]),
        ("added", [9, 10]),
    ]
    assert log.rows() == [(4, 6), (5, 10)]


@pytest.mark.parametrize("policy", [FailurePolicy.PAUSE, FailurePolicy.DEAD_LETTER])
def test_poison_event_in_a_batch_handler_fails_alone(
    engines: tuple[sa.Engine, sa.Engine], policy: FailurePolicy
) -> None:
    recorder = Recorder(on_failure=policy, retries=1)
    log = Log(*engines, recorder)
    log.append(Added(key=1), Added(key=2), Added(key=POISON), Added(key=4), Removed(key=2))
    applied = log.engine.catch_up("batch_keys")
    assert recorder.calls[0] == ("added", [1, 2, 3, 4]), "first the whole run"
    # Then the batch is rolled back and replayed event by event: batches of one, the
    # poison event twice (one retry).
    assert recorder.calls[1:5] == [("added", [1]), ("added", [2]), ("added", [3]), ("added", [3])]
    assert recorder.poison_failures == 3
    checkpoint = log.engine.checkpoint("batch_keys")
    if policy is FailurePolicy.PAUSE:
        assert applied == 2
        assert (checkpoint.state, checkpoint.position, checkpoint.failed_position) == (
            "paused",
            2,
            3,
        )
        assert log.rows() == [(1, 1), (2, 2)], "the batch's first attempt left nothing behind"
    else:
        assert applied == 4
        assert (checkpoint.state, checkpoint.position) == ("running", 5)
        assert log.rows() == [(1, 1), (4, 4)]
        with log.read.connect() as connection:
            dead = log.engine.store.dead_letters(connection, "batch_keys")
        assert [(d["position"], d["event_type"]) for d in dead] == [(3, "test.added")]


def test_database_error_in_a_batch_is_isolated_to_its_event(
    engines: tuple[sa.Engine, sa.Engine],
) -> None:
    """A failed statement (PostgreSQL: an aborted transaction) is rolled back to a savepoint."""
    recorder = Recorder(on_failure=FailurePolicy.DEAD_LETTER, retries=0)
    log = Log(*engines, recorder)
    log.append(Added(key=1), Added(key=1), Added(key=2))  # the second insert breaks the key
    assert log.engine.catch_up("batch_keys") == 2
    assert log.rows() == [(1, 1), (2, 3)]
    with log.read.connect() as connection:
        dead = log.engine.store.dead_letters(connection, "batch_keys")
    assert [d["position"] for d in dead] == [2]
    assert "IntegrityError" in dead[0]["error"]


@pytest.mark.parametrize("in_place", [True, False], ids=["in place", "blue-green"])
def test_rebuild_with_batch_handlers_equals_incremental(
    engines: tuple[sa.Engine, sa.Engine], in_place: bool
) -> None:
    recorder = Recorder(batch_size=3)
    log = Log(*engines, recorder)
    for event in MIXED:  # one event per catch-up
        log.append(event)
        log.engine.catch_up("batch_keys")
    incremental = log.rows()
    with log.read.begin() as connection:
        connection.execute(sa.update(keys).values(position=-1))
    assert log.engine.rebuild("batch_keys", in_place=in_place) == 9
    assert log.rows() == incremental


def test_inline_batch_handler_failure_fails_the_transaction(tmp_path: Path) -> None:
    engine = sqlite_engine(tmp_path / "one.db")
    recorder = Recorder(strategy=Strategy.INLINE)
    log = Log(engine, engine, recorder)

    def command() -> None:
        with engine.begin() as connection:
            log.log.append(connection, [PendingEvent(Added(key=POISON), "", "")])
            log.engine.apply_inline(connection)

    with pytest.raises(ProjectionError, match="poison"):
        command()
    with engine.connect() as connection:
        assert log.log.head(connection) == 0, "rolled back with the projection"
    engine.dispose()
