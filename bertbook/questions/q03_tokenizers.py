"""Chapter 3 questions: counting pairs, one merge, longest match first, GPT-2's byte map, a
pre-tokenizer with two of GPT-2's rules changed, a Unigram segmentation by Viterbi
(exercises/03_tokenizers.ipynb)."""

from __future__ import annotations

import math
import random
from collections import Counter

import regex

from ..checks import Case, Mistake, Question

# The chapter's own functions, checked against the libraries in tests/test_tokenization.py.
from ..tokenization import GPT2_PATTERN, merge_pair, wordpiece_word

_LETTERS = "abcdeilnorstw"

# Typical wrong answers, as code: feedback names the one a student's result equals.


def _mistake_counts_ignored(word_counts):
    counts = Counter()
    for symbols, _ in word_counts:
        for pair in zip(symbols, symbols[1:]):
            counts[pair] += 1
    return dict(counts)


def _mistake_pair_once_per_word(word_counts):
    counts = Counter()
    for symbols, n in word_counts:
        for pair in set(zip(symbols, symbols[1:])):
            counts[pair] += n
    return dict(counts)


def _mistake_last_pair_missed(word_counts):
    counts = Counter()
    for symbols, n in word_counts:
        for i in range(len(symbols) - 2):
            counts[symbols[i], symbols[i + 1]] += n
    return dict(counts)


def _mistake_joined_keys(word_counts):
    counts = Counter()
    for symbols, n in word_counts:
        for a, b in zip(symbols, symbols[1:]):
            counts[a + b] += n
    return dict(counts)


def _mistake_step_one_after_merge(symbols, pair):
    out = []
    for i, symbol in enumerate(symbols):
        if i + 1 < len(symbols) and (symbol, symbols[i + 1]) == tuple(pair):
            out.append(symbol + symbols[i + 1])
        else:
            out.append(symbol)
    return out


def _mistake_first_occurrence_only(symbols, pair):
    for i in range(len(symbols) - 1):
        if (symbols[i], symbols[i + 1]) == tuple(pair):
            return [*symbols[:i], symbols[i] + symbols[i + 1], *symbols[i + 2 :]]
    return list(symbols)


def _mistake_last_symbol_dropped(symbols, pair):
    out, i = [], 0
    while i < len(symbols) - 1:
        if (symbols[i], symbols[i + 1]) == tuple(pair):
            out.append(symbols[i] + symbols[i + 1])
            i += 2
        else:
            out.append(symbols[i])
            i += 1
    return out


def _mistake_right_to_left(symbols, pair):
    out, i = [], len(symbols) - 1
    while i >= 0:
        if i > 0 and (symbols[i - 1], symbols[i]) == tuple(pair):
            out.insert(0, symbols[i - 1] + symbols[i])
            i -= 2
        else:
            out.insert(0, symbols[i])
            i -= 1
    return out


def _wordpiece(word, vocab, shortest=False, prefix="##", first_prefix="", unk_per_char=False):
    vocab = set(vocab)
    pieces, start = [], 0
    while start < len(word):
        ends = range(start + 1, len(word) + 1) if shortest else range(len(word), start, -1)
        for end in ends:
            piece = (first_prefix if start == 0 else prefix) + word[start:end]
            if piece in vocab:
                break
        else:
            if not unk_per_char:
                return ["[UNK]"]
            pieces.append("[UNK]")
            start += 1
            continue
        pieces.append(piece)
        start = end
    return pieces


def _mistake_shortest_match(word, vocab):
    return _wordpiece(word, vocab, shortest=True)


def _mistake_no_continuation_prefix(word, vocab):
    return _wordpiece(word, vocab, prefix="")


def _mistake_prefix_dropped_from_pieces(word, vocab):
    # Continuations looked up with '##' but returned without it.
    return [p.removeprefix("##") for p in _wordpiece(word, vocab)]


def _mistake_prefix_on_first_piece(word, vocab):
    return _wordpiece(word, vocab, first_prefix="##")


def _mistake_unk_per_character(word, vocab):
    return _wordpiece(word, vocab, unk_per_char=True)


def _byte_map(ranges, shifted_by_counter=True):
    keep = [b for lo, hi in ranges for b in range(ord(lo), ord(hi) + 1)]
    mapping, n = {}, 0
    for b in range(256):
        if b in keep:
            mapping[b] = chr(b)
        else:
            mapping[b] = chr(256 + (n if shifted_by_counter else b))
            n += 1
    return mapping


_RANGES = [("!", "~"), ("¡", "¬"), ("®", "ÿ")]


def _mistake_shift_by_byte():
    return _byte_map(_RANGES, shifted_by_counter=False)


def _mistake_ascii_only():
    return _byte_map(_RANGES[:1])


def _mistake_ranges_end_exclusive():
    return _byte_map([(lo, chr(ord(hi) - 1)) for lo, hi in _RANGES])


def _mistake_map_reversed():
    return {c: b for b, c in _byte_map(_RANGES).items()}


# GPT-2's pattern with two rules changed, as later tokenizers changed them: contractions in any
# case, and numbers in groups of at most three digits that take no leading space.
_CONTRACTIONS = "'s|'t|'re|'ve|'m|'ll|'d"
_NUMBERS = r" ?\p{N}+"
assert GPT2_PATTERN.count(_CONTRACTIONS) == 1 and GPT2_PATTERN.count(_NUMBERS) == 1
_CASE_FREE = GPT2_PATTERN.replace(_CONTRACTIONS, f"(?i:{_CONTRACTIONS})")
PRE_TOKENIZE_PATTERN = _CASE_FREE.replace(_NUMBERS, r"\p{N}{1,3}")


def _pre_tokenize(text):
    return regex.findall(PRE_TOKENIZE_PATTERN, text)


def _mistake_gpt2_unchanged(text):
    return regex.findall(GPT2_PATTERN, text)


def _mistake_contractions_case_sensitive(text):
    return regex.findall(GPT2_PATTERN.replace(_NUMBERS, r"\p{N}{1,3}"), text)


def _mistake_numbers_not_grouped(text):
    return regex.findall(_CASE_FREE.replace(_NUMBERS, r"\p{N}+"), text)


def _mistake_space_kept_on_numbers(text):
    return regex.findall(_CASE_FREE.replace(_NUMBERS, r" ?\p{N}{1,3}"), text)


def _mistake_grouped_from_the_right(text):
    chunks = []
    for chunk in _mistake_numbers_not_grouped(text):
        if regex.fullmatch(r"\p{N}+", chunk):
            head = len(chunk) % 3
            chunks += ([chunk[:head]] if head else []) + regex.findall(r"\p{N}{3}", chunk[head:])
        else:
            chunks.append(chunk)
    return chunks


def _mistake_space_runs_whole(text):
    return regex.findall(PRE_TOKENIZE_PATTERN.replace(r"\s+(?!\S)|", ""), text)


def _segmentations(word):
    """Every way to cut word into pieces (2 ** (len(word) - 1) of them)."""
    if not word:
        yield []
        return
    for end in range(1, len(word) + 1):
        for rest in _segmentations(word[end:]):
            yield [word[:end], *rest]


def _viterbi(word, log_probs, better=lambda new, old: new > old, score=lambda lp: lp):
    """The best segmentation of word: best[end] is the best total of word[:end]."""
    worst = -math.inf if better(1, 0) else math.inf
    best, back = [0.0] + [worst] * len(word), [0] * (len(word) + 1)
    for end in range(1, len(word) + 1):
        for start in range(end):
            piece = word[start:end]
            if piece in log_probs and best[start] != worst:
                total = best[start] + score(log_probs[piece])
                if better(total, best[end]):
                    best[end], back[end] = total, start
    pieces, end = [], len(word)
    while end > 0:
        pieces.append(word[back[end] : end])
        end = back[end]
    return pieces[::-1]


def _mistake_longest_match(word, log_probs):
    pieces, start = [], 0
    while start < len(word):
        end = next(e for e in range(len(word), start, -1) if word[start:e] in log_probs)
        pieces.append(word[start:end])
        start = end
    return pieces


def _mistake_most_probable_piece_first(word, log_probs):
    pieces, start = [], 0
    while start < len(word):
        ends = [e for e in range(start + 1, len(word) + 1) if word[start:e] in log_probs]
        end = max(ends, key=lambda e: log_probs[word[start:e]])
        pieces.append(word[start:end])
        start = end
    return pieces


def _mistake_fewest_pieces(word, log_probs):
    return _viterbi(word, log_probs, better=lambda new, old: new < old, score=lambda lp: 1)


def _mistake_probabilities_added(word, log_probs):
    return _viterbi(word, log_probs, score=math.exp)


def _mistake_lowest_total(word, log_probs):
    return _viterbi(word, log_probs, better=lambda new, old: new < old)


def _mistake_pieces_reversed(word, log_probs):
    return _viterbi(word, log_probs)[::-1]


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
    cases.append(
        Case(
            "'tokenx': a word that fails after a match is [UNK] as a whole",
            ("tokenx", vocab),
            wordpiece_word("tokenx", vocab),
        )
    )
    extra = "play" + "".join(
        rng.choice(["play", "ing", "s", "a"]) for _ in range(rng.randrange(1, 4))
    )
    cases.append(Case("a random word", (extra, vocab), wordpiece_word(extra, vocab)))
    return cases


def byte_map_cases(rng: random.Random) -> list[Case]:
    from transformers.convert_slow_tokenizer import bytes_to_unicode  # the library's own map

    return [Case("the whole map equals transformers' bytes_to_unicode", (), bytes_to_unicode())]


def pre_tokenize_cases(rng: random.Random) -> list[Case]:
    texts = [
        ("contractions in capitals", "I'M SURE THEY'LL SAY WE'RE LATE, aren't we?"),
        ("a long number", "In 2024 we sold 1234567 units"),
        ("runs of spaces before words and numbers", "x  =  42   y\n\n  zed  "),
        ("prices and decimals", "$3.14159 or 12,500.00!!"),
        ("accents and mixed case", "Don't SHE'S café's naïve 99"),
    ]
    cases = [Case(name, (text,), _pre_tokenize(text)) for name, text in texts]
    parts = ["THEY'RE", " we'd", "  ", " 31415", "1000000", "!!", " ok", "\n", " 7", "'LL"]
    text = "".join(rng.choice(parts) for _ in range(12))
    cases.append(Case("a random text", (text,), _pre_tokenize(text)))
    return cases


def _unigram_vocab(rng: random.Random, word: str) -> dict[str, float]:
    """Log-probabilities of every letter of word and of some of its substrings (a toy Unigram
    vocabulary in which word can always be cut)."""
    pieces = set(word)
    for _ in range(len(word)):
        start = rng.randrange(len(word) - 1)
        pieces.add(word[start : start + rng.randrange(2, 5)])
    weights = {p: rng.uniform(0.2, 3.0) for p in sorted(pieces)}
    total = sum(weights.values())
    return {p: math.log(w / total) for p, w in weights.items()}


def _unique_best(word, log_probs):
    """The best segmentation by brute force, or None where two tie (so a case has one answer)."""
    totals = sorted(
        (sum(log_probs[p] for p in cut), cut)
        for cut in _segmentations(word)
        if all(p in log_probs for p in cut)
    )
    if len(totals) > 1 and totals[-1][0] - totals[-2][0] < 1e-6:
        return None
    return totals[-1][1]


def viterbi_cases(rng: random.Random) -> list[Case]:
    counts = {"un": 40, "related": 30, "unrelated": 1, "unrelate": 1, "d": 10, "rel": 8, "ated": 9}
    counts.update(dict.fromkeys("unrelatd", 5))
    total = sum(counts.values())
    english = {p: math.log(n / total) for p, n in counts.items()}
    cases = [
        Case(
            "'unrelated': neither the longest pieces nor the fewest make the most probable cut",
            ("unrelated", english),
            _viterbi("unrelated", english),
        )
    ]
    for name, letters, length in [
        ("a random word", "abcde", 7),
        ("a longer random word", "abcd", 10),
        ("another random word", "abc", 9),
    ]:
        while True:
            word = "".join(rng.choice(letters) for _ in range(length))
            log_probs = _unigram_vocab(rng, word)
            best = _unique_best(word, log_probs)
            if best is not None:
                break
        assert best == _viterbi(word, log_probs)  # the dynamic programme finds the best cut
        cases.append(Case(name, (word, log_probs), best))
    return cases


def questions() -> list[Question]:
    return [
        Question(
            "q1",
            "weighted_pair_counts",
            3,
            "A word of n symbols has n - 1 adjacent pairs (zipping the symbols with themselves "
            "shifted by one gives them all). Each occurrence of a pair adds the word's count, not "
            "1, and a pair that occurs twice in one word adds it twice. Key the dict by the tuple "
            "(a, b), not by the joined string.",
            count_pairs_cases,
            "Counting pairs",
            nudge="Each occurrence of a pair in a word is worth that word's count.",
            mistakes=[
                Mistake(
                    "counts ignored",
                    "adding 1 per occurrence instead of the word's count",
                    _mistake_counts_ignored,
                ),
                Mistake(
                    "once per word",
                    "counting a pair once per word however often it occurs in it",
                    _mistake_pair_once_per_word,
                ),
                Mistake(
                    "last pair missed",
                    "a loop that stops one pair early and misses each word's last pair",
                    _mistake_last_pair_missed,
                ),
                Mistake(
                    "joined keys",
                    "keys written as joined strings 'ab' instead of tuples ('a', 'b')",
                    _mistake_joined_keys,
                ),
            ],
        ),
        Question(
            "q2",
            "merge_pair",
            2,
            "Walk left to right with an index rather than a for loop, because a merge consumes two "
            "symbols: when the symbol at the index and the next one form the pair, emit them "
            "joined and skip past both; otherwise emit the one symbol and move on by one. Mind the "
            "last symbol, which has no next one.",
            merge_cases,
            "Applying one merge",
            nudge="After a merge, where does the scan continue?",
            mistakes=[
                Mistake(
                    "step one after a merge",
                    "moving on by one after a merge (the second symbol used twice)",
                    _mistake_step_one_after_merge,
                ),
                Mistake(
                    "first occurrence only",
                    "merging only the first occurrence",
                    _mistake_first_occurrence_only,
                ),
                Mistake(
                    "last symbol dropped",
                    "a loop that stops before the last symbol and never appends it",
                    _mistake_last_symbol_dropped,
                ),
                Mistake(
                    "right to left",
                    "scanning from right to left",
                    _mistake_right_to_left,
                ),
            ],
        ),
        Question(
            "q3",
            "longest_match_first",
            3,
            "From the current start, try the longest candidate first and shorten it one character "
            "at a time until it is in the vocabulary; then continue from where that piece ends. "
            "Every candidate except those starting at position 0 is looked up with '##' in front. "
            "If no candidate matches at some start, stop: the answer is ['[UNK]'] for the whole "
            "word, whatever matched before.",
            longest_match_cases,
            "Longest match first",
            nudge="Longest first, '##' only on continuations, and one failure makes the whole "
            "word unknown.",
            mistakes=[
                Mistake(
                    "shortest match",
                    "taking the shortest match first",
                    _mistake_shortest_match,
                ),
                Mistake(
                    "no ## on continuations",
                    "looking continuations up without the '##' prefix",
                    _mistake_no_continuation_prefix,
                ),
                Mistake(
                    "## dropped from the pieces",
                    "looking continuations up with '##' but returning them without it",
                    _mistake_prefix_dropped_from_pieces,
                ),
                Mistake(
                    "## on the first piece",
                    "the '##' prefix on the first piece too",
                    _mistake_prefix_on_first_piece,
                ),
                Mistake(
                    "[UNK] per character",
                    "an [UNK] per unmatched character (the pieces found kept)",
                    _mistake_unk_per_character,
                ),
            ],
        ),
        Question(
            "q4",
            "bytes_to_unicode",
            2,
            "Build the list of kept byte values from the three ranges, both ends included (ord "
            "gives a character's value). Then go through 0..255 in order: a kept byte maps to "
            "chr of itself; every other byte takes the next unused character from 256 on, so keep "
            "a counter of how many you have shifted so far.",
            byte_map_cases,
            "GPT-2's byte-to-character map",
            nudge="The shifted bytes count up from 256 one after another, without gaps.",
            mistakes=[
                Mistake(
                    "shift by byte",
                    "mapping each other byte b to chr(256 + b) instead of the next free character",
                    _mistake_shift_by_byte,
                ),
                Mistake(
                    "ASCII only",
                    "keeping only '!'..'~' as themselves",
                    _mistake_ascii_only,
                ),
                Mistake(
                    "ranges end-exclusive",
                    "ranges that leave out their last character",
                    _mistake_ranges_end_exclusive,
                ),
                Mistake(
                    "map reversed",
                    "the map from characters to bytes",
                    _mistake_map_reversed,
                ),
            ],
        ),
        Question(
            "q5",
            "pre_tokenize",
            3,
            "Start from the chapter's GPT2_PATTERN and change two of its alternatives. The "
            "contractions: make that group case-insensitive (the regex module has an inline flag "
            "for one group, (?i:...)). The numbers: the alternative with an optional space and "
            "a run of digits becomes one to three digits and no space (a counted repetition, "
            "{1,3}; a match that stops after three digits leaves the rest to the next match). "
            "Keep every other alternative as it is, in the same order, the run-of-spaces "
            "look-ahead included.",
            pre_tokenize_cases,
            "A pre-tokenizer with two of GPT-2's rules changed",
            nudge="Put your chunks of a failing text beside the expected ones: which rule, changed "
            "or kept, decides the first chunk that differs?",
            mistakes=[
                Mistake(
                    "GPT-2 unchanged",
                    "the chapter's GPT-2 pattern unchanged",
                    _mistake_gpt2_unchanged,
                ),
                Mistake(
                    "contractions case-sensitive",
                    "numbers changed but contractions still lower case only ('M and 'LL "
                    "not recognised)",
                    _mistake_contractions_case_sensitive,
                ),
                Mistake(
                    "numbers not grouped",
                    "a number as one chunk however long, without its space",
                    _mistake_numbers_not_grouped,
                ),
                Mistake(
                    "space kept on numbers",
                    "groups of three digits that still take a leading space",
                    _mistake_space_kept_on_numbers,
                ),
                Mistake(
                    "grouped from the right",
                    "groups of three counted from the right, like thousands (the rule counts "
                    "from the left: 1234567 is 123 456 7)",
                    _mistake_grouped_from_the_right,
                ),
                Mistake(
                    "space runs whole",
                    "a run of spaces as one chunk (without GPT-2's look-ahead, which leaves its "
                    "last space to the word after it)",
                    _mistake_space_runs_whole,
                ),
            ],
        ),
        Question(
            "q6",
            "viterbi_segment",
            3,
            "Keep best[i], the highest total log-probability of any cut of the first i "
            "characters (best[0] = 0), and for each i the start of the last piece of that cut. "
            "For i from 1 to the word's length, try every start j < i whose piece word[j:i] is "
            "in the vocabulary: best[j] plus its log-probability. Then walk back from the end "
            "of the word through the recorded starts, and reverse the pieces you collect.",
            viterbi_cases,
            "A Unigram segmentation by Viterbi",
            nudge="A cut's score is the sum of its pieces' log-probabilities over the whole word (a "
            "greedy choice at each position can miss the best); its pieces are in word order.",
            mistakes=[
                Mistake(
                    "longest match first",
                    "the longest piece first (WordPiece's greedy rule, without '##')",
                    _mistake_longest_match,
                ),
                Mistake(
                    "most probable piece first",
                    "taking, at each position, the most probable piece that starts there",
                    _mistake_most_probable_piece_first,
                ),
                Mistake(
                    "fewest pieces",
                    "the cut with the fewest pieces, whatever their probabilities",
                    _mistake_fewest_pieces,
                ),
                Mistake(
                    "probabilities added",
                    "maximising the sum of the pieces' probabilities instead of their product",
                    _mistake_probabilities_added,
                ),
                Mistake(
                    "lowest total",
                    "the cut with the lowest total log-probability (log-probabilities are "
                    "negative: the best cut has the highest)",
                    _mistake_lowest_total,
                ),
                Mistake(
                    "pieces reversed",
                    "the pieces collected from the end and not reversed",
                    _mistake_pieces_reversed,
                ),
            ],
            forbidden=("Unigram",),
        ),
    ]
