"""Chapter 6 questions: causal attention, top-k, top-p, perplexity (exercises/06_gpt2.ipynb)."""

from __future__ import annotations

import random

from ..checks import Case, Question, randn


def causal_cases(rng: random.Random) -> list[Case]:
    import torch.nn.functional as F

    cases = []
    for name, shape in [
        ("one head", (1, 1, 5, 8)),
        ("a batch of 4 heads", (2, 4, 7, 16)),
        ("T = 1", (3, 2, 1, 4)),
    ]:
        q, k, v = randn(rng, *shape), randn(rng, *shape), randn(rng, *shape)
        cases.append(Case(name, (q, k, v), F.scaled_dot_product_attention(q, k, v, is_causal=True)))
    return cases


def top_k_cases(rng: random.Random) -> list[Case]:
    from transformers.generation.logits_process import TopKLogitsWarper

    cases = []
    for k, shape in [(1, (2, 10)), (5, (3, 50)), (rng.randrange(2, 40), (4, 100))]:
        x = randn(rng, *shape, scale=3.0)
        cases.append(Case(f"k = {k}", (x, k), TopKLogitsWarper(k)(None, x.clone())))
    return cases


def top_p_cases(rng: random.Random) -> list[Case]:
    from transformers.generation.logits_process import TopPLogitsWarper

    cases = []
    for p in (0.3, 0.9, round(rng.uniform(0.5, 0.95), 2)):
        x = randn(rng, 4, 60, scale=2.0)
        cases.append(Case(f"p = {p}", (x, p), TopPLogitsWarper(p)(None, x.clone())))
    peaked = randn(rng, 2, 30)
    peaked[:, 0] = 20.0  # one token holds almost all the mass
    cases.append(
        Case(
            "a sure model keeps only its top token",
            (peaked, 0.9),
            TopPLogitsWarper(0.9)(None, peaked.clone()),
        )
    )
    return cases


def perplexity_cases(rng: random.Random) -> list[Case]:
    import torch
    import torch.nn.functional as F

    cases = []
    for name, (B, T, V) in [("one sequence", (1, 6, 10)), ("a batch", (4, 12, 50))]:
        logits = randn(rng, B, T, V, scale=2.0)
        g = torch.Generator().manual_seed(rng.randrange(2**31))
        targets = torch.randint(0, V, (B, T), generator=g)
        cases.append(
            Case(
                name,
                (logits, targets),
                torch.exp(F.cross_entropy(logits.flatten(0, 1), targets.flatten())).item(),
                rtol=1e-4,
            )
        )
    uniform = torch.zeros(2, 5, 37)
    cases.append(
        Case(
            "a uniform model over 37 tokens has perplexity 37",
            (uniform, torch.zeros(2, 5, dtype=torch.long)),
            37.0,
        )
    )
    return cases


def questions() -> list[Question]:
    return [
        Question(
            "q1",
            "causal_attention",
            3,
            "torch.ones(T, T, dtype=torch.bool).tril() is the mask; scores where it is False become "
            "-inf before the softmax; remember the 1/sqrt(d).",
            causal_cases,
            "Causal self-attention",
        ),
        Question(
            "q2",
            "top_k_filter",
            2,
            "logits.topk(k, dim=-1).values[..., -1:] is each row's k-th largest value; everything "
            "strictly below it becomes -inf (masked_fill).",
            top_k_cases,
            "Top-k filtering",
        ),
        Question(
            "q3",
            "top_p_filter",
            3,
            "Sort descending, softmax, cumsum; a token is removed when the mass of the tokens before "
            "it already reaches p; scatter the decision back to the original order.",
            top_p_cases,
            "Top-p (nucleus) filtering",
        ),
        Question(
            "q4",
            "perplexity",
            2,
            "exp of the mean cross-entropy: F.cross_entropy(logits.flatten(0, 1), targets.flatten()).exp(); "
            "return a Python float (.item()).",
            perplexity_cases,
            "Perplexity from logits",
        ),
    ]
