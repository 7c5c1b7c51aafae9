"""ContainerResolver, DispatchScoped and DispatchContextProvider over a real container."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

import pytest
from dependency_injector import containers, providers

from cqrs_kit import (
    AsyncMediator,
    Command,
    CqrsKitError,
    DispatchContext,
    Mediator,
    Query,
    Registry,
    UnresolvableDependencyError,
)
from cqrs_kit.integrations.dependency_injector import (
    ContainerResolver,
    DispatchContextProvider,
    DispatchScoped,
    OutsideDispatchError,
)

# -- fakes -------------------------------------------------------------------------------


class FakeSession:
    """Session-like: remembers how often it was closed."""

    def __init__(self, closed: list[FakeSession]) -> None:
        self._closed = closed
        self.close_calls = 0

    @property
    def closed(self) -> bool:
        return self.close_calls > 0

    def close(self) -> None:
        self.close_calls += 1
        self._closed.append(self)


class FakeAsyncSession(FakeSession):
    """AsyncSession-like: ``close()`` is a coroutine."""

    async def close(self) -> None:
        await asyncio.sleep(0)
        super().close()


class FakeConnection:
    pass


class FakeUnitOfWork(FakeSession):
    def __init__(self, connection: FakeConnection, closed: list[FakeSession]) -> None:
        super().__init__(closed)
        self.connection = connection


class FakeOrders:
    def __init__(self, session: FakeSession) -> None:
        self.session = session


class FakeClock:
    pass


class IdSource:
    pass


class Audit:
    def __init__(self, ctx: DispatchContext) -> None:
        self.ctx = ctx


async def open_connection() -> FakeConnection:
    await asyncio.sleep(0)
    return FakeConnection()


class Container(containers.DeclarativeContainer):
    config = providers.Configuration()
    page_size = config.page_size
    greeting = providers.Object("hello")
    clock = providers.Singleton(FakeClock)
    ids = providers.Factory(IdSource)
    closed_sessions = providers.ThreadSafeSingleton(list)
    session = DispatchScoped(FakeSession, closed=closed_sessions)
    async_session = DispatchScoped(FakeAsyncSession, closed=closed_sessions)
    orders = providers.Factory(FakeOrders, session=session)
    dispatch = DispatchContextProvider()
    audit = providers.Factory(Audit, ctx=dispatch)
    connection = providers.Coroutine(open_connection)
    unit_of_work = DispatchScoped(FakeUnitOfWork, connection=connection, closed=closed_sessions)
    mediator = providers.Dependency()


# -- messages ----------------------------------------------------------------------------


class Probe(Command[Any]):
    """Returns whatever its handler saw."""

    label: str = ""


class AskProbe(Query[Any]):
    pass


class Inner(Command[FakeSession]):
    pass


class Outer(Command[tuple[FakeSession, FakeSession]]):
    pass


@pytest.fixture
def container() -> Container:
    container = Container()
    container.config.from_dict({"page_size": 20})
    return container


@pytest.fixture
def registry() -> Registry:
    return Registry()


# -- behaviour shared by Mediator and AsyncMediator (plain handlers run on both) ---------


class ContainerResolverContract:
    mediator_type: ClassVar[type[Mediator] | type[AsyncMediator]]

    def dispatch(self, mediator: Any, message: Any, **options: Any) -> Any:
        raise NotImplementedError

    def mediator(self, registry: Registry, container: Container, **options: Any) -> Any:
        return self.mediator_type(registry, resolver=ContainerResolver(container, **options))

    def test_resolves_function_parameters_by_provider_name(self, container, registry):
        @registry.handles(Probe)
        def handle(command: Probe, clock: FakeClock, greeting: str, page_size: int) -> Any:
            return clock, greeting, page_size

        clock, greeting, page_size = self.dispatch(self.mediator(registry, container), Probe())

        assert clock is container.clock()
        assert greeting == "hello"
        assert page_size == 20

    def test_resolves_class_handler_init_parameters(self, container, registry):
        @registry.handles(AskProbe)
        class Handler:
            def __init__(self, orders: FakeOrders, clock: FakeClock) -> None:
                self.orders = orders
                self.clock = clock

            def __call__(self, query: AskProbe) -> Any:
                return self.orders, self.clock

        orders, clock = self.dispatch(self.mediator(registry, container), AskProbe())

        assert isinstance(orders, FakeOrders)
        assert clock is container.clock()

    def test_overrides_map_parameters_to_providers_and_win_over_the_container(
        self, container, registry
    ):
        @registry.handles(Probe)
        def handle(command: Probe, repo: FakeOrders, greeting: str) -> Any:
            return repo, greeting

        mediator = self.mediator(
            registry,
            container,
            overrides={"repo": container.orders, "greeting": providers.Object("hi")},
        )
        repo, greeting = self.dispatch(mediator, Probe())

        assert isinstance(repo, FakeOrders)
        assert greeting == "hi"

    def test_parameter_with_a_default_needs_no_provider(self, container, registry):
        @registry.handles(Probe)
        def handle(command: Probe, retries: int = 3, greeting: str = "unused") -> Any:
            return retries, greeting

        assert self.dispatch(self.mediator(registry, container), Probe()) == (3, "hello")

    def test_provider_overridden_after_registration_is_used(self, container, registry):
        @registry.handles(Probe)
        def handle(command: Probe, clock: FakeClock) -> Any:
            return clock

        mediator = self.mediator(registry, container)
        frozen_clock = FakeClock()
        container.clock.override(providers.Object(frozen_clock))

        assert self.dispatch(mediator, Probe()) is frozen_clock

    def test_singleton_is_shared_and_factory_is_new_per_dispatch(self, container, registry):
        @registry.handles(Probe)
        def handle(command: Probe, clock: FakeClock, ids: IdSource) -> Any:
            return clock, ids

        mediator = self.mediator(registry, container)
        first = self.dispatch(mediator, Probe())
        second = self.dispatch(mediator, Probe())

        assert first[0] is second[0], "a Singleton must be shared across dispatches"
        assert first[1] is not second[1], "a Factory must make a new object per dispatch"

    def test_dispatch_scoped_object_is_shared_within_a_dispatch(self, container, registry):
        @registry.handles(AskProbe)
        class Handler:
            def __init__(self, orders: FakeOrders, session: FakeSession) -> None:
                self.orders = orders
                self.session = session

            def __call__(self, query: AskProbe) -> Any:
                assert not self.session.closed, "closed before the dispatch ended"
                return self.orders.session, self.session, container.session()

        repository_session, handler_session, again = self.dispatch(
            self.mediator(registry, container), AskProbe()
        )

        assert repository_session is handler_session is again

    def test_dispatch_scoped_object_is_new_per_dispatch_and_closed_once_at_the_end(
        self, container, registry
    ):
        @registry.handles(Probe)
        def handle(command: Probe, session: FakeSession, orders: FakeOrders) -> Any:
            assert not session.closed, "closed before the dispatch ended"
            return session

        mediator = self.mediator(registry, container)
        first = self.dispatch(mediator, Probe())
        second = self.dispatch(mediator, Probe())

        assert first is not second
        assert (first.close_calls, second.close_calls) == (1, 1)
        assert container.closed_sessions() == [first, second]

    def test_dispatch_scoped_object_is_closed_when_the_handler_raises(self, container, registry):
        seen: list[FakeSession] = []
        error = ValueError("out of stock")

        @registry.handles(Probe)
        def handle(command: Probe, session: FakeSession) -> Any:
            seen.append(session)
            raise error

        with pytest.raises(ValueError, match="out of stock") as caught:
            self.dispatch(self.mediator(registry, container), Probe())

        assert caught.value is error, "the handler's error must reach the caller unwrapped"
        assert seen[0].close_calls == 1

    def test_dispatch_context_provider_gives_the_running_dispatch(self, container, registry):
        @registry.handles(Probe)
        def handle(command: Probe, ctx: DispatchContext, audit: Audit) -> Any:
            return ctx, audit

        ctx, audit = self.dispatch(
            self.mediator(registry, container), Probe(), correlation_id="request-1"
        )

        assert audit.ctx is ctx
        assert audit.ctx.correlation_id == "request-1"


class TestWithMediator(ContainerResolverContract):
    mediator_type = Mediator

    def dispatch(self, mediator: Any, message: Any, **options: Any) -> Any:
        if isinstance(message, Query):
            return mediator.ask(message, **options)
        return mediator.send(message, **options)

    def test_nested_dispatch_shares_the_scoped_object(self, container, registry):
        @registry.handles(Inner)
        def inner(command: Inner, session: FakeSession) -> FakeSession:
            return session

        @registry.handles(Outer)
        def outer(
            command: Outer, session: FakeSession, mediator: Mediator
        ) -> tuple[FakeSession, FakeSession]:
            nested = mediator.send(Inner())
            assert not nested.closed, "closed when the nested dispatch ended"
            return session, nested

        mediator = Mediator(registry, resolver=ContainerResolver(container))
        container.mediator.override(providers.Object(mediator))
        outer_session, inner_session = mediator.send(Outer())

        assert outer_session is inner_session
        assert outer_session.close_calls == 1

    def test_concurrent_threads_never_share_a_scoped_object(self, container, registry):
        workers = 8
        barrier = threading.Barrier(workers)

        @registry.handles(Probe)
        def handle(command: Probe, session: FakeSession) -> Any:
            # Every worker is inside a dispatch, holding its session, before any reads again.
            barrier.wait(timeout=10)
            return session, container.session()

        mediator = Mediator(registry, resolver=ContainerResolver(container))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(lambda _: mediator.send(Probe()), range(200)))

        assert all(first is second for first, second in results), "a dispatch saw two sessions"
        sessions = [first for first, _ in results]
        assert len({id(session) for session in sessions}) == 200, "dispatches shared a session"
        assert all(session.close_calls == 1 for session in sessions)
        assert len(container.closed_sessions()) == 200


class TestWithAsyncMediator(ContainerResolverContract):
    mediator_type = AsyncMediator

    def dispatch(self, mediator: Any, message: Any, **options: Any) -> Any:
        if isinstance(message, Query):
            return asyncio.run(mediator.ask(message, **options))
        return asyncio.run(mediator.send(message, **options))

    @pytest.mark.asyncio
    async def test_resolves_coroutine_handler_parameters(self, container, registry):
        @registry.handles(Probe)
        async def handle(command: Probe, clock: FakeClock, session: FakeSession) -> Any:
            return clock, session

        @registry.handles(AskProbe)
        class Handler:
            def __init__(self, orders: FakeOrders) -> None:
                self.orders = orders

            async def __call__(self, query: AskProbe) -> Any:
                return self.orders

        mediator = AsyncMediator(registry, resolver=ContainerResolver(container))
        clock, session = await mediator.send(Probe())
        orders = await mediator.ask(AskProbe())

        assert clock is container.clock()
        assert session.close_calls == 1
        assert isinstance(orders, FakeOrders)

    @pytest.mark.asyncio
    async def test_nested_dispatch_shares_the_scoped_object(self, container, registry):
        @registry.handles(Inner)
        async def inner(command: Inner, session: FakeSession) -> FakeSession:
            await asyncio.sleep(0)
            return session

        @registry.handles(Outer)
        async def outer(
            command: Outer, session: FakeSession, mediator: AsyncMediator
        ) -> tuple[FakeSession, FakeSession]:
            # Nested dispatches in tasks of their own still belong to this dispatch.
            first, second = await asyncio.gather(mediator.send(Inner()), mediator.send(Inner()))
            assert first is second is session
            assert not session.closed, "closed when a nested dispatch ended"
            return session, first

        mediator = AsyncMediator(registry, resolver=ContainerResolver(container))
        container.mediator.override(providers.Object(mediator))
        outer_session, inner_session = await mediator.send(Outer())

        assert outer_session is inner_session
        assert outer_session.close_calls == 1

    @pytest.mark.asyncio
    async def test_concurrent_tasks_never_share_a_scoped_object(self, container, registry):
        in_flight = 0
        peak = 0

        @registry.handles(Probe)
        async def handle(command: Probe, session: FakeSession) -> Any:
            nonlocal in_flight, peak
            in_flight += 1
            peak = max(peak, in_flight)
            await asyncio.sleep(0)
            again = container.session()
            in_flight -= 1
            return session, again

        mediator = AsyncMediator(registry, resolver=ContainerResolver(container))
        results = await asyncio.gather(*(mediator.send(Probe()) for _ in range(50)))

        assert peak == 50, "the dispatches did not overlap"
        assert all(first is second for first, second in results), "a dispatch saw two sessions"
        sessions = [first for first, _ in results]
        assert len({id(session) for session in sessions}) == 50, "dispatches shared a session"
        assert all(session.close_calls == 1 for session in sessions)

    @pytest.mark.asyncio
    async def test_async_close_is_awaited_at_the_end(self, container, registry):
        @registry.handles(Probe)
        async def handle(command: Probe, async_session: FakeAsyncSession) -> Any:
            return async_session

        mediator = AsyncMediator(registry, resolver=ContainerResolver(container))
        session = await mediator.send(Probe())

        assert session.close_calls == 1

    @pytest.mark.asyncio
    async def test_scoped_object_with_async_dependencies_is_made_once(self, container, registry):
        @registry.handles(Probe)
        async def handle(command: Probe, ctx: DispatchContext) -> Any:
            first, second = await asyncio.gather(container.unit_of_work(), container.unit_of_work())
            third = await container.unit_of_work()
            assert first is second is third
            return first

        mediator = AsyncMediator(registry, resolver=ContainerResolver(container))
        one = await mediator.send(Probe())
        other = await mediator.send(Probe())

        assert one is not other
        assert isinstance(one.connection, FakeConnection)
        assert (one.close_calls, other.close_calls) == (1, 1)


# -- registration-time errors ------------------------------------------------------------


@pytest.mark.parametrize("mediator_type", [Mediator, AsyncMediator])
def test_missing_dependency_fails_when_the_handler_is_registered(mediator_type, container):
    registry = Registry()
    mediator = mediator_type(registry, resolver=ContainerResolver(container))

    def handle(command: Probe, sesion: FakeSession) -> Any:
        return sesion

    with pytest.raises(UnresolvableDependencyError) as caught:
        registry.register(Probe, handle)
    assert mediator.registry is registry  # the registry checks for mediators still alive

    error = caught.value
    assert error.handler is handle
    assert error.parameter == "sesion"
    message = str(error)
    assert "handle needs the dependency 'sesion'" in message
    assert "Container has no provider named 'sesion' (did you mean 'session'?)" in message
    assert "add one to the container" in message
    assert isinstance(error, LookupError)


@pytest.mark.parametrize("mediator_type", [Mediator, AsyncMediator])
def test_missing_class_dependency_fails_when_the_mediator_is_created(mediator_type, container):
    registry = Registry()

    @registry.handles(Probe)
    class Handler:
        def __init__(self, payments: object) -> None:
            self.payments = payments

        def __call__(self, command: Probe) -> Any:
            return None

    with pytest.raises(
        UnresolvableDependencyError, match=r"Handler needs the dependency 'payments'"
    ):
        mediator_type(registry, resolver=ContainerResolver(container))


def test_overrides_must_be_providers(container):
    with pytest.raises(TypeError, match=r"overrides\['repo'\] must be a dependency-injector"):
        ContainerResolver(container, overrides={"repo": FakeOrders})


# -- outside a dispatch ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["session", "orders", "dispatch", "audit"])
def test_dispatch_bound_providers_refuse_to_run_outside_a_dispatch(container, name):
    with pytest.raises(OutsideDispatchError, match="outside a dispatch") as caught:
        getattr(container, name)()

    assert isinstance(caught.value, RuntimeError)
    assert isinstance(caught.value, CqrsKitError)


def test_handler_calling_the_container_without_a_dispatch_context_gets_the_clear_error(
    container, registry
):
    # No middleware and no handler parameters: the mediator skips the dispatch context.
    @registry.handles(Probe)
    def handle(command: Probe) -> Any:
        return container.session()

    with pytest.raises(OutsideDispatchError, match="Take it as a handler parameter"):
        Mediator(registry).send(Probe())


class OtherSession(FakeSession):
    pass


def test_overriding_the_factory_keeps_the_scope_and_overriding_the_provider_does_not(
    container, registry
):
    @registry.handles(Probe)
    def handle(command: Probe, session: FakeSession) -> Any:
        return session, container.session()

    mediator = Mediator(registry, resolver=ContainerResolver(container))

    with container.session.factory.override(
        providers.Factory(OtherSession, closed=container.closed_sessions)
    ):
        first, second = mediator.send(Probe())
    assert type(first) is OtherSession
    assert first is second
    assert first.close_calls == 1

    with container.override_providers(session=providers.Factory(OtherSession, closed=[])):
        first, second = mediator.send(Probe())
    assert type(first) is OtherSession
    assert first is not second, "an override of the provider itself replaces the scoping"
    assert first.close_calls == 0


def test_each_container_instance_has_its_own_scoped_providers():
    first, second = Container(), Container()

    assert isinstance(first.session, DispatchScoped)
    assert first.session is not second.session
    assert first.session.provides is FakeSession
    assert first.closed_sessions in list(first.session.related)
    assert second.closed_sessions in list(second.session.related)
