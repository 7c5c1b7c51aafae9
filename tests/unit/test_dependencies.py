"""Handler dependencies: the default ``Dependencies`` resolver, ``Factory``, custom resolvers."""

import time
from typing import Any

import pytest

from cqrs_kit import (
    AsyncMediator,
    Command,
    ConfigurationError,
    Dependencies,
    DispatchContext,
    Factory,
    HandlerNotFoundError,
    HandlerSpec,
    Mediator,
    Registry,
    UnresolvableDependencyError,
)


class Session:
    pass


class Clock:
    pass


class CreateOrder(Command[int]):
    user_id: int = 1


MEDIATORS = [Mediator, AsyncMediator]


async def dispatch(mediator: Mediator | AsyncMediator, command: CreateOrder) -> Any:
    """Send through either twin."""
    if isinstance(mediator, AsyncMediator):
        return await mediator.send(command)
    return mediator.send(command)


# -- lookup ------------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("mediator_type", MEDIATORS)
async def test_dependency_is_resolved_by_parameter_name(mediator_type: type[Any]) -> None:
    session = Session()
    seen = []
    mediator = mediator_type(resolver=Dependencies({"session": session}))

    @mediator.handles(CreateOrder)
    def create_order(command: CreateOrder, *, session) -> int:
        seen.append(session)
        return 1

    await dispatch(mediator, CreateOrder())

    assert seen == [session]
    assert seen[0] is session, "a plain value must be passed as is"


@pytest.mark.asyncio
@pytest.mark.parametrize("mediator_type", MEDIATORS)
async def test_dependency_is_resolved_by_type_annotation(mediator_type: type[Any]) -> None:
    session = Session()
    seen = []
    mediator = mediator_type(resolver=Dependencies({Session: session}))

    @mediator.handles(CreateOrder)
    def create_order(command: CreateOrder, *, db: Session) -> int:
        seen.append(db)
        return 1

    await dispatch(mediator, CreateOrder())

    assert seen[0] is session


@pytest.mark.asyncio
async def test_coroutine_handler_dependencies_are_resolved() -> None:
    session = Session()
    mediator = AsyncMediator(resolver=Dependencies({Session: session, "clock": Factory(Clock)}))

    @mediator.handles(CreateOrder)
    async def create_order(command: CreateOrder, *, db: Session, clock: Clock) -> int:
        assert db is session
        assert isinstance(clock, Clock)
        return 1

    assert await mediator.send(CreateOrder()) == 1


def test_name_wins_over_type() -> None:
    by_name, by_type = Session(), Session()
    seen = []
    mediator = Mediator(resolver=Dependencies({Session: by_type, "session": by_name}))

    @mediator.handles(CreateOrder)
    def create_order(command: CreateOrder, *, session: Session) -> int:
        seen.append(session)
        return 1

    mediator.send(CreateOrder())

    assert seen[0] is by_name


def test_positional_or_keyword_parameters_after_the_message_are_dependencies_too() -> None:
    mediator = Mediator(resolver=Dependencies({"clock": 5}))

    @mediator.handles(CreateOrder)
    def create_order(command: CreateOrder, clock: int) -> int:
        return clock

    assert mediator.send(CreateOrder()) == 5


def test_entries_added_with_setitem_are_used() -> None:
    resolver = Dependencies()
    resolver["clock"] = 7
    mediator = Mediator(resolver=resolver)

    @mediator.handles(CreateOrder)
    def create_order(command: CreateOrder, *, clock: int) -> int:
        return clock

    assert mediator.send(CreateOrder()) == 7


def test_resolver_entries_are_copied() -> None:
    entries: dict[str | type, object] = {"clock": 1}
    resolver = Dependencies(entries)
    entries["clock"] = 2
    mediator = Mediator(resolver=resolver)

    @mediator.handles(CreateOrder)
    def create_order(command: CreateOrder, *, clock: int) -> int:
        return clock

    assert mediator.send(CreateOrder()) == 1


# -- factories ---------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("mediator_type", MEDIATORS)
async def test_factory_is_called_once_per_dispatch(mediator_type: type[Any]) -> None:
    made: list[Session] = []

    def make_session() -> Session:
        made.append(Session())
        return made[-1]

    received: list[Session] = []
    mediator = mediator_type(resolver=Dependencies({"session": Factory(make_session)}))

    @mediator.handles(CreateOrder)
    def create_order(command: CreateOrder, *, session: Session) -> int:
        received.append(session)
        return 1

    for _ in range(3):
        await dispatch(mediator, CreateOrder())

    assert len(made) == 3, f"expected one factory call per dispatch, got {len(made)}"
    assert received == made, "each dispatch must get the value its own factory call made"


@pytest.mark.asyncio
@pytest.mark.parametrize("mediator_type", MEDIATORS)
async def test_factory_taking_ctx_receives_the_dispatch_context(mediator_type: type[Any]) -> None:
    factory_contexts: list[DispatchContext] = []
    handler_contexts: list[DispatchContext] = []

    def make_session(ctx: DispatchContext) -> Session:
        factory_contexts.append(ctx)
        return Session()

    mediator = mediator_type(resolver=Dependencies({"session": Factory(make_session)}))

    @mediator.handles(CreateOrder)
    def create_order(command: CreateOrder, ctx: DispatchContext, *, session: Session) -> int:
        handler_contexts.append(ctx)
        return 1

    command = CreateOrder()
    await dispatch(mediator, command)

    assert len(factory_contexts) == 1
    assert isinstance(factory_contexts[0], DispatchContext)
    assert factory_contexts[0] is handler_contexts[0], "factory and handler share the context"
    assert factory_contexts[0].message is command


def test_factories_and_plain_values_mix() -> None:
    clock = Clock()
    counter = iter(range(100))
    seen: list[tuple[Any, ...]] = []
    resolver = Dependencies(
        {
            Clock: clock,
            "first": Factory(lambda: next(counter)),
            "second": Factory(lambda ctx: ctx.message.user_id),
        }
    )
    mediator = Mediator(resolver=resolver)

    @mediator.handles(CreateOrder)
    def create_order(command: CreateOrder, *, clock: Clock, first: int, second: int) -> int:
        seen.append((clock, first, second))
        return 1

    mediator.send(CreateOrder(user_id=8))
    mediator.send(CreateOrder(user_id=9))

    assert seen == [(clock, 0, 8), (clock, 1, 9)]


def test_factory_refuses_a_non_callable() -> None:
    with pytest.raises(TypeError, match="Factory\\(\\) needs a callable, got 42"):
        Factory(42)  # type: ignore[call-overload]


def test_factory_refuses_a_callable_with_two_required_parameters() -> None:
    with pytest.raises(TypeError, match="takes no argument or one"):
        Factory(lambda ctx, other: None)  # type: ignore[arg-type,misc]


def test_factory_with_only_optional_parameters_is_called_without_arguments() -> None:
    factory = Factory(lambda value=3: value)

    assert factory(DispatchContext(CreateOrder())) == 3


@pytest.mark.parametrize("builtin", [time.time, dict, object], ids=["time.time", "dict", "object"])
def test_factory_accepts_builtins_without_a_signature(builtin: Any) -> None:
    # Factory(time.time) is the example in the Dependencies docstring; some builtins have no
    # introspectable signature, and they take no argument.
    factory = Factory(builtin)

    assert isinstance(factory(DispatchContext(CreateOrder())), type(builtin()))


# -- missing dependencies --------------------------------------------------------------


@pytest.mark.parametrize("mediator_type", MEDIATORS)
def test_missing_dependency_raises_at_registration_not_at_dispatch(mediator_type: type[Any]):
    mediator = mediator_type(resolver=Dependencies({"clock": Clock()}))

    def create_order(command: CreateOrder, *, session: Session) -> int:
        return 1

    with pytest.raises(UnresolvableDependencyError) as excinfo:
        mediator.register(CreateOrder, create_order)

    error = excinfo.value
    assert isinstance(error, ConfigurationError)
    assert isinstance(error, LookupError), "UnresolvableDependencyError must be a LookupError"
    assert error.handler is create_order
    assert error.parameter == "session"
    text = str(error)
    assert "create_order needs the dependency 'session'" in text
    assert "Dependencies({'session' or Session: ...})" in text, "the message must show the fix"
    assert mediator.registry.handler_for(CreateOrder) is None, "a refused handler is not kept"


def test_missing_dependency_of_a_registered_handler_raises_when_the_mediator_is_created():
    registry = Registry()

    @registry.handles(CreateOrder)
    def create_order(command: CreateOrder, *, session: Session) -> int:
        return 1

    with pytest.raises(UnresolvableDependencyError, match="needs the dependency 'session'"):
        Mediator(registry)
    Mediator(registry, resolver=Dependencies({Session: Session()}))


def test_missing_class_handler_dependency_raises_at_registration() -> None:
    class CreateOrderHandler:
        def __init__(self, session: Session) -> None:
            self.session = session

        def __call__(self, command: CreateOrder) -> int:
            return 1

    mediator = Mediator()

    with pytest.raises(UnresolvableDependencyError) as excinfo:
        mediator.register(CreateOrder, CreateOrderHandler)

    assert excinfo.value.parameter == "session"
    with pytest.raises(HandlerNotFoundError):
        mediator.send(CreateOrder())


@pytest.mark.asyncio
@pytest.mark.parametrize("mediator_type", MEDIATORS)
async def test_parameter_with_a_default_may_be_missing(mediator_type: type[Any]) -> None:
    mediator = mediator_type()

    @mediator.handles(CreateOrder)
    def create_order(command: CreateOrder, *, retries: int = 3) -> int:
        return retries

    assert await dispatch(mediator, CreateOrder()) == 3


def test_parameter_with_a_default_uses_the_resolver_when_it_has_an_entry() -> None:
    mediator = Mediator(resolver=Dependencies({"retries": 5}))

    @mediator.handles(CreateOrder)
    def create_order(command: CreateOrder, *, retries: int = 3) -> int:
        return retries

    assert mediator.send(CreateOrder()) == 5


# -- the resolver protocol -------------------------------------------------------------


class RecordingResolver:
    """A custom resolver: ``bind`` once per handler, the builder once per dispatch."""

    def __init__(self) -> None:
        self.bound: list[HandlerSpec] = []
        self.built = 0

    def bind(self, spec: HandlerSpec) -> Any:
        self.bound.append(spec)

        def build(ctx: DispatchContext) -> dict[str, Any]:
            self.built += 1
            return {name: f"{name}-{self.built}" for name in (d.name for d in spec.dependencies)}

        return build


@pytest.mark.asyncio
@pytest.mark.parametrize("mediator_type", MEDIATORS)
async def test_custom_resolver_binds_once_per_handler_and_builds_once_per_dispatch(
    mediator_type: type[Any],
) -> None:
    resolver = RecordingResolver()
    mediator = mediator_type(resolver=resolver)

    @mediator.handles(CreateOrder)
    def create_order(command: CreateOrder, *, session: str) -> Any:
        return session

    assert len(resolver.bound) == 1, "bind must run at registration"
    assert resolver.bound[0].handler is create_order

    results = [await dispatch(mediator, CreateOrder()) for _ in range(3)]

    assert results == ["session-1", "session-2", "session-3"]
    assert len(resolver.bound) == 1, "bind must not run per dispatch"


def test_handler_without_dependencies_is_still_bound_at_registration() -> None:
    resolver = RecordingResolver()
    mediator = Mediator(resolver=resolver)

    mediator.register(CreateOrder, lambda command: 1)

    assert len(resolver.bound) == 1
