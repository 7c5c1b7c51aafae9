"""The code shown in the docs runs, and prints what the docs say it prints."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "docs" / "examples"
PAGES = ROOT / "docs"

# A page shows an example's output in a ```text block right after this comment. In the
# block, a placeholder such as <uuid> stands for a value that changes from run to run.
PLACEHOLDER = re.compile(r"<[a-z][a-z0-9_-]*>")
OUTPUT_BLOCK = re.compile(
    r"<!-- output of (?P<path>\S+) -->\s*```text\n(?P<body>.*?)```", re.DOTALL
)


# `--8<-- "file.py:3:8"` includes lines 3 to 8; `--8<-- "file.py:name"` a marked section.
LINE_RANGE = re.compile(r"\d*(:\d*)?")


def run_example(name: str, capsys: pytest.CaptureFixture[str]) -> tuple[dict[str, object], str]:
    namespace = runpy.run_path(str(EXAMPLES / name), run_name="__main__")
    return namespace, capsys.readouterr().out


def test_quickstart_sync_creates_then_reads_a_user(capsys: pytest.CaptureFixture[str]) -> None:
    namespace, out = run_example("quickstart_sync.py", capsys)

    assert out.splitlines() == ["created user 1", "user 1 is Ada"]
    assert namespace["users"] == {1: "Ada"}


def test_quickstart_async_creates_then_reads_a_user(capsys: pytest.CaptureFixture[str]) -> None:
    namespace, out = run_example("quickstart_async.py", capsys)

    assert out.splitlines() == ["created user 1", "user 1 is Grace"]
    assert namespace["users"] == {1: "Grace"}


def test_mediator_concepts_shows_context_results_and_errors(
    capsys: pytest.CaptureFixture[str],
) -> None:
    namespace, out = run_example("mediator_concepts.py", capsys)
    lines = out.splitlines()

    assert lines[:5] == [
        "PlaceOrder: correlation req-1",
        "OrderPlaced: correlation req-1",
        "confirming order 1 (caused by PlaceOrder)",
        "GetOrder: correlation req-2",
        "order_id=1 sku='tea' quantity=2",
    ]
    not_found, wrong_kind, frozen, tested = lines[5:]
    assert not_found.startswith("HandlerNotFoundError: no handler is registered for query")
    assert "handlers match exact types" in not_found
    assert "include_subclasses=True" in not_found
    assert wrong_kind.startswith("MessageKindError: PlaceOrder is a command")
    assert "send()" in wrong_kind
    assert frozen.startswith("PipelineFrozenError: ")
    assert tested == "{'order_id': 42} [PlaceOrder(sku='tea', quantity=1)]"
    assert namespace["order_id"] == 1


@pytest.mark.parametrize(
    "page", sorted(PAGES.rglob("*.md")), ids=lambda p: str(p.relative_to(PAGES))
)
def test_output_shown_in_the_docs_is_what_the_example_prints(
    page: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    printed: dict[Path, str] = {}
    for block in OUTPUT_BLOCK.finditer(page.read_text(encoding="utf-8")):
        example = ROOT / block["path"]
        assert example.is_file(), f"{page.name} shows the output of missing {block['path']}"
        if example not in printed:
            printed[example] = run_example(str(example.relative_to(EXAMPLES)), capsys)[1]
        out = printed[example]
        shown = block["body"].strip()
        pattern = "[^\n]+?".join(re.escape(part) for part in PLACEHOLDER.split(shown))
        assert re.search(pattern, out), (
            f"{page.name} shows output of {block['path']} that it no longer prints:\n"
            f"shown:\n{shown}\nprinted:\n{out}"
        )


def test_pages_include_only_existing_files() -> None:
    for page in PAGES.rglob("*.md"):
        for match in re.finditer(r'--8<-- "(?P<target>[^"]+)"', page.read_text("utf-8")):
            path, _, section = match["target"].partition(":")
            source = ROOT / path
            assert source.is_file(), f"{page.name} includes missing {path}"
            if section and not LINE_RANGE.fullmatch(section):
                text = source.read_text(encoding="utf-8")
                assert f"--8<-- [start:{section}]" in text, (
                    f"{page.name} includes section {section!r}, which {path} does not mark"
                )
                assert f"--8<-- [end:{section}]" in text, f"{path}: section {section!r} never ends"
