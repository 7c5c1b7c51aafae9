"""Quickstart: define, register and dispatch a command and a query (synchronous)."""

from cqrs_kit import Command, Mediator, Query, Registry

users: dict[int, str] = {}


class CreateUser(Command[int]):
    """Create a user; send() returns the new user's id."""

    name: str


class GetUserName(Query[str | None]):
    """Get a user's name; ask() returns it, or None."""

    user_id: int


registry = Registry()


@registry.handles(CreateUser)
def create_user(command: CreateUser) -> int:
    """Store the user."""
    user_id = len(users) + 1
    users[user_id] = command.name
    return user_id


@registry.handles(GetUserName)
def get_user_name(query: GetUserName) -> str | None:
    """Read the user's name."""
    return users.get(query.user_id)


mediator = Mediator(registry)
user_id = mediator.send(CreateUser(name="Ada"))
print(f"created user {user_id}")
print(f"user {user_id} is {mediator.ask(GetUserName(user_id=user_id))}")
