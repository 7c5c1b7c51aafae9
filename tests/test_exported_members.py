"""Pins the public API: adding or removing a name from ``cqrs_kit`` is a deliberate change."""

import inspect
import typing

import pytest

import cqrs_kit

EXPECTED = sorted(
    [
        "AsyncMediator",
        "AsyncMiddleware",
        "AtLeast",
        "CallNext",
        "Command",
        "ConcurrencyError",
        "ConfigurationError",
        "ConsistencyTimeoutError",
        "CqrsKitError",
        "Dependencies",
        "Dependency",
        "DispatchContext",
        "DuplicateHandlerError",
        "Event",
        "EventDecodeError",
        "EventErrorPolicy",
        "EventLogError",
        "EventTypes",
        "Factory",
        "HandlerNotFoundError",
        "HandlerSpec",
        "IdempotencyKeyReusedError",
        "InvalidHandlerError",
        "KwargsBuilder",
        "Mediator",
        "Message",
        "MessageKind",
        "MessageKindError",
        "Middleware",
        "PendingEvent",
        "PersistenceError",
        "PipelineFrozenError",
        "ProjectionError",
        "Query",
        "Receipt",
        "Registration",
        "Registry",
        "Resolver",
        "Scoped",
        "Sensitive",
        "StoredEvent",
        "UnitOfWork",
        "UnknownEventTypeError",
        "UnresolvableDependencyError",
        "Upcaster",
        "current_context",
        "redacted_payload",
        "result_type_of",
        "scoped",
    ]
)


def test_all_is_the_pinned_public_api() -> None:
    assert cqrs_kit.__all__ == EXPECTED


def test_all_is_sorted() -> None:
    assert cqrs_kit.__all__ == sorted(cqrs_kit.__all__)


def test_all_has_no_duplicates() -> None:
    assert len(set(cqrs_kit.__all__)) == len(cqrs_kit.__all__)


@pytest.mark.parametrize("name", cqrs_kit.__all__)
def test_exported_name_exists(name: str) -> None:
    assert hasattr(cqrs_kit, name), f"cqrs_kit.__all__ names {name}, which is not defined"


def test_star_import_gives_exactly_the_public_api() -> None:
    namespace: dict[str, object] = {}
    exec("from cqrs_kit import *", namespace)  # noqa: S102 - a fixed statement

    assert sorted(set(namespace) - {"__builtins__"}) == sorted(cqrs_kit.__all__)


def _is_class_or_function(obj: object) -> bool:
    return inspect.isclass(obj) or inspect.isfunction(obj)


DOCUMENTABLE = [name for name in cqrs_kit.__all__ if _is_class_or_function(getattr(cqrs_kit, name))]


@pytest.mark.parametrize("name", DOCUMENTABLE)
def test_exported_class_or_function_has_a_docstring(name: str) -> None:
    obj = getattr(cqrs_kit, name)
    doc = obj.__dict__.get("__doc__") if inspect.isclass(obj) else obj.__doc__

    assert doc, f"cqrs_kit.{name} has no docstring of its own"
    assert doc.strip(), f"cqrs_kit.{name} has an empty docstring"


@pytest.mark.parametrize("name", sorted(set(cqrs_kit.__all__) - set(DOCUMENTABLE)))
def test_names_skipped_by_the_docstring_check_are_type_aliases(name: str) -> None:
    # Type aliases (``Callable[...]``) are documented where they are defined, as attribute
    # docstrings that Python does not keep; anything else must be checked above.
    assert typing.get_origin(getattr(cqrs_kit, name)) is not None, f"{name} is not an alias"
