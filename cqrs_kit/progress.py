"""A dependency-free progress bar for ``progress(done, total)`` callbacks (rebuilds, seeding)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["ProgressBar"]


class ProgressBar:
    """A dependency-free progress bar for ``progress(done, total)`` callbacks.

    Redraws at most ten times a second, and always at the end.

    Args:
        label: What is progressing.
        out: Where to draw (stderr by default).
        unit: What is counted, for the rate.
        width: Characters of the bar itself.
    """

    def __init__(
        self, label: str, out: TextIO | None = None, unit: str = "items", width: int = 30
    ) -> None:
        """Start the clock."""
        self.label = label
        self.out = out if out is not None else sys.stderr
        self.unit = unit
        self.width = width
        self.started = time.monotonic()
        self._drawn = 0.0

    def __call__(self, done: int, total: int) -> None:
        """Draw the bar for ``done`` of ``total``."""
        now = time.monotonic()
        if done < total and now - self._drawn < 0.1:  # noqa: PLR2004 - ten redraws a second
            return
        self._drawn = now
        fraction = min(1.0, done / total) if total else 1.0
        filled = int(self.width * fraction)
        rate = done / max(now - self.started, 1e-9)
        self.out.write(
            f"\r{self.label} [{'#' * filled}{'.' * (self.width - filled)}] "
            f"{done:,}/{total:,} ({rate:,.0f} {self.unit}/s)"
        )
        self.out.flush()

    def close(self) -> None:
        """End the bar's line (if it drew one)."""
        if self._drawn:
            self.out.write("\n")
            self.out.flush()
