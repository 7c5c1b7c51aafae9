"""Registration rules: what a registry accepts, what it refuses, and what it says."""

import re
from typing import Any, NewType

import pytest

from cqrs_kit import (
    AsyncMediator,
    Command,
    ConfigurationError,
    Dependency,
    DispatchContext,
    DuplicateHandlerError,
    Event,
    EventErrorPolicy,
    HandlerSpec,
    InvalidHandlerError,
    Mediator,
    Message,
    Query,
    Registry,
)

OrderId = NewType("OrderId", int)


class Animal:
    pass


class Dog(Animal):
    pass


class Repo:
    pass


class CreateOrder(Command[OrderId]):
    user_id: int = 1


class CancelOrder(Command[None]):
    order_id: int = 1


class GetCount(Query[int]):
    pass


class GetAnimal(Query[Animal]):
    pass


class FindAnimal(Query[Animal | None]):
    pass


class Ping(Query):  # unparametrized: any result is fine
    pass


class GetOrders(Query[list[int]]):
    pass


class GetArchivedOrders(GetOrders):
    pass


class OrderCreated(Event):
    order_id: int = 1


class PlainMessage(Message):
    """Neither a command, a query nor an event."""


def handler_with(message_type: type[Message], **annotations: Any) -> Any:
    """A function handler for ``message_type`` with the given extra annotations (e.g. return)."""

    def handler(message):
        raise NotImplementedError

    handler.__annotations__ = {"message": message_type, **annotations}
    return handler


def create_order(command: CreateOrder) -> OrderId:
    return OrderId(1)


def other_create_order(command: CreateOrder) -> OrderId:
    return OrderId(2)


# -- what is registered ------------------------------------------------------------------


def test_handles_decorator_registers_and_returns_the_handler_unchanged() -> None:
    registry = Registry()

    def get_count(query: GetCount) -> int:
        return 3

    decorated = registry.handles(GetCount)(get_count)

    assert decorated is get_count
    registration = registry.handler_for(GetCount)
    assert registration is not None
    assert registration.spec.handler is get_count


def test_inspection_records_context_dependencies_and_defaults() -> None:
    registry = Registry()

    def handler(command: CreateOrder, ctx: DispatchContext, *, repo: Repo, retries: int = 3):
        raise NotImplementedError

    registry.register(CreateOrder, handler)

    registration = registry.handler_for(CreateOrder)
    assert registration is not None
    assert registration.spec == HandlerSpec(
        handler=handler,
        message_type=CreateOrder,
        is_class=False,
        is_async=False,
        takes_context=True,
        dependencies=(Dependency("repo", Repo, False), Dependency("retries", int, True)),
    )


def test_class_handler_dependencies_come_from_init() -> None:
    registry = Registry()

    class CreateOrderHandler:
        def __init__(self, repo: Repo) -> None:
            self.repo = repo

        async def __call__(self, command: CreateOrder) -> OrderId:
            raise NotImplementedError

    registry.register(CreateOrder, CreateOrderHandler)

    registration = registry.handler_for(CreateOrder)
    assert registration is not None
    spec = registration.spec
    assert (spec.is_class, spec.is_async, spec.takes_context) == (True, True, False)
    assert spec.dependencies == (Dependency("repo", Repo, False),)


def test_message_types_lists_commands_queries_and_events() -> None:
    registry = Registry()
    registry.register(CreateOrder, create_order)
    registry.register(OrderCreated, handler_with(OrderCreated))

    assert set(registry.message_types) == {CreateOrder, OrderCreated}


# -- one handler per command or query ------------------------------------------------------


def test_second_handler_for_a_command_raises_duplicate_handler_error() -> None:
    registry = Registry()
    registry.register(CreateOrder, create_order)

    with pytest.raises(DuplicateHandlerError) as excinfo:
        registry.register(CreateOrder, other_create_order)

    error = excinfo.value
    assert isinstance(error, TypeError), "DuplicateHandlerError must also be a TypeError"
    assert isinstance(error, ConfigurationError)
    assert error.message_type is CreateOrder
    assert error.existing is create_order
    text = str(error)
    assert "CreateOrder already has the handler" in text
    assert "create_order" in text
    assert "a command has exactly one handler" in text
    registration = registry.handler_for(CreateOrder)
    assert registration is not None
    assert registration.spec.handler is create_order, "the first handler must stay registered"


def test_second_handler_for_a_query_raises_duplicate_handler_error() -> None:
    registry = Registry()
    registry.register(GetCount, handler_with(GetCount, **{"return": int}))

    with pytest.raises(DuplicateHandlerError, match="a query has exactly one handler"):
        registry.register(GetCount, handler_with(GetCount, **{"return": int}))


def test_events_accept_several_handlers_in_registration_order() -> None:
    registry = Registry()
    handlers = [handler_with(OrderCreated) for _ in range(3)]
    for handler in handlers:
        registry.register(OrderCreated, handler)

    found = [r.spec.handler for r in registry.handlers_for_event(OrderCreated)]

    assert found == handlers


@pytest.mark.parametrize("message_type", [CreateOrder, GetCount])
def test_on_error_is_refused_for_commands_and_queries(message_type: type[Message]) -> None:
    registry = Registry()

    with pytest.raises(InvalidHandlerError, match="on_error applies to event handlers only"):
        registry.register(message_type, handler_with(message_type), on_error="continue")


def test_on_error_accepts_the_policy_by_name_for_events() -> None:
    registry = Registry()
    registry.register(OrderCreated, handler_with(OrderCreated), on_error="continue")

    (registration,) = registry.handlers_for_event(OrderCreated)
    assert registration.on_error is EventErrorPolicy.CONTINUE


def test_unknown_on_error_policy_is_refused() -> None:
    registry = Registry()

    with pytest.raises(ValueError, match="'ignore' is not a valid EventErrorPolicy"):
        registry.register(OrderCreated, handler_with(OrderCreated), on_error="ignore")  # type: ignore[arg-type]


# -- exact types, and include_subclasses -------------------------------------------------


def test_handlers_match_exact_types_by_default() -> None:
    registry = Registry()
    registry.register(GetOrders, handler_with(GetOrders))

    assert registry.handler_for(GetArchivedOrders) is None
    assert registry.registered_base(GetArchivedOrders) is GetOrders


def test_include_subclasses_makes_the_base_handler_handle_subclasses() -> None:
    registry = Registry()
    handler = handler_with(GetOrders)
    registry.register(GetOrders, handler, include_subclasses=True)

    registration = registry.handler_for(GetArchivedOrders)

    assert registration is not None
    assert registration.spec.handler is handler


def test_exact_registration_wins_over_an_including_base() -> None:
    registry = Registry()
    registry.register(GetOrders, handler_with(GetOrders), include_subclasses=True)
    archived = handler_with(GetArchivedOrders)
    registry.register(GetArchivedOrders, archived)

    registration = registry.handler_for(GetArchivedOrders)

    assert registration is not None
    assert registration.spec.handler is archived


# -- what can be registered --------------------------------------------------------------


@pytest.mark.parametrize("not_a_message", [int, dict, "CreateOrder", CreateOrder(user_id=1)])
def test_registering_for_a_non_message_type_is_refused(not_a_message: Any) -> None:
    registry = Registry()

    with pytest.raises(InvalidHandlerError) as excinfo:
        registry.register(not_a_message, handler_with(CreateOrder))

    assert isinstance(excinfo.value, TypeError), "InvalidHandlerError must also be a TypeError"
    assert "can only register handlers for Command, Query or Event subclasses" in str(excinfo.value)
    assert repr(not_a_message) in str(excinfo.value)


@pytest.mark.parametrize("base", [Command, Query, Event, Message])
def test_registering_for_a_base_message_class_is_refused(base: type[Message]) -> None:
    registry = Registry()

    with pytest.raises(
        InvalidHandlerError,
        match=f"register handlers for your own subclasses of {base.__name__}, not the base class",
    ):
        registry.register(base, handler_with(base))


@pytest.mark.parametrize("base", [Command[int], Query[int]], ids=["Command[int]", "Query[int]"])
def test_registering_for_a_parametrized_base_class_is_refused(base: type[Message]) -> None:
    # Command[int] is a base to subclass, not a message of its own: a handler registered
    # for it would never see the user's commands, which are subclasses.
    registry = Registry()

    with pytest.raises(InvalidHandlerError, match="your own subclasses"):
        registry.register(base, handler_with(base))


def test_registering_for_a_message_that_is_not_a_command_query_or_event_is_refused() -> None:
    # A direct Message subclass has no kind, so no mediator method can dispatch it.
    registry = Registry()

    with pytest.raises(InvalidHandlerError, match="Command, Query or Event"):
        registry.register(PlainMessage, handler_with(PlainMessage))


@pytest.mark.parametrize("handler", [42, "create_order", None], ids=repr)
def test_non_callable_handler_is_refused(handler: Any) -> None:
    registry = Registry()

    with pytest.raises(
        InvalidHandlerError,
        match=re.escape(f"handler for CreateOrder must be a function or a class, got {handler!r}"),
    ):
        registry.register(CreateOrder, handler)


def test_handler_without_a_message_parameter_is_refused() -> None:
    registry = Registry()

    def no_parameters():
        raise NotImplementedError

    with pytest.raises(InvalidHandlerError) as excinfo:
        registry.register(CreateOrder, no_parameters)

    text = str(excinfo.value)
    assert "no_parameters must take the CreateOrder as its first positional parameter" in text
    assert "def handle(message: CreateOrder, ...)" in text, "the message must show the fix"


def test_handler_whose_first_parameter_is_keyword_only_is_refused() -> None:
    registry = Registry()

    def keyword_only(*, command: CreateOrder) -> OrderId:
        raise NotImplementedError

    with pytest.raises(
        InvalidHandlerError,
        match="keyword_only must take the CreateOrder as its first positional parameter",
    ):
        registry.register(CreateOrder, keyword_only)


def test_handler_annotated_for_another_message_type_is_refused() -> None:
    registry = Registry()

    def cancel_order(command: CancelOrder) -> None:
        raise NotImplementedError

    with pytest.raises(InvalidHandlerError) as excinfo:
        registry.register(CreateOrder, cancel_order)

    text = str(excinfo.value)
    assert "cancel_order takes CancelOrder but is registered for CreateOrder" in text
    assert "annotate the message parameter as CreateOrder" in text


@pytest.mark.parametrize(
    "annotation",
    [CreateOrder, Command, Message, CreateOrder | CancelOrder, Any, object],
    ids=["exact", "Command", "Message", "union", "Any", "object"],
)
def test_message_annotation_may_be_the_type_a_base_or_a_union(annotation: Any) -> None:
    registry = Registry()
    handler = handler_with(CreateOrder)
    handler.__annotations__["message"] = annotation

    registry.register(CreateOrder, handler)

    assert registry.handler_for(CreateOrder) is not None


@pytest.mark.parametrize(
    ("message_type", "returns"),
    [
        (GetAnimal, Animal),
        (GetAnimal, Dog),
        (FindAnimal, Animal | None),
        (FindAnimal, Dog | None),
        (FindAnimal, Animal),
        (FindAnimal, None),
        (CreateOrder, OrderId),
        (GetCount, OrderId),
        (GetCount, Any),
        (CancelOrder, None),
        (GetOrders, list[int]),
        (Ping, str),
    ],
    ids=[
        "same class",
        "subclass",
        "X | None for X | None",
        "subclass | None for X | None",
        "X for X | None",
        "None for X | None",
        "NewType for the NewType",
        "NewType for its supertype",
        "Any",
        "None for Command[None]",
        "generic alias",
        "anything for an unparametrized query",
    ],
)
def test_compatible_return_annotations_are_accepted(message_type: type[Message], returns: Any):
    registry = Registry()

    registry.register(message_type, handler_with(message_type, **{"return": returns}))

    assert registry.handler_for(message_type) is not None


def test_missing_return_annotation_is_accepted() -> None:
    registry = Registry()

    def get_count(query: GetCount):
        return 1

    registry.register(GetCount, get_count)

    assert registry.handler_for(GetCount) is not None


@pytest.mark.parametrize(
    ("message_type", "returns", "expected"),
    [
        (
            GetCount,
            str,
            "returns str, but GetCount declares the result int; "
            "change the return annotation to int",
        ),
        (GetAnimal, Animal | None, "but GetAnimal declares the result Animal"),
        (GetAnimal, int, "returns int, but GetAnimal declares the result Animal"),
        (CreateOrder, str, "returns str, but CreateOrder declares the result OrderId"),
        (CancelOrder, int, "returns int, but CancelOrder declares the result None"),
        (GetOrders, dict[str, int], "but GetOrders declares the result list[int]"),
    ],
    ids=[
        "str for int",
        "X | None for X",
        "unrelated class",
        "str for NewType",
        "int for None",
        "dict for list",
    ],
)
def test_incompatible_return_annotation_is_refused(
    message_type: type[Message], returns: Any, expected: str
) -> None:
    registry = Registry()

    with pytest.raises(InvalidHandlerError, match=re.escape(expected)):
        registry.register(message_type, handler_with(message_type, **{"return": returns}))

    assert registry.handler_for(message_type) is None, "a refused handler must not be registered"


def test_coroutine_handler_return_annotation_is_checked_against_the_awaited_result() -> None:
    registry = Registry()

    async def get_count_as_text(query: GetCount) -> str:
        raise NotImplementedError

    async def get_count(query: GetCount) -> int:
        raise NotImplementedError

    with pytest.raises(
        InvalidHandlerError, match="returns str, but GetCount declares the result int"
    ):
        registry.register(GetCount, get_count_as_text)
    registry.register(GetCount, get_count)


def test_event_handler_return_annotation_is_not_checked() -> None:
    registry = Registry()

    registry.register(OrderCreated, handler_with(OrderCreated, **{"return": int}))

    assert len(registry.handlers_for_event(OrderCreated)) == 1


def test_star_args_are_refused() -> None:
    registry = Registry()

    def with_args(command: CreateOrder, *args: object) -> OrderId:
        raise NotImplementedError

    with pytest.raises(InvalidHandlerError) as excinfo:
        registry.register(CreateOrder, with_args)

    text = str(excinfo.value)
    assert "with_args: *args and **kwargs cannot be resolved" in text
    assert "declare each dependency as a keyword parameter" in text


def test_star_star_kwargs_are_refused() -> None:
    registry = Registry()

    def with_kwargs(command: CreateOrder, **kwargs: object) -> OrderId:
        raise NotImplementedError

    with pytest.raises(InvalidHandlerError, match=r"\*args and \*\*kwargs cannot be resolved"):
        registry.register(CreateOrder, with_kwargs)


def test_star_args_in_a_class_handler_init_are_refused() -> None:
    registry = Registry()

    class CreateOrderHandler:
        def __init__(self, *args: object) -> None:
            pass

        def __call__(self, command: CreateOrder) -> OrderId:
            raise NotImplementedError

    with pytest.raises(InvalidHandlerError, match=r"\*args and \*\*kwargs cannot be resolved"):
        registry.register(CreateOrder, CreateOrderHandler)


def test_positional_only_dependency_is_refused() -> None:
    registry = Registry()

    def positional(command: CreateOrder, repo: Repo, /) -> OrderId:
        raise NotImplementedError

    with pytest.raises(InvalidHandlerError, match="dependency 'repo' must be a keyword parameter"):
        registry.register(CreateOrder, positional)


def test_class_handler_without_call_is_refused() -> None:
    registry = Registry()

    class CreateOrderHandler:
        def handle(self, command: CreateOrder) -> OrderId:
            raise NotImplementedError

    with pytest.raises(InvalidHandlerError) as excinfo:
        registry.register(CreateOrder, CreateOrderHandler)

    text = str(excinfo.value)
    assert "CreateOrderHandler for CreateOrder must define __call__(self, message)" in text
    assert "its __init__ takes the dependencies" in text


def test_class_handler_whose_call_takes_extra_required_parameters_is_refused() -> None:
    registry = Registry()

    class CreateOrderHandler:
        def __call__(self, command: CreateOrder, repo: Repo) -> OrderId:
            raise NotImplementedError

    with pytest.raises(InvalidHandlerError) as excinfo:
        registry.register(CreateOrder, CreateOrderHandler)

    text = str(excinfo.value)
    assert "CreateOrderHandler.__call__ takes only the message" in text
    assert "move repo to __init__" in text


def test_class_handler_call_may_have_extra_parameters_with_defaults() -> None:
    registry = Registry()

    class CreateOrderHandler:
        def __call__(self, command: CreateOrder, retries: int = 3) -> OrderId:
            raise NotImplementedError

    registry.register(CreateOrder, CreateOrderHandler)

    registration = registry.handler_for(CreateOrder)
    assert registration is not None
    assert registration.spec.dependencies == (), "__call__ defaults are not dependencies"


def test_class_handler_return_annotation_is_checked() -> None:
    registry = Registry()

    class GetCountHandler:
        def __call__(self, query: GetCount) -> str:
            raise NotImplementedError

    with pytest.raises(InvalidHandlerError, match=r"GetCountHandler\.__call__ returns str"):
        registry.register(GetCount, GetCountHandler)


def test_class_handler_cannot_take_the_dispatch_context() -> None:
    registry = Registry()

    class CreateOrderHandler:
        def __init__(self, ctx: DispatchContext) -> None:
            self.ctx = ctx

        def __call__(self, command: CreateOrder) -> OrderId:
            raise NotImplementedError

    with pytest.raises(InvalidHandlerError, match="only a function handler receives the dispatch"):
        registry.register(CreateOrder, CreateOrderHandler)


def test_dispatch_context_must_be_received_as_ctx() -> None:
    registry = Registry()

    def handler(command: CreateOrder, context: DispatchContext) -> OrderId:
        raise NotImplementedError

    with pytest.raises(InvalidHandlerError, match="as a parameter named 'ctx'"):
        registry.register(CreateOrder, handler)


@pytest.mark.parametrize("mediator_type", [Mediator, AsyncMediator])
def test_mediator_register_applies_the_same_checks(mediator_type: type[Any]) -> None:
    mediator = mediator_type()

    def no_parameters():
        raise NotImplementedError

    with pytest.raises(InvalidHandlerError, match="first positional parameter"):
        mediator.register(CreateOrder, no_parameters)
    with pytest.raises(InvalidHandlerError, match="can only register handlers"):
        mediator.register(int, create_order)
    mediator.register(CreateOrder, create_order)
    with pytest.raises(DuplicateHandlerError):
        mediator.register(CreateOrder, other_create_order)


def test_include_copies_every_registration_with_its_options() -> None:
    from cqrs_kit import Command, Event, EventErrorPolicy, Query, Registry
    from cqrs_kit.exceptions import DuplicateHandlerError

    class Make(Command[int]):
        pass

    class Look(Query[int]):
        pass

    class Seen(Event):
        pass

    write, read, merged = Registry(), Registry(), Registry()
    write.register(Make, lambda c: 1)
    write.register(Seen, lambda e: None, on_error="continue")
    read.register(Look, lambda q: 2, include_subclasses=True)
    merged.include(write)
    merged.include(read)
    assert set(merged.message_types) == {Make, Look, Seen}
    assert merged.handler_for(Look).include_subclasses  # type: ignore[union-attr]
    assert merged.handlers_for_event(Seen)[0].on_error is EventErrorPolicy.CONTINUE
    with pytest.raises(DuplicateHandlerError):
        merged.include(write)
