from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.databases import postgres_database
from tests.integration.processes import kill_leftovers

__all__ = ["postgres_database"]


@pytest.fixture(autouse=True)
def _no_leftover_processes() -> Iterator[None]:
    """Kill what a failed test left running, so that it cannot disturb the next test."""
    yield
    kill_leftovers()
