"""Chapter 3: BPE trained from scratch, BERT's WordPiece and GPT-2's byte-level BPE, each equal to its
library.

Generated from book/03_tokenizers.ipynb by `python -m bertbook.maint sync`: edit the notebook, not
this file."""

import heapq
import re
import unicodedata
from collections import Counter, defaultdict

import regex

BPE_PRETOKENIZER = re.compile(r"\w+|[^\w\s]+")  # the `Whitespace` pre-tokenizer of `tokenizers`


def merge_pair(symbols, pair):
    """Replace every occurrence of the adjacent pair (a, b) in symbols by a + b, left to right.

    Defined in Chapter 3, section “Byte-pair encoding”.
    """
    a, b = pair
    out, i = [], 0
    while i < len(symbols):
        if i + 1 < len(symbols) and symbols[i] == a and symbols[i + 1] == b:
            out.append(a + b)
            i += 2
        else:
            out.append(symbols[i])
            i += 1
    return out


def count_pairs(words, counts):
    """Pair -> its count over all words (weighted), and pair -> the indices of the words with it.

    Defined in Chapter 3, section “Byte-pair encoding”.
    """
    pair_counts, where = defaultdict(int), defaultdict(set)
    for i, (w, n) in enumerate(zip(words, counts)):
        for pair in zip(w, w[1:]):
            pair_counts[pair] += n
            where[pair].add(i)
    return pair_counts, where


def apply_merge(pair, words, counts, pair_counts, where):
    """Merge pair in the words that contain it, updating both tables; returns the pairs whose
    count changed.

    Defined in Chapter 3, section “Byte-pair encoding”.
    """
    touched = set()
    for i in where.pop(pair):
        w, n = words[i], counts[i]
        for old in zip(w, w[1:]):  # take the word's old pairs out
            pair_counts[old] -= n
            where[old].discard(i)
            touched.add(old)
        words[i] = w = merge_pair(w, pair)
        for new in zip(w, w[1:]):  # and its new pairs in
            pair_counts[new] += n
            where[new].add(i)
            touched.add(new)
    del pair_counts[pair]
    return touched - {pair}


def train_bpe(text, n_merges):
    """Learn n_merges BPE merges from text; returns (alphabet, merges in the order learned).

    Pair counts are updated incrementally: a merge only revisits the words containing the pair.
    Ties are broken towards the pair of lower symbol ids (characters in code-point order, then
    merged symbols in creation order), as the `tokenizers` library does.

    Defined in Chapter 3, section “Byte-pair encoding”.
    """
    word_counts = Counter(BPE_PRETOKENIZER.findall(text))
    alphabet = sorted({c for w in word_counts for c in w})
    ids = {c: i for i, c in enumerate(alphabet)}
    words, counts = [list(w) for w in word_counts], list(word_counts.values())
    pair_counts, where = count_pairs(words, counts)
    heap = [(-n, ids[a], ids[b], a, b) for (a, b), n in pair_counts.items()]
    heapq.heapify(heap)
    merges = []
    while heap and len(merges) < n_merges:
        neg_count, _, _, a, b = heapq.heappop(heap)
        if pair_counts.get((a, b)) != -neg_count:
            continue  # a stale entry: the count changed
        merges.append((a, b))
        ids[a + b] = len(ids)
        for pair in apply_merge((a, b), words, counts, pair_counts, where):
            if pair_counts[pair] > 0:
                heapq.heappush(heap, (-pair_counts[pair], ids[pair[0]], ids[pair[1]], *pair))
    return alphabet, merges


def bpe_encode(text, merges):
    """Split text into BPE symbols: within each word, apply the earliest-learned merge first.

    Defined in Chapter 3, section “Byte-pair encoding”.
    """
    ranks = {pair: r for r, pair in enumerate(merges)}
    out = []
    for word in BPE_PRETOKENIZER.findall(text):
        symbols = list(word)
        while len(symbols) > 1:
            rank, pair = min((ranks.get(p, len(ranks)), p) for p in zip(symbols, symbols[1:]))
            if rank == len(ranks):
                break
            symbols = merge_pair(symbols, pair)
        out += symbols
    return out


def _is_control(c):
    # "Other" categories, as the `tokenizers` library sees them: unassigned code points (Cn) are kept
    """Defined in Chapter 3, section “WordPiece: how BERT reads”."""
    return c not in "\t\n\r" and unicodedata.category(c) in ("Cc", "Cf", "Co", "Cs")


def _is_cjk(cp):
    # CJK ideograph blocks, as in the `tokenizers` library (its third-from-last range starts at
    # 0x2B920; Google's original BERT code has 0x2B820)
    """Defined in Chapter 3, section “WordPiece: how BERT reads”."""
    return (
        0x4E00 <= cp <= 0x9FFF
        or 0x3400 <= cp <= 0x4DBF
        or 0x20000 <= cp <= 0x2A6DF
        or 0x2A700 <= cp <= 0x2B73F
        or 0x2B740 <= cp <= 0x2B81F
        or 0x2B920 <= cp <= 0x2CEAF
        or 0xF900 <= cp <= 0xFAFF
        or 0x2F800 <= cp <= 0x2FA1F
    )


def _is_punctuation(c):
    """Defined in Chapter 3, section “WordPiece: how BERT reads”."""
    cp = ord(c)  # every ASCII non-alphanumeric symbol counts, and all of Unicode's P* categories
    return (
        33 <= cp <= 47
        or 58 <= cp <= 64
        or 91 <= cp <= 96
        or 123 <= cp <= 126
        or unicodedata.category(c).startswith("P")
    )


def bert_basic_tokenize(text):
    """BERT's uncased basic tokenizer: clean, isolate CJK, strip accents, lower-case, split.

    Defined in Chapter 3, section “WordPiece: how BERT reads”.
    """
    chars = []
    for c in text:
        if c in ("\x00", "\ufffd") or _is_control(c):
            continue
        chars.append(" " if c in "\t\n\r" or c.isspace() else f" {c} " if _is_cjk(ord(c)) else c)
    text = unicodedata.normalize("NFD", "".join(chars))
    text = "".join(c for c in text if unicodedata.category(c) != "Mn").lower()
    words = []
    for chunk in text.split():
        current = ""
        for c in chunk:
            if _is_punctuation(c):
                words += [current, c] if current else [c]
                current = ""
            else:
                current += c
        if current:
            words.append(current)
    return words


def wordpiece_word(word, vocab, unk="[UNK]", max_chars=100):
    """Greedy longest-match-first split of one word; [UNK] if any part cannot be matched.

    Defined in Chapter 3, section “WordPiece: how BERT reads”.
    """
    if len(word) > max_chars:
        return [unk]
    pieces, start = [], 0
    while start < len(word):
        for end in range(len(word), start, -1):
            piece = word[start:end] if start == 0 else "##" + word[start:end]
            if piece in vocab:
                break
        else:
            return [unk]
        pieces.append(piece)
        start = end
    return pieces


def wordpiece_encode(text, vocab):
    """BERT's token ids for text (no [CLS]/[SEP]); vocab maps token -> id.

    Defined in Chapter 3, section “WordPiece: how BERT reads”.
    """
    return [
        vocab[piece] for word in bert_basic_tokenize(text) for piece in wordpiece_word(word, vocab)
    ]


GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def bytes_to_unicode():
    """GPT-2's map from the 256 byte values to printable characters (space -> 'Ġ').

    Defined in Chapter 3, section “Byte-level BPE: how GPT-2 reads”.
    """
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    mapping, shifted = {}, 0
    for b in range(256):
        if b in printable:
            mapping[b] = chr(b)
        else:
            mapping[b] = chr(256 + shifted)
            shifted += 1
    return mapping


class GPT2Encoder:
    """Byte-level BPE over GPT-2's ranks (token bytes -> id, the merge order).

    Defined in Chapter 3, section “Byte-level BPE: how GPT-2 reads”.
    """

    def __init__(self, ranks):
        self.ranks = ranks
        self.decoder = {i: b for b, i in ranks.items()}
        self.pattern = regex.compile(GPT2_PATTERN)
        self.cache = {}

    def encode_chunk(self, chunk):
        parts = [bytes([b]) for b in chunk.encode("utf-8")]
        while len(parts) > 1:
            ranked = [(self.ranks.get(parts[j] + parts[j + 1]), j) for j in range(len(parts) - 1)]
            ranked = [(r, j) for r, j in ranked if r is not None]
            if not ranked:
                break
            _, j = min(ranked)  # the earliest-learned merge
            parts[j : j + 2] = [parts[j] + parts[j + 1]]
        return [self.ranks[p] for p in parts]

    def encode(self, text):
        ids = []
        for chunk in self.pattern.findall(text):
            if chunk not in self.cache:
                self.cache[chunk] = self.encode_chunk(chunk)
            ids += self.cache[chunk]
        return ids

    def decode(self, ids):
        return b"".join(self.decoder[i] for i in ids).decode("utf-8", errors="replace")


_gpt2 = None


def gpt2_encoder():
    """The encoder over the real GPT-2 ranks (the course's pinned asset), built once.

    Defined in Chapter 3, section “Byte-level BPE: how GPT-2 reads”.
    """
    global _gpt2
    if _gpt2 is None:
        from bertbook import assets

        _gpt2 = GPT2Encoder(assets.gpt2_ranks())
    return _gpt2


def gpt2_encode(text):
    """GPT-2 token ids of text; special-token text such as <|endoftext|> is ordinary text.

    Defined in Chapter 3, section “Byte-level BPE: how GPT-2 reads”.
    """
    return gpt2_encoder().encode(text)


def gpt2_decode(ids):
    """Defined in Chapter 3, section “Byte-level BPE: how GPT-2 reads”."""
    return gpt2_encoder().decode(ids)
