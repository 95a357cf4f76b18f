"""Chapter 1 questions: additive scores, masked softmax, one attention step
(exercises/01_seq2seq_attention.ipynb)."""

from __future__ import annotations

import random

from ..checks import Case, Question, randn


def _masked_softmax(scores, mask):
    import torch

    return torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1).nan_to_num(0.0)


def _additive(s, enc, W, U, v):
    import torch

    return torch.tanh((s @ W.T)[:, None, :] + enc @ U.T) @ v


def _lengths_mask(lengths, S):
    import torch

    return torch.arange(S)[None, :] < torch.tensor(lengths)[:, None]


def _problem(rng: random.Random, B: int, S: int, Dd: int, De: int, A: int):
    return (
        randn(rng, B, Dd),
        randn(rng, B, S, De),
        randn(rng, A, Dd, scale=0.5),
        randn(rng, A, De, scale=0.5),
        randn(rng, A),
    )


def additive_cases(rng: random.Random) -> list[Case]:
    cases = []
    for name, dims in [
        ("one sentence", (1, 5, 4, 6, 3)),
        ("a batch", (4, 7, 8, 6, 5)),
        ("decoder and encoder of different sizes", (3, 9, 16, 10, 7)),
    ]:
        s, enc, W, U, v = _problem(rng, *dims)
        cases.append(Case(name, (s, enc, W, U, v), _additive(s, enc, W, U, v)))
    return cases


def masked_softmax_cases(rng: random.Random) -> list[Case]:
    import torch

    full = randn(rng, 3, 6)
    padded = randn(rng, 4, 6, scale=3.0)
    pad_mask = _lengths_mask([6, 4, 2, 1], 6)
    empty = randn(rng, 2, 5)
    empty_mask = _lengths_mask([3, 0], 5)
    big = randn(rng, 2, 4) * 50 + 500
    return [
        Case(
            "no padding: an ordinary softmax",
            (full, torch.ones(3, 6, dtype=torch.bool)),
            torch.softmax(full, -1),
        ),
        Case(
            "padded positions get weight 0", (padded, pad_mask), _masked_softmax(padded, pad_mask)
        ),
        Case(
            "a fully masked row gives zeros, not NaN",
            (empty, empty_mask),
            _masked_softmax(empty, empty_mask),
        ),
        Case(
            "large scores do not overflow",
            (big, _lengths_mask([4, 3], 4)),
            _masked_softmax(big, _lengths_mask([4, 3], 4)),
        ),
    ]


def step_cases(rng: random.Random) -> list[Case]:
    cases = []
    for name, dims, lengths in [
        ("a batch without padding", (3, 5, 4, 6, 3), [5, 5, 5]),
        ("a padded batch", (4, 8, 8, 6, 5), [8, 6, 3, 1]),
    ]:
        s, enc, W, U, v = _problem(rng, *dims)
        mask = _lengths_mask(lengths, dims[1])
        alpha = _masked_softmax(_additive(s, enc, W, U, v), mask)
        context = (alpha[:, :, None] * enc).sum(1)
        cases.append(Case(name, (s, enc, mask, W, U, v), (context, alpha)))
    return cases


def questions() -> list[Question]:
    return [
        Question(
            "q1",
            "additive_scores",
            3,
            "W @ s has shape (B, A) and needs a source axis: (s @ W.T)[:, None, :]; add enc @ U.T "
            "(B, S, A), apply tanh, then multiply by v to get (B, S).",
            additive_cases,
            "Additive attention scores",
        ),
        Question(
            "q2",
            "masked_softmax",
            3,
            "scores.masked_fill(~mask, float('-inf')) before the softmax; a row with no True entry "
            "then gives NaN (0/0): replace NaN by 0 (torch.nan_to_num or torch.where).",
            masked_softmax_cases,
            "Masked softmax",
        ),
        Question(
            "q3",
            "attention_step",
            4,
            "Compose your two functions; the context is the weighted sum of enc over the source axis: "
            "(weights[:, :, None] * enc).sum(1), or torch.bmm.",
            step_cases,
            "One attention step",
        ),
    ]
