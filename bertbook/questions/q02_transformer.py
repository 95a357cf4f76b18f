"""Chapter 2 questions: masked attention, splitting heads, positional encoding, the causal mask,
the mask of packed sequences, the matrix that shifts a positional encoding, the parameter count
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


def _same_document(doc_ids):
    return doc_ids[:, :, None] == doc_ids[:, None, :]  # (B, T, T): query t, key s


def _packed_mask(doc_ids):
    import torch

    T = doc_ids.shape[1]
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    return (_same_document(doc_ids) & causal)[:, None]  # (B, 1, T, T)


def _mistake_causal_only(doc_ids):
    import torch

    B, T = doc_ids.shape
    return torch.ones(T, T, dtype=torch.bool).tril().expand(B, 1, T, T)


def _mistake_documents_only(doc_ids):
    return _same_document(doc_ids)[:, None]


def _mistake_future_in_document(doc_ids):
    import torch

    T = doc_ids.shape[1]
    return (_same_document(doc_ids) & torch.ones(T, T, dtype=torch.bool).triu())[:, None]


def _mistake_causal_or_document(doc_ids):
    import torch

    T = doc_ids.shape[1]
    return (_same_document(doc_ids) | torch.ones(T, T, dtype=torch.bool).tril())[:, None]


def _mistake_first_document_only(doc_ids):
    import torch

    T = doc_ids.shape[1]
    first = (doc_ids == doc_ids[:, :1])[:, None, :]  # later documents treated as padding
    return (torch.ones(T, T, dtype=torch.bool).tril() & first)[:, None]


def _mistake_no_heads_axis(doc_ids):
    return _packed_mask(doc_ids)[:, 0]


def _shift(k, d, angle_of=None, transpose=False, layout="interleaved", mixing=True):
    import torch

    frequency = _frequencies(d).double()  # (d/2,)
    angle = k * frequency if angle_of is None else angle_of(k, d).double()
    cos, sin = angle.cos(), angle.sin()
    m = torch.zeros(d, d, dtype=torch.float64)
    i = torch.arange(d // 2)
    s, c = (2 * i, 2 * i + 1) if layout == "interleaved" else (i, d // 2 + i)  # sin, cos columns
    m[s, s], m[c, c] = cos, cos
    if mixing:  # (sin a, cos a) @ [[cos b, -sin b], [sin b, cos b]] = (sin(a+b), cos(a+b))
        m[s, c], m[c, s] = -sin, sin
    return (m.T if transpose else m).float()


def _mistake_shift_transposed(k, d):
    return _shift(k, d, transpose=True)


def _mistake_angle_not_times_k(k, d):
    return _shift(k, d, angle_of=lambda k, d: _frequencies(d))


def _mistake_angle_without_frequency(k, d):
    import torch

    return _shift(k, d, angle_of=lambda k, d: torch.full((d // 2,), float(k)))


def _mistake_shift_exponent_i_over_d(k, d):
    import torch

    return _shift(k, d, angle_of=lambda k, d: k * 10000 ** (-torch.arange(d // 2) / d))


def _mistake_shift_halves(k, d):
    return _shift(k, d, layout="halves")


def _mistake_cosines_only(k, d):
    return _shift(k, d, mixing=False)


def _count(n_src, n_tgt, d_model, n_heads, d_ff, n_enc, n_dec, **wrong):
    """The parameters of the chapter's Transformer by formula; ``wrong`` leaves a part out."""
    C, b = d_model, 0 if wrong.get("no_bias") else 1
    mha = 4 * (C * C + b * C) * (n_heads if wrong.get("per_head") else 1)  # q, k, v, out
    ffn = C * d_ff + b * d_ff + d_ff * C + b * C
    norm = 0 if wrong.get("no_norms") else 2 * C  # gain and bias
    cross = 0 if wrong.get("no_cross") else 1
    layers = n_enc * (mha + ffn + 2 * norm) + n_dec * ((1 + cross) * mha + ffn + (2 + cross) * norm)
    final = 0 if wrong.get("no_final_norms") else 2 * norm
    table = 64 * C if wrong.get("table") else 0  # max_len positions: a buffer, not learned
    return (n_src + n_tgt) * C + layers + final + C * n_tgt + b * n_tgt + table


def _mistake_no_biases(*sizes):
    return _count(*sizes, no_bias=True)


def _mistake_no_cross_attention(*sizes):
    return _count(*sizes, no_cross=True)


def _mistake_projections_per_head(*sizes):
    return _count(*sizes, per_head=True)


def _mistake_positional_table_counted(*sizes):
    return _count(*sizes, table=True)


def _mistake_final_norms_left_out(*sizes):
    return _count(*sizes, no_final_norms=True)


def _mistake_norms_left_out(*sizes):
    return _count(*sizes, no_norms=True)


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


def packed_cases(rng: random.Random) -> list[Case]:
    import torch

    def row(T, n_docs):
        cuts = sorted(rng.sample(range(1, T), n_docs - 1))  # where each new document starts
        return [sum(t >= c for c in cuts) for t in range(T)]

    one = torch.zeros(2, 5, dtype=torch.long)
    three = torch.tensor([[0, 0, 0, 1, 1, 2, 2, 2]])
    short = torch.tensor([[0, 1, 1, 1, 2, 3, 3]])  # documents of one token too
    T = rng.randrange(10, 20)
    batch = torch.tensor([row(T, n) for n in (2, 3, rng.randrange(4, 7))])
    return [
        Case(name, (ids,), _packed_mask(ids))
        for name, ids in [
            ("one document per row: the causal mask", one),
            ("three documents in one row", three),
            ("documents of a single token", short),
            ("a batch, each row cut differently", batch),
        ]
    ]


def shift_cases(rng: random.Random) -> list[Case]:
    sizes = [
        (1, 4),
        (0, 8),  # the identity
        (-3, 8),  # a shift back
        (rng.randrange(2, 30), 2 * rng.randrange(4, 17)),
    ]
    names = ["k=1, d=4", "k=0 (no shift), d=8", "k=-3 (a shift back), d=8"]
    names.append(f"k={sizes[-1][0]}, d={sizes[-1][1]}")
    return [Case(name, (k, d), _shift(k, d)) for name, (k, d) in zip(names, sizes)]


def count_cases(rng: random.Random) -> list[Case]:
    import torch

    from ..attention import Transformer

    def case(name, sizes):
        n_src, n_tgt, d_model, n_heads, d_ff, n_enc, n_dec = sizes
        with torch.device("meta"):  # shapes only: no memory for the paper's sizes
            model = Transformer(n_src, n_tgt, d_model, n_heads, d_ff, n_enc, n_dec)
        count = sum(p.numel() for p in model.parameters())
        return Case(name, sizes, count, atol=0, rtol=0)

    V = rng.randrange(20, 200)
    return [
        case("the chapter's sizes, small vocabularies", (30, 40, 64, 4, 128, 2, 2)),
        case("the same with 8 heads", (30, 40, 64, 8, 128, 2, 2)),
        case("the paper's base model, 37,000 tokens", (37000, 37000, 512, 8, 2048, 6, 6)),
        case("an encoder deeper than its decoder", (V, V + 7, 32, 2, 96, 3, 1)),
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
        Question(
            "q5",
            "packed_causal_mask",
            3,
            "Two conditions must both hold for query t and key s: the key is not in the query's "
            "future (s <= t, the causal mask), and the two positions belong to the same document "
            "(compare doc_ids[b, t] with doc_ids[b, s] for every pair: index the ids once with a "
            "new axis for the queries and once with a new axis for the keys, and let "
            "broadcasting build the (B, T, T) table). Combine them with &, then add the heads "
            "axis: (B, 1, T, T).",
            packed_cases,
            "The mask of packed sequences",
            nudge="For one query, list the keys it may see: how many conditions does a key have "
            "to meet, and does the answer depend on the row of the batch?",
            mistakes=[
                Mistake(
                    "causal only",
                    "the plain causal mask (documents see their predecessors in the row)",
                    _mistake_causal_only,
                ),
                Mistake(
                    "documents only",
                    "the same-document mask without the causal one (each token sees its "
                    "document's future)",
                    _mistake_documents_only,
                ),
                Mistake(
                    "future in document",
                    "the same-document mask with the upper triangle (queries and keys swapped)",
                    _mistake_future_in_document,
                ),
                Mistake(
                    "or instead of and",
                    "combining the causal and the same-document masks with | instead of &",
                    _mistake_causal_or_document,
                ),
                Mistake(
                    "first document only",
                    "a padding-style mask that lets every query see only the row's first document",
                    _mistake_first_document_only,
                ),
                Mistake(
                    "no heads axis",
                    "the right mask without the heads axis, (B, T, T)",
                    _mistake_no_heads_axis,
                ),
            ],
        ),
        Question(
            "q6",
            "shift_matrix",
            3,
            "Columns 2i and 2i+1 of the encoding are (sin a, cos a) with a = p * w_i and "
            "w_i = 1 / 10000^(2i/d). Adding k to p adds b = k * w_i to the angle, and "
            "sin(a + b), cos(a + b) are linear in (sin a, cos a), with coefficients cos b and "
            "sin b. So M is block diagonal: one 2 x 2 rotation per pair, in rows and columns "
            "2i, 2i+1. The row vector is on the left: entry M[r, c] says how much of input "
            "column r goes into output column c.",
            shift_cases,
            "The shift of a positional encoding as a matrix",
            nudge="Write sin(a + b) and cos(a + b) in terms of sin a and cos a; which entries of "
            "M hold the four coefficients when the row vector multiplies from the left?",
            mistakes=[
                Mistake(
                    "transposed",
                    "the transposed matrix (it shifts a row vector back by k)",
                    _mistake_shift_transposed,
                ),
                Mistake(
                    "angle not times k",
                    "the angle w_i of a shift by 1, whatever k is",
                    _mistake_angle_not_times_k,
                ),
                Mistake(
                    "angle without frequency",
                    "the angle k for every pair (the frequencies w_i left out)",
                    _mistake_angle_without_frequency,
                ),
                Mistake(
                    "exponent i/d",
                    "the frequencies with the exponent i/d instead of 2i/d",
                    _mistake_shift_exponent_i_over_d,
                ),
                Mistake(
                    "halves layout",
                    "the rotation of Marian's layout (sines in the first half, cosines in the "
                    "second)",
                    _mistake_shift_halves,
                ),
                Mistake(
                    "cosines only",
                    "only the diagonal cos b (no sin b terms mixing each pair)",
                    _mistake_cosines_only,
                ),
            ],
        ),
        Question(
            "q7",
            "transformer_parameters",
            2,
            "Count one part at a time, each as a formula in the sizes: an embedding table of V "
            "rows has V * d_model numbers; an nn.Linear(a, b) has a * b weights and b biases; an "
            "nn.LayerNorm(d) has a gain and a bias of d each. Multi-head attention is four "
            "d_model -> d_model projections, whatever the number of heads (the heads split "
            "them, they do not multiply them). An encoder layer has one attention, a decoder "
            "layer two (self and cross) and a third norm. Add the two final norms and the "
            "output layer; the positional table is a buffer, not a parameter.",
            count_cases,
            "Predicting the parameter count",
            nudge="List every nn.Linear, nn.Embedding and nn.LayerNorm that the chapter's "
            "classes create, and how many times each appears for these sizes.",
            mistakes=[
                Mistake(
                    "no biases",
                    "counting the linear layers' weights without their biases",
                    _mistake_no_biases,
                ),
                Mistake(
                    "no cross-attention",
                    "decoder layers counted like encoder layers (no cross-attention or third norm)",
                    _mistake_no_cross_attention,
                ),
                Mistake(
                    "projections per head",
                    "four d_model x d_model projections for every head instead of four in all",
                    _mistake_projections_per_head,
                ),
                Mistake(
                    "positional table counted",
                    "counting the 64-row positional table, a buffer, as parameters",
                    _mistake_positional_table_counted,
                ),
                Mistake(
                    "final norms left out",
                    "leaving out the final enc_norm and dec_norm",
                    _mistake_final_norms_left_out,
                ),
                Mistake(
                    "norms left out",
                    "leaving out every LayerNorm's gain and bias",
                    _mistake_norms_left_out,
                ),
            ],
            forbidden=("parameters", "numel"),
        ),
    ]
