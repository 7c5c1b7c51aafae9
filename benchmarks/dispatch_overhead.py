"""Dispatch overhead over a direct call, in nanoseconds: ``python -m benchmarks.dispatch_overhead``.

Measures the cases of ``benchmarks/test_dispatch.py`` (defined once, in ``_cases.py``) and
prints Markdown tables for benchmarks/README.md:

- Sync cases: ``timeit`` of a statement (``mediator.ask(QUERY)`` or ``handle(QUERY)``),
  ``--number`` calls per sample.
- Async cases: one ``loop.run_until_complete`` of a coroutine awaiting the call
  ``--batch`` times per sample, divided by the batch (the loop's own cost per sample is
  spread over the batch, and is the same for the direct baseline).
- Every case is sampled ``--repeat`` times, the cases interleaved round by round (in a new
  random order each round) so drift on a noisy machine hits them all alike, and the best
  (lowest) sample is kept: the best is the run least disturbed by other processes. The
  order is shuffled because the first async sample after sync work runs measurably slower.
  Garbage collection is off while a sample runs (as ``timeit`` does).
- Overhead is the case's best minus its direct baseline's best, from the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import platform
import random
import sys
import time
import timeit
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import cqrs_kit
from benchmarks import _cases
from benchmarks._cases import (
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
    from collections.abc import Callable, Coroutine


@dataclass
class Case:
    key: str
    label: str
    sample: Callable[[], float]
    best: float = float("inf")


def sync_case(key: str, label: str, stmt: str, number: int, **names: Any) -> Case:
    timer = timeit.Timer(stmt, globals=names)

    def sample() -> float:
        return timer.timeit(number) / number * 1e9

    return Case(key, label, sample)


def async_case(
    key: str,
    label: str,
    loop: asyncio.AbstractEventLoop,
    make: Callable[[int], Coroutine[Any, Any, None]],
    batch: int,
) -> Case:
    def sample() -> float:
        coroutine = make(batch)
        enabled = gc.isenabled()
        gc.disable()
        try:
            started = time.perf_counter_ns()
            loop.run_until_complete(coroutine)
            elapsed = time.perf_counter_ns() - started
        finally:
            if enabled:
                gc.enable()
        return elapsed / batch

    return Case(key, label, sample)


def build_cases(loop: asyncio.AbstractEventLoop, number: int, batch: int) -> list[Case]:
    cases = [
        sync_case("s.direct", "sync: direct call", "handle(q)", number, handle=handle, q=QUERY),
        sync_case(
            "s.bare",
            "sync: Mediator.ask, no middleware",
            "mediator.ask(q)",
            number,
            mediator=sync_mediator("bare"),
            q=QUERY,
        ),
    ]
    for n in (1, 3):
        cases.append(
            sync_case(
                f"s.mw{n}",
                f"sync: Mediator.ask, {n} no-op middleware",
                "mediator.ask(q)",
                number,
                mediator=sync_mediator(f"mw{n}"),
                q=QUERY,
            )
        )
    cases += [
        sync_case(
            "s.direct_dep",
            "sync: direct call, dependency passed",
            "handle(q, repo=repo)",
            number,
            handle=handle_with_repo,
            q=QUERY,
            repo=REPO,
        ),
        sync_case(
            "s.dependencies",
            "sync: Mediator.ask, Dependencies resolver",
            "mediator.ask(q)",
            number,
            mediator=sync_mediator("dependencies"),
            q=QUERY,
        ),
    ]
    if DI_SKIP_REASON is None:
        cases.append(
            sync_case(
                "s.container",
                "sync: Mediator.ask, ContainerResolver (Singleton)",
                "mediator.ask(q)",
                number,
                mediator=sync_mediator("container"),
                q=QUERY,
            )
        )

    cases += [
        async_case("a.direct", "async: direct await", loop, direct_batch, batch),
        async_case(
            "a.bare",
            "async: AsyncMediator.ask, no middleware",
            loop,
            _mediated(async_mediator("bare")),
            batch,
        ),
    ]
    for n in (1, 3):
        cases.append(
            async_case(
                f"a.mw{n}",
                f"async: AsyncMediator.ask, {n} no-op middleware",
                loop,
                _mediated(async_mediator(f"mw{n}")),
                batch,
            )
        )
    cases += [
        async_case(
            "a.direct_dep",
            "async: direct await, dependency passed",
            loop,
            direct_batch_with_repo,
            batch,
        ),
        async_case(
            "a.dependencies",
            "async: AsyncMediator.ask, Dependencies resolver",
            loop,
            _mediated(async_mediator("dependencies")),
            batch,
        ),
    ]
    if DI_SKIP_REASON is None:
        cases.append(
            async_case(
                "a.container",
                "async: AsyncMediator.ask, ContainerResolver (Singleton)",
                loop,
                _mediated(async_mediator("container")),
                batch,
            )
        )
    return cases


def _mediated(mediator: Any) -> Callable[[int], Coroutine[Any, Any, None]]:
    return lambda batch: mediated_batch(mediator, batch)


BASELINE = {
    "s.bare": "s.direct",
    "s.mw1": "s.direct",
    "s.mw3": "s.direct",
    "s.dependencies": "s.direct_dep",
    "s.container": "s.direct_dep",
    "a.bare": "a.direct",
    "a.mw1": "a.direct",
    "a.mw3": "a.direct",
    "a.dependencies": "a.direct_dep",
    "a.container": "a.direct_dep",
}


def goals(best: dict[str, float]) -> list[tuple[str, float | None, float]]:
    """(what, measured ns or None when not measured, goal ns)."""

    def over(key: str) -> float | None:
        if key not in best:
            return None
        return best[key] - best[BASELINE[key]]

    def per_layer(prefix: str) -> float:
        return (best[f"{prefix}.mw3"] - best[f"{prefix}.mw1"]) / 2

    def per_middleware(prefix: str) -> float:
        return (best[f"{prefix}.mw3"] - best[f"{prefix}.bare"]) / 3

    return [
        ("sync bare dispatch, over direct call", over("s.bare"), 400),
        ("async bare dispatch, over direct await", over("a.bare"), 600),
        ("sync: each no-op middleware, marginal ((3 mw - 1 mw) / 2)", per_layer("s"), 150),
        ("async: each no-op middleware, marginal ((3 mw - 1 mw) / 2)", per_layer("a"), 150),
        ("sync: 3 no-op middleware, average ((3 mw - bare) / 3)", per_middleware("s"), 150),
        ("async: 3 no-op middleware, average ((3 mw - bare) / 3)", per_middleware("a"), 150),
        ("sync: ContainerResolver dispatch, over direct call", over("s.container"), 1500),
        ("async: ContainerResolver dispatch, over direct await", over("a.container"), 1500),
    ]


def report(cases: list[Case], args: argparse.Namespace) -> str:
    best = {case.key: case.best for case in cases}
    lines = [
        f"Python {platform.python_version()} ({platform.python_implementation()}), "
        f"{platform.system()} {platform.machine()}, cqrs_kit {cqrs_kit.__version__}; "
        f"best of {args.repeat} samples, {args.number} sync calls or {args.batch} async "
        f"awaits per sample",
        "",
        "| case | ns per call | overhead over direct (ns) |",
        "|---|---:|---:|",
    ]
    for case in cases:
        baseline = BASELINE.get(case.key)
        overhead = f"{case.best - best[baseline]:+.0f}" if baseline else "(baseline)"
        lines.append(f"| {case.label} | {case.best:.0f} | {overhead} |")
    lines += [
        "",
        "Derived: first middleware (context activation + one layer), sync "
        f"{best['s.mw1'] - best['s.bare']:+.0f} ns, async "
        f"{best['a.mw1'] - best['a.bare']:+.0f} ns over a bare dispatch.",
        "",
        "| goal | measured (ns) | goal (ns) | met |",
        "|---|---:|---:|---|",
    ]
    for what, measured, goal in goals(best):
        if measured is None:
            lines.append(f"| {what} | not measured ({DI_SKIP_REASON}) | {goal} | - |")
        else:
            met = "yes" if measured <= goal else "**no**"
            lines.append(f"| {what} | {measured:.0f} | {goal} | {met} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=200, help="samples per case (best kept)")
    parser.add_argument("--number", type=int, default=5_000, help="sync calls per sample")
    parser.add_argument("--batch", type=int, default=_cases.BATCH, help="awaits per sample")
    args = parser.parse_args(argv)

    loop = asyncio.new_event_loop()
    try:
        cases = build_cases(loop, args.number, args.batch)
        for case in cases:  # warm up: first dispatch, caches, allocator
            case.sample()
        order = list(cases)
        shuffle = random.Random(0).shuffle  # noqa: S311 - an order, not a secret
        for done in range(args.repeat):
            shuffle(order)
            for case in order:
                case.best = min(case.best, case.sample())
            print(f"\rsampling: {done + 1}/{args.repeat}", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
    finally:
        loop.close()
    print(report(cases, args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
