"""Getting started, step 2: the write side, with a transaction per command and events.

Shown in docs/getting-started.md; tests/docs/test_tutorial.py runs it and checks what it
prints. Run it with ``python docs/examples/tutorial_2_write_side.py``: it works in a SQLite
file in a temporary directory and deletes it afterwards.
"""

import tempfile
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import sessionmaker

from cqrs_kit import Command, Event, EventTypes, Mediator, Registry
from cqrs_kit.eventlog import EventLog, create_event_log
from cqrs_kit.middleware.transaction import SqlAlchemyUnitOfWork, TransactionMiddleware
from cqrs_kit.persistence import sqlite_engine

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


def main(directory: Path) -> None:
    """Add and complete tasks through the mediator, then print the event log."""
    # --8<-- [start:wiring]
    write_db = sqlite_engine(directory / "write.db")  # SQLite set up for writers (WAL)
    write_metadata.create_all(write_db)
    create_event_log(write_db)  # the event_log table, in the write database
    event_log = EventLog(event_types)

    mediator = Mediator(
        registry,
        middleware=[TransactionMiddleware(sessionmaker(write_db), event_log)],
    )
    # --8<-- [end:wiring]

    # --8<-- [start:send]
    ids = [
        mediator.send(AddTask(board="home", title="Buy milk")),
        mediator.send(AddTask(board="home", title="Water the plants")),
        mediator.send(AddTask(board="work", title="Write the report")),
    ]
    print(f"added tasks {ids}")
    mediator.send(CompleteTask(task_id=1))
    try:
        mediator.send(CompleteTask(task_id=1))  # done already: rolled back, nothing recorded
    except UnknownTaskError as error:
        print(f"UnknownTaskError: {error}")

    with write_db.connect() as connection:
        for event in event_log.read(connection, after=0):
            print(f"{event.position}: {event.event_type} {event.payload}")
    # --8<-- [end:send]
    write_db.dispose()


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        main(Path(tmp))
