"""docs/examples/write_side.py runs, and prints what docs/concepts/transactions.md shows."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "write_side.py"

EXPECTED = """\
placed order 1
OutOfStockError: only 10 tea in stock, 50 asked (rolled back)
placed order 2; the repeat with key basket-7 returned 2
orders:
  1: 2 x tea
  2: 1 x cake
event_log:
  position 1: order.placed v1 order/1 {'order_id': 1, 'sku': 'tea', 'quantity': 2}
    metadata {correlation_id: req-1, causation_id: <message id>, command_type: PlaceOrder}
    decoded OrderPlaced(order_id=1, sku='tea', quantity=2)
  position 2: order.placed v1 order/2 {'order_id': 2, 'sku': 'cake', 'quantity': 1}
    metadata {correlation_id: req-3, causation_id: <message id>, command_type: PlaceOrder}
    decoded OrderPlaced(order_id=2, sku='cake', quantity=1)
"""


def test_write_side_example_commits_rolls_back_and_repeats_idempotently(
    capsys: pytest.CaptureFixture[str],
) -> None:
    runpy.run_path(str(EXAMPLE), run_name="__main__")
    out = capsys.readouterr().out

    lines = out.splitlines()
    assert "OutOfStockError: only 10 tea in stock, 50 asked (rolled back)" in lines
    assert "  3: 50 x tea" not in lines, "the failed command's insert was rolled back"
    assert "placed order 2; the repeat with key basket-7 returned 2" in lines, (
        "the repeat returns the first result"
    )
    positions = [line.split(":")[0].strip() for line in lines if line.startswith("  position")]
    assert positions == ["position 1", "position 2"], (
        "one event per committed command: none for the rollback, none for the repeat"
    )
    assert out == EXPECTED, f"the example's output changed; update the docs page too:\n{out}"


def test_write_side_example_main_uses_the_directory_it_is_given(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    namespace = runpy.run_path(str(EXAMPLE))  # not __main__: nothing runs on import
    assert capsys.readouterr().out == ""

    namespace["main"](tmp_path)

    assert (tmp_path / "shop.db").is_file(), "main() works in the directory it is given"
    assert capsys.readouterr().out == EXPECTED
