"""Getting started, step 3: a projection keeps a read model current; a query reads it.

The write side is step 2's, unchanged. Shown in docs/getting-started.md;
tests/docs/test_tutorial.py runs it and checks what it prints. Run it with
``python docs/examples/tutorial_3_read_model.py``: it works in two SQLite files (the write
database and the read database) in a temporary directory and deletes them afterwards.
"""

import tempfile
from pathlib import Path

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.orm import sessionmaker

from cqrs_kit import Command, Dependencies, Event, EventTypes, Mediator, Query, Registry
from cqrs_kit.eventlog import EventLog, create_event_log
from cqrs_kit.middleware.projection import ProjectionMiddleware
from cqrs_kit.middleware.transaction import SqlAlchemyUnitOfWork, TransactionMiddleware
from cqrs_kit.persistence import sqlite_engine
from cqrs_kit.projections import Projection, ProjectionContext, ProjectionEngine, Strategy

# --8<-- [start:write_model]
write_metadata = sa.MetaData()  # the write model: normalized, written by command handlers
tasks = sa.Table(
    "tasks",
    write_metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("board", sa.String(50), nullable=False),
    sa.Column("title", sa.String(200), nullable=False),
    sa.Column("done", sa.Boolean, nullable=False, default=False),
)
# --8<-- [end:write_model]

# --8<-- [start:messages]
event_types = EventTypes()  # stable names for events: the log stores names, not import paths


@event_types.define("task.added", stream_type="task")
class TaskAdded(Event):
    """A task was added to a board."""

    task_id: int
    board: str
    title: str


@event_types.define("task.completed", stream_type="task")
class TaskCompleted(Event):
    """A task was done."""

    task_id: int
    board: str


class AddTask(Command[int]):
    """Add a task to a board; ``send()`` returns the new task's id."""

    board: str
    title: str


class CompleteTask(Command[None]):
    """Mark a task as done."""

    task_id: int


class UnknownTaskError(LookupError):
    """A domain error: there is no such task, or it is done already."""


# --8<-- [end:messages]

# --8<-- [start:handlers]
registry = Registry()


@registry.handles(AddTask)
def add_task(command: AddTask, *, uow: SqlAlchemyUnitOfWork) -> int:
    """Insert the task and record ``TaskAdded``, in the command's transaction."""
    insert = sa.insert(tasks).values(board=command.board, title=command.title, done=False)
    task_id = int(uow.session.execute(insert.returning(tasks.c.id)).scalar_one())
    uow.record(
        TaskAdded(task_id=task_id, board=command.board, title=command.title), stream_id=task_id
    )
    return task_id


@registry.handles(CompleteTask)
def complete_task(command: CompleteTask, *, uow: SqlAlchemyUnitOfWork) -> None:
    """Mark the task done and record ``TaskCompleted``."""
    complete = (
        sa.update(tasks)
        .where(tasks.c.id == command.task_id, tasks.c.done.is_(False))
        .values(done=True)
        .returning(tasks.c.board)
    )
    board = uow.session.execute(complete).scalar_one_or_none()
    if board is None:
        msg = f"no open task {command.task_id}"
        raise UnknownTaskError(msg)  # the transaction rolls back; the caller gets this error
    uow.record(TaskCompleted(task_id=command.task_id, board=board), stream_id=command.task_id)


# --8<-- [end:handlers]

# --8<-- [start:read_model]
read_metadata = sa.MetaData()  # the read model: its own tables, in its own database
board_summary = sa.Table(
    "board_summary",
    read_metadata,
    sa.Column("board", sa.String(50), primary_key=True),
    sa.Column("open_tasks", sa.Integer, nullable=False),
    sa.Column("done_tasks", sa.Integer, nullable=False),
)
# --8<-- [end:read_model]

# --8<-- [start:projection]
summary = Projection("board_summary", tables=[board_summary], strategy=Strategy.SYNC)


@summary.on(TaskAdded)
def count_added(event: TaskAdded, ctx: ProjectionContext) -> None:
    """One more open task on the board (the board's first task creates its row)."""
    row = board_summary.c
    updated = ctx.connection.execute(
        sa.update(board_summary)
        .where(row.board == event.board)
        .values(open_tasks=row.open_tasks + 1)
    )
    if updated.rowcount == 0:
        ctx.connection.execute(
            sa.insert(board_summary).values(board=event.board, open_tasks=1, done_tasks=0)
        )


@summary.on(TaskCompleted)
def count_completed(event: TaskCompleted, ctx: ProjectionContext) -> None:
    """One task moves from open to done."""
    row = board_summary.c
    ctx.connection.execute(
        sa.update(board_summary)
        .where(row.board == event.board)
        .values(open_tasks=row.open_tasks - 1, done_tasks=row.done_tasks + 1)
    )


# --8<-- [end:projection]


# --8<-- [start:query]
class BoardView(BaseModel):
    """How a board is doing."""

    board: str
    open_tasks: int
    done_tasks: int


class GetBoard(Query[BoardView | None]):
    """A board's task counts, or ``None`` for a board without tasks."""

    board: str


@registry.handles(GetBoard)
def get_board(query: GetBoard, *, read_db: sa.Engine) -> BoardView | None:
    """Read one row of the read model: no join, no count over the tasks."""
    select = sa.select(board_summary).where(board_summary.c.board == query.board)
    with read_db.connect() as connection:
        row = connection.execute(select).first()
    return None if row is None else BoardView.model_validate(row._mapping)


# --8<-- [end:query]


def main(directory: Path) -> None:
    """Wire both sides, add and complete tasks, read the boards, then rebuild."""
    # --8<-- [start:wiring]
    write_db = sqlite_engine(directory / "write.db")
    read_db = sqlite_engine(directory / "read.db")  # the read model's own database
    write_metadata.create_all(write_db)
    create_event_log(write_db)
    event_log = EventLog(event_types)

    engine = ProjectionEngine(
        event_log=event_log,
        write_engine=write_db,
        read_engine=read_db,
        projections=[summary],
        write_metadata=write_metadata,  # refuses a projection that writes write-model tables
    )
    engine.setup()  # creates board_summary and the checkpoint table in the read database

    mediator = Mediator(
        registry,
        middleware=[
            ProjectionMiddleware(engine),  # after the commit: catches sync projections up
            TransactionMiddleware(sessionmaker(write_db), event_log),  # innermost
        ],
        resolver=Dependencies({"read_db": read_db}),  # what get_board's read_db is
    )
    # --8<-- [end:wiring]

    # --8<-- [start:run]
    for board, title in [("home", "Buy milk"), ("home", "Water the plants"), ("work", "Report")]:
        mediator.send(AddTask(board=board, title=title))
    mediator.send(CompleteTask(task_id=1))

    print(mediator.ask(GetBoard(board="home")))  # current as soon as send() returned
    print(mediator.ask(GetBoard(board="work")))
    print(mediator.ask(GetBoard(board="garden")))
    for status in engine.status():
        print(f"{status.name}: checkpoint {status.checkpoint} of {status.head}, {status.state}")
    # --8<-- [end:run]

    # --8<-- [start:rebuild]
    applied = engine.rebuild("board_summary")  # empty the table, replay the whole log
    print(f"rebuilt board_summary from {applied} events")
    print(mediator.ask(GetBoard(board="home")))
    # --8<-- [end:rebuild]
    engine.close()
    write_db.dispose()
    read_db.dispose()


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        main(Path(tmp))
