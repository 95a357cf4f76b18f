"""The GitHub workflows: actionlint finds nothing, CI runs the same script as every CI run, and
Pages publishes the built book with the official Pages actions."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import BUILD, LAST, NOTEBOOKS_DONE, ROOT

WORKFLOWS = ROOT / ".github" / "workflows"


def _actionlint() -> str:
    exe = shutil.which("actionlint", path=str(Path(sys.executable).parent)) or shutil.which(
        "actionlint"
    )
    if exe is None:
        pytest.fail("actionlint is not installed: pip install -r requirements.txt")
    return exe


def _load(name: str) -> dict:
    # PyYAML reads the key `on` as True (YAML 1.1).
    return yaml.safe_load((WORKFLOWS / name).read_text())


def test_actionlint_finds_nothing():
    files = sorted(WORKFLOWS.glob("*.yml"))
    assert {f.name for f in files} >= {"ci.yml", "pages.yml", "newest.yml"}
    done = subprocess.run(
        [_actionlint(), "-no-color", *map(str, files)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_actionlint_would_notice_a_broken_workflow(tmp_path):
    broken = tmp_path / ".github" / "workflows"
    broken.mkdir(parents=True)
    text = (WORKFLOWS / "ci.yml").read_text().replace("runs-on:", "runs_on:", 1)
    (broken / "ci.yml").write_text(text)
    done = subprocess.run(
        [_actionlint(), "-no-color", str(broken / "ci.yml")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0 and "runs_on" in done.stdout


def test_ci_runs_on_push_and_pull_request_with_the_ci_script():
    ci = _load("ci.yml")
    assert {"push", "pull_request"} <= set(ci[True])
    steps = [s for job in ci["jobs"].values() for s in job["steps"]]
    runs = "\n".join(s.get("run", "") for s in steps)
    assert "bash .ci/run" in runs
    assert "apt-get install -y -q bubblewrap" in runs and "chromium --version" in runs
    script = (ROOT / ".ci" / "run").read_text()
    assert "make book" in script and "make test" in script


def test_pages_publishes_the_built_book_from_main():
    pages = _load("pages.yml")
    assert pages[True]["push"]["branches"] == ["main"]
    assert pages["permissions"]["pages"] == "write" and pages["permissions"]["id-token"] == "write"
    build = pages["jobs"]["build"]["steps"]
    upload = [s for s in build if s.get("uses", "").startswith("actions/upload-pages-artifact@")]
    assert upload and upload[0]["with"]["path"] == "_build/html"
    assert any("make book\nmake pdf" in s.get("run", "") for s in build)
    deploy = pages["jobs"]["deploy"]
    assert deploy["needs"] == "build"
    assert deploy["steps"][0]["uses"].startswith("actions/deploy-pages@")


def test_ci_script_runs_the_other_sessions_once_make_test_has_run_the_notebooks():
    lines = (ROOT / ".ci" / "run").read_text().splitlines()
    order = [
        line.split(" >")[0]
        for line in lines
        if line.startswith(
            ("make pdf", "BERTBOOK_REQUIRE_BOOK=1 make test", "make test-", "scripts/test_")
        )
        or line.startswith("while [[ ! -e _build/notebooks-done ]]")
    ]
    assert order == [
        "make pdf",
        "BERTBOOK_REQUIRE_BOOK=1 make test &",
        'while [[ ! -e _build/notebooks-done ]] && kill -0 "$test_pid" 2>/dev/null; do sleep 5; done',
        "scripts/test_grader_layout.sh",
        "make test-latest",
        "make test-oldest",
    ]
    # The PDF's tests run after the package's, when the PDF printed beside the notebooks is done.
    assert "test_pdf.py" in LAST
    # The marker CI waits for is the one a session writes in its default log folder, _build.
    assert (
        NOTEBOOKS_DONE.name == "notebooks-done"
        and (BUILD / NOTEBOOKS_DONE.name).relative_to(ROOT).as_posix() == "_build/notebooks-done"
    )
    # The last three run side by side, and CI waits for each, and for make test, and fails if
    # any failed.
    assert sum("& pids+=" in line for line in lines) == 3
    assert any(line.strip().startswith('wait "${pids[$i]}" || failed+=') for line in lines)
    assert 'wait "$test_pid" || failed+=("make test")' in lines


def test_every_chapter_runs_weekly_on_the_newest_versions_torch_included():
    newest = _load("newest.yml")
    assert newest[True]["schedule"][0]["cron"] and "workflow_dispatch" in newest[True]
    job = newest["jobs"]["chapters"]
    assert job["env"]["BERTBOOK_TORCH"] == "torch"
    assert job["env"]["BERTBOOK_TORCH_INDEX"].endswith("/whl/cpu")
    assert any(s.get("run") == "make test-latest-chapters" for s in job["steps"])
    makefile = (ROOT / "Makefile").read_text()
    assert "scripts/test_versions.sh latest --chapters" in makefile
