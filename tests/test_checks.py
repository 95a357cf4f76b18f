"""The in-notebook checks and the comparison they rest on."""

import random

import numpy as np
import pytest
import torch

from bertbook import checks, wire
from bertbook.checks import compare, questions_for, run_local


def test_compare_accepts_equal_and_explains_differences():
    t = torch.tensor([1.0, 2.0])
    assert compare(t, t.clone(), 1e-6, 1e-6) is None
    assert "shape" in compare(t, torch.ones(3), 1e-6, 1e-6)
    assert "torch tensor" in compare(t, np.array([1.0, 2.0]), 1e-6, 1e-6)
    assert "NaN" in compare(t, torch.tensor([1.0, float("nan")]), 1e-6, 1e-6)
    assert "differ" in compare(t, t + 1, 1e-6, 1e-6)
    assert compare(0.5, 0.5000001, 1e-5, 1e-5) is None
    assert "expected a number" in compare(0.5, "0.5x", 1e-5, 1e-5)
    assert "items" in compare([1, 2], [1], 0, 0)
    assert compare(torch.tensor([1, 2]), torch.tensor([1, 2]), 0, 0) is None
    assert "entries differ" in compare(torch.tensor([1, 2]), torch.tensor([1, 3]), 0, 0)


def test_wire_round_trip_keeps_types():
    value = (torch.tensor([[1.0, float("inf")]]), np.arange(3), {"a": [1, 2.5, "x"]}, None, True)
    back = wire.decode(wire.encode(value))
    assert isinstance(back, tuple) and torch.equal(back[0], value[0])
    assert back[1].dtype == np.int64 and back[2] == {"a": [1, 2.5, "x"]} and back[3] is None


def test_wire_refuses_arbitrary_objects():
    with pytest.raises(TypeError):
        wire.encode(object())


def test_intro_questions_pass_the_reference_and_fail_wrong_answers():
    qs = questions_for("00_intro")
    right = {
        "softmax": lambda x: torch.softmax(x, -1),
        "softmax_with_temperature": lambda x, t: torch.softmax(x / t, -1),
        "cosine_similarity": lambda a, b: torch.nn.functional.cosine_similarity(a, b, dim=-1),
        # (torch.log_softmax is what question 4 forbids: the same from its definition)
        "log_probabilities": lambda x: torch.softmax(x.double(), -1).log().float(),
        # softmax(x / T) at a T far below every gap between distinct scores: the limit itself
        "zero_temperature_limit": lambda x: torch.softmax(
            (x - x.max(-1, keepdim=True).values) / 1e-12, -1
        ),
    }
    for q in qs.values():
        result = run_local(q, right[q.function], seed=3)
        assert result.points == q.points, result
    naive = run_local(qs["q1"], lambda x: x.exp() / x.exp().sum(-1, keepdim=True))
    assert 0 < naive.points < qs["q1"].points
    assert run_local(qs["q3"], lambda a, b: (a * b).sum(-1)).points < qs["q3"].points


def test_cases_change_with_the_seed():
    q = questions_for("00_intro")["q1"]
    a, b = q.cases(random.Random(1)), q.cases(random.Random(2))
    assert not torch.equal(a[0].args[0], b[0].args[0])


def test_check_gives_hints_in_steps_and_none_before_a_try(capsys):
    check = checks.checker("00_intro")
    q1 = questions_for("00_intro")["q1"]

    def stub(x):
        raise NotImplementedError

    def naive(x):  # NaN on large logits
        return x.exp() / x.exp().sum(-1, keepdim=True)

    check("q1", stub)
    out = capsys.readouterr().out
    assert "q1: 0/3 points" in out and "not implemented" in out
    assert "Hint" not in out and "Nudge" not in out  # nothing before the first attempt
    check("q1", naive)
    first = capsys.readouterr().out
    assert (f"Nudge: {q1.nudge}" if q1.nudge else f"Hint: {q1.hint}") in first
    check("q1", naive)
    assert f"Hint: {q1.hint}" in capsys.readouterr().out
    check("q1", lambda x: torch.softmax(x, -1))
    assert "Hint" not in capsys.readouterr().out
    with pytest.raises(KeyError):
        check("q9", stub)


def test_compare_requires_a_boolean_mask_and_names_dtypes():
    mask = torch.ones(3, 3, dtype=torch.bool).tril()
    assert "boolean" in compare(mask, mask.float(), 0, 0)
    assert compare(mask, mask.clone(), 0, 0) is None
    x = torch.randn(4)
    assert "bfloat16" in compare(x, x.to(torch.bfloat16), 1e-6, 1e-6)
    assert "inf" in compare(x, x / 0, 1e-6, 1e-6)


def test_feedback_names_a_listed_mistake():
    wrong_axis = checks.Mistake(
        "wrong axis", "softmax over the first axis", lambda x: torch.softmax(x, 0)
    )
    q = checks.Question(
        "q1", "softmax", 3, "hint", questions_for("00_intro")["q1"].cases, mistakes=[wrong_axis]
    )
    result = run_local(q, lambda x: torch.softmax(x, 0))
    assert any("this is what softmax over the first axis gives" in why for _, why in result.failed)


def test_an_earlier_answer_is_replaced_by_the_reference():
    q2 = questions_for("00_intro")["q2"]
    if not q2.uses:
        pytest.skip("question 2 of exercise 0 lists no earlier answer yet")
    namespace = {"torch": torch}
    exec("def softmax(x):\n    return x * 0\n", namespace)  # a wrong q1 answer
    exec("def softmax_with_temperature(x, t):\n    return softmax(x / t)\n", namespace)
    result = run_local(q2, namespace["softmax_with_temperature"])
    assert result.points == q2.points, result  # q1's mistake is not charged again in q2
    assert namespace["softmax"](torch.ones(2)).sum() == 0  # and the student's own is back


def test_a_forbidden_call_scores_zero_with_its_name():
    q = checks.Question(
        "q1",
        "softmax",
        3,
        "hint",
        questions_for("00_intro")["q1"].cases,
        forbidden=("torch.softmax",),
    )

    def uses_library(x):
        return torch.softmax(x, -1)

    result = run_local(q, uses_library)
    assert result.points == 0 and "torch.softmax" in result.note
    assert checks.forbidden_calls(
        "def f(x):\n    return F.scaled_dot_product_attention(x)",
        ("F.scaled_dot_product_attention",),
    )
    assert not checks.forbidden_calls(
        "def f(x):\n    return x.softmax(-1)", ("scaled_dot_product_attention",)
    )


# A check of each kind that printed the warning: Chapter 6's (a right answer) and Chapter 4's,
# whose cases import transformers (a wrong answer, before any hint).
_KERNEL_CHECKS = {
    "06_gpt2": (
        "probs = lambda x: torch.softmax(x, -1)\n"
        "check('q6', lambda x, p: x.masked_fill(probs(x) < p * probs(x).amax(-1, True), -torch.inf))\n",
        "q6: 2/2 points",
    ),
    "04_bert": (
        "check('q2', lambda hidden, pooler_w, pooler_b, w, b: hidden[:, 0, :1])\n",
        "q2: 0/2 points",
    ),
}


@pytest.mark.parametrize("exercise", list(_KERNEL_CHECKS))
def test_a_check_in_a_kernel_prints_no_warning(exercise):
    """Issue 26: every check of Chapters 4 and 6 printed 'TqdmWarning: IProgress not found'
    (transformers imports tqdm.auto, which warns in a kernel without ipywidgets)."""
    import nbformat

    NotebookClient = pytest.importorskip("nbclient").NotebookClient  # not a package dependency

    from bertbook.maint import ROOT

    call, score = _KERNEL_CHECKS[exercise]
    cell = (
        "import sys\n"
        "sys.modules['ipywidgets'] = None  # as on Binder: tqdm.auto finds no IProgress\n"
        "import torch\n"
        "from bertbook.checks import checker\n"
        f"check = checker({exercise!r})\n" + call
    )
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(cell)])
    NotebookClient(nb, timeout=300, resources={"metadata": {"path": str(ROOT)}}).execute()
    outputs = nb.cells[0].outputs
    text = "".join(o.get("text", "") for o in outputs)
    assert score in text and "Hint" not in text, outputs
    assert "Warning" not in text, outputs
    assert not [o for o in outputs if o.get("name") == "stderr"], outputs
