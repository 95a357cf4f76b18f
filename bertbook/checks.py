"""Questions, their test cases, and the in-notebook ``check`` that gives feedback.

A question names the function the student writes, its points, a hint, and a ``cases(rng)``
function that builds test cases: inputs plus the expected output, computed here by the
reference answer. The same cases serve two runners: ``check`` below, which calls the
student's function directly inside the notebook, and ``bertbook.grade``, which calls it in a
separate kernel and compares the values in its own process. Inputs are drawn from ``rng``, so
the grader can use fresh inputs on every run while the notebook shows stable feedback.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import random
import textwrap
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import safe_ast, wire


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
    # The result must be a Python number, as the question asks (a 0-d tensor is not one).
    python_number: bool = False


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
    exercise: str = ""  # filled in by questions_for
    # What each item of a tuple result is, e.g. ("inputs", "labels"): feedback says
    # "result[1] (the labels)" rather than a bare index.
    returns: tuple[str, ...] = ()


@dataclass(frozen=True)
class Raised:
    """What a listed mistake raises on a case ("RuntimeError: ..."): a student's answer that
    raises the same is named as that mistake."""

    error: str


@dataclass
class Prepared:
    """A question's cases, with what each listed mistake returns on them: all computed from the
    references in the grader's process, before any student code runs."""

    question: Question
    cases: list[Case]
    mistake_values: list[list[tuple[Mistake, Any]]]  # per case


def case_rng(seed: int, exercise: str, question_id: str) -> random.Random:
    """The cases of one question depend on (seed, exercise, question) alone: not on the order
    in which notebooks or questions are graded."""
    return random.Random(f"{seed}/{exercise}/{question_id}")


def prepare(question: Question, seed: int) -> Prepared:
    cases = question.cases(case_rng(seed, question.exercise, question.id))
    per_case = []
    for case in cases:
        values = []
        for mistake in question.mistakes:
            try:  # on copies: a mistake that edits its inputs must not change the case
                values.append((mistake, mistake.fn(*wire.decode(wire.encode(case.args)))))
            except Exception as err:  # named when an answer raises the same error
                values.append((mistake, Raised(f"{type(err).__name__}: {err}")))
        per_case.append(values)
    return Prepared(question, cases, per_case)


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
    import torch

    if type(x).__module__.split(".")[0] == "torch":
        x = x.detach().cpu()
        if x.dtype in (torch.bfloat16, torch.float16):  # numpy has no bfloat16
            x = x.float()
        return x.resolve_conj().numpy(), "torch"
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
        got_dtype = str(getattr(got, "dtype", got_arr.dtype)).replace("torch.", "")
        if exp_arr.dtype == bool and got_arr.dtype != bool:
            return f"{where}: expected a boolean {exp_kind} array, got dtype {got_dtype}"
        if exp_arr.dtype.kind == "c" or got_arr.dtype.kind == "c":
            if exp_arr.dtype.kind != got_arr.dtype.kind:
                return f"{where}: expected dtype {exp_arr.dtype}, got dtype {got_dtype}"
            if not np.allclose(got_arr, exp_arr, atol=atol, rtol=rtol, equal_nan=True):
                return f"{where}: values differ"
            return None
        if exp_arr.dtype == bool or exp_arr.dtype.kind in "iub":
            if not np.array_equal(got_arr, exp_arr):
                bad = int((got_arr != exp_arr).sum())
                return f"{where}: {bad} of {exp_arr.size} entries differ"
            return None
        got_f = got_arr.astype(np.float64)
        exp_f = exp_arr.astype(np.float64)
        if np.isnan(got_f).any() and not np.isnan(exp_f).any():
            return f"{where}: contains NaN"
        if np.isinf(got_f).any() and not np.isinf(exp_f).any():
            return f"{where}: contains inf"
        close = np.isclose(got_f, exp_f, atol=atol, rtol=rtol, equal_nan=True)
        if not close.all():
            finite = np.isfinite(got_f) & np.isfinite(exp_f) & ~close
            if not finite.any():  # only infinities are misplaced (e.g. a filter's -inf)
                bad = int((~close).sum())
                return (
                    f"{where}: {bad} of {close.size} values differ "
                    "(an infinity where the reference has a number, or the reverse)"
                )
            diff = np.abs(got_f[finite] - exp_f[finite]).max()  # inf - inf would warn
            note = ""
            exp_dtype = str(getattr(expected, "dtype", exp_arr.dtype)).replace("torch.", "")
            if got_dtype != exp_dtype:
                note = f"; your result has dtype {got_dtype}, the reference {exp_dtype}"
            return (
                f"{where}: {int((~close).sum())} of {close.size} values differ "
                f"(largest difference {diff:.3g}){note}"
            )
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


def matching_mistakes(mistake_values: list[tuple[Mistake, Any]], got, case: Case) -> list[Mistake]:
    """The listed mistakes whose output on this case ``got`` equals: the same value, or the same
    error when ``got`` is a ``Raised``."""
    found = []
    for mistake, value in mistake_values:
        if isinstance(value, Raised) or isinstance(got, Raised):
            # The grader's kernel reports at most 300 characters of an error.
            if (
                isinstance(value, Raised)
                and isinstance(got, Raised)
                and got.error[:300] == value.error[:300]
            ):
                found.append(mistake)
            continue
        try:
            if compare(value, got, case.atol, case.rtol) is None:
                found.append(mistake)
        except Exception:
            continue
    return found


def name_mistake(mistakes: list[Mistake]) -> str:
    """' (this is what <mistake> gives)', naming every one of ``mistakes``; '' for none."""
    if not mistakes:
        return ""
    return " (this is what " + " gives, and what ".join(m.says for m in mistakes) + " gives)"


def _number_type(case: Case, got) -> str | None:
    """Why ``got`` is not the Python number a ``python_number`` case asks for, or None."""
    import numpy as np

    if not case.python_number or isinstance(got, (int, float, np.number)):
        return None
    kind = type(got).__name__
    return f"result: the question asks for a Python float, got a {kind} (.item() gives the float)"


def _name_parts(question: Question, why: str) -> str:
    """'result[1]: ...' -> 'result[1] (the labels): ...' when the question names its parts."""
    if not question.returns or not why.startswith("result["):
        return why
    index, rest = why[len("result[") :].split("]", 1)
    if not index.isdigit() or int(index) >= len(question.returns):
        return why
    return f"result[{index}] (the {question.returns[int(index)]}){rest}"


def score(
    question: Question,
    outcomes: list[tuple[Case, str, Any]],
    mistake_values: list[list[tuple[Mistake, Any]]] | None = None,
) -> Result:
    """Points for a question from its cases' outcomes: ('ok', value) or ('error', message).

    Each case is worth an equal share of the points (partial credit). A wrong value that equals
    what a listed mistake returns is named in the feedback."""
    result = Result(question.id, 0.0, question.points)
    verdicts = []  # (case, why or None, what the answer gave: a value or a Raised)
    for case, status, value in outcomes:
        if status == "error":
            got = Raised(value[len("raised ") :]) if value.startswith("raised ") else None
            verdicts.append((case, value, got))
            continue
        try:
            why = _number_type(case, value) or compare(case.expected, value, case.atol, case.rtol)
        except Exception as err:  # a value compare cannot take: a wrong answer, not a crash
            why = f"result: cannot be compared ({type(err).__name__})"
        verdicts.append((case, why if why is None else _name_parts(question, why), value))
    # A mistake is named on a case only where the answer's result equals that mistake's. Where
    # several mistakes give that result, the ones the answer agrees with on every case are
    # named (a missing '##' and the shortest match both give ['[UNK]'] for some words).
    matches = [
        matching_mistakes(mistake_values[i], got, case)
        if mistake_values and got is not None
        else []
        for i, (case, _, got) in enumerate(verdicts)
    ]
    everywhere = [m for m in question.mistakes if all(m in found for found in matches)]
    for (case, why, _), found in zip(verdicts, matches):
        if why is None:
            result.passed.append(case.name)
            continue
        named = [m for m in found if m in everywhere] or found
        result.failed.append((case.name, why + name_mistake(named)))
    if outcomes:
        result.points = round(question.points * len(result.passed) / len(outcomes), 2)
    return result


def forbidden_calls(source: str, forbidden: tuple[str, ...]) -> list[str]:
    """The forbidden names an answer's own source uses (read from its syntax). The rule's
    first half: its second, ``wire.watch``, records the calls the test cases reach at run time,
    however they are reached (a helper, an alias, getattr)."""
    import ast

    if not forbidden:
        return []
    try:
        tree = safe_ast.parse(textwrap.dedent(source))  # threads grade side by side
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    used = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            used.add(node.id)
        elif isinstance(node, ast.Attribute):
            used.add(node.attr)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            used.add(node.value)  # getattr(F, "scaled_dot_product_attention")
    return [name for name in forbidden if name.split(".")[-1] in used]


def rule_result(question: Question, broken: list[str]) -> Result:
    names = ", ".join(broken)
    why = f"uses {names}, which this question asks you not to call"
    return Result(question.id, 0.0, question.points, failed=[("all", why)], note=why)


@contextlib.contextmanager
def references_in(fn: Callable, question: Question):
    """Within the block, the earlier answers ``fn`` calls are the references (charged once)."""
    namespace = getattr(fn, "__globals__", None)
    if not question.uses or namespace is None:
        yield
        return
    import numpy as np
    import torch
    import torch.nn.functional as F

    env = {"torch": torch, "F": F, "math": math, "np": np}
    saved = {name: namespace.get(name, _MISSING) for name in question.uses}
    try:
        for name, expression in question.uses.items():
            namespace[name] = eval(expression, env)  # the course's own reference code
        yield
    finally:
        for name, value in saved.items():
            if value is _MISSING:
                namespace.pop(name, None)
            else:
                namespace[name] = value


_MISSING = object()


def run_local(question: Question, fn: Callable, seed: int = 0) -> Result:
    """Run a question's cases on a function in this process (what ``check`` does)."""
    if question.forbidden:
        try:
            source = inspect.getsource(fn)
        except (OSError, TypeError):
            source = ""
        broken = forbidden_calls(source, question.forbidden)
        if broken:
            return rule_result(question, broken)
    with warnings.catch_warnings():
        # Cases that import transformers import tqdm.auto, which warns in a notebook without
        # ipywidgets ("IProgress not found"): noise in feedback, not about the answer.
        warnings.filterwarnings("ignore", message="IProgress not found")
        prepared = prepare(question, seed)
    outcomes = []
    called: list[str] = []  # forbidden functions reached at run time, as the grader records
    for case in prepared.cases:
        # The arguments cross the wire format, as in the grader: the student gets copies.
        args = wire.decode(wire.encode(case.args))
        try:
            with references_in(fn, question):
                watch = wire.watch(question.forbidden, getattr(fn, "__globals__", None))
                try:
                    with watch:
                        got = fn(*args)
                finally:
                    called += [n for n in question.forbidden if n in watch.seen and n not in called]
                value = wire.decode(wire.encode(got))
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
    if called:
        return rule_result(question, called)
    return score(question, outcomes, prepared.mistake_values)


def format_result(result: Result, hint: str = "", label: str = "Hint") -> str:
    lines = [f"{result.question}: {result.points:g}/{result.max_points} points"]
    for name in result.passed:
        lines.append(f"  PASS  {name}")
    for name, why in result.failed:
        lines.append(f"  FAIL  {name}: {why}")
    if result.failed and hint and result.note != "not implemented yet":
        lines.append(f"  {label}: {hint}")
    return "\n".join(lines)


def questions_for(exercise: str) -> dict[str, Question]:
    from .questions import REGISTRY

    if exercise not in REGISTRY:
        raise KeyError(
            f"{exercise!r} is not a course exercise (known: {', '.join(sorted(REGISTRY))})"
        )
    questions = {q.id: q for q in REGISTRY[exercise]()}
    for q in questions.values():
        q.exercise = exercise
    return questions


def hint_for(question: Question, failed_checks: int) -> tuple[str, str]:
    """(label, text) to show after this many failed checks: nothing before the first failure,
    a nudge after it, the fuller hint from the second on."""
    if failed_checks <= 0:
        return "", ""
    if failed_checks == 1 and question.nudge:
        return "Nudge", question.nudge
    return "Hint", question.hint


def checker(exercise: str) -> Callable:
    """The ``check(question_id, function)`` helper of one exercise notebook."""
    questions = questions_for(exercise)
    failures = dict.fromkeys(questions, 0)  # failed checks so far, per question

    def check(question_id: str, fn: Callable) -> None:
        if question_id not in questions:
            raise KeyError(f"no question {question_id!r}; this exercise has {', '.join(questions)}")
        question = questions[question_id]
        result = run_local(question, fn)
        if result.failed and result.note != "not implemented yet":
            failures[question_id] += 1
        label, text = hint_for(question, failures[question_id] if result.failed else 0)
        print(format_result(result, text, label))

    return check
