"""Getting started, step 1: a command, a query, their handlers and a mediator.

Shown in docs/getting-started.md; tests/docs/test_tutorial.py runs it and checks what it
prints. Run it with ``python docs/examples/tutorial_1_mediator.py``. Everything is in
memory: the database comes in step 2.
"""

from pydantic import BaseModel, ValidationError

from cqrs_kit import Command, Mediator, MessageKindError, Query, Registry


# --8<-- [start:messages]
class TaskView(BaseModel):
    """What a reader sees of a task."""

    task_id: int
    board: str
    title: str


class AddTask(Command[int]):
    """Add a task to a board; ``send()`` returns the new task's id."""

    board: str
    title: str


class GetTask(Query[TaskView | None]):
    """One task, or ``None`` if there is no such task."""

    task_id: int


# --8<-- [end:messages]

# --8<-- [start:handlers]
tasks: dict[int, TaskView] = {}  # a stand-in for the database of step 2

registry = Registry()


@registry.handles(AddTask)
def add_task(command: AddTask) -> int:
    """Store the task and return its id."""
    task_id = len(tasks) + 1
    tasks[task_id] = TaskView(task_id=task_id, board=command.board, title=command.title)
    return task_id


@registry.handles(GetTask)
def get_task(query: GetTask) -> TaskView | None:
    """Read the task."""
    return tasks.get(query.task_id)


# --8<-- [end:handlers]


def main() -> None:
    """Dispatch a command and two queries, then show two mistakes the toolkit catches."""
    # --8<-- [start:dispatch]
    mediator = Mediator(registry)

    task_id = mediator.send(AddTask(board="home", title="Buy milk"))  # an int
    print(f"added task {task_id}")
    print(mediator.ask(GetTask(task_id=task_id)))  # a TaskView | None
    print(mediator.ask(GetTask(task_id=99)))
    # --8<-- [end:dispatch]

    # --8<-- [start:mistakes]
    try:
        AddTask(board="home")  # a message validates its fields when it is made
    except ValidationError as error:
        print(f"ValidationError: {error.errors()[0]['loc']} {error.errors()[0]['msg']}")
    try:
        mediator.ask(AddTask(board="home", title="Walk the dog"))  # type: ignore[arg-type]
    except MessageKindError as error:
        print(f"MessageKindError: {error}")
    # --8<-- [end:mistakes]


if __name__ == "__main__":
    main()
