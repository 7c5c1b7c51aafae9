"""Database fixtures shared by the integration and end-to-end suites.

SQLite databases are files under ``tmp_path``. PostgreSQL comes from
``CQRS_KIT_POSTGRES_URL``; each test gets a fresh database created from that server, so
tests never see each other's tables. Without the variable, PostgreSQL tests skip.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

POSTGRES_ENV = "CQRS_KIT_POSTGRES_URL"


def postgres_url_or_skip() -> str:
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        pytest.skip(
            f"PostgreSQL tests need {POSTGRES_ENV} (e.g. postgresql://postgres@127.0.0.1/test)"
        )
    return url


def _with_driver(url: str, driver: str) -> str:
    return (
        make_url(url).set(drivername=f"postgresql+{driver}").render_as_string(hide_password=False)
    )


@dataclass(frozen=True)
class Database:
    """URLs of one test database, by driver."""

    name: str
    sync_url: str
    async_url: str


@pytest.fixture
def postgres_database() -> Iterator[Database]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    base = postgres_url_or_skip()
    admin = sa.create_engine(_with_driver(base, "psycopg"), isolation_level="AUTOCOMMIT")
    name = f"cqrs_kit_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = make_url(base).set(database=name).render_as_string(hide_password=False)
    try:
        yield Database(name, _with_driver(url, "psycopg"), _with_driver(url, "asyncpg"))
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
