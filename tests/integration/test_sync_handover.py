"""``sync`` projections apply a command's own events from memory (SQLite; PostgreSQL).

After the command commits, ``ProjectionMiddleware`` hands the events it appended to the
catch-up; when the checkpoint sits right before them they are applied without reading the
log back. Otherwise the catch-up reads the log as before.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import async_sessionmaker

from cqrs_kit import AsyncMediator, PendingEvent
from cqrs_kit.event_types import StoredEvent
from cqrs_kit.eventlog import EventLog, create_event_log, forget_appended, take_appended
from cqrs_kit.middleware.projection import AsyncProjectionMiddleware
from cqrs_kit.middleware.transaction import AsyncTransactionMiddleware
from cqrs_kit.persistence import async_sqlite_engine, sqlite_engine
from cqrs_kit.projections import ProjectionContext, ProjectionEngine, Strategy
from tests.integration import bank
from tests.integration.test_projections import (
    Setup,
    _sync_mediator,
    make_projections,
    mirror,
    poison,
    summary,
)


@pytest.fixture(autouse=True)
def _no_poison() -> None:
    poison.clear()


def _log_reads(engine: ProjectionEngine) -> list[str]:
    """Records every statement that reads the event log through the engine's log reader."""
    reads: list[str] = []

    def on_execute(*args: Any) -> None:
        statement = args[2]
        if "FROM event_log" in statement:
            reads.append(statement)

    sa.event.listen(engine._log_engine, "before_cursor_execute", on_execute)
    return reads


def _seen(setup: Setup) -> list[StoredEvent]:
    """Add a handler that records ctx.stored of every event the summary projection applies."""
    seen: list[StoredEvent] = []
    projection = setup.engine.projection("account_summary")
    deposited = projection.handlers[bank.Deposited]

    def recording(event: bank.Deposited, ctx: ProjectionContext) -> None:
        seen.append(ctx.stored)
        deposited(event, ctx)

    projection.handlers[bank.Deposited] = recording
    setup.engine._routes["account_summary"][bank.event_types.name_of(bank.Deposited)] = (
        False,
        recording,
    )
    return seen


def test_sync_applies_the_commands_own_events_without_reading_the_log(
    engines: tuple[sa.Engine, sa.Engine],
) -> None:
    setup = Setup(*engines, make_projections(Strategy.SYNC))
    seen = _seen(setup)
    mediator = _sync_mediator(setup)
    reads = _log_reads(setup.engine)
    account = mediator.send(bank.OpenAccount(name="ada"))
    for amount in (3, 4):
        mediator.send(bank.Deposit(account_id=account, amount=amount))
    # A trigger-style handler (the mirror) still reads the write model, through ctx.write.
    assert setup.rows(summary) == [(account, "ada", 7, 2)]
    assert setup.rows(mirror) == [(account, "ada", 7)]
    assert reads == [], "the catch-ups took the events from memory"
    with setup.write.connect() as connection:
        from_log = [e for e in setup.log.read(connection) if e.event_type == "account.deposited"]
    assert seen == from_log, "the handed-over rows equal what the log read returns"
    assert setup.engine.checkpoint("account_summary").position == 3

    # A rebuild reads the log and must produce the same rows.
    before = setup.rows(summary)
    setup.engine.rebuild("account_summary", in_place=True)
    assert setup.rows(summary) == before


def test_sync_reads_the_log_when_the_checkpoint_is_behind(
    engines: tuple[sa.Engine, sa.Engine],
) -> None:
    setup = Setup(*engines, make_projections(Strategy.SYNC))
    mediator = _sync_mediator(setup)
    account = mediator.send(bank.OpenAccount(name="ada"))
    with setup.write.begin() as connection:  # an event the sync catch-up has not seen yet
        setup.log.append(
            connection,
            [PendingEvent(bank.Deposited(account_id=account, amount=100), "account", "1")],
        )
    reads = _log_reads(setup.engine)
    mediator.send(bank.Deposit(account_id=account, amount=1))
    assert reads, "a gap before the command's events: the catch-up reads the log"
    assert setup.rows(summary) == [(account, "ada", 101, 2)], "both events, each once"
    reads.clear()
    mediator.send(bank.Deposit(account_id=account, amount=1))
    assert reads == [], "caught up again: back to the hand-over"
    assert setup.rows(summary) == [(account, "ada", 102, 3)]


def test_sync_skips_events_a_concurrent_caller_applied(
    engines: tuple[sa.Engine, sa.Engine],
) -> None:
    setup = Setup(*engines, make_projections(Strategy.SYNC))
    mediator = _sync_mediator(setup)
    account = mediator.send(bank.OpenAccount(name="ada"))
    forget_appended()
    with setup.write.begin() as connection:
        setup.log.append(
            connection, [PendingEvent(bank.Deposited(account_id=account, amount=5), "", "1")]
        )
    appended = take_appended()
    assert appended is not None
    assert take_appended() is None, "taken once"
    assert setup.engine.catch_up("account_summary") == 1  # someone else got there first
    assert setup.engine.catch_up("account_summary", until=2, appended=appended) == 0
    assert setup.rows(summary) == [(account, "ada", 5, 1)], "applied exactly once"


def test_concurrent_sync_callers_apply_every_event_exactly_once(
    engines: tuple[sa.Engine, sa.Engine],
) -> None:
    setup = Setup(*engines, make_projections(Strategy.SYNC, Strategy.ASYNC))
    account = _sync_mediator(setup).send(bank.OpenAccount(name="ada"))
    # Two engines over the same databases (two processes, as it were), two threads each.
    other = Setup.__new__(Setup)
    other.write, other.read, other.log = setup.write, setup.read, setup.log
    other.engine = ProjectionEngine(
        event_log=setup.log,
        write_engine=setup.write,
        read_engine=setup.read,
        projections=setup.engine.projections,
        retry_delay=0.001,
    )
    mediators = [_sync_mediator(setup), _sync_mediator(other)] * 2
    barrier = threading.Barrier(len(mediators))

    def run(index: int) -> None:
        barrier.wait()
        for amount in range(1, 16):
            mediators[index].send(bank.Deposit(account_id=account, amount=amount))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(mediators))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    setup.engine.catch_up("account_summary")  # a fenced catch-up leaves its events for later
    assert setup.rows(summary) == [(account, "ada", 4 * sum(range(1, 16)), 4 * 15)], (
        "no event applied twice or skipped"
    )
    other.engine.close()


@pytest.mark.asyncio
async def test_async_mediator_hands_over_too(tmp_path: Path) -> None:
    poison.clear()
    write, read = sqlite_engine(tmp_path / "write.db"), sqlite_engine(tmp_path / "read.db")
    setup = Setup(write, read, make_projections(Strategy.SYNC))
    async_write = async_sqlite_engine(tmp_path / "write.db")
    ref: list[Any] = []
    mediator = AsyncMediator(
        setup.summary_handler_registry(ref, asynchronous=True),
        middleware=[
            AsyncProjectionMiddleware(setup.engine),
            AsyncTransactionMiddleware(async_sessionmaker(async_write), setup.log),
        ],
    )
    ref.append(mediator)
    reads = _log_reads(setup.engine)
    account = await mediator.send(bank.OpenAccount(name="ada"))
    await mediator.send(bank.Deposit(account_id=account, amount=4))
    assert setup.rows(summary) == [(account, "ada", 4, 1)]
    assert setup.rows(mirror) == [(account, "ada", 4)]
    assert reads == [], "the async mediator's catch-ups took the events from memory"
    await async_write.dispose()
    write.dispose()
    read.dispose()


def test_an_append_is_remembered_per_context(tmp_path: Path) -> None:
    engine = sqlite_engine(tmp_path / "log.db")
    log = EventLog(bank.event_types)
    create_event_log(engine)
    forget_appended()
    taken: list[object] = []

    def other_thread() -> None:
        with engine.begin() as connection:
            log.append(
                connection, [PendingEvent(bank.AccountOpened(account_id=1, name="x"), "", "1")]
            )
        taken.append(take_appended())

    thread = threading.Thread(target=other_thread)
    thread.start()
    thread.join()
    assert take_appended() is None, "another thread's append is not this thread's"
    appended = taken[0]
    assert appended is not None
    engine.dispose()


def test_events_appended_to_another_database_are_never_handed_over(
    engines: tuple[sa.Engine, sa.Engine], tmp_path: Path
) -> None:
    """One EventLog shared by two write databases: equal positions, different events."""
    setup = Setup(*engines, make_projections(Strategy.SYNC))
    other = sqlite_engine(tmp_path / "other.db")
    create_event_log(other)
    mediator = _sync_mediator(setup)
    account = mediator.send(bank.OpenAccount(name="ada"))
    with setup.write.begin() as connection:  # this database's next event, not yet applied
        setup.log.append(
            connection,
            [PendingEvent(bank.Deposited(account_id=account, amount=5), "account", "1")],
        )
    with setup.write.connect() as connection:
        token = setup.log.head(connection)
    for event in (  # the other database's positions 1 and 2
        bank.AccountOpened(account_id=9, name="eve"),
        bank.Deposited(account_id=account, amount=999),
    ):
        with other.begin() as connection:
            setup.log.append(connection, [PendingEvent(event, "account", "1")])
    foreign = take_appended()
    assert foreign is not None
    assert foreign.positions == [token], "right after the checkpoint, as this database's"

    setup.engine.catch_up("account_summary", until=token, appended=foreign)

    assert setup.rows(summary) == [(account, "ada", 5, 1)], "this database's event, not 999"
    other.dispose()
