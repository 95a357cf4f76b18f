"""Grade exercise notebooks: ``python -m bertbook.grade NOTEBOOK_OR_FOLDER... [--json OUT] [--csv OUT]``.

Each notebook runs in a fresh kernel on a temporary copy (the submitted file is never
touched), cell by cell with a time limit per cell. Then each question's function is called in
that kernel on inputs drawn fresh for this run, and its results are compared with the
reference answer here, in the grader's own process. A cell that raises, hangs, exits or kills
the kernel costs only the questions that depend on it. Exit status: 0 whenever grading
happened (zero points included); 2 with a one-line error for input that cannot be graded.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from . import wire
from .checks import Question, Result, format_result, questions_for, score
from .kernel import CellRun, Sandbox


class Unusable(Exception):
    """Input that cannot be graded at all (missing, not a notebook, not a course exercise)."""


@dataclass
class Report:
    path: str
    exercise: str
    results: list[Result]
    cells: list[CellRun] = field(default_factory=list)
    kernel_restarts: int = 0

    @property
    def points(self) -> float:
        return round(sum(r.points for r in self.results), 2)

    @property
    def max_points(self) -> int:
        return sum(r.max_points for r in self.results)

    def as_dict(self) -> dict:
        return {
            "notebook": self.path,
            "exercise": self.exercise,
            "score": self.points,
            "max_score": self.max_points,
            "questions": [r.as_dict() for r in self.results],
            "cells": [
                {"index": c.index, "status": c.status, "error": c.error}
                for c in self.cells
                if c.status != "ok"
            ],
            "kernel_restarts": self.kernel_restarts,
        }


def read_exercise(path: Path) -> tuple[nbformat.NotebookNode, str]:
    if not path.is_file():
        raise Unusable(f"{path}: no such file")
    try:
        nb = nbformat.read(str(path), as_version=4)
    except Exception as err:
        raise Unusable(f"{path}: not a Jupyter notebook ({type(err).__name__})") from None
    exercise = nb.metadata.get("bertbook", {}).get("exercise")
    if not exercise:
        raise Unusable(f"{path}: not a course exercise (no bertbook.exercise in its metadata)")
    try:
        questions_for(exercise)
    except KeyError as err:
        raise Unusable(f"{path}: {err.args[0]}") from None
    return nb, exercise


def _call_question(box: Sandbox, question: Question, rng: random.Random, timeout: float) -> Result:
    cases = question.cases(rng)
    status, text = box.evaluate(f"callable(globals().get({question.function!r}))", timeout=10)
    if status != "ok" or text is not True:
        return Result(
            question.id,
            0.0,
            question.points,
            failed=[("all", f"no function named {question.function} was defined")],
            note=f"{question.function} not defined",
        )
    outcomes = []
    for case in cases:
        payload = wire.encode(case.args)
        status, text = box.evaluate(f"_bb_call({question.function!r}, {payload!r})", timeout)
        if status != "ok":
            why = {
                "timeout": f"did not finish within {timeout:g} s",
                "died": "the kernel died while running it",
            }.get(status, text)
            outcomes.append((case, "error", why))
            continue
        try:
            reply = json.loads(text)
        except (TypeError, ValueError):
            outcomes.append((case, "error", "unreadable result"))
            continue
        if reply.get("status") == "ok":
            outcomes.append((case, "ok", wire._bb_decode(reply.get("value"))))  # noqa: SLF001
        elif reply.get("status") == "missing":
            outcomes.append((case, "error", f"{question.function} is not defined"))
        elif str(reply.get("error", "")).startswith("NotImplementedError"):
            return Result(
                question.id,
                0.0,
                question.points,
                failed=[("all", "not implemented yet")],
                note="not implemented yet",
            )
        else:
            outcomes.append((case, "error", f"raised {reply.get('error')}"))
    return score(question, outcomes)


def grade_notebook(
    path: Path, cell_timeout: float = 60, call_timeout: float = 20, seed: int | None = None
) -> Report:
    nb, exercise = read_exercise(path)
    questions = list(questions_for(exercise).values())
    rng = random.Random(seed if seed is not None else random.SystemRandom().randrange(2**32))
    with tempfile.TemporaryDirectory(prefix="bertbook-grade-") as tmp:
        shutil.copy(path, Path(tmp) / path.name)  # the kernel sees a copy, never the original
        with Sandbox(cwd=tmp) as box:
            cells = []
            for i, cell in enumerate(nb.cells):
                if cell.cell_type != "code" or not cell.source.strip():
                    continue
                # IPython magics and shell escapes run as the student wrote them.
                cells.append(box.run_cell(i, cell.source, cell_timeout))
            box.define(wire.KERNEL_HELPERS)
            results = [_call_question(box, q, rng, call_timeout) for q in questions]
            restarts = box.restarts
    return Report(str(path), exercise, results, cells, restarts)


def render(report: Report) -> str:
    lines = [f"== {report.path} ({report.exercise})"]
    for cell in report.cells:
        if cell.status != "ok":
            lines.append(
                f"  cell {cell.index}: {cell.status}" + (f" ({cell.error})" if cell.error else "")
            )
    if report.kernel_restarts:
        lines.append(f"  the kernel was restarted {report.kernel_restarts} time(s)")
    width = max(len(r.question) for r in report.results)
    lines.append(f"  {'question':<{width}}  points  detail")
    for r in report.results:
        detail = r.note or (f"{len(r.passed)}/{len(r.passed) + len(r.failed)} cases passed")
        lines.append(f"  {r.question:<{width}}  {r.points:>4g}/{r.max_points:<2} {detail}")
        if r.failed and not r.note:
            for line in format_result(r).splitlines()[1:]:
                if "FAIL" in line:
                    lines.append("      " + line.strip())
    lines.append(f"Score: {report.points:g}/{report.max_points}")
    return "\n".join(lines)


def _expand(paths: list[str]) -> list[Path]:
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(p.rglob("*.ipynb"))
            out.extend(f for f in found if ".ipynb_checkpoints" not in f.parts)
            if not found:
                raise Unusable(f"{p}: no notebooks in this folder")
        else:
            out.append(p)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bertbook.grade", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("notebooks", nargs="+", help="exercise notebooks or folders of them")
    parser.add_argument("--json", help="write per-question results as JSON here")
    parser.add_argument("--csv", help="write a gradebook (one row per notebook) here")
    parser.add_argument(
        "--cell-timeout", type=float, default=60, help="seconds per cell (default 60)"
    )
    parser.add_argument(
        "--call-timeout", type=float, default=20, help="seconds per test call (default 20)"
    )
    parser.add_argument("--seed", type=int, help="fix the test inputs (default: fresh each run)")
    args = parser.parse_args(argv)
    try:
        paths = _expand(args.notebooks)
        for p in paths:  # refuse unusable input before spending minutes grading
            read_exercise(p)
    except Unusable as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    reports = []
    for p in paths:
        report = grade_notebook(p, args.cell_timeout, args.call_timeout, args.seed)
        print(render(report), flush=True)
        reports.append(report)
    if args.json:
        data = [r.as_dict() for r in reports]
        Path(args.json).write_text(json.dumps(data[0] if len(data) == 1 else data, indent=2))
    if args.csv:
        # One column per question; named exercise/question when the notebooks mix exercises.
        mixed = len({r.exercise for r in reports}) > 1
        key = (lambda r, q: f"{r.exercise}/{q.question}") if mixed else (lambda r, q: q.question)
        qids = []
        for r in reports:
            qids += [key(r, q) for q in r.results if key(r, q) not in qids]
        with open(args.csv, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["notebook", "exercise", *qids, "score", "max_score"])
            for r in reports:
                pts = {key(r, q): q.points for q in r.results}
                w.writerow(
                    [r.path, r.exercise, *[pts.get(q, "") for q in qids], r.points, r.max_points]
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
