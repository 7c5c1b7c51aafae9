"""The README's Python examples run as shown."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_shows_the_two_quickstart_commands() -> None:
    text = README.read_text()
    assert "make bench" in text
    assert "make test" in text


def test_readme_python_examples_run() -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "the README shows at least one Python example"
    for block in blocks:
        exec(compile(block, str(README), "exec"), {"__name__": "readme_example"})  # noqa: S102 - our own README
