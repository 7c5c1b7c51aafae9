"""One load: generate some tables' rows and insert them, one transaction per batch of orders."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlalchemy as sa

from reference_app.seed.generator import _Generator
from reference_app.seed.sinks import _Sink, _sink
from reference_app.seed.values import _Clock

if TYPE_CHECKING:
    from reference_app.seed.seeding import Progress


@dataclass(frozen=True, slots=True)
class _Plan:
    """What to generate (the arguments of :func:`seed` that decide the data)."""

    orders: int
    users: int
    products: int
    seed: int
    batch: int


def _load(
    tables: dict[sa.Engine, list[sa.Table]],
    plan: _Plan,
    progress: Progress | None,
    before_closing: Callable[[dict[sa.Engine, _Sink]], None] | None = None,
) -> _Generator:
    """Generate the rows of ``tables`` and insert them, one transaction per batch of orders.

    Args:
        tables: The databases to load, and the tables of each to generate.
        plan: What to generate.
        progress: Called as ``progress(orders_done, orders)``, at 0 and between batches.
        before_closing: Called with the sinks after the last batch, before they build the
            indexes.

    Returns:
        The generator, which counted what it made.
    """
    clock = _Clock()
    sinks: dict[sa.Engine, _Sink] = {}
    try:
        for target, loaded in tables.items():
            sinks[target] = _sink(target, clock, loaded)
        generator = _Generator(
            random.Random(plan.seed),  # noqa: S311 - reproducible test data, not secrets
            {table.name: sinks[target] for target, loaded in tables.items() for table in loaded},
        )
        if progress is not None:
            progress(0, plan.orders)
        generator.add_users(plan.users)
        generator.add_products(plan.products)
        placed = generator.placed_times(plan.orders)
        customers = generator.customers_of(plan.orders)
        analytics: dict[tuple[int, str], list[int]] = {}
        for start in range(0, plan.orders, plan.batch):
            stop = min(start + plan.batch, plan.orders)
            generator.add_orders(start + 1, placed[start:stop], customers[start:stop], analytics)
            for sink in sinks.values():
                sink.commit()
            if progress is not None and stop < plan.orders:
                progress(stop, plan.orders)
        generator.add_analytics(analytics)
        if before_closing is not None:
            before_closing(sinks)
    except BaseException:
        with contextlib.suppress(Exception):  # the first error is the one to report
            _close(list(sinks.values()), finish=False)
        raise
    _close(list(sinks.values()), finish=True)
    return generator


def _close(sinks: Sequence[_Sink], *, finish: bool) -> None:
    """Close every sink, side by side (``sqlite3`` lets go of the GIL as it builds indexes).

    Raises:
        Exception: The first error of any sink, once all are closed.
    """
    if len(sinks) == 1:
        sinks[0].close(finish=finish)
        return
    with ThreadPoolExecutor(max_workers=len(sinks)) as pool:
        closing = [pool.submit(sink.close, finish=finish) for sink in sinks]
    for future in closing:
        future.result()
