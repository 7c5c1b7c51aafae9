"""Projection workers as real processes: kill -9 mid-batch, and concurrent writers on PostgreSQL."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from cqrs_kit.projections.cli import main
from tests.databases import Database
from tests.integration import crash_app
from tests.integration.processes import spawn

ROOT = Path(__file__).resolve().parents[2]


def _env(write_url: str, read_url: str, delay: float) -> dict[str, str]:
    return {
        **os.environ,
        "CRASH_WRITE_URL": write_url,
        "CRASH_READ_URL": read_url,
        "CRASH_EVENT_DELAY": str(delay),
        "PYTHONPATH": str(ROOT),
    }


def _worker(env: dict[str, str], *extra: str) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-m",
        "cqrs_kit.projections",
        "--app",
        "tests.integration.crash_app:engine",
        "run",
        *extra,
    ]
    return spawn(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _wait_until(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the worker"
        time.sleep(0.02)


def _close(process: subprocess.Popen[bytes]) -> bytes:
    stderr = process.stderr.read() if process.stderr else b""
    if process.stderr:
        process.stderr.close()
    return stderr


def _rows(engine: sa.Engine) -> list[tuple[int, int, int]]:
    with engine.connect() as connection:
        table = crash_app.balances
        return [
            (r.account_id, r.balance, r.deposits)
            for r in connection.execute(sa.select(table).order_by(table.c.account_id))
        ]


def _assert_equals_fresh_rebuild(fresh_read_url: str) -> None:
    live = crash_app.engine()
    fresh = crash_app.engine(fresh_read_url)
    try:
        live.catch_up("crash_balances")
        fresh.setup()
        fresh.rebuild("crash_balances")
        rows = _rows(live.read_engine)
        assert rows, "the read model is not empty"
        assert rows == _rows(fresh.read_engine), "read model equals a fresh rebuild, row for row"
        with live.write_engine.connect() as connection:
            table = live.event_log.table
            deposits = connection.execute(
                sa.select(sa.func.count())
                .select_from(table)
                .where(table.c.event_type == "account.deposited")
            ).scalar_one()
        assert sum(r[2] for r in rows) == deposits, "every deposit applied exactly once"
    finally:
        crash_app.dispose(live)
        crash_app.dispose(fresh)


def _configure(monkeypatch: pytest.MonkeyPatch, write_url: str, read_url: str) -> None:
    """Point this process's crash_app at the databases (the workers get the same by env)."""
    monkeypatch.setenv("CRASH_WRITE_URL", write_url)
    monkeypatch.setenv("CRASH_READ_URL", read_url)
    monkeypatch.setenv("CRASH_EVENT_DELAY", "0")


def test_killing_a_worker_mid_batch_loses_and_duplicates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_url = f"sqlite:///{tmp_path / 'write.db'}"
    read_url = f"sqlite:///{tmp_path / 'read.db'}"
    crash_app.create_write_schema(write_url)
    env = _env(write_url, read_url, delay=0.004)
    _configure(monkeypatch, write_url, read_url)
    assert main(["--app", "tests.integration.crash_app:engine", "setup"]) == 0
    rng = random.Random(7)
    progress = []
    for round_ in range(4):
        crash_app.write(write_url, accounts=2, deposits=50, seed=round_)
        before = crash_app.checkpoint()
        worker = _worker(env)
        _wait_until(lambda before=before: crash_app.checkpoint() > before)  # a batch committed
        time.sleep(rng.uniform(0.0, 0.1))  # now somewhere inside the next batch
        worker.send_signal(signal.SIGKILL)
        assert worker.wait(10) == -signal.SIGKILL
        stderr = _close(worker)
        progress.append(crash_app.checkpoint())
    assert progress == sorted(progress), progress
    assert progress[-1] > 0, f"the workers made progress between kills; last stderr: {stderr!r}"
    _assert_equals_fresh_rebuild(f"sqlite:///{tmp_path / 'fresh.db'}")


def test_sigterm_stops_a_worker_cleanly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_url = f"sqlite:///{tmp_path / 'write.db'}"
    read_url = f"sqlite:///{tmp_path / 'read.db'}"
    crash_app.create_write_schema(write_url)
    _configure(monkeypatch, write_url, read_url)
    crash_app.setup()
    crash_app.write(write_url, accounts=1, deposits=10, seed=1)
    worker = _worker(_env(write_url, read_url, delay=0.0))
    _wait_until(lambda: crash_app.checkpoint() == 11)
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(30) == 0
    assert b"stopping after the current batch" in _close(worker)
    assert crash_app.checkpoint() == 11


def test_writer_processes_and_workers_on_postgres_apply_every_event_once(
    postgres_database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = postgres_database.sync_url
    crash_app.create_write_schema(url)
    env = _env(url, url, delay=0.0)
    _configure(monkeypatch, url, url)
    crash_app.setup()
    writers = [
        spawn(
            [
                sys.executable,
                "-m",
                "tests.integration.crash_app",
                "write",
                "--url",
                url,
                "--deposits",
                "150",
                "--seed",
                str(seed),
            ],
            env=env,
            cwd=ROOT,
        )
        for seed in range(4)
    ]
    workers = [_worker(env) for _ in range(2)]
    for writer in writers:
        assert writer.wait(120) == 0
    time.sleep(1.0)
    for worker in workers:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(20) == 0
        _close(worker)
    # The fresh rebuild goes to a separate (SQLite) read database.
    _assert_equals_fresh_rebuild(f"sqlite:///{tmp_path / 'fresh.db'}")
