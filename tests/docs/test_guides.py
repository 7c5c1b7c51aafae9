"""The guides' examples (docs/examples/guide_*.py) run and behave as the guides say."""

from __future__ import annotations

import importlib.util
import inspect
import json
import logging
import os
import re
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import sqlalchemy as sa
import structlog

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "docs" / "examples"
GUIDES = ROOT / "docs" / "guides"

OUTPUT_BLOCK = re.compile(r"<!-- output of (?P<path>\S+) -->\s*```text\n(?P<body>.*?)```", re.S)


def load(name: str) -> ModuleType:
    """Import docs/examples/<name>.py as a fresh module (nothing under __main__ runs)."""
    spec = importlib.util.spec_from_file_location(f"docs_example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # pydantic resolves generic messages through it
    spec.loader.exec_module(module)
    return module


def shown_output(page: str, example: str) -> str:
    """The output a guide shows for an example (its `<!-- output of ... -->` block)."""
    text = (GUIDES / page).read_text(encoding="utf-8")
    for block in OUTPUT_BLOCK.finditer(text):
        if block["path"] == f"docs/examples/{example}":
            return block["body"]
    raise AssertionError(f"{page} shows no output of docs/examples/{example}")


# -- guides/existing-sync-app.md -------------------------------------------------------------

SYNC_APP_OUTPUT = """\
Response(status=201, body={'order_id': 1})
Response(status=409, body={'error': 'only 3 left of product 1'})
422
Response(status=201, body={'order_id': 2})
Response(status=200, body={'order_id': 1, 'product': 'tea', 'quantity': 2})
Response(status=404, body={'error': 'not found'})
"""


def test_sync_app_serves_old_and_new_views_side_by_side(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app = load("guide_sync_app")
    app.main(tmp_path)
    out = capsys.readouterr().out

    assert out == SYNC_APP_OUTPUT
    assert shown_output("existing-sync-app.md", "guide_sync_app.py") == SYNC_APP_OUTPUT


def test_sync_app_commits_state_and_event_together_and_rolls_back_on_domain_errors(
    tmp_path: Path,
) -> None:
    app = load("guide_sync_app")
    app.main(tmp_path)  # two orders through the mediator, one through the old view
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'app.db'}")
    try:
        with engine.connect() as connection:
            events = connection.execute(sa.text("SELECT event_type FROM event_log")).all()
            stock = connection.execute(sa.text("SELECT stock FROM products")).scalar_one()
    finally:
        engine.dispose()

    assert [e.event_type for e in events] == ["order.placed"], (
        "only the order placed through the mediator records an event; the refused one "
        "rolled back and the old view writes none"
    )
    assert stock == 2  # 5 - 2 (new view) - 1 (old view); the refused order took nothing


def test_sync_app_refuses_to_serve_before_init_app() -> None:
    app = load("guide_sync_app")

    with pytest.raises(RuntimeError, match="init_app"):
        app.get_order_view(app.Request(user_id=1), order_id=1)


# -- guides/fastapi.md -----------------------------------------------------------------------


# --8<-- [start:fastapi_client]
@pytest.fixture
def fastapi_client(tmp_path: Path) -> Iterator[tuple[Any, ModuleType]]:
    with warnings.catch_warnings():
        # Starlette >= 1.0 asks for httpx2 at import time; its TestClient works with httpx.
        warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
        from fastapi.testclient import TestClient

    app = load("guide_fastapi")
    with TestClient(app.create_app(tmp_path)) as client:
        yield client, app


# --8<-- [end:fastapi_client]


# --8<-- [start:fastapi_test]
def test_fastapi_client_reads_its_own_write_with_the_consistency_token(
    fastapi_client: tuple[Any, ModuleType],
) -> None:
    client, _app = fastapi_client

    created = client.post("/tickets", json={"title": "Printer on fire"}, headers={"X-User": "ada"})
    assert created.status_code == 201
    assert created.json() == {"ticket_id": 1}
    consistency = created.headers["Consistency-Token"]
    assert consistency == "1", "the position of the command's event"

    read = client.get(created.headers["Location"], headers={"Consistency-Token": consistency})
    assert read.status_code == 200
    assert read.json() == {
        "ticket_id": 1,
        "reporter": "ada",
        "title": "Printer on fire",
        "status": "open",
    }

    closed = client.post("/tickets/1/close")
    assert closed.status_code == 204
    fresh = {"Consistency-Token": closed.headers["Consistency-Token"]}
    assert client.get("/tickets/1", headers=fresh).json()["status"] == "closed"


# --8<-- [end:fastapi_test]


def test_fastapi_maps_errors_to_status_codes(fastapi_client: tuple[Any, ModuleType]) -> None:
    client, app = fastapi_client
    app.CONSISTENCY_TIMEOUT = 0.05  # keep the 503 case fast

    assert client.post("/tickets", json={"title": "x"}).status_code == 422, "no X-User"
    assert client.post("/tickets", json={}, headers={"X-User": "ada"}).status_code == 422
    assert client.get("/tickets/9").status_code == 404

    client.post("/tickets", json={"title": "x"}, headers={"X-User": "ada"})
    assert client.post("/tickets/1/close").status_code == 204
    again = client.post("/tickets/1/close")
    assert again.status_code == 409
    assert again.json() == {"error": "ticket 1 is not open"}

    ahead = client.get("/tickets/1", headers={"Consistency-Token": "99"})
    assert ahead.status_code == 503, "a token the read model never reaches fails closed"
    assert ahead.headers["Retry-After"] == "1"


# -- guides/dependency-injector.md -----------------------------------------------------------

DI_OUTPUT = """\
order 1: tea
order 2: cake, placed 2030-01-02 03:04:00
UnresolvableDependencyError: docs_example_guide_dependency_injector.MisnamedHandler needs \
the dependency 'order_repo', but Container has no provider named 'order_repo' (did you mean \
'orders'?); add one to the container (e.g. order_repo = providers.Factory(...)), map the \
parameter with ContainerResolver(..., overrides={'order_repo': container.<provider>}), or \
give the parameter a default
"""


def test_dependency_injector_example_wires_places_overrides_and_catches_a_typo(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    load("guide_dependency_injector").main(tmp_path)

    assert capsys.readouterr().out == DI_OUTPUT
    shown = shown_output("dependency-injector.md", "guide_dependency_injector.py")
    assert shown == DI_OUTPUT.replace("docs_example_guide_dependency_injector", "__main__")


def test_dependency_injector_gives_the_repository_the_commands_own_session(
    tmp_path: Path,
) -> None:
    from dependency_injector import providers

    from cqrs_kit import current_context
    from cqrs_kit.eventlog import create_event_log

    example = load("guide_dependency_injector")
    container = example.Container()
    container.config.database.from_value(tmp_path / "shop.db")
    example.metadata.create_all(container.engine())
    create_event_log(container.engine())
    seen: list[tuple[Any, Any]] = []

    class SpyOrders(example.SqlAlchemyOrders):  # type: ignore[name-defined, misc]
        def add(self, sku: str, placed_at: Any) -> int:
            ctx = current_context()
            assert ctx is not None
            assert ctx.unit_of_work is not None
            seen.append((self.session, ctx.unit_of_work.session))
            return int(super().add(sku, placed_at))

    container.orders.override(providers.Factory(SpyOrders, session=container.uow.provided.session))
    mediator = example.build_mediator(container)
    mediator.send(example.PlaceOrder(sku="tea"))
    mediator.send(example.PlaceOrder(sku="cake"))
    container.engine().dispose()

    [(repo_1, uow_1), (repo_2, uow_2)] = seen
    assert repo_1 is uow_1, "the repository writes in the command's own transaction"
    assert repo_2 is uow_2
    assert repo_1 is not repo_2, "each command has a session of its own"


# -- guides/structlog.md ---------------------------------------------------------------------

STRUCTLOG_OUTPUT = """\
{'logger': 'framework', 'event': 'request started', 'level': 'info', 'request_id': 'req-42'}
{'logger': 'reports', 'event': 'archiving', 'level': 'info', 'request_id': 'req-42', \
'correlation_id': 'req-42', 'message_type': 'ArchiveReport'}
{'logger': 'cqrs_kit', 'event': 'dispatch', 'level': 'info', 'request_id': 'req-42', \
'correlation_id': 'req-42', 'message_type': 'ArchiveReport', 'outcome': 'ok'}
{'logger': 'framework', 'event': 'request started', 'level': 'info', 'request_id': 'req-43'}
{'logger': 'reports', 'event': 'archiving', 'level': 'info', 'request_id': 'req-43', \
'correlation_id': 'req-43', 'message_type': 'ArchiveReport'}
"""


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    cqrs_level = logging.getLogger("cqrs_kit").level
    logging.getLogger("cqrs_kit").setLevel(logging.NOTSET)  # whatever earlier tests left
    structlog.reset_defaults()
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.getLogger("cqrs_kit").setLevel(cqrs_level)
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


@pytest.mark.usefixtures("restore_logging")
def test_structlog_guide_logs_every_line_of_a_request_as_json_with_its_ids(
    capsys: pytest.CaptureFixture[str],
) -> None:
    load("guide_structlog").main()

    assert capsys.readouterr().out == STRUCTLOG_OUTPUT
    assert shown_output("structlog.md", "guide_structlog.py") == STRUCTLOG_OUTPUT


@pytest.mark.usefixtures("restore_logging")
def test_structlog_guide_renders_full_json_lines(tmp_path: Path) -> None:
    example = load("guide_structlog")
    log_file = tmp_path / "log.jsonl"
    with log_file.open("w", encoding="utf-8") as stream:
        example.configure_logging(stream)
        example.handle_request("req-1", report_id=1)
        logging.getLogger().handlers[0].flush()
    dispatch = [json.loads(line) for line in log_file.read_text().splitlines()][-1]

    assert dispatch["event"] == "dispatch"
    assert {"timestamp", "message_id", "causation_id", "duration_ms"} <= dispatch.keys()


# -- guides/testing.md -----------------------------------------------------------------------

TESTING = load("guide_testing")
TESTING_TESTS = {name: test for name, test in vars(TESTING).items() if name.startswith("test_")}


@pytest.mark.parametrize("name", sorted(TESTING_TESTS))
def test_testing_guide_example_test(name: str, tmp_path: Path) -> None:
    test: Callable[..., None] = TESTING_TESTS[name]
    if "tmp_path" in inspect.signature(test).parameters:
        test(tmp_path=tmp_path)
    else:
        test()


# -- guides/postgres-workers.md --------------------------------------------------------------

WORKER_STATUS = """\
projection     strategy  state    checkpoint  head  lag  lag_s  error
daily_revenue  async     running  5           5     0    0.0
"""


def cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(EXAMPLES),
        "WRITE_DATABASE_URL": f"sqlite:///{tmp_path / 'write.db'}",
        "READ_DATABASE_URL": f"sqlite:///{tmp_path / 'read.db'}",
    }
    command = [sys.executable, "-m", "cqrs_kit.projections"]
    command += ["--app", "guide_workers:build_engine", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, check=True)  # noqa: S603 - our own interpreter and module


def test_worker_command_line_sets_up_catches_up_and_rebuilds(tmp_path: Path) -> None:
    workers = load("guide_workers")
    from cqrs_kit.event_types import PendingEvent
    from cqrs_kit.eventlog import EventLog, create_event_log

    write = workers.database(f"sqlite:///{tmp_path / 'write.db'}")
    create_event_log(write)
    with write.begin() as connection:
        EventLog(workers.event_types).append(
            connection,
            [
                PendingEvent(
                    workers.OrderPlaced(
                        order_id=i, day=f"2030-01-0{1 + i % 2}", total_cents=100 * i
                    ),
                    "order",
                    str(i),
                )
                for i in range(1, 6)
            ],
        )
    write.dispose()

    cli(tmp_path, "setup")
    cli(tmp_path, "run", "--once")
    assert cli(tmp_path, "status").stdout == WORKER_STATUS
    rebuilt = cli(tmp_path, "rebuild", "daily_revenue")
    assert rebuilt.stdout == "rebuilt daily_revenue: 5 events applied\n"

    read = sa.create_engine(f"sqlite:///{tmp_path / 'read.db'}")
    try:
        with read.connect() as connection:
            days = connection.execute(sa.text("SELECT * FROM daily_revenue ORDER BY day")).all()
    finally:
        read.dispose()
    assert [tuple(day) for day in days] == [("2030-01-01", 2, 600), ("2030-01-02", 3, 900)]
    assert WORKER_STATUS in (GUIDES / "postgres-workers.md").read_text(encoding="utf-8")


# -- guides/migrate-slow-query.md ------------------------------------------------------------

SLOW_QUERY_OUTPUT = """\
backfilled 1500 order events
rebuilt customer_revenue from 1501 events
same answer as the write model: True
"""


def test_slow_query_migration_backfills_rebuilds_and_matches_the_baseline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    load("guide_slow_query").main(tmp_path)
    captured = capsys.readouterr()

    assert captured.out == SLOW_QUERY_OUTPUT
    assert re.fullmatch(r"baseline [\d.]+ ms, read model [\d.]+ ms\n", captured.err)
    assert shown_output("migrate-slow-query.md", "guide_slow_query.py") == SLOW_QUERY_OUTPUT


def test_slow_query_backfill_is_idempotent(tmp_path: Path) -> None:
    example = load("guide_slow_query")
    write_db = example.sqlite_engine(tmp_path / "write.db")
    example.write_metadata.create_all(write_db)
    example.create_event_log(write_db)
    example.seed_history(write_db, customer_count=3, order_count=10)
    event_log = example.EventLog(example.event_types)
    mediator = example.Mediator(
        example.registry,
        middleware=[example.TransactionMiddleware(example.sessionmaker(write_db), event_log)],
        resolver=example.Dependencies({"event_log": event_log, "read_db": None}),
    )

    assert mediator.send(example.BackfillOrderEvents(batch=4)) == 4
    assert mediator.send(example.BackfillOrderEvents(batch=100)) == 6
    assert mediator.send(example.BackfillOrderEvents(batch=100)) == 0, "nothing twice"
    with write_db.connect() as connection:
        stream_ids = [event.stream_id for event in event_log.read(connection, after=0)]
    write_db.dispose()
    assert stream_ids == [str(i) for i in range(1, 11)], "one event per order, oldest first"
