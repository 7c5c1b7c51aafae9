"""Projection status: where each projection stands against the head of the event log.

A status row joins a projection's checkpoint (position, state, failure), the log head, the
age of the oldest event it has not applied, and the worker holding its lease, if that lease
is still live. ``ProjectionEngine.status()`` returns one per projection; the CLI prints them.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlalchemy as sa

if TYPE_CHECKING:
    from collections.abc import Iterable

    from cqrs_kit.eventlog import EventLog
    from cqrs_kit.projections.checkpoints import Checkpoint, CheckpointStore
    from cqrs_kit.projections.leases import LeaseStore
    from cqrs_kit.projections.projection import Projection

__all__ = ["ProjectionStatus", "read_statuses"]


@dataclass(frozen=True, slots=True)
class ProjectionStatus:
    """Where a projection stands.

    Attributes:
        name: The projection.
        strategy: Its strategy.
        head: The highest position in the event log.
        checkpoint: The last position it applied.
        lag_events: ``head - checkpoint``.
        lag_seconds: Age of the oldest event it has not applied (0 when caught up).
        state: ``"running"`` or ``"paused"``.
        failed_position: Where it paused, if paused.
        last_error: Why it paused, if paused.
        owner: The worker holding its lease, if any (and unexpired).
        updated_at: When its checkpoint last moved (the last batch).
    """

    name: str
    strategy: str
    head: int
    checkpoint: int
    lag_events: int
    lag_seconds: float
    state: str
    failed_position: int | None
    last_error: str | None
    owner: str | None = None
    updated_at: dt.datetime | None = None


def _live_owner(lease: tuple[str | None, float] | None) -> str | None:
    if lease is None or lease[0] is None or lease[1] < time.time():
        return None
    return lease[0]


def read_statuses(
    *,
    event_log: EventLog,
    log_engine: sa.Engine,
    engines: Iterable[sa.Engine],
    store: CheckpointStore,
    leases: LeaseStore,
    projections: Iterable[Projection],
) -> list[ProjectionStatus]:
    """The status of each of ``projections``, in their order.

    Args:
        event_log: The event log.
        log_engine: Where to read it.
        engines: The databases that hold checkpoints and leases (one without the
            checkpoint table yet is skipped).
        store: The checkpoint statements.
        leases: The lease statements.
        projections: The projections.
    """
    with log_engine.connect() as log_connection:
        head = event_log.head(log_connection)
        checkpoints: dict[str, Checkpoint] = {}
        owners: dict[str, tuple[str | None, float]] = {}
        for engine in engines:
            with engine.connect() as connection:
                if sa.inspect(connection).has_table("projection_checkpoints"):
                    checkpoints.update({c.name: c for c in store.all(connection)})
                    owners.update(leases.owners(connection))
        now = dt.datetime.now(dt.UTC)
        statuses = []
        for projection in projections:
            checkpoint = checkpoints.get(projection.name)
            position = checkpoint.position if checkpoint else 0
            lag_seconds = 0.0
            if position < head:
                oldest = event_log.read(log_connection, after=position, limit=1)
                if oldest:
                    age = now - oldest[0].recorded_at  # read back in UTC
                    lag_seconds = max(0.0, age.total_seconds())
            statuses.append(
                ProjectionStatus(
                    name=projection.name,
                    strategy=projection.strategy.value,
                    head=head,
                    checkpoint=position,
                    lag_events=max(0, head - position),
                    lag_seconds=lag_seconds,
                    state=checkpoint.state if checkpoint else "new",
                    failed_position=checkpoint.failed_position if checkpoint else None,
                    last_error=checkpoint.last_error if checkpoint else None,
                    owner=_live_owner(owners.get(projection.name)),
                    updated_at=checkpoint.updated_at if checkpoint else None,
                )
            )
    return statuses
