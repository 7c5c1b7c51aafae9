"""The seeder's error."""

from __future__ import annotations


class SeedError(RuntimeError):
    """The databases cannot be seeded (they hold data already, or the arguments are bad)."""
