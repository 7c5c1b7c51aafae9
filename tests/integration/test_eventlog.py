"""The event log: ordered reads, and gap safety under concurrent writers on PostgreSQL."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from cqrs_kit import Event, EventTypes, PendingEvent
from cqrs_kit.eventlog import EventLog, create_event_log
from cqrs_kit.persistence import sqlite_engine
from tests.databases import Database

event_types = EventTypes()


@event_types.define("tick", stream_type="clock")
class Tick(Event):
    writer: int
    n: int


def _pending(writer: int, n: int) -> PendingEvent:
    return PendingEvent(Tick(writer=writer, n=n), "", str(writer))


def test_reads_in_position_order_after_a_position(tmp_path: Path) -> None:
    engine = sqlite_engine(tmp_path / "log.db")
    create_event_log(engine)
    log = EventLog(event_types)
    with engine.begin() as connection:
        first = log.append(connection, [_pending(1, 1), _pending(1, 2)], {"correlation_id": "c"})
    with engine.begin() as connection:
        second = log.append(connection, [_pending(2, 1)])
        assert log.append(connection, []) == [], "no events, no statement"
    assert first + second == sorted(first + second)
    with engine.connect() as connection:
        everything = log.read(connection, after=0)
        assert [e.position for e in everything] == first + second
        assert [e.position for e in log.read(connection, after=first[0], limit=1)] == [first[1]]
        assert log.head(connection) == second[-1]
    stored = everything[0]
    assert stored.event_type == "tick"
    assert stored.stream_type == "clock", "the event type's default stream type"
    assert stored.stream_id == "1"
    assert stored.metadata == {"correlation_id": "c"}
    assert event_types.decode(stored) == Tick(writer=1, n=1)
    engine.dispose()


def _append_in_thread(
    engine: sa.Engine,
    log: EventLog,
    writer: int,
    started: threading.Event,
    release: threading.Event,
) -> threading.Thread:
    def run() -> None:
        with engine.begin() as connection:
            log.append(connection, [_pending(writer, 0)])
            started.set()
            release.wait(10)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.parametrize("lock", [True, False], ids=["with-lock", "without-lock"])
def test_a_slow_writer_cannot_commit_behind_a_reader(
    postgres_database: Database, lock: bool
) -> None:
    """Deterministic interleaving: A inserts, B inserts and commits, a reader reads, A commits.

    Without the advisory lock the reader has moved past A's lower position and misses it
    for ever; with the lock B waits for A, so the reader never sees a gap.
    """
    engine = sa.create_engine(postgres_database.sync_url)
    create_event_log(engine)
    log = EventLog(event_types, lock=lock)
    a_inserted, a_release = threading.Event(), threading.Event()
    a = _append_in_thread(engine, log, 1, a_inserted, a_release)
    assert a_inserted.wait(10)
    b_inserted, b_release = threading.Event(), threading.Event()
    b_release.set()
    b = _append_in_thread(engine, log, 2, b_inserted, b_release)
    b_done = b_inserted.wait(0.5)
    with engine.connect() as connection:
        seen = [e.position for e in log.read(connection, after=0)]
    a_release.set()
    a.join(10)
    b.join(10)
    with engine.connect() as connection:
        after = seen[-1] if seen else 0
        seen += [e.position for e in log.read(connection, after=after)]
        committed = [e.position for e in log.read(connection, after=0)]
    if lock:
        assert not b_done, "B must wait for A's lock"
        assert seen == committed, "the reader saw every event"
    else:
        assert b_done, "without the lock B does not wait"
        assert seen != committed, "without the lock the reader skips A's event (the bug)"
        assert sorted(set(committed) - set(seen)) == [min(committed)]
    engine.dispose()


def _stress(url: str, *, lock: bool, writers: int, seconds: float) -> tuple[list[int], list[int]]:
    engine = sa.create_engine(url, pool_size=writers + 2)
    create_event_log(engine)
    log = EventLog(event_types, lock=lock)
    stop = threading.Event()
    errors: list[BaseException] = []

    def write(writer: int) -> None:
        rng = random.Random(writer)
        n = 0
        try:
            while not stop.is_set():
                with engine.begin() as connection:
                    time.sleep(rng.uniform(0, 0.004))  # work before the append
                    batch = [_pending(writer, n + i) for i in range(rng.randint(1, 3))]
                    n += len(batch)
                    log.append(connection, batch)
                    time.sleep(rng.uniform(0, 0.004))  # commit late
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for thread in threads:
        thread.start()
    seen: list[int] = []
    deadline = time.monotonic() + seconds
    with engine.connect() as connection:
        while time.monotonic() < deadline:
            seen += [e.position for e in log.read(connection, after=seen[-1] if seen else 0)]
            connection.commit()  # a new snapshot for the next poll
        stop.set()
        for thread in threads:
            thread.join()
        seen += [
            e.position for e in log.read(connection, after=seen[-1] if seen else 0, limit=1_000_000)
        ]
        connection.commit()
        committed = [e.position for e in log.read(connection, after=0, limit=1_000_000)]
    engine.dispose()
    assert not errors, errors
    return seen, committed


def test_concurrent_writers_never_leave_a_gap_behind_a_polling_reader(
    postgres_database: Database,
) -> None:
    seen, committed = _stress(postgres_database.sync_url, lock=True, writers=8, seconds=3)
    assert len(committed) > 100, "the writers produced enough traffic to matter"
    assert len(seen) == len(set(seen)), "no duplicates"
    assert seen == sorted(seen), "position order"
    assert seen == committed, f"missed {sorted(set(committed) - set(seen))[:10]}"


@pytest.mark.slow
def test_diagnostic_without_the_lock_a_polling_reader_misses_events(
    postgres_database: Database,
) -> None:
    """Opt-in (``-m slow``): the same run without the lock shows the bug the lock prevents."""
    seen, committed = _stress(postgres_database.sync_url, lock=False, writers=8, seconds=3)
    assert set(committed) - set(seen), "expected the lock-free reader to miss events"
