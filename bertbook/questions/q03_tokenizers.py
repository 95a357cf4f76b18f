"""Chapter 3 questions: counting pairs, one merge, longest match first, GPT-2's byte map
(exercises/03_tokenizers.ipynb)."""

from __future__ import annotations

import random
from collections import Counter

from ..checks import Case, Question

# The chapter's own functions, checked against the libraries in tests/test_tokenization.py.
from ..tokenization import merge_pair, wordpiece_word

_LETTERS = "abcdeilnorstw"


def _word(rng: random.Random) -> list[str]:
    return list("".join(rng.choice(_LETTERS) for _ in range(rng.randrange(1, 9))))


def _pairs(word_counts):
    counts = Counter()
    for symbols, n in word_counts:
        for pair in zip(symbols, symbols[1:]):
            counts[pair] += n
    return dict(counts)


def count_pairs_cases(rng: random.Random) -> list[Case]:
    sennrich = [[list("low"), 5], [list("lower"), 2], [list("newest"), 6], [list("widest"), 3]]
    merged = [
        [["l", "o", "w"], 5],
        [["l", "o", "w", "e", "r"], 2],
        [["n", "e", "w", "es", "t"], 6],
        [["w", "i", "d", "es", "t"], 3],
    ]
    rand = [[_word(rng), rng.randrange(1, 20)] for _ in range(30)]
    return [
        Case("Sennrich et al.'s example", (sennrich,), _pairs(sennrich)),
        Case("after merging ('e', 's')", (merged,), _pairs(merged)),
        Case(
            "a repeated pair inside one word counts twice", ([[list("aaaa"), 3]],), {("a", "a"): 9}
        ),
        Case("random words", (rand,), _pairs(rand)),
    ]


def merge_cases(rng: random.Random) -> list[Case]:
    cases = [
        Case("one occurrence", (list("newest"), ("e", "s")), list("new") + ["es", "t"]),
        Case("overlapping occurrences merge left to right", (list("aaa"), ("a", "a")), ["aa", "a"]),
        Case("no occurrence leaves the word alone", (list("low"), ("x", "y")), list("low")),
        Case("merged symbols merge again", (["th", "e", "th", "e"], ("th", "e")), ["the", "the"]),
    ]
    word = _word(rng) * 3
    pair = (word[0], word[1]) if len(word) > 1 else (word[0], word[0])
    cases.append(Case("a random word", (word, pair), merge_pair(word, pair)))
    return cases


def longest_match_cases(rng: random.Random) -> list[Case]:
    vocab = [
        "token",
        "tok",
        "##en",
        "##ization",
        "##iz",
        "##ation",
        "un",
        "##believ",
        "##able",
        "play",
        "##ing",
        "##s",
        "a",
        "##a",
    ]
    words = ["tokenization", "token", "unbelievable", "playings", "plays", "xylophone", "aaa"]
    cases = [Case(f"'{w}'", (w, vocab), wordpiece_word(w, vocab)) for w in words]
    extra = "".join(rng.choice(["play", "ing", "s", "a"]) for _ in range(rng.randrange(2, 5)))
    cases.append(Case("a random word", (extra, vocab), wordpiece_word(extra, vocab)))
    return cases


def byte_map_cases(rng: random.Random) -> list[Case]:
    from transformers.convert_slow_tokenizer import bytes_to_unicode  # the library's own map

    return [Case("the whole map equals transformers' bytes_to_unicode", (), bytes_to_unicode())]


def questions() -> list[Question]:
    return [
        Question(
            "q1",
            "count_pairs",
            3,
            "Loop over (symbols, count); zip(symbols, symbols[1:]) gives the adjacent pairs; add "
            "count to a dict (collections.Counter) keyed by the pair tuple.",
            count_pairs_cases,
            "Counting pairs",
        ),
        Question(
            "q2",
            "merge_pair",
            2,
            "Walk with an index i: if symbols[i], symbols[i + 1] is the pair, append the two joined "
            "and jump by 2, else append symbols[i] and move by 1.",
            merge_cases,
            "Applying one merge",
        ),
        Question(
            "q3",
            "longest_match_first",
            3,
            "For each start, try end from len(word) down to start + 1; pieces after the first get "
            "the '##' prefix; if no end works, the whole word is ['[UNK]'].",
            longest_match_cases,
            "Longest match first",
        ),
        Question(
            "q4",
            "bytes_to_unicode",
            2,
            "Bytes in '!'..'~', '¡'..'¬' and '®'..'ÿ' map to chr(b); the others, in increasing "
            "order, to chr(256), chr(257), ...",
            byte_map_cases,
            "GPT-2's byte-to-character map",
        ),
    ]
