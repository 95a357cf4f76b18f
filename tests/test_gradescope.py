"""The Gradescope autograder, run as Gradescope runs it.

The zip is built with ``--make-gradescope 02_transformer`` and unpacked into a simulated
``/autograder`` (``source``, ``submission``, ``results``) whose root is moved with
``BERTBOOK_AUTOGRADER_ROOT``: the one change the test makes to the layout. ``setup.sh`` then
runs offline (``PIP_NO_INDEX``): it makes its own virtualenv with a system Python >= 3.11,
checks every pin of the zip's requirements.txt against the packages of this test's environment
(``BERTBOOK_SETUP_REUSE_SITE``, a .pth line, instead of downloading torch again) and installs the
course package from the zip's wheel. What it does not exercise: downloading the pinned wheels,
installing Python with apt (``find_python.sh``, setup.sh's first step, is run on its own with
stubs for Ubuntu 22.04's python3 and apt-get), and creating the kernel's user
(``BERTBOOK_SETUP_NO_USERADD``: it would add an account to the machine running the tests).
``run_autograder`` then grades each submission, with bubblewrap and, where the test runs as
root, with the fallback for containers without user namespaces
(``BERTBOOK_AUTOGRADER_ISOLATION=user``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import sysconfig
import tempfile
import zipfile
from pathlib import Path

import nbformat
import pytest
from conftest import exercise_points

from bertbook import __version__, gradescope, sandbox
from bertbook.grade import main as grade_main

REPO = Path(__file__).resolve().parents[1]
EXERCISE = "02_transformer"
FULL = sum(exercise_points(EXERCISE).values())  # the solution's score
VISIBILITY = {"hidden", "after_due_date", "after_published", "visible"}
FORMATS = {"text", "html", "simple_format", "md", "ansi"}
TOP_KEYS = {
    "score",
    "execution_time",
    "output",
    "output_format",
    "visibility",
    "stdout_visibility",
    "extra_data",
    "tests",
}
TEST_KEYS = {"score", "max_score", "name", "number", "output", "output_format", "tags"}
TEST_KEYS |= {"visibility", "extra_data"}

BWRAP = sys.platform.startswith("linux") and sandbox.unavailable_reason() is None
ROOT_USER = hasattr(os, "geteuid") and os.geteuid() == 0
pytestmark = pytest.mark.skipif(
    not (BWRAP or ROOT_USER), reason="grading needs bubblewrap or root (for the fallback)"
)


def assert_spec(res: dict) -> None:
    """Gradescope's autograder specification: fields, types, and this grader's promises."""
    assert set(res) <= TOP_KEYS, set(res) - TOP_KEYS
    assert type(res["score"]) is float and res["score"] >= 0
    assert type(res["execution_time"]) is int and res["execution_time"] >= 0
    assert type(res["output"]) is str and res["output_format"] in FORMATS
    assert res["visibility"] in VISIBILITY and res["stdout_visibility"] in VISIBILITY
    assert re.search(r"\bseed \d+\b", res["output"]), res["output"]
    assert f"bertbook {__version__}" in res["output"]
    assert isinstance(res["tests"], list) and res["tests"]
    for t in res["tests"]:
        assert set(t) <= TEST_KEYS, set(t) - TEST_KEYS
        assert type(t["name"]) is str and t["name"]
        assert type(t["score"]) is float and type(t["max_score"]) is float
        assert 0 <= t["score"] <= t["max_score"]
        assert type(t["output"]) is str and t["output_format"] in FORMATS
        assert t["visibility"] in VISIBILITY
    assert abs(sum(t["score"] for t in res["tests"]) - res["score"]) < 0.02
    assert isinstance(res["extra_data"], dict) and res["extra_data"]["seed"] >= 0


def _world_reachable(path: str) -> bool:
    """Whether a user with no rights of its own can reach and read ``path``."""
    p = Path(os.path.realpath(path))
    for parent in p.parents:
        if not os.stat(parent).st_mode & stat.S_IXOTH:
            return False
    return bool(os.stat(p).st_mode & stat.S_IROTH)


def _python_for_setup() -> str:
    """A Python of this version that any uid may run (the kernel's, outside bubblewrap): the
    system's where it matches, else the one running the tests."""
    v = sys.version_info
    for candidate in (
        f"/usr/bin/python{v.major}.{v.minor}",
        f"/usr/local/bin/python{v.major}.{v.minor}",
    ):
        if os.path.exists(candidate) and _world_reachable(candidate):
            return candidate
    return os.path.realpath(getattr(sys, "_base_executable", sys.executable))


@pytest.fixture(scope="module")
def autograder(tmp_path_factory):
    # Not under /tmp: the jail mounts a private /tmp over it (a venv there is bound back only
    # once the sandbox handles every layout). A space in the path, as a user's folders have.
    base = "/var/tmp" if os.access("/var/tmp", os.W_OK) else str(tmp_path_factory.mktemp("gs"))
    root = Path(tempfile.mkdtemp(prefix="bertbook gs ", dir=base))
    root.chmod(0o755)
    try:
        zip_path = root / "autograder.zip"
        assert grade_main(["--make-gradescope", EXERCISE, "-o", str(zip_path)]) == 0
        with zipfile.ZipFile(zip_path) as z:
            names = set(z.namelist())
            assert {"setup.sh", "find_python.sh", "run_autograder", "README.md"} <= names
            z.extractall(root / "source")
            for info in z.infolist():  # extractall drops the modes; Gradescope keeps them
                (root / "source" / info.filename).chmod((info.external_attr >> 16) & 0o777)
        shutil.copy2(root / "source" / "run_autograder", root / "run_autograder")
        (root / "submission").mkdir()
        (root / "results").mkdir()
        (root / "results").chmod(0o777)  # as open as a harness might leave it: the grader closes it
        py = _python_for_setup()
        site = sysconfig.get_path("purelib")
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/root"),
            "LANG": "C.UTF-8",
            "BERTBOOK_AUTOGRADER_ROOT": str(root),
            "BERTBOOK_PYTHON": py,
            "BERTBOOK_SETUP_REUSE_SITE": site,
            "BERTBOOK_SETUP_NO_USERADD": "1",
            "PIP_NO_INDEX": "1",
        }
        if os.environ.get("BERTBOOK_CACHE"):
            env["BERTBOOK_CACHE"] = os.environ["BERTBOOK_CACHE"]
        setup = subprocess.run(
            ["bash", str(root / "source" / "setup.sh")],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert setup.returncode == 0, setup.stdout[-3000:] + setup.stderr[-3000:]
        venv_python = root / gradescope.VENV / "bin" / "python"
        user_ok = ROOT_USER and _world_reachable(str(venv_python)) and _world_reachable(site)
        yield {"root": root, "env": env, "setup": setup, "python": venv_python, "user": user_ok}
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run_submission(autograder, nb, name=f"{EXERCISE}.ipynb", mode=None):
    root = autograder["root"]
    shutil.rmtree(root / "submission")
    (root / "submission").mkdir()
    nbformat.write(nb, root / "submission" / name)
    env = {k: v for k, v in autograder["env"].items() if not k.startswith(("PIP_", "BERTBOOK_S"))}
    env.pop("BERTBOOK_PYTHON")
    if mode:
        env["BERTBOOK_AUTOGRADER_ISOLATION"] = mode
    proc = subprocess.run(
        [str(root / "run_autograder")], cwd=root, env=env, capture_output=True, text=True
    )
    path = root / "results" / "results.json"
    results = json.loads(path.read_text()) if path.exists() else None
    return proc, results


def _nb(kind: str) -> nbformat.NotebookNode:
    return nbformat.read(REPO / kind / f"{EXERCISE}.ipynb", as_version=4)


def _tree_hash(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file() and "__pycache__" not in p.parts:
            h.update(str(p.relative_to(folder)).encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def _installed_package(autograder) -> Path:
    out = subprocess.run(
        [str(autograder["python"]), "-I", "-c", "import bertbook; print(bertbook.__file__)"],
        capture_output=True,
        text=True,
        check=True,
    )
    return Path(out.stdout.strip()).parent


def test_setup_installs_a_supported_python_and_this_exact_package(autograder):
    out = subprocess.run(
        [
            str(autograder["python"]),
            "-I",
            "-c",
            "import sys, bertbook, importlib.metadata as m; "
            "print(sys.version_info >= (3, 11), bertbook.__version__, bertbook.__file__, "
            "m.version('torch'), sep='\\n')",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert out[0] == "True" and out[1] == __version__
    assert Path(out[2]).is_relative_to(autograder["root"] / gradescope.VENV)
    assert out[3] == __import__("torch").__version__  # the pin pip checked
    assert "isolation:" in autograder["setup"].stdout
    config = json.loads((autograder["root"] / "source" / "autograder.json").read_text())
    assert config["exercise"] == EXERCISE and config["bertbook_version"] == __version__
    pins = (autograder["root"] / "source" / "requirements.txt").read_text().split()
    assert any(p.startswith("torch==") for p in pins) and all("==" in p for p in pins)


def test_solution_full_marks(autograder):
    proc, res = run_submission(autograder, _nb("solutions"))
    assert proc.returncode == 0 and res is not None, proc.stderr[-3000:]
    assert_spec(res)
    assert res["score"] == sum(t["max_score"] for t in res["tests"]) == FULL
    assert ("bubblewrap" if BWRAP else "unprivileged uid") in res["output"]


def test_untouched_exercise_scores_zero(autograder):
    proc, res = run_submission(autograder, _nb("exercises"), name="my submission.ipynb")
    assert proc.returncode == 0 and res is not None, proc.stderr[-3000:]
    assert_spec(res)
    assert res["score"] == 0.0
    assert all("not implemented yet" in t["output"] for t in res["tests"])


def test_typical_mistake_is_named(autograder):
    nb = _nb("solutions")
    cell = next(c for c in nb.cells if "def causal_mask" in str(c.source))
    cell.source = "def causal_mask(T):\n    return torch.ones(T, T, dtype=torch.bool).triu()\n"
    proc, res = run_submission(autograder, nb)
    assert proc.returncode == 0 and res is not None, proc.stderr[-3000:]
    assert_spec(res)
    q4 = next(t for t in res["tests"] if t["name"].startswith("q4"))
    assert q4["score"] < q4["max_score"]
    assert "this is what the upper triangle (each position sees the future) gives" in q4["output"]
    assert "Hint:" in q4["output"]
    assert res["score"] == FULL - q4["max_score"] + q4["score"]


# Each is the untouched exercise plus one last cell that attacks, then answers q4 (2 points) when
# the kernel is not root: its own honest score is 2, whatever it writes or claims. Whether an
# attack landed is judged from outside: results.json, the package and the runner's files.
HOSTILE = {
    "writes results.json": """
import json, os
fake = {{"score": 100.0, "tests": [{{"name": "q1", "score": 100.0, "max_score": 1.0}}]}}
for path in [{results!r}, {results!r} + ".planted"]:
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            json.dump(fake, f)
    except OSError as err:
        print("refused:", err)
""",
    "edits the package": """
import os, pathlib
import bertbook
targets = sorted(pathlib.Path(bertbook.__file__).parent.rglob("*.py"))
for path in targets + [pathlib.Path({run!r}), pathlib.Path({config!r})]:
    try:
        with open(path, "a") as f:
            f.write("\\n# edited by a student\\n")
    except OSError as err:
        print("refused:", err)
""",
    "prints a fake results block": """
import json, os, sys
fake = {{"score": 10.0, "tests": [{{"name": "q1", "score": 4.0, "max_score": 4.0}}]}}
print(json.dumps(fake))
print("Score: 10/10")
os.write(1, json.dumps(fake).encode() + b"\\n")
os.write(2, b"results: 10 points\\n")
sys.__stdout__.write(json.dumps(fake) + "\\n")
""",
}
HONEST_PART = """
import pathlib
pathlib.Path(os.environ["HOME"], "notes.txt").write_text("mine")  # its own home, by its path
if os.geteuid() != 0:
    def causal_mask(T):
        return torch.ones(T, T, dtype=torch.bool).tril()
"""


def _assert_honest(autograder, attacks: list[str], mode: str) -> None:
    root = autograder["root"]
    package = _installed_package(autograder)
    trees = (package, root / "source", root / gradescope.VENV / "bin")
    before = [_tree_hash(t) for t in trees]
    nb = _nb("exercises")
    for attack in attacks:
        code = HOSTILE[attack].format(
            results=str(root / "results" / "results.json"),
            run=str(root / "run_autograder"),
            config=str(root / "source" / "autograder.json"),
        )
        nb.cells.append(nbformat.v4.new_code_cell(code + HONEST_PART))
    proc, res = run_submission(autograder, nb, mode=mode)
    assert proc.returncode == 0 and res is not None, (mode, proc.stderr[-3000:])
    assert_spec(res)
    assert res["extra_data"]["sandbox"] == mode
    scores = {t["name"][:2]: t["score"] for t in res["tests"]}
    honest = {q: 2.0 if q == "q4" else 0.0 for q in exercise_points(EXERCISE)}  # only q4 answered
    assert scores == honest, (mode, res["output"])
    assert res["score"] == 2.0
    assert [_tree_hash(t) for t in trees] == before, mode
    assert [p.name for p in (root / "results").iterdir()] == ["results.json"], mode
    assert not Path("/autograder/results/results.json").exists() or root == Path("/autograder")


@pytest.mark.parametrize("attack", list(HOSTILE))
def test_hostile_notebooks_get_their_own_score(autograder, attack):
    # Where the test runs as root: outside bubblewrap, the weaker isolation; else in the jail.
    _assert_honest(autograder, [attack], "user" if autograder["user"] else "bubblewrap")


@pytest.mark.skipif(not BWRAP, reason="needs bubblewrap")
def test_hostile_notebook_in_the_jail(autograder):
    _assert_honest(autograder, list(HOSTILE), "bubblewrap")


# -- in-process: whose fault decides what is written ----------------------------------------------
@pytest.fixture
def fake_root(tmp_path):
    for d in ("submission", "results"):
        (tmp_path / d).mkdir()
    config = gradescope._config(EXERCISE, "wheels/x.whl", "0", "2G")
    return tmp_path, config


def test_student_faults_score_zero_with_a_message(fake_root):
    root, config = fake_root
    sub = root / "submission"
    cases = {
        "no notebook": ({"notes.txt": "hello"}, "no notebook"),
        "two notebooks": ({"a.ipynb": None, "b.ipynb": None}, "several notebooks"),
        "another exercise": ({"x.ipynb": "00_intro"}, "is the exercise 00_intro"),
        "not a notebook": ({"x.ipynb": "{not json"}, "not a Jupyter notebook"),
    }
    for files, expected in cases.values():
        shutil.rmtree(sub)
        sub.mkdir()
        for name, content in files.items():
            if content is None:
                nbformat.write(_nb("exercises"), sub / name)
            elif content == "00_intro":
                shutil.copy(REPO / "exercises" / "00_intro.ipynb", sub / name)
            else:
                (sub / name).write_text(content)
        assert gradescope.run_autograder(config, root) == 0
        res = json.loads((root / "results" / "results.json").read_text())
        assert_spec(res)
        assert res["score"] == 0.0 and expected in res["output"], res["output"]
        assert all(expected in t["output"] for t in res["tests"])


def test_a_symlinked_notebook_is_refused(fake_root):
    root, config = fake_root
    (root / "solution.ipynb").write_text(nbformat.writes(_nb("solutions")))
    (root / "submission" / "mine.ipynb").symlink_to(root / "solution.ipynb")
    assert gradescope.run_autograder(config, root) == 0
    res = json.loads((root / "results" / "results.json").read_text())
    assert res["score"] == 0.0 and "symbolic link" in res["output"]


@pytest.mark.parametrize(
    "status",
    [
        "could not be graded (RuntimeError: Kernel died before replying to kernel_info)",
        "grader error: the interpreter is missing",
        "invalid: the course package changed during the run (bertbook/checks.py)",
    ],
)
def test_a_grader_fault_fails_loudly_and_leaves_no_results(fake_root, monkeypatch, capsys, status):
    from bertbook import grade

    root, config = fake_root
    nbformat.write(_nb("solutions"), root / "submission" / "s.ipynb")
    stale = root / "results" / "results.json"
    stale.write_text('{"score": 0.0}')  # a zero from anywhere must not survive a grader fault

    def execute(self):
        return [grade.Report(str(self.found[0][0]), EXERCISE, [], status=status)]

    monkeypatch.setattr(grade.Run, "execute", execute)
    monkeypatch.setattr(gradescope, "isolation", lambda requested: ("bubblewrap", "test"))
    assert gradescope.run_autograder(config, root) == 1
    assert not stale.exists()
    assert "not the student's fault" in capsys.readouterr().err


def test_user_command_drops_to_the_uid_with_limits(tmp_path):
    s = str(tmp_path / "s")
    cmd = gradescope.user_command(s, "/k", 123, 61000, {"PATH": "/bin"})
    assert cmd[1] == "-i" and f"HOME={s}" in cmd and cmd[-1] == "--"
    assert "--uid=61000" in cmd and "--memory=123" in cmd and f"--home={s}" in cmd
    with pytest.raises(gradescope.GraderFault):
        gradescope.user_command(s, "/k", 123, None, {})


def test_find_notebook_skips_checkpoints_and_what_macos_adds(tmp_path):
    for name in (
        "hw/02_transformer.ipynb",
        "hw/.ipynb_checkpoints/02_transformer-checkpoint.ipynb",
        "__MACOSX/hw/._02_transformer.ipynb",
        "hw/._02_transformer.ipynb",
        "notes.txt",
    ):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("{}")
    assert gradescope.find_notebook(tmp_path) == (tmp_path / "hw" / "02_transformer.ipynb", "")


def _stub(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o755)


@pytest.mark.parametrize("image", ["python 3.10 only", "python 3.11 already"])
def test_find_python_on_the_base_image(tmp_path, image):
    """setup.sh's first step with only the stubs on PATH: Ubuntu 22.04's python3 (3.10: it fails
    the version check) and an apt-get that "installs" python3.11 (this interpreter)."""
    bin_, log = tmp_path / "bin", tmp_path / "apt.log"
    bin_.mkdir()
    real = os.path.realpath(sys.executable)
    if image == "python 3.10 only":
        _stub(bin_ / "python3", "#!/bin/sh\nexit 1\n")
    else:
        (bin_ / "python3").symlink_to(real)
    _stub(
        bin_ / "apt-get",
        f'#!/bin/sh\necho "$*" >> "{log}"\n'
        f'case "$*" in *"install"*python3.11*) /bin/ln -s "{real}" "{bin_}/python3.11";; esac\n',
    )
    script = tmp_path / "find_python.sh"
    script.write_text(gradescope.FIND_PYTHON_SH.format())
    out = subprocess.run(
        ["/bin/bash", str(script)], env={"PATH": str(bin_)}, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    if image == "python 3.10 only":
        assert out.stdout.strip() == str(bin_ / "python3.11")
        assert "install -y --no-install-recommends python3.11 python3.11-venv" in log.read_text()
    else:
        assert out.stdout.strip() == str(bin_ / "python3") and not log.exists()
