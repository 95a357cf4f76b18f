"""Questions, their test cases, and the in-notebook ``check`` that gives feedback.

A question names the function the student writes, its points, a hint, and a ``cases(rng)``
function that builds test cases: inputs plus the expected output, computed here by the
reference answer. The same cases serve two runners: ``check`` below, which calls the
student's function directly inside the notebook, and ``bertbook.grade``, which calls it in a
separate kernel and compares the values in its own process. Inputs are drawn from ``rng``, so
the grader can use fresh inputs on every run while the notebook shows stable feedback.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import wire


@dataclass
class Case:
    name: str  # what the case tests, shown to the student
    args: tuple  # the inputs (plain data, numpy or torch arrays)
    expected: Any  # what the reference answer returns
    atol: float = 1e-5
    rtol: float = 1e-4
    # The edge of the task this case guards, as the chapter names it, for a case that no listed
    # mistake fails (e.g. "an empty input"); empty for a case that catches a listed mistake.
    edge: str = ""


@dataclass
class Mistake:
    """A typical wrong answer, written as code, so that feedback can name it."""

    name: str  # short, e.g. "wrong axis"
    says: str  # completes "this is what ... gives", e.g. "softmax over the first axis"
    fn: Callable  # the wrong implementation; runs in the grader on each case's inputs


@dataclass
class Question:
    id: str  # "q1"
    function: str  # the name the student defines
    points: int
    hint: str  # the fuller hint, shown after the second failed check (never the whole answer)
    cases: Callable[[random.Random], list[Case]]
    title: str = ""
    nudge: str = ""  # one line, shown after the first failed check
    mistakes: list[Mistake] = field(default_factory=list)
    # Earlier answers this function calls: name -> the reference, as kernel-side code (an
    # expression). The function is graded with them replaced, so one mistake is charged once.
    uses: dict[str, str] = field(default_factory=dict)
    # Calls the answer must not make (dotted names as written, e.g. "F.scaled_dot_product_attention"
    # or just "scaled_dot_product_attention"); an answer that makes one scores 0 on the question.
    forbidden: tuple[str, ...] = ()


@dataclass
class Result:
    question: str
    points: float
    max_points: int
    passed: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (case, why)
    note: str = ""  # why nothing ran: missing, not implemented, timed out...

    def as_dict(self) -> dict:
        return {
            "question": self.question,
            "points": self.points,
            "max_points": self.max_points,
            "passed": self.passed,
            "failed": [{"case": c, "why": w} for c, w in self.failed],
            "note": self.note,
        }


def randn(rng: random.Random, *shape: int, scale: float = 1.0):
    """A float32 torch tensor of normal draws, seeded from ``rng`` (the cases' inputs)."""
    import torch

    g = torch.Generator().manual_seed(rng.randrange(2**31))
    return torch.randn(*shape, generator=g) * scale


def _as_array(x):
    import numpy as np

    if type(x).__module__.split(".")[0] == "torch":
        return x.detach().cpu().numpy(), "torch"
    if isinstance(x, np.ndarray):
        return x, "numpy"
    return None, None


def compare(expected, got, atol: float, rtol: float, where: str = "result") -> str | None:
    """None when ``got`` matches ``expected``; else a sentence saying how it differs."""
    import numpy as np

    exp_arr, exp_kind = _as_array(expected)
    if exp_arr is not None:
        got_arr, got_kind = _as_array(got)
        if got_arr is None:
            return f"{where}: expected a {exp_kind} array, got {type(got).__name__}"
        if exp_kind == "torch" and got_kind != "torch":
            return f"{where}: expected a torch tensor, got a {got_kind} array"
        if tuple(got_arr.shape) != tuple(exp_arr.shape):
            return f"{where}: expected shape {tuple(exp_arr.shape)}, got {tuple(got_arr.shape)}"
        if exp_arr.dtype == bool or exp_arr.dtype.kind in "iub":
            if not np.array_equal(got_arr, exp_arr):
                bad = int((got_arr != exp_arr).sum())
                return f"{where}: {bad} of {exp_arr.size} entries differ"
            return None
        got_f = got_arr.astype(np.float64)
        exp_f = exp_arr.astype(np.float64)
        if np.isnan(got_f).any() and not np.isnan(exp_f).any():
            return f"{where}: contains NaN"
        if not np.allclose(got_f, exp_f, atol=atol, rtol=rtol, equal_nan=True):
            diff = np.nanmax(np.abs(got_f - exp_f))
            return f"{where}: values differ (largest difference {diff:.3g})"
        return None
    if isinstance(expected, bool):
        return (
            None
            if got is expected or (isinstance(got, (bool, np.bool_)) and bool(got) == expected)
            else f"{where}: expected {expected}, got {got!r}"
        )
    if isinstance(expected, (int, float)):
        try:
            value = float(got)
        except (TypeError, ValueError):
            return f"{where}: expected a number, got {type(got).__name__}"
        if math.isnan(value) or not math.isclose(value, expected, rel_tol=rtol, abs_tol=atol):
            return f"{where}: expected {expected:.6g}, got {value:.6g}"
        return None
    if isinstance(expected, (list, tuple)):
        if not isinstance(got, (list, tuple)):
            return f"{where}: expected a {type(expected).__name__}, got {type(got).__name__}"
        if len(got) != len(expected):
            return f"{where}: expected {len(expected)} items, got {len(got)}"
        for i, (e, g) in enumerate(zip(expected, got)):
            why = compare(e, g, atol, rtol, f"{where}[{i}]")
            if why:
                return why
        return None
    if isinstance(expected, dict):
        if not isinstance(got, dict) or set(got) != set(expected):
            return f"{where}: expected a dict with keys {sorted(expected)!r}"
        for k in expected:
            why = compare(expected[k], got[k], atol, rtol, f"{where}[{k!r}]")
            if why:
                return why
        return None
    return None if got == expected else f"{where}: expected {expected!r}, got {got!r}"


def score(question: Question, outcomes: list[tuple[Case, str, Any]]) -> Result:
    """Points for a question from its cases' outcomes: ('ok', value) or ('error', message).

    Each case is worth an equal share of the points (partial credit)."""
    result = Result(question.id, 0.0, question.points)
    for case, status, value in outcomes:
        why = value if status == "error" else compare(case.expected, value, case.atol, case.rtol)
        if why is None:
            result.passed.append(case.name)
        else:
            result.failed.append((case.name, why))
    if outcomes:
        result.points = round(question.points * len(result.passed) / len(outcomes), 2)
    return result


def run_local(question: Question, fn: Callable, seed: int = 0) -> Result:
    """Run a question's cases on a function in this process (what ``check`` does)."""
    outcomes = []
    for case in question.cases(random.Random(seed)):
        # The arguments cross the wire format, as in the grader: the student gets copies.
        args = wire.decode(wire.encode(case.args))
        try:
            value = wire.decode(wire.encode(fn(*args)))
        except NotImplementedError:
            return Result(
                question.id,
                0.0,
                question.points,
                failed=[("all", "not implemented yet")],
                note="not implemented yet",
            )
        except Exception as err:  # the student's bug, reported as feedback
            outcomes.append((case, "error", f"raised {type(err).__name__}: {err}"))
            continue
        outcomes.append((case, "ok", value))
    return score(question, outcomes)


def format_result(result: Result, hint: str = "") -> str:
    lines = [f"{result.question}: {result.points:g}/{result.max_points} points"]
    for name in result.passed:
        lines.append(f"  PASS  {name}")
    for name, why in result.failed:
        lines.append(f"  FAIL  {name}: {why}")
    if result.failed and hint:
        lines.append(f"  Hint: {hint}")
    return "\n".join(lines)


def questions_for(exercise: str) -> dict[str, Question]:
    from .questions import REGISTRY

    if exercise not in REGISTRY:
        raise KeyError(
            f"{exercise!r} is not a course exercise (known: {', '.join(sorted(REGISTRY))})"
        )
    return {q.id: q for q in REGISTRY[exercise]()}


def checker(exercise: str) -> Callable:
    """The ``check(question_id, function)`` helper of one exercise notebook."""
    questions = questions_for(exercise)

    def check(question_id: str, fn: Callable) -> None:
        if question_id not in questions:
            raise KeyError(f"no question {question_id!r}; this exercise has {', '.join(questions)}")
        question = questions[question_id]
        result = run_local(question, fn)
        print(format_result(result, question.hint))

    return check
