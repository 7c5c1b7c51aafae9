"""The getting-started tutorial runs, and prints exactly what docs/getting-started.md shows."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import pytest
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "docs" / "examples"
PAGE = ROOT / "docs" / "getting-started.md"

STEP_1 = """\
added task 1
task_id=1 board='home' title='Buy milk'
None
ValidationError: ('title',) Field required
MessageKindError: AddTask is a command; dispatch it with send(), not ask()
"""

STEP_2 = """\
added tasks [1, 2, 3]
UnknownTaskError: no open task 1
1: task.added {'task_id': 1, 'board': 'home', 'title': 'Buy milk'}
2: task.added {'task_id': 2, 'board': 'home', 'title': 'Water the plants'}
3: task.added {'task_id': 3, 'board': 'work', 'title': 'Write the report'}
4: task.completed {'task_id': 1, 'board': 'home'}
"""

STEP_3 = """\
board='home' open_tasks=1 done_tasks=1
board='work' open_tasks=1 done_tasks=0
None
board_summary: checkpoint 4 of 4, running
rebuilt board_summary from 4 events
board='home' open_tasks=1 done_tasks=1
"""

OUTPUT_BLOCK = re.compile(r"<!-- output of (?P<path>\S+) -->\s*```text\n(?P<body>.*?)```", re.S)


def run_script(name: str, capsys: pytest.CaptureFixture[str]) -> str:
    runpy.run_path(str(EXAMPLES / name), run_name="__main__")
    return capsys.readouterr().out


def table_names(database: Path) -> set[str]:
    engine = sa.create_engine(f"sqlite:///{database}")
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def section(name: str, text: str) -> str:
    match = re.search(rf"# --8<-- \[start:{name}\]\n(.*?)# --8<-- \[end:{name}\]", text, re.S)
    assert match, f"section {name!r} is not marked"
    return match[1]


def test_step_1_dispatches_a_command_and_queries_and_catches_mistakes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run_script("tutorial_1_mediator.py", capsys) == STEP_1


def test_step_2_commits_events_with_the_state_and_rolls_back_a_failed_command(
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = run_script("tutorial_2_write_side.py", capsys)

    assert "5: " not in out, "the failed CompleteTask must leave no event behind"
    assert out == STEP_2


def test_step_3_reads_the_projected_read_model_and_rebuilds_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run_script("tutorial_3_read_model.py", capsys) == STEP_3


def test_step_3_keeps_the_read_model_in_its_own_database(tmp_path: Path) -> None:
    namespace = runpy.run_path(str(EXAMPLES / "tutorial_3_read_model.py"))  # not __main__
    namespace["main"](tmp_path)

    write_tables = table_names(tmp_path / "write.db")
    read_tables = table_names(tmp_path / "read.db")
    assert "tasks" in write_tables
    assert "event_log" in write_tables
    assert "board_summary" in read_tables
    assert "board_summary" not in write_tables, "read models never share the write database"
    assert "tasks" not in read_tables


@pytest.mark.parametrize("name", ["write_model", "messages", "handlers"])
def test_step_3_reuses_the_write_side_of_step_2_unchanged(name: str) -> None:
    step_2 = (EXAMPLES / "tutorial_2_write_side.py").read_text(encoding="utf-8")
    step_3 = (EXAMPLES / "tutorial_3_read_model.py").read_text(encoding="utf-8")

    assert section(name, step_3) == section(name, step_2), (
        f"the page says step 3's write side is step 2's: keep section {name!r} identical"
    )


def test_the_page_shows_each_steps_whole_output() -> None:
    shown = {
        block["path"]: block["body"] for block in OUTPUT_BLOCK.finditer(PAGE.read_text("utf-8"))
    }

    assert shown == {
        "docs/examples/tutorial_1_mediator.py": STEP_1,
        "docs/examples/tutorial_2_write_side.py": STEP_2,
        "docs/examples/tutorial_3_read_model.py": STEP_3,
    }
