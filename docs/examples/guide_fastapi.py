"""Guide: an async FastAPI app on ``AsyncMediator``.

Shown in docs/guides/fastapi.md; tests/docs/test_guides.py drives it with FastAPI's
``TestClient``. Serve it with ``uvicorn --factory guide_fastapi:app_from_env`` from
docs/examples (``DATA_DIR`` names the directory of the two SQLite files).

The write side runs on aiosqlite (``AsyncTransactionMiddleware``); a projection, run by a
background task (``AsyncProjectionWorker``), keeps the read model in a second SQLite file.
A client that has just written reads its own write by sending back the consistency token it
was given.
"""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, ClassVar

import sqlalchemy as sa
from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from cqrs_kit import (
    AsyncMediator,
    AtLeast,
    Command,
    ConsistencyTimeoutError,
    Dependencies,
    Event,
    EventTypes,
    Query,
    Receipt,
    Registry,
)
from cqrs_kit.eventlog import EventLog, acreate_event_log
from cqrs_kit.middleware.projection import AsyncConsistencyMiddleware, AsyncProjectionMiddleware
from cqrs_kit.middleware.transaction import AsyncSqlAlchemyUnitOfWork, AsyncTransactionMiddleware
from cqrs_kit.persistence import async_sqlite_engine, sqlite_engine
from cqrs_kit.projections import (
    AsyncProjectionWorker,
    Projection,
    ProjectionContext,
    ProjectionEngine,
)

# -- write side ----------------------------------------------------------------------------

write_metadata = sa.MetaData()
tickets = sa.Table(
    "tickets",
    write_metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("reporter", sa.String(50), nullable=False),
    sa.Column("title", sa.String(200), nullable=False),
    sa.Column("closed", sa.Boolean, nullable=False),
)

event_types = EventTypes()


@event_types.define("ticket.opened", stream_type="ticket")
class TicketOpened(Event):
    """A ticket was opened."""

    ticket_id: int
    reporter: str
    title: str


@event_types.define("ticket.closed", stream_type="ticket")
class TicketClosed(Event):
    """A ticket was closed."""

    ticket_id: int


# --8<-- [start:messages]
class OpenTicket(Command[int]):
    """Open a ticket; ``send()`` returns its id."""

    reporter: str  # from authentication, never from the request body
    title: str


class CloseTicket(Command[None]):
    """Close an open ticket."""

    ticket_id: int


class TicketView(BaseModel):
    """A ticket, as the API shows it."""

    ticket_id: int
    reporter: str
    title: str
    status: str


class GetTicket(Query[TicketView | None]):
    """One ticket, or ``None``."""

    read_models: ClassVar[tuple[str, ...]] = ("ticket_list",)  # what a token waits for

    ticket_id: int


class TicketNotOpenError(Exception):
    """There is no open ticket with that id (the app maps it to 409)."""


# --8<-- [end:messages]

# --8<-- [start:handlers]
registry = Registry()


@registry.handles(OpenTicket)
async def open_ticket(command: OpenTicket, *, uow: AsyncSqlAlchemyUnitOfWork) -> int:
    """Insert the ticket and record ``TicketOpened``."""
    insert = sa.insert(tickets).values(reporter=command.reporter, title=command.title, closed=False)
    ticket_id = int((await uow.session.execute(insert.returning(tickets.c.id))).scalar_one())
    opened = TicketOpened(ticket_id=ticket_id, reporter=command.reporter, title=command.title)
    uow.record(opened, stream_id=ticket_id)
    return ticket_id


@registry.handles(CloseTicket)
async def close_ticket(command: CloseTicket, *, uow: AsyncSqlAlchemyUnitOfWork) -> None:
    """Close the ticket and record ``TicketClosed``."""
    close = (
        sa.update(tickets)
        .where(tickets.c.id == command.ticket_id, tickets.c.closed.is_(False))
        .values(closed=True)
    )
    if (await uow.session.execute(close)).rowcount == 0:
        msg = f"ticket {command.ticket_id} is not open"
        raise TicketNotOpenError(msg)
    uow.record(TicketClosed(ticket_id=command.ticket_id), stream_id=command.ticket_id)


@registry.handles(GetTicket)
async def get_ticket(query: GetTicket, *, read_db: AsyncEngine) -> TicketView | None:
    """Read the ticket from the read model."""
    select = sa.select(ticket_list).where(ticket_list.c.ticket_id == query.ticket_id)
    async with read_db.connect() as connection:
        row = (await connection.execute(select)).first()
    return None if row is None else TicketView.model_validate(row._mapping)


# --8<-- [end:handlers]

# -- read side -----------------------------------------------------------------------------

read_metadata = sa.MetaData()
ticket_list = sa.Table(
    "ticket_list",
    read_metadata,
    sa.Column("ticket_id", sa.Integer, primary_key=True),
    sa.Column("reporter", sa.String(50), nullable=False),
    sa.Column("title", sa.String(200), nullable=False),
    sa.Column("status", sa.String(10), nullable=False),
)

projection = Projection("ticket_list", tables=[ticket_list])  # Strategy.ASYNC by default


@projection.on(TicketOpened)
def add_ticket(event: TicketOpened, ctx: ProjectionContext) -> None:
    """A new row, open."""
    ctx.connection.execute(
        sa.insert(ticket_list).values(
            ticket_id=event.ticket_id, reporter=event.reporter, title=event.title, status="open"
        )
    )


@projection.on(TicketClosed)
def mark_closed(event: TicketClosed, ctx: ProjectionContext) -> None:
    """The row's status changes."""
    ctx.connection.execute(
        sa.update(ticket_list)
        .where(ticket_list.c.ticket_id == event.ticket_id)
        .values(status="closed")
    )


# -- the app -------------------------------------------------------------------------------


# --8<-- [start:dependencies]
def get_mediator(request: Request) -> AsyncMediator:
    """The app's mediator, for ``Depends``."""
    mediator: AsyncMediator = request.app.state.mediator
    return mediator


MediatorDep = Annotated[AsyncMediator, Depends(get_mediator)]
User = Annotated[str, Header(alias="X-User")]  # stands in for real authentication
RequestId = Annotated[str | None, Header(alias="X-Request-ID")]
# --8<-- [end:dependencies]


# --8<-- [start:errors]
async def not_open(_request: Request, error: Exception) -> JSONResponse:
    """A domain error, mapped to a status code in one place."""
    return JSONResponse({"error": str(error)}, status_code=status.HTTP_409_CONFLICT)


async def not_caught_up(_request: Request, error: Exception) -> JSONResponse:
    """The read model did not reach the client's token in time: ask it to retry."""
    return JSONResponse(
        {"error": str(error)},
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": "1"},
    )


# --8<-- [end:errors]

# --8<-- [start:routes]
router = APIRouter()
CONSISTENCY_TIMEOUT = 2.0  # seconds a read waits for the client's own write


class NewTicket(BaseModel):
    """The request body of ``POST /tickets``."""

    title: str


@router.post("/tickets", status_code=status.HTTP_201_CREATED)
async def post_ticket(
    body: NewTicket,
    user: User,
    mediator: MediatorDep,
    response: Response,
    request_id: RequestId = None,
) -> dict[str, int]:
    """Open a ticket; the ``Consistency-Token`` header lets the client read it back."""
    receipt = Receipt()
    command = OpenTicket(reporter=user, title=body.title)
    ticket_id = await mediator.send(command, correlation_id=request_id, receipt=receipt)
    response.headers["Consistency-Token"] = str(receipt.token)
    response.headers["Location"] = f"/tickets/{ticket_id}"
    return {"ticket_id": ticket_id}


@router.post("/tickets/{ticket_id}/close", status_code=status.HTTP_204_NO_CONTENT)
async def post_close(ticket_id: int, mediator: MediatorDep, response: Response) -> None:
    """Close a ticket (409 if it is not open)."""
    receipt = Receipt()
    await mediator.send(CloseTicket(ticket_id=ticket_id), receipt=receipt)
    response.headers["Consistency-Token"] = str(receipt.token)


@router.get("/tickets/{ticket_id}")
async def read_ticket(
    ticket_id: int,
    mediator: MediatorDep,
    token: Annotated[int | None, Header(alias="Consistency-Token")] = None,
) -> TicketView:
    """A ticket; with the token of the client's last write, as fresh as that write."""
    consistency = AtLeast(token, timeout=CONSISTENCY_TIMEOUT) if token is not None else None
    ticket = await mediator.ask(GetTicket(ticket_id=ticket_id), consistency=consistency)
    if ticket is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such ticket")
    return ticket


# --8<-- [end:routes]


# --8<-- [start:lifespan]
def create_app(data_dir: Path) -> FastAPI:
    """Build the app; the mediator and the projection worker live as long as it runs."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        write_db = async_sqlite_engine(data_dir / "write.db")  # commands (aiosqlite)
        read_db = async_sqlite_engine(data_dir / "read.db", immediate=False)  # queries
        async with write_db.begin() as connection:
            await connection.run_sync(write_metadata.create_all)
        await acreate_event_log(write_db)
        event_log = EventLog(event_types)

        # The projection engine is synchronous; the async classes run it in threads.
        engine = ProjectionEngine(
            event_log=event_log,
            write_engine=sqlite_engine(data_dir / "write.db"),
            read_engine=sqlite_engine(data_dir / "read.db"),
            projections=[projection],
            write_metadata=write_metadata,
        )
        engine.setup()
        worker = AsyncProjectionWorker(engine)

        mediator = AsyncMediator(
            registry,
            middleware=[
                AsyncConsistencyMiddleware(engine),  # queries: wait for AtLeast(token)
                AsyncProjectionMiddleware(engine, worker),  # commands: wake the worker
                AsyncTransactionMiddleware(async_sessionmaker(write_db), event_log),
            ],
            resolver=Dependencies({"read_db": read_db}),
        )
        mediator.freeze()  # fail at start-up, not on the first request
        app.state.mediator = mediator
        async with worker:  # started here, stopped (after its batch) at shutdown
            yield
        engine.close()
        engine.write_engine.dispose()
        engine.read_engine.dispose()
        await write_db.dispose()
        await read_db.dispose()

    app = FastAPI(lifespan=lifespan)
    app.add_exception_handler(TicketNotOpenError, not_open)
    app.add_exception_handler(ConsistencyTimeoutError, not_caught_up)
    app.include_router(router)
    return app


# --8<-- [end:lifespan]


def app_from_env() -> FastAPI:
    """The app for ``uvicorn --factory``: the data directory comes from ``DATA_DIR``."""
    return create_app(Path(os.environ.get("DATA_DIR", "data")))
