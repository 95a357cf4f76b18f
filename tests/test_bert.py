"""Chapter 4's BERT pieces (bertbook/bert.py, saved from the chapter) against transformers."""

import pytest
import torch
from transformers import (
    BertConfig,
    BertForMaskedLM,
    BertModel,
    BertTokenizerFast,
    DataCollatorForLanguageModeling,
)

from bertbook.bert import (
    BertEncoder,
    BertForMLM,
    BertLayer,
    MeanPooler,
    SentimentClassifier,
    copy_bert_layer,
    init_bert_weights,
    mask_tokens,
    mean_pool,
    wordpiece_vocab,
)

SIZES = dict(
    vocab_size=120,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=64,
    max_position_embeddings=40,
)


def _bert(seed=0, **kw):
    torch.manual_seed(seed)
    return BertModel(BertConfig(**{**SIZES, **kw}), add_pooling_layer=False).eval()


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
        got, weights = ours(x, mask.long())  # a 0/1 mask, as pad() gives, works too
    torch.testing.assert_close(got[mask], expected[mask], atol=1e-5, rtol=1e-4)
    assert weights[~mask[:, None, None, :].expand_as(weights)].abs().max() == 0  # none on padding


@pytest.mark.parametrize("seed", [0, 1])
def test_encoder_equals_bertmodel_with_segments(seed):
    hf = _bert(seed)
    ours = BertEncoder.from_hf(hf)
    assert not ours.training  # loaded for inference, as from_pretrained does
    ids = torch.randint(0, 120, (2, 9))
    segments = torch.tensor([[0] * 5 + [1] * 4, [0] * 9])
    mask = torch.ones(2, 9, dtype=torch.bool)
    mask[1, 6:] = False
    with torch.no_grad():
        states, attentions = ours(ids, mask, segments)
        expected = hf(
            input_ids=ids, attention_mask=mask.long(), token_type_ids=segments
        ).last_hidden_state
    assert len(states) == 3 and len(attentions) == 2 and attentions[0].shape == (2, 4, 9, 9)
    torch.testing.assert_close(states[-1][mask], expected[mask], atol=1e-5, rtol=1e-4)


def test_from_hf_loads_a_checkpoint_folder_with_its_sizes(tmp_path):
    hf = _bert(3, hidden_dropout_prob=0.25)
    hf.save_pretrained(tmp_path / "tiny")
    ours = BertEncoder.from_hf(tmp_path / "tiny")
    assert len(ours.layers) == 2 and ours.d_model == 32 and ours.embeddings.drop.p == 0.25
    ids = torch.randint(0, 120, (1, 7))
    with torch.no_grad():
        torch.testing.assert_close(ours(ids)[0][-1], hf(input_ids=ids).last_hidden_state)


def test_editing_our_layer_changes_the_encoder():
    """The encoder runs our BertLayer: what a reader changes there reaches every result."""
    ours = BertEncoder.from_hf(_bert())
    ids = torch.randint(0, 120, (1, 6))
    with torch.no_grad():
        before = ours(ids)[0][-1].clone()
        ours.layers[0].ff_out.bias.add_(1.0)
        assert not torch.allclose(ours(ids)[0][-1], before)


def test_mlm_model_equals_bertformaskedlm_and_ties_the_decoder():
    torch.manual_seed(0)
    hf = BertForMaskedLM(BertConfig(**SIZES)).eval()
    ours = BertForMLM.from_hf(hf)
    assert ours.head.decoder.weight is ours.encoder.embeddings.token.weight
    ids = torch.randint(0, 120, (3, 10))
    with torch.no_grad():
        torch.testing.assert_close(ours(ids), hf(input_ids=ids).logits, atol=1e-4, rtol=1e-4)


def test_init_bert_weights_follows_bert():
    model = BertForMLM(BertEncoder(50, 16, 1, 2, 32, max_len=8))
    torch.manual_seed(0)
    model.apply(lambda m: init_bert_weights(m, 0.5))
    layer = model.encoder.layers[0]
    assert abs(layer.ff_in.weight.std().item() - 0.5) < 0.1 and layer.ff_in.bias.abs().max() == 0
    assert (
        torch.equal(layer.norm1.weight, torch.ones(16)) and model.head.decoder.bias.abs().max() == 0
    )


def test_classifier_and_pooler_on_our_encoder():
    encoder = BertEncoder.from_hf(_bert())
    ids, mask = torch.randint(5, 120, (2, 8)), torch.ones(2, 8, dtype=torch.long)
    mask[1, 5:] = 0
    with torch.no_grad():
        pooled = MeanPooler(encoder)(ids, mask)
        logits = SentimentClassifier(encoder).eval()(ids, mask)
        torch.testing.assert_close(
            pooled[1], encoder(ids[1:, :5])[0][-1][0].mean(0), atol=1e-5, rtol=0
        )
    assert pooled.shape == (2, 32) and logits.shape == (2, 2)


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
    assert vocab[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert len(set(vocab)) == len(vocab)
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tok = BertTokenizerFast(vocab=str(tmp_path / "vocab.txt"))
    pieces = tok.tokenize("lowest newer cats")
    assert "[UNK]" not in pieces and tok.convert_tokens_to_string(pieces) == "lowest newer cats"


def test_mean_pool_ignores_padding():
    hidden = torch.randn(2, 4, 5)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]])
    pooled = mean_pool(hidden, mask)
    torch.testing.assert_close(pooled[1], hidden[1, :3].mean(0))


def _png(draw) -> bytes:
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = draw()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


@pytest.mark.parametrize(
    "draw",
    [
        lambda d: d.bert_input_embeddings(["[CLS]", "a", "[SEP]", "b", "[SEP]"], [0, 0, 0, 1, 1]),
        lambda d: d.mlm_masking(
            ["[CLS]", "a", "b", "c", "[SEP]"], {1, 2, 3}, {1: "[MASK]", 2: "x"}
        ),
        lambda d: d.classification_heads(),
    ],
)
def test_chapter_4_diagrams_draw_the_same_pixels_every_time(draw):
    from bertbook import diagrams

    assert _png(lambda: draw(diagrams)) == _png(lambda: draw(diagrams))
