"""Read-your-own-writes: a receipt from ``send`` and a requirement for ``ask``.

A command's receipt carries its consistency token: the highest event log position it
appended. A query asked with ``consistency=AtLeast(token)`` waits until every read model it
reads has applied that position::

    receipt = Receipt()
    order_id = mediator.send(CreateOrder(...), receipt=receipt)
    detail = mediator.ask(GetOrderDetail(order_id=order_id), consistency=AtLeast(receipt.token))
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CONSISTENCY_KEY", "AtLeast", "Receipt"]

CONSISTENCY_KEY = "cqrs_kit.consistency"
"""The dispatch metadata key under which ``ask`` passes an :class:`AtLeast`."""


@dataclass(slots=True)
class Receipt:
    """Filled by ``send(..., receipt=...)`` when the command returns.

    Attributes:
        token: The highest event log position the command appended, or ``None`` when it
            appended nothing (then there is nothing to wait for).
        correlation_id: The dispatch's correlation id.
    """

    token: int | None = None
    correlation_id: str | None = None


@dataclass(slots=True)
class AtLeast:
    """Require the read models a query reads to have applied ``token``.

    Attributes:
        token: The position to wait for (``None`` or 0: no wait).
        timeout: Seconds to wait at most.
        allow_stale: On timeout, run the query anyway instead of raising
            :class:`~cqrs_kit.ConsistencyTimeoutError`; :attr:`stale` then says so.
        stale: Set by the dispatch: whether the query ran before the read models caught up.
    """

    token: int | None
    timeout: float = 5.0
    allow_stale: bool = False
    stale: bool = False
