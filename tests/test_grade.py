"""The grader: full marks for the solution, zero for the untouched exercise, and a score (never
a crash, a hang or a changed file) for broken, slow and hostile notebooks."""

import csv
import hashlib
import io
import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

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


def test_error_cell_costs_only_what_depends_on_it(tmp_path):
    def break_q3(cells):
        i = _code_index(cells, "def cosine_similarity")
        cells[i].source = "1 / 0\n" + cells[i].source

    report = grade_notebook(_variant(tmp_path, "raises", break_q3), **FAST)
    assert _points(report) == {"q1": 3, "q2": 2, "q3": 0}
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
    assert _points(report) == {"q1": 3, "q2": 2, "q3": 0}
    assert report.kernel_restarts >= 1
    assert any(c.status == "died" for c in report.cells)


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
    assert done.stdout.strip().splitlines()[-1] == "Score: 5.75/8"
    assert len(done.stdout) < 10_000
    data = json.loads((tmp_path / "out.json").read_text())
    assert [q["points"] for q in data[0]["questions"]] == [3, 2, 0.75]


def test_a_function_that_hangs_or_returns_junk_scores_zero(tmp_path):
    def hostile(cells):
        i = _code_index(cells, "def softmax_with")
        cells[i].source = "def softmax_with_temperature(x, t):\n    while True:\n        pass\n"
        j = _code_index(cells, "def cosine_similarity")
        cells[j].source = "def cosine_similarity(a, b):\n    return object()\n"

    report = grade_notebook(_variant(tmp_path, "hostile", hostile), **FAST)
    assert _points(report) == {"q1": 3, "q2": 0, "q3": 0}
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
        ("alice", "graded", 8.0),
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


def test_the_grader_names_a_mistake_and_charges_it_once(tmp_path):
    def first_axis(cells):
        i = _code_index(cells, "def softmax(")
        cells[i].source = "def softmax(x):\n    return torch.softmax(x, 0)\n"

    report = grade_notebook(_variant(tmp_path, "axis", first_axis), **dict(FAST, cell_timeout=60))
    q1, q2 = report.results[0], report.results[1]
    assert q1.points < q1.max_points
    assert any("this is what softmax over the first axis gives" in why for _, why in q1.failed)
    assert q2.points == q2.max_points  # it calls the student's softmax: graded with the reference


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
