"""Chapter 4 questions: MLM masking, BERT's classification head, mean pooling, attention entropy,
the best valid answer span, token-tagging labels aligned to WordPiece pieces
(exercises/04_bert.ipynb)."""

from __future__ import annotations

import random

from ..checks import Case, Mistake, Question, randn

# Typical wrong answers, as code: feedback names the one a student's result equals.


def _masking(ids, special, vocab_size, mask_id, seed, **wrong):
    """The 80/10/10 rule, with one of the typical mistakes switched on by name."""
    import torch

    g = torch.Generator().manual_seed(seed)
    shape = ids.shape
    if wrong.get("random_ids_first"):
        random_ids = torch.randint(vocab_size, shape, generator=g)
    p = torch.full(shape, 0.15)
    if not wrong.get("special_chosen"):
        p = p.masked_fill(special, 0.0)
    chosen = torch.bernoulli(p, generator=g).bool()
    masked = torch.bernoulli(torch.full(shape, 0.8), generator=g).bool() & chosen
    randomised = torch.bernoulli(torch.full(shape, wrong.get("p_random", 0.5)), generator=g).bool()
    randomised &= chosen if wrong.get("random_over_masked") else chosen & ~masked
    if not wrong.get("random_ids_first"):
        random_ids = torch.randint(vocab_size, shape, generator=g)
    if wrong.get("ids_edited_in_place"):  # inputs = ids (no clone): ids changes under it
        inputs = ids
        inputs[masked] = mask_id
        inputs[randomised] = random_ids[randomised]
        labels = ids.clone()
    else:
        inputs, labels = ids.clone(), ids.clone()
        inputs[masked] = mask_id
        inputs[randomised] = random_ids[randomised]
    if wrong.get("labels_inverted"):
        labels[chosen] = -100
    elif not wrong.get("labels_everywhere"):
        labels[~chosen] = -100
    return inputs, labels


def _mistake_special_chosen(ids, special, vocab_size, mask_id, seed):
    return _masking(ids, special, vocab_size, mask_id, seed, special_chosen=True)


def _mistake_labels_everywhere(ids, special, vocab_size, mask_id, seed):
    return _masking(ids, special, vocab_size, mask_id, seed, labels_everywhere=True)


def _mistake_labels_inverted(ids, special, vocab_size, mask_id, seed):
    return _masking(ids, special, vocab_size, mask_id, seed, labels_inverted=True)


def _mistake_random_over_masked(ids, special, vocab_size, mask_id, seed):
    return _masking(ids, special, vocab_size, mask_id, seed, random_over_masked=True)


def _mistake_random_share(ids, special, vocab_size, mask_id, seed):
    return _masking(ids, special, vocab_size, mask_id, seed, p_random=0.1)


def _mistake_random_ids_first(ids, special, vocab_size, mask_id, seed):
    return _masking(ids, special, vocab_size, mask_id, seed, random_ids_first=True)


def _mistake_ids_edited_in_place(ids, special, vocab_size, mask_id, seed):
    return _masking(ids, special, vocab_size, mask_id, seed, ids_edited_in_place=True)


def _mistake_mean_pooled(hidden, pooler_w, pooler_b, w, b):
    import torch

    return torch.tanh(hidden.mean(1) @ pooler_w.T + pooler_b) @ w.T + b


def _mistake_no_tanh(hidden, pooler_w, pooler_b, w, b):
    return (hidden[:, 0] @ pooler_w.T + pooler_b) @ w.T + b


def _mistake_last_token(hidden, pooler_w, pooler_b, w, b):
    import torch

    return torch.tanh(hidden[:, -1] @ pooler_w.T + pooler_b) @ w.T + b


def _mistake_pooler_not_transposed(hidden, pooler_w, pooler_b, w, b):
    import torch

    return torch.tanh(hidden[:, 0] @ pooler_w + pooler_b) @ w.T + b


def _mistake_padding_averaged(hidden, mask):
    return hidden.mean(1)


def _mistake_divided_by_length(hidden, mask):
    return (hidden * mask[:, :, None]).sum(1) / hidden.shape[1]


def _mistake_sum_not_mean(hidden, mask):
    return (hidden * mask[:, :, None]).sum(1)


def _mistake_mask_not_broadcast(hidden, mask):
    return (hidden * mask).sum(1) / mask.sum(1)


def _entropy(weights, mask, log=None, queries="real", dim=-1, reduce="sum"):
    import torch

    log = log or (lambda w: torch.log(w.clamp(min=1e-12)))
    terms = -(weights * log(weights))
    h = terms.sum(dim) if reduce == "sum" else terms.mean(dim)  # (L, B, H, T)
    m = mask[None, :, None, :].to(h.dtype)
    if queries == "all":
        m = torch.ones_like(m)
    return (h * m).sum((1, 3)) / m.sum((1, 3))


def _mistake_log_of_zero(weights, mask):
    import torch

    return _entropy(weights, mask, log=torch.log)


def _mistake_log2(weights, mask):
    import torch

    return _entropy(weights, mask, log=lambda w: torch.log2(w.clamp(min=1e-12)))


def _mistake_padding_queries(weights, mask):
    return _entropy(weights, mask, queries="all")


def _mistake_sum_over_queries(weights, mask):
    return _entropy(weights, mask, dim=-2)


def _mistake_mean_over_keys(weights, mask):
    return _entropy(weights, mask, reduce="mean")


def _spans(start, end, context, max_len, wrong=""):
    """The best (start, end) of each row with one of the typical mistakes switched on by name."""
    import torch

    T = start.shape[1]
    if wrong.startswith("independent"):
        if wrong == "independent, context":
            start = start.masked_fill(~context, float("-inf"))
            end = end.masked_fill(~context, float("-inf"))
        return start.argmax(1), end.argmax(1)
    scores = start[:, :, None] + end[:, None, :]  # (B, T, T): [b, s, e]
    i = torch.arange(T)
    length = i[None, :] - i[:, None] + 1  # (T, T): e - s + 1
    if wrong == "end before start":
        ok = length.abs() <= max_len
    elif wrong == "no length limit":
        ok = length >= 1
    elif wrong == "one too long":
        ok = (length >= 1) & (length <= max_len + 1)
    else:
        ok = (length >= 1) & (length <= max_len)
    ok = ok[None]  # (1, T, T)
    if wrong != "question allowed":
        ok = ok & context[:, :, None] & context[:, None, :]  # (B, T, T)
    flat = scores.masked_fill(~ok, float("-inf")).flatten(1).argmax(1)  # (B,)
    if wrong == "swapped":
        return flat % T, flat // T
    return flat // T, flat % T


def _mistake_independent_argmax(start, end, context, max_len):
    return _spans(start, end, context, max_len, "independent, context")


def _mistake_independent_anywhere(start, end, context, max_len):
    return _spans(start, end, context, max_len, "independent, anywhere")


def _mistake_end_before_start(start, end, context, max_len):
    return _spans(start, end, context, max_len, "end before start")


def _mistake_no_length_limit(start, end, context, max_len):
    return _spans(start, end, context, max_len, "no length limit")


def _mistake_one_too_long(start, end, context, max_len):
    return _spans(start, end, context, max_len, "one too long")


def _mistake_question_allowed(start, end, context, max_len):
    return _spans(start, end, context, max_len, "question allowed")


def _mistake_span_from_flat_swapped(start, end, context, max_len):
    return _spans(start, end, context, max_len, "swapped")


_SPECIAL = ("[CLS]", "[SEP]", "[PAD]")


def _align(tokens, word_labels, wrong=""):
    labels, word = [], -1
    for i, token in enumerate(tokens):
        if token in _SPECIAL:
            labels.append(0 if wrong == "specials 0" else -100)
            continue
        if not token.startswith("##"):
            word += 1
            last = i + 1 == len(tokens) or not tokens[i + 1].startswith("##")
            if wrong == "last piece" and not last:
                labels.append(-100)
            else:
                labels.append(word_labels[word])
            continue
        last = i + 1 == len(tokens) or not tokens[i + 1].startswith("##")
        if wrong == "every piece" or (wrong == "last piece" and last):
            labels.append(word_labels[word])
        else:
            labels.append(0 if wrong == "pieces 0" else -100)
    return labels


def _mistake_every_piece_labelled(tokens, word_labels):
    return _align(tokens, word_labels, "every piece")


def _mistake_last_piece_labelled(tokens, word_labels):
    return _align(tokens, word_labels, "last piece")


def _mistake_specials_labelled_0(tokens, word_labels):
    return _align(tokens, word_labels, "specials 0")


def _mistake_pieces_labelled_0(tokens, word_labels):
    return _align(tokens, word_labels, "pieces 0")


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
    ids = torch.randint(
        5, 30, (3, 8), generator=torch.Generator().manual_seed(rng.randrange(2**31))
    )
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


def _qa_row(rng: random.Random, T: int, n_question: int, length: int):
    """Small random logits and the context mask of [CLS] question [SEP] context [SEP] [PAD]..."""
    import torch

    context = torch.zeros(T, dtype=torch.bool)
    context[n_question + 2 : n_question + 2 + length] = True
    return randn(rng, T, scale=0.5), randn(rng, T, scale=0.5), context


def span_cases(rng: random.Random) -> list[Case]:
    import torch

    def case(name, rows, max_len):
        start = torch.stack([r[0] for r in rows])  # (B, T)
        end = torch.stack([r[1] for r in rows])
        context = torch.stack([r[2] for r in rows])
        return Case(name, (start, end, context, max_len), _spans(start, end, context, max_len))

    T = 20
    # Each row plants peaks where one rule of a valid span decides (context starts at 5).
    rows = []
    for s_peak, e_peak in [(12, 8), (6, 16), (2, 3), (9, 9)]:
        start, end, context = _qa_row(rng, T, 3, 13)
        start[s_peak] += 6.0
        end[e_peak] += 6.0
        rows.append((start, end, context))
    cases = [case("peaks that break a rule: end before start, too long, in the question", rows, 5)]
    start, end, context = _qa_row(rng, T, 2, 14)
    start[6] += 6.0
    end[6 + 4] += 6.0  # a span of max_len + 1 tokens...
    end[6 + 3] += 4.0  # ...beats one of exactly max_len tokens, which must win
    cases.append(case("a span of exactly max_len tokens is allowed", [(start, end, context)], 4))
    B, T = 6, 24
    rows = [_qa_row(rng, T, rng.randrange(1, 6), rng.randrange(8, 16)) for _ in range(B)]
    rows = [(3 * s, 3 * e, c) for s, e, c in rows]
    cases.append(case("a random batch", rows, 3))
    return cases


def align_cases(rng: random.Random) -> list[Case]:
    sentences = [
        ("one word per token", ["[CLS]", "paris", "is", "in", "france", "[SEP]"], [0, 0, 0, 3]),
        (
            "words split into pieces",
            ["[CLS]", "em", "##bed", "##ding", "##s", "help", "jo", "##hann", "[SEP]"],
            [0, 0, 1],
        ),
        (
            "a padded sentence",
            ["[CLS]", "berlin", "'", "s", "zoo", "##s", "[SEP]", "[PAD]", "[PAD]"],
            [3, 0, 0, 0],
        ),
    ]
    cases = [
        Case(name, (tokens, labels), _align(tokens, labels)) for name, tokens, labels in sentences
    ]
    words = [[rng.choice(["bert", "ber", "lin", "go", "ethe", "st"])] for _ in range(6)]
    tokens = ["[CLS]"]
    for word in words:
        tokens += [word[0]] + [
            "##" + rng.choice(["s", "ing", "er", "ne"]) for _ in range(rng.randrange(3))
        ]
    tokens += ["[SEP]", "[PAD]"]
    labels = [rng.randrange(5) for _ in words]
    cases.append(Case("a random sentence", (tokens, labels), _align(tokens, labels)))
    return cases


def questions() -> list[Question]:
    return [
        Question(
            "q1",
            "mask_tokens",
            4,
            "Make one generator from the seed and make every draw from it, exactly in the order "
            "the question lists: the choice (probability 0 at special positions), the 80% for "
            "[MASK], the half of the rest for random tokens (which must exclude the positions "
            "already masked), then the random ids for every position. Work on copies of ids: the "
            "labels keep the original id where a position was chosen and -100 everywhere else.",
            masking_cases,
            "Masking with the 80/10/10 rule",
            nudge="Compare your draws with the four steps of the question: same order, same "
            "probabilities, same masks combined.",
            mistakes=[
                Mistake(
                    "special tokens chosen",
                    "choosing special positions too",
                    _mistake_special_chosen,
                ),
                Mistake(
                    "labels everywhere",
                    "labels that keep every id instead of -100 at the positions not chosen",
                    _mistake_labels_everywhere,
                ),
                Mistake(
                    "labels inverted",
                    "-100 at the chosen positions instead of the others",
                    _mistake_labels_inverted,
                ),
                Mistake(
                    "random over masked",
                    "random tokens drawn among all chosen positions (masked ones included)",
                    _mistake_random_over_masked,
                ),
                Mistake(
                    "random share 0.1",
                    "drawing the random tokens with probability 0.1 instead of half of the rest",
                    _mistake_random_share,
                ),
                Mistake(
                    "random ids first",
                    "drawing the random ids before the choices",
                    _mistake_random_ids_first,
                ),
                Mistake(
                    "ids edited in place",
                    "editing ids in place (inputs = ids, no .clone()), so that the labels copy "
                    "the [MASK] and random ids instead of the original ones",
                    _mistake_ids_edited_in_place,
                ),
            ],
            returns=("inputs", "labels"),
        ),
        Question(
            "q2",
            "classify_cls",
            2,
            "[CLS] is the first token of every sentence, so its vectors are hidden[:, 0], shape "
            "(B, C). A linear layer with weights of shape (out, in) computes x W^T + b, so transpose "
            "both weight matrices. The pooler is linear then tanh; the classifier is linear only.",
            head_cases,
            "[CLS] pooling and a classification head",
            nudge="Which token's vector does the pooler read, and which layer has the tanh?",
            mistakes=[
                Mistake(
                    "mean pooled",
                    "the mean of all token vectors instead of the [CLS] vector",
                    _mistake_mean_pooled,
                ),
                Mistake("no tanh", "the pooler without its tanh", _mistake_no_tanh),
                Mistake(
                    "last token", "the last token's vector instead of [CLS]", _mistake_last_token
                ),
                Mistake(
                    "pooler not transposed",
                    "the pooler's weights used without transposing them",
                    _mistake_pooler_not_transposed,
                ),
            ],
        ),
        Question(
            "q3",
            "mean_pool",
            2,
            "The mask is (B, T) and hidden (B, T, C): give the mask a last axis of size 1 (as a "
            "float) so that it zeroes the padded token vectors. Sum over the token axis, then "
            "divide by each sentence's number of real tokens, which is a sum of its mask, not T.",
            mean_pool_cases,
            "Mean pooling without the padding",
            nudge="Zero the padding, then divide by how many real tokens each sentence has.",
            mistakes=[
                Mistake(
                    "padding averaged",
                    "the mean over all positions (padding included)",
                    _mistake_padding_averaged,
                ),
                Mistake(
                    "divided by T",
                    "dividing the masked sum by the padded length T instead of the real length",
                    _mistake_divided_by_length,
                ),
                Mistake(
                    "sum not mean", "the masked sum without the division", _mistake_sum_not_mean
                ),
                Mistake(
                    "mask not broadcast",
                    "multiplying by the (B, T) mask without a feature axis",
                    _mistake_mask_not_broadcast,
                ),
            ],
        ),
        Question(
            "q4",
            "attention_entropy",
            2,
            "Each query's distribution is the last axis (keys); its entropy uses the natural log. "
            "Weights of exactly 0 (padded keys) make log give -inf and 0 * -inf NaN: clamp the "
            "weights to a tiny positive number inside the log. Then average over the batch and "
            "query axes, counting only real query tokens: a (B, T) mask reshaped to broadcast "
            "against (L, B, H, T), its sum as the divisor.",
            entropy_cases,
            "Attention entropy per head",
            nudge="What does log(0) give, and which positions should the average skip?",
            mistakes=[
                Mistake(
                    "log of 0",
                    "log of the raw weights (0 * log 0 is NaN)",
                    _mistake_log_of_zero,
                ),
                Mistake("log base 2", "entropy in bits (log base 2)", _mistake_log2),
                Mistake(
                    "padding queries",
                    "averaging over every query (padded ones included)",
                    _mistake_padding_queries,
                ),
                Mistake(
                    "over queries",
                    "summing over the queries (axis -2) instead of the keys",
                    _mistake_sum_over_queries,
                ),
                Mistake(
                    "mean over keys",
                    "the mean of -w log w over the keys instead of its sum",
                    _mistake_mean_over_keys,
                ),
            ],
        ),
        Question(
            "q5",
            "best_span",
            3,
            "Score every pair at once: start[:, :, None] + end[:, None, :] is (B, T, T), indexed "
            "[row, start, end]. Build a (T, T) table of the allowed pairs from an arange: end >= "
            "start and end - start + 1 <= max_len; combine it with the context mask on both the "
            "start axis and the end axis. Set the rest to -inf, flatten the last two axes, take "
            "the argmax, and turn the flat index back into (start, end) with // T and % T.",
            span_cases,
            "The best valid answer span",
            nudge="List the three rules a span must keep; then for each failing row, which rule "
            "does your (start, end) break, or which allowed pair scores higher?",
            mistakes=[
                Mistake(
                    "independent argmax",
                    "the argmax of the start and the argmax of the end, each over the context, "
                    "chosen apart",
                    _mistake_independent_argmax,
                ),
                Mistake(
                    "independent argmax anywhere",
                    "the argmax of the start and of the end over every token, chosen apart",
                    _mistake_independent_anywhere,
                ),
                Mistake(
                    "end before start",
                    "pairs whose end comes before their start allowed",
                    _mistake_end_before_start,
                ),
                Mistake(
                    "no length limit",
                    "no length limit on the span",
                    _mistake_no_length_limit,
                ),
                Mistake(
                    "one too long",
                    "spans of max_len + 1 tokens allowed (end - start <= max_len)",
                    _mistake_one_too_long,
                ),
                Mistake(
                    "question allowed",
                    "spans that may start or end outside the context (in the question or on a "
                    "special token)",
                    _mistake_question_allowed,
                ),
                Mistake(
                    "flat index swapped",
                    "the flat index turned back as (index % T, index // T), start and end swapped",
                    _mistake_span_from_flat_swapped,
                ),
            ],
            returns=("starts", "ends"),
        ),
        Question(
            "q6",
            "align_labels",
            2,
            "Walk through the tokens with a counter of the words seen so far. A special token "
            "gets -100 and does not count. A token without '##' starts the next word: it gets "
            "that word's label. A token with '##' continues the current word: -100, so that "
            "the loss counts each word once.",
            align_cases,
            "Token-tagging labels on WordPiece pieces",
            nudge="How many labels does one word get, on which of its pieces, and what do the "
            "special tokens get?",
            mistakes=[
                Mistake(
                    "every piece labelled",
                    "the word's label on every one of its pieces",
                    _mistake_every_piece_labelled,
                ),
                Mistake(
                    "last piece labelled",
                    "the word's label on its last piece instead of its first",
                    _mistake_last_piece_labelled,
                ),
                Mistake(
                    "special tokens labelled 0",
                    "label 0 on [CLS], [SEP] and [PAD] instead of -100",
                    _mistake_specials_labelled_0,
                ),
                Mistake(
                    "pieces labelled 0",
                    "label 0 on the continuation pieces instead of -100",
                    _mistake_pieces_labelled_0,
                ),
            ],
        ),
    ]
