"""``import cqrs_kit`` stays light: optional integrations are imported only when used."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

OPTIONAL = [
    "sqlalchemy",
    "structlog",
    "dependency_injector",
    "asyncpg",
    "psycopg",
    "aiosqlite",
    "fastapi",
    "httpx",
]

PROBE = """
import json, sys
before = set(sys.modules)
import cqrs_kit
new = sorted(set(sys.modules) - before)
print(json.dumps({"all": sorted(sys.modules), "new": new, "file": [cqrs_kit.__file__]}))
"""


@pytest.fixture(scope="module")
def modules_after_import() -> dict[str, list[str]]:
    """``sys.modules`` of a fresh interpreter after ``import cqrs_kit``."""
    result = subprocess.run(  # noqa: S603 - a fixed command line, no user input
        [sys.executable, "-c", PROBE],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, f"import cqrs_kit failed:\n{result.stderr}"
    modules: dict[str, list[str]] = json.loads(result.stdout)
    return modules


@pytest.mark.parametrize("package", OPTIONAL)
def test_import_cqrs_kit_does_not_import_optional_packages(
    modules_after_import: dict[str, list[str]], package: str
) -> None:
    loaded = [
        name
        for name in modules_after_import["all"]
        if name == package or name.startswith(f"{package}.")
    ]

    assert loaded == [], f"import cqrs_kit imported {package}: {loaded[:5]}"


def test_import_cqrs_kit_imports_the_core_from_this_checkout(
    modules_after_import: dict[str, list[str]],
) -> None:
    assert "cqrs_kit" in modules_after_import["new"]
    (location,) = modules_after_import["file"]
    assert Path(location).is_relative_to(ROOT / "cqrs_kit"), f"imported from {location}"
    assert "pydantic" in modules_after_import["all"]
