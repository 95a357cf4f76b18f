"""Warm-up questions: softmax, temperature, cosine similarity, log-probabilities, the limit of
zero temperature (exercises/00_intro.ipynb)."""

from __future__ import annotations

import random

from ..checks import Case, Mistake, Question, randn

# Typical wrong answers, as code: feedback names the one a student's result equals.


def _mistake_naive_softmax(x):
    e = x.exp()  # exp(1000) is inf, and inf / inf is NaN
    return e / e.sum(dim=-1, keepdim=True)


def _mistake_softmax_first_axis(x):
    e = (x - x.max(dim=0, keepdim=True).values).exp()
    return e / e.sum(dim=0, keepdim=True)


def _mistake_softmax_axis_1(x):
    e = (x - x.max(dim=1, keepdim=True).values).exp()
    return e / e.sum(dim=1, keepdim=True)


def _mistake_softmax_whole_tensor(x):
    e = (x - x.max()).exp()
    return e / e.sum()


def _mistake_softmax_minus_mean(x):
    e = (x - x.mean(dim=-1, keepdim=True)).exp()  # a -inf logit makes the mean -inf: NaN
    return e / e.sum(dim=-1, keepdim=True)


def _mistake_temperature_ignored(x, temperature):
    import torch

    return torch.softmax(x, dim=-1)


def _mistake_temperature_multiplied(x, temperature):
    import torch

    return torch.softmax(x * temperature, dim=-1)


def _mistake_probabilities_divided(x, temperature):
    import torch

    return torch.softmax(x, dim=-1) / temperature


def _mistake_naive_temperature(x, temperature):
    e = (x / temperature).exp()  # overflows at low temperature
    return e / e.sum(dim=-1, keepdim=True)


def _mistake_dot_product(a, b):
    return (a * b).sum(dim=-1)


def _mistake_cosine_distance(a, b):
    import torch

    return 1 - (a * b).sum(-1) / (
        torch.linalg.vector_norm(a, dim=-1) * torch.linalg.vector_norm(b, dim=-1)
    )


def _mistake_norms_of_whole_tensors(a, b):
    return (a * b).sum(dim=-1) / (a.norm() * b.norm())


def _mistake_norm_of_a_twice(a, b):
    import torch

    return (a * b).sum(dim=-1) / torch.linalg.vector_norm(a, dim=-1) ** 2


def _mistake_cosine_first_axis(a, b):
    import torch

    return (a * b).sum(0) / (
        torch.linalg.vector_norm(a, dim=0) * torch.linalg.vector_norm(b, dim=0)
    )


def _mistake_log_of_softmax(x):
    import torch

    return torch.softmax(x, dim=-1).log()  # a probability that underflows to 0 gives -inf


def _mistake_log_softmax_no_max(x):
    return x - x.exp().sum(dim=-1, keepdim=True).log()  # exp(1000) is inf


def _mistake_max_not_added_back(x):
    shifted = x - x.max(dim=-1, keepdim=True).values
    return x - shifted.exp().sum(dim=-1, keepdim=True).log()  # off by each row's maximum


def _log_sum_exp(x, dim):
    m = x.max(dim=dim, keepdim=True).values
    return m + (x - m).exp().sum(dim=dim, keepdim=True).log()


def _mistake_log_softmax_first_axis(x):
    return x - _log_sum_exp(x, 0)


def _mistake_log_softmax_no_keepdim(x):
    return x - _log_sum_exp(x, -1).squeeze(-1)  # (..., K) - (...,): against the wrong axis


def _ties(x):
    return (x == x.max(dim=-1, keepdim=True).values).float()  # (..., K): 1 at every maximum


def _zero_temperature(x):
    ties = _ties(x)
    return ties / ties.sum(dim=-1, keepdim=True)


def _mistake_first_maximum_only(x):
    import torch.nn.functional as F

    return F.one_hot(x.argmax(dim=-1), x.shape[-1]).float()


def _mistake_ties_not_normalised(x):
    return _ties(x)


def _mistake_limit_is_plain_softmax(x):
    import torch

    return torch.softmax(x, dim=-1)


def _mistake_tiny_temperature_naive(x):
    e = (x / 1e-6).exp()  # inf for any positive score, and inf / inf is NaN
    return e / e.sum(dim=-1, keepdim=True)


def _mistake_limit_is_uniform(x):
    import torch

    return torch.full_like(x, 1.0 / x.shape[-1])  # the limit of a high temperature


def softmax_cases(rng: random.Random) -> list[Case]:
    import torch

    x1 = randn(rng, 5)
    x2 = randn(rng, 3, 7, scale=3.0)
    x3 = randn(rng, 2, 3, 4, scale=2.0)
    big = randn(rng, 2, 4) + 1000.0
    masked = randn(rng, 2, 5)
    masked[:, 1] = float("-inf")
    return [
        Case("a vector", (x1,), torch.softmax(x1, -1)),
        Case("each row of a batch", (x2,), torch.softmax(x2, -1)),
        Case("two batch dimensions", (x3,), torch.softmax(x3, -1)),
        Case("large logits (around 1000) do not overflow", (big,), torch.softmax(big, -1)),
        Case("-inf logits get probability 0", (masked,), torch.softmax(masked, -1)),
    ]


def temperature_cases(rng: random.Random) -> list[Case]:
    import torch

    x = randn(rng, 4, 6, scale=2.0)
    cases = [Case(f"temperature {t}", (x, t), torch.softmax(x / t, -1)) for t in (0.5, 3.0, 0.01)]
    cases.insert(
        0,
        Case(
            "temperature 1.0",
            (x, 1.0),
            torch.softmax(x, -1),
            edge="temperature 1 is the plain softmax",
        ),
    )
    return cases


def cosine_cases(rng: random.Random) -> list[Case]:
    import torch
    import torch.nn.functional as F

    a = randn(rng, 8)
    b = randn(rng, 6, 8)
    c = randn(rng, 6, 8)
    e1, e2 = torch.eye(8)[0], torch.eye(8)[1]
    return [
        Case("a vector with itself is 1", (a, a), torch.tensor(1.0)),
        Case("orthogonal vectors give 0", (e1, e2), torch.tensor(0.0)),
        Case("opposite vectors give -1", (a, -3 * a), torch.tensor(-1.0)),
        Case(
            "row by row over a batch (like F.cosine_similarity)",
            (b, c),
            F.cosine_similarity(b, c, dim=-1),
        ),
    ]


def log_softmax_cases(rng: random.Random) -> list[Case]:
    import torch

    x1 = randn(rng, 6)
    x2 = randn(rng, 3, 5, 4, scale=3.0)
    big = randn(rng, 2, 5) + 1000.0
    far = randn(rng, 3, 4)
    far[:, 0] += 200.0  # the other entries' probabilities underflow to 0 in float32
    square = randn(rng, 4, 4)
    return [
        Case("a vector", (x1,), torch.log_softmax(x1, -1)),
        Case("two batch dimensions", (x2,), torch.log_softmax(x2, -1)),
        Case("large scores (around 1000) do not overflow", (big,), torch.log_softmax(big, -1)),
        Case(
            "a score 200 above the rest: log-probabilities near -200, not -inf",
            (far,),
            torch.log_softmax(far, -1),
            atol=1e-3,
        ),
        Case("a square batch (4 rows of 4 scores)", (square,), torch.log_softmax(square, -1)),
    ]


def zero_temperature_cases(rng: random.Random) -> list[Case]:
    import torch

    x1 = randn(rng, 7)
    tied = torch.tensor([[1.0, 3.0, 3.0, -2.0], [0.5, 0.5, 0.5, 0.5], [2.0, -1.0, 0.0, 2.0]])
    masked = randn(rng, 3, 6, scale=2.0)
    masked[:, ::2] = float("-inf")  # the scores a mask removed
    big = randn(rng, 2, 5, scale=3.0) + 1000.0
    return [
        Case(name, (x,), _zero_temperature(x))
        for name, x in [
            ("one vector, no ties", x1),
            ("tied maxima share the probability", tied),
            ("-inf scores get 0", masked),
            ("large scores (around 1000)", big),
        ]
    ]


def questions() -> list[Question]:
    return [
        Question(
            "q1",
            "softmax",
            3,
            "Work along dim=-1 with keepdim=True, so that any number of batch dimensions works. "
            "Subtracting each row's maximum before exp changes nothing mathematically (the factor "
            "cancels) but keeps every exponent at most 0, so exp cannot overflow; a -inf score "
            "then gives exp(-inf) = 0.",
            softmax_cases,
            "Softmax along the last dimension",
            nudge="Which number can you subtract from every score of a row without changing the "
            "softmax, so that exp never sees a large number?",
            mistakes=[
                Mistake(
                    "no max subtraction",
                    "exp(x) / sum(exp(x)) without subtracting the maximum (NaN once exp overflows)",
                    _mistake_naive_softmax,
                ),
                Mistake("first axis", "softmax over the first axis", _mistake_softmax_first_axis),
                Mistake(
                    "axis 1", "softmax over axis 1 instead of the last", _mistake_softmax_axis_1
                ),
                Mistake(
                    "whole tensor",
                    "normalising over the whole tensor instead of each row",
                    _mistake_softmax_whole_tensor,
                ),
                Mistake(
                    "minus the mean",
                    "subtracting each row's mean instead of its maximum",
                    _mistake_softmax_minus_mean,
                ),
            ],
        ),
        Question(
            "q2",
            "softmax_with_temperature",
            2,
            "The temperature acts on the scores, before any exponential: a temperature below 1 "
            "makes the scores further apart (sharper), above 1 closer together (flatter). Then "
            "it is an ordinary softmax, so call the one you wrote.",
            temperature_cases,
            "Temperature",
            nudge="Does the temperature act on the scores or on the probabilities?",
            mistakes=[
                Mistake(
                    "temperature ignored",
                    "the plain softmax (temperature ignored)",
                    _mistake_temperature_ignored,
                ),
                Mistake(
                    "multiplied",
                    "multiplying the scores by the temperature instead of dividing",
                    _mistake_temperature_multiplied,
                ),
                Mistake(
                    "probabilities divided",
                    "dividing the probabilities, not the scores, by the temperature",
                    _mistake_probabilities_divided,
                ),
                Mistake(
                    "naive softmax",
                    "exp(x / temperature) without subtracting the maximum (NaN at low temperature)",
                    _mistake_naive_temperature,
                ),
            ],
            uses={"softmax": "lambda x: torch.softmax(x, dim=-1)"},
        ),
        Question(
            "q3",
            "cosine_similarity",
            3,
            "The dot product of matching rows is a sum over the last dimension; divide it by the "
            "product of the two rows' lengths, each taken over the last dimension too "
            "(torch.linalg.vector_norm has a dim argument). The result has one number per row.",
            cosine_cases,
            "Cosine similarity",
            nudge="A dot product grows with the vectors' lengths: what do you divide by so that "
            "only the angle is left?",
            mistakes=[
                Mistake(
                    "dot product",
                    "the dot product without dividing by the norms",
                    _mistake_dot_product,
                ),
                Mistake(
                    "cosine distance",
                    "the cosine distance 1 - cos (what scipy's cosine returns)",
                    _mistake_cosine_distance,
                ),
                Mistake(
                    "norms of whole tensors",
                    "dividing by the norms of the whole tensors instead of each row's",
                    _mistake_norms_of_whole_tensors,
                ),
                Mistake(
                    "norm of a twice",
                    "dividing by the norm of a squared instead of |a| |b|",
                    _mistake_norm_of_a_twice,
                ),
                Mistake(
                    "first axis",
                    "cosine similarity over the first axis",
                    _mistake_cosine_first_axis,
                ),
            ],
        ),
        Question(
            "q4",
            "log_probabilities",
            2,
            "Take the logarithm of the softmax formula by hand before computing anything: "
            "log softmax(x)_i = x_i - log(sum_j exp(x_j)). The sum of exponentials overflows "
            "exactly as in question 1, and the same trick saves it: with m the row's maximum, "
            "log(sum_j exp(x_j)) = m + log(sum_j exp(x_j - m)). Keep the summed axis "
            "(keepdim=True) so that the result broadcasts back over the row.",
            log_softmax_cases,
            "Log-probabilities without underflow",
            nudge="A probability of exp(-200) is 0 in float32, so log(softmax(x)) cannot be "
            "the way: what is log(a / b) before anything is divided?",
            mistakes=[
                Mistake(
                    "log of softmax",
                    "the log of the softmax (-inf where a probability underflows to 0)",
                    _mistake_log_of_softmax,
                ),
                Mistake(
                    "no max subtraction",
                    "x - log(sum(exp(x))) without subtracting the maximum (exp overflows)",
                    _mistake_log_softmax_no_max,
                ),
                Mistake(
                    "maximum not added back",
                    "subtracting the maximum inside the log without adding it back outside",
                    _mistake_max_not_added_back,
                ),
                Mistake(
                    "first axis",
                    "log-softmax over the first axis",
                    _mistake_log_softmax_first_axis,
                ),
                Mistake(
                    "no keepdim",
                    "the log of the sum without keepdim=True (it broadcasts against the wrong "
                    "axis)",
                    _mistake_log_softmax_no_keepdim,
                ),
            ],
            forbidden=("log_softmax", "logsumexp"),
        ),
        Question(
            "q5",
            "zero_temperature_limit",
            2,
            "As T shrinks, exp((x_i - max) / T) goes to 0 for every score below the row's "
            "maximum and stays exactly 1 for every score equal to it. So the limit puts equal "
            "probability on the entries that equal the row's maximum, 1 / (how many there are), "
            "and 0 elsewhere. Compare the row with its maximum (keepdim=True), turn the "
            "booleans into floats, and divide by their sum.",
            zero_temperature_cases,
            "The limit of zero temperature",
            nudge="Take a row with two equal largest scores and work out softmax(x / T) for a "
            "small T by hand: what do the two entries tend to?",
            mistakes=[
                Mistake(
                    "first maximum only",
                    "a one-hot vector at the argmax (tied maxima not shared)",
                    _mistake_first_maximum_only,
                ),
                Mistake(
                    "ties not normalised",
                    "1 at every maximum without dividing by how many there are",
                    _mistake_ties_not_normalised,
                ),
                Mistake(
                    "plain softmax",
                    "the softmax at temperature 1",
                    _mistake_limit_is_plain_softmax,
                ),
                Mistake(
                    "tiny temperature, no max subtraction",
                    "exp(x / 1e-6) / sum(exp(x / 1e-6)) without subtracting the maximum "
                    "(NaN once exp overflows)",
                    _mistake_tiny_temperature_naive,
                ),
                Mistake(
                    "uniform",
                    "the uniform distribution (the limit of a high temperature)",
                    _mistake_limit_is_uniform,
                ),
            ],
        ),
    ]
