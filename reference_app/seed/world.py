"""The seeded world: its fixed "now", the year its orders span, its default sizes.

And :data:`SEED_VERSION`, the version of the data the generator draws from them.
"""

from __future__ import annotations

import datetime as dt

SEED_VERSION = 1
"""Bumped whenever the same arguments would generate different data (a cache key)."""

NOW = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
"""The seeded world's "now": orders are placed in the year before it, nothing happens after."""

SPAN_DAYS = 365
"""Orders are placed over this many days before :data:`NOW`."""


def default_users(orders: int) -> int:
    """The number of users for ``orders`` orders when none is given (20 orders each)."""
    return max(1, orders // 20)


def default_products(orders: int) -> int:
    """The number of products for ``orders`` orders when none is given (50 to 5,000)."""
    return min(5_000, max(50, orders // 100))
