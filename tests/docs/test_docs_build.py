"""The documentation site builds with `mkdocs build --strict`: no broken link, include or anchor.

mkdocs.yml turns broken links, missing anchors and pages left out of the nav into warnings,
and pymdownx.snippets fails on a missing file or section, so a strict build failing here is
how `make test` catches a docs page that no longer matches the code.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import cqrs_kit

ROOT = Path(__file__).resolve().parents[2]
MKDOCS = Path(sys.executable).with_name("mkdocs")


def test_the_site_builds_strictly(tmp_path: Path) -> None:
    assert MKDOCS.exists(), (
        "mkdocs is missing: pip install -e '.[dev]' (it includes the docs extra)"
    )
    result = subprocess.run(  # noqa: S603 - the venv's own mkdocs, with fixed arguments
        [str(MKDOCS), "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},  # Material's banner is not a warning
        capture_output=True,
        text=True,
        check=False,
    )

    problems = [line for line in result.stderr.splitlines() if "WARNING" in line or "ERROR" in line]
    assert result.returncode == 0, "mkdocs build --strict failed:\n" + "\n".join(
        problems or result.stderr.splitlines()[-20:]
    )
    assert (tmp_path / "site" / "reference" / "cqrs_kit" / "index.html").is_file()


def test_the_api_reference_lists_every_public_name() -> None:
    page = (ROOT / "docs" / "reference" / "cqrs_kit.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^::: cqrs_kit\.(\w+)$", page, re.MULTILINE))

    assert documented == set(cqrs_kit.__all__), (
        "docs/reference/cqrs_kit.md and cqrs_kit.__all__ differ: "
        f"add {sorted(set(cqrs_kit.__all__) - documented)}, "
        f"remove {sorted(documented - set(cqrs_kit.__all__))}"
    )


def test_every_page_is_in_the_nav() -> None:
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    pages = {
        str(page.relative_to(ROOT / "docs"))
        for page in (ROOT / "docs").rglob("*.md")
        if not page.relative_to(ROOT / "docs").parts[0].startswith(("_", "examples"))
    }
    in_nav = set(re.findall(r":\s+(\S+\.md)\s*$", config, re.MULTILINE))

    assert pages == in_nav, (
        f"not in the nav: {sorted(pages - in_nav)}; missing pages: {sorted(in_nav - pages)}"
    )
