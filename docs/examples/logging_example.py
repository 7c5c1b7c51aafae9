# ruff: noqa: D101, D103 - docs/concepts/logging.md explains every object shown here
"""Logging middleware with JSON output: included in docs/concepts/logging.md.

Run it with ``python docs/examples/logging_example.py``; it prints one JSON object a line.
tests/integration/test_logging_middleware.py runs it and checks the keys it prints.
"""

import contextlib
import logging
from typing import Annotated, ClassVar

import structlog
from pydantic import BaseModel

from cqrs_kit import Command, Mediator, Query, Registry
from cqrs_kit.middleware.logging import LoggingMiddleware
from cqrs_kit.redaction import Sensitive

# --8<-- [start:configure]
structlog.configure(
    processors=[
        structlog.contextvars.merge_contextvars,  # the ids the middleware binds
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,  # exc_info -> "exception" (a string)
        structlog.processors.JSONRenderer(),
    ],
    # Filtering at INFO: the middleware's is_enabled_for check sees this level.
    wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
    cache_logger_on_first_use=True,
)
# --8<-- [end:configure]


# --8<-- [start:messages]
class Card(BaseModel):
    holder: str
    number: Annotated[str, Sensitive]  # the marker


class PlaceOrder(Command[int]):
    # Top-level names can also be listed here, e.g. a field whose type you do not own.
    __sensitive_fields__: ClassVar[frozenset[str]] = frozenset({"coupon"})

    sku: str
    quantity: int
    card: Card  # nested models are redacted by their own rules
    coupon: str | None = None


class GetStock(Query[int]):
    sku: str


# --8<-- [end:messages]

registry = Registry()
log = structlog.get_logger()
stock = {"tea": 3}


@registry.handles(PlaceOrder)
def place_order(command: PlaceOrder) -> int:
    log.info("reserving stock", sku=command.sku)  # carries the dispatch's ids
    if stock.get(command.sku, 0) < command.quantity:
        msg = f"only {stock.get(command.sku, 0)} {command.sku} left"
        raise ValueError(msg)
    stock[command.sku] -= command.quantity
    return 1


@registry.handles(GetStock)
def get_stock(query: GetStock) -> int:
    return stock.get(query.sku, 0)


# --8<-- [start:mediator]
mediator = Mediator(
    registry,
    middleware=[
        LoggingMiddleware(
            kind_levels={"query": "debug"},  # queries are frequent: below INFO, not logged
            log_payload=True,  # opt-in; sensitive values become "***"
        )
    ],
)
# --8<-- [end:mediator]

if __name__ == "__main__":
    card = Card(holder="Ada Lovelace", number="4111111111111111")
    mediator.send(
        PlaceOrder(sku="tea", quantity=2, card=card, coupon="FREE-TEA"),
        correlation_id="req-7f3a",
    )
    mediator.ask(GetStock(sku="tea"))  # at debug: filtered out, nothing built
    with contextlib.suppress(ValueError):  # the handler's exception, unchanged
        mediator.send(PlaceOrder(sku="tea", quantity=5, card=card), correlation_id="req-7f3b")
