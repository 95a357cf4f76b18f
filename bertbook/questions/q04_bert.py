"""Chapter 4 questions: MLM masking, BERT's classification head, mean pooling, attention entropy
(exercises/04_bert.ipynb)."""

from __future__ import annotations

import random

from ..checks import Case, Question, randn


def masking_cases(rng: random.Random) -> list[Case]:
    import torch

    # The chapter's mask_tokens, equal to DataCollatorForLanguageModeling (tests/test_bert.py).
    from ..bert import mask_tokens

    def case(name, ids, special, vocab_size, mask_id, seed):
        expected = mask_tokens(
            ids, special, vocab_size, mask_id, torch.Generator().manual_seed(seed)
        )
        return Case(name, (ids, special, vocab_size, mask_id, seed), expected)

    cases = []
    for name, (B, T, V) in [("a small batch", (2, 12, 50)), ("a larger batch", (16, 40, 1000))]:
        g = torch.Generator().manual_seed(rng.randrange(2**31))
        ids = torch.randint(5, V, (B, T), generator=g)
        special = torch.zeros(B, T, dtype=torch.bool)
        special[:, 0] = special[:, -1] = True  # [CLS] ... [SEP]
        cases.append(case(name, ids, special, V, 4, rng.randrange(2**31)))
    ids = torch.randint(5, 30, (3, 8))
    cases.append(
        case(
            "special tokens are never chosen",
            ids,
            torch.ones(3, 8, dtype=torch.bool),
            30,
            4,
            rng.randrange(2**31),
        )
    )
    return cases


def head_cases(rng: random.Random) -> list[Case]:
    import torch
    from transformers import BertConfig
    from transformers.models.bert.modeling_bert import BertPooler

    cases = []
    for name, (B, T, C, n) in [
        ("one sentence, 2 classes", (1, 5, 8, 2)),
        ("a batch, 3 classes", (4, 9, 16, 3)),
    ]:
        hidden = randn(rng, B, T, C)
        pooler_w, pooler_b = randn(rng, C, C, scale=C**-0.5), randn(rng, C, scale=0.1)
        w, b = randn(rng, n, C, scale=C**-0.5), randn(rng, n, scale=0.1)
        pooler = BertPooler(BertConfig(hidden_size=C))  # the library's [CLS] pooler
        with torch.no_grad():
            pooler.dense.weight.copy_(pooler_w)
            pooler.dense.bias.copy_(pooler_b)
            expected = torch.nn.functional.linear(pooler(hidden), w, b)
        cases.append(Case(name, (hidden, pooler_w, pooler_b, w, b), expected))
    return cases


def mean_pool_cases(rng: random.Random) -> list[Case]:
    import torch

    cases = []
    for name, lengths in [("no padding", [6, 6]), ("padded sentences", [3, 7, 1, 5])]:
        T = max(lengths)
        hidden = randn(rng, len(lengths), T, 10)
        mask = (torch.arange(T)[None, :] < torch.tensor(lengths)[:, None]).long()
        expected = torch.stack([hidden[i, :n].mean(0) for i, n in enumerate(lengths)])
        cases.append(Case(name, (hidden, mask), expected))
    return cases


def entropy_cases(rng: random.Random) -> list[Case]:
    import torch

    def reference(weights, mask):  # (L, B, H, T, T), (B, T)
        h = -(weights * torch.log(weights.clamp(min=1e-12))).sum(-1)  # (L, B, H, T)
        m = mask[None, :, None, :].to(h.dtype)
        return (h * m).sum((1, 3)) / m.sum((1, 3))  # (L, H)

    cases = []
    for name, (L, B, H, T, pad) in [
        ("one sentence", (2, 1, 3, 6, 0)),
        ("a padded batch", (3, 4, 4, 9, 3)),
    ]:
        mask = torch.ones(B, T, dtype=torch.long)
        if pad:
            mask[1:, -pad:] = 0
        scores = randn(rng, L, B, H, T, T, scale=2.0).masked_fill(
            ~mask.bool()[None, :, None, None, :], float("-inf")
        )
        weights = scores.softmax(-1)
        cases.append(Case(name, (weights, mask), reference(weights, mask)))
    one_hot = torch.zeros(1, 1, 2, 4, 4)
    one_hot[..., 0] = 1.0  # every query looks at one token only
    cases.append(
        Case(
            "a head that looks at one token has entropy 0",
            (one_hot, torch.ones(1, 4, dtype=torch.long)),
            torch.zeros(1, 2),
        )
    )
    return cases


def questions() -> list[Question]:
    return [
        Question(
            "q1",
            "mask_tokens",
            4,
            "Draw with g = torch.Generator().manual_seed(seed), in this order: torch.bernoulli of a "
            "0.15 matrix with special positions set to 0 (chosen); torch.bernoulli(0.8) & chosen "
            "([MASK]); torch.bernoulli(0.5) & chosen & not masked (random); torch.randint(vocab_size, "
            "shape). Labels are -100 where not chosen.",
            masking_cases,
            "Masking with the 80/10/10 rule",
        ),
        Question(
            "q2",
            "classify_cls",
            2,
            "pooled = tanh(hidden[:, 0] @ pooler_w.T + pooler_b); logits = pooled @ w.T + b.",
            head_cases,
            "[CLS] pooling and a classification head",
        ),
        Question(
            "q3",
            "mean_pool",
            2,
            "Multiply by mask.unsqueeze(-1) (as floats), sum over the tokens, divide by the number of "
            "real tokens per sentence.",
            mean_pool_cases,
            "Mean pooling without the padding",
        ),
        Question(
            "q4",
            "attention_entropy",
            2,
            "Entropy of each query's distribution: -(w * log w).sum(-1), with 0 log 0 = 0 "
            "(clamp before the log); average over real query tokens and over the batch.",
            entropy_cases,
            "Attention entropy per head",
        ),
    ]
