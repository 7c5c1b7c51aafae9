"""Read model vs write model: run the query benchmarks over a size ladder and report.

``python -m benchmarks.report`` (what ``make bench`` runs) does, for each backend and size:

1. opens the seeded dataset, seeding and caching it first when missing (with a progress bar;
   see :mod:`benchmarks.dataset`);
2. runs ``benchmarks/test_queries.py`` under pytest-benchmark (a subprocess per run,
   ``--benchmark-json``) ``--repeat`` times, and keeps, for every case, the median of the
   runs' medians and the median of their p95s. Each run measures the cases one after the
   other, so repeating them spreads the drift of a shared machine over all cases;
3. prints a table, and writes ``benchmarks/results/latest.json``, ``latest.md`` and
   ``latest.png``.

Options (each also read from the environment variable in brackets):

- ``--sizes`` [``BENCH_SIZES``]: the ladder, in orders (``100000``); e.g.
  ``10000,100000,1000000``.
- ``--backends`` [``BENCH_BACKENDS``]: ``sqlite`` and/or ``postgres`` (``sqlite``, plus
  ``postgres`` when a URL is given).
- ``--postgres-url`` [``BENCH_POSTGRES_URL``]: a PostgreSQL server where the user may create
  databases (``postgresql://user@host/db``).
- ``--repeat`` [``BENCH_REPEAT``]: pytest runs per size (3).
- ``--rounds`` [``BENCH_ROUNDS``]: the most timed calls per case and run (300); also
  ``--min-rounds`` [``BENCH_MIN_ROUNDS``] (20) and ``--seconds`` [``BENCH_SECONDS``], the
  time budget per case and run (2).
- ``--seed`` [``BENCH_SEED``]: the dataset's and the parameters' random seed (0).
- ``--output`` [``BENCH_OUTPUT``]: where the reports go (``benchmarks/results``).

``latest.json`` (``schema_version`` 1)::

    {
      "schema_version": 1,
      "generated_at": "2025-01-01T12:00:00+00:00",       # UTC
      "environment": {"python", "platform", "cpus", "sqlite", "sqlalchemy", "pydantic", "msgspec",
                      "load_average_before", "load_average_after"},
      "settings": {"sizes", "backends", "repeat", "max_rounds", "min_rounds",
                   "seconds_per_case", "seed", "parameters_per_query"},
      "datasets": [{"backend", "size", "key", "users", "products", "order_items",
                    "events", "seed_seconds", "seeded_at", "cached"}],
      "rows": [{"backend": "sqlite",              # or "postgres"
                "size": 100000,                    # orders
                "query": "list_first_page",        # list_later_page, order_detail,
                                                   # daily_analytics_30d
                "source": "read_model",            # or "write_model"
                "path": "mediator",                # or "raw_driver"
                "median_us": 123.4,                # median of the runs' medians
                "p95_us": 234.5,                   # median of the runs' 95th percentiles
                "rounds": 300,                     # timed calls per run
                "run_medians_us": [120.1, 123.4, 130.0]}],
      "comparisons": [{"backend", "size", "query",
                       "speedup",             # write_model / read_model, mediator medians
                       "toolkit_over_raw"}],  # read_model: mediator / raw_driver medians
      "targets": [{"target", "backend", "size", "query", "measured", "goal", "met"}]
    }

``met`` is ``true`` or ``false``, or ``null`` when the target's size or backend was not
measured in this run (or has no goal: the detail's speedup is reported as it is).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

ROOT = Path(__file__).resolve().parent.parent
SUITE = "benchmarks/test_queries.py"
QUERIES = ("list_first_page", "list_later_page", "order_detail", "daily_analytics_30d")
LABELS = {
    "list_first_page": "order list, first page",
    "list_later_page": "order list, 3rd page (cursor)",
    "order_detail": "order detail",
    "daily_analytics_30d": "daily analytics, 30 days",
}
SEED_GOAL_SECONDS = 120.0
SEED_GOAL_SIZE = 1_000_000


@dataclass(frozen=True)
class Goal:
    """A target: ``measured >= goal`` (speedups) or ``measured <= goal`` (ratios, seconds)."""

    target: str
    backend: str | None  # None: every measured backend
    size: int | None  # None: every measured size
    query: str | None
    goal: float | None  # None: reported, no goal
    at_least: bool


GOALS = [
    Goal("speedup", "sqlite", 100_000, "daily_analytics_30d", 50, at_least=True),
    Goal("speedup", "sqlite", 100_000, "list_first_page", 2.5, at_least=True),
    Goal("speedup", "sqlite", 100_000, "list_later_page", 2.5, at_least=True),
    Goal("speedup", "sqlite", 100_000, "order_detail", None, at_least=True),
    Goal("speedup", "sqlite", 1_000_000, "daily_analytics_30d", 500, at_least=True),
    Goal("speedup", "sqlite", 1_000_000, "list_first_page", 3, at_least=True),
    Goal("speedup", "sqlite", 1_000_000, "list_later_page", 3, at_least=True),
    Goal("speedup", "sqlite", 1_000_000, "order_detail", None, at_least=True),
    Goal("toolkit_over_raw", None, None, "list_first_page", 2, at_least=False),
    Goal("toolkit_over_raw", None, None, "list_later_page", 2, at_least=False),
    Goal("toolkit_over_raw", None, None, "daily_analytics_30d", 2, at_least=False),
    Goal("toolkit_over_raw", None, None, "order_detail", 3, at_least=False),
    Goal("seed_seconds", "sqlite", SEED_GOAL_SIZE, None, SEED_GOAL_SECONDS, at_least=False),
]


# -- options -------------------------------------------------------------------------------


def _env(name: str, default: str) -> str:
    return os.environ.get(name) or default


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    except ValueError:
        msg = f"sizes must be whole numbers of orders, comma-separated: {text!r}"
        raise argparse.ArgumentTypeError(msg) from None
    if not sizes or min(sizes) < 1000:
        msg = f"give at least one size of 1000 orders or more: {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return sorted(set(sizes))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line, with defaults from the environment."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.report",
        description="Benchmark the order queries on read models vs the write model, and report.",
    )
    # String defaults go through `type`, so a bad environment value is reported like a bad flag.
    parser.add_argument(
        "--sizes",
        type=_sizes,
        default=_env("BENCH_SIZES", "100000"),
        help="dataset sizes in orders, comma-separated [BENCH_SIZES] (100000)",
    )
    parser.add_argument(
        "--backends",
        default=os.environ.get("BENCH_BACKENDS"),
        help="sqlite and/or postgres [BENCH_BACKENDS] (sqlite, plus postgres with a URL)",
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("BENCH_POSTGRES_URL"),
        help="a PostgreSQL server where the user may create databases [BENCH_POSTGRES_URL]",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=_env("BENCH_REPEAT", "3"),
        help="pytest runs per size; medians of their figures are reported [BENCH_REPEAT] (3)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=_env("BENCH_ROUNDS", "300"),
        help="most timed calls per case and run [BENCH_ROUNDS] (300)",
    )
    parser.add_argument(
        "--min-rounds",
        type=int,
        default=_env("BENCH_MIN_ROUNDS", "20"),
        help="fewest timed calls per case and run [BENCH_MIN_ROUNDS] (20)",
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=_env("BENCH_SECONDS", "2"),
        help="time budget per case and run, in seconds [BENCH_SECONDS] (2)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=_env("BENCH_SEED", "0"),
        help="random seed of the dataset and the parameters [BENCH_SEED] (0)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=_env("BENCH_OUTPUT", str(ROOT / "benchmarks/results")),
        help="where latest.json, latest.md and latest.png go [BENCH_OUTPUT]",
    )
    parser.add_argument(
        "--show-pytest", action="store_true", help="show pytest-benchmark's own tables too"
    )
    args = parser.parse_args(argv)
    backends = args.backends or ("sqlite,postgres" if args.postgres_url else "sqlite")
    args.backends = [b.strip() for b in backends.split(",") if b.strip()]
    unknown = sorted(set(args.backends) - {"sqlite", "postgres"})
    if unknown:
        parser.error(f"unknown backends {unknown}: use sqlite and/or postgres")
    if "postgres" in args.backends and not args.postgres_url:
        parser.error("the postgres backend needs --postgres-url (or BENCH_POSTGRES_URL)")
    if args.repeat < 1 or args.rounds < 1 or args.min_rounds < 1 or args.seconds <= 0:
        parser.error("--repeat, --rounds and --min-rounds must be >= 1, --seconds > 0")
    return args


# -- running -------------------------------------------------------------------------------


class ProgressBar:
    """Draws ``progress(done, total)`` on one terminal line (at most ten times a second)."""

    def __init__(self, label: str, out: TextIO = sys.stderr) -> None:
        self.label = label
        self.out = out
        self.started = time.monotonic()
        self.drawn = 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - self.drawn < 0.1:
            return
        self.drawn = now
        width = 30
        filled = int(width * done / total) if total else width
        elapsed = now - self.started
        self.out.write(
            f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {done:,}/{total:,} "
            f"orders, {elapsed:.0f} s"
        )
        if done >= total:
            self.out.write("\n")
        self.out.flush()


def prepare_dataset(args: argparse.Namespace, backend: str, size: int) -> dict[str, Any]:
    """Open (seeding when missing) the dataset of one backend and size; its description."""
    from benchmarks.dataset import open_dataset

    url = args.postgres_url if backend == "postgres" else None
    bar = ProgressBar(f"seeding {backend} {size:,}")
    dataset = open_dataset(size, seed=args.seed, postgres_url=url, progress=bar)
    try:
        manifest = dataset.manifest
        if dataset.cached:
            print(
                f"{backend} {size:,} orders: cached dataset {manifest.key} "
                f"(seeded in {manifest.seed_seconds:.1f} s on {manifest.seeded_at})"
            )
        else:
            print(f"{backend} {size:,} orders: seeded in {manifest.seed_seconds:.1f} s")
        return {
            "backend": backend,
            "size": size,
            "key": manifest.key,
            "users": manifest.users,
            "products": manifest.products,
            "order_items": manifest.order_items,
            "events": manifest.events,
            "seed_seconds": manifest.seed_seconds,
            "seeded_at": manifest.seeded_at,
            "cached": dataset.cached,
        }
    finally:
        dataset.close()


def run_suite(args: argparse.Namespace, backend: str, size: int, run: int) -> list[dict[str, Any]]:
    """Run the query suite once under pytest-benchmark; one row per case."""
    env = {
        **os.environ,
        "BENCH_SIZE": str(size),
        "BENCH_BACKEND": backend,
        "BENCH_SEED": str(args.seed),
        "BENCH_ROUNDS": str(args.rounds),
        "BENCH_MIN_ROUNDS": str(args.min_rounds),
        "BENCH_SECONDS": str(args.seconds),
    }
    if args.postgres_url:
        env["BENCH_POSTGRES_URL"] = args.postgres_url
    with tempfile.TemporaryDirectory() as scratch:
        output = Path(scratch) / "benchmark.json"
        command = [
            sys.executable,
            "-m",
            "pytest",
            SUITE,
            "--benchmark-only",
            f"--benchmark-json={output}",
            "--benchmark-columns=median,iqr,rounds",
            "--benchmark-sort=name",
            "-q",
            "-p",
            "no:cacheprovider",
        ]
        started = time.monotonic()
        result = subprocess.run(  # noqa: S603 - our own interpreter and arguments
            command, cwd=ROOT, env=env, capture_output=not args.show_pytest, text=True, check=False
        )
        if result.returncode != 0:
            if not args.show_pytest:
                sys.stderr.write(result.stdout + result.stderr)
            msg = f"the query benchmarks failed ({backend}, {size:,} orders, run {run})"
            raise SystemExit(msg)
        print(
            f"{backend} {size:,} orders: run {run} of {args.repeat} took "
            f"{time.monotonic() - started:.0f} s"
        )
        data = json.loads(output.read_text())
    return [
        {
            key: bench["extra_info"][key]
            for key in ("backend", "size", "query", "source", "path", "median_us", "p95_us")
        }
        | {"rounds": bench["extra_info"]["rounds"]}
        for bench in data["benchmarks"]
    ]


def combine(runs: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One row per case: the median of the runs' medians and of their p95s."""
    cases: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for rows in runs:
        for row in rows:
            key = (row["backend"], row["size"], row["query"], row["source"], row["path"])
            cases.setdefault(key, []).append(row)
    combined = []
    for (backend, size, query, source, path), rows in cases.items():
        combined.append(
            {
                "backend": backend,
                "size": size,
                "query": query,
                "source": source,
                "path": path,
                "median_us": round(statistics.median(r["median_us"] for r in rows), 2),
                "p95_us": round(statistics.median(r["p95_us"] for r in rows), 2),
                "rounds": rows[0]["rounds"],
                "run_medians_us": [round(r["median_us"], 2) for r in rows],
            }
        )
    order = {q: i for i, q in enumerate(QUERIES)}
    combined.sort(
        key=lambda r: (r["backend"], r["size"], order[r["query"]], r["source"], r["path"])
    )
    return combined


# -- analysis ------------------------------------------------------------------------------


def median_of(rows: list[dict[str, Any]], **case: Any) -> float | None:
    """The median of the one row matching ``case``, if any."""
    for row in rows:
        if all(row[key] == value for key, value in case.items()):
            return float(row["median_us"])
    return None


def comparisons(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Speedup (write / read) and toolkit overhead (mediator / raw) per backend, size, query."""
    result = []
    for backend, size in sorted({(r["backend"], r["size"]) for r in rows}):
        for query in QUERIES:
            case = {"backend": backend, "size": size, "query": query}
            read = median_of(rows, **case, source="read_model", path="mediator")
            write = median_of(rows, **case, source="write_model", path="mediator")
            raw = median_of(rows, **case, source="read_model", path="raw_driver")
            if read is None or write is None or raw is None:
                continue
            result.append(
                {
                    **case,
                    "speedup": round(write / read, 2),
                    "toolkit_over_raw": round(read / raw, 2),
                }
            )
    return result


def evaluate(
    compared: list[dict[str, Any]], datasets: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Every target, with what was measured and whether it was met."""
    results = []
    for goal in GOALS:
        if goal.target == "seed_seconds":
            found = [d for d in datasets if d["backend"] == goal.backend and d["size"] == goal.size]
            measured = found[0]["seed_seconds"] if found else None
            results.append(_result(goal, goal.backend, goal.size, measured))
            continue
        matching = [
            c
            for c in compared
            if (goal.backend is None or c["backend"] == goal.backend)
            and c["query"] == goal.query
            and (goal.size is None or c["size"] == goal.size)
        ]
        if not matching:
            results.append(_result(goal, goal.backend, goal.size, None))
        for c in matching:
            results.append(_result(goal, c["backend"], c["size"], c[goal.target]))
    return results


def _result(
    goal: Goal, backend: str | None, size: int | None, measured: float | None
) -> dict[str, Any]:
    met = None
    if measured is not None and goal.goal is not None:
        met = measured >= goal.goal if goal.at_least else measured <= goal.goal
    return {
        "target": goal.target,
        "backend": backend,
        "size": size,
        "query": goal.query,
        "measured": measured,
        "goal": None
        if goal.goal is None
        else (">= " if goal.at_least else "<= ") + f"{goal.goal:g}",
        "met": met,
    }


# -- output --------------------------------------------------------------------------------


def _us(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def _verdict(met: bool | None, *, markdown: bool, measured: bool) -> str:
    if met is None:
        return "(no goal)" if measured else "not measured"
    if met:
        return "yes"
    return "**NO**" if markdown else "NO"


def summary_tables(rows: list[dict[str, Any]], markdown: bool) -> list[str]:
    """One table per backend and size: read vs write, and the raw-driver floors."""
    lines: list[str] = []
    compared = {(c["backend"], c["size"], c["query"]): c for c in comparisons(rows)}
    header = [
        "query",
        "read model median (p95)",
        "write model median (p95)",
        "speedup",
        "read raw driver",
        "toolkit / raw",
        "write raw driver",
    ]
    for backend, size in sorted({(r["backend"], r["size"]) for r in rows}):
        table = []
        for query in QUERIES:
            cells = {}
            for source in ("read_model", "write_model"):
                for path in ("mediator", "raw_driver"):
                    found = [
                        r
                        for r in rows
                        if (r["backend"], r["size"], r["query"], r["source"], r["path"])
                        == (backend, size, query, source, path)
                    ]
                    cells[source, path] = found[0] if found else None
            c = compared.get((backend, size, query))

            def timing(cell: dict[str, Any] | None) -> str:
                return "-" if cell is None else f"{_us(cell['median_us'])} ({_us(cell['p95_us'])})"

            table.append(
                [
                    LABELS[query],
                    timing(cells["read_model", "mediator"]),
                    timing(cells["write_model", "mediator"]),
                    "-" if c is None else f"{c['speedup']:,.1f}x",
                    timing(cells["read_model", "raw_driver"]),
                    "-" if c is None else f"{c['toolkit_over_raw']:.1f}x",
                    timing(cells["write_model", "raw_driver"]),
                ]
            )
        title = f"{backend}, {size:,} orders (microseconds per query)"
        if markdown:
            lines += [f"### {title}", "", "| " + " | ".join(header) + " |"]
            lines.append("|---|" + "---:|" * (len(header) - 1))
            lines += ["| " + " | ".join(row) + " |" for row in table]
            lines.append("")
        else:
            widths = [max(len(r[i]) for r in [header, *table]) for i in range(len(header))]
            lines += ["", title]
            lines.append("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
            lines.append("  ".join("-" * w for w in widths))
            for row in table:
                first, *rest = row
                lines.append(
                    "  ".join(
                        [first.ljust(widths[0])]
                        + [cell.rjust(w) for cell, w in zip(rest, widths[1:], strict=True)]
                    )
                )
    return lines


def target_lines(targets: list[dict[str, Any]], markdown: bool) -> list[str]:
    """The targets and whether they were met."""
    names = {
        "speedup": "read-model speedup over the write model",
        "toolkit_over_raw": "toolkit read path / raw driver",
        "seed_seconds": "seeding time (s)",
    }
    rows = []
    for t in targets:
        size = "every size" if t["size"] is None else f"{t['size']:,}"
        what = names[t["target"]] + (f": {LABELS[t['query']]}" if t["query"] else "")
        measured = "-" if t["measured"] is None else f"{t['measured']:,.2f}"
        goal = t["goal"] or "(reported)"
        rows.append(
            [
                what,
                f"{t['backend'] or 'any backend'}, {size}",
                measured,
                goal,
                _verdict(t["met"], markdown=markdown, measured=t["measured"] is not None),
            ]
        )
    header = ["target", "where", "measured", "goal", "met"]
    if markdown:
        return [
            "| " + " | ".join(header) + " |",
            "|---|---|---:|---|---|",
            *("| " + " | ".join(row) + " |" for row in rows),
        ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return [
        "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)),
        "  ".join("-" * w for w in widths),
        *("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows),
    ]


def write_markdown(path: Path, report: dict[str, Any], chart: Path | None) -> None:
    """``latest.md``: the run, the tables, the targets and the chart."""
    env, settings = report["environment"], report["settings"]
    lines = [
        "# Queries: read model vs write model",
        "",
        f"Generated {report['generated_at']} by `python -m benchmarks.report`. Python "
        f"{env['python']}, SQLite {env['sqlite']}, SQLAlchemy {env['sqlalchemy']}, pydantic "
        f"{env['pydantic']}, msgspec {env['msgspec']}, {env['cpus']} CPUs ({env['platform']}); "
        f"load average "
        f"{env['load_average_before']} before, {env['load_average_after']} after.",
        "",
        f"Each figure is the median over {settings['repeat']} pytest-benchmark run(s) of "
        f"each run's median (p95 likewise), {settings['parameters_per_query']} seeded random "
        f"parameters per query used in turn, up to {settings['max_rounds']} timed calls per "
        f"case and run. *speedup* = write model / read model (mediator medians); "
        f"*toolkit / raw* = read model through the mediator / the same SQL through the raw "
        f"driver.",
        "",
        "Datasets:",
        "",
    ]
    for d in report["datasets"]:
        lines.append(
            f"- {d['backend']}, {d['size']:,} orders: {d['users']:,} users, "
            f"{d['products']:,} products, {d['order_items']:,} order lines, "
            f"{d['events']:,} events; seeded in {d['seed_seconds']:.1f} s"
            + (f" (cached, seeded {d['seeded_at']})" if d["cached"] else "")
        )
    lines += ["", "## Results", "", *summary_tables(report["rows"], markdown=True)]
    lines += ["## Targets", "", *target_lines(report["targets"], markdown=True), ""]
    if chart is not None:
        lines += ["## Chart", "", f"![latency by dataset size]({chart.name})", ""]
    path.write_text("\n".join(lines))


def write_chart(path: Path, rows: list[dict[str, Any]]) -> bool:
    """``latest.png``: latency by size (log-log), or grouped bars for one size (log scale)."""
    try:
        import matplotlib as mpl

        mpl.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no chart (pip install matplotlib)", file=sys.stderr)
        return False
    backends = sorted({r["backend"] for r in rows})
    sizes = sorted({r["size"] for r in rows})
    series = [
        ("read_model", "mediator", "read model", "tab:blue", "-"),
        ("write_model", "mediator", "write model", "tab:red", "-"),
        ("read_model", "raw_driver", "read model, raw driver", "tab:blue", ":"),
        ("write_model", "raw_driver", "write model, raw driver", "tab:red", ":"),
    ]
    if len(sizes) > 1:
        figure, axes = plt.subplots(
            len(backends), len(QUERIES), figsize=(16, 4.2 * len(backends)), squeeze=False
        )
        for i, backend in enumerate(backends):
            for j, query in enumerate(QUERIES):
                ax = axes[i][j]
                for source, path_, label, color, style in series:
                    points = [
                        (r["size"], r["median_us"])
                        for r in rows
                        if (r["backend"], r["query"], r["source"], r["path"])
                        == (backend, query, source, path_)
                    ]
                    if points:
                        xs, ys = zip(*sorted(points), strict=True)
                        ax.plot(xs, ys, style, color=color, marker="o", label=label)
                ax.set_xscale("log")
                ax.set_yscale("log")
                ax.set_title(f"{LABELS[query]} ({backend})", fontsize=10)
                ax.set_xlabel("orders")
                ax.set_ylabel("median latency (us)")
                ax.grid(True, which="both", alpha=0.3)
        axes[0][0].legend(fontsize=8)
    else:
        figure, axes = plt.subplots(1, len(backends), figsize=(11, 5), squeeze=False)
        width = 0.2
        for i, backend in enumerate(backends):
            ax = axes[0][i]
            for k, (source, path_, label, color, style) in enumerate(series):
                heights = [
                    median_of(rows, backend=backend, query=q, source=source, path=path_) or 0
                    for q in QUERIES
                ]
                ax.bar(
                    [x + (k - 1.5) * width for x in range(len(QUERIES))],
                    heights,
                    width,
                    label=label,
                    color=color,
                    alpha=1.0 if style == "-" else 0.45,
                    hatch=None if style == "-" else "//",
                )
            ax.set_xticks(range(len(QUERIES)), [LABELS[q] for q in QUERIES], fontsize=8)
            ax.set_yscale("log")
            ax.set_ylabel("median latency (us, log scale)")
            ax.set_title(f"{backend}, {sizes[0]:,} orders")
            ax.grid(True, axis="y", which="both", alpha=0.3)
            ax.legend(fontsize=8)
    figure.suptitle("Queries: read model vs write model (lower is better)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


def environment() -> dict[str, Any]:
    """The software and machine the figures come from."""
    import msgspec
    import pydantic
    import sqlalchemy

    return {
        "python": platform.python_version(),
        "platform": f"{platform.system()} {platform.machine()}",
        "cpus": os.cpu_count(),
        "sqlite": sqlite3.sqlite_version,
        "sqlalchemy": sqlalchemy.__version__,
        "pydantic": pydantic.VERSION,
        "msgspec": msgspec.__version__,
    }


def _load() -> str:
    try:
        return " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    """Run the ladder and write the reports."""
    args = parse_args(argv)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    started = time.monotonic()
    load_before = _load()
    datasets, runs = [], []
    for backend in args.backends:
        for size in args.sizes:
            datasets.append(prepare_dataset(args, backend, size))
            for run in range(1, args.repeat + 1):
                runs.append(run_suite(args, backend, size, run))
    rows = combine(runs)
    compared = comparisons(rows)
    report = {
        "schema_version": 1,
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "environment": environment()
        | {"load_average_before": load_before, "load_average_after": _load()},
        "settings": {
            "sizes": args.sizes,
            "backends": args.backends,
            "repeat": args.repeat,
            "max_rounds": args.rounds,
            "min_rounds": args.min_rounds,
            "seconds_per_case": args.seconds,
            "seed": args.seed,
            "parameters_per_query": 50,
        },
        "datasets": datasets,
        "rows": rows,
        "comparisons": compared,
        "targets": evaluate(compared, datasets),
    }
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "latest.json").write_text(json.dumps(report, indent=2) + "\n")
    chart = args.output / "latest.png"
    drawn = write_chart(chart, rows)
    write_markdown(args.output / "latest.md", report, chart if drawn else None)

    print("\n".join(summary_tables(rows, markdown=False)))
    print()
    print("\n".join(target_lines(report["targets"], markdown=False)))
    print(
        f"\nwrote {args.output / 'latest.json'}, latest.md"
        + (", latest.png" if drawn else "")
        + f" in {time.monotonic() - started:.0f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
