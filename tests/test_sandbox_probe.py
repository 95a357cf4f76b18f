"""A jail that passes ``bwrap ... true`` but cannot start a kernel is found before any notebook
is graded (``grade`` exits 2 with the jail's own message and writes nothing), by the doctor and by
``python -m bertbook.sandbox``; a kernel that does not start for one notebook is a grader error
with an empty score, never a zero."""

import csv
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bertbook import doctor, grade, sandbox
from bertbook.maint import ROOT

pytestmark = pytest.mark.skipif(
    sandbox.unavailable_reason() is not None, reason=f"no sandbox: {sandbox.unavailable_reason()}"
)

SOLUTION = ROOT / "solutions" / "00_intro.ipynb"
MISSING = "/nonexistent/bin/python3"


@pytest.fixture
def no_interpreter_in_the_jail(monkeypatch):
    """bwrap runs (``bwrap ... true`` passes) but the interpreter it must start is not there:
    the failure a clone under /tmp met when ``--tmpfs /tmp`` hid its venv."""
    real = sandbox.bwrap_command

    def broken(*args, **kwargs):
        return [MISSING if part == sys.executable else part for part in real(*args, **kwargs)]

    monkeypatch.setattr(sandbox, "bwrap_command", broken)
    done = subprocess.run(["bwrap", "--ro-bind", "/", "/", "true"], capture_output=True)
    assert done.returncode == 0


def _class(tmp_path: Path) -> Path:
    folder = tmp_path / "class"
    for student in ("alice", "bob"):
        (folder / student).mkdir(parents=True)
        shutil.copy(SOLUTION, folder / student / SOLUTION.name)
    return folder


def test_a_jail_that_cannot_start_a_kernel_stops_the_run(
    no_interpreter_in_the_jail, tmp_path, capsys
):
    outputs = {f"--{kind}": tmp_path / f"out.{kind}" for kind in ("csv", "json", "canvas")}
    argv = [str(_class(tmp_path)), "--seed", "1", "-j", "1"]
    for option, path in outputs.items():
        argv += [option, str(path)]
    assert grade.main(argv) == 2
    out, err = capsys.readouterr()
    assert "Score" not in out
    assert len(err.strip().splitlines()) == 1
    assert f"execvp {MISSING}: No such file or directory" in err
    assert "--no-sandbox" in err
    assert not [p for p in outputs.values() if p.exists()]


def test_the_doctor_reports_it_as_a_problem_with_its_reason(no_interpreter_in_the_jail):
    problems = [p for p in doctor.diagnose(grading=True, look_for_gpu=False).problems]
    assert [p for p in problems if "sandbox" in p and f"execvp {MISSING}" in p], problems
    assert not [p for p in doctor.diagnose(look_for_gpu=False).problems if "sandbox" in p]


def test_the_sandbox_command_reports_it(no_interpreter_in_the_jail, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["python -m bertbook.sandbox"])
    assert sandbox._main() == 1
    assert f"execvp {MISSING}" in capsys.readouterr().out


def test_the_sandbox_command_says_a_kernel_started():
    done = subprocess.run(
        [sys.executable, "-m", "bertbook.sandbox"], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "a kernel started in the jail" in done.stdout


def test_a_kernel_that_does_not_start_is_a_grader_error_never_a_zero(
    no_interpreter_in_the_jail, monkeypatch, tmp_path, capsys
):
    """The probe passed (say the machine changed after it): each notebook whose kernel does not
    start gets status 'grader error' and an empty score everywhere; the exit status says so."""
    monkeypatch.setattr(sandbox, "probe", lambda *args, **kwargs: None)
    out = {kind: tmp_path / f"out.{kind}" for kind in ("csv", "json", "canvas")}
    argv = [str(_class(tmp_path)), "--seed", "1", "-j", "1"]
    for kind, path in out.items():
        argv += [f"--{kind}", str(path)]
    assert grade.main(argv) == 3
    stdout, err = capsys.readouterr()
    assert "2 notebook(s) not graded because of the grader" in err
    results = json.loads(out["json"].read_text())
    assert [r["score"] for r in results] == [None, None]
    assert all(r["status"].startswith("grader error: ") and MISSING in r["status"] for r in results)
    rows = list(csv.DictReader(io.StringIO(out["csv"].read_text())))
    assert [(r["student"], r["00_intro"]) for r in rows] == [("alice", ""), ("bob", "")]
    assert all(r["status"].startswith("00_intro: grader error") for r in rows)
    canvas = list(csv.reader(io.StringIO(out["canvas"].read_text())))
    assert [row[-1] for row in canvas[2:]] == ["", ""]
    assert "Score: 0" not in stdout and stdout.count("re-run") == 2
