"""A tiny write model used by the write-side integration tests."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from cqrs_kit import Command, Event, EventTypes, Query, Registry
from cqrs_kit.middleware.transaction import AsyncSqlAlchemyUnitOfWork, SqlAlchemyUnitOfWork

metadata = sa.MetaData()
accounts = sa.Table(
    "accounts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(50), nullable=False, unique=True),
    sa.Column("balance", sa.Integer, nullable=False, default=0),
)

event_types = EventTypes()


@event_types.define("account.opened", stream_type="account")
class AccountOpened(Event):
    account_id: int
    name: str


@event_types.define("account.deposited", stream_type="account")
class Deposited(Event):
    account_id: int
    amount: int


class InsufficientFundsError(Exception):
    pass


raised: list[BaseException] = []
"""Every domain error the handlers raised, to check that callers get the same object."""


def _refuse(account_id: int) -> InsufficientFundsError:
    error = InsufficientFundsError(account_id)
    raised.append(error)
    return error


class OpenAccount(Command[int]):
    name: str
    idempotency_key: str | None = None


class Deposit(Command[None]):
    account_id: int
    amount: int


class Transfer(Command[None]):
    source: int
    target: int
    amount: int


class GetBalance(Query[int | None]):
    account_id: int


def _insert(name: str) -> Any:
    return sa.insert(accounts).values(name=name, balance=0).returning(accounts.c.id)


def _deposit(account_id: int, amount: int) -> Any:
    return (
        sa.update(accounts)
        .where(accounts.c.id == account_id)
        .values(balance=accounts.c.balance + amount)
        .returning(accounts.c.balance)
    )


def sync_registry(mediator_ref: list[Any]) -> Registry:
    registry = Registry()

    @registry.handles(OpenAccount)
    def open_account(command: OpenAccount, *, uow: SqlAlchemyUnitOfWork) -> int:
        account_id = int(uow.session.execute(_insert(command.name)).scalar_one())
        uow.record(AccountOpened(account_id=account_id, name=command.name), stream_id=account_id)
        return account_id

    @registry.handles(Deposit)
    def deposit(command: Deposit, *, uow: SqlAlchemyUnitOfWork) -> None:
        balance = uow.session.execute(_deposit(command.account_id, command.amount)).scalar_one()
        if balance < 0:
            raise _refuse(command.account_id)
        uow.record(
            Deposited(account_id=command.account_id, amount=command.amount),
            stream_id=command.account_id,
        )

    @registry.handles(Transfer)
    def transfer(command: Transfer) -> None:
        mediator = mediator_ref[0]
        mediator.send(Deposit(account_id=command.target, amount=command.amount))
        mediator.send(Deposit(account_id=command.source, amount=-command.amount))

    return registry


def async_registry(mediator_ref: list[Any]) -> Registry:
    registry = Registry()

    @registry.handles(OpenAccount)
    async def open_account(command: OpenAccount, *, uow: AsyncSqlAlchemyUnitOfWork) -> int:
        account_id = int((await uow.session.execute(_insert(command.name))).scalar_one())
        uow.record(AccountOpened(account_id=account_id, name=command.name), stream_id=account_id)
        return account_id

    @registry.handles(Deposit)
    async def deposit(command: Deposit, *, uow: AsyncSqlAlchemyUnitOfWork) -> None:
        result = await uow.session.execute(_deposit(command.account_id, command.amount))
        if result.scalar_one() < 0:
            raise _refuse(command.account_id)
        uow.record(
            Deposited(account_id=command.account_id, amount=command.amount),
            stream_id=command.account_id,
        )

    @registry.handles(Transfer)
    async def transfer(command: Transfer) -> None:
        mediator = mediator_ref[0]
        await mediator.send(Deposit(account_id=command.target, amount=command.amount))
        await mediator.send(Deposit(account_id=command.source, amount=-command.amount))

    return registry
