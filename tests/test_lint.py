"""ruff (pinned in requirements.txt, configured in pyproject.toml) finds nothing to fix in the
package, the tests, the notebooks and the book's extensions, and nothing to reformat."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bertbook.maint import ROOT

PATHS = ["bertbook", "tests", "book", "solutions", "exercises", "benchmarks"]


def _ruff() -> str:
    found = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    if not Path(found).exists():
        pytest.fail("ruff is not installed: pip install -r requirements.txt")
    return found


def _run(*args: str) -> subprocess.CompletedProcess:
    paths = [p for p in PATHS if (ROOT / p).exists()]
    return subprocess.run([_ruff(), *args, *paths], cwd=ROOT, capture_output=True, text=True)


def test_ruff_check_finds_nothing():
    run = _run("check", "--output-format", "concise")
    assert run.returncode == 0, run.stdout + run.stderr


def test_ruff_format_changes_nothing():
    run = _run("format", "--check")
    assert run.returncode == 0, run.stdout + run.stderr
