"""Student ids and the grader's exports (CSV, Canvas, Gradescope, JSON), from reports built here."""

import csv
import io
import json
from pathlib import Path

import pytest

from bertbook import escape, gradebook, submissions
from bertbook.checks import Result
from bertbook.grade import Report

META = {"seed": 7, "grader_version": "0.1.0", "sandbox": "bubblewrap"}


def _report(student, exercise, points, status="graded"):
    results = [Result(f"q{i + 1}", p, m) for i, (p, m) in enumerate(points)]
    return Report(
        f"{student}/{exercise}.ipynb", exercise, results, student=student, status=status, seed=7
    )


@pytest.mark.parametrize(
    "path, root, expected",
    [
        ("sub/alice/02_transformer.ipynb", "sub", "alice"),
        ("sub/alice/anything.ipynb", "sub", "alice"),
        ("sub/alice_02_transformer.ipynb", "sub", "alice"),
        ("sub/02_transformer-bob smith.ipynb", "sub", "bob smith"),
        ("sub/carol.ipynb", "sub", "carol"),
        ("sub/alice/02_transformer.ipynb", "sub/alice", "alice"),  # one student's folder
        ("dave/02_transformer.ipynb", None, "dave"),
        ("eve_00_intro.ipynb", None, "eve"),
    ],
)
def test_student_ids_come_from_the_layout(path, root, expected):
    assert gradebook.student_id(Path(path), Path(root) if root else None) == expected


def test_a_notebook_nested_deeper_is_refused_never_credited_further_down():
    path, root = Path("sub/mallory/erin/02_transformer.ipynb"), Path("sub")
    with pytest.raises(submissions.Refused, match="nested 2 folders deep"):
        gradebook.student_id(path, root)
    assert gradebook.refused_student(path, root) == "mallory"


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


def test_two_notebooks_of_one_exercise_are_a_duplicate_never_merged(tmp_path):
    reports = [
        _report("alice", "00_intro", [(1, 3)]),
        _report("alice", "00_intro", [(3, 3)]),
        _report("bob", "00_intro", [(2, 3)]),
    ]
    rows = list(csv.DictReader(io.StringIO(gradebook.csv_text(reports, META))))
    alice, bob = rows
    assert alice["00_intro"] == "" and alice["00_intro/q1"] == ""  # no score picked
    assert alice["status"].startswith("00_intro: duplicate, 2 notebooks")
    assert "1/3" in alice["status"] and "3/3" in alice["status"]
    assert alice["needs_instructor"] == "yes"
    assert (bob["status"], bob["needs_instructor"], bob["00_intro"]) == ("graded", "", "2")
    canvas = list(csv.reader(io.StringIO(gradebook.canvas_text(reports, {}, META))))
    assert canvas[2][0] == "alice" and canvas[2][-1] == ""  # blank: Canvas keeps what it had


def test_every_row_that_needs_the_instructor_is_named():
    reports = [
        _report("alice", "00_intro", [(3, 3)]),
        _report("mallory", "", [], status="refused: a symbolic link"),
        _report("zed", "00_intro", [(0, 3)], status="could not be graded (OSError: disk)"),
    ]
    out = gradebook.Outputs(roster={"alice": {}, "mallory": {}}, meta=META)
    assert out.needs_instructor(reports) == [
        "mallory: mallory/.ipynb: refused: a symbolic link",
        "zed: 00_intro: could not be graded (OSError: disk); not on the roster",
    ]
    rows = list(csv.DictReader(io.StringIO(gradebook.csv_text(reports, META, out.roster))))
    assert [r["needs_instructor"] for r in rows] == ["", "yes", "yes"]
    assert rows[2]["00_intro"] == ""  # an error is never a zero


@pytest.mark.parametrize(
    "name", ['=HYPERLINK("http://x","y")', "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1", " =1"]
)
def test_no_cell_a_student_controls_is_a_formula(name, tmp_path):
    reports = [_report(name, "00_intro", [(3, 3)])]
    roster = {name: {"name": name, "section": "=1+2"}}
    for text in (
        gradebook.csv_text(reports, META, roster),
        gradebook.canvas_text(reports, roster, META),
    ):
        for row in list(csv.reader(io.StringIO(text)))[1:]:
            for cell in row:
                assert not cell.lstrip(" ").startswith(("=", "+", "-", "@", "\t", "\r")), row


def test_control_characters_and_bytes_that_are_not_utf8_are_escaped(tmp_path):
    name = "eve\x1b[2J\nalice  Score: 8/8\udcff"  # a name with a byte that is not UTF-8
    report = _report(name, "00_intro", [(3, 3)])
    report.results[0].failed = [("case", "raised ValueError: <b>x</b>\x07")]
    out = gradebook.Outputs(
        csv_path=str(tmp_path / "g.csv"),
        json_path=str(tmp_path / "r.json"),
        canvas_path=str(tmp_path / "c.csv"),
        gradescope_path=str(tmp_path / "gs.json"),
        meta=META,
    )
    out.add(report)
    assert out.errors == {}
    for f in ("g.csv", "r.json", "c.csv", "gs.json"):
        data = (tmp_path / f).read_bytes()
        data.decode("utf-8")  # every output is valid UTF-8
        assert b"\x1b" not in data and b"\x07" not in data, f
        assert b"<" not in data or not f.endswith(".json"), f  # JSON holds no markup
    row = next(csv.DictReader(io.StringIO((tmp_path / "g.csv").read_text())))
    assert row["student"] == "eve\\x1b[2J\\nalice  Score: 8/8\\xff"
    gs = json.loads((tmp_path / "gs.json").read_text())
    assert gs["output_format"] == gs["test_output_format"] == "text"
    assert gs["tests"][0]["output"] == "  FAIL  case: raised ValueError: <b>x</b>\\x07"
    records = json.loads((tmp_path / "r.json").read_text())
    assert records[0]["student"] == row["student"]


def test_one_output_that_cannot_be_written_stops_neither_the_others_nor_the_run(tmp_path):
    out = gradebook.Outputs(
        csv_path=str(tmp_path / "no such folder" / "g.csv"),
        json_path=str(tmp_path / "r.json"),
        meta=META,
    )
    out.add(_report("alice", "00_intro", [(3, 3)]))
    assert list(out.errors) == [str(tmp_path / "no such folder" / "g.csv")]
    assert json.loads((tmp_path / "r.json").read_text())[0]["student"] == "alice"


def test_escape_text_keeps_printable_text():
    assert escape.text("Zoë Ångström-Ó'Brien") == "Zoë Ångström-Ó'Brien"
    assert escape.text("a\u202eb") == "a\\u202eb"  # a bidi override cannot reorder a line


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
