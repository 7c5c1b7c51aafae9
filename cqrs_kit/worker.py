"""``python -m cqrs_kit.worker --app module:engine``: run projection workers.

The same as ``python -m cqrs_kit.projections --app module:engine run``: a leased worker that
shares the async projections with the other workers and stops cleanly on SIGTERM/SIGINT.
"""

from __future__ import annotations

import sys

from cqrs_kit.projections.cli import main


def run(argv: list[str] | None = None) -> int:
    """Run a worker with ``argv`` (``--app ...`` and the options of ``run``)."""
    args = list(sys.argv[1:] if argv is None else argv)
    app = [a for a in args if a.startswith("--app")]
    if not app:
        sys.stderr.write("usage: python -m cqrs_kit.worker --app module:engine [run options]\n")
        return 2
    index = args.index(app[0])
    head = args[: index + (1 if "=" in app[0] else 2)]
    return main([*head, "run", *args[len(head) :]])


if __name__ == "__main__":
    sys.exit(run())
