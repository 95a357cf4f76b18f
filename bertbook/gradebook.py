"""Who a notebook belongs to, and the grader's outputs: CSV gradebook, JSON, Canvas, Gradescope.

Student ids come from where a notebook lies, nothing else: ``<folder>/<student>/<exercise>.ipynb``
(the folder's name), or ``<folder>/<student>_<exercise>.ipynb`` (the file name with the course
exercise's name removed: ``alice_00_intro.ipynb`` -> ``alice``). A notebook nested deeper is
refused, never credited to a folder further down. Two notebooks for one student and exercise are
both reported as a duplicate, never merged. ``--roster`` maps ids to LMS identifiers.
Every output is rewritten whole, atomically, after each notebook, so an interrupted run keeps
what it graded; every output records the seed, the grader version and the sandbox; every text a
student controls is escaped (``bertbook.escape``) where it is written.
"""

from __future__ import annotations

import csv
import io
import os
import re
from pathlib import Path

from . import escape, submissions

ROSTER_COLUMNS = ("student", "name", "id", "sis_user_id", "sis_login_id", "section")


def student_id(path: Path, root: Path | None) -> str:
    """The student a notebook belongs to, from where it lies alone (see the module's docstring);
    ``submissions.Refused`` for a notebook nested deeper than ``<student>/<exercise>.ipynb``
    (its message says why; ``refused_student`` names the folder it was found in)."""
    parts = submissions.parts_under(path, root)
    if len(parts) == 2:
        return parts[0]
    if len(parts) > 2:
        raise submissions.Refused(
            f"refused: nested {len(parts) - 1} folders deep (a notebook is "
            "<folder>/<student>/<exercise>.ipynb or <folder>/<student>_<exercise>.ipynb)"
        )
    stem = path.name.removesuffix(".ipynb")
    for exercise in sorted(_exercise_names(), key=len, reverse=True):
        stem = stem.replace(exercise, "")
    stem = re.sub(r"^[\s_.\-]+|[\s_.\-]+$", "", stem)
    if stem:
        return stem
    # <folder>/<exercise>.ipynb: the folder is the student's (given alone, or as a file's folder)
    return (root.name if root is not None else path.parent.name) or path.name


def refused_student(path: Path, root: Path | None) -> str:
    """Whose row a refused, nested notebook is reported in: the folder at the student level."""
    return submissions.parts_under(path, root)[0]


def _exercise_names() -> list[str]:
    from .questions import REGISTRY

    return list(REGISTRY)


def read_roster(path: str) -> dict[str, dict[str, str]]:
    """student id -> {name, id, sis_user_id, sis_login_id, section} from a CSV with a header
    row; ``student`` (our id) is required, the other columns optional."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows or "student" not in rows[0]:
        raise ValueError(f"{path}: a roster needs a header row with a 'student' column")
    return {
        r["student"].strip(): {k: (r.get(k) or "").strip() for k in ROSTER_COLUMNS} for r in rows
    }


def atomic_write(path: str, text: str) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "w", newline="", encoding="utf-8", errors="backslashreplace") as f:
            f.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _num(x) -> str:
    return f"{x:g}" if isinstance(x, (int, float)) else x


def _exercises(reports) -> list[str]:
    return sorted({r.exercise for r in reports if r.exercise})


def _by_student(reports) -> dict[str, dict[str, list]]:
    """student (escaped) -> exercise -> every report of it. Never merged: two notebooks for one
    student and exercise are a duplicate, which the instructor decides."""
    out: dict[str, dict[str, list]] = {}
    for r in reports:
        key = r.exercise or f"?{r.path}"
        out.setdefault(escape.text(r.student), {}).setdefault(key, []).append(r)
    return out


def _counted(mine: dict, exercise: str):
    """The one graded report that gives this exercise's points; None when there is none
    (not handed in, refused, not graded, or a duplicate)."""
    found = mine.get(exercise, [])
    if len(found) == 1 and found[0].status == "graded":
        return found[0]
    return None


def _problems(student: str, mine: dict, roster: dict | None) -> list[str]:
    """Why this row needs the instructor (empty when every notebook was graded)."""
    problems = []
    for key, found in mine.items():
        label = key if not key.startswith("?") else escape.text(found[0].path)
        if len(found) > 1:
            each = ", ".join(
                f"{Path(r.path).name} {'none' if r.points is None else _num(r.points)}/{r.max_points}"
                for r in found
            )
            problems.append(f"{label}: duplicate, {len(found)} notebooks ({each})")
        elif found[0].status != "graded":
            problems.append(f"{label}: {found[0].status}")
    if roster and student not in {escape.text(k) for k in roster}:
        problems.append("not on the roster")
    return problems


def csv_text(reports, meta: dict, roster: dict | None = None) -> str:
    """One row per student: student, status, needs_instructor, a total per exercise, then
    per-question points. A refused, duplicate or ungraded notebook leaves its cells blank (never
    a zero the student did not earn) and says why in ``status``; every text cell is escaped
    (``escape.cell``) so that a spreadsheet never evaluates it."""
    exercises = _exercises(reports)
    questions: dict[str, list[str]] = {ex: [] for ex in exercises}
    for r in reports:
        for q in r.results:
            if r.exercise and q.question not in questions[r.exercise]:
                questions[r.exercise].append(q.question)
    header = ["student", "status", "needs_instructor", *exercises]
    header += [f"{ex}/{q}" for ex in exercises for q in questions[ex]]
    header += ["seed", "grader_version", "sandbox"]
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow([escape.cell(h) for h in header])
    for student, mine in sorted(_by_student(reports).items()):
        problems = _problems(student, mine, roster)
        row = [student, "; ".join(problems) or "graded", "yes" if problems else ""]
        counted = {ex: _counted(mine, ex) for ex in exercises}
        row += [_num(counted[ex].points) if counted[ex] else "" for ex in exercises]
        for ex in exercises:
            pts = {q.question: _num(q.points) for q in counted[ex].results} if counted[ex] else {}
            row += [pts.get(q, "") for q in questions[ex]]
        row += [meta["seed"], meta["grader_version"], meta["sandbox"]]
        w.writerow([escape.cell(c) for c in row])
    return out.getvalue()


def canvas_text(reports, roster: dict, meta: dict) -> str:
    """Canvas's gradebook import layout: Student, ID, SIS User ID, SIS Login ID, Section, then
    one column per exercise; a 'Points Possible' row first (its Section cell records the run).
    Every student has a row; a notebook that was not graded leaves its cell blank, which Canvas
    reads as "no change": the CSV gradebook's ``needs_instructor`` column names those rows."""
    exercises = _exercises(reports)
    possible = {r.exercise: r.max_points for r in reports if r.exercise and r.max_points}
    by_id = {escape.text(k): v for k, v in roster.items()}
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["Student", "ID", "SIS User ID", "SIS Login ID", "Section", *exercises])
    run = f"seed {meta['seed']}; bertbook {meta['grader_version']}; sandbox {meta['sandbox']}"
    w.writerow(["Points Possible", "", "", "", run, *[possible.get(ex, "") for ex in exercises]])
    for student, mine in sorted(_by_student(reports).items()):
        who = by_id.get(student, {})
        row = [
            who.get("name") or student,
            who.get("id", ""),
            who.get("sis_user_id", ""),
            who.get("sis_login_id") or student,
            who.get("section", ""),
        ]
        row += [_num(_counted(mine, ex).points) if _counted(mine, ex) else "" for ex in exercises]
        w.writerow([escape.cell(c) for c in row])
    return out.getvalue()


def gradescope_results(report, meta: dict) -> dict:
    """Gradescope's autograder results.json for one notebook: every text is plain text
    (``output_format`` "text"), with control characters escaped."""
    tests = []
    for r in report.results:
        output = r.note or "\n".join(f"  FAIL  {case}: {why}" for case, why in r.failed)
        tests.append(
            {
                "name": r.question,
                "score": r.points,
                "max_score": r.max_points,
                "output": escape.lines(output),
            }
        )
    summary = f"status: {report.status}; seed {meta['seed']}; bertbook {meta['grader_version']}"
    return {
        "score": report.points,
        "output": escape.text(f"{summary}; sandbox {meta['sandbox']}"),
        "output_format": "text",
        "test_output_format": "text",
        "test_name_format": "text",
        "tests": tests,
        "extra_data": meta,
    }


def json_records(reports, roster: dict | None = None) -> list[dict]:
    """Every report as a dict, its notebook and student escaped like every other output's."""
    records = []
    for r in reports:
        record = r.as_dict()
        record["notebook"] = escape.text(record["notebook"])
        record["student"] = escape.text(record["student"])
        if roster:
            record["on_roster"] = record["student"] in {escape.text(k) for k in roster}
        records.append(record)
    return records


class Outputs:
    """The files a run writes, rewritten after each notebook. Writing one file never stops the
    run, nor the other files: a failure is kept in ``errors`` (the run prints it at its end)."""

    def __init__(
        self,
        csv_path=None,
        json_path=None,
        canvas_path=None,
        gradescope_path=None,
        roster=None,
        meta=None,
    ):
        self.csv_path, self.json_path = csv_path, json_path
        self.canvas_path, self.gradescope_path = canvas_path, gradescope_path
        self.roster = roster or {}
        self.meta = meta or {}
        self.reports: list = []
        self.errors: dict[str, str] = {}  # output file -> why its last write failed

    def add(self, report) -> None:
        self.reports.append(report)
        self.write(self.reports)

    def write(self, reports) -> None:
        makers = {
            self.csv_path: lambda: csv_text(reports, self.meta, self.roster),
            self.json_path: lambda: escape.json_text(json_records(reports, self.roster)),
            self.canvas_path: lambda: canvas_text(reports, self.roster, self.meta),
        }
        if reports:
            makers[self.gradescope_path] = lambda: escape.json_text(
                gradescope_results(reports[0], self.meta)
            )
        for path, make in makers.items():
            if not path:
                continue
            try:
                atomic_write(path, make())
                self.errors.pop(path, None)
            except Exception as err:  # a full disk, a bad value: this file, not the run
                self.errors[path] = f"{type(err).__name__}: {escape.text(err)}"[:300]

    def needs_instructor(self, reports) -> list[str]:
        """One line per student whose row needs the instructor, with why."""
        lines = []
        for student, mine in sorted(_by_student(reports).items()):
            problems = _problems(student, mine, self.roster)
            if problems:
                lines.append(escape.text(f"{student}: {'; '.join(problems)}"))
        return lines
