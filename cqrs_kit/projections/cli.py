"""Command line for projections: run a worker, show status, operate, rebuild.

Usage::

    python -m cqrs_kit.projections --app myapp.projections:engine run [--ttl 10]
    python -m cqrs_kit.worker --app myapp.projections:engine          (the same as run)
    python -m cqrs_kit.projections --app myapp.projections:engine status [--format json|log]
    python -m cqrs_kit.projections --app myapp.projections:engine rebuild order_summary
    python -m cqrs_kit.projections --app myapp.projections:engine pause|resume|skip|retry NAME

``--app`` names a :class:`~cqrs_kit.projections.ProjectionEngine`, or a function returning
one, as ``module:attribute``.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import logging
import sys
from typing import TYPE_CHECKING, Any, TextIO

from cqrs_kit.exceptions import CqrsKitError
from cqrs_kit.progress import ProgressBar
from cqrs_kit.projections.distributed import LeasedWorker
from cqrs_kit.projections.engine import ProjectionEngine
from cqrs_kit.projections.projection import Strategy

if TYPE_CHECKING:
    from collections.abc import Sequence

    from cqrs_kit.projections.status import ProjectionStatus

__all__ = ["load_engine", "main", "print_status"]


def load_engine(spec: str) -> ProjectionEngine:
    """Import ``module:attribute`` and return the engine it names (or builds).

    Raises:
        SystemExit: The spec is malformed or does not lead to a ProjectionEngine.
    """
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise SystemExit(f"--app takes module:attribute, got {spec!r}")
    target: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        target = getattr(target, part)
    if callable(target) and not isinstance(target, ProjectionEngine):
        target = target()
    if not isinstance(target, ProjectionEngine):
        raise SystemExit(f"{spec} is not a ProjectionEngine (got {type(target).__name__})")
    return target


def print_status(statuses: Sequence[ProjectionStatus], out: TextIO, fmt: str = "table") -> None:
    """Print projection statuses as a table, JSON lines, or structlog events."""
    if fmt == "json":
        for status in statuses:
            out.write(json.dumps(dataclasses.asdict(status), default=str) + "\n")
        return
    if fmt == "log":
        import structlog

        log = structlog.get_logger("cqrs_kit.projections")
        for status in statuses:
            log.info("projection_status", **dataclasses.asdict(status))
        return
    header = ("projection", "strategy", "state", "checkpoint", "head", "lag", "lag_s", "error")
    rows = [
        (
            s.name,
            s.strategy,
            s.state,
            str(s.checkpoint),
            str(s.head),
            str(s.lag_events),
            f"{s.lag_seconds:.1f}",
            (f"at {s.failed_position}: " if s.failed_position else "") + (s.last_error or ""),
        )
        for s in statuses
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        out.write(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
            + "\n"
        )


def _run(engine: ProjectionEngine, names: list[str], args: argparse.Namespace) -> int:
    if args.once:
        engine.run_once(names)
        return 0
    LeasedWorker(
        engine, names, owner=args.owner, ttl=args.ttl, report_every=args.report_every
    ).run_until_signalled()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m cqrs_kit.projections", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--app", required=True, help="module:attribute of a ProjectionEngine")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the async projections (leased) until SIGTERM/SIGINT")
    run.add_argument("--projections", help="comma-separated names (default: the async ones)")
    run.add_argument("--once", action="store_true", help="catch up once and exit")
    run.add_argument("--ttl", type=float, default=10.0, help="lease time to live, seconds")
    run.add_argument("--owner", help="this worker's name (default: host:pid:random)")
    run.add_argument(
        "--report-every", type=float, default=30.0, help="seconds between status log lines"
    )
    status = commands.add_parser("status", help="show head, checkpoint, lag, state, errors")
    status.add_argument("--format", choices=["table", "json", "log"], default="table")
    commands.add_parser("setup", help="create read-model and checkpoint tables")
    rebuild = commands.add_parser(
        "rebuild", help="replay the log into a fresh copy (blue/green), then switch"
    )
    rebuild.add_argument("name")
    rebuild.add_argument("--in-place", action="store_true", help="rebuild the live tables")
    rebuild.add_argument("--restart", action="store_true", help="discard an interrupted copy")
    for name, text in [
        ("pause", "stop applying events"),
        ("resume", "resume; retries the event it stopped at"),
        ("skip", "skip the event a paused projection stopped at"),
        ("retry", "resume and catch up now"),
    ]:
        commands.add_parser(name, help=text).add_argument("name")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    engine = load_engine(args.app)
    try:
        return _dispatch(engine, args)
    except CqrsKitError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1


def _dispatch(engine: ProjectionEngine, args: argparse.Namespace) -> int:
    out = sys.stdout
    if args.command == "run":
        names = args.projections.split(",") if args.projections else engine.names(Strategy.ASYNC)
        for name in names:
            engine.projection(name)
        return _run(engine, names, args)
    if args.command == "status":
        print_status(engine.status(), out, args.format)
    elif args.command == "setup":
        engine.setup()
    elif args.command == "rebuild":
        bar = ProgressBar(f"rebuilding {args.name}", sys.stderr, unit="events")
        applied = engine.rebuild(
            args.name, in_place=args.in_place, restart=args.restart, progress=bar
        )
        bar.close()
        out.write(f"rebuilt {args.name}: {applied} events applied\n")
    elif args.command == "pause":
        engine.pause(args.name)
        out.write(f"paused {args.name}\n")
    elif args.command == "resume":
        engine.resume(args.name)
        out.write(f"resumed {args.name}\n")
    elif args.command == "skip":
        out.write(f"skipped position {engine.skip(args.name)} of {args.name}\n")
    elif args.command == "retry":
        out.write(f"{args.name}: {engine.retry(args.name)} events applied\n")
    return 0
