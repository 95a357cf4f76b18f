"""The references of exercise 3's new questions (bertbook/questions/q03_tokenizers.py): the
pre-tokenizer changes GPT-2's chunks only where its two rules say, and the Viterbi cut is the
best of all cuts and the one the tokenizers library's Unigram model gives."""

import random

import regex

from bertbook.questions import q03_tokenizers as q03
from bertbook.tokenization import GPT2_PATTERN


def test_pre_tokenize_differs_from_gpt2_only_in_numbers_and_capital_contractions():
    plain = "hello  world, it's   the cat's\n\n toy!!  she'd go   "
    assert q03._pre_tokenize(plain) == regex.findall(GPT2_PATTERN, plain)
    assert q03._pre_tokenize("I'M HERE, WE'LL SEE") == [
        "I", "'M", " HERE", ",", " WE", "'LL", " SEE",
    ]  # fmt: skip
    assert q03._pre_tokenize("In 2024, 1234567 and x9") == [
        "In", " ", "202", "4", ",", " ", "123", "456", "7", " and", " x", "9",
    ]  # fmt: skip
    for case in q03.pre_tokenize_cases(random.Random(0)):
        (text,) = case.args
        assert "".join(case.expected) == text  # chunks cover the text
        assert all(len(c) <= 3 for c in case.expected if c.isdigit())


def test_viterbi_is_the_best_cut_and_the_unigram_models():
    import math

    from tokenizers import Tokenizer
    from tokenizers.models import Unigram

    for seed in range(5):
        for case in q03.viterbi_cases(random.Random(seed)):
            word, log_probs = case.args
            assert case.expected == q03._unique_best(word, log_probs)  # brute force, unique
            vocab = [("<unk>", -100.0), *log_probs.items()]
            tokenizer = Tokenizer(Unigram(vocab, unk_id=0))
            assert tokenizer.encode(word).tokens == case.expected, (seed, case.name)
            assert math.isclose(
                sum(log_probs[p] for p in case.expected),
                max(
                    sum(log_probs[p] for p in cut)
                    for cut in q03._segmentations(word)
                    if all(p in log_probs for p in cut)
                ),
            )
