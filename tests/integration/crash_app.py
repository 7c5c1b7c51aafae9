"""A projection app for tests that run workers and writers as separate processes.

Configured by environment: ``CRASH_WRITE_URL``, ``CRASH_READ_URL`` (SQLAlchemy URLs) and
``CRASH_EVENT_DELAY`` (seconds each event takes to apply, to make batches slow enough to
be killed in the middle).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time

import sqlalchemy as sa
from sqlalchemy.orm import sessionmaker

from cqrs_kit import Mediator
from cqrs_kit.eventlog import EventLog, create_event_log
from cqrs_kit.middleware.transaction import TransactionMiddleware
from cqrs_kit.persistence import configure_sqlite
from cqrs_kit.projections import Projection, ProjectionContext, ProjectionEngine, Strategy
from tests.integration import bank

read_metadata = sa.MetaData()
balances = sa.Table(
    "crash_balances",
    read_metadata,
    sa.Column("account_id", sa.Integer, primary_key=True),
    sa.Column("balance", sa.Integer, nullable=False),
    sa.Column("deposits", sa.Integer, nullable=False),
)


WRITER_APPLICATION_NAME = "crash-writer"


def _engine(url: str, application_name: str | None = None) -> sa.Engine:
    connect_args = {"application_name": application_name} if application_name else {}
    if not url.startswith("postgresql"):
        connect_args = {}
    engine = sa.create_engine(url, pool_pre_ping=True, connect_args=connect_args)
    if engine.dialect.name == "sqlite":
        configure_sqlite(engine)
    return engine


def projection(delay: float) -> Projection:
    p = Projection("crash_balances", tables=[balances], strategy=Strategy.ASYNC, batch_size=25)

    @p.on(bank.AccountOpened)
    def opened(event: bank.AccountOpened, ctx: ProjectionContext) -> None:
        time.sleep(delay)
        ctx.connection.execute(
            sa.insert(balances).values(account_id=event.account_id, balance=0, deposits=0)
        )

    @p.on(bank.Deposited)
    def deposited(event: bank.Deposited, ctx: ProjectionContext) -> None:
        time.sleep(delay)
        ctx.connection.execute(
            sa.update(balances)
            .where(balances.c.account_id == event.account_id)
            .values(balance=balances.c.balance + event.amount, deposits=balances.c.deposits + 1)
        )

    return p


def counter(name: str, event_type: type[bank.Event]) -> Projection:
    """A projection counting events of one type (to give workers several projections)."""
    table = sa.Table(
        name,
        read_metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("seen", sa.Integer, nullable=False),
    )
    p = Projection(name, tables=[table], strategy=Strategy.ASYNC, batch_size=50)

    @p.on(event_type)
    def count(_event: bank.Event, ctx: ProjectionContext) -> None:
        updated = ctx.connection.execute(sa.update(table).values(seen=table.c.seen + 1)).rowcount
        if not updated:
            ctx.connection.execute(sa.insert(table).values(id=1, seen=1))

    return p


_counters = [counter("crash_opened", bank.AccountOpened), counter("crash_deposits", bank.Deposited)]


def engine(read_url: str | None = None) -> ProjectionEngine:
    """The engine named by ``--app tests.integration.crash_app:engine``."""
    write = _engine(os.environ["CRASH_WRITE_URL"])
    read = _engine(read_url or os.environ["CRASH_READ_URL"])
    projections = [projection(float(os.environ.get("CRASH_EVENT_DELAY", "0")))]
    if os.environ.get("CRASH_COUNTERS"):
        projections += _counters
    return ProjectionEngine(
        event_log=EventLog(bank.event_types),
        write_engine=write,
        read_engine=read,
        projections=projections,
        write_metadata=bank.metadata,
    )


def dispose(projection_engine: ProjectionEngine) -> None:
    """Close every connection of an engine made by :func:`engine`."""
    projection_engine.close()
    projection_engine.write_engine.dispose()
    projection_engine.read_engine.dispose()


def checkpoint() -> int:
    """The crash projection's checkpoint, read with a short-lived engine."""
    projection_engine = engine()
    try:
        return projection_engine.checkpoint("crash_balances").position
    finally:
        dispose(projection_engine)


def setup() -> None:
    """Create the read-side tables."""
    projection_engine = engine()
    projection_engine.setup()
    dispose(projection_engine)


def create_write_schema(url: str) -> None:
    """Create the bank tables and the event log."""
    write = _engine(url)
    bank.metadata.create_all(write)
    create_event_log(write)
    write.dispose()


def write(url: str, accounts: int, deposits: int, seed: int) -> None:
    """Open accounts and make deposits through the mediator, as a writer process does."""
    write_engine = _engine(url, application_name=WRITER_APPLICATION_NAME)
    mediator = Mediator(
        bank.sync_registry([None]),
        middleware=[TransactionMiddleware(sessionmaker(write_engine), EventLog(bank.event_types))],
    )
    rng = random.Random(seed)
    ids = [mediator.send(bank.OpenAccount(name=f"w{seed}-{i}")) for i in range(accounts)]
    for _ in range(deposits):
        mediator.send(bank.Deposit(account_id=rng.choice(ids), amount=rng.randint(1, 9)))
    write_engine.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["write"])
    parser.add_argument("--url", required=True)
    parser.add_argument("--accounts", type=int, default=3)
    parser.add_argument("--deposits", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    write(args.url, args.accounts, args.deposits, args.seed)
    sys.exit(0)
