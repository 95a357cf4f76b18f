"""Chapter 1 questions: additive scores, masked softmax, one attention step, Luong's dot and
general scores, Luong attention for every decoder step of a padded batch at once
(exercises/01_seq2seq_attention.ipynb)."""

from __future__ import annotations

import random

from ..checks import Case, Mistake, Question, randn

# Typical wrong answers, as code: feedback names the one a student's result equals.


def _mistake_no_source_axis(s, enc, W, U, v):
    import torch

    return torch.tanh(s @ W.T + enc @ U.T) @ v  # (B, A) + (B, S, A): right only when B == 1


def _mistake_no_tanh(s, enc, W, U, v):
    return ((s @ W.T)[:, None, :] + enc @ U.T) @ v


def _mistake_tanh_last(s, enc, W, U, v):
    import torch

    return torch.tanh(((s @ W.T)[:, None, :] + enc @ U.T) @ v)


def _mistake_sum_not_v(s, enc, W, U, v):
    import torch

    return torch.tanh((s @ W.T)[:, None, :] + enc @ U.T).sum(-1)


def _mistake_w_not_transposed(s, enc, W, U, v):
    import torch

    return torch.tanh((s @ W)[:, None, :] + enc @ U) @ v


def _mistake_no_nan_fix(scores, mask):
    import torch

    return torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)


def _mistake_masked_after_softmax(scores, mask):
    import torch

    return torch.softmax(scores, dim=-1) * mask


def _mistake_mask_inverted(scores, mask):
    import torch

    return torch.softmax(scores.masked_fill(mask, float("-inf")), dim=-1).nan_to_num(0.0)


def _mistake_large_negative(scores, mask):
    import torch

    return torch.softmax(scores.masked_fill(~mask, -1e9), dim=-1)


def _mistake_naive_masked_exp(scores, mask):
    e = scores.exp() * mask  # exp(500) is inf
    return (e / e.sum(dim=-1, keepdim=True)).nan_to_num(0.0)


def _weights(s, enc, mask, W, U, v):
    return _masked_softmax(_additive(s, enc, W, U, v), mask)


def _mistake_mask_ignored(s, enc, mask, W, U, v):
    import torch

    weights = torch.softmax(_additive(s, enc, W, U, v), dim=-1)
    return (weights[:, :, None] * enc).sum(1), weights


def _mistake_plain_mean(s, enc, mask, W, U, v):
    return enc.mean(1), _weights(s, enc, mask, W, U, v)


def _mistake_swapped_outputs(s, enc, mask, W, U, v):
    weights = _weights(s, enc, mask, W, U, v)
    return weights, (weights[:, :, None] * enc).sum(1)


def _mistake_no_query_axis(s, enc, mask, W, U, v):
    weights = _weights(s, enc, mask, W, U, v)
    return weights @ enc, weights  # (B, S) @ (B, S, De) broadcasts to (B, B, De)


def _luong(h, enc, W=None):
    q = h if W is None else h @ W  # (B, De)
    return (enc @ q[:, :, None]).squeeze(-1)  # (B, S)


def _mistake_luong_w_transposed(h, enc, W=None):
    q = h if W is None else h @ W.T  # a shape error unless Dd == De
    return (enc @ q[:, :, None]).squeeze(-1)


def _mistake_luong_scaled(h, enc, W=None):
    return _luong(h, enc, W) / enc.shape[-1] ** 0.5  # the Transformer's scaling (Chapter 2)


def _mistake_luong_no_batch_axis(h, enc, W=None):
    q = h if W is None else h @ W
    return q @ enc.transpose(1, 2)  # (B, De) @ (B, De, S) broadcasts to (B, B, S)


def _mistake_luong_softmaxed(h, enc, W=None):
    import torch

    return torch.softmax(_luong(h, enc, W), dim=-1)


def _mistake_luong_w_ignored(h, enc, W=None):
    return _luong(h, enc)  # the dot score even where W is given


def _all_steps(dec, enc, lengths, W, wrong=""):
    """Luong attention of every decoder step at once, one of the typical mistakes by name."""
    import torch

    S = enc.shape[1]
    scores = dec @ W @ enc.transpose(1, 2)  # (B, T, S)
    source = torch.arange(S)[None, :]  # (1, S)
    mask = source <= lengths[:, None] if wrong == "off by one" else source < lengths[:, None]
    if wrong == "mask on decoder axis":
        scores = scores.masked_fill(~mask[:, :, None], float("-inf"))  # (B, S, 1): T must be S
    elif wrong not in ("no mask", "masked after"):
        scores = scores.masked_fill(~mask[:, None, :], float("-inf"))  # (B, 1, S)
    weights = torch.softmax(scores, dim=1 if wrong == "softmax over steps" else -1)  # (B, T, S)
    if wrong == "masked after":
        weights = weights * mask[:, None, :]
    context = weights @ enc  # (B, T, De)
    return (weights, context) if wrong == "swapped" else (context, weights)


def _mistake_mask_off_by_one(dec, enc, lengths, W):
    return _all_steps(dec, enc, lengths, W, "off by one")


def _mistake_mask_on_decoder_axis(dec, enc, lengths, W):
    return _all_steps(dec, enc, lengths, W, "mask on decoder axis")


def _mistake_steps_unmasked(dec, enc, lengths, W):
    return _all_steps(dec, enc, lengths, W, "no mask")


def _mistake_masked_after_not_renormalised(dec, enc, lengths, W):
    return _all_steps(dec, enc, lengths, W, "masked after")


def _mistake_softmax_over_steps(dec, enc, lengths, W):
    return _all_steps(dec, enc, lengths, W, "softmax over steps")


def _mistake_all_steps_swapped(dec, enc, lengths, W):
    return _all_steps(dec, enc, lengths, W, "swapped")


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


def luong_cases(rng: random.Random) -> list[Case]:
    cases = []
    for name, (B, S, Dd, De), general in [
        ("dot: one sentence", (1, 5, 4, 4), False),
        ("dot: a batch", (3, 7, 6, 6), False),
        ("general: decoder and encoder of different sizes", (4, 6, 8, 5), True),
        ("general: a square W", (2, 9, 6, 6), True),
    ]:
        h, enc = randn(rng, B, Dd), randn(rng, B, S, De)
        W = randn(rng, Dd, De, scale=Dd**-0.5) if general else None
        cases.append(Case(name, (h, enc, W), _luong(h, enc, W)))
    return cases


def all_steps_cases(rng: random.Random) -> list[Case]:
    import torch

    cases = []
    for name, (T, S, Dd, De), lengths in [
        ("no padding", (4, 6, 5, 7), [6, 6, 6]),
        ("a padded batch", (5, 8, 6, 4), [8, 5, 2, 1]),
        ("as many decoder steps as source positions", (6, 6, 4, 4), [6, 3]),
    ]:
        dec, enc = randn(rng, len(lengths), T, Dd), randn(rng, len(lengths), S, De)
        W = randn(rng, Dd, De, scale=Dd**-0.5)
        lengths = torch.tensor(lengths)
        cases.append(Case(name, (dec, enc, lengths, W), _all_steps(dec, enc, lengths, W)))
    return cases


def questions() -> list[Question]:
    return [
        Question(
            "q1",
            "additive_scores",
            3,
            "With rows as vectors, W s is s @ W.T, of shape (B, A), and U h is enc @ U.T, of "
            "shape (B, S, A). To add them, give the first a source axis of size 1 (None indexing "
            "or unsqueeze) so that it broadcasts over the S positions; tanh, then a product with "
            "v contracts A away and leaves (B, S).",
            additive_cases,
            "Additive attention scores",
            nudge="Write down the shape of each term: which axis does W s lack before it can be "
            "added to U h for every source position?",
            mistakes=[
                Mistake(
                    "no source axis",
                    "adding W s of shape (B, A) to U h of shape (B, S, A) without a source axis",
                    _mistake_no_source_axis,
                ),
                Mistake("no tanh", "the scores without the tanh", _mistake_no_tanh),
                Mistake("tanh last", "tanh applied after the product with v", _mistake_tanh_last),
                Mistake(
                    "sum instead of v",
                    "summing over the attention dimension instead of multiplying by v",
                    _mistake_sum_not_v,
                ),
                Mistake(
                    "no transpose",
                    "s @ W and enc @ U without transposing the weights",
                    _mistake_w_not_transposed,
                ),
            ],
        ),
        Question(
            "q2",
            "masked_softmax",
            3,
            "Give the padding positions a score of minus infinity before the softmax (masked_fill "
            "with the negation of the mask), so that exp gives them exactly 0 and the rest is "
            "normalised among the real tokens. A row with no real token is then 0 / 0, NaN: "
            "replace NaN by 0 afterwards.",
            masked_softmax_cases,
            "Masked softmax",
            nudge="Check two rows by hand: one with some padding (its real tokens' weights sum "
            "to 1, the padding's are exactly 0) and one that is all padding (all 0, no NaN).",
            mistakes=[
                Mistake(
                    "NaN left in",
                    "masking with -inf without replacing the NaN of an all-padding row",
                    _mistake_no_nan_fix,
                ),
                Mistake(
                    "masked after softmax",
                    "multiplying a softmax over every position by the mask",
                    _mistake_masked_after_softmax,
                ),
                Mistake(
                    "mask inverted",
                    "the mask inverted (weight on the padding, none on the real tokens)",
                    _mistake_mask_inverted,
                ),
                Mistake(
                    "large negative",
                    "masking with -1e9 instead of -inf (an all-padding row becomes uniform)",
                    _mistake_large_negative,
                ),
                Mistake(
                    "no max subtraction",
                    "normalising exp(scores) times the mask without subtracting the maximum",
                    _mistake_naive_masked_exp,
                ),
            ],
        ),
        Question(
            "q3",
            "attention_step",
            4,
            "The weights are your masked softmax of your additive scores. The context is the "
            "weighted sum of the encoder outputs over the source axis: give the weights a "
            "trailing axis so that they broadcast over De, multiply and sum over S (or use "
            "torch.bmm with a query axis of size 1). Return the context first.",
            step_cases,
            "One attention step",
            nudge="Reuse your two functions; then which axis of enc do the weights sum over?",
            mistakes=[
                Mistake(
                    "mask ignored",
                    "a plain softmax of the scores (padding included)",
                    _mistake_mask_ignored,
                ),
                Mistake(
                    "plain mean",
                    "the plain mean of the encoder outputs as the context",
                    _mistake_plain_mean,
                ),
                Mistake(
                    "swapped outputs",
                    "returning (weights, context) instead of (context, weights)",
                    _mistake_swapped_outputs,
                ),
                Mistake(
                    "no query axis",
                    "weights @ enc without a query axis (a (B, B, De) context)",
                    _mistake_no_query_axis,
                ),
            ],
            uses={
                "additive_scores": "lambda s, enc, W, U, v: "
                "torch.tanh((s @ W.T)[:, None, :] + enc @ U.T) @ v",
                "masked_softmax": "lambda scores, mask: "
                "torch.softmax(scores.masked_fill(~mask, float('-inf')), dim=-1).nan_to_num(0.0)",
            },
            returns=("context", "weights"),
        ),
        Question(
            "q4",
            "luong_scores",
            3,
            "Luong's general score of a decoder state h against an encoder output e is h W e "
            "(h as a row, e as a column), with W of shape (Dd, De); the dot score is the same "
            "with no W, so it needs Dd == De. With a batch, h @ W is (B, De): give it a trailing "
            "axis and let enc (B, S, De) multiply it batch by batch, then drop that axis. No "
            "tanh, no scaling, no softmax: these are scores.",
            luong_cases,
            "Luong's dot and general scores",
            nudge="Which product of h @ W, (B, De), with enc, (B, S, De), gives (B, S) sentence by "
            "sentence? And is anything applied after it in Luong's formula?",
            mistakes=[
                Mistake(
                    "W transposed",
                    "h @ W.T instead of h @ W (W is (Dd, De): it takes a decoder state in)",
                    _mistake_luong_w_transposed,
                ),
                Mistake(
                    "scaled",
                    "dividing by the square root of De (the Transformer's scaling, not Luong's)",
                    _mistake_luong_scaled,
                ),
                Mistake(
                    "no batch axis",
                    "(h @ W) @ enc.transpose(1, 2) without a query axis (a (B, B, S) result)",
                    _mistake_luong_no_batch_axis,
                ),
                Mistake(
                    "softmaxed",
                    "the softmax of the scores (the weights, not the scores)",
                    _mistake_luong_softmaxed,
                ),
                Mistake(
                    "W ignored",
                    "the dot score where W is given",
                    _mistake_luong_w_ignored,
                ),
            ],
        ),
        Question(
            "q5",
            "luong_attention",
            4,
            "The general scores of all steps at once are a product of dec, W and enc with its "
            "last two axes swapped, shape (B, T, S). "
            "The source mask is True where the position is below the sentence's length (compare "
            "an arange of S with the lengths, giving (B, S)); it blocks source positions, so give "
            "it an axis of size 1 for the decoder steps, (B, 1, S), before masked_fill with -inf. "
            "Softmax over the source axis (the last), then the context is the weights times enc.",
            all_steps_cases,
            "Luong attention for every decoder step of a padded batch",
            nudge="Which axis of the (B, T, S) scores does the padding mask block, and which one "
            "do the weights of one decoder step sum over?",
            mistakes=[
                Mistake(
                    "mask off by one",
                    "a mask that keeps the first padding position too (<= the length)",
                    _mistake_mask_off_by_one,
                ),
                Mistake(
                    "mask on the decoder axis",
                    "the (B, S) mask given a trailing axis, so that it blocks decoder steps",
                    _mistake_mask_on_decoder_axis,
                ),
                Mistake(
                    "padding not masked",
                    "a softmax over every source position, padding included",
                    _mistake_steps_unmasked,
                ),
                Mistake(
                    "masked after the softmax",
                    "a softmax over every position multiplied by the mask (rows that no "
                    "longer sum to 1)",
                    _mistake_masked_after_not_renormalised,
                ),
                Mistake(
                    "softmax over steps",
                    "a softmax over the decoder steps (axis 1) instead of the source positions",
                    _mistake_softmax_over_steps,
                ),
                Mistake(
                    "swapped outputs",
                    "returning (weights, context) instead of (context, weights)",
                    _mistake_all_steps_swapped,
                ),
            ],
            returns=("context", "weights"),
        ),
    ]
