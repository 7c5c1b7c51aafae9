"""The HTTP API: the seed's routes, authenticated, over the container's mediator.

- ``POST /orders``: ``CreateOrder`` for the caller; 201 ``{"orderId": ...}``.
- ``PATCH /orders/{id}/status``: ``UpdateOrderStatus``; staff only; 204.
- ``GET /orders?cursor=``: the caller's orders, newest first, 20 a page, and ``nextCursor``.
- ``GET /orders/{id}``: one order; someone else's is a 404, like a missing one.
- ``GET /analytics/daily?start=&end=``: orders and revenue per day and status; staff only.

Commands go to the write side and queries to the read side, through one
:class:`~cqrs_kit.Mediator`; the endpoints are plain ``def`` functions (the mediator is
synchronous), which FastAPI runs in its thread pool.

**Authentication.** ``Authorization: Bearer <token>``, a token from
``python -m reference_app token USER_ID``. Only its SHA-256 hash is stored; a request is
authenticated by hashing the token and looking the hash up (one indexed read of the write
database, with a statement built once). A missing or unknown token is a 401 with
``WWW-Authenticate: Bearer``.

**Read your own writes.** A write answers with ``X-Consistency-Token``; a read that sends
it back waits (up to ``ORDERS_CONSISTENCY_TIMEOUT``) until the read models it reads have
applied that write, so the caller sees its own change even when projections are ``async``.

**Errors** are mapped to status codes in one place, :data:`ERROR_STATUS`, by exception
type: 400 a tampered, malformed or foreign cursor; 401 no valid token; 403 not staff; 404
an unknown order (or another user's); 409 a status move the order's state machine refuses;
422 an invalid request, and an order naming a product that does not exist or is not sold (the
request is well formed, but cannot be done: 422 names the offending field like any other
validation error, so a client handles both alike); 503 with ``Retry-After`` when a write kept
conflicting or the read models did not catch up in time. Requests are validated twice: the
request models here check types (camelCase JSON, ids in range, no NUL or unpaired surrogate
in text, which the databases cannot store), and the command or query built from them checks
the domain rules; both failures are a 422 whose ``loc`` uses the request's own field names.

JSON is camelCase (``orderId``, ``customerName``, ``itemCount``, ``placedAt``,
``nextCursor``), from alias generators on the response models here; the views themselves
stay snake_case. Amounts are exact decimal strings (``"12.50"``).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any, Final, TypeVar

import sqlalchemy as sa
from fastapi import APIRouter, Depends, FastAPI, Header, Path, Query, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

import cqrs_kit
from cqrs_kit import AtLeast, ConcurrencyError, ConsistencyTimeoutError, Mediator, Receipt
from reference_app.config import Settings
from reference_app.container import Container, build_container, close_container
from reference_app.read.cursor import InvalidCursorError
from reference_app.read.database import ReadDatabase
from reference_app.read.queries import GetDailyAnalytics, GetOrderDetail, ListUserOrders
from reference_app.write.domain import (
    IllegalTransitionError,
    Money,
    OrderError,
    OrderId,
    OrderStatus,
    UnknownOrderError,
    UnknownProductError,
    UnknownUserError,
    UserId,
)
from reference_app.write.messages import CreateOrder, UpdateOrderStatus
from reference_app.write.schema import api_tokens, users
from reference_app.write.tokens import hash_token

__all__ = [
    "CONSISTENCY_HEADER",
    "ERROR_STATUS",
    "ForbiddenError",
    "NotAuthenticatedError",
    "Principal",
    "TokenAuthenticator",
    "create_app",
]

T = TypeVar("T")

CONSISTENCY_HEADER: Final = "X-Consistency-Token"
"""Sent by writes; sent back by reads that must see those writes."""

_MAX_ID = 2**31 - 1  # the id columns are 32-bit INTEGERs on PostgreSQL
_MAX_TOKEN_LENGTH = 256  # issued tokens are 43 characters
_RETRY_AFTER_SECONDS = "1"


# -- authentication ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling.

    Attributes:
        user_id: The authenticated user.
        is_staff: Staff may update any order and read analytics.
    """

    user_id: UserId
    is_staff: bool


class NotAuthenticatedError(Exception):
    """No bearer token, or one that matches no user (401).

    Attributes:
        token_given: Whether a token was presented (then it was invalid).
    """

    def __init__(self, message: str, *, token_given: bool) -> None:
        """Say what was wrong with the credentials."""
        super().__init__(message)
        self.token_given = token_given


class ForbiddenError(Exception):
    """The caller is authenticated but may not do this (403)."""


class TokenAuthenticator:
    """Finds the user of a bearer token by its hash, in the write database.

    Args:
        database: The write database, read-only (the container's ``writer_reader``).
    """

    __slots__ = ("_database",)

    _statement = (
        sa.select(users.c.id, users.c.is_staff)
        .join_from(api_tokens, users, api_tokens.c.user_id == users.c.id)
        .where(api_tokens.c.token_hash == sa.bindparam("token_hash"))
    )

    def __init__(self, database: ReadDatabase) -> None:
        """Look tokens up in ``database``."""
        self._database = database

    def authenticate(self, token: str) -> Principal | None:
        """Return who ``token`` authenticates, or ``None`` if nobody."""
        if not token or len(token) > _MAX_TOKEN_LENGTH:
            return None
        rows = self._database.all(self._statement, {"token_hash": hash_token(token)})
        return Principal(UserId(rows[0].id), bool(rows[0].is_staff)) if rows else None


@dataclass(frozen=True, slots=True)
class _Services:
    mediator: Mediator
    authenticator: TokenAuthenticator
    consistency_timeout: float


def _services(request: Request) -> _Services:
    services: _Services = request.app.state.services
    return services


_bearer = HTTPBearer(
    auto_error=False,
    description="An API token, issued by `python -m reference_app token USER_ID`.",
)


# --8<-- [start:auth]
def current_user(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """Authenticate the request (a FastAPI dependency).

    Raises:
        NotAuthenticatedError: No bearer token, or an unknown one.
    """
    if credentials is None:
        raise NotAuthenticatedError(
            "send an API token: Authorization: Bearer <token>", token_given=False
        )
    principal = _services(request).authenticator.authenticate(credentials.credentials)
    if principal is None:
        raise NotAuthenticatedError("the API token is invalid", token_given=True)
    return principal


def staff_user(principal: Annotated[Principal, Depends(current_user)]) -> Principal:
    """Require a staff member (a FastAPI dependency).

    Raises:
        ForbiddenError: The caller is not staff.
    """
    if not principal.is_staff:
        raise ForbiddenError("only staff may do this")
    return principal


User = Annotated[Principal, Depends(current_user)]
Staff = Annotated[Principal, Depends(staff_user)]
# --8<-- [end:auth]
Services = Annotated[_Services, Depends(_services)]


# -- requests ---------------------------------------------------------------------------------


def _storable(value: str) -> str:
    """Refuse text the databases cannot store: NUL, and unpaired surrogates (not UTF-8)."""
    if "\x00" in value:
        raise PydanticCustomError("invalid_text", "text must not contain NUL characters")
    try:
        value.encode()
    except UnicodeEncodeError:
        raise PydanticCustomError("invalid_text", "text must be valid Unicode") from None
    return value


_Text = Annotated[str, AfterValidator(_storable)]
_Id = Annotated[int, Field(ge=1, le=_MAX_ID)]


class _Request(BaseModel):
    # Requests are only ever validated from JSON, by their camelCase aliases: no code
    # constructs them by field name, which is what the plugin's check is about.
    model_config = ConfigDict(  # type: ignore[pydantic-alias]
        alias_generator=to_camel, extra="forbid", frozen=True
    )


class OrderLineRequest(_Request):
    """One line of a new order: ``{"productId": 3, "quantity": 2}`` (1 to 1,000 units)."""

    product_id: _Id
    quantity: int


class AddressRequest(_Request):
    """A shipping address; ``country`` is an ISO 3166-1 alpha-2 code (``"FR"``)."""

    line1: _Text
    city: _Text
    postal_code: _Text
    country: _Text


class CreateOrderRequest(_Request):
    """A new order for the caller: 1 to 50 lines, one per product."""

    items: list[OrderLineRequest]
    shipping_address: AddressRequest


class UpdateStatusRequest(_Request):
    """Move an order to ``status``, optionally saying why in ``note``."""

    status: OrderStatus
    note: _Text | None = None


def _build(factory: Callable[[Mapping[str, Any]], T], source: str, values: Mapping[str, Any]) -> T:
    """Build a command or query; its validation errors become a 422 on the request's fields."""
    try:
        return factory(values)
    except ValidationError as exc:
        raise RequestValidationError(
            [
                {
                    **error,
                    "loc": (
                        source,
                        *(to_camel(p) if isinstance(p, str) else p for p in error["loc"]),
                    ),
                }
                for error in exc.errors(include_url=False)
            ]
        ) from exc


# --8<-- [start:consistency]
def _consistency(token: int | None, services: _Services) -> AtLeast | None:
    return None if token is None else AtLeast(token, timeout=services.consistency_timeout)


ConsistencyToken = Annotated[
    int | None,
    Header(
        alias=CONSISTENCY_HEADER,
        ge=1,
        le=2**63 - 1,
        description="A write's token: wait until the read models include that write.",
    ),
]
# --8<-- [end:consistency]


# -- responses --------------------------------------------------------------------------------


class _Response(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        serialize_by_alias=True,
        validate_by_name=True,
        from_attributes=True,
        frozen=True,
    )


class OrderCreatedResponse(_Response):
    """The id of the order just placed."""

    order_id: int


class OrderListItemResponse(_Response):
    """One order of a list."""

    order_id: int
    status: OrderStatus
    customer_name: str
    total: Money
    item_count: int
    placed_at: dt.datetime


class OrderPageResponse(_Response):
    """A page of the caller's orders; pass ``nextCursor`` back as ``?cursor=`` for the next."""

    items: list[OrderListItemResponse]
    next_cursor: str | None


class AddressResponse(_Response):
    """A shipping address."""

    line1: str
    city: str
    postal_code: str
    country: str


class OrderItemResponse(_Response):
    """One line of an order, at the price captured when it was placed."""

    product_id: int
    product_name: str
    unit_price: Money
    quantity: int
    line_total: Money


class StatusChangeResponse(_Response):
    """One entry of an order's status history (``fromStatus`` is null for the placing)."""

    from_status: OrderStatus | None
    to_status: OrderStatus
    note: str | None
    changed_at: dt.datetime


class OrderDetailResponse(_Response):
    """Everything about one order."""

    order_id: int
    user_id: int
    customer_name: str
    customer_email: str
    status: OrderStatus
    total: Money
    shipping_address: AddressResponse
    placed_at: dt.datetime
    items: list[OrderItemResponse]
    history: list[StatusChangeResponse]


class DailyStatResponse(_Response):
    """Orders placed on one day (UTC) that are now in one status."""

    day: dt.date
    status: OrderStatus
    order_count: int
    revenue: Money


class DailyAnalyticsResponse(_Response):
    """Per day and status, for the requested range; days without orders are left out."""

    items: list[DailyStatResponse]


class ErrorResponse(BaseModel):
    """An error other than a validation error.

    Attributes:
        detail: What went wrong, for people.
        type: What went wrong, for programs (``unknown_order``, ``invalid_cursor``, ...).
    """

    detail: str
    type: str


# -- errors, mapped in one place --------------------------------------------------------------

# --8<-- [start:errors]
ERROR_STATUS: Final[Mapping[type[Exception], tuple[int, str]]] = {
    InvalidCursorError: (400, "invalid_cursor"),
    NotAuthenticatedError: (401, "not_authenticated"),
    ForbiddenError: (403, "forbidden"),
    UnknownOrderError: (404, "unknown_order"),
    IllegalTransitionError: (409, "illegal_transition"),
    UnknownProductError: (422, "unknown_product"),
    UnknownUserError: (422, "unknown_user"),
    OrderError: (422, "refused"),  # any other domain refusal: the request cannot be done
    ConcurrencyError: (503, "write_conflict"),
    ConsistencyTimeoutError: (503, "consistency_timeout"),
}
"""Status code and error type of each exception an endpoint may raise.

Looked up along the exception's MRO by Starlette, so subclasses map like their base.
Anything else is a bug or an outage, and a 500.
"""
# --8<-- [end:errors]


class _AsciiJSONResponse(JSONResponse):
    """JSON escaped to ASCII: an unpaired surrogate echoed from a request stays renderable."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, separators=(",", ":")).encode()


def _error_response(request: Request, exc: Exception) -> Response:
    status, kind = next(ERROR_STATUS[t] for t in type(exc).__mro__ if t in ERROR_STATUS)
    headers: dict[str, str] = {}
    if isinstance(exc, NotAuthenticatedError):
        headers["WWW-Authenticate"] = (
            'Bearer error="invalid_token"' if exc.token_given else "Bearer"
        )
    elif status == 503:  # noqa: PLR2004 - the one status that asks clients to come back
        headers["Retry-After"] = _RETRY_AFTER_SECONDS
    if status == 422:  # noqa: PLR2004 - same shape as every other 422
        loc: tuple[str, ...] = ("body", "items") if kind == "unknown_product" else ("body",)
        error: dict[str, object] = {"type": kind, "loc": loc, "msg": str(exc)}
        if isinstance(exc, UnknownProductError):
            error["input"] = [int(product_id) for product_id in exc.product_ids]
        return _AsciiJSONResponse({"detail": [error]}, status_code=status)
    return _AsciiJSONResponse({"detail": str(exc), "type": kind}, status, headers=headers)


def _validation_response(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)  # noqa: S101 - registered for it only
    errors = []
    for error in exc.errors():
        rendered = dict(error)
        if "ctx" in rendered:  # may hold the exception a validator raised
            rendered["ctx"] = {
                key: value if isinstance(value, int | float | str) else str(value)
                for key, value in rendered["ctx"].items()
            }
        errors.append(rendered)
    return _AsciiJSONResponse({"detail": jsonable_encoder(errors)}, status_code=422)


def _documented(*statuses: int) -> dict[int | str, dict[str, Any]]:
    described = {
        400: "The cursor is malformed, tampered with, or another user's.",
        401: "No bearer token, or an invalid one.",
        403: "Only staff may do this.",
        404: "No such order (or not yours).",
        409: "The order's status cannot move there from where it is.",
        503: "Retry after `Retry-After` seconds: the write kept conflicting, or the read "
        "models did not catch up with `X-Consistency-Token` in time.",
    }
    retry = {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}}
    return {
        status: {
            "model": ErrorResponse,
            "description": described[status],
            **({"headers": retry} if status == 503 else {}),  # noqa: PLR2004
        }
        for status in statuses
    }


_TOKEN_HEADER_DOC = {
    CONSISTENCY_HEADER: {
        "description": "Send it back on reads to see this write.",
        "schema": {"type": "integer"},
    }
}


# -- routes -----------------------------------------------------------------------------------

router = APIRouter()


# --8<-- [start:create_order]
@router.post(
    "/orders",
    status_code=201,
    response_model=OrderCreatedResponse,
    responses={201: {"headers": _TOKEN_HEADER_DOC}, **_documented(401, 503)},
    summary="Place an order",
)
def create_order(
    body: CreateOrderRequest, user: User, services: Services, response: Response
) -> OrderCreatedResponse:
    """Place an order for the caller, at the current prices."""
    command = _build(
        CreateOrder.model_validate,
        "body",
        {"user_id": user.user_id, **body.model_dump(by_alias=False)},
    )
    receipt = Receipt()
    order_id = services.mediator.send(command, receipt=receipt)
    _set_token(response, receipt)
    response.headers["Location"] = f"/orders/{order_id}"
    return OrderCreatedResponse(order_id=order_id)
    # --8<-- [end:create_order]


@router.patch(
    "/orders/{order_id}/status",
    status_code=204,
    response_class=Response,
    responses={204: {"headers": _TOKEN_HEADER_DOC}, **_documented(401, 403, 404, 409, 503)},
    summary="Change an order's status (staff)",
)
def update_order_status(
    order_id: Annotated[int, Path(ge=1, le=_MAX_ID)],
    body: UpdateStatusRequest,
    staff: Staff,
    services: Services,
) -> Response:
    """Move an order along pending -> confirmed -> shipped -> delivered, or cancel it."""
    command = _build(
        UpdateOrderStatus.model_validate,
        "body",
        {"order_id": order_id, **body.model_dump(by_alias=False)},
    )
    receipt = Receipt()
    services.mediator.send(command, receipt=receipt)
    response = Response(status_code=204)
    _set_token(response, receipt)
    return response


# --8<-- [start:list_orders]
@router.get(
    "/orders",
    response_model=OrderPageResponse,
    responses=_documented(400, 401, 503),
    summary="List your orders, newest first",
)
def list_orders(
    user: User,
    services: Services,
    cursor: Annotated[str | None, Query(description="`nextCursor` of the previous page")] = None,
    consistency_token: ConsistencyToken = None,
) -> OrderPageResponse:
    """The caller's orders, newest first, 20 a page."""
    query = ListUserOrders(user_id=user.user_id, cursor=cursor or None)  # "?cursor=": page 1
    page = services.mediator.ask(query, consistency=_consistency(consistency_token, services))
    return OrderPageResponse.model_validate(page)
    # --8<-- [end:list_orders]


# --8<-- [start:get_order]
@router.get(
    "/orders/{order_id}",
    response_model=OrderDetailResponse,
    responses=_documented(401, 404, 503),
    summary="Get one of your orders",
)
def get_order(
    order_id: Annotated[int, Path(ge=1, le=_MAX_ID)],
    user: User,
    services: Services,
    consistency_token: ConsistencyToken = None,
) -> OrderDetailResponse:
    """One order with its lines and status history; staff may read any order."""
    query = GetOrderDetail(order_id=OrderId(order_id))
    detail = services.mediator.ask(query, consistency=_consistency(consistency_token, services))
    if detail is None or (detail.user_id != user.user_id and not user.is_staff):
        # Someone else's order is "not found" too: its existence is nobody else's business.
        raise UnknownOrderError(OrderId(order_id))
    return OrderDetailResponse.model_validate(detail)
    # --8<-- [end:get_order]


@router.get(
    "/analytics/daily",
    response_model=DailyAnalyticsResponse,
    responses=_documented(401, 403, 503),
    summary="Orders and revenue per day and status (staff)",
)
def daily_analytics(
    start: dt.date,
    end: dt.date,
    staff: Staff,
    services: Services,
    consistency_token: ConsistencyToken = None,
) -> DailyAnalyticsResponse:
    """Order count and revenue per day (UTC) and current status, ``start`` to ``end`` inclusive."""
    query = _build(GetDailyAnalytics.model_validate, "query", {"start": start, "end": end})
    stats = services.mediator.ask(query, consistency=_consistency(consistency_token, services))
    return DailyAnalyticsResponse(items=[DailyStatResponse.model_validate(s) for s in stats])


# --8<-- [start:set_token]
def _set_token(response: Response, receipt: Receipt) -> None:
    if receipt.token is not None:
        response.headers[CONSISTENCY_HEADER] = str(receipt.token)
    # --8<-- [end:set_token]


# -- the app ----------------------------------------------------------------------------------


def create_app(source: Container | Settings) -> FastAPI:
    """Build the FastAPI app over a container, or over a container built from settings.

    Everything is made up front (engines, projections, the mediator), so the first request
    pays nothing and a configuration mistake fails here, not in a request.

    Args:
        source: A container the caller owns (and closes), or settings: the app then builds
            its own container and closes it when it shuts down (stopping the worker and
            disposing the engines).

    Returns:
        The app.
    """
    owned = isinstance(source, Settings)
    container = build_container(source) if isinstance(source, Settings) else source
    try:
        services = _Services(
            mediator=container.mediator(),
            authenticator=TokenAuthenticator(container.writer_reader()),
            consistency_timeout=container.settings().consistency_timeout,
        )
    except BaseException:
        if owned:
            close_container(container)
        raise

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if owned:
                close_container(container)

    app = FastAPI(
        title="Orders",
        summary="The cqrs_kit reference app: orders, with read models kept by projections.",
        version=cqrs_kit.__version__,
        lifespan=lifespan,
    )
    app.state.services = services
    app.state.container = container
    app.include_router(router)
    # --8<-- [start:exception_handlers]
    for exc_type in ERROR_STATUS:
        app.add_exception_handler(exc_type, _error_response)
    app.add_exception_handler(RequestValidationError, _validation_response)
    # --8<-- [end:exception_handlers]
    return app
