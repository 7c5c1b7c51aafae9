"""``python -m cqrs_kit.projections``: status, rebuild, pause/resume/skip/retry, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cqrs_kit.projections.cli import main
from tests.integration import crash_app

APP = ["--app", "tests.integration.crash_app:engine"]


@pytest.fixture
def databases(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    write_url = f"sqlite:///{tmp_path / 'write.db'}"
    monkeypatch.setenv("CRASH_WRITE_URL", write_url)
    monkeypatch.setenv("CRASH_READ_URL", f"sqlite:///{tmp_path / 'read.db'}")
    monkeypatch.setenv("CRASH_EVENT_DELAY", "0")
    crash_app.create_write_schema(write_url)
    crash_app.write(write_url, accounts=2, deposits=10, seed=1)
    return write_url


def test_status_shows_lag_then_none_after_a_catch_up(
    databases: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*APP, "setup"]) == 0
    assert main([*APP, "status", "--format", "json"]) == 0
    before = json.loads(capsys.readouterr().out.splitlines()[0])
    assert (before["name"], before["checkpoint"], before["head"], before["lag_events"]) == (
        "crash_balances",
        0,
        12,
        12,
    )
    assert main([*APP, "run", "--once"]) == 0
    assert main([*APP, "status"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == [
        "projection",
        "strategy",
        "state",
        "checkpoint",
        "head",
        "lag",
        "lag_s",
        "error",
    ]
    assert table[1].split()[:6] == ["crash_balances", "async", "running", "12", "12", "0"]


def test_rebuild_prints_progress_and_result(
    databases: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*APP, "setup"]) == 0
    assert main([*APP, "rebuild", "crash_balances"]) == 0
    captured = capsys.readouterr()
    assert "rebuilt crash_balances: 12 events applied" in captured.out
    assert "12/12" in captured.err, "a progress bar on stderr"
    assert crash_app.checkpoint() == 12
    assert main([*APP, "rebuild", "crash_balances", "--in-place"]) == 0
    assert "12 events applied" in capsys.readouterr().out


def test_pause_resume_skip_retry(databases: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*APP, "setup"]) == 0
    assert main([*APP, "pause", "crash_balances"]) == 0
    assert main([*APP, "run", "--once"]) == 0
    assert crash_app.checkpoint() == 0, "a paused projection does not move"
    assert main([*APP, "skip", "crash_balances"]) == 1, "nothing to skip: not paused at a failure"
    assert "not paused at a failed event" in capsys.readouterr().err
    assert main([*APP, "retry", "crash_balances"]) == 0
    assert "12 events applied" in capsys.readouterr().out
    assert main([*APP, "resume", "crash_balances"]) == 0


def test_unknown_projection_and_bad_app(databases: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*APP, "pause", "nope"]) == 1
    assert "no projection is named 'nope'" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="module:attribute"):
        main(["--app", "no_colon", "status"])
