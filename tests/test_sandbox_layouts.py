"""The jail works wherever the course is installed: the interpreter, the venv, the package, the
grader's temporary folder and the submissions under /tmp, under /var/tmp in a folder whose name
has a space and non-ASCII letters, in $HOME, behind a symlinked venv, and for a normal user. Each
layout is a venv in a temporary folder whose site-packages reach this environment's packages
through a .pth file (fast: no install), with the course package copied beside it; a solution
graded there, sandboxed, scores full marks."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import nbformat
import pytest
from conftest import INTRO_FULL

from bertbook import sandbox
from bertbook.integrity import PACKAGE
from bertbook.maint import ROOT

pytestmark = pytest.mark.skipif(
    sandbox.unavailable_reason() is not None, reason=f"no sandbox: {sandbox.unavailable_reason()}"
)

SOLUTION = ROOT / "solutions" / "00_intro.ipynb"
VERSION = f"python{sys.version_info.major}.{sys.version_info.minor}"
CACHE_CHECK = (
    "import os\nassert os.path.isfile(os.path.join(os.environ['BERTBOOK_CACHE'], 'marker'))"
)


def make_layout(base: Path, python: str | None = None) -> Path:
    """base/course/bertbook (a copy of the package), base/venv (a venv of ``python``, default
    this one's base interpreter, that sees this environment's packages), base/tmp, and
    base/cache (the asset cache) and base/class/alice/00_intro.ipynb, the solution with a cell
    that reads the cache. Returns the venv's python."""
    base.mkdir(parents=True, exist_ok=True)
    course = base / "course"
    shutil.copytree(PACKAGE, course / "bertbook", ignore=shutil.ignore_patterns("__pycache__"))
    python = python or os.path.realpath(sys._base_executable)
    subprocess.run([python, "-m", "venv", "--without-pip", str(base / "venv")], check=True)
    site = base / "venv" / "lib" / VERSION / "site-packages"
    # Every site-packages this process sees (this venv may itself reach them through a .pth).
    here = dict.fromkeys(p for p in sys.path if p.rstrip("/").endswith("site-packages"))
    (site / "layout.pth").write_text("\n".join([str(course), *here]) + "\n")
    (base / "tmp").mkdir()
    (base / "cache").mkdir()
    (base / "cache" / "marker").write_text("the asset cache is bound in")
    nb = nbformat.read(str(SOLUTION), as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(CACHE_CHECK))
    for cell in nb.cells:
        cell.pop("id", None)
    (base / "class" / "alice").mkdir(parents=True)
    nbformat.write(nb, str(base / "class" / "alice" / SOLUTION.name))
    return base / "venv" / "bin" / "python"


def grade_in(base: Path, python: Path, *, user: str | None = None, timeout: float = 300):
    """Grade the layout's class folder with its own python, its own TMPDIR; the results."""
    out = base / "out.json"
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(base),
        "TMPDIR": str(base / "tmp"),
        "LANG": "C.UTF-8",
        "BERTBOOK_CACHE": str(base / "cache"),
    }
    cmd = [str(python), "-m", "bertbook.grade", str(base / "class"), "--seed", "3"]
    cmd += ["--json", str(out), "-j", "1"]
    if user is not None:
        cmd = ["runuser", "-u", user, "--", "env", *[f"{k}={v}" for k, v in env.items()], *cmd]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=base, timeout=timeout)
    return done, (json.loads(out.read_text()) if out.exists() else None)


def assert_full_marks(done, results) -> None:
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert [(r["student"], r["status"], r["sandbox"]) for r in results] == [
        ("alice", "graded", "bubblewrap")
    ]
    assert results[0]["score"] == results[0]["max_score"] == INTRO_FULL, results
    assert results[0]["cells"] == [], results  # the asset cache's marker was readable


@pytest.fixture
def scratch():
    made: list[Path] = []

    def make(parent: str | Path, name: str) -> Path:
        path = Path(tempfile.mkdtemp(prefix=name, dir=parent))
        made.append(path)
        return path

    yield make
    for path in made:
        shutil.rmtree(path, ignore_errors=True)


def test_under_tmp(scratch):
    base = scratch("/tmp", "bertbook-layout-")
    assert_full_marks(*grade_in(base, make_layout(base)))


def test_under_var_tmp_with_a_space_and_non_ascii_letters(scratch):
    base = scratch("/var/tmp", "bertbook layé ü ")
    assert_full_marks(*grade_in(base, make_layout(base)))


def test_in_home(scratch):
    base = scratch(Path.home(), ".bertbook-layout-")
    assert_full_marks(*grade_in(base, make_layout(base)))


def test_a_symlinked_venv(scratch):
    base = scratch("/tmp", "bertbook-layout-")
    make_layout(base / "real")
    (base / "venv-link").symlink_to(base / "real" / "venv")
    for name in ("class", "tmp", "cache"):
        (base / name).symlink_to(base / "real" / name)
    assert_full_marks(*grade_in(base, base / "venv-link" / "bin" / "python"))


@pytest.mark.skipif(os.geteuid() != 0, reason="creating a user needs root")
def test_as_a_normal_user(scratch):
    """An interpreter the user can run: the system's, when it is this Python's version."""
    system = shutil.which(VERSION, path="/usr/bin:/bin")
    if system is None:
        pytest.skip(f"no /usr/bin/{VERSION} for a normal user to run")
    user = f"bbt{uuid.uuid4().hex[:8]}"
    subprocess.run(["useradd", "--system", "--no-create-home", user], check=True)
    try:
        base = scratch("/tmp", "bertbook-layout-")
        python = make_layout(base, system)
        subprocess.run(["chmod", "-R", "a+rX", str(base)], check=True)
        for name in ("tmp", "."):
            shutil.chown(base / name, user)
        for here in (p for p in sys.path if p.rstrip("/").endswith("site-packages")):
            probe = ["runuser", "-u", user, "--", "test", "-r", here]
            if subprocess.run(probe).returncode != 0:
                pytest.skip(f"this environment's packages are not readable by others ({here})")
        assert_full_marks(*grade_in(base, python, user=user))
    finally:
        subprocess.run(["userdel", user])


@pytest.mark.skipif(os.geteuid() != 0, reason="the jail's own uid exists only under root")
def test_an_install_the_jail_uid_cannot_read_stops_the_run_and_the_doctor_says_why(scratch):
    """A venv installed with umask 077: ``bwrap ... true`` passes, the grader (root) reads it,
    the kernel (its own uid) cannot. Nothing is graded, nothing written; the doctor says why."""
    base = scratch("/tmp", "bertbook-layout-")
    python = make_layout(base)
    (base / "venv" / "lib" / VERSION / "site-packages").chmod(0o700)
    assert subprocess.run(["bwrap", "--ro-bind", "/", "/", "true"]).returncode == 0
    done, results = grade_in(base, python)
    assert done.returncode == 2 and results is None and "Score" not in done.stdout
    # one line of the grader's (a library's own warnings, such as old debugpy's, aside)
    assert len([ln for ln in done.stderr.splitlines() if ln.startswith("error:")]) == 1
    assert "No module named ipykernel_launcher" in done.stderr and "chmod" in done.stderr
    doctor = subprocess.run(
        [str(python), "-m", "bertbook.doctor", "--grading", "--quiet"],
        capture_output=True,
        text=True,
        cwd=base,
        timeout=300,
    )
    assert doctor.returncode == 1
    assert "problem: the grader's sandbox is unavailable" in doctor.stdout
    assert "No module named ipykernel_launcher" in doctor.stdout
