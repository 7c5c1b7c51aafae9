"""The read models' SQLite statements read what the schema lays out for them, and no more.

The read path's speed rests on the query plans (:mod:`reference_app.read.schema`): a page of
orders read from the covering index alone, in its order; a range of days scanned off the
``WITHOUT ROWID`` table's own key; a detail found by its primary key. A schema or statement
change that loses one of these still answers correctly (the other tests pass), only slower;
these tests say which plan was lost.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

# The handlers' SQLite statements are private: the plans are what this test is about.
from reference_app.read.handlers import (
    _SQLITE_DAILY,
    _SQLITE_DETAIL,
    _SQLITE_FIRST_PAGE,
    _SQLITE_NEXT_PAGE,
)
from reference_app.read.schema import create_read_model


@pytest.fixture(scope="module")
def read_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sqlite3.Connection]:
    path: Path = tmp_path_factory.mktemp("plans") / "read.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    create_read_model(engine)
    engine.dispose()
    connection = sqlite3.connect(path)
    yield connection
    connection.close()


def _plan(connection: sqlite3.Connection, sql: str, parameters: tuple[object, ...]) -> str:
    rows = connection.execute(f"EXPLAIN QUERY PLAN {sql}", parameters).fetchall()
    return "\n".join(row[-1] for row in rows)


@pytest.mark.parametrize(
    ("sql", "parameters"),
    [
        (_SQLITE_FIRST_PAGE, (7,)),
        (_SQLITE_NEXT_PAGE, (7, "2024-05-01 10:00:00.000000", 42)),
    ],
    ids=["first page", "next page"],
)
def test_a_page_is_read_from_the_covering_index_in_its_order(
    read_db: sqlite3.Connection, sql: str, parameters: tuple[object, ...]
) -> None:
    plan = _plan(read_db, sql, parameters)
    assert "USING COVERING INDEX ix_order_summary_user_placed" in plan, plan
    assert "TEMP B-TREE" not in plan, f"the rows are sorted again:\n{plan}"


def test_a_range_of_days_is_one_scan_of_the_analytics_key(read_db: sqlite3.Connection) -> None:
    plan = _plan(read_db, _SQLITE_DAILY, ("2024-05-01", "2024-05-30"))
    # A WITHOUT ROWID table is its primary key's b-tree: no index, no row lookups.
    assert "SEARCH order_analytics USING PRIMARY KEY (day>? AND day<?)" in plan, plan
    assert "TEMP B-TREE" not in plan, f"the rows are sorted again:\n{plan}"


def test_a_detail_is_one_primary_key_lookup(read_db: sqlite3.Connection) -> None:
    plan = _plan(read_db, _SQLITE_DETAIL, (42,))
    assert "SEARCH order_detail USING INTEGER PRIMARY KEY (rowid=?)" in plan, plan
