"""Keeping read models current around commands, and read-your-own-writes for queries.

``ProjectionMiddleware`` goes *outside* the transaction middleware
(``middleware=[..., ProjectionMiddleware(engine), TransactionMiddleware(...)]``): when a
top-level command has committed it catches the ``sync`` projections up to the command's
token before ``send`` returns, and wakes the ``async`` worker. If a sync catch-up fails the
command still succeeded: the error is logged and the next catch-up applies the events.
The command's own events are handed to the catch-up from memory (see
:func:`cqrs_kit.eventlog.take_appended`): when a projection's checkpoint sits right before
them, they are applied without reading the log back.
``inline`` projections run inside the transaction: pass ``engine.apply_inline`` to the
transaction middleware's ``after_append`` hooks.

``ConsistencyMiddleware`` serves ``ask(query, consistency=AtLeast(token))``: it waits for
the projections the query reads (its ``read_models`` class attribute, else all) and fails
closed with :class:`~cqrs_kit.ConsistencyTimeoutError` unless stale reads were allowed.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from cqrs_kit.consistency import CONSISTENCY_KEY, AtLeast
from cqrs_kit.eventlog import Appended, forget_appended, take_appended
from cqrs_kit.exceptions import ConsistencyTimeoutError
from cqrs_kit.messages import Command, Message, Query
from cqrs_kit.projections.projection import Strategy

if TYPE_CHECKING:
    from cqrs_kit.context import DispatchContext
    from cqrs_kit.pipeline import CallNext
    from cqrs_kit.projections.engine import ProjectionEngine
    from cqrs_kit.projections.worker import AsyncProjectionWorker, ProjectionWorker

__all__ = [
    "AsyncConsistencyMiddleware",
    "AsyncProjectionMiddleware",
    "ConsistencyMiddleware",
    "ProjectionMiddleware",
]

logger = logging.getLogger("cqrs_kit.projections")


class ProjectionMiddleware:
    """Applies ``sync`` projections after a command commits and wakes the ``async`` worker.

    Args:
        engine: The projection engine.
        worker: The background worker of the ``async`` projections, if any.
    """

    __slots__ = ("_sync", "engine", "worker")

    applies_to: tuple[type[Message], ...] = (Command,)

    def __init__(self, engine: ProjectionEngine, worker: ProjectionWorker | None = None) -> None:
        """Remember the engine and which projections are ``sync``."""
        self.engine = engine
        self.worker = worker
        self._sync = engine.names(Strategy.SYNC)

    def __call__(self, message: Message, ctx: DispatchContext, call_next: CallNext) -> Any:
        """Run the command, then bring read models up to its token."""
        if ctx.unit_of_work is not None:  # nested command: the outer one projects
            return call_next()
        forget_appended()  # only this command's own append may be handed over
        result = call_next()
        token = ctx.consistency_token
        appended = _committed(take_appended(), token)
        if token is not None:
            for name in self._sync:
                try:
                    self.engine.catch_up(name, until=token, appended=appended)
                except Exception:
                    logger.exception(
                        "sync projection %s failed; its next catch-up will retry", name
                    )
            if self.worker is not None:
                self.worker.wake()
        return result


class AsyncProjectionMiddleware:
    """The :class:`ProjectionMiddleware` of an :class:`~cqrs_kit.AsyncMediator`.

    Sync catch-ups run in a worker thread so the event loop stays free.
    """

    __slots__ = ("_sync", "engine", "worker")

    applies_to: tuple[type[Message], ...] = (Command,)

    def __init__(
        self, engine: ProjectionEngine, worker: AsyncProjectionWorker | None = None
    ) -> None:
        """Remember the engine and which projections are ``sync``."""
        self.engine = engine
        self.worker = worker
        self._sync = engine.names(Strategy.SYNC)

    async def __call__(self, message: Message, ctx: DispatchContext, call_next: CallNext) -> Any:
        """Run the command, then bring read models up to its token."""
        if ctx.unit_of_work is not None:
            return await call_next()
        forget_appended()
        result = await call_next()
        token = ctx.consistency_token
        appended = _committed(take_appended(), token)
        if token is not None:
            for name in self._sync:
                try:
                    await asyncio.to_thread(
                        self.engine.catch_up, name, until=token, appended=appended
                    )
                except Exception:
                    logger.exception(
                        "sync projection %s failed; its next catch-up will retry", name
                    )
            if self.worker is not None:
                self.worker.wake()
        return result


def _committed(appended: Appended | None, token: int | None) -> Appended | None:
    """The command's own events, if they are the append that produced its token.

    The command returned normally, so the append that set its token committed; an earlier,
    rolled-back attempt (a retry) was overwritten by the later append.
    """
    if appended is None or token is None or not appended.positions:
        return None
    return appended if appended.positions[-1] == token else None


def _requirement(ctx: DispatchContext) -> AtLeast | None:
    metadata = ctx._metadata
    if metadata is None:
        return None
    requirement = metadata.get(CONSISTENCY_KEY)
    return requirement if isinstance(requirement, AtLeast) else None


def _read_models(engine: ProjectionEngine, message: Message) -> list[str]:
    names = getattr(type(message), "read_models", None)
    return list(names) if names else engine.names()


def _timed_out(message: Message, requirement: AtLeast, names: list[str]) -> ConsistencyTimeoutError:
    return ConsistencyTimeoutError(
        f"{type(message).__name__}: read models {names} did not reach position "
        f"{requirement.token} within {requirement.timeout}s; retry later, or pass "
        f"AtLeast(..., allow_stale=True) to read stale data"
    )


class ConsistencyMiddleware:
    """Makes ``ask(query, consistency=AtLeast(token))`` wait for the read models.

    A query class names the projections it reads in a ``read_models`` class attribute
    (``read_models: ClassVar[tuple[str, ...]] = ("order_summary",)``); without it the
    query waits for every projection.
    """

    __slots__ = ("engine",)

    applies_to: tuple[type[Message], ...] = (Query,)

    def __init__(self, engine: ProjectionEngine) -> None:
        """Wait on ``engine``'s checkpoints."""
        self.engine = engine

    def __call__(self, message: Message, ctx: DispatchContext, call_next: CallNext) -> Any:
        """Wait for the token, then run the query."""
        requirement = _requirement(ctx)
        if requirement is not None and requirement.token:
            names = _read_models(self.engine, message)
            if not self.engine.wait_for(names, requirement.token, requirement.timeout):
                if not requirement.allow_stale:
                    raise _timed_out(message, requirement, names)
                requirement.stale = True
        return call_next()


class AsyncConsistencyMiddleware:
    """The :class:`ConsistencyMiddleware` of an :class:`~cqrs_kit.AsyncMediator`."""

    __slots__ = ("engine",)

    applies_to: tuple[type[Message], ...] = (Query,)

    def __init__(self, engine: ProjectionEngine) -> None:
        """Wait on ``engine``'s checkpoints."""
        self.engine = engine

    async def __call__(self, message: Message, ctx: DispatchContext, call_next: CallNext) -> Any:
        """Wait for the token (in a worker thread), then run the query."""
        requirement = _requirement(ctx)
        if requirement is not None and requirement.token:
            names = _read_models(self.engine, message)
            caught_up = await asyncio.to_thread(
                self.engine.wait_for, names, requirement.token, requirement.timeout
            )
            if not caught_up:
                if not requirement.allow_stale:
                    raise _timed_out(message, requirement, names)
                requirement.stale = True
        return await call_next()
