"""Chapter 2 questions: masked attention, splitting heads, positional encoding, the causal mask
(exercises/02_transformer.ipynb)."""

from __future__ import annotations

import random

from ..checks import Case, Mistake, Question, randn

# Typical wrong answers, as code: feedback names the one a student's result equals.


def _attend(scores, v, mask, dim=-1):
    import torch

    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=dim).nan_to_num(0.0)
    return weights @ v, weights


def _mistake_no_scale(q, k, v, mask=None):
    return _attend(q @ k.transpose(-2, -1), v, mask)


def _mistake_divided_by_d(q, k, v, mask=None):
    return _attend(q @ k.transpose(-2, -1) / q.shape[-1], v, mask)


def _mistake_mask_inverted(q, k, v, mask=None):
    return _attend(q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5, v, None if mask is None else ~mask)


def _mistake_no_nan_fix(q, k, v, mask=None):
    import torch

    scores = q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    return weights @ v, weights


def _mistake_mask_added(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5
    return _attend(scores if mask is None else scores + mask, v, None)


def _mistake_softmax_over_queries(q, k, v, mask=None):
    return _attend(q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5, v, mask, dim=-2)


def _mistake_view_without_transpose(x, n_heads):
    B, T, d = x.shape
    return x.reshape(B, n_heads, T, d // n_heads)


def _mistake_heads_interleaved(x, n_heads):
    B, T, d = x.shape
    return x.view(B, T, d // n_heads, n_heads).permute(0, 3, 1, 2)


def _mistake_no_transpose(x, n_heads):
    B, T, d = x.shape
    return x.view(B, T, n_heads, d // n_heads)


def _pe(T, d, position, frequency, layout="interleaved"):
    import torch

    angles = position[:, None] * frequency[None, :]  # (T, d / 2)
    if layout == "halves":
        return torch.cat([angles.sin(), angles.cos()], dim=-1)
    pe = torch.zeros(T, d)
    first, second = (
        (angles.cos(), angles.sin()) if layout == "swapped" else (angles.sin(), angles.cos())
    )
    pe[:, 0::2], pe[:, 1::2] = first, second
    return pe


def _positions(T):
    import torch

    return torch.arange(T, dtype=torch.float32)


def _frequencies(d):
    import torch

    return 10000 ** (-torch.arange(0, d, 2, dtype=torch.float32) / d)


def _mistake_sin_cos_halves(T, d):
    return _pe(T, d, _positions(T), _frequencies(d), layout="halves")


def _mistake_sin_cos_swapped(T, d):
    return _pe(T, d, _positions(T), _frequencies(d), layout="swapped")


def _mistake_exponent_i_over_d(T, d):
    import torch

    return _pe(T, d, _positions(T), 10000 ** (-torch.arange(d // 2, dtype=torch.float32) / d))


def _mistake_positions_from_1(T, d):
    return _pe(T, d, _positions(T) + 1, _frequencies(d))


def _mistake_frequency_inverted(T, d):
    return _pe(T, d, _positions(T), 1 / _frequencies(d))


def _mistake_float_mask(T):
    import torch

    return torch.ones(T, T).tril()


def _mistake_upper_triangle(T):
    import torch

    return torch.ones(T, T, dtype=torch.bool).triu()


def _mistake_diagonal_excluded(T):
    import torch

    return torch.ones(T, T, dtype=torch.bool).tril(-1)


def _mistake_blocked_mask(T):
    import torch

    return torch.ones(T, T, dtype=torch.bool).triu(1)


def _mistake_one_step_ahead(T):
    import torch

    return torch.ones(T, T, dtype=torch.bool).tril(1)


def attention_cases(rng: random.Random) -> list[Case]:
    import torch
    import torch.nn.functional as F

    def case(name, q, k, v, mask):
        scores = (q @ k.transpose(-2, -1)) / q.shape[-1] ** 0.5
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        weights = torch.softmax(scores, -1).nan_to_num(0.0)
        return Case(
            name,
            (q, k, v, mask),
            (F.scaled_dot_product_attention(q, k, v, attn_mask=mask), weights),
        )

    q, k, v = randn(rng, 4, 8), randn(rng, 6, 8), randn(rng, 6, 5)
    qb, kb, vb = randn(rng, 2, 3, 5, 16), randn(rng, 2, 3, 5, 16), randn(rng, 2, 3, 5, 16)
    causal = torch.ones(5, 5, dtype=torch.bool).tril()
    pad = torch.tensor([True, True, True, False, False, False])[None, :].expand(4, 6)
    empty = pad.clone()
    empty[1] = False
    return [
        case("no mask, one sequence", q, k, v, None),
        case("a padding mask", q, k, v, pad.contiguous()),
        case("a causal mask broadcast over batch and heads", qb, kb, vb, causal),
        case("a query that may see nothing gets zeros", q, k, v, empty),
    ]


def split_cases(rng: random.Random) -> list[Case]:
    cases = []
    for name, (B, T, d, h) in [
        ("4 heads", (2, 5, 16, 4)),
        ("one head", (1, 3, 8, 1)),
        ("8 heads of size 2", (3, 4, 16, 8)),
    ]:
        x = randn(rng, B, T, d)
        cases.append(Case(name, (x, h), x.view(B, T, h, d // h).transpose(1, 2)))
    return cases


def positional_cases(rng: random.Random) -> list[Case]:
    from ..attention import positional_encoding  # verified against transformers' Marian table

    sizes = [(10, 4), (50, 16), (rng.randrange(20, 80), 2 * rng.randrange(4, 32))]
    return [Case(f"T={T}, d={d}", (T, d), positional_encoding(T, d), atol=1e-4) for T, d in sizes]


def causal_cases(rng: random.Random) -> list[Case]:
    import torch

    return [
        Case(f"T={T}", (T,), torch.ones(T, T, dtype=torch.bool).tril())
        for T in (1, 4, rng.randrange(5, 30))
    ]


def questions() -> list[Question]:
    return [
        Question(
            "q1",
            "attention",
            4,
            "Scores are the products of every query with every key (transpose the last two axes of "
            "k), divided by the square root of the query size d. Where the mask is False the score "
            "becomes -inf (mask True means allowed), the softmax runs over the keys (the last "
            "axis), and a query with no allowed key gives 0 / 0: replace NaN by 0. The output is "
            "the weights times v.",
            attention_cases,
            "Scaled dot-product attention with a mask",
            nudge="Check three things against the formula: the 1/sqrt(d) scale, which mask value "
            "means allowed, and the axis of the softmax.",
            mistakes=[
                Mistake("no scale", "attention without the 1/sqrt(d) scale", _mistake_no_scale),
                Mistake(
                    "divided by d",
                    "dividing the scores by d instead of sqrt(d)",
                    _mistake_divided_by_d,
                ),
                Mistake(
                    "mask inverted",
                    "the mask read the other way (True = blocked)",
                    _mistake_mask_inverted,
                ),
                Mistake(
                    "NaN left in",
                    "masking with -inf without replacing the NaN of a query that sees nothing",
                    _mistake_no_nan_fix,
                ),
                Mistake(
                    "mask added",
                    "adding the boolean mask to the scores instead of blocking with -inf",
                    _mistake_mask_added,
                ),
                Mistake(
                    "softmax over queries",
                    "a softmax over the queries (axis -2) instead of the keys",
                    _mistake_softmax_over_queries,
                ),
            ],
        ),
        Question(
            "q2",
            "split_heads",
            2,
            "First cut the last axis into (n_heads, d // n_heads), in that order, so that head i "
            "owns a contiguous block of features; the heads are then axis 2. Then swap the heads "
            "axis with the time axis. A single view to the final shape mixes time steps and "
            "features.",
            split_cases,
            "Splitting heads",
            nudge="A view only reinterprets memory: cut the features first, then move the heads "
            "axis.",
            mistakes=[
                Mistake(
                    "view without transpose",
                    "one view straight to (B, n_heads, T, d // n_heads)",
                    _mistake_view_without_transpose,
                ),
                Mistake(
                    "heads interleaved",
                    "cutting the features as (d // n_heads, n_heads) (head i gets every n_heads-th "
                    "feature)",
                    _mistake_heads_interleaved,
                ),
                Mistake(
                    "no transpose",
                    "stopping at (B, T, n_heads, d // n_heads) without moving the heads before time",
                    _mistake_no_transpose,
                ),
            ],
        ),
        Question(
            "q3",
            "positional_encoding",
            2,
            "Positions 0..T-1 as a column times the d/2 frequencies 1 / 10000^(2i/d) as a row give "
            "a (T, d/2) table of angles (broadcasting). Note that 2i runs over the even numbers "
            "0, 2, ..., d-2. The sines fill the even columns and the cosines the odd ones, "
            "interleaved (slicing with a step of 2), not in two halves.",
            positional_cases,
            "Sinusoidal positional encoding",
            nudge="Check the exponent 2i/d, the first position (0), and that sines and cosines "
            "alternate column by column.",
            mistakes=[
                Mistake(
                    "sin and cos halves",
                    "sines in the first half of the columns and cosines in the second (Marian's "
                    "layout)",
                    _mistake_sin_cos_halves,
                ),
                Mistake(
                    "sin and cos swapped",
                    "cosines in the even columns and sines in the odd ones",
                    _mistake_sin_cos_swapped,
                ),
                Mistake(
                    "exponent i/d",
                    "the exponent i/d instead of 2i/d",
                    _mistake_exponent_i_over_d,
                ),
                Mistake("positions from 1", "counting positions from 1", _mistake_positions_from_1),
                Mistake(
                    "frequency inverted",
                    "multiplying the position by 10000^(2i/d) instead of dividing",
                    _mistake_frequency_inverted,
                ),
            ],
        ),
        Question(
            "q4",
            "causal_mask",
            2,
            "Row t is the query, column s the key: True where s <= t, the diagonal included, so a "
            "lower triangle. torch.tril keeps the diagonal and what is below it. The tensor must be "
            "boolean (dtype=torch.bool): a float mask of 0s and 1s is added to the attention "
            "scores by F.scaled_dot_product_attention instead of blocking them.",
            causal_cases,
            "The causal mask",
            nudge="Which triangle, is the diagonal in it, and what dtype does an attention mask "
            "that blocks need?",
            mistakes=[
                Mistake(
                    "float mask",
                    "a float mask of 0s and 1s (which attention adds to the scores, blocking "
                    "nothing)",
                    _mistake_float_mask,
                ),
                Mistake(
                    "upper triangle",
                    "the upper triangle (each position sees the future)",
                    _mistake_upper_triangle,
                ),
                Mistake(
                    "diagonal excluded",
                    "the lower triangle without the diagonal",
                    _mistake_diagonal_excluded,
                ),
                Mistake(
                    "blocked mask",
                    "the blocked positions marked True (nn.MultiheadAttention's convention)",
                    _mistake_blocked_mask,
                ),
                Mistake(
                    "one step ahead",
                    "a lower triangle that also lets each position see the next one",
                    _mistake_one_step_ahead,
                ),
            ],
        ),
    ]
