"""Resolving handler dependencies, per dispatch.

A handler's keyword parameters (a class handler's ``__init__`` parameters) are its
dependencies. A :class:`Resolver` is asked once per handler, at registration, how to supply
them; what it returns runs once per dispatch. The default, :class:`Dependencies`, is a plain
mapping and needs no framework; :mod:`cqrs_kit.integrations.dependency_injector` resolves
from a ``dependency-injector`` container.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from cqrs_kit.context import DispatchContext
from cqrs_kit.exceptions import ConfigurationError, UnresolvableDependencyError
from cqrs_kit.unit_of_work import wants_unit_of_work

if TYPE_CHECKING:
    from cqrs_kit._handlers import Dependency, HandlerSpec

__all__ = ["Dependencies", "Factory", "KwargsBuilder", "Resolver", "unit_of_work_of"]

T = TypeVar("T")

KwargsBuilder = Callable[[DispatchContext], dict[str, Any]]
"""Builds a handler's keyword arguments for one dispatch.

The returned dict may be shared between dispatches: callers must not modify it.
"""


class Resolver(Protocol):
    """Supplies handler dependencies.

    A protocol rather than a base class so that any container can be adapted in a few
    lines. ``bind`` runs once per handler, when the handler is registered with a mediator,
    so an unresolvable dependency fails at start-up and the per-dispatch work is only what
    the returned builder does.
    """

    def bind(self, spec: HandlerSpec) -> KwargsBuilder:
        """Return a per-dispatch builder of ``spec``'s dependency keyword arguments.

        Raises:
            UnresolvableDependencyError: A dependency without a default cannot be supplied.
        """
        ...


class Factory(Generic[T]):
    """Marks a callable in :class:`Dependencies` as a factory, called for each handler call.

    The callable takes no argument, or one: the :class:`~cqrs_kit.DispatchContext`.

    Example::

        Dependencies({"now": Factory(datetime.now), "uow": Factory(lambda ctx: ctx.unit_of_work)})
    """

    __slots__ = ("_takes_context", "factory")

    def __init__(self, factory: Callable[[], T] | Callable[[DispatchContext], T]) -> None:
        """Wrap ``factory``.

        Raises:
            TypeError: ``factory`` is not callable or takes more than one parameter.
        """
        if not callable(factory):
            msg = f"Factory() needs a callable, got {factory!r}"  # type: ignore[unreachable]
            raise TypeError(msg)
        try:
            parameters = list(inspect.signature(factory).parameters.values())
        except (TypeError, ValueError):  # builtins without a signature: called with nothing
            parameters = []
        required = [
            p
            for p in parameters
            if p.default is inspect.Parameter.empty
            and p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        ]
        if len(required) > 1:
            msg = "a Factory callable takes no argument or one (the DispatchContext)"
            raise TypeError(msg)
        self.factory = factory
        self._takes_context = len(required) == 1

    def __call__(self, ctx: DispatchContext) -> T:
        """Make the value for one dispatch."""
        if self._takes_context:
            return self.factory(ctx)  # type: ignore[call-arg]
        return self.factory()  # type: ignore[call-arg]


def unit_of_work_of(ctx: DispatchContext) -> Any:
    """Return the unit of work of the running transaction (a dependency factory).

    Raises:
        ConfigurationError: No transaction middleware opened one for this dispatch.
    """
    uow = ctx.unit_of_work
    if uow is None:
        msg = (
            f"{type(ctx.message).__name__}'s handler needs a unit of work, but no transaction "
            f"is open; add TransactionMiddleware (commands only) to the mediator"
        )
        raise ConfigurationError(msg)
    return uow


class Dependencies:
    """The default resolver: a mapping from parameter names or types to values or factories.

    A parameter is looked up by name first, then by its annotation. A plain value is passed
    as is to every dispatch; a :class:`Factory` is called once per dispatch. A parameter
    annotated with :class:`~cqrs_kit.UnitOfWork` (or a subclass) that has no entry gets the
    running transaction's unit of work.

    Example::

        resolver = Dependencies({"clock": Factory(time.time), Settings: settings})
    """

    __slots__ = ("_entries",)

    def __init__(self, entries: Mapping[str | type, object] | None = None) -> None:
        """Create a resolver from ``entries`` (copied)."""
        self._entries: dict[str | type, object] = dict(entries or {})

    def __setitem__(self, key: str | type, value: object) -> None:
        """Add or replace an entry (before the handlers that need it are registered)."""
        self._entries[key] = value

    def _lookup(self, dependency: Dependency) -> tuple[bool, object]:
        if dependency.name in self._entries:
            return True, self._entries[dependency.name]
        annotation = dependency.annotation
        if annotation is not None:
            try:
                if annotation in self._entries:
                    return True, self._entries[annotation]
            except TypeError:  # unhashable annotation
                pass
        return False, None

    def bind(self, spec: HandlerSpec) -> KwargsBuilder:
        """Bind ``spec``'s dependencies to this mapping's entries.

        Raises:
            UnresolvableDependencyError: A dependency without a default has no entry.
        """
        constants: dict[str, object] = {}
        factories: list[tuple[str, Factory[object]]] = []
        for dependency in spec.dependencies:
            found, value = self._lookup(dependency)
            if not found and wants_unit_of_work(dependency.annotation):
                found, value = True, Factory(unit_of_work_of)
            if not found:
                if dependency.has_default:
                    continue
                kind = getattr(dependency.annotation, "__name__", None)
                by_type = f" or {kind}" if kind else ""
                msg = (
                    f"{spec.name} needs the dependency {dependency.name!r}, which the "
                    f"resolver does not provide; add Dependencies({{{dependency.name!r}{by_type}: "
                    f"...}}) or give the parameter a default"
                )
                raise UnresolvableDependencyError(
                    msg, handler=spec.handler, parameter=dependency.name
                )
            if isinstance(value, Factory):
                factories.append((dependency.name, value))
            else:
                constants[dependency.name] = value
        if not factories:
            return lambda _ctx: constants
        if not constants and len(factories) == 1:
            ((name, factory),) = factories
            return lambda ctx: {name: factory(ctx)}

        def build(ctx: DispatchContext) -> dict[str, Any]:
            kwargs = dict(constants)
            for name, factory in factories:
                kwargs[name] = factory(ctx)
            return kwargs

        return build
