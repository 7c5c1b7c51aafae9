"""Waiting for projections: in-process wake-ups, polling for everything else.

Every batch this process applies bumps a generation counter and wakes all waiters at once.
A waiter notes the generation before it looks at the checkpoints and sleeps only if the
counter has not moved since, so it cannot miss a wake-up that came in between. Checkpoints
advanced by another process (a worker elsewhere) wake nobody here: waiters see them by
polling with backoff.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["Advances"]


class Advances:
    """The batches this process applied, counted, and the waiters they wake."""

    __slots__ = ("_condition", "_generation")

    def __init__(self) -> None:
        """Start with no batch applied."""
        self._condition = threading.Condition()
        self._generation = 0  # bumped on every local batch, so a wait cannot miss a wake-up

    def notify(self) -> None:
        """Record a batch and wake every waiter."""
        with self._condition:
            self._generation += 1
            self._condition.notify_all()

    def wait(self, reached: Callable[[], bool], timeout: float) -> bool:
        """Wait until ``reached()`` holds; ``False`` on timeout.

        ``reached`` is checked again at once after each local batch, and otherwise by
        polling with backoff (5 ms, doubling up to 250 ms).
        """
        deadline = time.monotonic() + timeout
        poll = 0.005
        while True:
            with self._condition:
                generation = self._generation
            if reached():
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            with self._condition:
                if self._generation == generation:  # nothing advanced since we looked
                    self._condition.wait(min(remaining, poll))
            poll = min(poll * 2, 0.25)
