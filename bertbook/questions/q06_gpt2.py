"""Chapter 6 questions: causal attention, top-k with a k per row, top-p with a minimum, perplexity,
attention over a KV cache, min-p (exercises/06_gpt2.ipynb)."""

from __future__ import annotations

import random

from ..checks import Case, Mistake, Question, randn

# Typical wrong answers, as code: feedback names the one a student's result equals.


def _causal(q, k, v, scale=None, allowed="tril", after_softmax=False):
    import torch

    T = q.shape[-2]
    scores = q @ k.transpose(-2, -1) * (q.shape[-1] ** -0.5 if scale is None else scale)
    ones = torch.ones(T, T, dtype=torch.bool)
    mask = {
        "tril": ones.tril(),
        "tril(-1)": ones.tril(-1),
        "inverted": ~ones.tril(),
        "none": ones,
        "triu": ones.triu(),
    }[allowed]
    if after_softmax:
        return (torch.softmax(scores, dim=-1) * mask) @ v
    return torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1) @ v


def _mistake_no_scale(q, k, v):
    return _causal(q, k, v, scale=1.0)


def _mistake_divided_by_d(q, k, v):
    return _causal(q, k, v, scale=1 / q.shape[-1])


def _mistake_diagonal_excluded(q, k, v):
    return _causal(q, k, v, allowed="tril(-1)")


def _mistake_mask_inverted(q, k, v):
    return _causal(q, k, v, allowed="inverted")


def _mistake_no_mask(q, k, v):
    return _causal(q, k, v, allowed="none")


def _mistake_upper_triangle(q, k, v):
    return _causal(q, k, v, allowed="triu")


def _mistake_masked_after_softmax(q, k, v):
    return _causal(q, k, v, after_softmax=True)


def _top_k(logits, k, offset=0, strict=True, fill=float("-inf"), descending=True):
    """Each row b keeps its k[b] largest values; k is a (B,) integer tensor."""
    ordered = logits.sort(dim=-1, descending=descending).values  # (B, V)
    index = (k - 1 + offset).clamp(max=logits.shape[-1] - 1)[:, None]  # (B, 1)
    kth = ordered.gather(-1, index)  # (B, 1): each row's own threshold
    if not descending:
        return logits.masked_fill(logits > kth, fill)
    return logits.masked_fill(logits < kth if strict else logits <= kth, fill)


def _mistake_k_plus_one(logits, k):
    return _top_k(logits, k, offset=1)


def _mistake_k_minus_one(logits, k):
    return _top_k(logits, k, strict=False)


def _mistake_zeros_not_inf(logits, k):
    return _top_k(logits, k, fill=0.0)


def _mistake_no_trailing_axis(logits, k):
    ordered = logits.sort(dim=-1, descending=True).values
    kth = ordered[range(len(k)), k - 1]  # (B,): no axis to broadcast over the row
    return logits.masked_fill(logits < kth, float("-inf"))


def _mistake_k_smallest(logits, k):
    return _top_k(logits, k, descending=False)


def _mistake_largest_k_everywhere(logits, k):
    kth = logits.topk(int(k.max()), dim=-1).values[..., -1:]  # one k for every row
    return logits.masked_fill(logits < kth, float("-inf"))


def _mistake_vocabulary_index(logits, k):
    kth = logits.gather(-1, (k - 1)[:, None])  # the logit of token k - 1, unsorted
    return logits.masked_fill(logits < kth, float("-inf"))


def _sorted_removal(logits, p, min_keep, rule="before", descending=True, keep_first=True):
    """The sorted logits, the order, and the removal decided in sorted order."""
    import torch

    sorted_logits, order = logits.sort(dim=-1, descending=descending)
    probs = torch.softmax(sorted_logits, dim=-1)
    cum = probs.cumsum(-1)
    remove = cum - probs >= p if rule == "before" else cum > p
    if keep_first:
        remove[..., :min_keep] = False  # the min_keep most likely always stay
    return sorted_logits, order, remove


def _unsort(remove, order):
    return remove.scatter(-1, order, remove)


def _mistake_crossing_token_removed(logits, p, min_keep):
    _, order, remove = _sorted_removal(logits, p, min_keep, rule="after")
    return logits.masked_fill(_unsort(remove, order), float("-inf"))


def _mistake_not_scattered(logits, p, min_keep):
    _, _, remove = _sorted_removal(logits, p, min_keep)
    return logits.masked_fill(remove, float("-inf"))


def _mistake_sorted_order_returned(logits, p, min_keep):
    sorted_logits, _, remove = _sorted_removal(logits, p, min_keep)
    return sorted_logits.masked_fill(remove, float("-inf"))


def _mistake_unsorted_cumsum(logits, p, min_keep):
    import torch

    probs = torch.softmax(logits, dim=-1)
    remove = probs.cumsum(-1) - probs >= p
    remove[..., :min_keep] = False
    return logits.masked_fill(remove, float("-inf"))


def _mistake_ascending_sort(logits, p, min_keep):
    _, order, remove = _sorted_removal(logits, p, min_keep, descending=False)
    return logits.masked_fill(_unsort(remove, order), float("-inf"))


def _mistake_min_keep_ignored(logits, p, min_keep):
    _, order, remove = _sorted_removal(logits, p, min_keep, keep_first=False)
    return logits.masked_fill(_unsort(remove, order), float("-inf"))


def _mistake_min_keep_in_vocabulary_order(logits, p, min_keep):
    _, order, remove = _sorted_removal(logits, p, min_keep, keep_first=False)
    remove = _unsort(remove, order)
    remove[..., :min_keep] = False  # the first tokens of the vocabulary, not the likeliest
    return logits.masked_fill(remove, float("-inf"))


def _token_losses(logits, targets):
    import torch.nn.functional as F

    return F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="none")


def _mistake_base_two(logits, targets):
    return (2 ** _token_losses(logits, targets).mean()).item()


def _mistake_mean_of_perplexities(logits, targets):
    return _token_losses(logits, targets).exp().mean().item()


def _mistake_summed_loss(logits, targets):
    return _token_losses(logits, targets).sum().exp().item()


def _mistake_loss_not_exp(logits, targets):
    return _token_losses(logits, targets).mean().item()


def _mistake_tensor_not_float(logits, targets):
    return _token_losses(logits, targets).mean().exp()  # a 0-d tensor, not a Python float


def _mistake_not_flattened(logits, targets):
    import torch.nn.functional as F

    return F.cross_entropy(logits, targets).exp().item()  # reads axis 1 (time) as the classes


def _cached(q, k, v, allowed):
    """Attention of the Tq new queries over Tk keys, the first Tk - Tq of them cached; allowed is
    the boolean (Tq, Tk) mask, or a function of (query position, key position) absolute."""
    import torch

    Tq, Tk = q.shape[-2], k.shape[-2]
    if callable(allowed):
        pos_q = torch.arange(Tk - Tq, Tk)[:, None]  # (Tq, 1): absolute positions
        pos_k = torch.arange(Tk)[None, :]  # (1, Tk)
        allowed = allowed(pos_q, pos_k)
    scores = q @ k.transpose(-2, -1) * q.shape[-1] ** -0.5  # (B, nh, Tq, Tk)
    return torch.softmax(scores.masked_fill(~allowed, float("-inf")), dim=-1) @ v


def _in_window(window):
    return lambda pq, pk: (pk <= pq) & (pk > pq - (window or pq.max() + 1))


def _mistake_top_left(q, k, v, window=None):
    # the triangle aligned top-left (query i sees keys 0..i), as is_causal=True aligns it
    return _cached(q, k, v, lambda pq, pk: _in_window(window)(pq - pq[0, 0], pk))


def _mistake_cache_ignored(q, k, v, window=None):
    Tq = q.shape[-2]
    return _cached(q, k[..., -Tq:, :], v[..., -Tq:, :], _in_window(window))


def _mistake_own_key_hidden(q, k, v, window=None):
    return _cached(q, k, v, lambda pq, pk: _in_window(window)(pq - 1, pk))


def _mistake_window_one_wider(q, k, v, window=None):
    return _cached(q, k, v, _in_window(window and window + 1))


def _mistake_window_ignored(q, k, v, window=None):
    return _cached(q, k, v, _in_window(None))


def _mistake_window_from_first_query(q, k, v, window=None):
    def allowed(pq, pk):  # the window's start counted from the new queries' own index
        first = pq - pq[0, 0]
        return (pk <= pq) & (pk > first - (window or pq.max() + 1))

    return _cached(q, k, v, allowed)


def _mistake_cached_no_scale(q, k, v, window=None):
    return _cached(q, k * q.shape[-1] ** 0.5, v, _in_window(window))


def _min_p(logits, p_min, probs_fn=None, threshold="scaled", fill=float("-inf"), per_row=True):
    import torch

    probs = (probs_fn or (lambda x: torch.softmax(x, dim=-1)))(logits)
    top = probs.amax(dim=-1, keepdim=True) if per_row else probs.max()
    bar = {"scaled": p_min * top, "absolute": p_min}[threshold]
    return logits.masked_fill(probs < bar, fill)


def _mistake_absolute_threshold(logits, p_min):
    return _min_p(logits, p_min, threshold="absolute")


def _mistake_logits_as_probabilities(logits, p_min):
    return _min_p(logits, p_min, probs_fn=lambda x: x)


def _mistake_min_p_zeros(logits, p_min):
    return _min_p(logits, p_min, fill=0.0)


def _mistake_one_top_for_the_batch(logits, p_min):
    return _min_p(logits, p_min, per_row=False)


def _mistake_softmax_over_batch(logits, p_min):
    import torch

    return _min_p(logits, p_min, probs_fn=lambda x: torch.softmax(x, dim=0))


def _mistake_probabilities_returned(logits, p_min):
    import torch

    probs = torch.softmax(logits, dim=-1)
    return probs.masked_fill(probs < p_min * probs.amax(-1, keepdim=True), 0.0)


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
    import torch
    from transformers.generation.logits_process import TopKLogitsWarper

    cases = []
    for name, shape, ks in [
        ("k = 1 and 3", (2, 10), [1, 3]),
        ("the same k = 5 in every row", (3, 50), [5, 5, 5]),
        ("k from 2 to 40, one per row", (4, 100), [rng.randrange(2, 41) for _ in range(4)]),
        ("k = V keeps a whole row", (2, 12), [12, 2]),
    ]:
        x = randn(rng, *shape, scale=3.0)
        expected = torch.cat(
            [TopKLogitsWarper(k)(None, row[None].clone()) for row, k in zip(x, ks)]
        )
        cases.append(Case(name, (x, torch.tensor(ks)), expected))
    return cases


def top_p_cases(rng: random.Random) -> list[Case]:
    from transformers.generation.logits_process import TopPLogitsWarper

    def case(name, x, p, min_keep):
        return Case(
            name,
            (x, p, min_keep),
            TopPLogitsWarper(p, min_tokens_to_keep=min_keep)(None, x.clone()),
        )

    cases = []
    for p, min_keep in ((0.3, 1), (0.9, 3), (round(rng.uniform(0.5, 0.95), 2), 5)):
        x = randn(rng, 4, 60, scale=2.0)
        cases.append(case(f"p = {p}, min_keep = {min_keep}", x, p, min_keep))
    peaked = randn(rng, 2, 30)
    peaked[:, 7] = 20.0  # one token holds almost all the mass
    cases.append(case("a sure model keeps only its top token", peaked, 0.9, 1))
    cases.append(case("min_keep = 4 overrides a sure model", peaked, 0.9, 4))
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
                python_number=True,
            )
        )
    uniform = torch.zeros(2, 5, 37)
    cases.append(
        Case(
            "a uniform model over 37 tokens has perplexity 37",
            (uniform, torch.zeros(2, 5, dtype=torch.long)),
            37.0,
            python_number=True,
        )
    )
    return cases


def cached_cases(rng: random.Random) -> list[Case]:
    import torch
    import torch.nn.functional as F

    cases = []
    for name, (B, nh, Tq, m, hs), window in [
        ("no cache: plain causal attention", (1, 2, 5, 0, 8), None),
        ("3 new queries after a cache of 5", (2, 2, 3, 5, 8), None),
        ("one new query (a decoding step) after a cache of 9", (1, 4, 1, 9, 16), None),
        ("a window of 4: 3 new queries after a cache of 6", (2, 2, 3, 6, 8), 4),
        ("a window of 1: each query sees only its own key", (1, 1, 4, 5, 8), 1),
    ]:
        q = randn(rng, B, nh, Tq, hs)
        k, v = randn(rng, B, nh, m + Tq, hs), randn(rng, B, nh, m + Tq, hs)
        pos_q = torch.arange(m, m + Tq)[:, None]  # (Tq, 1): the queries' absolute positions
        pos_k = torch.arange(m + Tq)[None, :]  # (1, Tk)
        allowed = pos_k <= pos_q
        if window is not None:
            allowed &= pos_k > pos_q - window
        expected = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
        cases.append(Case(name, (q, k, v, window), expected))
    return cases


def min_p_cases(rng: random.Random) -> list[Case]:
    from transformers.generation.logits_process import MinPLogitsWarper

    cases = []
    for p_min, shape, scale in [
        (0.1, (3, 50), 2.0),
        (0.05, (4, 100), 3.0),
        (round(rng.uniform(0.02, 0.3), 3), (2, 200), 2.5),
    ]:
        x = randn(rng, *shape, scale=scale)
        cases.append(Case(f"p_min = {p_min}", (x, p_min), MinPLogitsWarper(p_min)(None, x.clone())))
    peaked = randn(rng, 2, 30)
    peaked[:, 3] = 20.0  # one token holds almost all the mass
    cases.append(
        Case(
            "a sure model keeps only its top token",
            (peaked, 0.1),
            MinPLogitsWarper(0.1)(None, peaked.clone()),
        )
    )
    return cases


def questions() -> list[Question]:
    return [
        Question(
            "q1",
            "causal_attention",
            3,
            "Scores: each query times each key (transpose the last two axes of k), divided by "
            "sqrt(d). The allowed pairs form a boolean (T, T) lower triangle, diagonal included "
            "(Exercise 2's causal mask); it broadcasts over batch and heads. Set the other scores "
            "to -inf before the softmax over the keys, then multiply the weights by v.",
            causal_cases,
            "Causal self-attention",
            nudge="Which key positions may query t see, and did you scale the scores?",
            mistakes=[
                Mistake("no scale", "attention without the 1/sqrt(d) scale", _mistake_no_scale),
                Mistake(
                    "divided by d",
                    "dividing the scores by d instead of sqrt(d)",
                    _mistake_divided_by_d,
                ),
                Mistake(
                    "diagonal excluded",
                    "a mask that also hides each position from itself",
                    _mistake_diagonal_excluded,
                ),
                Mistake(
                    "mask inverted",
                    "the mask inverted (each position sees only the future)",
                    _mistake_mask_inverted,
                ),
                Mistake("no mask", "attention without the causal mask", _mistake_no_mask),
                Mistake(
                    "upper triangle",
                    "the upper triangle as the allowed positions",
                    _mistake_upper_triangle,
                ),
                Mistake(
                    "masked after softmax",
                    "zeroing the future after the softmax (rows no longer sum to 1)",
                    _mistake_masked_after_softmax,
                ),
            ],
            forbidden=("scaled_dot_product_attention",),
        ),
        Question(
            "q2",
            "top_k_per_row",
            2,
            "topk takes one k for the whole batch, so sort each row in descending order instead: "
            "row b's k-th largest value sits at index k[b] - 1 of its sorted row. Pick it with "
            "gather and an index of shape (B, 1), which keeps a trailing axis so that the "
            "threshold broadcasts over its row. Values strictly below it become -inf; the k-th "
            "itself stays. The result has the logits' shape.",
            top_k_cases,
            "Top-k filtering, a k per row",
            nudge="Each row has its own k: is each row's threshold the k-th largest of that row, "
            "shaped to broadcast over it?",
            mistakes=[
                Mistake("k + 1 kept", "keeping k + 1 values per row", _mistake_k_plus_one),
                Mistake(
                    "k - 1 kept",
                    "removing values equal to the k-th too (k - 1 kept)",
                    _mistake_k_minus_one,
                ),
                Mistake(
                    "zeros not -inf",
                    "setting the others to 0 instead of -inf",
                    _mistake_zeros_not_inf,
                ),
                Mistake(
                    "no trailing axis",
                    "comparing the (B, V) logits with the (B,) k-th values, without a trailing "
                    "axis (keepdim) to broadcast over each row",
                    _mistake_no_trailing_axis,
                ),
                Mistake("k smallest", "keeping the k smallest values", _mistake_k_smallest),
                Mistake(
                    "largest k everywhere",
                    "one topk with the largest k for every row",
                    _mistake_largest_k_everywhere,
                ),
                Mistake(
                    "vocabulary index",
                    "the logit at vocabulary position k - 1 as the threshold (the row not sorted)",
                    _mistake_vocabulary_index,
                ),
            ],
        ),
        Question(
            "q3",
            "nucleus_filter",
            3,
            "Sort each row in descending order (keep the indices), take the softmax of the sorted "
            "logits and its running sum. A token is removed when the mass of the tokens ranked "
            "above it already reaches p: compare the running sum minus the token's own "
            "probability, so that the token that crosses p stays. The first min_keep columns of "
            "the sorted order (the likeliest tokens) are never removed: clear them in the sorted "
            "decision, then scatter it back to the vocabulary order with the indices before "
            "masking.",
            top_p_cases,
            "Top-p (nucleus) filtering with a minimum",
            nudge="Is the token that carries the mass past p kept, are your min_keep tokens the "
            "likeliest ones, and is your mask in sorted order or the original one?",
            mistakes=[
                Mistake(
                    "crossing token removed",
                    "removing every token whose running sum exceeds p (the one that crosses p too)",
                    _mistake_crossing_token_removed,
                ),
                Mistake(
                    "not scattered back",
                    "the removal decided in sorted order applied to the unsorted logits",
                    _mistake_not_scattered,
                ),
                Mistake(
                    "sorted order returned",
                    "the filtered logits left in sorted order",
                    _mistake_sorted_order_returned,
                ),
                Mistake(
                    "unsorted running sum",
                    "a running sum of the probabilities in vocabulary order (unsorted)",
                    _mistake_unsorted_cumsum,
                ),
                Mistake(
                    "ascending sort",
                    "sorting in ascending order (the least likely tokens kept)",
                    _mistake_ascending_sort,
                ),
                Mistake(
                    "min_keep ignored",
                    "the nucleus without its minimum of min_keep tokens",
                    _mistake_min_keep_ignored,
                ),
                Mistake(
                    "min_keep in vocabulary order",
                    "keeping the first min_keep tokens of the vocabulary instead of the likeliest",
                    _mistake_min_keep_in_vocabulary_order,
                ),
            ],
        ),
        Question(
            "q4",
            "perplexity",
            2,
            "F.cross_entropy wants the classes on axis 1 of 2-D logits: flatten batch and time "
            "into one axis, for the targets too. Its default mean over all B * T tokens, in nats, "
            "is the mean negative log-probability; perplexity is e to that power (not 2: the log "
            "was natural). Return a Python float.",
            perplexity_cases,
            "Perplexity from logits",
            nudge="Mean first, then the exponential, in the same base as the log; a Python float.",
            mistakes=[
                Mistake(
                    "base 2",
                    "2 to the power of a loss in nats (mixed log bases)",
                    _mistake_base_two,
                ),
                Mistake(
                    "mean of perplexities",
                    "the mean of per-token perplexities instead of exp of the mean loss",
                    _mistake_mean_of_perplexities,
                ),
                Mistake("summed loss", "exp of the summed loss", _mistake_summed_loss),
                Mistake(
                    "tensor not float",
                    "returning the 0-d tensor instead of a Python float (.item())",
                    _mistake_tensor_not_float,
                ),
                Mistake(
                    "loss not exp", "the mean loss without the exponential", _mistake_loss_not_exp
                ),
                Mistake(
                    "not flattened",
                    "F.cross_entropy on the (B, T, vocab) logits unflattened (axis 1 read as "
                    "the classes)",
                    _mistake_not_flattened,
                ),
            ],
        ),
        Question(
            "q5",
            "cached_attention",
            3,
            "The Tk - Tq keys before the new ones are the cache, so the new query i sits at "
            "absolute position (Tk - Tq) + i, and key j at position j. Build the (Tq, Tk) boolean "
            "mask from those positions: key j is allowed when it is not after the query and, with "
            "a window w, when it is one of the query's last w positions (its own included), "
            "i.e. more than w positions back is too far. Mask before the softmax, scale by "
            "1/sqrt(d) as in Question 1.",
            cached_cases,
            "Attention for new queries over a KV cache",
            nudge="Where does new query i sit in the whole sequence, and how many keys does a "
            "window of w leave it?",
            mistakes=[
                Mistake(
                    "triangle top-left",
                    "the causal triangle aligned top-left (new query i sees keys 0..i, as "
                    "is_causal=True aligns it when there are fewer queries than keys)",
                    _mistake_top_left,
                ),
                Mistake(
                    "cache ignored",
                    "attending over the new keys only (the cache left out)",
                    _mistake_cache_ignored,
                ),
                Mistake(
                    "own key hidden",
                    "an offset one too small (each query sees the keys before it, not its own)",
                    _mistake_own_key_hidden,
                ),
                Mistake(
                    "window one wider",
                    "a window of w + 1 keys (the query's own key and w before it)",
                    _mistake_window_one_wider,
                ),
                Mistake("window ignored", "the window ignored", _mistake_window_ignored),
                Mistake(
                    "window from the first new query",
                    "the window's start counted from the new queries' own index, not their "
                    "position after the cache",
                    _mistake_window_from_first_query,
                ),
                Mistake(
                    "no scale",
                    "attention without the 1/sqrt(d) scale",
                    _mistake_cached_no_scale,
                ),
            ],
        ),
        Question(
            "q6",
            "min_p_filter",
            2,
            "Turn each row's logits into probabilities (softmax over the vocabulary), find each "
            "row's largest probability (keep a trailing axis so it broadcasts over the row), and "
            "remove the tokens whose probability is below p_min times it. Removed tokens get -inf "
            "in the logits you return; the top token always stays.",
            min_p_cases,
            "Min-p filtering",
            nudge="The bar is relative: p_min times which probability, of which row?",
            mistakes=[
                Mistake(
                    "absolute threshold",
                    "a bar of p_min itself, not p_min times the top probability",
                    _mistake_absolute_threshold,
                ),
                Mistake(
                    "logits as probabilities",
                    "comparing the logits with p_min times the top logit (no softmax)",
                    _mistake_logits_as_probabilities,
                ),
                Mistake(
                    "zeros not -inf",
                    "setting the others to 0 instead of -inf",
                    _mistake_min_p_zeros,
                ),
                Mistake(
                    "one top for the batch",
                    "one top probability for the whole batch instead of each row",
                    _mistake_one_top_for_the_batch,
                ),
                Mistake(
                    "softmax over the batch",
                    "a softmax over the batch axis instead of the vocabulary",
                    _mistake_softmax_over_batch,
                ),
                Mistake(
                    "probabilities returned",
                    "returning the filtered probabilities instead of the logits",
                    _mistake_probabilities_returned,
                ),
            ],
        ),
    ]
