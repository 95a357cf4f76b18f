"""Grade exercise notebooks: ``python -m bertbook.grade NOTEBOOK_OR_FOLDER... [options]``.

A run goes in this order, so that no student's code can touch what another is graded by:
1. every notebook is read once and copied into the grader's private folder (the originals are
   never opened again);
2. every test case of every question graded (inputs, reference answers, and what each listed
   mistake returns) is computed here, in the grader's process, from one seed;
3. each notebook runs in a fresh kernel inside its own sandbox (``bertbook.sandbox``), cell by
   cell with a time limit each; then each question's function is called there on the cases'
   inputs, and the results are checked here. Several notebooks run at once (``-j``).
Any failure while grading one notebook costs that notebook, with a status and a reason, never
the run; results are written as each notebook finishes. A failure that is the grader's and not
the notebook's (its kernel does not start) is never a score: that notebook's status is
``grader error: <why>`` and its score is empty. Before the first notebook, a kernel is started in
the jail as grading starts them (``sandbox.probe``); when that fails nothing is graded.
Exit status: 0 whenever every notebook was graded (zero points included); 2 with a one-line
error for input that cannot be graded or a sandbox that cannot run a kernel (no output file is
written); 3 when some notebooks got ``grader error`` (the last line says how many to re-run).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import json
import os
import queue
import random
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from . import __version__, escape, gradebook, sandbox, submissions, wire
from .checks import (
    Prepared,
    Result,
    forbidden_calls,
    prepare,
    questions_for,
    rule_result,
    score,
)
from .integrity import Package
from .kernel import CellRun, Jail, Kernel, StartError

MAX_NOTEBOOK_BYTES = 20_000_000  # the notebook without its saved outputs
GRADER_ERROR = "grader error"


class Unusable(Exception):
    """Input that cannot be graded at all (missing, not a notebook, not a course exercise)."""


@dataclass
class Submission:
    path: str  # as given on the command line (what reports show)
    student: str = ""
    exercise: str = ""
    copy: Path | None = None  # the snapshot in the grader's private folder
    nb: nbformat.NotebookNode | None = None
    problem: str = ""  # why it cannot be graded; empty when it can
    flag: str = ""  # graded, but its status is this (a duplicate): the instructor decides


@dataclass
class Report:
    path: str
    exercise: str
    results: list[Result]
    cells: list[CellRun] = field(default_factory=list)
    kernel_restarts: int = 0
    student: str = ""
    status: str = "graded"  # or the reason the notebook could not be graded
    sandbox: str = "none"
    seed: int = 0
    memory_limit: str = ""

    @property
    def grader_error(self) -> bool:
        return self.status.startswith(GRADER_ERROR)

    @property
    def points(self) -> float | None:
        """None (an empty cell in every output) when the grader, not the notebook, failed."""
        if self.grader_error:
            return None
        return round(sum(r.points for r in self.results), 2)

    @property
    def max_points(self) -> int:
        return sum(r.max_points for r in self.results)

    def as_dict(self) -> dict:
        return {
            "notebook": self.path,
            "student": self.student,
            "exercise": self.exercise,
            "status": self.status,
            "score": self.points,
            "max_score": self.max_points,
            "questions": [r.as_dict() for r in self.results],
            "cells": [
                {"index": c.index, "status": c.status, "error": c.error}
                for c in self.cells
                if c.status != "ok"
            ],
            "kernel_restarts": self.kernel_restarts,
            "seed": self.seed,
            "grader_version": __version__,
            "sandbox": self.sandbox,
        }


# -- reading submissions -------------------------------------------------------------------------
def read_exercise(path: Path) -> tuple[nbformat.NotebookNode, str]:
    """The notebook and its exercise name; Unusable with a one-line reason otherwise."""
    if not os.path.lexists(path):
        raise Unusable(f"{escape.text(path)}: no such file")
    try:
        data = submissions.read(Path(path), None)
    except submissions.Refused as err:
        raise Unusable(f"{escape.text(path)}: {err}") from None
    nb, exercise = parse_exercise(data, escape.text(path))
    return without_outputs(nb, escape.text(path)), exercise


def parse_exercise(data: bytes, name: str) -> tuple[nbformat.NotebookNode, str]:
    try:
        nb = nbformat.reads(data.decode("utf-8"), as_version=4)
        exercise = nb.metadata.get("bertbook", {}).get("exercise")
        cells = [c for c in nb.cells if c.cell_type == "code" and isinstance(c.source, str)]
    except Exception as err:
        raise Unusable(f"{name}: not a Jupyter notebook ({type(err).__name__})") from None
    if not exercise or not isinstance(exercise, str):
        raise Unusable(f"{name}: not a course exercise (no bertbook.exercise in its metadata)")
    try:
        questions_for(exercise)
    except KeyError as err:
        raise Unusable(f"{name}: {escape.text(err.args[0])}") from None
    if not cells:
        raise Unusable(f"{name}: has no code cells")
    return nb, exercise


def without_outputs(nb: nbformat.NotebookNode, name: str) -> nbformat.NotebookNode:
    """The notebook with its saved outputs dropped (the grader runs every cell afresh and never
    reads them); Unusable when even so it is over ``MAX_NOTEBOOK_BYTES``."""
    for cell in nb.cells:
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
    if len(nbformat.writes(nb).encode("utf-8", "surrogatepass")) > MAX_NOTEBOOK_BYTES:
        raise Unusable(f"{name}: larger than {MAX_NOTEBOOK_BYTES // 10**6} MB without its outputs")
    return nb


def snapshot(found: list[tuple[Path, Path | None]], into: Path) -> list[Submission]:
    """Read every notebook once, safely (``bertbook.submissions``), and copy it, without its
    outputs, into the private folder ``into``. A problem with one path is its status."""
    subs = []
    for i, (path, root) in enumerate(found):
        sub = Submission(str(path))
        try:
            try:
                sub.student = gradebook.student_id(path, root)
            except submissions.Refused:
                sub.student = gradebook.refused_student(path, root)
                raise
            data = submissions.read(path, root)
            nb, sub.exercise = parse_exercise(data, "")
            sub.nb = without_outputs(nb, "")
            sub.copy = into / f"{i:04d}" / "submission.ipynb"
            sub.copy.parent.mkdir(mode=0o700)
            sub.copy.write_text(nbformat.writes(sub.nb), encoding="utf-8", errors="surrogatepass")
        except submissions.Refused as err:
            sub.problem = str(err)
        except Unusable as err:
            sub.problem = str(err).removeprefix(": ")
        except Exception as err:  # a grader fault with one notebook: its status, not the run's end
            sub.problem = f"error: could not be read ({type(err).__name__})"
        subs.append(sub)
    _mark_duplicates(subs)
    return subs


def _mark_duplicates(subs: list[Submission]) -> None:
    """Two notebooks for one student and exercise: both graded, both marked, none merged."""
    groups: dict[tuple[str, str], list[Submission]] = {}
    for sub in subs:
        if not sub.problem:
            groups.setdefault((sub.student, sub.exercise), []).append(sub)
    for (student, exercise), group in groups.items():
        if len(group) > 1:
            names = ", ".join(escape.text(s.path) for s in group)
            for sub in group:
                sub.flag = (
                    f"duplicate: {len(group)} notebooks for {escape.text(student)} and "
                    f"{exercise} ({names}); the instructor decides"
                )


# -- calling the questions -----------------------------------------------------------------------
def _not_defined(question, why: str) -> Result:
    return Result(question.id, 0.0, question.points, failed=[("all", why)], note=why)


def _call_question(box: Kernel, prepared: Prepared, timeout: float) -> Result:
    question = prepared.question
    status, text = box.evaluate(f"callable(globals().get({question.function!r}))", timeout=10)
    if status != "ok" or text is not True:
        return _not_defined(question, f"no function named {question.function} was defined")
    if question.forbidden:
        status, source = box.evaluate(f"_bb_source({question.function!r})", timeout=10)
        broken = forbidden_calls(source, question.forbidden) if isinstance(source, str) else []
        if broken:
            return rule_result(question, broken)
    uses = json.dumps(question.uses)
    forbidden = json.dumps(list(question.forbidden))
    called: list[str] = []  # forbidden functions the test calls reached, however
    outcomes = []
    for case in prepared.cases:
        if (
            outcomes
            and outcomes[-1][1] == "error"
            and outcomes[-1][2].startswith(("did not", "the kernel died"))
        ):
            outcomes.append(
                (case, "error", "not run: an earlier case of this question timed out or died")
            )
            continue
        payload = wire.encode(case.args)
        status, text = box.evaluate(
            f"_bb_call({question.function!r}, {payload!r}, {uses!r}, {forbidden!r})", timeout
        )
        if status != "ok":
            why = {
                "timeout": f"did not finish within {timeout:g} s",
                "died": "the kernel died while running it",
            }.get(status, text)
            outcomes.append((case, "error", why))
            continue
        try:
            reply = json.loads(text)
            kind = reply["status"]
        except Exception:  # junk, deep nesting, a reply that is not an object
            outcomes.append((case, "error", "unreadable result"))
            continue
        seen = reply.get("forbidden")
        if isinstance(seen, list):
            called += [n for n in question.forbidden if n in seen and n not in called]
        if kind == "ok":
            try:
                outcomes.append((case, "ok", wire.decode_untrusted(reply.get("value"))))
            except wire.WireError as err:
                outcomes.append((case, "error", f"returned a value that cannot be graded ({err})"))
        elif kind == "missing":
            outcomes.append((case, "error", f"{question.function} is not defined"))
        elif str(reply.get("error", "")).startswith("NotImplementedError"):
            return _not_defined(question, "not implemented yet")
        else:
            outcomes.append((case, "error", f"raised {str(reply.get('error'))[:600]}"))
    if called:
        return rule_result(question, called)
    return score(question, outcomes, prepared.mistake_values)


@dataclass
class Settings:
    cell_timeout: float = 60
    call_timeout: float = 20
    notebook_timeout: float = 900  # all cells together; later cells are skipped past it
    seed: int = 0
    jail: Jail | None = None  # None: no sandbox
    probe: bool = True  # start a kernel in the jail before the first notebook


def _run_notebook(sub: Submission, prepared: list[Prepared], settings: Settings, uid) -> Report:
    report = Report(sub.path, sub.exercise, [], student=sub.student, seed=settings.seed)
    report.sandbox = sandbox_name(settings.jail)
    jail = None
    if settings.jail is not None:
        jail = dataclasses.replace(settings.jail, uid=uid)
    with Kernel(cwd=str(sub.copy.parent), jail=jail) as box:
        deadline = time.monotonic() + settings.notebook_timeout
        box.deadline = deadline  # replays after a restart cannot extend it
        for i, cell in enumerate(sub.nb.cells):
            if cell.cell_type != "code" or not str(cell.source).strip():
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                report.cells.append(CellRun(i, "skipped", "past the notebook's time limit"))
                continue
            # IPython magics and shell escapes run as the student wrote them.
            report.cells.append(box.run_cell(i, str(cell.source), min(settings.cell_timeout, left)))
        box.define(wire.KERNEL_HELPERS)
        for p in prepared:
            try:
                report.results.append(_call_question(box, p, settings.call_timeout))
            except Exception as err:
                # The grader's own fault, not the notebook's: no score (an empty cell in every
                # output) and a status that says so, never a zero that looks earned.
                where = traceback.extract_tb(err.__traceback__)[-1]  # for the bug report
                why = f"{type(err).__name__}: {str(err)[:200]}, {Path(where.filename).name}:{where.lineno}"
                report.results.append(_not_defined(p.question, f"grader error ({why})"))
                if not report.grader_error:
                    report.status = f"{GRADER_ERROR}: grading {p.question.id} failed ({why})"
        report.kernel_restarts = box.restarts
    return report


def grade_submission(
    sub: Submission, prepared: list[Prepared], settings: Settings, uid=None
) -> Report:
    """One notebook's report; every failure becomes a status, never an exception."""
    if sub.problem:
        return Report(
            sub.path, sub.exercise, [], student=sub.student, status=sub.problem, seed=settings.seed
        )
    try:
        report = _run_notebook(sub, prepared, settings, uid)
    except StartError as err:  # a kernel that does not start is the grader's failure
        return Report(
            sub.path,
            sub.exercise,
            [],
            student=sub.student,
            status=f"{GRADER_ERROR}: {str(err)[:400]}",
            seed=settings.seed,
            sandbox=sandbox_name(settings.jail),
        )
    except Exception as err:
        zero = [_not_defined(p.question, "not graded") for p in prepared]
        why = f"could not be graded ({type(err).__name__}: {str(err)[:200]})"
        return Report(
            sub.path, sub.exercise, zero, student=sub.student, status=why, seed=settings.seed
        )
    if sub.flag and report.status == "graded":
        report.status = sub.flag
    return report


def sandbox_name(jail: Jail | None) -> str:
    """What confined the kernels, as the outputs say it."""
    if jail is None:
        return "none"
    return "bubblewrap" if jail.launcher is None else "unprivileged user"


# -- a run ---------------------------------------------------------------------------------------
class Run:
    """Grades a list of notebooks: snapshots, references, parallel sandboxed kernels, outputs."""

    def __init__(self, found, settings: Settings, jobs: int = 1, on_report=None):
        self.settings = settings
        self.jobs = max(1, jobs)
        self.on_report = on_report or (lambda report: None)
        self.found = found
        self.reports: list[Report] = []
        self.lock = threading.Lock()
        self.invalid = ""  # set once the package changed: every later report is invalid
        self.warnings: list[str] = []

    def execute(self) -> list[Report]:
        """Every report; ``sandbox.Unavailable`` before any notebook runs when the jail cannot
        run a kernel (or no jail uid is free)."""
        jail = self.settings.jail
        root = os.geteuid() == 0 and jail is not None
        with sandbox.Uids(self.jobs if root else 0) as uids:
            if jail is not None and self.settings.probe:
                why = sandbox.probe(jail.memory, uids[0] if uids else None, jail.launcher)
                if why is not None:
                    raise sandbox.Unavailable(why)
            return self._execute(uids or [None] * self.jobs)

    def _execute(self, uids: list) -> list[Report]:
        package = Package()
        for name in package.local_edits:
            self.warnings.append(
                f"warning: {name} differs from its {package.source} record; the references use it "
                "as it is (reinstall the course package if you did not edit it)"
            )
        with tempfile.TemporaryDirectory(prefix="bertbook-grade-") as private:
            os.chmod(private, 0o700)
            if self.settings.jail is not None:  # hidden wherever they lie inside a folder bound in
                folders = {str(root) for _, root in self.found if root is not None}
                self.settings.jail.hide = (private, *sorted(folders))
            subs = snapshot(self.found, Path(private))
            prepared: dict[str, list[Prepared]] = {}
            for ex in sorted({s.exercise for s in subs if not s.problem}):
                prepared[ex] = [prepare(q, self.settings.seed) for q in questions_for(ex).values()]
            slots: queue.Queue = queue.Queue()
            for uid in uids:
                slots.put(uid)

            def work(sub: Submission) -> Report:
                uid = slots.get()
                try:
                    report = grade_submission(
                        sub, prepared.get(sub.exercise, []), self.settings, uid
                    )
                finally:
                    slots.put(uid)
                try:  # recording and writing one report never stops the others
                    self._finish(report, package)
                except Exception as err:
                    self.warnings.append(f"warning: {sub.path}: {type(err).__name__}")
                return report

            with concurrent.futures.ThreadPoolExecutor(self.jobs) as pool:
                # one future per notebook: an error in one is that notebook's, never the run's
                futures = {pool.submit(work, sub): sub for sub in subs}
                for done in concurrent.futures.as_completed(futures):
                    if done.exception() is not None:
                        err = done.exception()
                        self.warnings.append(
                            f"warning: {futures[done].path}: not graded ({type(err).__name__})"
                        )
        order = {s: i for i, s in enumerate(str(p) for p, _ in self.found)}
        return sorted(self.reports, key=lambda r: order.get(r.path, 0))

    def _finish(self, report: Report, package: Package) -> None:
        with self.lock:
            changed = package.changed()
            if changed and not self.invalid:
                self.invalid = (
                    f"invalid: the course package changed during the run ({', '.join(changed)})"
                )
                self.warnings.append(self.invalid)
            if self.invalid:
                report.status = self.invalid
            self.reports.append(report)
            self.on_report(report)


def grade_notebook(
    path: Path,
    cell_timeout: float = 60,
    call_timeout: float = 20,
    seed: int | None = None,
    sandboxed: bool | None = None,
    memory: str = "2G",
) -> Report:
    """Grade one notebook (sandboxed when the sandbox works here, unless told otherwise)."""
    read_exercise(Path(path))
    if sandboxed is None:
        sandboxed = sandbox.unavailable_reason() is None
    settings = Settings(cell_timeout, call_timeout, seed=_seed(seed), probe=False)
    settings.jail = Jail(sandbox.parse_size(memory)) if sandboxed else None
    return Run([(Path(path), None)], settings).execute()[0]


def _seed(seed: int | None) -> int:
    return seed if seed is not None else random.SystemRandom().randrange(2**31)


# -- output --------------------------------------------------------------------------------------
def render(report: Report) -> str:
    """The notebook's block for the terminal: every line escaped (``escape.text``), so nothing
    a student wrote (a file name, an exception message) can start a line or move the cursor."""
    lines = [f"== {report.path} ({report.exercise or 'no exercise'}; student {report.student})"]
    if report.status != "graded":
        lines.append(f"  status: {report.status}")
    for cell in report.cells:
        if cell.status != "ok":
            error = cell.error
            if "MemoryError" in error or "can't allocate memory" in error:
                error += f" (over the memory limit of {report.memory_limit or 'the sandbox'})"
            lines.append(f"  cell {cell.index}: {cell.status}" + (f" ({error})" if error else ""))
    if report.kernel_restarts:
        lines.append(f"  the kernel was restarted {report.kernel_restarts} time(s)")
    if report.results:
        width = max(len(r.question) for r in report.results)
        lines.append(f"  {'question':<{width}}  points  detail")
    for r in report.results:
        detail = r.note or (f"{len(r.passed)}/{len(r.passed) + len(r.failed)} cases passed")
        lines.append(f"  {r.question:<{width}}  {r.points:>4g}/{r.max_points:<2} {detail}")
        if r.failed and not r.note:
            lines.extend(f"      FAIL  {case}: {why}" for case, why in r.failed)
    score = "none (the grader failed: re-run it)" if report.points is None else f"{report.points:g}"
    lines.append(f"Score: {score}/{report.max_points}")
    return "\n".join(escape.text(line) for line in lines)


def _expand(paths: list[str]) -> list[tuple[Path, Path | None]]:
    """(notebook, the folder argument it was found in, or None for a file argument). Folders
    are searched without following links (``submissions.find``); what is found there is read,
    or refused with its reason, by ``snapshot``."""
    out: list[tuple[Path, Path | None]] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = submissions.find(p)
            if not found:
                raise Unusable(f"{escape.text(p)}: no notebooks in this folder")
            out.extend((f, p) for f in found)
        else:
            out.append((p, None))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bertbook.grade", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("notebooks", nargs="*", help="exercise notebooks or folders of them")
    parser.add_argument("--csv", help="gradebook: one row per student, a total per exercise")
    parser.add_argument("--json", help="every notebook's results, as a list")
    parser.add_argument("--canvas", help="Canvas gradebook import file (with --roster for its ids)")
    parser.add_argument("--gradescope", help="Gradescope results.json (one notebook)")
    parser.add_argument("--roster", help="CSV mapping student ids to LMS identifiers")
    parser.add_argument("--feedback", metavar="DIR", help="one HTML feedback file per notebook")
    parser.add_argument(
        "--make-gradescope", metavar="EXERCISE", help="write the Gradescope autograder zip"
    )
    parser.add_argument("-o", "--output", help="the zip's path (default autograder.zip)")
    parser.add_argument(
        "-j", "--jobs", type=int, default=os.cpu_count() or 1, help="notebooks at once"
    )
    parser.add_argument("--seed", type=int, help="reproduce a run's test inputs (default: fresh)")
    parser.add_argument("--memory", default="2G", help="memory limit per notebook (default 2G)")
    parser.add_argument(
        "--no-sandbox", action="store_true", help="run notebooks without the sandbox"
    )
    parser.add_argument(
        "--cell-timeout", type=float, default=60, help="seconds per cell (default 60)"
    )
    parser.add_argument(
        "--call-timeout", type=float, default=20, help="seconds per test call (default 20)"
    )
    parser.add_argument(
        "--notebook-timeout", type=float, default=900, help="seconds per notebook (default 900)"
    )
    args = parser.parse_args(argv)
    if args.make_gradescope:
        from .gradescope import make_cli

        return make_cli(args.make_gradescope, args.output or "autograder.zip", args.memory)
    if not args.notebooks:
        parser.error("give notebooks or folders to grade (or --make-gradescope EXERCISE)")
    try:
        memory = sandbox.parse_size(args.memory)
        found = _expand(args.notebooks)
        roster = gradebook.read_roster(args.roster) if args.roster else {}
        if len(found) == 1:  # one notebook: a problem with it is a usage error
            read_exercise(found[0][0])
        if args.gradescope and len(found) != 1:
            raise Unusable("--gradescope grades exactly one notebook")
    except (Unusable, ValueError, OSError) as err:
        print(f"error: {escape.text(err)}", file=sys.stderr)
        return 2
    jail = None
    if not args.no_sandbox:
        why = sandbox.unavailable_reason()
        if why and (len(found) > 1 or found[0][1] is not None):
            print(f"error: {why}; to grade without the sandbox, add --no-sandbox", file=sys.stderr)
            return 2
        if why:
            print(f"warning: {why}; grading this one notebook without the sandbox", file=sys.stderr)
        else:
            jail = Jail(memory)
    settings = Settings(
        args.cell_timeout, args.call_timeout, args.notebook_timeout, _seed(args.seed), jail
    )
    meta = {
        "seed": settings.seed,
        "grader_version": __version__,
        "sandbox": "bubblewrap" if jail else "none",
    }
    outputs = gradebook.Outputs(args.csv, args.json, args.canvas, args.gradescope, roster, meta)

    def on_report(report: Report) -> None:
        try:  # one notebook's output never stops the run
            report.memory_limit = args.memory if jail else ""
            print(render(report), flush=True)
        except Exception as err:
            print(f"warning: a report could not be shown ({type(err).__name__})", file=sys.stderr)
        outputs.add(report)

    run = Run(found, settings, args.jobs, on_report)
    try:
        reports = run.execute()
    except sandbox.Unavailable as err:  # before any notebook: nothing graded, nothing written
        print(f"error: {err}", file=sys.stderr)
        return 2
    for line in run.warnings:
        print(escape.text(line), file=sys.stderr)
    outputs.write(reports)
    if args.feedback:
        from . import feedback

        try:  # like every other output: a failure is reported, the run's results stay
            feedback.write(reports, args.feedback, meta)
        except Exception as err:
            print(
                escape.text(f"error: feedback not written ({type(err).__name__}: {err})"),
                file=sys.stderr,
            )
    _summary(outputs, reports)
    again = [r.path for r in reports if r.grader_error]
    if again:
        print(
            f"error: {len(again)} notebook(s) not graded because of the grader, not the "
            f"notebook (status '{GRADER_ERROR}', empty score); re-run them: "
            + escape.text(" ".join(again)),
            file=sys.stderr,
        )
        return 3
    return 0


def _summary(outputs: gradebook.Outputs, reports: list[Report]) -> None:
    """What the instructor must look at: rows not graded (blank in the Canvas file: Canvas reads
    a blank as "no change"), duplicates, ids not on the roster, and outputs that failed."""
    rows = outputs.needs_instructor(reports)
    if rows:
        print(f"needs the instructor ({len(rows)} students; blank in the Canvas file):")
        for line in rows:
            print(f"  {line}")
    for path, why in outputs.errors.items():
        print(f"error: {escape.text(path)} could not be written ({why})", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
