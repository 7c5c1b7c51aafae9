"""The dispatch cases both benchmark runners measure: one definition, so the figures agree.

Every case answers the same query, ``GetNumber(n=1)``, with a handler that reads one field
(and, for the dependency cases, one attribute of its dependency). The "direct" baselines
call (or await) that handler themselves, so "mediated minus direct" is what the mediator
adds to a call, nothing else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cqrs_kit import AsyncMediator, Dependencies, Mediator, Query, Registry

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

try:
    from dependency_injector import containers, providers

    from cqrs_kit.integrations.dependency_injector import ContainerResolver
except ImportError as exc:  # the `di` extra, or the integration module, is missing
    DI_SKIP_REASON: str | None = (
        f"dependency-injector integration unavailable ({exc}); install cqrs-kit[di]"
    )
else:
    DI_SKIP_REASON = None


class GetNumber(Query[int]):
    n: int


QUERY = GetNumber(n=1)


class Repo:
    """A stand-in dependency: one attribute read per call."""

    def __init__(self) -> None:
        self.offset = 1


REPO = Repo()


def handle(query: GetNumber) -> int:
    return query.n


def handle_with_repo(query: GetNumber, *, repo: Repo) -> int:
    return query.n + repo.offset


async def ahandle(query: GetNumber) -> int:
    return query.n


async def ahandle_with_repo(query: GetNumber, *, repo: Repo) -> int:
    return query.n + repo.offset


def noop(message: Any, ctx: Any, call_next: Callable[[], Any]) -> Any:
    return call_next()


async def anoop(message: Any, ctx: Any, call_next: Callable[[], Awaitable[Any]]) -> Any:
    return await call_next()


def _registry(handler: Callable[..., Any]) -> Registry:
    registry = Registry()
    registry.register(GetNumber, handler)
    return registry


def _container_resolver() -> Any:
    if DI_SKIP_REASON is not None:
        raise RuntimeError(DI_SKIP_REASON)

    class Container(containers.DeclarativeContainer):
        repo = providers.Singleton(Repo)

    return ContainerResolver(Container())


def _ready(mediator: Any) -> Any:
    mediator.freeze()
    return mediator


def sync_mediator(case: str) -> Mediator:
    """Build the ``Mediator`` for a case: bare, mw1, mw3, dependencies, container."""
    if case == "bare":
        return _ready(Mediator(_registry(handle)))
    if case in ("mw1", "mw3"):
        return _ready(Mediator(_registry(handle), middleware=[noop] * int(case[-1])))
    if case == "dependencies":
        resolver = Dependencies({"repo": REPO})
        return _ready(Mediator(_registry(handle_with_repo), resolver=resolver))
    if case == "container":
        resolver = _container_resolver()
        return _ready(Mediator(_registry(handle_with_repo), resolver=resolver))
    raise ValueError(case)


def async_mediator(case: str) -> AsyncMediator:
    """Build the ``AsyncMediator`` for a case (see :func:`sync_mediator`)."""
    if case == "bare":
        return _ready(AsyncMediator(_registry(ahandle)))
    if case in ("mw1", "mw3"):
        return _ready(AsyncMediator(_registry(ahandle), middleware=[anoop] * int(case[-1])))
    if case == "dependencies":
        resolver = Dependencies({"repo": REPO})
        return _ready(AsyncMediator(_registry(ahandle_with_repo), resolver=resolver))
    if case == "container":
        resolver = _container_resolver()
        return _ready(AsyncMediator(_registry(ahandle_with_repo), resolver=resolver))
    raise ValueError(case)


# Async cases await BATCH calls per event-loop round trip, so the cost of
# run_until_complete (task creation, loop bookkeeping) is spread over BATCH calls instead of
# dominating. The loops are written out, not built from a lambda, so that each iteration
# costs exactly one call of what is measured.
BATCH = 1000


async def direct_batch(batch: int = BATCH) -> None:
    for _ in range(batch):
        await ahandle(QUERY)


async def direct_batch_with_repo(batch: int = BATCH) -> None:
    for _ in range(batch):
        await ahandle_with_repo(QUERY, repo=REPO)


async def mediated_batch(mediator: AsyncMediator, batch: int = BATCH) -> None:
    for _ in range(batch):
        await mediator.ask(QUERY)
