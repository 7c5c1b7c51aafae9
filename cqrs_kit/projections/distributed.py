"""Projection workers on many processes and machines, coordinated by the database.

:class:`LeasedWorker` runs the projections whose leases it holds (see
:mod:`cqrs_kit.projections.leases`). Every ``ttl / 3`` seconds it heartbeats, renews its
leases, takes free or expired ones up to its fair share (projections / live workers) and
gives extras back, so several workers split the projections and a dead worker's share is
taken over within the TTL. On PostgreSQL it sleeps on ``LISTEN`` (the event log
``NOTIFY``-s at commit); a wake-up is only a hint, polling with backoff always runs, and a
dropped connection reconnects with backoff instead of ending the loop.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import sys
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from cqrs_kit.projections.leases import LeaseLostError
from cqrs_kit.projections.projection import Strategy

if TYPE_CHECKING:
    from collections.abc import Sequence

    from cqrs_kit.projections.engine import ProjectionEngine

__all__ = ["LeasedWorker", "PostgresWakeup", "SleepWakeup", "default_owner"]

logger = logging.getLogger("cqrs_kit.projections")


def default_owner() -> str:
    """A worker name unique across machines: host, process id and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class SleepWakeup:
    """Waits by sleeping (any database); :meth:`wake` ends a wait early (same process)."""

    def __init__(self) -> None:
        """Create the wake-up event."""
        self._event = threading.Event()

    def wait(self, timeout: float) -> bool:
        """Sleep up to ``timeout`` seconds; ``True`` if woken early."""
        woken = self._event.wait(timeout)
        self._event.clear()
        return woken

    def wake(self) -> None:
        """End the current wait."""
        self._event.set()

    def close(self) -> None:
        """Nothing to release."""


class PostgresWakeup(SleepWakeup):
    """Waits on PostgreSQL ``LISTEN`` with a dedicated psycopg connection.

    Args:
        url: The database URL (SQLAlchemy or libpq form).
        channel: The channel the event log notifies.
    """

    def __init__(self, url: str | sa.URL, channel: str) -> None:
        """Prepare the listener; it connects on first wait."""
        super().__init__()
        parsed = sa.make_url(url)
        self._conninfo = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
        self._channel = channel
        self._connection: Any = None
        self._backoff = 0.1

    def _connect(self) -> Any:
        import psycopg
        from psycopg import sql

        if self._connection is None or self._connection.closed:
            connection = psycopg.connect(self._conninfo, autocommit=True)
            connection.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
            self._connection = connection
            self._backoff = 0.1
        return self._connection

    def wait(self, timeout: float) -> bool:
        """Wait for a notification (or a local :meth:`wake`) up to ``timeout`` seconds."""
        import psycopg

        if self._event.is_set():
            self._event.clear()
            return True
        try:
            connection = self._connect()
            for _ in connection.notifies(timeout=timeout, stop_after=1):
                return True
        except psycopg.Error:
            logger.warning("LISTEN connection lost; polling, reconnecting in %.1fs", self._backoff)
            self.close()
            time.sleep(min(self._backoff, timeout))
            self._backoff = min(self._backoff * 2, 5.0)
        return False

    def close(self) -> None:
        """Close the listening connection."""
        if self._connection is not None:
            try:
                self._connection.close()
            finally:
                self._connection = None


class LeasedWorker:
    """Runs the projections whose leases it holds, until :meth:`stop`.

    Args:
        engine: The projection engine (leases live in its read database).
        names: The projections it may run (default: the async ones).
        owner: Its name in the lease table (default: host, pid and a random suffix).
        ttl: Lease time to live, seconds; a dead worker's projections move after this.
        wakeup: How it waits between batches (default: LISTEN on PostgreSQL, else sleep).
        report_every: Seconds between JSON status log lines (``None``: never).
        max_poll: The longest idle wait, seconds.
    """

    def __init__(
        self,
        engine: ProjectionEngine,
        names: Sequence[str] | None = None,
        *,
        owner: str | None = None,
        ttl: float = 10.0,
        wakeup: SleepWakeup | None = None,
        report_every: float | None = 30.0,
        max_poll: float = 1.0,
    ) -> None:
        """Prepare the worker; :meth:`run` runs it in the calling thread."""
        self.engine = engine
        self.names = list(names) if names is not None else engine.names(Strategy.ASYNC)
        self.owner = owner or default_owner()
        self.ttl = ttl
        self.report_every = report_every
        self.max_poll = max_poll
        self.held: set[str] = set()
        self._stop = threading.Event()
        self._next_rebalance = 0.0
        self._next_report = time.monotonic() + (report_every or 0)
        if wakeup is None:
            read = engine.read_engine
            wakeup = (
                PostgresWakeup(engine.write_engine.url, engine.event_log.notify_channel)
                if read.dialect.name == "postgresql" and engine.event_log.notify_channel
                else SleepWakeup()
            )
        self.wakeup = wakeup

    # -- leases ------------------------------------------------------------------------

    def rebalance(self) -> None:
        """Heartbeat, renew held leases, take free ones up to a fair share, give extras back."""
        leases = self.engine.leases
        with self.engine.read_engine.begin() as connection:
            leases.heartbeat(connection, self.owner)
            share = leases.fair_share(connection, len(self.names), self.ttl)
        held: set[str] = set()
        for name in self.names:
            if len(held) >= share:
                break
            with self.engine.read_engine.begin() as connection:
                if leases.acquire(connection, name, self.owner, self.ttl):
                    held.add(name)
        with self.engine.read_engine.begin() as connection:
            for name in (self.held | set(self.names)) - held:
                leases.release(connection, name, self.owner)
        if held != self.held:
            logger.info("worker %s now runs %s", self.owner, sorted(held))
        self.held = held

    def release_all(self) -> None:
        """Give every lease back and leave the worker table (clean shutdown)."""
        with self.engine.read_engine.begin() as connection:
            for name in self.held:
                self.engine.leases.release(connection, name, self.owner)
            self.engine.leases.leave(connection, self.owner)
        self.held = set()

    # -- running -------------------------------------------------------------------------

    def run_once(self) -> int:
        """Rebalance when due, then catch up every held projection once."""
        now = time.monotonic()
        if now >= self._next_rebalance:
            self.rebalance()
            self._next_rebalance = now + self.ttl / 3
        applied = 0
        for name in sorted(self.held):
            try:
                # One batch per projection per pass: leases are renewed between passes.
                applied += self.engine.catch_up(name, owner=self.owner, max_batches=1)
            except LeaseLostError:
                logger.warning("worker %s lost the lease of %s", self.owner, name)
                self.held.discard(name)
            except Exception:
                logger.exception("projection %s failed; retrying after a pause", name)
        return applied

    def run(self) -> None:
        """Run until :meth:`stop`; errors (a lost connection, ...) never end the loop."""
        idle = 0.01
        try:
            while not self._stop.is_set():
                try:
                    applied = self.run_once()
                except Exception:
                    logger.exception("worker %s: iteration failed; backing off", self.owner)
                    applied = 0
                    idle = min(max(idle, 0.1) * 2, self.max_poll)
                self._report()
                if applied:
                    idle = 0.01
                    continue
                if not self._stop.is_set():
                    self.wakeup.wait(min(idle, self.ttl / 3))
                    idle = min(idle * 2, self.max_poll)
        finally:
            try:
                self.release_all()
            except Exception:
                logger.exception("worker %s: could not release its leases", self.owner)
            self.wakeup.close()

    def run_until_signalled(self) -> None:
        """Run in the main thread until SIGTERM or SIGINT, then stop after the current batch.

        This is what a worker process does: the signal handler only asks :meth:`stop`, so
        the batch in progress commits (or rolls back) and the leases are given back.
        """

        def request_stop(signum: int, _frame: object) -> None:
            sys.stderr.write(f"received signal {signum}: stopping after the current batch\n")
            self.stop()

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        sys.stderr.write(f"worker {self.owner} running {', '.join(self.names)}\n")
        self.run()

    def stop(self) -> None:
        """Ask :meth:`run` to return after the current batch."""
        self._stop.set()
        self.wakeup.wake()

    def _report(self) -> None:
        if self.report_every is None or time.monotonic() < self._next_report:
            return
        self._next_report = time.monotonic() + self.report_every
        try:
            statuses = self.engine.status()
        except Exception:
            logger.exception("worker %s: status unavailable", self.owner)
            return
        logger.info(
            json.dumps(
                {
                    "event": "projection_worker_status",
                    "owner": self.owner,
                    "held": sorted(self.held),
                    "projections": [
                        {
                            "name": s.name,
                            "checkpoint": s.checkpoint,
                            "lag_events": s.lag_events,
                            "lag_seconds": round(s.lag_seconds, 3),
                            "state": s.state,
                            "owner": s.owner,
                        }
                        for s in statuses
                        if s.name in self.names
                    ],
                }
            )
        )
