"""Dispatch overhead: a direct handler call next to the same call through a mediator.

Each ``benchmark.group`` holds a direct baseline and its mediated twin, so the report shows
them side by side. Run with ``.venv/bin/pytest benchmarks/test_dispatch.py --benchmark-only``.

Sync cases time 1000 calls per round (``benchmark.pedantic``, 300 rounds) and report the
time per call. Async cases time one ``loop.run_until_complete`` of a coroutine that awaits
the call ``BATCH`` (1000) times (300 rounds), so their figures are per 1000 calls: read
microseconds per round as nanoseconds per call. The event loop's own cost per round is
spread over the batch and is the same for the baseline and the mediated twin.

For overhead figures (mediated minus direct, best of many repeats) run
``python -m benchmarks.dispatch_overhead``; see benchmarks/README.md.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest

from benchmarks._cases import (
    BATCH,
    DI_SKIP_REASON,
    QUERY,
    REPO,
    async_mediator,
    direct_batch,
    direct_batch_with_repo,
    handle,
    handle_with_repo,
    mediated_batch,
    sync_mediator,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


def bench(group: str) -> pytest.MarkDecorator:
    """Group a direct baseline with its mediated twins, side by side in the report."""
    return pytest.mark.benchmark(group=group)


# Fixed, not calibrated: pytest-benchmark's calibration picks 1 iteration per round for a
# ~1.5 us call on a noisy machine, which lets the timer's own cost inflate it.
SYNC_ITERATIONS = 1000  # calls timed together; the report divides by this
SYNC_ROUNDS = 300
ASYNC_ROUNDS = 300


def run_calls(benchmark: Any, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return benchmark.pedantic(
        function,
        args=args,
        kwargs=kwargs,
        iterations=SYNC_ITERATIONS,
        rounds=SYNC_ROUNDS,
        warmup_rounds=3,
    )


needs_di = pytest.mark.skipif(DI_SKIP_REASON is not None, reason=str(DI_SKIP_REASON))


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def run_batches(benchmark: Any, loop: asyncio.AbstractEventLoop, make: Callable[[], Any]) -> None:
    benchmark.extra_info["calls_per_round"] = BATCH
    benchmark.pedantic(
        lambda: loop.run_until_complete(make()), rounds=ASYNC_ROUNDS, warmup_rounds=3
    )


# -- sync: no middleware ------------------------------------------------------------------


@bench("sync: bare")
def test_sync_direct(benchmark: Any) -> None:
    assert run_calls(benchmark, handle, QUERY) == 1


@bench("sync: bare")
def test_sync_mediator(benchmark: Any) -> None:
    assert run_calls(benchmark, sync_mediator("bare").ask, QUERY) == 1


# -- sync: no-op middleware ---------------------------------------------------------------


@bench("sync: no-op middleware")
def test_sync_direct_vs_middleware(benchmark: Any) -> None:
    assert run_calls(benchmark, handle, QUERY) == 1


@bench("sync: no-op middleware")
def test_sync_mediator_1_middleware(benchmark: Any) -> None:
    assert run_calls(benchmark, sync_mediator("mw1").ask, QUERY) == 1


@bench("sync: no-op middleware")
def test_sync_mediator_3_middleware(benchmark: Any) -> None:
    assert run_calls(benchmark, sync_mediator("mw3").ask, QUERY) == 1


# -- sync: a dependency -------------------------------------------------------------------


@bench("sync: dependency")
def test_sync_direct_with_dependency(benchmark: Any) -> None:
    assert run_calls(benchmark, handle_with_repo, QUERY, repo=REPO) == 2


@bench("sync: dependency")
def test_sync_mediator_dependencies_resolver(benchmark: Any) -> None:
    assert run_calls(benchmark, sync_mediator("dependencies").ask, QUERY) == 2


@needs_di
@bench("sync: dependency")
def test_sync_mediator_container_resolver(benchmark: Any) -> None:
    assert run_calls(benchmark, sync_mediator("container").ask, QUERY) == 2


# -- async (per 1000 calls) ---------------------------------------------------------------


@bench("async x1000: bare")
def test_async_direct(benchmark: Any, loop: asyncio.AbstractEventLoop) -> None:
    run_batches(benchmark, loop, direct_batch)


@bench("async x1000: bare")
def test_async_mediator(benchmark: Any, loop: asyncio.AbstractEventLoop) -> None:
    mediator = async_mediator("bare")
    assert loop.run_until_complete(mediator.ask(QUERY)) == 1
    run_batches(benchmark, loop, lambda: mediated_batch(mediator))


@bench("async x1000: no-op middleware")
def test_async_direct_vs_middleware(benchmark: Any, loop: asyncio.AbstractEventLoop) -> None:
    run_batches(benchmark, loop, direct_batch)


@bench("async x1000: no-op middleware")
def test_async_mediator_1_middleware(benchmark: Any, loop: asyncio.AbstractEventLoop) -> None:
    mediator = async_mediator("mw1")
    assert loop.run_until_complete(mediator.ask(QUERY)) == 1
    run_batches(benchmark, loop, lambda: mediated_batch(mediator))


@bench("async x1000: no-op middleware")
def test_async_mediator_3_middleware(benchmark: Any, loop: asyncio.AbstractEventLoop) -> None:
    mediator = async_mediator("mw3")
    assert loop.run_until_complete(mediator.ask(QUERY)) == 1
    run_batches(benchmark, loop, lambda: mediated_batch(mediator))


@bench("async x1000: dependency")
def test_async_direct_with_dependency(benchmark: Any, loop: asyncio.AbstractEventLoop) -> None:
    run_batches(benchmark, loop, direct_batch_with_repo)


@bench("async x1000: dependency")
def test_async_mediator_dependencies_resolver(
    benchmark: Any, loop: asyncio.AbstractEventLoop
) -> None:
    mediator = async_mediator("dependencies")
    assert loop.run_until_complete(mediator.ask(QUERY)) == 2
    run_batches(benchmark, loop, lambda: mediated_batch(mediator))


@needs_di
@bench("async x1000: dependency")
def test_async_mediator_container_resolver(benchmark: Any, loop: asyncio.AbstractEventLoop) -> None:
    mediator = async_mediator("container")
    assert loop.run_until_complete(mediator.ask(QUERY)) == 2
    run_batches(benchmark, loop, lambda: mediated_batch(mediator))
