"""Warm-up questions: softmax, temperature, cosine similarity (exercises/00_intro.ipynb)."""

from __future__ import annotations

import random

from ..checks import Case, Question, randn


def softmax_cases(rng: random.Random) -> list[Case]:
    import torch

    x1 = randn(rng, 5)
    x2 = randn(rng, 3, 7, scale=3.0)
    big = randn(rng, 2, 4) + 1000.0
    masked = randn(rng, 2, 5)
    masked[:, 1] = float("-inf")
    return [
        Case("a vector", (x1,), torch.softmax(x1, -1)),
        Case("each row of a batch", (x2,), torch.softmax(x2, -1)),
        Case("large logits (around 1000) do not overflow", (big,), torch.softmax(big, -1)),
        Case("-inf logits get probability 0", (masked,), torch.softmax(masked, -1)),
    ]


def temperature_cases(rng: random.Random) -> list[Case]:
    import torch

    x = randn(rng, 4, 6, scale=2.0)
    return [
        Case(f"temperature {t}", (x, t), torch.softmax(x / t, -1)) for t in (1.0, 0.5, 3.0, 0.01)
    ]


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


def questions() -> list[Question]:
    return [
        Question(
            "q1",
            "softmax",
            3,
            "Subtract the maximum of each row before exponentiating (x.max(dim=-1, keepdim=True)); "
            "the result does not change but exp no longer overflows.",
            softmax_cases,
            "Softmax along the last dimension",
        ),
        Question(
            "q2",
            "softmax_with_temperature",
            2,
            "Divide the logits by the temperature, then reuse your softmax.",
            temperature_cases,
            "Temperature",
        ),
        Question(
            "q3",
            "cosine_similarity",
            3,
            "Dot product over the last dimension divided by the product of the two norms "
            "(torch.linalg.vector_norm(x, dim=-1)).",
            cosine_cases,
            "Cosine similarity",
        ),
    ]
