from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from cqrs_kit.persistence import sqlite_engine
from tests.databases import postgres_database
from tests.integration.processes import kill_leftovers

__all__ = ["engines", "postgres_database"]


@pytest.fixture(params=["sqlite", "postgres"])
def engines(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[sa.Engine, sa.Engine]]:
    """A write and a read engine: two SQLite files, or one PostgreSQL database for both."""
    if request.param == "sqlite":
        write, read = sqlite_engine(tmp_path / "write.db"), sqlite_engine(tmp_path / "read.db")
    else:
        database = request.getfixturevalue("postgres_database")
        write = read = sa.create_engine(database.sync_url)  # read models: separate tables
    yield write, read
    write.dispose()
    read.dispose()


@pytest.fixture(autouse=True)
def _no_leftover_processes() -> Iterator[None]:
    """Kill what a failed test left running, so that it cannot disturb the next test."""
    yield
    kill_leftovers()
