# ruff: noqa: S106 - fake secrets are what these tests hide
"""LoggingMiddleware and AsyncLoggingMiddleware with real structlog, sync and async mediators."""

from __future__ import annotations

import asyncio
import json
import logging
import runpy
from pathlib import Path
from typing import Annotated, Any, ClassVar

import pytest
import structlog
from pydantic import BaseModel, Field, SecretStr
from structlog.contextvars import bind_contextvars, clear_contextvars, get_contextvars
from structlog.testing import LogCapture, capture_logs

import cqrs_kit.middleware.logging as logging_module
from cqrs_kit import (
    AsyncMediator,
    Command,
    ConfigurationError,
    DispatchContext,
    Event,
    Mediator,
    MessageKind,
    Query,
    Registry,
)
from cqrs_kit.middleware.logging import AsyncLoggingMiddleware, LoggingMiddleware
from cqrs_kit.redaction import Sensitive

ROOT = Path(__file__).resolve().parents[2]
BOUND_KEYS = {"message_type", "message_kind", "message_id", "correlation_id", "causation_id"}


# -- messages ----------------------------------------------------------------------------


class Card(BaseModel):
    holder: str
    number: Annotated[str, Sensitive]


class PlaceOrder(Command[int]):
    __sensitive_fields__: ClassVar[frozenset[str]] = frozenset({"coupon"})

    sku: str
    card: Card
    password: SecretStr
    coupon: str
    previous_cards: list[Card] = Field(default_factory=list)


class GetGreeting(Query[str]):
    name: str


class Explode(Command[None]):
    pass


class Interrupt(Command[None]):
    pass


class OrderPlaced(Event):
    order_id: int


class HandlerFailedError(Exception):
    pass


def order() -> PlaceOrder:
    return PlaceOrder(
        sku="tea",
        card=Card(holder="Ada", number="4111-1111"),
        password=SecretStr("hunter2"),
        coupon="FREE-TEA",
        previous_cards=[Card(holder="Ada", number="5500-0000")],
    )


# -- fixtures ----------------------------------------------------------------------------


@pytest.fixture
def logs():
    """Every log line, handler's and middleware's, with the contextvars merged in."""
    capture = LogCapture()
    structlog.configure(processors=[structlog.contextvars.merge_contextvars, capture])
    yield capture.entries
    structlog.reset_defaults()
    clear_contextvars()


def dispatch_events(entries: list[dict[str, Any]], name: str = "dispatch") -> list[dict[str, Any]]:
    return [e for e in entries if e["event"] == name]


def set_min_level(level: int) -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(level))


class Recorder:
    """Handlers that log through structlog and remember what they saw."""

    def __init__(self) -> None:
        self.contexts: list[DispatchContext] = []
        self.bound: list[dict[str, Any]] = []
        self.error = HandlerFailedError("handler failed")

    def sync_registry(self, mediator_ref: list[Mediator]) -> Registry:
        registry = Registry()
        log = structlog.get_logger()

        @registry.handles(GetGreeting)
        def greet(query: GetGreeting, ctx: DispatchContext) -> str:
            self.contexts.append(ctx)
            self.bound.append(get_contextvars())
            log.info("greeting", name=query.name)
            return f"hello {query.name}"

        @registry.handles(PlaceOrder)
        def place(command: PlaceOrder, ctx: DispatchContext) -> int:
            self.contexts.append(ctx)
            log.info("placing order")
            greeting = mediator_ref[0].ask(GetGreeting(name=command.card.holder))
            log.info("placed order", greeting=greeting)
            return 7

        @registry.handles(Explode)
        def explode(command: Explode) -> None:
            raise self.error

        @registry.handles(Interrupt)
        def interrupt(command: Interrupt) -> None:
            raise KeyboardInterrupt

        @registry.handles(OrderPlaced)
        def first(event: OrderPlaced) -> None:
            log.info("first handler")

        @registry.handles(OrderPlaced)
        def second(event: OrderPlaced) -> None:
            log.info("second handler")

        return registry

    def async_registry(self, mediator_ref: list[AsyncMediator]) -> Registry:
        registry = Registry()
        log = structlog.get_logger()

        @registry.handles(GetGreeting)
        async def greet(query: GetGreeting, ctx: DispatchContext) -> str:
            self.contexts.append(ctx)
            await asyncio.sleep(0)  # let concurrent dispatches interleave
            log.info("greeting", name=query.name)
            return f"hello {query.name}"

        @registry.handles(PlaceOrder)
        async def place(command: PlaceOrder, ctx: DispatchContext) -> int:
            self.contexts.append(ctx)
            log.info("placing order")
            greeting = await mediator_ref[0].ask(GetGreeting(name=command.card.holder))
            log.info("placed order", greeting=greeting)
            return 7

        @registry.handles(Explode)
        async def explode(command: Explode) -> None:
            raise self.error

        return registry


def make_mediator(recorder: Recorder, *middleware: Any) -> Mediator:
    ref: list[Mediator] = []
    mediator = Mediator(recorder.sync_registry(ref), middleware=list(middleware))
    ref.append(mediator)
    return mediator


def make_async_mediator(recorder: Recorder, *middleware: Any) -> AsyncMediator:
    ref: list[AsyncMediator] = []
    mediator = AsyncMediator(recorder.async_registry(ref), middleware=list(middleware))
    ref.append(mediator)
    return mediator


# -- the dispatch event --------------------------------------------------------------------


def test_emits_one_event_per_dispatch_with_duration_and_ok_outcome(logs):
    recorder = Recorder()
    mediator = make_mediator(recorder, LoggingMiddleware())

    assert mediator.ask(GetGreeting(name="Ada")) == "hello Ada"

    (event,) = dispatch_events(logs)
    ctx = recorder.contexts[0]
    assert event["log_level"] == "info"
    assert event["outcome"] == "ok"
    assert isinstance(event["duration_ms"], float)
    assert event["duration_ms"] >= 0
    assert event["message_type"] == "GetGreeting"
    assert event["message_kind"] == "query"
    assert event["message_id"] == ctx.message_id
    assert event["correlation_id"] == ctx.correlation_id
    assert event["causation_id"] is None
    assert "payload" not in event, "the payload is opt-in"
    assert "exc_info" not in event


def test_event_name_and_levels_are_configurable(logs):
    recorder = Recorder()
    middleware = LoggingMiddleware(
        event="cqrs.dispatch", level=logging.WARNING, kind_levels={MessageKind.QUERY: "debug"}
    )
    mediator = make_mediator(recorder, middleware)

    mediator.ask(GetGreeting(name="Ada"))
    mediator.publish(OrderPlaced(order_id=1))

    query_event, event_event = dispatch_events(logs, "cqrs.dispatch")
    assert (query_event["message_kind"], query_event["log_level"]) == ("query", "debug")
    assert (event_event["message_kind"], event_event["log_level"]) == ("event", "warning")
    assert dispatch_events(logs) == []


def test_an_event_with_several_handlers_is_one_dispatch_event(logs):
    mediator = make_mediator(Recorder(), LoggingMiddleware())

    mediator.publish(OrderPlaced(order_id=1))

    assert [e["event"] for e in logs] == ["first handler", "second handler", "dispatch"]
    assert logs[-1]["message_kind"] == "event"


@pytest.mark.parametrize(("failure_level", "expected"), [(None, "warning"), ("error", "error")])
def test_failure_logs_exception_type_and_info_and_reraises_the_same_object(
    logs, failure_level, expected
):
    recorder = Recorder()
    options = {} if failure_level is None else {"failure_level": failure_level}
    mediator = make_mediator(recorder, LoggingMiddleware(**options))

    with pytest.raises(HandlerFailedError) as raised:
        mediator.send(Explode())

    assert raised.value is recorder.error, "the handler's exception must propagate unchanged"
    (event,) = dispatch_events(logs)
    assert event["outcome"] == "HandlerFailedError"
    assert event["log_level"] == expected
    assert event["exc_info"] is recorder.error
    assert event["duration_ms"] >= 0


def test_base_exceptions_are_logged_and_propagate(logs):
    mediator = make_mediator(Recorder(), LoggingMiddleware())

    with pytest.raises(KeyboardInterrupt):
        mediator.send(Interrupt())

    (event,) = dispatch_events(logs)
    assert event["outcome"] == "KeyboardInterrupt"
    assert get_contextvars() == {}


def test_caller_supplied_correlation_id_is_logged(logs):
    mediator = make_mediator(Recorder(), LoggingMiddleware())

    mediator.ask(GetGreeting(name="Ada"), correlation_id="req-1")

    assert {e["correlation_id"] for e in logs} == {"req-1"}


# -- context bound for the handler's own logs ----------------------------------------------


def test_ids_are_bound_for_the_handler_and_restored_afterwards(logs):
    recorder = Recorder()
    mediator = make_mediator(recorder, LoggingMiddleware())
    bind_contextvars(request_id="r-1", correlation_id="outer-value")
    before = get_contextvars()

    mediator.ask(GetGreeting(name="Ada"))

    handler_line = next(e for e in logs if e["event"] == "greeting")
    ctx = recorder.contexts[0]
    assert handler_line["correlation_id"] == ctx.correlation_id
    assert handler_line["message_id"] == ctx.message_id
    assert handler_line["causation_id"] is None
    assert handler_line["message_type"] == "GetGreeting"
    assert handler_line["message_kind"] == "query"
    assert handler_line["request_id"] == "r-1", "the caller's own bindings stay visible"
    assert get_contextvars() == before, "the previous bindings must be restored"


def test_bindings_are_restored_after_a_failure(logs):
    mediator = make_mediator(Recorder(), LoggingMiddleware())

    with pytest.raises(HandlerFailedError):
        mediator.send(Explode())

    assert get_contextvars() == {}


def test_nested_dispatch_binds_its_ids_and_restores_the_outer_ones(logs):
    recorder = Recorder()
    mediator = make_mediator(recorder, LoggingMiddleware())

    mediator.send(order())

    outer, inner = recorder.contexts
    lines = {e["event"]: e for e in logs if e["event"] != "dispatch"}
    assert lines["placing order"]["message_id"] == outer.message_id
    assert lines["greeting"]["message_id"] == inner.message_id
    assert lines["greeting"]["causation_id"] == outer.message_id
    assert lines["greeting"]["correlation_id"] == outer.correlation_id
    assert lines["greeting"]["message_type"] == "GetGreeting"
    after = lines["placed order"]
    assert (after["message_id"], after["message_type"], after["causation_id"]) == (
        outer.message_id,
        "PlaceOrder",
        None,
    ), "after the nested dispatch the outer dispatch's ids must be bound again"

    inner_event, outer_event = dispatch_events(logs)
    assert inner_event["message_type"] == "GetGreeting"
    assert inner_event["causation_id"] == outer_event["message_id"]
    assert inner_event["correlation_id"] == outer_event["correlation_id"]
    assert get_contextvars() == {}


def test_bind_context_false_leaves_handler_logs_alone(logs):
    recorder = Recorder()
    mediator = make_mediator(recorder, LoggingMiddleware(bind_context=False))

    mediator.ask(GetGreeting(name="Ada"))

    handler_line = next(e for e in logs if e["event"] == "greeting")
    assert not BOUND_KEYS & handler_line.keys()
    assert recorder.bound == [{}]
    (event,) = dispatch_events(logs)
    assert event["correlation_id"] == recorder.contexts[0].correlation_id


# -- sensitive fields and the payload --------------------------------------------------------


def test_payload_is_absent_by_default(logs):
    make_mediator(Recorder(), LoggingMiddleware()).send(order())

    assert all("payload" not in e for e in dispatch_events(logs))


def test_payload_is_logged_with_sensitive_values_redacted(logs):
    make_mediator(Recorder(), LoggingMiddleware(log_payload=True)).send(order())

    *_, event = dispatch_events(logs)
    assert event["payload"] == {
        "sku": "tea",
        "card": {"holder": "Ada", "number": "***"},
        "password": "***",
        "coupon": "***",
        "previous_cards": [{"holder": "Ada", "number": "***"}],
    }
    rendered = repr(logs)
    for secret in ("4111-1111", "5500-0000", "hunter2", "FREE-TEA"):
        assert secret not in rendered, f"{secret!r} leaked into the logs"


def test_a_misdeclared_sensitive_field_fails_before_the_handler_runs(logs):
    class Typo(Command[None]):
        __sensitive_fields__: ClassVar[frozenset[str]] = frozenset({"pasword"})
        password: str

    ran: list[Typo] = []
    registry = Registry()
    registry.register(Typo, ran.append)
    mediator = Mediator(registry, middleware=[LoggingMiddleware(log_payload=True)])

    with pytest.raises(ConfigurationError, match="pasword"):
        mediator.send(Typo(password="x"))

    assert ran == []
    assert get_contextvars() == {}


# -- disabled levels -------------------------------------------------------------------------


def test_disabled_level_emits_nothing_and_builds_nothing(logs, monkeypatch):
    def must_not_run(*args, **kwargs):
        pytest.fail("nothing may be built or timed when the level is disabled")

    class NoClock:
        perf_counter = staticmethod(must_not_run)

    monkeypatch.setattr(logging_module, "redacted_payload", must_not_run)
    monkeypatch.setattr(logging_module, "time", NoClock)
    set_min_level(logging.ERROR)
    recorder = Recorder()
    mediator = make_mediator(recorder, LoggingMiddleware(log_payload=True))

    assert mediator.ask(GetGreeting(name="Ada")) == "hello Ada"
    with pytest.raises(HandlerFailedError):
        mediator.send(Explode())

    assert logs == []
    assert recorder.bound[0].keys() >= BOUND_KEYS, "bind_context=True binds even when disabled"


def test_disabled_level_without_binding_binds_nothing(logs):
    set_min_level(logging.ERROR)
    recorder = Recorder()
    mediator = make_mediator(recorder, LoggingMiddleware(bind_context=False))

    mediator.ask(GetGreeting(name="Ada"))

    assert recorder.bound == [{}]
    assert logs == []


@pytest.mark.parametrize("bind_context", [True, False])
def test_failures_are_logged_when_only_the_failure_level_is_enabled(logs, bind_context):
    set_min_level(logging.WARNING)
    mediator = make_mediator(Recorder(), LoggingMiddleware(bind_context=bind_context))

    mediator.ask(GetGreeting(name="Ada"))
    with pytest.raises(HandlerFailedError):
        mediator.send(Explode(), correlation_id="req-9")

    (event,) = dispatch_events(logs)
    assert (event["outcome"], event["log_level"]) == ("HandlerFailedError", "warning")
    assert event["duration_ms"] >= 0
    assert (event["message_type"], event["message_kind"]) == ("Explode", "command")
    assert event["correlation_id"] == "req-9"
    assert event["message_id"]


@pytest.mark.parametrize(
    ("min_level", "level", "failure_level", "logged"),
    [
        (logging.DEBUG, "info", "warning", ["GetGreeting", "Explode"]),
        (logging.WARNING, "info", "warning", ["Explode"]),
        (logging.ERROR, "info", "warning", []),
        (logging.WARNING, "error", "info", ["GetGreeting"]),
        (logging.INFO, "info", "info", ["GetGreeting", "Explode"]),
        (logging.WARNING, "info", "info", []),
    ],
)
def test_success_and_failure_levels_are_checked_independently(
    logs, min_level, level, failure_level, logged
):
    set_min_level(min_level)
    middleware = LoggingMiddleware(level=level, failure_level=failure_level)
    mediator = make_mediator(Recorder(), middleware)

    mediator.ask(GetGreeting(name="Ada"))
    with pytest.raises(HandlerFailedError):
        mediator.send(Explode())

    assert [e["message_type"] for e in dispatch_events(logs)] == logged


def test_stdlib_logger_levels_are_honoured(logs, caplog):
    capture = LogCapture()
    structlog.configure(
        processors=[structlog.contextvars.merge_contextvars, capture],
        wrapper_class=structlog.stdlib.BoundLogger,
        logger_factory=structlog.stdlib.LoggerFactory(),
    )
    caplog.set_level(logging.WARNING, logger="cqrs_kit")
    mediator = make_mediator(Recorder(), LoggingMiddleware())

    mediator.ask(GetGreeting(name="Ada"))
    with pytest.raises(HandlerFailedError):
        mediator.send(Explode())

    assert [(e["message_type"], e["outcome"]) for e in dispatch_events(capture.entries)] == [
        ("Explode", "HandlerFailedError")
    ]


def test_configuration_changes_after_construction_are_seen(logs):
    middleware = LoggingMiddleware()
    mediator = make_mediator(Recorder(), middleware)

    mediator.ask(GetGreeting(name="Ada"))
    set_min_level(logging.ERROR)
    mediator.ask(GetGreeting(name="Ada"))

    assert len(dispatch_events(logs)) == 1


def test_a_given_bound_logger_is_used(logs):
    with capture_logs() as captured:
        logger = structlog.get_logger("mine").bind(service="orders")
        make_mediator(Recorder(), LoggingMiddleware(logger)).ask(GetGreeting(name="Ada"))

    (event,) = dispatch_events(captured)
    assert event["service"] == "orders"


# -- robustness and configuration ----------------------------------------------------------


def test_a_broken_processor_changes_neither_result_nor_exception(caplog):
    def broken(logger, method_name, event_dict):
        if event_dict["event"] == "dispatch":
            raise RuntimeError("processor bug")
        return event_dict

    structlog.configure(processors=[broken, structlog.testing.LogCapture()])
    try:
        recorder = Recorder()
        mediator = make_mediator(recorder, LoggingMiddleware())
        with caplog.at_level(logging.ERROR, logger="cqrs_kit"):
            assert mediator.ask(GetGreeting(name="Ada")) == "hello Ada"
            with pytest.raises(HandlerFailedError) as raised:
                mediator.send(Explode())
    finally:
        structlog.reset_defaults()

    assert raised.value is recorder.error
    assert [r.getMessage() for r in caplog.records] == [
        "could not log the dispatch of GetGreeting",
        "could not log the dispatch of Explode",
    ]
    assert get_contextvars() == {}


def test_applies_to_scopes_the_middleware(logs):
    mediator = make_mediator(Recorder(), LoggingMiddleware(applies_to=(Command,)))

    mediator.send(order())

    assert [e["message_type"] for e in dispatch_events(logs)] == ["PlaceOrder"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"level": "verbose"}, "level must be one of"),
        ({"level": 15}, "level must be one of"),
        ({"failure_level": "loud"}, "failure_level must be one of"),
        ({"kind_levels": {"thing": "debug"}}, "kind_levels keys"),
        ({"kind_levels": {"query": "chatty"}}, r"kind_levels\['query'\]"),
        ({"applies_to": [Command]}, "applies_to must be a tuple"),
    ],
)
def test_bad_options_are_refused_at_construction(options, message):
    with pytest.raises(ConfigurationError, match=message):
        LoggingMiddleware(**options)


def test_mediators_accept_only_their_own_twin():
    with pytest.raises(ConfigurationError, match="AsyncMediator"):
        Mediator(middleware=[AsyncLoggingMiddleware()])
    with pytest.raises(ConfigurationError, match="async def"):
        AsyncMediator(middleware=[LoggingMiddleware()])


def test_repr_shows_the_options():
    middleware = LoggingMiddleware(kind_levels={"query": "debug"}, log_payload=True)

    assert repr(middleware) == (
        "LoggingMiddleware(event='dispatch', levels={'command': 'info', 'query': 'debug', "
        "'event': 'info'}, failure_level='warning', log_payload=True, bind_context=True)"
    )


# -- async ---------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_async_emits_one_event_with_bound_ids(logs):
    recorder = Recorder()
    mediator = make_async_mediator(recorder, AsyncLoggingMiddleware(log_payload=True))

    assert await mediator.ask(GetGreeting(name="Ada")) == "hello Ada"

    handler_line, event = logs
    ctx = recorder.contexts[0]
    assert handler_line["correlation_id"] == event["correlation_id"] == ctx.correlation_id
    assert event["outcome"] == "ok"
    assert event["duration_ms"] >= 0
    assert event["payload"] == {"name": "Ada"}
    assert get_contextvars() == {}


@pytest.mark.asyncio
async def test_async_failure_reraises_the_same_object(logs):
    recorder = Recorder()
    mediator = make_async_mediator(recorder, AsyncLoggingMiddleware(failure_level="error"))

    with pytest.raises(HandlerFailedError) as raised:
        await mediator.send(Explode())

    assert raised.value is recorder.error
    (event,) = dispatch_events(logs)
    assert (event["outcome"], event["log_level"]) == ("HandlerFailedError", "error")
    assert event["exc_info"] is recorder.error
    assert get_contextvars() == {}


@pytest.mark.asyncio
async def test_async_nested_dispatch_restores_the_outer_ids(logs):
    recorder = Recorder()
    mediator = make_async_mediator(recorder, AsyncLoggingMiddleware(log_payload=True))

    await mediator.send(order())

    outer, _inner = recorder.contexts
    lines = {e["event"]: e for e in logs if e["event"] != "dispatch"}
    assert lines["greeting"]["causation_id"] == outer.message_id
    assert lines["greeting"]["correlation_id"] == outer.correlation_id
    assert lines["placed order"]["message_id"] == outer.message_id
    assert lines["placed order"]["causation_id"] is None
    inner_event, outer_event = dispatch_events(logs)
    assert inner_event["causation_id"] == outer_event["message_id"]
    assert outer_event["payload"]["card"]["number"] == "***"


@pytest.mark.asyncio
async def test_concurrent_async_dispatches_keep_their_own_ids(logs):
    recorder = Recorder()
    mediator = make_async_mediator(recorder, AsyncLoggingMiddleware())

    await asyncio.gather(
        *(mediator.ask(GetGreeting(name=f"n{i}"), correlation_id=f"c{i}") for i in range(5))
    )

    greetings = [e for e in logs if e["event"] == "greeting"]
    assert sorted((e["name"], e["correlation_id"]) for e in greetings) == [
        (f"n{i}", f"c{i}") for i in range(5)
    ]


@pytest.mark.asyncio
async def test_async_disabled_level_emits_nothing(logs):
    set_min_level(logging.CRITICAL)
    mediator = make_async_mediator(Recorder(), AsyncLoggingMiddleware())

    await mediator.ask(GetGreeting(name="Ada"))
    with pytest.raises(HandlerFailedError):
        await mediator.send(Explode())

    assert logs == []


# -- the docs example ----------------------------------------------------------------------


def test_docs_example_prints_json_lines_with_the_documented_keys(capsys):
    try:
        runpy.run_path(str(ROOT / "docs/examples/logging_example.py"), run_name="__main__")
    finally:
        structlog.reset_defaults()
    out = capsys.readouterr().out

    lines = [json.loads(line) for line in out.splitlines()]
    events = [line for line in lines if line["event"] == "dispatch"]
    assert [(e["outcome"], e["level"]) for e in events] == [
        ("ok", "info"),
        ("ValueError", "warning"),
    ]
    for event in events:
        assert BOUND_KEYS | {"duration_ms", "outcome", "payload", "timestamp"} <= event.keys()
        assert event["payload"]["card"] == {"holder": "Ada Lovelace", "number": "***"}
        assert event["payload"]["coupon"] == "***"
    assert events[0]["correlation_id"] == "req-7f3a"
    assert "ValueError: only 1 tea left" in events[1]["exception"]
    handler_lines = [line for line in lines if line["event"] == "reserving stock"]
    assert [line["message_id"] for line in handler_lines] == [e["message_id"] for e in events]
    assert "GetStock" not in out, "queries are logged at debug, below the configured INFO"
    assert "4111111111111111" not in out
    assert "FREE-TEA" not in out
