"""Sensitive fields: how a message marks them, and its payload with them hidden.

A field is sensitive when any of these holds:

- it is annotated with the :class:`Sensitive` marker, anywhere in its type::

      class PayOrder(Command[None]):
          card_number: Annotated[str, Sensitive]
          backup_cards: list[Annotated[str, Sensitive]]   # the whole field is hidden

- its type holds a pydantic secret (``SecretStr``, ``SecretBytes``, ``Secret[T]``);
- its class (or a base class) names it in ``__sensitive_fields__``::

      class Register(Command[UserId]):
          __sensitive_fields__: ClassVar[frozenset[str]] = frozenset({"password"})
          email: str
          password: str

Nested models, and lists, tuples, sets and dict values of models, are redacted by the same
rules at any depth, by their run-time class. Other structured types (dataclasses, typed
dicts, named tuples) are not walked: a field whose type holds one with a sensitive part is
hidden whole, so nothing leaks; make it a pydantic model to keep its other values.

:func:`redacted_payload` returns a message's JSON-ready payload with every sensitive value
replaced by :data:`REDACTED`. What is sensitive is worked out once per class and cached.

This module imports only the standard library and pydantic, so ``import cqrs_kit`` stays light.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Final, get_args, get_origin

from pydantic import BaseModel, RootModel, Secret, SecretBytes, SecretStr

from cqrs_kit.exceptions import ConfigurationError

__all__ = ["REDACTED", "Sensitive", "redacted_payload", "sensitive_fields"]

REDACTED: Final = "***"
"""What a sensitive value is replaced with."""

_SECRET_TYPES: Final = (SecretStr, SecretBytes, Secret)


class Sensitive:
    """Marks a field as sensitive: ``card_number: Annotated[str, Sensitive]``.

    The class itself and an instance (``Annotated[str, Sensitive()]``) mean the same. The
    marker changes nothing about validation or serialization; it only tells
    :func:`redacted_payload` (and so the logging middleware) to hide the value.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return "Sensitive()"


def _is_marker(obj: object) -> bool:
    return obj is Sensitive or isinstance(obj, Sensitive)


@dataclass(frozen=True, slots=True)
class _Plan:
    """What to do with one model class's dumped fields."""

    hidden: tuple[str, ...]
    """Fields replaced by :data:`REDACTED` whole."""
    walked: tuple[str, ...]
    """Fields that may hold models at run time, walked value by value."""


_PLANS: dict[type[BaseModel], _Plan] = {}
# A plain dict: message and model classes live as long as the process, and a lookup is
# what every payload pays. Two threads computing the same plan store equal values.


def _scan(tp: Any, seen: set[int]) -> tuple[bool, bool]:  # noqa: PLR0911 - one per form
    """Return ``(sensitive, may_hold_models)`` for a type annotation."""
    if tp is Any or tp is object or isinstance(tp, typing.TypeVar):
        return False, True  # a model may turn up at run time: walk it
    origin = get_origin(tp)
    if origin is Annotated:
        inner, *metadata = get_args(tp)
        if any(_is_marker(m) for m in metadata):
            return True, False
        return _scan(inner, seen)
    if isinstance(tp, type):
        if issubclass(tp, _SECRET_TYPES):
            return True, False
        if issubclass(tp, BaseModel):
            return False, True
        if id(tp) in seen:
            return False, False
        seen.add(id(tp))
        return _scan_structured(tp, seen), False
    if isinstance(origin, type) and issubclass(origin, _SECRET_TYPES):
        return True, False
    sensitive = models = False
    if origin is not None or isinstance(tp, types.UnionType):
        for arg in get_args(tp):
            arg_sensitive, arg_models = _scan(arg, seen)
            sensitive |= arg_sensitive
            models |= arg_models
    return sensitive, models


def _scan_structured(tp: type, seen: set[int]) -> bool:
    """Whether a dataclass, typed dict or named tuple holds anything sensitive (or a model)."""
    # Duck-typed: typing_extensions.TypedDict (which pydantic needs before 3.12) is not
    # a typing.TypedDict to typing.is_typeddict.
    is_typed_dict = issubclass(tp, dict) and hasattr(tp, "__required_keys__")
    is_named_tuple = issubclass(tp, tuple) and hasattr(tp, "_fields")
    if not (dataclasses.is_dataclass(tp) or is_typed_dict or is_named_tuple):
        return False
    try:
        hints = typing.get_type_hints(tp, include_extras=True)
    except Exception:  # noqa: BLE001 - unresolvable annotations: cannot tell, so hide it
        return True
    for hint in hints.values():
        sensitive, models = _scan(hint, seen)
        # Neither a marker nor a model inside is walked here, so either hides the field.
        if sensitive or models:
            return True
    return False


def _declared_names(model_type: type[BaseModel]) -> frozenset[str]:
    names: set[str] = set()
    for klass in model_type.__mro__:
        declared = klass.__dict__.get("__sensitive_fields__")
        if declared is None:
            continue
        if isinstance(declared, str) or not isinstance(declared, Iterable):
            msg = (
                f"{klass.__name__}.__sensitive_fields__ must be a collection of field "
                f"names, e.g. frozenset({{'password'}}), got {declared!r}"
            )
            raise ConfigurationError(msg)
        names.update(declared)
    known = model_type.model_fields.keys() | model_type.model_computed_fields.keys()
    unknown = sorted(names - known)
    if unknown:
        msg = (
            f"{model_type.__name__}.__sensitive_fields__ names {', '.join(unknown)}, which "
            f"{'is not a field' if len(unknown) == 1 else 'are not fields'} of "
            f"{model_type.__name__}; list top-level field names only (mark nested fields "
            f"in their own model)"
        )
        raise ConfigurationError(msg)
    return frozenset(names)


def _plan(model_type: type[BaseModel]) -> _Plan:
    plan = _PLANS.get(model_type)
    if plan is not None:
        return plan
    hidden = set(_declared_names(model_type))
    walked: list[str] = []
    for name, field in model_type.model_fields.items():
        if name in hidden:
            continue
        if any(_is_marker(m) for m in field.metadata):
            hidden.add(name)
            continue
        sensitive, models = _scan(field.annotation, set())
        if sensitive:
            hidden.add(name)
        elif models:
            walked.append(name)
    plan = _PLANS[model_type] = _Plan(tuple(sorted(hidden)), tuple(walked))
    return plan


def sensitive_fields(model_type: type[BaseModel]) -> frozenset[str]:
    """Return the names of ``model_type``'s own fields that are hidden whole.

    Fields of nested models are not included (they are hidden by their own model's rules).
    Call it for each message class in a test to catch a misspelt ``__sensitive_fields__``
    before the first dispatch does.

    Args:
        model_type: A pydantic model class, such as a message class.

    Returns:
        The sensitive top-level field names.

    Raises:
        ConfigurationError: ``__sensitive_fields__`` is not a collection of names, or names
            something that is not a field of ``model_type``.
    """
    return frozenset(_plan(model_type).hidden)


def redacted_payload(message: BaseModel) -> dict[str, Any]:
    """Return ``message`` as JSON-ready data, every sensitive value replaced by ``"***"``.

    The data is ``message.model_dump(mode="json")`` (field names, not aliases), with the
    fields described in :mod:`cqrs_kit.redaction` replaced by :data:`REDACTED`. The set of
    sensitive fields is computed once per class; a class without sensitive fields or nested
    models costs one ``model_dump``.

    Args:
        message: A message, or any pydantic model.

    Returns:
        A new dict the caller may keep or change.

    Raises:
        ConfigurationError: The class's ``__sensitive_fields__`` is wrong (see
            :func:`sensitive_fields`).
    """
    data = message.model_dump(mode="json")
    _redact_model(message, data)
    return data


def _redact_model(model: BaseModel, data: dict[str, Any]) -> None:
    model_type = type(model)
    plan = _PLANS.get(model_type) or _plan(model_type)
    for name in plan.hidden:
        if name in data:
            data[name] = REDACTED
    for name in plan.walked:
        if name in data:
            data[name] = _redact(getattr(model, name), data[name])


# What _redact does with a value, by its run-time class (cached: isinstance checks against
# pydantic's model metaclass cost more than a dict lookup).
_LEAF, _HIDDEN, _MODEL, _ROOT_MODEL, _MAPPING, _COLLECTION = range(1, 7)
_SHAPES: dict[type, int] = {}


def _shape_of(value_type: type) -> int:
    if issubclass(value_type, RootModel):
        shape = _ROOT_MODEL
    elif issubclass(value_type, BaseModel):
        shape = _MODEL
    elif issubclass(value_type, str | bytes | int | float | bool | None):
        shape = _LEAF
    elif issubclass(value_type, Mapping):
        shape = _MAPPING
    elif issubclass(value_type, list | tuple | set | frozenset) and not hasattr(
        value_type, "_fields"
    ):
        shape = _COLLECTION  # named tuples are structured types, judged by _scan
    else:
        shape = _HIDDEN if _scan(value_type, set())[0] else _LEAF
    _SHAPES[value_type] = shape
    return shape


def _redact(value: Any, dumped: Any) -> Any:  # noqa: PLR0911 - one return per shape
    """Redact ``dumped`` (the JSON form of ``value``) by ``value``'s run-time types.

    Where the dumped form does not have the shape of the value (a custom serializer), the
    value is hidden whole if it is or holds anything that could be sensitive.
    """
    value_type = type(value)
    shape = _SHAPES.get(value_type) or _shape_of(value_type)
    if shape == _LEAF:
        return dumped
    if shape == _MODEL:
        if isinstance(dumped, dict):
            _redact_model(value, dumped)
            return dumped
        plan = _plan(value_type)
        return REDACTED if plan.hidden or plan.walked else dumped
    if shape == _COLLECTION:
        if isinstance(dumped, list) and len(dumped) == len(value):
            return [_redact(item, d) for item, d in zip(value, dumped, strict=True)]
        return REDACTED
    if shape == _MAPPING:
        if isinstance(dumped, dict) and len(dumped) == len(value):
            return {
                key: _redact(item, dumped_item)
                for (key, dumped_item), item in zip(dumped.items(), value.values(), strict=True)
            }
        return REDACTED
    if shape == _ROOT_MODEL:
        return REDACTED if "root" in _plan(value_type).hidden else _redact(value.root, dumped)
    return REDACTED
