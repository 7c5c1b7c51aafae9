"""Transactions for commands: one per top-level command, with its events in the same commit.

``TransactionMiddleware`` (``Session``, with :class:`~cqrs_kit.Mediator`) and
``AsyncTransactionMiddleware`` (``AsyncSession``, with :class:`~cqrs_kit.AsyncMediator`)
share one design:

- It applies to commands only; queries never open a write transaction.
- A top-level command gets a new session and unit of work; the handler receives the unit of
  work as a dependency (a parameter annotated with ``SqlAlchemyUnitOfWork``) and records
  events on it. A command sent from inside a handler joins the outer transaction.
- On success the recorded events are appended to the event log (gap-safe) and everything
  commits together; ``ctx.consistency_token`` is then the highest appended position.
- On any exception the transaction rolls back and the exception propagates unchanged
  (domain errors, pydantic ``ValidationError``). SQLAlchemy errors are translated into
  :class:`~cqrs_kit.PersistenceError`; transient ones (serialization failure, deadlock, a
  busy SQLite) first retry the whole command with bounded, jittered backoff, then surface
  as :class:`~cqrs_kit.ConcurrencyError`.
- An idempotency key (see :mod:`cqrs_kit.idempotency`) makes a repeat return the first
  result without running the handler again.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from cqrs_kit.exceptions import ConfigurationError, PersistenceError
from cqrs_kit.idempotency import IdempotencyStore, idempotency_key_of
from cqrs_kit.messages import Command, Message
from cqrs_kit.persistence import is_transient, translate_error
from cqrs_kit.unit_of_work import UnitOfWork

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from sqlalchemy import Connection
    from sqlalchemy.ext.asyncio import AsyncSession
    from sqlalchemy.orm import Session

    from cqrs_kit.context import DispatchContext
    from cqrs_kit.eventlog import EventLog
    from cqrs_kit.pipeline import CallNext

__all__ = [
    "AsyncSqlAlchemyUnitOfWork",
    "AsyncTransactionMiddleware",
    "RetryPolicy",
    "SqlAlchemyUnitOfWork",
    "TransactionMiddleware",
]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How transient failures are retried: bounded attempts, exponential jittered backoff.

    Attributes:
        attempts: Total tries, the first included (>= 1).
        base_delay: Delay before the second try, in seconds.
        max_delay: Upper bound of one delay.
    """

    attempts: int = 5
    base_delay: float = 0.01
    max_delay: float = 0.5

    def __post_init__(self) -> None:
        """Validate the numbers."""
        if self.attempts < 1 or self.base_delay < 0 or self.max_delay < self.base_delay:
            msg = f"invalid RetryPolicy {self}: need attempts >= 1 and 0 <= base <= max"
            raise ConfigurationError(msg)

    def delay(self, attempt: int) -> float:
        """The (jittered) delay after failed try number ``attempt`` (1-based)."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not cryptography


class _KeyTakenError(Exception):
    """A racing repeat stored the same idempotency key first: retry to read its result."""


class SqlAlchemyUnitOfWork(UnitOfWork):
    """A unit of work over a SQLAlchemy ``Session``.

    Attributes:
        session: The session of the command's transaction. Write through it; do not
            commit or roll back yourself.
    """

    def __init__(self, session: Session) -> None:
        """Wrap ``session``."""
        super().__init__()
        self.session = session


class AsyncSqlAlchemyUnitOfWork(UnitOfWork):
    """A unit of work over a SQLAlchemy ``AsyncSession``.

    Attributes:
        session: The session of the command's transaction.
    """

    def __init__(self, session: AsyncSession) -> None:
        """Wrap ``session``."""
        super().__init__()
        self.session = session


class _TransactionCore:
    """Options and checks the sync and async middleware share."""

    __slots__ = ("after_append", "event_log", "idempotency", "retry", "session_factory")

    applies_to: tuple[type[Message], ...] = (Command,)
    provides_unit_of_work = True
    """Handlers behind this middleware can depend on a unit of work (checked at freeze)."""

    def __init__(
        self,
        session_factory: Callable[[], Any],
        event_log: EventLog,
        *,
        retry: RetryPolicy | None = None,
        idempotency: IdempotencyStore | None = None,
        after_append: Sequence[Callable[[Connection], None]] = (),
    ) -> None:
        self.after_append = tuple(after_append)
        self.session_factory = session_factory
        self.event_log = event_log
        self.retry = retry or RetryPolicy()
        self.idempotency = idempotency or IdempotencyStore()

    def _appended(self, ctx: DispatchContext, uow: UnitOfWork, positions: list[int]) -> None:
        uow.positions = positions
        uow._pending.clear()
        if positions:
            ctx.consistency_token = positions[-1]

    def _check_commit(self, exc: SQLAlchemyError, *, committing: bool, key: str | None) -> None:
        """Refuse to retry a command whose commit may have landed.

        A connection lost *during the commit* leaves the outcome unknown: retrying could apply
        the command twice. With an idempotency key a retry is safe (it finds the stored
        result), so only keyless commands stop here.
        """
        if committing and key is None and getattr(exc, "connection_invalidated", False):
            msg = (
                "the connection was lost while committing: the command may or may not have "
                "been applied, so it is not retried; check its effects, or give commands an "
                "idempotency key so they can be retried safely"
            )
            raise PersistenceError(msg) from exc

    def _should_retry(self, exc: BaseException, attempt: int) -> bool:
        return attempt < self.retry.attempts and (
            isinstance(exc, _KeyTakenError) or is_transient(exc)
        )

    def _translate(self, exc: BaseException, attempt: int) -> BaseException:
        cause = exc.__cause__ if isinstance(exc, _KeyTakenError) else exc
        assert isinstance(cause, SQLAlchemyError)  # noqa: S101 - only these reach here
        return translate_error(cause, attempts=attempt)


class TransactionMiddleware(_TransactionCore):
    """One ``Session`` transaction per top-level command (see the module docstring).

    Args:
        session_factory: Makes a new ``Session`` (a ``sessionmaker``).
        event_log: Where recorded events are appended.
        retry: Retry policy for transient failures.
        idempotency: The idempotency key store.
        after_append: Called with the transaction's connection after events were
            appended, before the commit (e.g. ``ProjectionEngine.apply_inline``).
    """

    __slots__ = ()

    def __call__(self, message: Message, ctx: DispatchContext, call_next: CallNext) -> Any:
        """Run the command in a transaction, retrying transient failures."""
        if ctx.unit_of_work is not None:  # nested command: join the outer transaction
            return call_next()
        attempt = 0
        while True:
            attempt += 1
            try:
                return self._attempt(message, ctx, call_next)
            except (SQLAlchemyError, _KeyTakenError) as exc:
                if self._should_retry(exc, attempt):
                    time.sleep(self.retry.delay(attempt))
                    continue
                raise self._translate(exc, attempt) from exc

    def _attempt(self, command: Any, ctx: DispatchContext, call_next: CallNext) -> Any:
        session: Session = self.session_factory()
        uow = SqlAlchemyUnitOfWork(session)
        ctx.unit_of_work = uow
        key = idempotency_key_of(command, ctx)
        committing = False
        try:
            with session.begin():
                if key is not None:
                    row = session.execute(self.idempotency.lookup_statement(), {"key": key}).first()
                    if row is not None:
                        return self.idempotency.decode(key, command, row)
                    try:
                        session.execute(
                            self.idempotency.claim_statement,
                            self.idempotency.claim_params(key, command),
                        )
                    except IntegrityError as exc:
                        raise _KeyTakenError from exc
                result = call_next()
                session.flush()
                positions = self.event_log.append(session, uow._pending)
                if positions:
                    for hook in self.after_append:
                        hook(session.connection())
                if key is not None:
                    session.execute(
                        self.idempotency.result_statement,
                        self.idempotency.result_params(key, command, result),
                    )
                committing = True
            self._appended(ctx, uow, positions)
            return result
        except SQLAlchemyError as exc:
            self._check_commit(exc, committing=committing, key=key)
            raise
        finally:
            ctx.unit_of_work = None
            session.close()


class AsyncTransactionMiddleware(_TransactionCore):
    """One ``AsyncSession`` transaction per top-level command (see the module docstring).

    Args:
        session_factory: Makes a new ``AsyncSession`` (an ``async_sessionmaker``).
        event_log: Where recorded events are appended.
        retry: Retry policy for transient failures.
        idempotency: The idempotency key store.
        after_append: Called (through ``run_sync``) with the transaction's connection
            after events were appended, before the commit.
    """

    __slots__ = ()

    async def __call__(self, message: Message, ctx: DispatchContext, call_next: CallNext) -> Any:
        """Run the command in a transaction, retrying transient failures."""
        if ctx.unit_of_work is not None:  # nested command: join the outer transaction
            return await call_next()
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self._attempt(message, ctx, call_next)
            except (SQLAlchemyError, _KeyTakenError) as exc:
                if self._should_retry(exc, attempt):
                    await asyncio.sleep(self.retry.delay(attempt))
                    continue
                raise self._translate(exc, attempt) from exc

    async def _attempt(self, command: Any, ctx: DispatchContext, call_next: CallNext) -> Any:
        session: AsyncSession = self.session_factory()
        uow = AsyncSqlAlchemyUnitOfWork(session)
        ctx.unit_of_work = uow
        key = idempotency_key_of(command, ctx)
        committing = False
        try:
            async with session.begin():
                if key is not None:
                    row = (
                        await session.execute(self.idempotency.lookup_statement(), {"key": key})
                    ).first()
                    if row is not None:
                        return self.idempotency.decode(key, command, row)
                    try:
                        await session.execute(
                            self.idempotency.claim_statement,
                            self.idempotency.claim_params(key, command),
                        )
                    except IntegrityError as exc:
                        raise _KeyTakenError from exc
                result = await call_next()
                await session.flush()
                positions = await self.event_log.aappend(session, uow._pending)
                if positions:
                    for hook in self.after_append:
                        await session.run_sync(_on_connection, hook)
                if key is not None:
                    await session.execute(
                        self.idempotency.result_statement,
                        self.idempotency.result_params(key, command, result),
                    )
                committing = True
            self._appended(ctx, uow, positions)
            return result
        except SQLAlchemyError as exc:
            self._check_commit(exc, committing=committing, key=key)
            raise
        finally:
            ctx.unit_of_work = None
            await session.close()


def _on_connection(session: Session, hook: Callable[[Connection], None]) -> None:
    hook(session.connection())
