"""Resolve handler dependencies from a ``dependency-injector`` container.

:class:`ContainerResolver` supplies each handler keyword parameter (a class handler's
``__init__`` parameter) from the container provider with the same name. It looks the
providers up once, when the handler is registered, so a missing one fails at start-up; each
dispatch then only calls the providers. :class:`DispatchScoped` is a factory whose object
lives for one top-level dispatch (one ``Session`` per command, shared by the handler, its
repositories and any message it dispatches in turn, never by two concurrent dispatches), and
:class:`DispatchContextProvider` gives the running dispatch's
:class:`~cqrs_kit.DispatchContext`::

    from dependency_injector import containers, providers
    from sqlalchemy.orm import Session

    from cqrs_kit import Mediator, Registry
    from cqrs_kit.integrations.dependency_injector import (
        ContainerResolver,
        DispatchContextProvider,
        DispatchScoped,
    )

    class Container(containers.DeclarativeContainer):
        config = providers.Configuration()
        engine = providers.Singleton(create_engine, config.database_url)
        session = DispatchScoped(Session, engine)  # closed when the command ends
        orders = providers.Factory(SqlAlchemyOrders, session=session)
        dispatch = DispatchContextProvider()

    registry = Registry()

    @registry.handles(CreateOrder)
    class CreateOrderHandler:
        def __init__(self, orders: Orders, session: Session) -> None:  # by name
            self.orders, self.session = orders, session  # one Session, shared

        def __call__(self, command: CreateOrder) -> OrderId: ...

    mediator = Mediator(registry, resolver=ContainerResolver(Container()))

Handler classes belong with the container's wiring but are not providers themselves:
register the class (as above) and the resolver builds it for every dispatch, passing each
``__init__`` parameter from the provider of that name. A parameter whose name differs from
the provider's is mapped with ``ContainerResolver(container, overrides={"repo":
container.orders})``; a parameter with a default may be left without a provider.

Rules worth knowing:

- Providers are looked up when a handler is registered. Overriding a provider later
  (``container.session.override(...)``, ``container.override_providers(...)``) takes effect,
  because the resolver calls the same provider object; replacing the container attribute
  does not.
- Providers must give their object synchronously: an async ``Resource`` or a
  ``Coroutine`` provider gives an awaitable, which a handler parameter would receive as is.
- A dispatch-scoped object is made by the first consumer that asks for it; call arguments
  after that are ignored, as for a ``Singleton``. To swap the object in tests but keep
  one per dispatch, override its factory: ``container.session.factory.override(...)``.
  Overriding the :class:`DispatchScoped` provider itself replaces the scoping too, as
  overriding a ``Singleton`` does (a ``Factory`` override makes a new object per call).
- Dispatch-scoped objects are only available while a mediator dispatches. A mediator with
  no middleware whose handlers take neither dependencies nor ``ctx`` skips the dispatch
  context altogether, so a handler that calls the container itself finds none: declare
  the dependency as a handler parameter instead. A thread started by a handler sees no
  dispatch either unless it runs in a copy of the context (``asyncio.to_thread`` does that;
  ``threading.Thread`` does not).
"""

from __future__ import annotations

import asyncio
import difflib
import inspect
from typing import TYPE_CHECKING, Any, TypeVar

from dependency_injector import providers

from cqrs_kit.context import DispatchContext, current_context
from cqrs_kit.exceptions import CqrsKitError, UnresolvableDependencyError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

    from dependency_injector import containers

    from cqrs_kit._handlers import HandlerSpec
    from cqrs_kit.dependencies import KwargsBuilder

__all__ = [
    "ContainerResolver",
    "DispatchContextProvider",
    "DispatchScoped",
    "OutsideDispatchError",
]

T = TypeVar("T")

_MISSING: Any = object()
_NO_KWARGS: dict[str, Any] = {}


class OutsideDispatchError(CqrsKitError, RuntimeError):
    """A dispatch-bound provider was called while no dispatch is running.

    Attributes:
        provider: The provider that was called.
    """

    def __init__(self, message: str, *, provider: object) -> None:
        """Create the error for ``provider``."""
        super().__init__(message)
        self.provider = provider


def _require_context(provider: object) -> DispatchContext:
    ctx = current_context()
    if ctx is None:
        msg = (
            f"{provider!r} was called outside a dispatch: it can only be used while a "
            f"Mediator or AsyncMediator dispatches a message. Take it as a handler parameter "
            f"(resolved by ContainerResolver) or call it from code a handler runs; see "
            f"cqrs_kit.integrations.dependency_injector for the cases where a handler has no "
            f"dispatch context"
        )
        raise OutsideDispatchError(msg, provider=provider)
    return ctx


class DispatchScoped(providers.Provider[T]):
    """Makes its object at most once per top-level dispatch.

    Every consumer in one dispatch, and in the dispatches its handlers start, gets the same
    object; concurrent dispatches (threads or asyncio tasks) each get their own. The object
    is kept in :attr:`DispatchContext.scope <cqrs_kit.DispatchContext.scope>`, so the
    mediator closes it (``close()``, awaited when it is a coroutine) when the top-level
    dispatch ends, after the objects that were made from it.

    Takes the arguments of ``providers.Factory``, which makes the object::

        session = DispatchScoped(Session, engine, expire_on_commit=False)

    Raises:
        OutsideDispatchError: When called while no dispatch is running.
    """

    # A wrapped Factory rather than a Factory subclass: dependency-injector is compiled
    # with Cython's limited API, where calling the base class's _provide from Python costs
    # about 2 us; calling a Factory costs 0.4 us. This is the documented way to write a
    # custom provider (implement _provide and __deepcopy__).
    __slots__ = ("_factory",)

    def __init__(self, provides: Callable[..., T] | None = None, *args: Any, **kwargs: Any) -> None:
        """Create the provider.

        Args:
            provides: The class or callable that makes the object.
            *args: Positional injections, as for ``providers.Factory``.
            **kwargs: Keyword injections, as for ``providers.Factory``.
        """
        self._factory: providers.Factory[T] = providers.Factory(provides, *args, **kwargs)
        super().__init__()

    @property
    def factory(self) -> providers.Factory[T]:
        """The factory that makes the object (configure injections on it)."""
        return self._factory

    @property
    def provides(self) -> Callable[..., T] | None:
        """The class or callable that makes the object."""
        return self._factory.provides

    @property
    def args(self) -> tuple[Any, ...]:
        """The positional injections."""
        return self._factory.args

    @property
    def kwargs(self) -> dict[str, Any]:
        """The keyword injections."""
        return self._factory.kwargs

    @property
    def related(self) -> Iterator[providers.Provider[Any]]:
        """The providers this one depends on, for container traversal."""
        yield from self._factory.related
        yield from super().related

    def __deepcopy__(self, memo: dict[Any, Any] | None) -> DispatchScoped[T]:
        """Copy the provider with its injections (containers copy their providers)."""
        memo = {} if memo is None else memo
        copied: DispatchScoped[T] | None = memo.get(id(self))
        if copied is not None:
            return copied
        copied = type(self)()
        memo[id(self)] = copied
        copied._factory = providers.deepcopy(self._factory, memo)
        self._copy_overridings(copied, memo)
        return copied

    def __str__(self) -> str:
        return providers.represent_provider(self, self._factory.provides)

    # dependency-injector's Provider.__call__ (Cython) calls this hook; the stubs omit it.
    def _provide(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        scope = _require_context(self).scope
        instance = scope.get(self, _MISSING)
        if instance is not _MISSING:
            return instance
        # Made before it is stored, so the objects it depends on are stored (and closed)
        # first: the scope closes in reverse order.
        instance = self._factory(*args, **kwargs)
        if inspect.isawaitable(instance):
            return self._store_pending(scope, instance)
        scope[self] = instance
        return instance

    def _store_pending(self, scope: dict[object, Any], awaitable: Any) -> asyncio.Future[Any]:
        """Share an object that has async dependencies while it is being made.

        The future is stored at once so a second consumer awaits the same object; when it
        resolves, the object replaces it, so the scope closes the object itself.
        """
        future: asyncio.Future[Any] = asyncio.ensure_future(awaitable)
        scope[self] = future

        def settle(done: asyncio.Future[Any]) -> None:
            if scope.get(self) is not done:
                return  # the dispatch has ended
            if done.cancelled() or done.exception() is not None:
                del scope[self]
            else:
                scope[self] = done.result()

        future.add_done_callback(settle)
        return future


class DispatchContextProvider(providers.Provider[DispatchContext]):
    """Provides the :class:`~cqrs_kit.DispatchContext` of the running dispatch.

    For factories that need the correlation id, the metadata or the unit of work::

        audit = providers.Factory(AuditTrail, ctx=DispatchContextProvider())

    A factory called from a nested dispatch gets the nested dispatch's context.

    Raises:
        OutsideDispatchError: When called while no dispatch is running.
    """

    __slots__ = ()

    def _provide(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> DispatchContext:
        return _require_context(self)


class ContainerResolver:
    """A :class:`~cqrs_kit.Resolver` that takes dependencies from a container's providers.

    Each dependency is the provider named like the parameter, in ``overrides`` first, then
    in the container. A parameter with a default may go without a provider; the handler's
    default is used then.

    Example::

        resolver = ContainerResolver(container, overrides={"repo": container.orders})
        mediator = AsyncMediator(registry, resolver=resolver)
    """

    __slots__ = ("_container", "_overrides")

    def __init__(
        self,
        container: containers.Container,
        *,
        overrides: Mapping[str, providers.Provider[Any]] | None = None,
    ) -> None:
        """Create a resolver over ``container``.

        Args:
            container: A container instance, e.g. ``AppContainer()``.
            overrides: Providers by parameter name, used before the container's: for a
                parameter whose name differs from its provider's.

        Raises:
            TypeError: A value in ``overrides`` is not a provider.
        """
        self._container = container
        self._overrides: dict[str, providers.Provider[Any]] = dict(overrides or {})
        for name, provider in self._overrides.items():
            if not providers.is_provider(provider):
                msg = (
                    f"overrides[{name!r}] must be a dependency-injector provider, got "
                    f"{provider!r}; wrap a value in providers.Object(...)"
                )
                raise TypeError(msg)

    @property
    def container(self) -> containers.Container:
        """The container the providers come from."""
        return self._container

    def provider_for(self, name: str) -> providers.Provider[Any] | None:
        """Return the provider for a parameter called ``name``, or ``None``."""
        provider = self._overrides.get(name)
        if provider is None:
            provider = self._container.providers.get(name)
        return provider

    def bind(self, spec: HandlerSpec) -> KwargsBuilder:
        """Look up ``spec``'s dependencies; return a builder that calls their providers.

        Raises:
            UnresolvableDependencyError: A dependency without a default has no provider.
        """
        pairs: list[tuple[str, providers.Provider[Any]]] = []
        for dependency in spec.dependencies:
            provider = self.provider_for(dependency.name)
            if provider is not None:
                pairs.append((dependency.name, provider))
            elif not dependency.has_default:
                raise UnresolvableDependencyError(
                    self._missing(spec, dependency.name),
                    handler=spec.handler,
                    parameter=dependency.name,
                )
        if not pairs:
            return lambda _ctx: _NO_KWARGS
        if len(pairs) == 1:
            ((name, provider),) = pairs
            return lambda _ctx: {name: provider()}
        bound = tuple(pairs)
        return lambda _ctx: {name: provider() for name, provider in bound}

    def _missing(self, spec: HandlerSpec, name: str) -> str:
        known = sorted({*self._container.providers, *self._overrides})
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        # An instance of a DeclarativeContainer is a DynamicContainer that knows its class.
        declared = getattr(self._container, "declarative_parent", None) or self._container
        container = getattr(declared, "__name__", None) or type(self._container).__name__
        return (
            f"{spec.name} needs the dependency {name!r}, but {container} has no provider "
            f"named {name!r}{hint}; add one to the container (e.g. {name} = "
            f"providers.Factory(...)), map the parameter with ContainerResolver(..., "
            f"overrides={{{name!r}: container.<provider>}}), or give the parameter a default"
        )
