"""How fast does a class grade? ``python benchmarks/grade_class.py [--students N] [--jobs J]``

Builds a class from exercises 0, 2 and 6: for each student one notebook per exercise, drawn in
turn from the solution, the untouched exercise, and the solution with one question's answer
replaced by a listed typical mistake. Then grades the same class three ways in one run, side
by side: serially without the sandbox, serially in the sandbox, and with ``-j`` in the sandbox.
Prints notebooks per minute for each and the ratios; numbers vary with the machine, so compare
only within one run.
"""

from __future__ import annotations

import argparse
import inspect
import os
import tempfile
import time
from pathlib import Path

import nbformat

from bertbook import grade, sandbox
from bertbook.checks import questions_for
from bertbook.kernel import Jail, Kernel
from bertbook.maint import ROOT
from bertbook.training import side_by_side

EXERCISES = ("00_intro", "02_transformer", "06_gpt2")


def _with_mistake(nb, exercise: str):
    """The solution with the first question that lists a mistake answered by that mistake."""
    for q in questions_for(exercise).values():
        if not q.mistakes:
            continue
        try:
            source = inspect.getsource(q.mistakes[0].fn)
        except (OSError, TypeError):
            continue
        name = q.mistakes[0].fn.__name__
        for cell in nb.cells:
            if cell.cell_type == "code" and cell.source.lstrip().startswith(f"def {q.function}("):
                cell.source = f"{source}\n{q.function} = {name}\n"
                return nb
    return nb


def build_class(folder: Path, students: int) -> int:
    n = 0
    for s in range(students):
        for e, exercise in enumerate(EXERCISES):
            kind = (s + e) % 3
            source = ROOT / ("exercises" if kind == 1 else "solutions") / f"{exercise}.ipynb"
            nb = nbformat.read(str(source), as_version=4)
            if kind == 2:
                nb = _with_mistake(nb, exercise)
            out = folder / f"student{s:02d}" / f"{exercise}.ipynb"
            out.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, str(out))
            n += 1
    return n


def time_run(folder: Path, jobs: int, jail: Jail | None) -> float:
    found = grade._expand([str(folder)])
    settings = grade.Settings(seed=0, jail=jail)
    begin = time.perf_counter()
    reports = grade.Run(found, settings, jobs).execute()
    elapsed = time.perf_counter() - begin
    bad = [r.path for r in reports if r.status != "graded"]
    if bad:
        raise SystemExit(f"not graded: {bad}")
    return elapsed


def sandbox_cost(rounds: int) -> dict[str, float]:
    """Median seconds to start a kernel, import torch and the course package, and stop it: in
    the sandbox and without, interleaved round by round (the sandbox's cost per notebook)."""

    def start(jail):
        def once():
            with tempfile.TemporaryDirectory() as tmp, Kernel(cwd=tmp, jail=jail) as box:
                box.run_cell(0, "import torch, bertbook.checks", 120)

        return once

    uid = sandbox.FIRST_UID if os.geteuid() == 0 else None
    return side_by_side(
        {"no sandbox": start(None), "sandbox": start(Jail(uid=uid))}, repeats=rounds
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=6)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--rounds", type=int, default=7, help="rounds of the start-up comparison")
    args = parser.parse_args()
    if sandbox.unavailable_reason() is None:
        cost = sandbox_cost(args.rounds)
        print(
            f"kernel start-up (median of {args.rounds} interleaved rounds): "
            f"{cost['no sandbox']:.2f} s without the sandbox, {cost['sandbox']:.2f} s in it "
            f"({cost['sandbox'] - cost['no sandbox']:+.2f} s per notebook)"
        )
    with tempfile.TemporaryDirectory() as tmp:
        n = build_class(Path(tmp), args.students)
        print(f"{n} notebooks (exercises {', '.join(EXERCISES)}), {os.cpu_count()} cores")
        runs = {"serial, no sandbox": (1, None)}
        if sandbox.unavailable_reason() is None:
            runs["serial, sandbox"] = (1, Jail())
            runs[f"-j {args.jobs}, sandbox"] = (args.jobs, Jail())
        seconds = {name: time_run(Path(tmp), jobs, jail) for name, (jobs, jail) in runs.items()}
    for name, s in seconds.items():
        print(f"{name:>20}: {s:6.1f} s  {s / n:5.2f} s/notebook  {60 * n / s:5.1f} notebooks/min")
    names = list(seconds)
    if len(names) == 3:
        extra = (seconds[names[1]] - seconds[names[0]]) / n
        print(f"sandbox cost: {extra:+.2f} s per notebook")
        print(
            f"-j {args.jobs} vs serial (both sandboxed): {seconds[names[1]] / seconds[names[2]]:.2f}x"
        )


if __name__ == "__main__":
    main()
