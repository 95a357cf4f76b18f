"""Chapter 3's tokenizers (bertbook/tokenization.py, saved from the chapter) against the libraries."""

import json
import random

import pytest
import tiktoken
from tiktoken.load import load_tiktoken_bpe
from tokenizers import Tokenizer, models, pre_tokenizers, trainers

from bertbook import assets
from bertbook.tokenization import (
    GPT2_PATTERN,
    bpe_encode,
    bytes_to_unicode,
    gpt2_decode,
    gpt2_encode,
    merge_pair,
    train_bpe,
    wordpiece_encode,
)

AWKWARD = [
    "",
    "  ",
    "Hello\tworld\r\n",
    "emoji 🤗🚀",
    "naïve café",
    "İstanbul",
    "ﬁne",
    "zero\u200bwidth",
    "nbsp\u00a0x",
    "a\x00b\x07c",
    "$5.99+tax=~6 <ok>",
    "I'm you'll DON'T",
    "1,000,000.5",
    "<|endoftext|>",
    "日本語のテキスト",
    "Ελληνικά",
    "кириллица",
    "العربية",
    "עברית",
    "ﾊﾝｶｸ",
    "x" * 150,
    "한국어 텍스트",
    "  leading and trailing  ",
    "tabs\t\tand\n\nnewlines",
    "Ünïcödé ÀÉÎÕÜ",
    "math ∑∫√ ≤ ≥",
]


def _random_texts(n, seed=0):
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        cps = [
            rng.choice(
                [
                    rng.randrange(32, 127),
                    rng.randrange(0x80, 0x30000),
                    rng.choice([9, 10, 13, 0xA0]),
                ]
            )
            for _ in range(rng.randrange(1, 40))
        ]
        out.append("".join(chr(c) for c in cps if not 0xD800 <= c <= 0xDFFF))
    return out


@pytest.fixture(scope="module")
def text():
    return assets.load_shakespeare("train")[:400_000]


def test_bpe_merges_equal_the_library(text):
    alphabet, merges = train_bpe(text, 300)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(
        [text],
        trainers.BpeTrainer(
            vocab_size=len(alphabet) + 300, min_frequency=0, show_progress=False, special_tokens=[]
        ),
    )
    assert merges == [tuple(m) for m in json.loads(tok.to_str())["model"]["merges"]]
    lines = [
        line for line in assets.load_shakespeare("validation").splitlines()[:500] if line.strip()
    ]
    assert all(bpe_encode(line, merges) == tok.encode(line).tokens for line in lines)


def test_merge_pair_is_left_to_right():
    assert merge_pair(list("aaa"), ("a", "a")) == ["aa", "a"]
    assert merge_pair(["th", "e"], ("th", "e")) == ["the"]


@pytest.fixture(scope="module")
def bert():
    from transformers import BertTokenizer

    tok = BertTokenizer.from_pretrained(assets.minilm_dir())
    assert len(tok.get_vocab()) == 30522
    return tok


def test_wordpiece_equals_bert_tokenizer(bert):
    vocab = bert.get_vocab()
    lines = assets.load_shakespeare("validation").splitlines()[:1000]
    for t in AWKWARD + lines:
        assert wordpiece_encode(t, vocab) == bert.encode(t, add_special_tokens=False), repr(t)


def test_wordpiece_differs_only_on_characters_newer_than_the_librarys_tables(bert):
    """Every Latin, Greek, Cyrillic, CJK... code point agrees; the few that do not are recent additions."""
    import unicodedata

    vocab = bert.get_vocab()
    chars = [chr(cp) for cp in range(0x20, 0x3000)]
    ids = bert([f"a{c}b" for c in chars], add_special_tokens=False)["input_ids"]
    differ = [c for c, i in zip(chars, ids) if wordpiece_encode(f"a{c}b", vocab) != i]
    assert len(differ) < 0.02 * len(chars)  # 110 of 12,256 with Python 3.11
    assert {unicodedata.category(c)[0] for c in differ} <= {"M", "P", "C", "S"}
    assert not [c for c in differ if ord(c) < 0x0600]  # Latin, Greek, Cyrillic, Armenian, Hebrew...


def test_gpt2_equals_tiktoken_and_round_trips():
    library = tiktoken.Encoding(
        name="gpt2",
        pat_str=GPT2_PATTERN,
        mergeable_ranks=load_tiktoken_bpe(str(assets.gpt2_ranks_path())),
        special_tokens={"<|endoftext|>": 50256},
    )
    assert gpt2_encode("Hello world") == [15496, 995]
    assert len(gpt2_encode("<|endoftext|>")) == 7  # ordinary text, not the special token
    for t in AWKWARD + _random_texts(1500):
        assert gpt2_encode(t) == library.encode_ordinary(t), repr(t)
        assert gpt2_decode(gpt2_encode(t)) == t


def test_bytes_to_unicode_equals_transformers():
    from transformers.convert_slow_tokenizer import bytes_to_unicode as library_map

    assert bytes_to_unicode() == library_map()
    assert bytes_to_unicode()[32] == "Ġ"
