"""Projection engine and strategies, end to end with both mediators (SQLite; PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from pathlib import Path
from typing import Any, ClassVar

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.orm import sessionmaker

from cqrs_kit import (
    AsyncMediator,
    AtLeast,
    ConfigurationError,
    ConsistencyTimeoutError,
    Mediator,
    Query,
    Receipt,
    Registry,
    UnknownEventTypeError,
)
from cqrs_kit.eventlog import EventLog, create_event_log
from cqrs_kit.middleware.projection import (
    AsyncConsistencyMiddleware,
    AsyncProjectionMiddleware,
    ConsistencyMiddleware,
    ProjectionMiddleware,
)
from cqrs_kit.middleware.transaction import (
    AsyncTransactionMiddleware,
    RetryPolicy,
    TransactionMiddleware,
)
from cqrs_kit.persistence import async_sqlite_engine, sqlite_engine
from cqrs_kit.projections import (
    AsyncProjectionWorker,
    FailurePolicy,
    Projection,
    ProjectionContext,
    ProjectionEngine,
    ProjectionWorker,
    Strategy,
)
from tests.integration import bank

read_metadata = sa.MetaData()
summary = sa.Table(
    "account_summary",
    read_metadata,
    sa.Column("account_id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(50), nullable=False),
    sa.Column("balance", sa.Integer, nullable=False),
    sa.Column("deposits", sa.Integer, nullable=False),
)
mirror = sa.Table(  # rebuilt from the write model on each event (the trigger style)
    "account_mirror",
    read_metadata,
    sa.Column("account_id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(50), nullable=False),
    sa.Column("balance", sa.Integer, nullable=False),
)

poison: dict[str, int] = {}
"""amount -> remaining failures the summary projection raises for a deposit of that amount."""


def make_projections(
    summary_strategy: Strategy, mirror_strategy: Strategy = Strategy.SYNC, **options: Any
) -> list[Projection]:
    summary_projection = Projection(
        "account_summary", tables=[summary], strategy=summary_strategy, **options
    )

    @summary_projection.on(bank.AccountOpened)
    def opened(event: bank.AccountOpened, ctx: ProjectionContext) -> None:
        ctx.connection.execute(
            sa.insert(summary).values(
                account_id=event.account_id, name=event.name, balance=0, deposits=0
            )
        )

    @summary_projection.on(bank.Deposited)
    def deposited(event: bank.Deposited, ctx: ProjectionContext) -> None:
        if poison.get(str(event.amount), 0) > 0:
            poison[str(event.amount)] -= 1
            raise RuntimeError(f"poison {event.amount}")
        ctx.connection.execute(
            sa.update(summary)
            .where(summary.c.account_id == event.account_id)
            .values(balance=summary.c.balance + event.amount, deposits=summary.c.deposits + 1)
        )

    mirror_projection = Projection("account_mirror", tables=[mirror], strategy=mirror_strategy)

    def refresh(account_id: int, ctx: ProjectionContext) -> None:
        row = ctx.write.execute(
            sa.select(bank.accounts.c.name, bank.accounts.c.balance).where(
                bank.accounts.c.id == account_id
            )
        ).one()
        ctx.connection.execute(sa.delete(mirror).where(mirror.c.account_id == account_id))
        ctx.connection.execute(
            sa.insert(mirror).values(account_id=account_id, name=row.name, balance=row.balance)
        )

    @mirror_projection.on(bank.AccountOpened)
    def mirror_opened(event: bank.AccountOpened, ctx: ProjectionContext) -> None:
        refresh(event.account_id, ctx)

    @mirror_projection.on(bank.Deposited)
    def mirror_deposited(event: bank.Deposited, ctx: ProjectionContext) -> None:
        refresh(event.account_id, ctx)

    return [summary_projection, mirror_projection]


class GetSummary(Query[tuple[int, int] | None]):
    read_models: ClassVar[tuple[str, ...]] = ("account_summary",)
    account_id: int


class Setup:
    def __init__(self, write: sa.Engine, read: sa.Engine, projections: list[Projection]) -> None:
        bank.metadata.create_all(write)
        create_event_log(write)
        self.write, self.read = write, read
        self.log = EventLog(bank.event_types)
        self.engine = ProjectionEngine(
            event_log=self.log,
            write_engine=write,
            read_engine=read,
            projections=projections,
            write_metadata=bank.metadata,
            retry_delay=0.001,
        )
        self.engine.setup()

    def rows(self, table: sa.Table) -> list[tuple[Any, ...]]:
        engine = self.write if table.name in self._inline_tables() else self.read
        with engine.connect() as connection:
            return [
                tuple(r) for r in connection.execute(sa.select(table).order_by(table.c.account_id))
            ]

    def _inline_tables(self) -> set[str]:
        return {
            t.name
            for p in self.engine.projections
            if p.strategy is Strategy.INLINE
            for t in p.tables
        }

    def summary_handler_registry(self, ref: list[Any], *, asynchronous: bool) -> Registry:
        registry = bank.async_registry(ref) if asynchronous else bank.sync_registry(ref)
        read = self.read

        if asynchronous:

            @registry.handles(GetSummary)
            async def get_async(query: GetSummary) -> tuple[int, int] | None:
                return _summary(read, query.account_id)

        else:

            @registry.handles(GetSummary)
            def get(query: GetSummary) -> tuple[int, int] | None:
                return _summary(read, query.account_id)

        return registry


def _summary(read: sa.Engine, account_id: int) -> tuple[int, int] | None:
    with read.connect() as connection:
        row = connection.execute(
            sa.select(summary.c.balance, summary.c.deposits).where(
                summary.c.account_id == account_id
            )
        ).first()
    return None if row is None else (row.balance, row.deposits)


@pytest.fixture(autouse=True)
def _no_poison() -> None:
    poison.clear()


def _sync_mediator(setup: Setup, worker: ProjectionWorker | None = None) -> Mediator:
    ref: list[Any] = []
    mediator = Mediator(
        setup.summary_handler_registry(ref, asynchronous=False),
        middleware=[
            ConsistencyMiddleware(setup.engine),
            ProjectionMiddleware(setup.engine, worker),
            TransactionMiddleware(
                sessionmaker(setup.write),
                setup.log,
                retry=RetryPolicy(attempts=2, base_delay=0.001, max_delay=0.001),
                after_append=[setup.engine.apply_inline],
            ),
        ],
    )
    ref.append(mediator)
    return mediator


@pytest.mark.parametrize("strategy", [Strategy.SYNC, Strategy.INLINE])
def test_sync_and_inline_projections_are_current_when_send_returns(
    engines: tuple[sa.Engine, sa.Engine], strategy: Strategy
) -> None:
    setup = Setup(*engines, make_projections(strategy))
    mediator = _sync_mediator(setup)
    account = mediator.send(bank.OpenAccount(name="ada"))
    mediator.send(bank.Deposit(account_id=account, amount=7))
    if strategy is Strategy.SYNC:
        assert mediator.ask(GetSummary(account_id=account)) == (7, 1)
    assert setup.rows(summary) == [(account, "ada", 7, 1)]
    assert setup.rows(mirror) == [(account, "ada", 7)], (
        "trigger style: rebuilt from the write model"
    )
    statuses = {s.name: s for s in setup.engine.status()}
    assert statuses["account_summary"].lag_events == 0
    assert statuses["account_summary"].checkpoint == statuses["account_summary"].head == 2


def test_inline_projection_failure_rolls_back_the_command(
    engines: tuple[sa.Engine, sa.Engine],
) -> None:
    setup = Setup(*engines, make_projections(Strategy.INLINE))
    mediator = _sync_mediator(setup)
    account = mediator.send(bank.OpenAccount(name="ada"))
    poison["13"] = 1
    with pytest.raises(Exception, match="poison 13"):
        mediator.send(bank.Deposit(account_id=account, amount=13))
    with setup.write.connect() as connection:
        assert setup.log.head(connection) == 1, "the event was rolled back with the command"
    assert setup.rows(summary) == [(account, "ada", 0, 0)]


def test_async_worker_and_read_your_own_writes(engines: tuple[sa.Engine, sa.Engine]) -> None:
    setup = Setup(*engines, make_projections(Strategy.ASYNC))
    with ProjectionWorker(setup.engine) as worker:
        mediator = _sync_mediator(setup, worker)
        receipt = Receipt()
        account = mediator.send(bank.OpenAccount(name="ada"), receipt=receipt)
        for amount in range(1, 21):
            mediator.send(bank.Deposit(account_id=account, amount=amount), receipt=receipt)
        assert receipt.token == 21
        seen = mediator.ask(
            GetSummary(account_id=account), consistency=AtLeast(receipt.token, timeout=10)
        )
        assert seen == (210, 20), "a query with the token never sees stale data"


def test_a_busy_worker_gathers_the_commits_of_its_window_into_one_pass(
    engines: tuple[sa.Engine, sa.Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    setup = Setup(*engines, make_projections(Strategy.ASYNC))
    passes: list[int] = []
    run_once = setup.engine.run_once

    def recorded_run_once(names: Any = None) -> int:
        applied = run_once(names)
        if applied:
            passes.append(applied)
        return applied

    monkeypatch.setattr(setup.engine, "run_once", recorded_run_once)
    with ProjectionWorker(setup.engine, gather=1.0) as worker:
        mediator = _sync_mediator(setup, worker)
        receipt = Receipt()
        account = mediator.send(bank.OpenAccount(name="ada"), receipt=receipt)
        mediator.ask(GetSummary(account_id=account), consistency=AtLeast(receipt.token, timeout=10))
        for amount in range(1, 6):  # within the second the worker waits after its first pass
            mediator.send(bank.Deposit(account_id=account, amount=amount), receipt=receipt)
        seen = mediator.ask(
            GetSummary(account_id=account), consistency=AtLeast(receipt.token, timeout=10)
        )
    assert seen == (15, 5)
    assert len(passes) == 2, f"one pass for the account, one for the deposits: {passes}"
    assert passes[1] == 5, "the five deposits of the window were applied in one pass"


def test_a_stop_that_times_out_never_leaves_two_worker_threads(
    engines: tuple[sa.Engine, sa.Engine],
) -> None:
    setup = Setup(*engines, make_projections(Strategy.ASYNC))
    mediator = _sync_mediator(setup)
    account = mediator.send(bank.OpenAccount(name="ada"))
    for amount in range(1, 4):
        mediator.send(bank.Deposit(account_id=account, amount=amount))
    in_pass = threading.Event()
    release = threading.Event()
    projection = setup.engine.projection("account_summary")
    opened = projection.handlers[bank.AccountOpened]

    def slow_opened(event: bank.AccountOpened, ctx: ProjectionContext) -> None:
        in_pass.set()
        release.wait(10)
        opened(event, ctx)

    setup.engine._routes["account_summary"][bank.event_types.name_of(bank.AccountOpened)] = (
        False,
        slow_opened,
    )

    def workers() -> int:
        return sum(t.name == "cqrs-kit-projections" for t in threading.enumerate())

    worker = ProjectionWorker(setup.engine, names=["account_summary"])
    worker.start()
    assert in_pass.wait(10)
    worker.stop(timeout=0.05)  # the thread is inside a pass
    assert workers() == 1
    worker.start()  # the same thread goes on; no second one
    assert workers() == 1
    release.set()
    receipt_token = 4
    assert setup.engine.wait_for(["account_summary"], receipt_token, timeout=10)
    worker.stop()
    assert workers() == 0
    assert setup.rows(summary) == [(account, "ada", 6, 3)]


@pytest.mark.parametrize("worker_class", [ProjectionWorker, AsyncProjectionWorker])
def test_a_negative_gather_window_is_refused(
    engines: tuple[sa.Engine, sa.Engine], worker_class: type[Any]
) -> None:
    setup = Setup(*engines, make_projections(Strategy.ASYNC))
    with pytest.raises(ValueError, match="gather must be >= 0"):
        worker_class(setup.engine, gather=-0.1)


def test_consistency_timeout_fails_closed_or_reads_stale(
    engines: tuple[sa.Engine, sa.Engine],
) -> None:
    setup = Setup(*engines, make_projections(Strategy.ASYNC))
    mediator = _sync_mediator(setup)  # no worker: the async projection never moves
    receipt = Receipt()
    account = mediator.send(bank.OpenAccount(name="ada"), receipt=receipt)
    with pytest.raises(ConsistencyTimeoutError, match="account_summary"):
        mediator.ask(
            GetSummary(account_id=account), consistency=AtLeast(receipt.token, timeout=0.05)
        )
    requirement = AtLeast(receipt.token, timeout=0.05, allow_stale=True)
    assert mediator.ask(GetSummary(account_id=account), consistency=requirement) is None
    assert requirement.stale


def test_poison_event_pauses_only_its_projection_until_resumed(
    engines: tuple[sa.Engine, sa.Engine],
) -> None:
    setup = Setup(*engines, make_projections(Strategy.SYNC))
    mediator = _sync_mediator(setup)
    account = mediator.send(bank.OpenAccount(name="ada"))
    poison["5"] = 100  # fails every retry
    mediator.send(bank.Deposit(account_id=account, amount=5))  # the command still succeeds
    mediator.send(bank.Deposit(account_id=account, amount=1))
    checkpoint = setup.engine.checkpoint("account_summary")
    assert (checkpoint.state, checkpoint.failed_position, checkpoint.failed_event_type) == (
        "paused",
        2,
        "account.deposited",
    )
    assert "poison 5" in (checkpoint.last_error or "")
    assert setup.rows(summary) == [(account, "ada", 0, 0)]
    assert setup.rows(mirror) == [(account, "ada", 6)], "the other projection kept going"

    poison.clear()  # the fix
    assert setup.engine.retry("account_summary") == 2
    assert setup.rows(summary) == [(account, "ada", 6, 2)]


def test_skip_and_dead_letter(engines: tuple[sa.Engine, sa.Engine]) -> None:
    setup = Setup(*engines, make_projections(Strategy.SYNC))
    mediator = _sync_mediator(setup)
    account = mediator.send(bank.OpenAccount(name="ada"))
    poison["5"] = 100
    mediator.send(bank.Deposit(account_id=account, amount=5))
    assert setup.engine.skip("account_summary") == 2
    with pytest.raises(ConfigurationError, match="not paused"):
        setup.engine.skip("account_summary")
    mediator.send(bank.Deposit(account_id=account, amount=1))
    assert setup.rows(summary) == [(account, "ada", 1, 1)]

    projection = setup.engine.projection("account_summary")
    projection.on_failure = FailurePolicy.DEAD_LETTER
    mediator.send(bank.Deposit(account_id=account, amount=5))
    mediator.send(bank.Deposit(account_id=account, amount=2))
    assert setup.rows(summary) == [(account, "ada", 3, 2)]
    with setup.read.connect() as connection:
        dead = setup.engine.store.dead_letters(connection, "account_summary")
    assert [(d["position"], d["event_type"]) for d in dead] == [(4, "account.deposited")]


def test_rebuild_equals_incremental_and_refuses_unknown_types(
    engines: tuple[sa.Engine, sa.Engine],
) -> None:
    setup = Setup(*engines, make_projections(Strategy.SYNC))
    mediator = _sync_mediator(setup)
    for name in ("a", "b", "c"):
        account = mediator.send(bank.OpenAccount(name=name))
        for amount in range(3):
            mediator.send(bank.Deposit(account_id=account, amount=amount))
    before = setup.rows(summary)
    progress: list[tuple[int, int]] = []
    assert (
        setup.engine.rebuild(
            "account_summary", progress=lambda done, total: progress.append((done, total))
        )
        == 12
    )
    assert setup.rows(summary) == before
    assert progress[-1] == (12, 12)

    with setup.write.begin() as connection:  # an event type nobody registered
        connection.execute(
            sa.insert(setup.log.table).values(
                event_id=uuid.uuid4(),
                event_type="legacy.thing",
                schema_version=1,
                stream_type="",
                stream_id="",
                payload={},
                metadata={},
                recorded_at=dt.datetime.now(dt.UTC),
            )
        )
    assert setup.engine.catch_up("account_summary") == 0, "continuous processing skips it"
    assert setup.engine.checkpoint("account_summary").position == 13
    with pytest.raises(UnknownEventTypeError, match=r"legacy\.thing"):
        setup.engine.rebuild("account_summary")


def test_concurrent_catch_ups_apply_every_event_exactly_once(
    engines: tuple[sa.Engine, sa.Engine],
) -> None:
    projections = make_projections(Strategy.ASYNC, batch_size=3)
    setup = Setup(*engines, projections)
    mediator = _sync_mediator(setup)
    account = mediator.send(bank.OpenAccount(name="ada"))
    for amount in range(1, 61):
        mediator.send(bank.Deposit(account_id=account, amount=amount))
    # Separate engines (separate in-process locks), as separate workers would be.
    workers = [
        ProjectionEngine(
            event_log=setup.log,
            write_engine=setup.write,
            read_engine=setup.read,
            projections=projections,
        )
        for _ in range(4)
    ]
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def run(engine: ProjectionEngine) -> None:
        barrier.wait()
        for _ in range(40):
            try:
                engine.catch_up("account_summary")
            except Exception as exc:  # noqa: BLE001 - a fenced batch is expected
                errors.append(exc)

    threads = [threading.Thread(target=run, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    setup.engine.catch_up("account_summary")
    assert setup.rows(summary) == [(account, "ada", sum(range(1, 61)), 60)], (
        "no event applied twice or skipped"
    )
    assert all("another worker moved the checkpoint" in str(e) for e in errors), errors


def test_read_model_tables_must_not_be_write_model_tables(tmp_path: Path) -> None:
    wrong = Projection("wrong", tables=[bank.accounts])
    with pytest.raises(ConfigurationError, match="write-model tables"):
        ProjectionEngine(
            event_log=EventLog(bank.event_types),
            write_engine=sqlite_engine(tmp_path / "w.db"),
            read_engine=sqlite_engine(tmp_path / "r.db"),
            projections=[wrong],
            write_metadata=bank.metadata,
        )


@pytest.mark.asyncio
async def test_async_mediator_sync_and_async_strategies(tmp_path: Path) -> None:
    poison.clear()
    write, read = sqlite_engine(tmp_path / "write.db"), sqlite_engine(tmp_path / "read.db")
    setup = Setup(write, read, make_projections(Strategy.ASYNC, Strategy.SYNC))
    async_write = async_sqlite_engine(tmp_path / "write.db")
    ref: list[Any] = []
    async with AsyncProjectionWorker(setup.engine) as worker:
        mediator = AsyncMediator(
            setup.summary_handler_registry(ref, asynchronous=True),
            middleware=[
                AsyncConsistencyMiddleware(setup.engine),
                AsyncProjectionMiddleware(setup.engine, worker),
                AsyncTransactionMiddleware(async_sessionmaker(async_write), setup.log),
            ],
        )
        ref.append(mediator)
        receipt = Receipt()
        account = await mediator.send(bank.OpenAccount(name="ada"), receipt=receipt)
        await mediator.send(bank.Deposit(account_id=account, amount=4), receipt=receipt)
        assert setup.rows(mirror) == [(account, "ada", 4)], "sync: current when send returns"
        seen = await mediator.ask(
            GetSummary(account_id=account), consistency=AtLeast(receipt.token, timeout=10)
        )
        assert seen == (4, 1)
    await async_write.dispose()
    write.dispose()
    read.dispose()


class RebuildInterruptedError(Exception):
    pass


def test_blue_green_rebuild_keeps_serving_resumes_and_switches(
    engines: tuple[sa.Engine, sa.Engine],
) -> None:
    setup = Setup(*engines, make_projections(Strategy.SYNC, batch_size=4))
    mediator = _sync_mediator(setup)
    for name in ("a", "b", "c"):
        account = mediator.send(bank.OpenAccount(name=name))
        for amount in range(1, 5):
            mediator.send(bank.Deposit(account_id=account, amount=amount))
    live_before = setup.rows(summary)
    with setup.read.begin() as connection:  # damage the live model: the rebuild must repair it
        connection.execute(sa.update(summary).values(balance=-1))
    damaged = setup.rows(summary)
    seen_during: list[list[tuple[Any, ...]]] = []

    def crash_after_first_batch(done: int, total: int) -> None:
        seen_during.append(setup.rows(summary))
        raise RebuildInterruptedError

    with pytest.raises(RebuildInterruptedError):
        setup.engine.rebuild("account_summary", progress=crash_after_first_batch)
    assert seen_during == [damaged], "the live tables keep serving during the rebuild"
    assert setup.rows(summary) == damaged, "nothing switched before the copy caught up"

    mediator.send(bank.Deposit(account_id=1, amount=100))  # new events while rebuilding
    live_before[0] = (*live_before[0][:2], live_before[0][2] + 100, live_before[0][3] + 1)
    steps: list[tuple[int, int]] = []
    applied = setup.engine.rebuild("account_summary", progress=lambda d, t: steps.append((d, t)))
    assert steps[0][0] > 4, "resumed from the staging checkpoint, not from zero"
    assert applied < 16, "the first batch was not applied again"
    assert setup.rows(summary) == live_before, "switched to the rebuilt copy"
    assert setup.engine.checkpoint("account_summary").position == 16
    mediator.send(bank.Deposit(account_id=2, amount=1))
    assert setup.rows(summary)[1][2] == live_before[1][2] + 1, "keeps projecting after the switch"


def test_in_place_rebuild(engines: tuple[sa.Engine, sa.Engine]) -> None:
    setup = Setup(*engines, make_projections(Strategy.SYNC))
    mediator = _sync_mediator(setup)
    account = mediator.send(bank.OpenAccount(name="a"))
    mediator.send(bank.Deposit(account_id=account, amount=3))
    before = setup.rows(summary)
    with setup.read.begin() as connection:
        connection.execute(sa.delete(summary))
    assert setup.engine.rebuild("account_summary", in_place=True) == 2
    assert setup.rows(summary) == before
