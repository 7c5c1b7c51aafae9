"""Quickstart: define, register and dispatch a command and a query (asynchronous)."""

import asyncio

from cqrs_kit import AsyncMediator, Command, Query, Registry

users: dict[int, str] = {}


class CreateUser(Command[int]):
    """Create a user; await send() returns the new user's id."""

    name: str


class GetUserName(Query[str | None]):
    """Get a user's name; await ask() returns it, or None."""

    user_id: int


registry = Registry()


@registry.handles(CreateUser)
async def create_user(command: CreateUser) -> int:
    """Store the user."""
    user_id = len(users) + 1
    users[user_id] = command.name
    return user_id


@registry.handles(GetUserName)
async def get_user_name(query: GetUserName) -> str | None:
    """Read the user's name."""
    return users.get(query.user_id)


async def main() -> None:
    """Dispatch a command, then a query."""
    mediator = AsyncMediator(registry)
    user_id = await mediator.send(CreateUser(name="Grace"))
    print(f"created user {user_id}")
    print(f"user {user_id} is {await mediator.ask(GetUserName(user_id=user_id))}")


if __name__ == "__main__":
    asyncio.run(main())
