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


def test_check_prints_feedback_and_hint(capsys):
    check = checks.checker("00_intro")

    def stub(x):
        raise NotImplementedError

    check("q1", stub)
    out = capsys.readouterr().out
    assert "q1: 0/3 points" in out and "not implemented" in out and "Hint:" in out
    with pytest.raises(KeyError):
        check("q9", stub)
