"""The README's Python examples run as shown."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_shows_the_two_quickstart_commands() -> None:
    text = README.read_text()
    assert "make bench" in text
    assert "make test" in text


def test_readme_python_examples_run(monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "the README shows at least one Python example"
    for number, block in enumerate(blocks):
        module = types.ModuleType(f"readme_example_{number}")
        monkeypatch.setitem(sys.modules, module.__name__, module)  # pydantic resolves by module
        exec(compile(block, str(README), "exec"), module.__dict__)  # noqa: S102 - our own README
