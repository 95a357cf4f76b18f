"""Chapter 4's BERT pieces (bertbook/bert.py, saved from the chapter) against transformers."""

import numpy as np
import pytest
import torch
from transformers import BertConfig, BertModel, BertTokenizerFast, DataCollatorForLanguageModeling

from bertbook.bert import (
    BertLayer,
    bert_encoder_from,
    bootstrap_interval,
    copy_bert_layer,
    length_batches,
    mask_tokens,
    mean_pool,
    pad,
    teacher_path,
    warmup_linear,
    wordpiece_vocab,
)


def _bert(seed=0, **kw):
    torch.manual_seed(seed)
    cfg = dict(
        vocab_size=120,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=40,
    )
    cfg.update(kw)
    return BertModel(BertConfig(**cfg), add_pooling_layer=False).eval()


def test_layer_equals_bertlayer_with_padding():
    hf = _bert()
    ours = BertLayer(32, 4, 64).eval()
    copy_bert_layer(ours, hf.encoder.layer[0])
    x = torch.randn(3, 11, 32)
    mask = torch.ones(3, 11, dtype=torch.bool)
    mask[1, 7:] = False
    mask[2, 3:] = False
    additive = (~mask)[:, None, None, :].float() * torch.finfo(torch.float32).min
    with torch.no_grad():
        expected = hf.encoder.layer[0](x, additive)
        got, weights = ours(x, mask)
    torch.testing.assert_close(got[mask], expected[mask], atol=1e-5, rtol=1e-4)
    assert (
        weights[~mask[:, None, None, :].expand_as(weights)].abs().max() == 0
    )  # no weight on padding


@pytest.mark.parametrize("seed", [0, 1])
def test_encoder_equals_bertmodel_with_segments(seed):
    hf = _bert(seed)
    ours = bert_encoder_from(hf)
    ids = torch.randint(0, 120, (2, 9))
    segments = torch.tensor([[0] * 5 + [1] * 4, [0] * 9])
    mask = torch.ones(2, 9, dtype=torch.bool)
    mask[1, 6:] = False
    with torch.no_grad():
        states, attentions = ours(ids, mask, segments)
        expected = hf(
            input_ids=ids, attention_mask=mask.long(), token_type_ids=segments
        ).last_hidden_state
    assert len(states) == 3 and len(attentions) == 2
    torch.testing.assert_close(states[-1][mask], expected[mask], atol=1e-5, rtol=1e-4)


def _tokenizer(tmp_path):
    words = "the a cat dog sat on mat ran fast slow".split()
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tok = BertTokenizerFast(vocab=str(tmp_path / "vocab.txt"))
    assert len(tok) == len(vocab)
    return tok


@pytest.mark.parametrize("seed", [0, 7, 123])
def test_masking_is_the_collators_token_for_token(tmp_path, seed):
    tok = _tokenizer(tmp_path)
    texts = ["the cat sat on the mat", "a dog ran fast", "the slow cat"] * 40
    ids = tok(texts, padding=True, return_tensors="pt")["input_ids"]
    special = torch.tensor(
        [tok.get_special_tokens_mask(r, already_has_special_tokens=True) for r in ids.tolist()],
        dtype=torch.bool,
    )
    expected = DataCollatorForLanguageModeling(tok, mlm_probability=0.15, seed=seed)(ids.tolist())
    inputs, labels = mask_tokens(
        ids, special, len(tok), tok.mask_token_id, torch.Generator().manual_seed(seed)
    )
    assert torch.equal(inputs, expected["input_ids"]) and torch.equal(labels, expected["labels"])
    assert (labels[special] == -100).all()


def test_masking_shares_follow_the_80_10_10_rule():
    ids = torch.randint(5, 1000, (200, 100))
    special = torch.zeros_like(ids, dtype=torch.bool)
    inputs, labels = mask_tokens(ids, special, 1000, 4, torch.Generator().manual_seed(0))
    chosen = labels != -100
    assert abs(chosen.float().mean().item() - 0.15) < 0.01
    assert abs((inputs[chosen] == 4).float().mean().item() - 0.8) < 0.02
    assert abs((inputs[chosen] == ids[chosen]).float().mean().item() - 0.1) < 0.02


def test_wordpiece_vocab_is_deterministic_and_tokenises_like_wordpiece(tmp_path):
    text = "low lower lowest newer newest wider widest " * 20 + "the cat sat on the mat " * 10
    vocab = wordpiece_vocab(text, 30)
    assert vocab == wordpiece_vocab(text, 30)
    assert vocab[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] and len(set(vocab)) == len(
        vocab
    )
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tok = BertTokenizerFast(vocab=str(tmp_path / "vocab.txt"))
    pieces = tok.tokenize("lowest newer cats")
    assert "[UNK]" not in pieces and tok.convert_tokens_to_string(pieces) == "lowest newer cats"


def test_length_batches_cover_every_index_once_with_little_padding():
    encodings = [[1] * n for n in torch.randint(3, 60, (500,)).tolist()]
    for generator in (None, torch.Generator().manual_seed(0)):
        batches = length_batches(encodings, 32, generator)
        assert sorted(i for b in batches for i in b) == list(range(500))
    sorted_batches = length_batches(encodings, 32)
    spread = max(
        max(len(encodings[i]) for i in b) - min(len(encodings[i]) for i in b)
        for b in sorted_batches
    )
    assert spread <= 10
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert length_batches(encodings, 32, g1) == length_batches(encodings, 32, g2)


def test_pad_and_mean_pool_ignore_padding():
    encodings = [[2, 5, 6, 3], [2, 7, 3]]
    ids, mask = pad(encodings, [0, 1])
    assert ids.tolist() == [[2, 5, 6, 3], [2, 7, 3, 0]] and mask.tolist() == [
        [1, 1, 1, 1],
        [1, 1, 1, 0],
    ]
    hidden = torch.randn(2, 4, 5)
    pooled = mean_pool(hidden, mask)
    torch.testing.assert_close(pooled[1], hidden[1, :3].mean(0))


def test_warmup_linear_schedule():
    f = warmup_linear(100)
    assert (
        f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0) and f(99) == pytest.approx(1 / 90)
    )


def test_bootstrap_interval_contains_the_mean_and_narrows_with_more_data():
    rng = np.random.default_rng(0)
    small, large = rng.random(200) < 0.8, rng.random(5000) < 0.8
    m, lo, hi = bootstrap_interval(small)
    assert lo < m < hi and 0.7 < m < 0.9
    _, lo2, hi2 = bootstrap_interval(large)
    assert hi2 - lo2 < (hi - lo) / 3
    diff, dlo, dhi = bootstrap_interval(np.zeros(300))  # identical methods: no difference
    assert diff == dlo == dhi == 0


def test_teacher_path_depends_on_the_recipe():
    a = teacher_path("some-hub-name", {"steps": 1})
    assert a == teacher_path("some-hub-name", {"steps": 1})
    assert a != teacher_path("some-hub-name", {"steps": 2}) and a != teacher_path(
        "another-name", {"steps": 1}
    )
    assert a.parent.name == "artifacts"


def test_saved_teacher_is_loaded_back_from_the_cache(tmp_path, monkeypatch):
    from transformers import AutoModel

    from bertbook.bert import SentimentClassifier, load_or_train_teacher, save_teacher

    monkeypatch.setenv("BERTBOOK_CACHE", str(tmp_path / "cache"))
    checkpoint = tmp_path / "tiny-bert"
    _bert().save_pretrained(checkpoint)
    _tokenizer(tmp_path).save_pretrained(checkpoint)
    torch.manual_seed(1)
    model = SentimentClassifier(AutoModel.from_pretrained(checkpoint)).eval()
    path = save_teacher(model, str(checkpoint))
    assert path.exists() and str(path).startswith(str(tmp_path / "cache"))
    loaded, tok, was_cached = load_or_train_teacher(str(checkpoint))
    assert was_cached and len(tok) == 15
    for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name
