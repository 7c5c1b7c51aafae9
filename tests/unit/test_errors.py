"""The error tree, as drawn in the ``cqrs_kit.exceptions`` docstring."""

import builtins
import re

import pytest

import cqrs_kit
from cqrs_kit import (
    ConcurrencyError,
    ConfigurationError,
    ConsistencyTimeoutError,
    CqrsKitError,
    DuplicateHandlerError,
    HandlerNotFoundError,
    InvalidHandlerError,
    MessageKindError,
    PersistenceError,
    PipelineFrozenError,
    ProjectionError,
    UnresolvableDependencyError,
    exceptions,
)

TREE = [
    (CqrsKitError, (Exception,)),
    (ConfigurationError, (CqrsKitError,)),
    (InvalidHandlerError, (ConfigurationError, TypeError)),
    (DuplicateHandlerError, (ConfigurationError, TypeError)),
    (UnresolvableDependencyError, (ConfigurationError, LookupError)),
    (PipelineFrozenError, (ConfigurationError, RuntimeError)),
    (MessageKindError, (CqrsKitError, TypeError)),
    (HandlerNotFoundError, (CqrsKitError, LookupError)),
    (ConsistencyTimeoutError, (CqrsKitError, TimeoutError)),
    (ProjectionError, (CqrsKitError,)),
    (PersistenceError, (CqrsKitError,)),
    (ConcurrencyError, (PersistenceError,)),
]


@pytest.mark.parametrize(("error", "bases"), TREE, ids=[error.__name__ for error, _ in TREE])
def test_error_has_the_documented_bases(error: type[Exception], bases: tuple[type, ...]) -> None:
    assert error.__bases__ == bases


def _drawn_tree() -> dict[str, tuple[str, ...]]:
    """Parse the tree in the exceptions docstring into ``{name: base names}``.

    ``Name(A, B)`` states its bases; a bare ``Name`` derives from the entry it hangs from.
    """
    doc = exceptions.__doc__ or ""
    lines = doc.split("::", 1)[1].strip("\n").split("\n\n", 1)[0].splitlines()
    drawn: dict[str, tuple[str, ...]] = {}
    parents: list[tuple[int, str]] = []  # (column, name) of the open branches
    for line in lines:
        match = re.search(r"(\w+)(?:\(([^)]*)\))?", line)
        assert match is not None, f"cannot read the tree line {line!r}"
        column, name = match.start(1), match.group(1)
        while parents and parents[-1][0] >= column:
            parents.pop()
        if match.group(2) is not None:
            drawn[name] = tuple(base.strip() for base in match.group(2).split(","))
            assert not parents or drawn[name][0] == parents[-1][1], (
                f"{name} is drawn under {parents[-1][1]} but names {drawn[name][0]} first"
            )
        else:
            assert parents, f"{name} hangs from nothing"
            drawn[name] = (parents[-1][1],)
        parents.append((column, name))
    return drawn


DRAWN = _drawn_tree()


@pytest.mark.parametrize(("name", "bases"), DRAWN.items(), ids=list(DRAWN))
def test_error_has_the_bases_drawn_in_the_exceptions_docstring(
    name: str, bases: tuple[str, ...]
) -> None:
    error = getattr(exceptions, name)

    assert tuple(base.__name__ for base in error.__bases__) == bases


def test_the_drawn_tree_includes_the_core_errors() -> None:
    assert {error.__name__: tuple(b.__name__ for b in bases) for error, bases in TREE}.items() <= (
        DRAWN.items()
    )


def test_every_error_in_the_exceptions_module_is_drawn() -> None:
    assert set(exceptions.__all__) == set(DRAWN)


def test_every_error_is_exported_from_the_package() -> None:
    assert set(exceptions.__all__) <= set(cqrs_kit.__all__)


@pytest.mark.parametrize(
    ("error", "builtin"),
    [
        (error, base)
        for error, bases in TREE
        for base in bases
        if vars(builtins).get(base.__name__) is base
    ],
    ids=lambda value: value.__name__,
)
def test_existing_except_clauses_for_the_builtin_catch_the_error(
    error: type[Exception], builtin: type[Exception]
) -> None:
    instance = _make(error)

    with pytest.raises(builtin):
        raise instance


def _make(error: type[Exception]) -> Exception:
    if error is DuplicateHandlerError:
        return error("duplicate", message_type=int, existing=None)
    if error is UnresolvableDependencyError:
        return error("unresolvable", handler=None, parameter="session")
    if error is HandlerNotFoundError:
        return error("not found", message_type=int)
    if error is ProjectionError:
        return error("failed", projection="orders")
    if error is ConcurrencyError:
        return error("conflict", attempts=3)
    return error("failed")


def test_errors_carry_their_context_as_attributes() -> None:
    handler = object()

    duplicate = DuplicateHandlerError("dup", message_type=int, existing=handler)
    unresolvable = UnresolvableDependencyError("missing", handler=handler, parameter="session")
    not_found = HandlerNotFoundError("none", message_type=str)
    projection = ProjectionError("boom", projection="order_summary", position=7, event_type="X")
    concurrency = ConcurrencyError("busy", attempts=3)

    assert (duplicate.message_type, duplicate.existing) == (int, handler)
    assert (unresolvable.handler, unresolvable.parameter) == (handler, "session")
    assert not_found.message_type is str
    assert (projection.projection, projection.position, projection.event_type) == (
        "order_summary",
        7,
        "X",
    )
    assert concurrency.attempts == 3
    assert str(duplicate) == "dup", "the message must be the exception's text"


def test_projection_error_position_and_event_type_are_optional() -> None:
    error = ProjectionError("boom", projection="order_summary")

    assert (error.position, error.event_type) == (None, None)
