"""Handler inspection, done once at registration (never per dispatch)."""

from __future__ import annotations

import inspect
import types
import typing
from dataclasses import dataclass
from typing import Any, NewType, Union, get_args, get_origin

from cqrs_kit.context import DispatchContext
from cqrs_kit.exceptions import InvalidHandlerError
from cqrs_kit.messages import Event, Message, result_type_of

__all__ = ["Dependency", "HandlerSpec", "inspect_handler"]

_EMPTY = inspect.Parameter.empty
_NO_HINT: Any = object()


@dataclass(frozen=True, slots=True)
class Dependency:
    """A keyword parameter of a handler, supplied per dispatch by the resolver.

    Attributes:
        name: The parameter name.
        annotation: The resolved annotation, or ``None`` when the parameter has none.
        has_default: Whether the handler declares a default (then it may be left out).
    """

    name: str
    annotation: Any
    has_default: bool


@dataclass(frozen=True, slots=True)
class HandlerSpec:
    """What registration learned about a handler.

    Attributes:
        handler: The registered function or class.
        message_type: The message type it is registered for.
        is_class: Whether it is a class, instantiated per dispatch with its dependencies.
        is_async: Whether calling it gives an awaitable.
        takes_context: Whether it has a ``ctx`` parameter for the dispatch context.
        dependencies: Its keyword dependencies (constructor parameters for a class).
    """

    handler: Any
    message_type: type[Message]
    is_class: bool
    is_async: bool
    takes_context: bool
    dependencies: tuple[Dependency, ...]

    @property
    def name(self) -> str:
        """A readable name of the handler, for error messages."""
        return describe(self.handler)


def describe(obj: object) -> str:
    """Name a handler, type or middleware the way a reader finds it in the source."""
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None) or type(obj).__qualname__
    return f"{module}.{qualname}" if module else qualname


def _hints(func: Any) -> dict[str, Any]:
    try:
        return typing.get_type_hints(func)
    except Exception:  # noqa: BLE001 - unresolvable forward references: skip those checks
        return {}


@dataclass(frozen=True, slots=True)
class _Shape:
    call_params: list[inspect.Parameter]
    call_hints: dict[str, Any]
    init_params: list[inspect.Parameter]
    init_hints: dict[str, Any]
    is_async: bool
    where: str


def _is_coroutine(func: Any) -> bool:
    return inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(
        getattr(func, "__call__", None)  # noqa: B004 - callable objects
    )


def _shape(message_type: type[Message], handler: Any) -> _Shape:
    if inspect.isclass(handler):
        if not any("__call__" in vars(klass) for klass in handler.__mro__[:-1]):
            msg = (
                f"handler class {describe(handler)} for {message_type.__name__} must define "
                f"__call__(self, message); its __init__ takes the dependencies"
            )
            raise InvalidHandlerError(msg)
        call = handler.__call__
        return _Shape(
            call_params=list(inspect.signature(call).parameters.values())[1:],
            call_hints=_hints(call),
            init_params=list(inspect.signature(handler).parameters.values()),
            init_hints=_hints(handler.__init__),
            is_async=inspect.iscoroutinefunction(call),
            where=f"{describe(handler)}.__call__",
        )
    if not callable(handler):
        msg = f"handler for {message_type.__name__} must be a function or a class, got {handler!r}"
        raise InvalidHandlerError(msg)
    try:
        params = list(inspect.signature(handler).parameters.values())
    except (TypeError, ValueError) as exc:
        msg = f"cannot read the signature of handler {describe(handler)}: {exc}"
        raise InvalidHandlerError(msg) from exc
    return _Shape(params, _hints(handler), [], {}, _is_coroutine(handler), describe(handler))


def _dependency(param: inspect.Parameter, annotation: Any, where: str) -> Dependency:
    if param.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
        msg = (
            f"{where}: *args and **kwargs cannot be resolved; declare each dependency as a "
            f"keyword parameter"
        )
        raise InvalidHandlerError(msg)
    if param.kind is inspect.Parameter.POSITIONAL_ONLY:
        msg = f"{where}: dependency {param.name!r} must be a keyword parameter"
        raise InvalidHandlerError(msg)
    return Dependency(param.name, annotation, param.default is not _EMPTY)


def inspect_handler(message_type: type[Message], handler: Any) -> HandlerSpec:
    """Check ``handler`` against ``message_type`` and describe it.

    Raises:
        InvalidHandlerError: The handler cannot handle the message type; the message says
            what to change.
    """
    shape = _shape(message_type, handler)
    where = shape.where
    params = shape.call_params
    if not params or params[0].kind not in (
        inspect.Parameter.POSITIONAL_ONLY,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
    ):
        msg = (
            f"{where} must take the {message_type.__name__} as its first positional "
            f"parameter, e.g. def handle(message: {message_type.__name__}, ...)"
        )
        raise InvalidHandlerError(msg)
    _check_message_annotation(message_type, shape.call_hints.get(params[0].name, _NO_HINT), where)

    is_class = inspect.isclass(handler)
    candidates = [(p, shape.call_hints.get(p.name)) for p in params[1:]]
    if is_class:
        # A class handler gets its dependencies through __init__ only.
        extra = [p.name for p in params[1:] if p.default is _EMPTY]
        if extra:
            msg = (
                f"{where} takes only the message; move {', '.join(extra)} to __init__ so the "
                f"resolver can supply them"
            )
            raise InvalidHandlerError(msg)
        candidates = [(p, shape.init_hints.get(p.name)) for p in shape.init_params]

    takes_context = False
    deps: list[Dependency] = []
    for param, annotation in candidates:
        if param.name == "ctx" or annotation is DispatchContext:
            if is_class or param.name != "ctx":
                msg = (
                    f"{where}: only a function handler receives the dispatch context, as a "
                    f"parameter named 'ctx'"
                )
                raise InvalidHandlerError(msg)
            takes_context = True
            continue
        deps.append(_dependency(param, annotation, where))

    if not issubclass(message_type, Event):
        _check_result(message_type, shape.call_hints.get("return", _NO_HINT), where)

    return HandlerSpec(
        handler=handler,
        message_type=message_type,
        is_class=is_class,
        is_async=shape.is_async,
        takes_context=takes_context,
        dependencies=tuple(deps),
    )


def _check_result(message_type: type[Message], returned: Any, where: str) -> None:
    expected = result_type_of(message_type)
    if returned is _NO_HINT or is_assignable(returned, expected):
        return
    msg = (
        f"{where} returns {_type_name(returned)}, but {message_type.__name__} declares the "
        f"result {_type_name(expected)}; change the return annotation to {_type_name(expected)}"
    )
    raise InvalidHandlerError(msg)


def _check_message_annotation(message_type: type, annotation: Any, where: str) -> None:
    if annotation is _NO_HINT or annotation is Any:
        return
    accepted = [m for m in _members(annotation) if isinstance(m, type)]
    if not accepted or any(issubclass(message_type, m) for m in accepted):
        return
    msg = (
        f"{where} takes {_type_name(annotation)} but is registered for "
        f"{message_type.__name__}; annotate the message parameter as {message_type.__name__}"
    )
    raise InvalidHandlerError(msg)


def _members(tp: Any) -> tuple[Any, ...]:
    origin = get_origin(tp)
    if origin is Union or origin is types.UnionType:
        return get_args(tp)
    if tp is None:
        return (type(None),)
    return (tp,)


def is_assignable(actual: Any, expected: Any) -> bool:
    """Whether a handler returning ``actual`` satisfies a message declaring ``expected``.

    Deliberately lenient: forms it cannot judge at run time (type variables, protocols,
    literals, callables) are accepted, so the check never rejects a correct handler.
    """
    if expected is Any or expected is object or actual is Any:
        return True
    expected_members = _members(expected)
    return all(any(_member_assignable(a, e) for e in expected_members) for a in _members(actual))


def _member_assignable(actual: Any, expected: Any) -> bool:
    if isinstance(expected, NewType):
        return actual is expected or actual is Any
    if isinstance(actual, NewType):
        return is_assignable(actual.__supertype__, expected)
    actual_origin = get_origin(actual) or actual
    expected_origin = get_origin(expected) or expected
    if not (isinstance(actual_origin, type) and isinstance(expected_origin, type)):
        return True  # Any, type variables, literals, ...: not judged at run time
    try:
        return issubclass(actual_origin, expected_origin)
    except TypeError:  # protocols and other special forms
        return True


def _type_name(tp: Any) -> str:
    if tp is None or tp is type(None):
        return "None"
    if isinstance(tp, type) and get_origin(tp) is None:
        return tp.__qualname__
    if isinstance(tp, NewType):
        return tp.__name__
    return repr(tp).replace("typing.", "")
