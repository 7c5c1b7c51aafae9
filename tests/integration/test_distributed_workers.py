"""Leased projection workers on PostgreSQL: splitting, failover, connection faults, load.

Workers are real processes (``python -m cqrs_kit.worker``); writers too, for the load test.
Every test ends by comparing the read model with a fresh rebuild from the log.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.databases import Database
from tests.integration import crash_app
from tests.integration.processes import spawn

ROOT = Path(__file__).resolve().parents[2]
TTL = 2.0
LOAD_SECONDS = float(os.environ.get("CQRS_KIT_LOAD_SECONDS", "6"))


@pytest.fixture
def app(postgres_database: Database, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    url = postgres_database.sync_url
    for key, value in {
        "CRASH_WRITE_URL": url,
        "CRASH_READ_URL": url,
        "CRASH_EVENT_DELAY": "0",
        "CRASH_COUNTERS": "1",
    }.items():
        monkeypatch.setenv(key, value)
    crash_app.create_write_schema(url)
    crash_app.setup()
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def _worker(env: dict[str, str], owner: str, delay: float = 0.0) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-m",
        "cqrs_kit.worker",
        "--app",
        "tests.integration.crash_app:engine",
        "--ttl",
        str(TTL),
        "--owner",
        owner,
        "--report-every",
        "1",
    ]
    return spawn(
        command,
        env={**env, "CRASH_EVENT_DELAY": str(delay)},
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _writer(env: dict[str, str], seed: int, deposits: int) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-m",
        "tests.integration.crash_app",
        "write",
        "--url",
        env["CRASH_WRITE_URL"],
        "--deposits",
        str(deposits),
        "--seed",
        str(seed),
    ]
    return spawn(command, env=env, cwd=ROOT)


def _stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> bytes:
    process.send_signal(sig)
    process.wait(30)
    stderr = process.stderr.read() if process.stderr else b""
    if process.stderr:
        process.stderr.close()
    return stderr


def _wait_until(condition: Callable[[], bool], timeout: float = 60.0) -> float:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, "timed out"
        time.sleep(0.05)
    return time.monotonic() - started


def _owners() -> dict[str, str | None]:
    engine = crash_app.engine()
    try:
        return {s.name: s.owner for s in engine.status()}
    finally:
        crash_app.dispose(engine)


def _caught_up() -> bool:
    engine = crash_app.engine()
    try:
        return all(s.lag_events == 0 and s.state == "running" for s in engine.status())
    finally:
        crash_app.dispose(engine)


def _assert_matches_rebuild(tmp_path: Path) -> None:
    live = crash_app.engine()
    fresh = crash_app.engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    try:
        fresh.setup()
        for projection in live.projections:
            fresh.rebuild(projection.name)
            for table in projection.tables:
                with live.read_engine.connect() as a, fresh.read_engine.connect() as b:
                    ours = sorted(tuple(r) for r in a.execute(sa.select(table)))
                    theirs = sorted(tuple(r) for r in b.execute(sa.select(table)))
                assert ours == theirs, f"{table.name} differs from a fresh rebuild"
    finally:
        crash_app.dispose(live)
        crash_app.dispose(fresh)


def test_workers_split_the_projections_and_a_dead_ones_share_moves_within_the_ttl(
    app: dict[str, str], tmp_path: Path
) -> None:
    crash_app.write(app["CRASH_WRITE_URL"], accounts=3, deposits=100, seed=1)
    workers = {name: _worker(app, name) for name in ("w1", "w2", "w3")}
    _wait_until(lambda: set(_owners().values()) == {"w1", "w2", "w3"})
    owners = _owners()
    assert sorted(owners.values()) == ["w1", "w2", "w3"], f"one projection each: {owners}"
    _wait_until(_caught_up)

    victim = owners["crash_balances"]
    assert victim is not None
    _stop(workers[victim], signal.SIGKILL)
    crash_app.write(app["CRASH_WRITE_URL"], accounts=1, deposits=50, seed=2)
    took = _wait_until(lambda: _owners()["crash_balances"] not in (None, victim))
    assert took < TTL * 3, f"took over in {took:.1f}s with a {TTL}s TTL"
    _wait_until(_caught_up)
    for name, process in workers.items():
        if name != victim:
            assert b"Traceback" not in _stop(process)
    _assert_matches_rebuild(tmp_path)


def test_killing_the_owner_mid_batch_hands_over_with_nothing_lost_or_doubled(
    app: dict[str, str], tmp_path: Path
) -> None:
    crash_app.write(app["CRASH_WRITE_URL"], accounts=2, deposits=300, seed=3)
    first = _worker(app, "first", delay=0.01)  # slow batches: the kill lands inside one
    _wait_until(lambda: crash_app.checkpoint() > 30)
    _stop(first, signal.SIGKILL)
    assert 0 < crash_app.checkpoint() < 302, "killed before it finished"
    second = _worker(app, "second")
    _wait_until(_caught_up)
    _stop(second)
    _assert_matches_rebuild(tmp_path)


def test_workers_survive_terminated_connections(app: dict[str, str], tmp_path: Path) -> None:
    url = app["CRASH_WRITE_URL"]
    workers = [_worker(app, f"w{i}") for i in range(2)]
    admin = sa.create_engine(url, poolclass=sa.pool.NullPool)
    writer = _writer(app, seed=4, deposits=400)
    for _ in range(5):
        time.sleep(0.7)
        with admin.connect() as connection:
            connection.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                    "AND application_name NOT LIKE 'pytest%' AND backend_type = 'client backend' "
                    "AND application_name <> :writer"
                ),
                {"writer": crash_app.WRITER_APPLICATION_NAME},
            )
    assert writer.wait(120) == 0
    _wait_until(_caught_up, timeout=90)
    for process in workers:
        assert process.poll() is None, "the worker kept running"
        _stop(process)
    admin.dispose()
    _assert_matches_rebuild(tmp_path)


def test_load_four_writers_three_workers(app: dict[str, str], tmp_path: Path) -> None:
    """Writers for ``CQRS_KIT_LOAD_SECONDS`` (6 by default; set 60 for the full load run)."""
    url = app["CRASH_WRITE_URL"]
    workers = [_worker(app, f"w{i}") for i in range(3)]
    started = time.monotonic()
    lags: list[float] = []
    writers: list[subprocess.Popen[bytes]] = []
    seed = 10
    while time.monotonic() - started < LOAD_SECONDS:
        writers = [w for w in writers if w.poll() is None]
        while len(writers) < 4:
            writers.append(_writer(app, seed=seed, deposits=100))
            seed += 1
        engine = crash_app.engine()
        try:
            lags += [s.lag_seconds for s in engine.status()]
        finally:
            crash_app.dispose(engine)
        time.sleep(0.25)
    for writer in writers:
        assert writer.wait(120) == 0
    elapsed = time.monotonic() - started
    _wait_until(_caught_up, timeout=120)
    with sa.create_engine(url, poolclass=sa.pool.NullPool).connect() as connection:
        commands = connection.execute(sa.text("SELECT count(*) FROM event_log")).scalar_one()
    for process in workers:
        _stop(process)
    p99 = statistics.quantiles(lags, n=100)[98] if len(lags) >= 2 else 0.0
    print(f"\nload: {commands / elapsed:.0f} commands/s over {elapsed:.0f}s, lag p99 {p99:.3f}s")
    assert commands > 0
    _assert_matches_rebuild(tmp_path)
