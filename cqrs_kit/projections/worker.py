"""Background workers that tail the event log.

A thread for ``Mediator``, a task for ``AsyncMediator``. Both are woken after local commits
and poll with backoff otherwise. A pass catches every projection up to the log head. After a
pass that applied events, a worker waits ``gather`` seconds before the next one, so that
under steady writes it applies the events of that window in one batch (one read-database
transaction) instead of one pass per command: far less work per event, and less time taken
from the commands it runs beside (the same process, the same GIL). An idle worker answers a
wake-up at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from typing import TYPE_CHECKING

from cqrs_kit.projections.projection import Strategy

if TYPE_CHECKING:
    from collections.abc import Sequence

    from cqrs_kit.projections.engine import ProjectionEngine

__all__ = ["AsyncProjectionWorker", "ProjectionWorker"]

logger = logging.getLogger("cqrs_kit.projections")


class _Backoff:
    """Poll interval that grows while idle and resets when work is found."""

    def __init__(self, minimum: float, maximum: float) -> None:
        self.minimum = minimum
        self.maximum = maximum
        self.current = minimum

    def next(self, found_work: bool) -> float:
        self.current = self.minimum if found_work else min(self.current * 2, self.maximum)
        return self.current


def _check_gather(gather: float) -> float:
    if not gather >= 0:
        msg = f"gather must be >= 0 seconds, got {gather!r}"
        raise ValueError(msg)
    return gather


class ProjectionWorker:
    """Runs projections in a daemon thread until :meth:`stop`.

    Args:
        engine: The projection engine.
        names: The projections to run (default: the async ones).
        min_poll: Shortest idle poll interval, seconds.
        max_poll: Longest idle poll interval, seconds.
        gather: Seconds to wait after a pass that applied events before the next pass
            (see the module docs); ``0`` runs a pass for every wake-up.

    Raises:
        ValueError: ``gather`` is negative.
    """

    def __init__(
        self,
        engine: ProjectionEngine,
        names: Sequence[str] | None = None,
        *,
        min_poll: float = 0.01,
        max_poll: float = 1.0,
        gather: float = 0.01,
    ) -> None:
        """Prepare the worker; :meth:`start` runs it."""
        self.engine = engine
        self.names = list(names) if names is not None else engine.names(Strategy.ASYNC)
        self._backoff = _Backoff(min_poll, max_poll)
        self._gather = _check_gather(gather)
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread (once); after a :meth:`stop` that timed out, keep the same one."""
        self._stopping.clear()
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(
                target=self._run, name="cqrs-kit-projections", daemon=True
            )
            self._thread.start()

    def wake(self) -> None:
        """Ask for a catch-up now (called after a local commit)."""
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after the current pass, and wait up to ``timeout`` seconds for the thread.

        A pass catches its projections up to the log head, one batch (one transaction)
        after another. If the thread is still in a pass when the time is up, it stops at
        the end of that pass; until then :meth:`start` does not start a second one.
        """
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                logger.warning("projection worker still finishing a pass after %.1fs", timeout)
            else:
                self._thread = None

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()  # before the pass: a commit during it wakes the next one
            applied = self.engine.run_once(self.names)
            delay = self._backoff.next(applied > 0)
            if applied and self._gather:
                self._stopping.wait(self._gather)  # let this window's commits gather
            elif not self._stopping.is_set():
                self._wake.wait(delay)

    def __enter__(self) -> ProjectionWorker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class AsyncProjectionWorker:
    """Runs projections in an asyncio task until :meth:`stop`.

    The projection engine is synchronous; each batch runs in a worker thread
    (``asyncio.to_thread``) so the event loop stays free. The arguments are those of
    :class:`ProjectionWorker`.

    Raises:
        ValueError: ``gather`` is negative.
    """

    def __init__(
        self,
        engine: ProjectionEngine,
        names: Sequence[str] | None = None,
        *,
        min_poll: float = 0.01,
        max_poll: float = 1.0,
        gather: float = 0.01,
    ) -> None:
        """Prepare the worker; :meth:`start` runs it in the running loop."""
        self.engine = engine
        self.names = list(names) if names is not None else engine.names(Strategy.ASYNC)
        self._backoff = _Backoff(min_poll, max_poll)
        self._gather = _check_gather(gather)
        self._wake: asyncio.Event | None = None
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the task in the running event loop (once)."""
        if self._task is None:
            self._stopping = False
            self._wake = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="cqrs-kit-projections"
            )

    def wake(self) -> None:
        """Ask for a catch-up now (called after a local commit)."""
        if self._wake is not None:
            self._wake.set()

    async def stop(self) -> None:
        """Stop after the current pass (a catch-up to the log head) and wait for the task."""
        self._stopping = True
        self.wake()
        if self._task is not None:
            await self._task
            self._task = None

    async def _run(self) -> None:
        assert self._wake is not None  # noqa: S101 - set by start()
        while not self._stopping:
            self._wake.clear()  # before the pass: a commit during it wakes the next one
            applied = await asyncio.to_thread(self.engine.run_once, self.names)
            delay = self._backoff.next(applied > 0)
            if applied and self._gather:
                await asyncio.sleep(self._gather)  # let this window's commits gather
            elif not self._stopping:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)

    async def __aenter__(self) -> AsyncProjectionWorker:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
