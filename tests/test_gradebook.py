"""Student ids and the grader's exports (CSV, Canvas, Gradescope, JSON), from reports built here."""

import csv
import io
import json
from pathlib import Path

import pytest

from bertbook import gradebook
from bertbook.checks import Result
from bertbook.grade import Report

META = {"seed": 7, "grader_version": "0.1.0", "sandbox": "bubblewrap"}


def _report(student, exercise, points, status="graded"):
    results = [Result(f"q{i + 1}", p, m) for i, (p, m) in enumerate(points)]
    return Report(
        f"{student}/{exercise}.ipynb", exercise, results, student=student, status=status, seed=7
    )


@pytest.mark.parametrize(
    "path, root, exercise, expected",
    [
        ("sub/alice/02_transformer.ipynb", "sub", "02_transformer", "alice"),
        ("sub/sec1/bob/02_transformer.ipynb", "sub", "02_transformer", "bob"),
        ("sub/alice_02_transformer.ipynb", "sub", "02_transformer", "alice"),
        ("sub/02_transformer-bob smith.ipynb", "sub", "02_transformer", "bob smith"),
        ("sub/carol.ipynb", "sub", "02_transformer", "carol"),
        ("dave/02_transformer.ipynb", None, "02_transformer", "dave"),
        ("eve_00_intro.ipynb", None, "00_intro", "eve"),
    ],
)
def test_student_ids(path, root, exercise, expected):
    assert gradebook.student_id(Path(path), Path(root) if root else None, exercise) == expected


def test_csv_has_one_row_per_student_with_totals_and_questions():
    reports = [
        _report("alice", "00_intro", [(3, 3), (2, 2), (1.5, 3)]),
        _report("alice", "02_transformer", [(4, 4), (0, 2)]),
        _report("bob", "00_intro", [], status="not a Jupyter notebook (JSONDecodeError)"),
    ]
    rows = list(csv.DictReader(io.StringIO(gradebook.csv_text(reports, META))))
    assert [r["student"] for r in rows] == ["alice", "bob"]
    alice, bob = rows
    assert (alice["status"], alice["00_intro"], alice["02_transformer"]) == ("graded", "6.5", "4")
    assert alice["00_intro/q3"] == "1.5" and alice["02_transformer/q2"] == "0"
    assert bob["status"].startswith("00_intro: not a Jupyter notebook")  # not a clean zero
    assert (alice["seed"], alice["grader_version"], alice["sandbox"]) == (
        "7",
        "0.1.0",
        "bubblewrap",
    )


def test_two_notebooks_of_one_exercise_count_the_best():
    reports = [_report("alice", "00_intro", [(1, 3)]), _report("alice", "00_intro", [(3, 3)])]
    rows = list(csv.DictReader(io.StringIO(gradebook.csv_text(reports, META))))
    assert rows[0]["00_intro"] == "3"


def test_canvas_layout_with_a_roster(tmp_path):
    roster_file = tmp_path / "roster.csv"
    roster_file.write_text(
        "student,name,id,sis_user_id,sis_login_id,section\nalice,Alice A,101,S1,aa1,Sec 1\n"
    )
    roster = gradebook.read_roster(str(roster_file))
    reports = [
        _report("alice", "00_intro", [(3, 3), (2, 2)]),
        _report("zed", "00_intro", [(0, 3), (0, 2)]),
    ]
    rows = list(csv.reader(io.StringIO(gradebook.canvas_text(reports, roster, META))))
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "00_intro"]
    assert rows[1][0] == "Points Possible" and rows[1][-1] == "5" and "seed 7" in rows[1][4]
    assert rows[2] == ["Alice A", "101", "S1", "aa1", "Sec 1", "5"]
    assert rows[3][0] == "zed" and rows[3][-1] == "0"  # not on the roster: its id stands in


def test_a_roster_without_a_student_column_is_refused(tmp_path):
    bad = tmp_path / "r.csv"
    bad.write_text("name,id\nA,1\n")
    with pytest.raises(ValueError, match="student"):
        gradebook.read_roster(str(bad))


def test_gradescope_results(tmp_path):
    report = _report("alice", "00_intro", [(3, 3), (0.5, 2)])
    report.results[1].failed = [("temperature 0.5", "result: 24 of 24 values differ")]
    data = gradebook.gradescope_results(report, META)
    assert data["score"] == 3.5
    assert [t["name"] for t in data["tests"]] == ["q1", "q2"]
    assert data["tests"][1] == {
        "name": "q2",
        "score": 0.5,
        "max_score": 2,
        "output": "  FAIL  temperature 0.5: result: 24 of 24 values differ",
    }
    assert "seed 7" in data["output"]


def test_outputs_are_rewritten_after_each_notebook(tmp_path):
    out = gradebook.Outputs(
        json_path=str(tmp_path / "r.json"), csv_path=str(tmp_path / "g.csv"), meta=META
    )
    out.add(_report("alice", "00_intro", [(3, 3)]))
    assert len(json.loads((tmp_path / "r.json").read_text())) == 1  # a list, even for one
    out.add(_report("bob", "00_intro", [(1, 3)]))
    assert [r["student"] for r in json.loads((tmp_path / "r.json").read_text())] == ["alice", "bob"]
    assert not list(tmp_path.glob("*.tmp*"))
