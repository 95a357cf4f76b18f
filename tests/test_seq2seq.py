"""Chapter 1's code (bertbook/seq2seq.py, saved from the chapter) against the library."""

import torch
import torch.nn.functional as F

from bertbook import seq2seq
from bertbook.checks import questions_for, run_local
from bertbook.seq2seq import AdditiveAttention, Seq2Seq, Vocab, batchify, number_pairs


def _batch(B=3, S=6, D=8, lengths=(6, 4, 1)):
    torch.manual_seed(0)
    mask = torch.arange(S)[None, :] < torch.tensor(lengths)[:, None]
    return torch.randn(B, D), torch.randn(B, S, D), mask


def test_additive_attention_matches_sdpa_with_its_scores_as_mask():
    s, h, mask = _batch()
    attn = AdditiveAttention(8, 8, 5)
    ctx, alpha = attn(s, attn.U(h), h, mask)
    bias = attn.scores(s, attn.U(h)).masked_fill(~mask, float("-inf"))[:, None, :]
    ref = F.scaled_dot_product_attention(torch.zeros(3, 1, 8), h, h, attn_mask=bias).squeeze(1)
    torch.testing.assert_close(ctx, ref, atol=1e-6, rtol=1e-5)
    assert torch.all(alpha[~mask] == 0)
    torch.testing.assert_close(alpha.sum(-1), torch.ones(3))


def test_exercise_reference_equals_the_chapter_module():
    """The chapter's AdditiveAttention, given each case's parameters, earns full marks on q1."""
    q1 = questions_for("01_seq2seq_attention")["q1"]

    def chapter_scores(s, enc, W, U, v):
        a = AdditiveAttention(W.shape[1], U.shape[1], W.shape[0])
        with torch.no_grad():
            a.W.weight.copy_(W)
            a.U.weight.copy_(U)
            a.U.bias.zero_()
            a.v.weight.copy_(v[None, :])
        return a.scores(s, a.U(enc))

    assert run_local(q1, chapter_scores).points == q1.points


def test_splits_are_disjoint_and_reproducible():
    a = number_pairs((300, 50, 100), seed=1)
    b = number_pairs((300, 50, 100), seed=1)
    assert a == b
    src = [{" ".join(s) for s, _ in split} for split in a]
    assert not (src[0] & src[2]) and not (src[1] & src[2])
    assert seq2seq.words("quatre-vingt-dix-sept mille") == [
        "quatre",
        "vingt",
        "dix",
        "sept",
        "mille",
    ]


def test_vocab_round_trip_and_padding():
    v = Vocab([["un", "deux"], ["trois"]])
    ids = v.encode(["deux", "un"])
    assert ids[-1] == seq2seq.EOS and v.decode(ids) == ["deux", "un"]
    batch = batchify([[5, 6, 7], [5]])
    assert batch.tolist() == [[5, 6, 7], [5, 0, 0]]


def test_training_is_deterministic_and_learns():
    pairs, _, _ = number_pairs((400, 10, 10), seed=2)
    sv, tv = Vocab([s for s, _ in pairs]), Vocab([t for _, t in pairs])
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = Seq2Seq(len(sv), len(tv), attention=True)
        runs.append(seq2seq.train_seq2seq(model, pairs, sv, tv, steps=15, batch=32))
    assert runs[0] == runs[1]
    assert runs[0][-1] < runs[0][0]
    ids, alpha = model.greedy(batchify([sv.encode(pairs[0][0])]), max_len=5)
    assert ids.shape == (1, 5) and alpha.shape == (1, 5, len(pairs[0][0]) + 1)
    torch.testing.assert_close(alpha.sum(-1), torch.ones(1, 5))


def test_plain_model_sees_only_the_final_states():
    torch.manual_seed(0)
    model = Seq2Seq(10, 10, attention=False)
    assert model.attn is None
    src = torch.tensor([[4, 5, 6, 2]])
    ids, alpha = model.greedy(src, max_len=3)
    assert alpha is None and ids.shape == (1, 3)
