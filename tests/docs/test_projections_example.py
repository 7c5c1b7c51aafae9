"""docs/examples/projections_example.py runs, and prints what the projection pages show."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "projections_example.py"

SYNC_OUTPUT = """\
== sync projections ==
placed order 1
placed order 2
customer='ada' orders=2 total_cents=1250
[(1, 'ada', 500), (2, 'ada', 750)]
status:
  customer_totals: sync, checkpoint 2 of head 2, lag 0 event(s), running
  order_list: sync, checkpoint 2 of head 2, lag 0 event(s), running
"""

ASYNC_OUTPUT = """\
== async projections ==
placed order 1, token 1; the worker is not started yet
  customer_totals: async, checkpoint 0 of head 1, lag 1 event(s), running
  order_list: async, checkpoint 0 of head 1, lag 1 event(s), running
ConsistencyTimeoutError: GetCustomerTotal: read models ['customer_totals'] did not reach \
position 1 within 0.1s; retry later, or pass AtLeast(..., allow_stale=True) to read stale data
None (stale=True)
placed order 2, token 2; the worker is running
customer='ada' orders=2 total_cents=1250 (stale=False)
[(1, 'ada', 500), (2, 'ada', 750)]
status:
  customer_totals: async, checkpoint 2 of head 2, lag 0 event(s), running
  order_list: async, checkpoint 2 of head 2, lag 0 event(s), running
"""


def test_projections_example_shows_sync_then_async_read_your_own_writes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    runpy.run_path(str(EXAMPLE), run_name="__main__")
    out = capsys.readouterr().out

    sync_part, _, async_part = out.partition("== async projections ==\n")
    assert "customer='ada' orders=2 total_cents=1250" in sync_part.splitlines(), (
        "sync projections are current when send() returns, without a token"
    )
    async_lines = async_part.splitlines()
    assert "  customer_totals: async, checkpoint 0 of head 1, lag 1 event(s), running" in (
        async_lines
    ), "without a worker the async projection lags, and status() says by how much"
    assert any(
        line.startswith("ConsistencyTimeoutError: GetCustomerTotal") for line in async_lines
    ), "AtLeast fails closed when the read model does not catch up in time"
    assert "None (stale=True)" in async_lines, "allow_stale returns the stale answer and says so"
    assert "customer='ada' orders=2 total_cents=1250 (stale=False)" in async_lines, (
        "with the worker running, AtLeast(token) sees the command's own write"
    )
    assert out == SYNC_OUTPUT + ASYNC_OUTPUT, (
        f"the example's output changed; update docs/concepts/*.md too:\n{out}"
    )


def test_projections_example_keeps_read_models_in_their_own_database(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    namespace = runpy.run_path(str(EXAMPLE))  # not __main__: nothing runs on import
    assert capsys.readouterr().out == ""

    namespace["main"](tmp_path)

    assert capsys.readouterr().out == SYNC_OUTPUT + ASYNC_OUTPUT
    for run in ("sync", "async"):
        assert (tmp_path / run / "write.db").is_file()
        assert (tmp_path / run / "read.db").is_file(), "read models live in a second database"
