"""Transaction middleware and unit of work: one contract, run on every backend."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlalchemy.orm import sessionmaker

from cqrs_kit import (
    AsyncMediator,
    ConcurrencyError,
    IdempotencyKeyReusedError,
    Mediator,
    PersistenceError,
)
from cqrs_kit.eventlog import EventLog, create_event_log
from cqrs_kit.middleware.transaction import (
    AsyncTransactionMiddleware,
    RetryPolicy,
    TransactionMiddleware,
)
from cqrs_kit.persistence import async_sqlite_engine, sqlite_engine
from tests.databases import Database
from tests.integration import bank

FAST_RETRY = RetryPolicy(attempts=3, base_delay=0.001, max_delay=0.002)


class Harness:
    """Runs commands through a mediator with transactions, sync or async, on one database."""

    def __init__(
        self, sync_engine: sa.Engine, *, asynchronous: bool, async_engine: Any = None
    ) -> None:
        self.engine = sync_engine  # for inspection, always sync
        self.asynchronous = asynchronous
        self.event_log = EventLog(bank.event_types)
        self.tokens: list[int | None] = []
        ref: list[Any] = []

        if asynchronous:

            async def capture(message: Any, ctx: Any, call_next: Any) -> Any:
                result = await call_next()
                self.tokens.append(ctx.consistency_token)
                return result

            self.mediator: Any = AsyncMediator(
                bank.async_registry(ref),
                middleware=[
                    capture,
                    AsyncTransactionMiddleware(
                        async_sessionmaker(async_engine), self.event_log, retry=FAST_RETRY
                    ),
                ],
            )
            self.loop = asyncio.new_event_loop()
        else:

            def capture_sync(message: Any, ctx: Any, call_next: Any) -> Any:
                result = call_next()
                self.tokens.append(ctx.consistency_token)
                return result

            self.mediator = Mediator(
                bank.sync_registry(ref),
                middleware=[
                    capture_sync,
                    TransactionMiddleware(
                        sessionmaker(sync_engine), self.event_log, retry=FAST_RETRY
                    ),
                ],
            )
        ref.append(self.mediator)
        self.async_engine = async_engine

    def send(self, command: Any, **options: Any) -> Any:
        if self.asynchronous:
            return self.loop.run_until_complete(self.mediator.send(command, **options))
        return self.mediator.send(command, **options)

    def close(self) -> None:
        if self.asynchronous:
            self.loop.run_until_complete(self.async_engine.dispose())
            self.loop.close()
        self.engine.dispose()

    # -- inspection ---------------------------------------------------------------------

    def balances(self) -> dict[str, int]:
        with self.engine.connect() as connection:
            rows = connection.execute(sa.select(bank.accounts.c.name, bank.accounts.c.balance))
            return {row.name: row.balance for row in rows}

    def events(self) -> list[Any]:
        with self.engine.connect() as connection:
            return self.event_log.read(connection, after=0, limit=10_000)


def _create_schema(engine: sa.Engine) -> None:
    bank.metadata.create_all(engine)
    create_event_log(engine)


@pytest.fixture(params=["sqlite-sync", "sqlite-async", "postgres-sync", "postgres-async"])
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    backend, mode = request.param.split("-")
    asynchronous = mode == "async"
    if backend == "sqlite":
        path = tmp_path / "write.db"
        engine = sqlite_engine(path)
        async_engine = async_sqlite_engine(path) if asynchronous else None
    else:
        database: Database = request.getfixturevalue("postgres_database")
        engine = sa.create_engine(database.sync_url)
        async_engine = create_async_engine(database.async_url) if asynchronous else None
    _create_schema(engine)
    h = Harness(engine, asynchronous=asynchronous, async_engine=async_engine)
    yield h
    h.close()


class TestTransactions:
    def test_commits_state_and_events_together(self, harness: Harness) -> None:
        account_id = harness.send(bank.OpenAccount(name="ada"))
        harness.send(bank.Deposit(account_id=account_id, amount=10))

        assert harness.balances() == {"ada": 10}
        events = harness.events()
        assert [e.event_type for e in events] == ["account.opened", "account.deposited"]
        assert [e.position for e in events] == sorted(e.position for e in events)
        assert events[0].stream_type == "account"
        assert events[0].stream_id == str(account_id)
        assert events[1].payload == {"account_id": account_id, "amount": 10}
        assert harness.tokens == [events[0].position, events[1].position], "token = last position"

    def test_rolls_back_and_reraises_the_same_domain_error(self, harness: Harness) -> None:
        account_id = harness.send(bank.OpenAccount(name="bob"))
        with pytest.raises(bank.InsufficientFundsError) as info:
            harness.send(bank.Deposit(account_id=account_id, amount=-5))
        assert info.value is bank.raised[-1], "the handler's exception object reaches the caller"
        assert info.value.args == (account_id,)
        assert harness.balances() == {"bob": 0}, "the balance update was rolled back"
        assert [e.event_type for e in harness.events()] == ["account.opened"]

    def test_nested_command_joins_the_outer_transaction(self, harness: Harness) -> None:
        source = harness.send(bank.OpenAccount(name="src"))
        target = harness.send(bank.OpenAccount(name="dst"))
        harness.send(bank.Deposit(account_id=source, amount=5))

        with pytest.raises(bank.InsufficientFundsError):
            harness.send(bank.Transfer(source=source, target=target, amount=7))
        assert harness.balances() == {"src": 5, "dst": 0}, "the inner deposit was rolled back too"

        harness.send(bank.Transfer(source=source, target=target, amount=3))
        assert harness.balances() == {"src": 2, "dst": 3}
        first, second = harness.events()[-2:]
        assert first.metadata["correlation_id"] == second.metadata["correlation_id"]
        assert first.metadata["causation_id"] != second.metadata["causation_id"]
        assert first.metadata["command_type"] == "Deposit"
        assert harness.tokens[-1] == second.position, "the outer command carries the token"

    def test_sqlalchemy_errors_become_persistence_errors(self, harness: Harness) -> None:
        harness.send(bank.OpenAccount(name="dup"))
        with pytest.raises(PersistenceError) as info:
            harness.send(bank.OpenAccount(name="dup"))
        assert isinstance(info.value.__cause__, sa.exc.IntegrityError)
        assert not isinstance(info.value, ConcurrencyError)
        assert len(harness.events()) == 1

    def test_validation_errors_pass_through_untouched(self, harness: Harness) -> None:
        with pytest.raises(ValidationError):
            bank.OpenAccount(name=123)  # type: ignore[arg-type]
        assert harness.events() == []

    def test_idempotency_key_returns_the_first_result(self, harness: Harness) -> None:
        first = harness.send(bank.OpenAccount(name="once", idempotency_key="k-1"))
        again = harness.send(bank.OpenAccount(name="once", idempotency_key="k-1"))
        assert again == first
        assert harness.balances() == {"once": 0}
        assert len(harness.events()) == 1
        assert harness.tokens[-1] is None, "a repeat appends nothing"

    def test_idempotency_key_from_metadata(self, harness: Harness) -> None:
        first = harness.send(bank.OpenAccount(name="meta"), metadata={"idempotency_key": "m-1"})
        again = harness.send(bank.OpenAccount(name="meta"), metadata={"idempotency_key": "m-1"})
        assert again == first
        assert len(harness.events()) == 1

    def test_idempotency_key_reused_for_another_command_is_refused(self, harness: Harness) -> None:
        harness.send(bank.OpenAccount(name="a", idempotency_key="k-2"))
        with pytest.raises(IdempotencyKeyReusedError) as info:
            harness.send(bank.OpenAccount(name="b", idempotency_key="k-2"))
        assert info.value.key == "k-2"
        assert harness.balances() == {"a": 0}


def _sync_harness(engine: sa.Engine) -> Harness:
    _create_schema(engine)
    return Harness(engine, asynchronous=False)


@pytest.fixture(params=["sqlite", "postgres"])
def sync_harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    if request.param == "sqlite":
        engine = sqlite_engine(tmp_path / "write.db")
    else:
        engine = sa.create_engine(
            request.getfixturevalue("postgres_database").sync_url, pool_size=10
        )
    h = _sync_harness(engine)
    yield h
    h.close()


def test_racing_repeats_of_an_idempotent_command_run_once(sync_harness: Harness) -> None:
    barrier = threading.Barrier(8)

    def send(_: int) -> int:
        barrier.wait()
        return int(sync_harness.send(bank.OpenAccount(name="race", idempotency_key="race-1")))

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(send, range(8)))
    assert len(set(results)) == 1, f"every repeat returns the first result, got {results}"
    assert sync_harness.balances() == {"race": 0}
    assert len(sync_harness.events()) == 1


def test_sqlite_busy_beyond_timeout_retries_then_raises_concurrency_error(tmp_path: Path) -> None:
    path = tmp_path / "busy.db"
    engine = sqlite_engine(path)
    _create_schema(engine)
    h = Harness(engine, asynchronous=False)
    impatient = sqlite_engine(path)
    impatient.dispose()
    from cqrs_kit.persistence import configure_sqlite

    quick = sa.create_engine(f"sqlite+pysqlite:///{path}")
    configure_sqlite(quick, busy_timeout_ms=20)
    h.mediator = Mediator(
        bank.sync_registry([None]),
        middleware=[TransactionMiddleware(sessionmaker(quick), h.event_log, retry=FAST_RETRY)],
    )
    blocker = sqlite_engine(path).connect()
    blocker.begin()  # BEGIN IMMEDIATE: holds the write lock
    try:
        with pytest.raises(ConcurrencyError) as info:
            h.send(bank.OpenAccount(name="late"))
        assert info.value.attempts == FAST_RETRY.attempts
        assert isinstance(info.value.__cause__, sa.exc.OperationalError)
    finally:
        blocker.rollback()
        blocker.close()
    assert h.send(bank.OpenAccount(name="late")) == 1, "works once the lock is released"
    quick.dispose()
    h.close()


def test_postgres_serialization_failure_is_retried(postgres_database: Database) -> None:
    engine = sa.create_engine(postgres_database.sync_url)
    h = _sync_harness(engine)
    account_id = h.send(bank.OpenAccount(name="hot"))
    attempts: list[int] = []
    registry = bank.sync_registry([None])

    class Bump(bank.Command[None]):
        account_id: int

    @registry.handles(Bump)
    def bump(command: Bump, *, uow: Any) -> None:
        session = uow.session
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        session.execute(
            sa.select(bank.accounts.c.balance).where(bank.accounts.c.id == command.account_id)
        )
        attempts.append(1)
        if len(attempts) == 1:  # a concurrent writer commits in between, once
            with engine.begin() as other:
                other.execute(bank._deposit(command.account_id, 100))
        session.execute(bank._deposit(command.account_id, 1))

    from cqrs_kit.dependencies import Dependencies, Factory, unit_of_work_of

    mediator = Mediator(
        registry,
        middleware=[TransactionMiddleware(sessionmaker(engine), h.event_log, retry=FAST_RETRY)],
        resolver=Dependencies({"uow": Factory(unit_of_work_of)}),
    )
    mediator.send(Bump(account_id=account_id))
    assert len(attempts) == 2, "the serialization failure retried the whole command once"
    assert h.balances() == {"hot": 101}
    h.close()


def test_connection_lost_during_commit_is_not_retried_without_a_key(
    postgres_database: Database,
) -> None:
    engine = sa.create_engine(postgres_database.sync_url)
    h = _sync_harness(engine)
    h.send(bank.OpenAccount(name="first"))
    killer = sa.create_engine(postgres_database.sync_url, poolclass=sa.pool.NullPool)
    kills: list[int] = []

    @sa.event.listens_for(engine, "commit")
    def kill_before_commit(connection: sa.Connection) -> None:
        if len(kills) < 1:
            pid = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
            kills.append(pid)
            with killer.connect() as other:
                other.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})

    with pytest.raises(PersistenceError, match="may or may not have been applied") as info:
        h.send(bank.OpenAccount(name="second"))
    assert not isinstance(info.value, ConcurrencyError)
    assert kills, "the connection was cut during the commit"
    assert h.balances() == {"first": 0}, "here the commit did not land, and nothing retried it"

    kills.clear()  # with an idempotency key the same fault is retried safely
    assert h.send(bank.OpenAccount(name="third", idempotency_key="k")) == h.send(
        bank.OpenAccount(name="third", idempotency_key="k")
    )
    assert set(h.balances()) == {"first", "third"}
    killer.dispose()
    h.close()


def test_a_handler_needing_a_unit_of_work_without_a_transaction_fails_at_freeze() -> None:
    from cqrs_kit import ConfigurationError

    mediator = Mediator(bank.sync_registry([None]))
    with pytest.raises(
        ConfigurationError, match="no transaction middleware applies to OpenAccount"
    ):
        mediator.freeze()
