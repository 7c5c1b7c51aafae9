"""Read tables with a generated (computed) column rebuild, in place and blue/green.

The database computes such a column on every write, so a rebuild must never insert into it
(PostgreSQL and SQLite refuse); the switch of a blue/green rebuild copies the other columns.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from cqrs_kit import Event, EventTypes, PendingEvent
from cqrs_kit.eventlog import EventLog, create_event_log
from cqrs_kit.projections import Projection, ProjectionContext, ProjectionEngine

event_types = EventTypes()


@event_types.define("test.priced")
class Priced(Event):
    key: int
    cents: int


read_metadata = sa.MetaData()
prices = sa.Table(
    "generated_prices",
    read_metadata,
    sa.Column("key", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("cents", sa.Integer, nullable=False),
    sa.Column("doubled", sa.Integer, sa.Computed("cents * 2", persisted=True)),
)


def _projection() -> Projection:
    projection = Projection("generated_prices", tables=[prices], batch_size=2)

    @projection.on(Priced)
    def priced(event: Priced, ctx: ProjectionContext) -> None:
        ctx.connection.execute(sa.insert(prices).values(key=event.key, cents=event.cents))

    return projection


@pytest.mark.parametrize("in_place", [True, False], ids=["in place", "blue-green"])
def test_rebuild_leaves_generated_columns_to_the_database(
    engines: tuple[sa.Engine, sa.Engine], in_place: bool
) -> None:
    write, read = engines
    create_event_log(write)
    log = EventLog(event_types)
    engine = ProjectionEngine(
        event_log=log, write_engine=write, read_engine=read, projections=[_projection()]
    )
    engine.setup()
    with write.begin() as connection:
        log.append(
            connection, [PendingEvent(Priced(key=k, cents=k * 10), "", "") for k in (1, 2, 3)]
        )
    engine.catch_up("generated_prices")

    assert engine.rebuild("generated_prices", in_place=in_place) == 3

    with read.connect() as connection:
        rows = connection.execute(sa.select(prices).order_by(prices.c.key)).all()
    assert [tuple(r) for r in rows] == [(1, 10, 20), (2, 20, 40), (3, 30, 60)]
