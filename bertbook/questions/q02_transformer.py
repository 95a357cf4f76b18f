"""Chapter 2 questions: masked attention, splitting heads, positional encoding, the causal mask
(exercises/02_transformer.ipynb)."""

from __future__ import annotations

import random

from ..checks import Case, Question, randn


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
            "scores = q @ k.transpose(-2, -1) / sqrt(d); masked_fill(~mask, -inf) when a mask is "
            "given; softmax over the last axis; replace NaN (fully masked rows) by 0; return "
            "(weights @ v, weights).",
            attention_cases,
            "Scaled dot-product attention with a mask",
        ),
        Question(
            "q2",
            "split_heads",
            2,
            "x.view(B, T, n_heads, d // n_heads) puts the heads in axis 2; .transpose(1, 2) moves "
            "them before the time axis.",
            split_cases,
            "Splitting heads",
        ),
        Question(
            "q3",
            "positional_encoding",
            2,
            "Positions as a (T, 1) column, frequencies 10000 ** (-torch.arange(0, d, 2) / d) as a "
            "row; sin goes to the even columns pe[:, 0::2], cos to the odd ones.",
            positional_cases,
            "Sinusoidal positional encoding",
        ),
        Question(
            "q4",
            "causal_mask",
            2,
            "torch.ones(T, T, dtype=torch.bool) keeps everything; .tril() keeps the diagonal and "
            "below: position t may look at positions 0..t.",
            causal_cases,
            "The causal mask",
        ),
    ]
