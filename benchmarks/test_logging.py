"""What the logging middleware costs a dispatch: enabled, disabled, and not there at all.

Every case is ``Mediator.ask(GetNumber(n=1))`` (or the ``AsyncMediator`` twin) with a handler
that returns one field. The reference cases are the bare mediator (no middleware: the route is
the handler itself) and one no-op middleware (the dispatch context every middleware needs);
"logging minus no-op" is what the logging middleware itself adds.

structlog is configured per case, with ``cache_logger_on_first_use=True`` unless the case says
"uncached" (structlog's default, which assembles a logger on every use):

- ``enabled-null``: ``ReturnLogger`` and no processors, the middleware's own cost;
- ``enabled-json``: ``merge_contextvars``, ``add_log_level``, ``JSONRenderer`` to /dev/null,
  what a deployment pays; ``+payload`` adds ``log_payload=True``;
- ``ok-disabled``: the success level filtered out, failures (warning) still logged;
- ``all-disabled``: both levels filtered out;
- ``bind`` / ``nobind``: ``bind_context`` on or off.

Run: ``pytest benchmarks/test_logging.py --benchmark-only``.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import TYPE_CHECKING, Annotated, Any

import pytest
import structlog
from pydantic import BaseModel

from cqrs_kit import AsyncMediator, Command, Mediator, Query, Registry
from cqrs_kit.middleware.logging import AsyncLoggingMiddleware, LoggingMiddleware
from cqrs_kit.redaction import Sensitive, redacted_payload

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


class GetNumber(Query[int]):
    n: int
    card_number: Annotated[str, Sensitive] = "4111111111111111"


QUERY = GetNumber(n=1)
ASYNC_BATCH = 1000


def handle(query: GetNumber) -> int:
    return query.n


async def ahandle(query: GetNumber) -> int:
    return query.n


def noop(message: Any, ctx: Any, call_next: Callable[[], Any]) -> Any:
    return call_next()


async def anoop(message: Any, ctx: Any, call_next: Callable[[], Any]) -> Any:
    return await call_next()


@pytest.fixture
def devnull() -> Iterator[Any]:
    with open(os.devnull, "w") as file:
        yield file


@pytest.fixture(autouse=True)
def _reset_structlog() -> Iterator[None]:
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


def configure(setup: str, devnull: Any) -> None:
    """Configure structlog for one case's setup."""
    if setup.startswith("enabled-json"):
        structlog.configure(
            processors=[
                structlog.contextvars.merge_contextvars,
                structlog.processors.add_log_level,
                structlog.processors.JSONRenderer(),
            ],
            logger_factory=structlog.PrintLoggerFactory(devnull),
            wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
            cache_logger_on_first_use=True,
        )
        return
    level = {"enabled-null": logging.INFO, "ok-disabled": logging.WARNING}.get(
        setup.split(" ", maxsplit=1)[0], logging.ERROR
    )
    structlog.configure(
        processors=[],
        logger_factory=structlog.ReturnLoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(level),
        cache_logger_on_first_use="uncached" not in setup,
    )


def middleware_options(case: str) -> dict[str, Any]:
    return {"bind_context": "nobind" not in case, "log_payload": "+payload" in case}


LOGGING_CASES = [
    "enabled-null bind",
    "enabled-json bind",
    "enabled-json bind +payload",
    "ok-disabled bind",
    "ok-disabled nobind",
    "all-disabled bind",
    "all-disabled nobind",
    "all-disabled nobind uncached",
]


def sync_mediator(middleware: list[Any]) -> Mediator:
    registry = Registry()
    registry.register(GetNumber, handle)
    mediator = Mediator(registry, middleware=middleware)
    mediator.freeze()
    return mediator


def async_mediator(middleware: list[Any]) -> AsyncMediator:
    registry = Registry()
    registry.register(GetNumber, ahandle)
    mediator = AsyncMediator(registry, middleware=middleware)
    mediator.freeze()
    return mediator


# -- sync ----------------------------------------------------------------------------------


@pytest.mark.benchmark(group="logging: Mediator.ask")
@pytest.mark.parametrize("reference", ["bare", "noop-middleware"])
def test_sync_reference(benchmark, reference):
    mediator = sync_mediator([] if reference == "bare" else [noop])
    ask = mediator.ask

    assert benchmark(ask, QUERY) == 1


@pytest.mark.benchmark(group="logging: Mediator.ask")
@pytest.mark.parametrize("case", LOGGING_CASES)
def test_sync_logging(benchmark, case, devnull):
    configure(case, devnull)
    mediator = sync_mediator([LoggingMiddleware(**middleware_options(case))])
    ask = mediator.ask

    assert benchmark(ask, QUERY) == 1


# -- async ---------------------------------------------------------------------------------


def run_batch(mediator: AsyncMediator) -> Callable[[], Any]:
    loop = asyncio.new_event_loop()
    ask = mediator.ask

    async def batch() -> int:
        total = 0
        for _ in range(ASYNC_BATCH):
            total += await ask(QUERY)
        return total

    def run() -> int:
        return loop.run_until_complete(batch())

    run.loop = loop  # type: ignore[attr-defined]
    return run


@pytest.mark.benchmark(group=f"logging: AsyncMediator.ask x{ASYNC_BATCH} (divide by {ASYNC_BATCH})")
@pytest.mark.parametrize("reference", ["bare", "noop-middleware"])
def test_async_reference(benchmark, reference):
    run = run_batch(async_mediator([] if reference == "bare" else [anoop]))
    try:
        assert benchmark(run) == ASYNC_BATCH
    finally:
        run.loop.close()  # type: ignore[attr-defined]


@pytest.mark.benchmark(group=f"logging: AsyncMediator.ask x{ASYNC_BATCH} (divide by {ASYNC_BATCH})")
@pytest.mark.parametrize(
    "case", ["enabled-null bind", "enabled-json bind", "ok-disabled bind", "all-disabled nobind"]
)
def test_async_logging(benchmark, case, devnull):
    configure(case, devnull)
    run = run_batch(async_mediator([AsyncLoggingMiddleware(**middleware_options(case))]))
    try:
        assert benchmark(run) == ASYNC_BATCH
    finally:
        run.loop.close()  # type: ignore[attr-defined]


# -- the payload ---------------------------------------------------------------------------


class Card(BaseModel):
    holder: str
    number: Annotated[str, Sensitive]


class PlaceOrder(Command[int]):
    sku: str
    quantity: int
    card: Card
    previous_cards: list[Card]


ORDER = PlaceOrder(
    sku="tea",
    quantity=2,
    card=Card(holder="Ada", number="4111111111111111"),
    previous_cards=[Card(holder="Ada", number=str(n)) for n in range(3)],
)


@pytest.mark.benchmark(group="logging: payload of a message with 4 nested models")
def test_payload_model_dump(benchmark):
    assert benchmark(ORDER.model_dump, mode="json")["card"]["number"] == "4111111111111111"


@pytest.mark.benchmark(group="logging: payload of a message with 4 nested models")
def test_payload_redacted(benchmark):
    assert benchmark(redacted_payload, ORDER)["card"]["number"] == "***"
