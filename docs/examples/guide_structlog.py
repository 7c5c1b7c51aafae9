"""Guide: structlog in an app that already logs with the standard library.

Shown in docs/guides/structlog.md; tests/docs/test_guides.py runs it and checks what it
prints. Run it with ``python docs/examples/guide_structlog.py``.

structlog renders every line, the framework's own ``logging`` calls included, as JSON through
one stdlib handler; cqrs_kit's dispatch events go to the ``cqrs_kit`` logger, whose level
the app sets like any other logger's. A request id bound by the web layer appears on every
line of the request, the dispatch event included.
"""

import io
import json
import logging

import structlog

from cqrs_kit import Command, Mediator, Registry
from cqrs_kit.middleware.logging import LoggingMiddleware


# --8<-- [start:configure]
def configure_logging(stream: io.TextIOBase | None = None, level: int = logging.INFO) -> None:
    """Send structlog and stdlib logging through one JSON handler (call it once, at start-up)."""
    shared = [
        structlog.contextvars.merge_contextvars,  # request_id, and the ids cqrs_kit binds
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),  # get_logger("x") -> logging "x"
        wrapper_class=structlog.stdlib.BoundLogger,  # levels come from the logging module
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,  # the same keys for plain logging.getLogger() lines
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,  # tracebacks without local variables
                structlog.processors.JSONRenderer(),
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


# --8<-- [end:configure]


class ArchiveReport(Command[int]):
    """Archive a report; ``send()`` returns how many pages were archived."""

    report_id: int


registry = Registry()
log = structlog.get_logger("reports")


@registry.handles(ArchiveReport)
def archive_report(command: ArchiveReport) -> int:
    """Log through structlog; the dispatch's ids are added to the line."""
    log.info("archiving", report_id=command.report_id)
    return 12


# --8<-- [start:mediator]
mediator = Mediator(
    registry,
    # First in the list: the outermost middleware, so its duration_ms covers the others.
    middleware=[LoggingMiddleware(kind_levels={"query": "debug"})],
)
# --8<-- [end:mediator]


# --8<-- [start:request]
def handle_request(request_id: str, report_id: int) -> int:
    """What a web framework's request hook and view do, in one function."""
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=request_id)  # every line of the request
    logging.getLogger("framework").info("request started")  # a plain stdlib logger
    return mediator.send(ArchiveReport(report_id=report_id), correlation_id=request_id)


# --8<-- [end:request]

SHOWN = ("logger", "event", "level", "request_id", "correlation_id", "message_type", "outcome")


def main() -> None:
    """Log one request, then print the keys of each JSON line that do not vary."""
    stream = io.StringIO()
    configure_logging(stream)
    handle_request("req-42", report_id=7)
    logging.getLogger("cqrs_kit").setLevel(logging.WARNING)  # successful dispatches: quiet
    handle_request("req-43", report_id=8)
    logging.getLogger("cqrs_kit").setLevel(logging.NOTSET)  # as it was
    for line in stream.getvalue().splitlines():
        event = json.loads(line)
        print({key: event[key] for key in SHOWN if key in event})


if __name__ == "__main__":
    main()
