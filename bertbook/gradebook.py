"""Who a notebook belongs to, and the grader's outputs: CSV gradebook, JSON, Canvas, Gradescope.

Student ids: the notebook's folder name when each student has a folder
(``submissions/<student>/NN_topic.ipynb``), otherwise the file name with the exercise's name
removed (``alice_00_intro.ipynb`` -> ``alice``). ``--roster`` maps ids to LMS identifiers.
Every output is rewritten whole, atomically, after each notebook, so an interrupted run keeps
what it graded; every output records the seed, the grader version and the sandbox.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from pathlib import Path

ROSTER_COLUMNS = ("student", "name", "id", "sis_user_id", "sis_login_id", "section")


def student_id(path: Path, root: Path | None, exercise: str) -> str:
    """The student a notebook belongs to (see the module's docstring)."""
    if root is not None and path.parent != root:
        return path.parent.name
    stem = path.stem
    if exercise:
        stem = stem.replace(exercise, "")
    stem = re.sub(r"^[\s_.\-]+|[\s_.\-]+$", "", stem)
    return stem or (path.parent.name if root is None and path.parent.name else path.stem)


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


def _atomic_write(path: str, text: str) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def _num(x) -> str:
    return f"{x:g}" if isinstance(x, (int, float)) else x


def _exercises(reports) -> list[str]:
    return sorted({r.exercise for r in reports if r.exercise})


def _by_student(reports) -> dict[str, dict[str, object]]:
    """student -> exercise -> the report that counts (the best, when a student handed in two)."""
    out: dict[str, dict[str, object]] = {}
    for r in reports:
        mine = out.setdefault(r.student, {})
        key = r.exercise or f"?{r.path}"
        if key not in mine or (r.status == "graded", r.points) > (
            mine[key].status == "graded",
            mine[key].points,
        ):
            mine[key] = r
    return out


def _status(mine: dict) -> str:
    problems = [
        f"{r.exercise or Path(r.path).name}: {r.status}"
        for r in mine.values()
        if r.status != "graded"
    ]
    return "graded" if not problems else "; ".join(problems)


def csv_text(reports, meta: dict) -> str:
    """One row per student: student, status, a total per exercise, then per-question points."""
    exercises = _exercises(reports)
    questions: dict[str, list[str]] = {ex: [] for ex in exercises}
    for r in reports:
        for q in r.results:
            if r.exercise and q.question not in questions[r.exercise]:
                questions[r.exercise].append(q.question)
    header = ["student", "status", *exercises]
    header += [f"{ex}/{q}" for ex in exercises for q in questions[ex]]
    header += ["seed", "grader_version", "sandbox"]
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(header)
    for student, mine in sorted(_by_student(reports).items()):
        row = [student, _status(mine)]
        row += [_num(mine[ex].points) if ex in mine else "" for ex in exercises]
        for ex in exercises:
            pts = {q.question: _num(q.points) for q in mine[ex].results} if ex in mine else {}
            row += [pts.get(q, "") for q in questions[ex]]
        w.writerow(row + [meta["seed"], meta["grader_version"], meta["sandbox"]])
    return out.getvalue()


def canvas_text(reports, roster: dict, meta: dict) -> str:
    """Canvas's gradebook import layout: Student, ID, SIS User ID, SIS Login ID, Section, then
    one column per exercise; a 'Points Possible' row first (its Section cell records the run)."""
    exercises = _exercises(reports)
    possible = {r.exercise: r.max_points for r in reports if r.exercise and r.max_points}
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["Student", "ID", "SIS User ID", "SIS Login ID", "Section", *exercises])
    run = f"seed {meta['seed']}; bertbook {meta['grader_version']}; sandbox {meta['sandbox']}"
    w.writerow(["Points Possible", "", "", "", run, *[possible.get(ex, "") for ex in exercises]])
    for student, mine in sorted(_by_student(reports).items()):
        who = roster.get(student, {})
        w.writerow(
            [
                who.get("name") or student,
                who.get("id", ""),
                who.get("sis_user_id", ""),
                who.get("sis_login_id") or student,
                who.get("section", ""),
                *[
                    mine[ex].points if ex in mine and mine[ex].status == "graded" else ""
                    for ex in exercises
                ],
            ]
        )
    return out.getvalue()


def gradescope_results(report, meta: dict) -> dict:
    """Gradescope's autograder results.json for one notebook."""
    from .checks import format_result

    tests = []
    for r in report.results:
        output = r.note or "\n".join(format_result(r).splitlines()[1:])
        tests.append(
            {"name": r.question, "score": r.points, "max_score": r.max_points, "output": output}
        )
    summary = f"status: {report.status}; seed {meta['seed']}; bertbook {meta['grader_version']}"
    return {
        "score": report.points,
        "output": f"{summary}; sandbox {meta['sandbox']}",
        "tests": tests,
        "extra_data": meta,
    }


class Outputs:
    """The files a run writes, rewritten after each notebook."""

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

    def add(self, report) -> None:
        self.reports.append(report)
        self.write(self.reports)

    def write(self, reports) -> None:
        if self.csv_path:
            _atomic_write(self.csv_path, csv_text(reports, self.meta))
        if self.json_path:
            _atomic_write(self.json_path, json.dumps([r.as_dict() for r in reports], indent=2))
        if self.canvas_path:
            _atomic_write(self.canvas_path, canvas_text(reports, self.roster, self.meta))
        if self.gradescope_path and reports:
            _atomic_write(
                self.gradescope_path,
                json.dumps(gradescope_results(reports[0], self.meta), indent=2),
            )
