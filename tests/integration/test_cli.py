"""``python -m reference_app``, run in-process: set-up, operations, errors and exit codes."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from reference_app.cli import main
from reference_app.config import ENV_PREFIX, Settings, SettingsError
from reference_app.container import build_container, close_container
from reference_app.http import TokenAuthenticator

PROJECTIONS = ["order_summary", "order_detail", "order_analytics"]


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """A clean ``ORDERS_*`` environment over a temporary data directory; logging restored."""
    for name in list(os.environ):
        if name.startswith(ENV_PREFIX):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ORDERS_DATA_DIR", str(tmp_path / "data"))
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield tmp_path / "data"
    structlog.reset_defaults()  # main() configures logging for the process
    root.handlers[:] = handlers
    root.setLevel(level)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_schema_user_product_token_status_rebuild(
    capsys: pytest.CaptureFixture[str], environment: Path
) -> None:
    status, out, _ = run(capsys, "schema")
    assert status == 0
    assert "schema ready" in out
    assert f"sqlite+pysqlite:///{environment / 'write.db'}" in out

    assert run(capsys, "user", "Ada Lovelace", "ada@example.com", "--staff")[:2] == (0, "1\n")
    status, out, _ = run(capsys, "user", "Bob", "bob@example.com", "--token")
    user_id, bob_token = out.split()
    assert (status, user_id) == (0, "2")
    assert run(capsys, "product", "Teapot", "24.90")[:2] == (0, "1\n")

    status, out, _ = run(capsys, "token", "1")
    assert status == 0
    (token,) = out.split()
    assert len(token) == 43
    container = build_container(Settings.from_env())
    try:
        authenticator = TokenAuthenticator(container.writer_reader())
        ada, bob = authenticator.authenticate(token), authenticator.authenticate(bob_token)
    finally:
        close_container(container)
    assert ada is not None
    assert bob is not None
    assert (ada.user_id, ada.is_staff, bob.user_id, bob.is_staff) == (1, True, 2, False)

    status, out, _ = run(capsys, "status")
    assert status == 0
    lines = out.splitlines()
    assert lines[0].split()[:5] == ["projection", "strategy", "state", "checkpoint", "head"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert set(rows) == set(PROJECTIONS)
    for row in rows.values():  # sync projections: caught up with the three events
        assert row[1:5] == ["sync", "running", "3", "3"]

    status, out, err = run(capsys, "rebuild", "order_summary")
    assert status == 0
    assert out == "rebuilt order_summary: 0 events applied\n"  # users and products only
    assert "rebuilding order_summary [" in err


def test_status_as_json_lines(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "schema")[0] == 0
    status, out, _ = run(capsys, "status", "--format", "json")
    assert status == 0
    assert [json.loads(line)["name"] for line in out.splitlines()] == PROJECTIONS


def test_seed_fills_empty_databases(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "seed", "--orders", "40", "--users", "4", "--products", "5")
    assert status == 0, err
    assert out.startswith("seeded 40 orders")
    assert "seeding [" in err
    status, out, _ = run(capsys, "status")
    rows = [line.split() for line in out.splitlines()[1:]]
    assert [row[0] for row in rows] == PROJECTIONS
    assert all(row[3] == row[4] and int(row[4]) > 40 and row[5] == "0" for row in rows), out


def test_commands_before_schema_say_to_create_it(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["token", "1"], ["status"], ["user", "A", "a@example.com"]):
        status, _, err = run(capsys, *argv)
        assert status == 1, argv
        assert "run `python -m reference_app schema` first" in err


def test_operation_errors_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "schema")[0] == 0
    status, _, err = run(capsys, "token", "7")
    assert (status, err) == (1, "error: there is no user 7\n")
    assert run(capsys, "user", "A", "a@example.com")[0] == 0
    status, _, err = run(capsys, "user", "Another A", "a@example.com")
    assert status == 1
    assert "already exists" in err


def test_invalid_input_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "schema")[0] == 0
    status, _, err = run(capsys, "user", "Ada", "not-an-email")
    assert status == 2
    assert "email" in err
    status, _, err = run(capsys, "product", "Teapot", "-1")
    assert status == 2
    assert "price" in err
    with pytest.raises(SystemExit) as exited:
        main(["product", "Teapot", "cheap"])
    assert exited.value.code == 2
    assert "not a price: 'cheap'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        main(["rebuild", "order_summry"])
    assert exited.value.code == 2
    assert "invalid choice: 'order_summry'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("ORDERS_PROJECTIONS", "order_summary=eventually", "unknown strategy 'eventually'"),
        ("ORDERS_PROJECTIONS", "order_sumary=async", "unknown projections ['order_sumary']"),
        ("ORDERS_PROJECTIONS", "order_summary", "is not name=strategy"),
        ("ORDERS_PROJECTIONS", "order_summary=inline", "inline, which keeps read models"),
        ("ORDERS_LOG_FORMAT", "xml", "ORDERS_LOG_FORMAT: Input should be 'console' or 'json'"),
        ("ORDERS_CONSISTENCY_TIMEOUT", "soon", "ORDERS_CONSISTENCY_TIMEOUT: Input should be"),
        ("ORDERS_CONSISTENCY_TIMEOUT", "0", "greater than 0"),
        ("ORDERS_WRITE_DATABASE_URL", "mysql://db/orders", "unsupported database 'mysql'"),
        ("ORDERS_READ_DATABASE_URL", "sqlite://", "in-memory SQLite"),
        ("ORDERS_CURSOR_SECRET", "short", "at least 16 bytes"),
        ("ORDERS_PROJECTION", "order_summary=async", "did you mean ORDERS_PROJECTIONS?"),
    ],
)
def test_a_bad_setting_exits_2_naming_the_variable(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    value: str,
    message: str,
) -> None:
    monkeypatch.setenv(variable, value)
    status, _, err = run(capsys, "status")
    assert status == 2
    assert err.startswith("error: invalid configuration:")
    assert message in err
    assert "short" not in err or variable != "ORDERS_CURSOR_SECRET", "secrets are never echoed"


def test_the_generated_cursor_secret_is_kept_across_restarts(environment: Path) -> None:
    first = Settings.from_env()
    assert (environment / "cursor_secret").stat().st_mode & 0o777 == 0o600
    assert Settings.from_env().cursor_key == first.cursor_key
    assert "cursor_secret=SecretStr('**********')" in repr(first)


def test_postgresql_needs_an_explicit_cursor_secret_and_hides_passwords() -> None:
    url = "postgresql://orders:hunter2@db.example/orders"
    env = {"ORDERS_WRITE_DATABASE_URL": url, "ORDERS_READ_DATABASE_URL": url}
    with pytest.raises(SettingsError, match="ORDERS_CURSOR_SECRET: required with PostgreSQL"):
        Settings.from_env(env)
    settings = Settings.from_env({**env, "ORDERS_CURSOR_SECRET": "s" * 32})
    assert settings.write_database_url == "postgresql+psycopg://orders:hunter2@db.example/orders"
    assert "hunter2" not in repr(settings)


def test_an_unreachable_database_exits_1_in_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = "postgresql://nobody@127.0.0.1:1/orders"  # nothing listens on port 1
    monkeypatch.setenv("ORDERS_WRITE_DATABASE_URL", url)
    monkeypatch.setenv("ORDERS_READ_DATABASE_URL", url)
    monkeypatch.setenv("ORDERS_CURSOR_SECRET", "s" * 32)
    status, _, err = run(capsys, "status")
    assert status == 1
    assert err.startswith("error: database: connection failed"), err
    assert len(err.splitlines()) == 1
