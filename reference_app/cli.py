"""``python -m reference_app``: set up, fill, serve and operate the orders app.

Usage::

    python -m reference_app schema                       # create tables and checkpoints
    python -m reference_app user "Ada Lovelace" ada@example.com [--staff] [--token]
    python -m reference_app product "Teapot" 24.90
    python -m reference_app token USER_ID                # prints a new API token, once
    python -m reference_app seed --orders 100000 [--users U] [--products P] [--seed S]
    python -m reference_app serve [--host 127.0.0.1] [--port 8000]
    python -m reference_app worker [--projections a,b]   # async projections, until SIGTERM
    python -m reference_app status [--format table|json]
    python -m reference_app rebuild order_summary

Every command reads the ``ORDERS_*`` environment (see :mod:`reference_app.config`) and gets
its objects from the container (:mod:`reference_app.container`). Output meant for scripts
(ids, the token, status) goes to stdout; logs and progress bars go to stderr. ``serve``,
``worker`` and ``seed`` log at ``ORDERS_LOG_LEVEL``; the one-shot commands log errors only,
and report a failure as one ``error:`` line.

Exit status: 0 on success; 1 when the command could not be done (an unknown user, a
database without its schema, a failed rebuild); 2 for a usage or configuration error (bad
arguments, bad ``ORDERS_*`` values, a command that fails validation).
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable, Sequence
from decimal import Decimal, InvalidOperation

from pydantic import ValidationError
from sqlalchemy import make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from cqrs_kit import CqrsKitError
from cqrs_kit.progress import ProgressBar
from cqrs_kit.projections.cli import print_status
from cqrs_kit.projections.distributed import LeasedWorker
from reference_app.config import Settings, SettingsError
from reference_app.container import (
    Container,
    build_container,
    close_container,
    configure_logging,
    create_schema,
    missing_schema,
)
from reference_app.read.projections import PROJECTION_NAMES
from reference_app.seed import SeedError, seed_from_settings
from reference_app.write.domain import OrderError
from reference_app.write.messages import AddProduct, IssueApiToken, RegisterUser

__all__ = ["CommandError", "ProgressBar", "main"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

_LONG_RUNNING = frozenset({"serve", "worker", "seed"})


class CommandError(Exception):
    """The command cannot be done; the message says why and what to do (exit status 1)."""


def _price(text: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation:
        msg = f"not a price: {text!r} (e.g. 24.90)"
        raise argparse.ArgumentTypeError(msg) from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m reference_app",
        description="The cqrs_kit reference orders app. Configure it with ORDERS_* variables.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("schema", help="create the write model, read models and checkpoints")

    user = commands.add_parser("user", help="register a user; prints its id")
    user.add_argument("name")
    user.add_argument("email")
    user.add_argument("--staff", action="store_true", help="may update orders, see analytics")
    user.add_argument("--token", action="store_true", help="also issue and print an API token")

    product = commands.add_parser("product", help="add a product; prints its id")
    product.add_argument("name")
    product.add_argument("price", type=_price, help="unit price, e.g. 24.90")

    token = commands.add_parser("token", help="issue an API token for a user; prints it once")
    token.add_argument("user_id", type=int)

    seed = commands.add_parser("seed", help="fill empty databases with generated data")
    seed.add_argument("--orders", type=int, default=1000, help="orders (default 1000)")
    seed.add_argument("--users", type=int, help="users (default: orders / 20)")
    seed.add_argument("--products", type=int, help="products (default: orders / 100, 50-5000)")
    seed.add_argument("--seed", type=int, default=0, help="random seed (same seed, same data)")

    serve = commands.add_parser("serve", help="serve the HTTP API until SIGTERM/SIGINT")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)

    names = list(PROJECTION_NAMES)
    worker = commands.add_parser("worker", help="run async projections until SIGTERM/SIGINT")
    worker.add_argument(
        "--projections",
        type=lambda text: [n.strip() for n in text.split(",") if n.strip()],
        help=f"comma-separated, of {', '.join(names)} (default: the async ones)",
    )

    status = commands.add_parser("status", help="show each projection's checkpoint and lag")
    status.add_argument("--format", choices=["table", "json"], default="table")

    rebuild = commands.add_parser("rebuild", help="replay the event log into a projection")
    rebuild.add_argument("name", choices=names)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command.

    Args:
        argv: The arguments (``sys.argv[1:]`` when omitted).

    Returns:
        The exit status (see the module docstring).
    """
    args = _parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_USAGE
    if args.command not in _LONG_RUNNING:  # the output is the result; log only errors
        settings = settings.model_copy(update={"log_level": "error"})
    configure_logging(settings)
    container = build_container(settings)
    try:
        return _COMMANDS[args.command](container, args)
    except ValidationError as exc:
        sys.stderr.write(f"error: {_explain(exc)}\n")
        return EXIT_USAGE
    except (CommandError, OrderError, CqrsKitError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_FAILED
    except SQLAlchemyError as exc:  # e.g. the database is unreachable
        cause = exc.orig if isinstance(exc, DBAPIError) else exc
        sys.stderr.write(f"error: database: {str(cause).strip().splitlines()[0]}\n")
        return EXIT_FAILED
    finally:
        close_container(container)


def _explain(exc: ValidationError) -> str:
    lines = [
        f"{'.'.join(map(str, error['loc'])) or exc.title}: {error['msg']}"
        for error in exc.errors(include_url=False)
    ]
    return "invalid input:\n  " + "\n  ".join(lines)


def _require_schema(container: Container) -> None:
    missing = missing_schema(container)
    if missing:
        msg = (
            f"the databases have no schema yet (missing {', '.join(missing)}); run "
            f"`python -m reference_app schema` first"
        )
        raise CommandError(msg)


# -- commands -------------------------------------------------------------------------------------


def _schema(container: Container, _args: argparse.Namespace) -> int:
    create_schema(container)
    settings = container.settings()
    print("schema ready")
    print(f"  write: {_masked(settings.write_database_url)}")
    print(f"  read:  {_masked(settings.read_database_url)}")
    print("  projections: " + ", ".join(f"{n}={s.value}" for n, s in settings.projections.items()))
    return EXIT_OK


def _user(container: Container, args: argparse.Namespace) -> int:
    _require_schema(container)
    mediator = container.mediator()
    user_id = mediator.send(
        RegisterUser.model_validate(
            {"name": args.name, "email": args.email, "is_staff": args.staff}
        )
    )
    print(user_id)
    if args.token:
        print(mediator.send(IssueApiToken(user_id=user_id)))
    return EXIT_OK


def _product(container: Container, args: argparse.Namespace) -> int:
    _require_schema(container)
    command = AddProduct.model_validate({"name": args.name, "price": args.price})
    print(container.mediator().send(command))
    return EXIT_OK


def _token(container: Container, args: argparse.Namespace) -> int:
    _require_schema(container)
    command = IssueApiToken.model_validate({"user_id": args.user_id})
    print(container.mediator().send(command))
    return EXIT_OK


def _seed(container: Container, args: argparse.Namespace) -> int:
    bar = ProgressBar("seeding", unit="orders")
    try:
        report = seed_from_settings(
            container.settings(), args.orders, args.users, args.products, args.seed, bar
        )
    except SeedError as exc:
        raise CommandError(str(exc)) from exc
    finally:
        bar.close()
    print(
        f"seeded {report.orders:,} orders ({report.order_items:,} lines), {report.users:,} "
        f"users, {report.products:,} products, {report.events:,} events in {report.seconds:.1f} s"
    )
    return EXIT_OK


def _serve(container: Container, args: argparse.Namespace) -> int:
    import uvicorn

    from reference_app.http import create_app

    _require_schema(container)
    app = create_app(container)
    # uvicorn re-raises SIGTERM/SIGINT after its graceful shutdown, to the handlers it found
    # installed: make those a no-op, so a requested stop ends with status 0.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _ignore)
    uvicorn.run(app, host=args.host, port=args.port, log_config=None, timeout_graceful_shutdown=10)
    return EXIT_OK


def _ignore(_signum: int, _frame: object) -> None:
    return


# --8<-- [start:worker]
def _worker(container: Container, args: argparse.Namespace) -> int:
    _require_schema(container)
    settings = container.settings()
    names = args.projections if args.projections is not None else settings.async_projections
    engine = container.projection_engine()
    for name in names:
        engine.projection(name)  # unknown names fail here, with the known ones listed
    if not names:
        msg = (
            "no projection is async (ORDERS_PROJECTIONS); the server applies sync ones "
            "itself. Pass --projections to run some anyway"
        )
        raise CommandError(msg)
    LeasedWorker(engine, names).run_until_signalled()
    return EXIT_OK
    # --8<-- [end:worker]


def _status(container: Container, args: argparse.Namespace) -> int:
    _require_schema(container)
    print_status(container.projection_engine().status(), sys.stdout, args.format)
    return EXIT_OK


def _rebuild(container: Container, args: argparse.Namespace) -> int:
    _require_schema(container)
    bar = ProgressBar(f"rebuilding {args.name}", unit="positions")
    try:
        applied = container.projection_engine().rebuild(args.name, progress=bar)
    finally:
        bar.close()
    print(f"rebuilt {args.name}: {applied:,} events applied")
    return EXIT_OK


def _masked(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


_COMMANDS: dict[str, Callable[[Container, argparse.Namespace], int]] = {
    "schema": _schema,
    "user": _user,
    "product": _product,
    "token": _token,
    "seed": _seed,
    "serve": _serve,
    "worker": _worker,
    "status": _status,
    "rebuild": _rebuild,
}
