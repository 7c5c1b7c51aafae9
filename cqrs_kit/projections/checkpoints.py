"""Checkpoints and dead letters: the projection state kept in the read database.

A checkpoint row per projection holds the last applied position. It is updated in the same
transaction as the read-model rows and guarded by the position the batch started from
(``UPDATE ... WHERE position = :expected``), so effects are exactly once: a second worker
that read the same checkpoint fails its commit instead of applying the batch twice.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from cqrs_kit.exceptions import ProjectionError

__all__ = ["Checkpoint", "CheckpointConflictError", "CheckpointStore", "projection_metadata"]

projection_metadata = sa.MetaData()
"""The metadata of cqrs_kit's read-side tables (checkpoints, dead letters)."""

_Position = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

checkpoints = sa.Table(
    "projection_checkpoints",
    projection_metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("position", _Position, nullable=False),
    sa.Column("state", sa.String(20), nullable=False),  # running | paused
    sa.Column("failed_position", _Position, nullable=True),
    sa.Column("failed_event_type", sa.String(200), nullable=True),
    sa.Column("last_error", sa.Text(), nullable=True),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

dead_letters = sa.Table(
    "projection_dead_letters",
    projection_metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("projection", sa.String(100), nullable=False),
    sa.Column("position", _Position, nullable=False),
    sa.Column("event_type", sa.String(200), nullable=False),
    sa.Column("error", sa.Text(), nullable=False),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
)

RUNNING = "running"
PAUSED = "paused"


class CheckpointConflictError(ProjectionError):
    """Another worker advanced the checkpoint first; this batch was rolled back."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A projection's checkpoint row.

    Attributes:
        name: The projection.
        position: The last applied (or skipped) log position.
        state: ``"running"`` or ``"paused"``.
        failed_position: Where a paused projection stopped.
        failed_event_type: The type of the event it stopped at.
        last_error: The error that paused it.
        updated_at: When the row last changed.
    """

    name: str
    position: int
    state: str
    failed_position: int | None
    failed_event_type: str | None
    last_error: str | None
    updated_at: dt.datetime


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class CheckpointStore:
    """Statements on the checkpoint and dead-letter tables, built once."""

    def __init__(self) -> None:
        """Build the statements."""
        c = checkpoints.c
        self._get = sa.select(checkpoints).where(c.name == sa.bindparam("name"))
        self._get_for_update = self._get.with_for_update()
        self._all = sa.select(checkpoints).order_by(c.name)
        self._insert = sa.insert(checkpoints)
        self._advance = (
            sa.update(checkpoints)
            .where(c.name == sa.bindparam("b_name"), c.position == sa.bindparam("expected"))
            .values(position=sa.bindparam("position"), updated_at=sa.bindparam("now"))
        )
        self._claim = self._advance.where(c.state == RUNNING)
        self._set_state = (
            sa.update(checkpoints)
            .where(c.name == sa.bindparam("b_name"))
            .values(
                state=sa.bindparam("state"),
                failed_position=sa.bindparam("failed_position"),
                failed_event_type=sa.bindparam("failed_event_type"),
                last_error=sa.bindparam("last_error"),
                updated_at=sa.bindparam("now"),
            )
        )
        self._reset = (
            sa.update(checkpoints)
            .where(c.name == sa.bindparam("b_name"))
            .values(
                position=0,
                state=RUNNING,
                failed_position=None,
                failed_event_type=None,
                last_error=None,
                updated_at=sa.bindparam("now"),
            )
        )
        self._dead_letter = sa.insert(dead_letters)

    def ensure(self, connection: sa.Connection, name: str) -> None:
        """Create the checkpoint row of ``name`` at position 0 if it is missing."""
        if connection.execute(self._get, {"name": name}).first() is None:
            connection.execute(
                self._insert,
                {
                    "name": name,
                    "position": 0,
                    "state": RUNNING,
                    "failed_position": None,
                    "failed_event_type": None,
                    "last_error": None,
                    "updated_at": _now(),
                },
            )

    def get(self, connection: sa.Connection, name: str, *, lock: bool = False) -> Checkpoint:
        """Read the checkpoint of ``name`` (``lock``: ``SELECT ... FOR UPDATE`` on PostgreSQL)."""
        statement = (
            self._get_for_update if lock and connection.dialect.name == "postgresql" else self._get
        )
        row = connection.execute(statement, {"name": name}).one()
        return Checkpoint(**row._mapping)

    def all(self, connection: sa.Connection) -> list[Checkpoint]:
        """Every checkpoint, by name."""
        return [Checkpoint(**row._mapping) for row in connection.execute(self._all)]

    def advance(self, connection: sa.Connection, name: str, expected: int, position: int) -> bool:
        """Move the checkpoint from ``expected`` to ``position``; ``False`` if it had moved."""
        result = connection.execute(
            self._advance,
            {"b_name": name, "expected": expected, "position": position, "now": _now()},
        )
        return result.rowcount == 1

    def claim(self, connection: sa.Connection, name: str, expected: int, position: int) -> bool:
        """Move a running checkpoint from ``expected`` to ``position``, before applying.

        The update takes the row's lock (and SQLite's write lock) for the rest of the
        transaction, so a batch known in advance (a command's own events) is claimed with
        one statement instead of a read and an update. ``False``: the checkpoint is
        elsewhere, or paused; nothing changed.
        """
        result = connection.execute(
            self._claim,
            {"b_name": name, "expected": expected, "position": position, "now": _now()},
        )
        return result.rowcount == 1

    def set_state(
        self,
        connection: sa.Connection,
        name: str,
        state: str,
        *,
        failed_position: int | None = None,
        failed_event_type: str | None = None,
        last_error: str | None = None,
    ) -> None:
        """Pause (with the failure) or resume a projection."""
        connection.execute(
            self._set_state,
            {
                "b_name": name,
                "state": state,
                "failed_position": failed_position,
                "failed_event_type": failed_event_type,
                "last_error": last_error,
                "now": _now(),
            },
        )

    def reset(self, connection: sa.Connection, name: str) -> None:
        """Put the checkpoint back to 0, running (for a rebuild)."""
        connection.execute(self._reset, {"b_name": name, "now": _now()})

    def dead_letter(
        self, connection: sa.Connection, name: str, position: int, event_type: str, error: str
    ) -> None:
        """Record a failed event and move on."""
        connection.execute(
            self._dead_letter,
            {
                "projection": name,
                "position": position,
                "event_type": event_type,
                "error": error,
                "recorded_at": _now(),
            },
        )

    def dead_letters(self, connection: sa.Connection, name: str) -> list[dict[str, Any]]:
        """The dead letters of ``name``, oldest first."""
        rows = connection.execute(
            sa.select(dead_letters)
            .where(dead_letters.c.projection == name)
            .order_by(dead_letters.c.id)
        )
        return [dict(row._mapping) for row in rows]
