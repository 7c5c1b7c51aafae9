"""Leases: which worker owns which projection, for workers on many processes and machines.

A projection is run by the holder of its lease row. A holder renews the lease (heartbeat)
well within its time to live; a worker that dies stops renewing, and after the TTL another
worker takes the lease over. Every batch checks, in its own transaction and with the lease
row locked, that its worker still holds the lease: a stale owner (paused by GC, cut off by
the network) that lost its lease cannot commit, and the guarded checkpoint fences it too.

Times are Unix seconds from the workers' clocks: keep clocks synchronized (NTP) and the TTL
well above any skew.
"""

from __future__ import annotations

import math
import time

import sqlalchemy as sa

from cqrs_kit.exceptions import ProjectionError
from cqrs_kit.projections.checkpoints import projection_metadata

__all__ = ["LeaseLostError", "LeaseStore", "leases", "workers"]

leases = sa.Table(
    "projection_leases",
    projection_metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("owner", sa.String(200), nullable=True),
    sa.Column("expires_at", sa.Float(), nullable=False),
)

workers = sa.Table(
    "projection_workers",
    projection_metadata,
    sa.Column("owner", sa.String(200), primary_key=True),
    sa.Column("heartbeat_at", sa.Float(), nullable=False),
)


class LeaseLostError(ProjectionError):
    """The worker no longer holds the projection's lease; its batch was rolled back."""


class LeaseStore:
    """Statements on the lease and worker tables, built once."""

    def __init__(self) -> None:
        """Build the statements."""
        c = leases.c
        self._insert = sa.insert(leases)
        self._exists = sa.select(c.name).where(c.name == sa.bindparam("b_name"))
        self._acquire = (
            sa.update(leases)
            .where(
                c.name == sa.bindparam("b_name"),
                sa.or_(
                    c.owner == sa.bindparam("b_owner"),
                    c.owner.is_(None),
                    c.expires_at < sa.bindparam("now"),
                ),
            )
            .values(owner=sa.bindparam("b_owner"), expires_at=sa.bindparam("expires_at"))
        )
        self._release = (
            sa.update(leases)
            .where(c.name == sa.bindparam("b_name"), c.owner == sa.bindparam("b_owner"))
            .values(owner=None, expires_at=0.0)
        )
        self._holds = sa.select(c.owner, c.expires_at).where(c.name == sa.bindparam("b_name"))
        self._all = sa.select(leases)
        self._heartbeat = (
            sa.update(workers)
            .where(workers.c.owner == sa.bindparam("b_owner"))
            .values(heartbeat_at=sa.bindparam("now"))
        )
        self._add_worker = sa.insert(workers)
        self._remove_worker = sa.delete(workers).where(workers.c.owner == sa.bindparam("b_owner"))
        self._live = sa.select(sa.func.count()).where(
            workers.c.heartbeat_at >= sa.bindparam("since")
        )

    def acquire(self, connection: sa.Connection, name: str, owner: str, ttl: float) -> bool:
        """Take (or renew) the lease of ``name`` if it is free, expired or already ours."""
        now = time.time()
        if connection.execute(self._exists, {"b_name": name}).first() is None:
            try:
                with connection.begin_nested():
                    connection.execute(
                        self._insert, {"name": name, "owner": owner, "expires_at": now + ttl}
                    )
            except sa.exc.IntegrityError:
                pass  # another worker created it first: compete below
            else:
                return True
        result = connection.execute(
            self._acquire, {"b_name": name, "b_owner": owner, "now": now, "expires_at": now + ttl}
        )
        return result.rowcount == 1

    def release(self, connection: sa.Connection, name: str, owner: str) -> None:
        """Give the lease of ``name`` up, if ``owner`` holds it."""
        connection.execute(self._release, {"b_name": name, "b_owner": owner})

    def holds(self, connection: sa.Connection, name: str, owner: str) -> bool:
        """Whether ``owner`` holds an unexpired lease on ``name`` (locks the row on PostgreSQL)."""
        statement = (
            self._holds.with_for_update()
            if connection.dialect.name == "postgresql"
            else self._holds
        )
        row = connection.execute(statement, {"b_name": name}).first()
        return row is not None and row.owner == owner and row.expires_at > time.time()

    def owners(self, connection: sa.Connection) -> dict[str, tuple[str | None, float]]:
        """Every lease: projection name -> (owner, expires_at)."""
        return {row.name: (row.owner, row.expires_at) for row in connection.execute(self._all)}

    def heartbeat(self, connection: sa.Connection, owner: str) -> None:
        """Record that ``owner`` is alive (registering it on first call)."""
        now = time.time()
        if connection.execute(self._heartbeat, {"b_owner": owner, "now": now}).rowcount == 0:
            connection.execute(self._add_worker, {"owner": owner, "heartbeat_at": now})

    def leave(self, connection: sa.Connection, owner: str) -> None:
        """Unregister a worker that stops."""
        connection.execute(self._remove_worker, {"b_owner": owner})

    def fair_share(self, connection: sa.Connection, projections: int, ttl: float) -> int:
        """How many projections each live worker should own (at least one)."""
        live = connection.execute(self._live, {"since": time.time() - ttl}).scalar_one()
        return max(1, math.ceil(projections / max(1, live)))
