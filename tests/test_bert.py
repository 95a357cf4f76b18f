"""Chapter 4's BERT pieces (bertbook/bert.py, saved from the chapter) against transformers."""

import pytest
import torch
from transformers import (
    BertConfig,
    BertForMaskedLM,
    BertForQuestionAnswering,
    BertForTokenClassification,
    BertModel,
    BertTokenizerFast,
    DataCollatorForLanguageModeling,
)

from bertbook.bert import (
    BertEncoder,
    BertForMLM,
    BertForSpans,
    BertForTagging,
    BertLayer,
    MeanPooler,
    SentimentClassifier,
    argmax_span,
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


def _pair_batch(seed=0):
    """Two question-passage pairs (segments 0 then 1), the second padded: ids, mask, segments."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 120, (2, 12), generator=g)
    mask = torch.ones(2, 12, dtype=torch.long)
    mask[1, 9:] = 0
    segments = (torch.arange(12) >= 5).long().expand(2, -1).clone()
    return ids, mask, segments


@pytest.mark.parametrize("seed", [0, 1])
def test_span_model_equals_bertforquestionanswering(seed):
    torch.manual_seed(seed)
    hf = BertForQuestionAnswering(BertConfig(**SIZES)).eval()
    ours = BertForSpans.from_hf(hf)
    ids, mask, segments = _pair_batch(seed)
    with torch.no_grad():
        start, end = ours(ids, mask, segments)  # (B, T) each
        theirs = hf(input_ids=ids, attention_mask=mask, token_type_ids=segments)
    real = mask.bool()
    torch.testing.assert_close(start[real], theirs.start_logits[real], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(end[real], theirs.end_logits[real], atol=1e-5, rtol=1e-4)
    # Not the same number twice: start and end come from different rows of the head.
    assert not torch.allclose(start, end)


def test_tagging_model_equals_bertfortokenclassification_and_uses_dropout_in_training():
    torch.manual_seed(0)
    hf = BertForTokenClassification(BertConfig(**SIZES, num_labels=5)).eval()
    ours = BertForTagging.from_hf(hf)
    ids, mask, segments = _pair_batch()
    with torch.no_grad():
        got = ours(ids, mask, segments)
        expected = hf(input_ids=ids, attention_mask=mask, token_type_ids=segments).logits
    assert got.shape == (2, 12, 5)
    torch.testing.assert_close(got[mask.bool()], expected[mask.bool()], atol=1e-5, rtol=1e-4)
    ours.train()
    with torch.no_grad():
        assert not torch.allclose(ours(ids, mask, segments), got)  # the head's dropout


def test_argmax_span_takes_start_and_end_independently():
    start = torch.tensor([[0.0, 5.0, 1.0, 0.0], [0.0, 0.0, 1.0, 9.0]])
    end = torch.tensor([[0.0, 1.0, 0.0, 7.0], [8.0, 0.0, 1.0, 0.0]])
    # Row 0: a long span; row 1: the end before the start, which this decoding allows.
    assert argmax_span(start, end).tolist() == [[1, 3], [3, 0]]


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


def _task_heads(d):
    """The span and tagging heads drawn with the chapter's kind of inputs (both tests use it)."""
    return d.task_heads(
        ["[CLS]", "who", "sat", "?", "[SEP]", "the", "old", "man", "sat", "down", "[SEP]"],
        [0.1, -1.2, -0.8, -2.0, -1.5, 3.1, 1.2, 0.4, -0.3, -0.9, -1.6],
        [0.0, -1.0, -0.5, -1.8, -1.4, 0.2, 0.9, 3.4, 0.5, -0.2, -1.5],
        ["[CLS]", "adele", "sang", "in", "london", "[SEP]"],
        ["–", "B-PER", "O", "O", "B-LOC", "–"],
    )


@pytest.mark.parametrize(
    "draw",
    [
        lambda d: d.bert_input_embeddings(["[CLS]", "a", "[SEP]", "b", "[SEP]"], [0, 0, 0, 1, 1]),
        lambda d: d.mlm_masking(
            ["[CLS]", "a", "b", "c", "[SEP]"], {1, 2, 3}, {1: "[MASK]", 2: "x"}
        ),
        lambda d: d.classification_heads(),
        _task_heads,
    ],
)
def test_chapter_4_diagrams_draw_the_same_pixels_every_time(draw):
    from bertbook import diagrams

    assert _png(lambda: draw(diagrams)) == _png(lambda: draw(diagrams))


# ------------------------------------------------------- the fine-tuned classifier, cached

TEACHER_CODE = '''
    class Model:
        """{doc}"""

        def forward(self, x):
            # {comment}
            return x * {factor}
    '''


def _module(tmp_path, name, source):
    """Every version is the module "teacher_module" (as an edited file would be)."""
    from conftest import module_from_source

    return module_from_source(tmp_path / f"{name}.py", source, "teacher_module")


def test_teacher_key_follows_recipe_weights_and_code_not_docstrings(tmp_path, monkeypatch):
    from bertbook import bert

    a = bert.teacher_path("some-hub-name", {"steps": 1})
    assert a == bert.teacher_path("some-hub-name", {"steps": 1}) and a.parent.name == "artifacts"
    assert a != bert.teacher_path("some-hub-name", {"steps": 2})  # the recipe
    assert a != bert.teacher_path("another-name", {"steps": 1})  # the weights (a hub name)
    assert bert.teacher_path("x", weights="abc") != bert.teacher_path("x", weights="abd")
    assert bert.teacher_path("x", weights="w") == bert.teacher_path(
        "x", bert.TEACHER_RECIPE, weights="w"
    )  # the chapter's recipe is the default

    def key(name, **edits):
        source = TEACHER_CODE.format(**{"doc": "A model.", "comment": "why", "factor": 2, **edits})
        m = _module(tmp_path, name, source)
        monkeypatch.setattr(bert, "teacher_code", lambda: [m.Model])
        return bert.teacher_path("x", {"steps": 1}, weights="w")

    base = key("key_v1")
    assert key("key_v2", doc="A model, now with a longer docstring.", comment="reworded") == base
    assert key("key_v3", factor=3) != base


def test_teacher_code_covers_the_encoder_classifier_recipe_and_loop():
    from bertbook import attention, bert, training

    code = bert.teacher_code()
    for needed in (attention.MultiHeadAttention, bert.BertLayer, bert.BertEncoder,
                   bert.SentimentClassifier, bert.fine_tune_sentiment, training.train_classifier,
                   training.length_batches):  # fmt: skip
        assert needed in code
    assert len(training.code_fingerprint(*code)) == 64


def _tiny_checkpoint(tmp_path):
    words = "the a cat dog sat on mat ran fast slow".split()
    (tmp_path / "vocab.txt").write_text(
        "\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words) + "\n"
    )
    checkpoint = tmp_path / "tiny-bert"
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=15, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=32, max_position_embeddings=32)  # fmt: skip
    BertModel(cfg, add_pooling_layer=False).save_pretrained(checkpoint)
    BertTokenizerFast(vocab=str(tmp_path / "vocab.txt")).save_pretrained(checkpoint)
    return checkpoint


def test_saved_teacher_is_loaded_back_from_the_cache(tmp_path, monkeypatch):
    from bertbook import bert

    monkeypatch.setenv("BERTBOOK_CACHE", str(tmp_path / "cache"))
    checkpoint = _tiny_checkpoint(tmp_path)
    torch.manual_seed(1)
    model = SentimentClassifier(BertEncoder.from_hf(checkpoint)).eval()
    path = bert.save_teacher(model, str(checkpoint))
    assert path.exists() and str(path).startswith(str(tmp_path / "cache"))
    assert not list(path.parent.glob("*.tmp*"))  # written atomically
    loaded, tok, was_cached = bert.load_or_train_teacher(str(checkpoint))
    assert was_cached and len(tok) == 15
    for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name


def test_without_a_cache_the_teacher_is_trained_cached_then_loaded(tmp_path, monkeypatch):
    """Chapter 5 on a fresh clone: no cached teacher, so it is fine-tuned with the recipe, cached,
    and the next call loads the same weights."""
    from bertbook import assets, bert

    checkpoint = str(_tiny_checkpoint(tmp_path))
    sentences = ["the cat sat", "a dog ran fast", "the mat", "slow cat"] * 4
    monkeypatch.setattr(assets, "load_movie_reviews", lambda split: (sentences, [1, 0] * 8, None))
    monkeypatch.setattr(bert, "teacher_path", lambda checkpoint, recipe: tmp_path / "t.pt")
    recipe = {"steps": 3, "lr": 1e-3, "batch_size": 4, "max_length": 8, "seed": 0}
    trained, _, was_cached = bert.load_or_train_teacher(checkpoint, recipe)
    assert not was_cached and (tmp_path / "t.pt").exists()
    loaded, _, was_cached = bert.load_or_train_teacher(checkpoint, recipe)
    assert was_cached
    for (name, a), (_, b) in zip(trained.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name


def test_fine_tuning_keeps_the_word_embedding_table_and_trains_the_rest(tmp_path, monkeypatch):
    """The recipe freezes the word-embedding table (Chapter 4 says why): its rows come back
    exactly as pretrained, while the layers, the other embeddings and the head move."""
    from bertbook import assets, bert

    checkpoint = str(_tiny_checkpoint(tmp_path))
    sentences = ["the cat sat", "a dog ran fast", "the mat", "slow cat"] * 4
    monkeypatch.setattr(assets, "load_movie_reviews", lambda split: (sentences, [1, 0] * 8, None))
    recipe = {"steps": 3, "lr": 1e-2, "batch_size": 4, "max_length": 8, "seed": 0}
    pretrained = BertEncoder.from_hf(checkpoint).state_dict()
    tuned, _, _ = bert.fine_tune_sentiment(checkpoint, recipe)
    encoder = tuned.encoder.state_dict()
    assert torch.equal(encoder["embeddings.token.weight"], pretrained["embeddings.token.weight"])
    moved = [k for k in pretrained if not torch.equal(encoder[k], pretrained[k])]
    assert "embeddings.position.weight" in moved and any(k.startswith("layers.") for k in moved)


def _smallest_text_at_content_width(fig, content_width=7.5):
    """The smallest font size (pt) of the figure's texts when it is shown 7.5 in wide."""
    import matplotlib.text

    fig.canvas.draw()
    sizes = [t.get_fontsize() for t in fig.findobj(matplotlib.text.Text) if t.get_text().strip()]
    return min(sizes) * content_width / fig.get_figwidth()


@pytest.mark.parametrize(
    "draw",
    [
        lambda d: d.bert_input_embeddings(
            [
                "[CLS]",
                "my",
                "dog",
                "is",
                "cute",
                "[SEP]",
                "he",
                "likes",
                "playing",
                "fetch",
                "[SEP]",
            ],
            [0] * 6 + [1] * 5,
        ),  # fmt: skip
        lambda d: d.mlm_masking(
            ["[CLS]", "my", "dog", "is", "cute", "and", "he", "likes", "the", "park", "[SEP]"],
            {4, 7, 9},
            {4: "[MASK]", 7: "apple"},
        ),
        lambda d: d.classification_heads(),
        _task_heads,
    ],
)
def test_chapter_4_diagrams_are_readable_at_the_page_width(draw):
    """The chapter's own inputs: every text at least 8 pt when the figure is 7.5 in wide."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bertbook import diagrams

    fig = draw(diagrams)
    assert _smallest_text_at_content_width(fig) >= 8
    plt.close(fig)


def test_recomputation_gives_the_same_training_and_less_held_for_backward():
    """Fine-tuning with recomputation (gradient checkpointing) for every batch, for the longer
    batches only, or for none: the same losses, weights and random stream (dropout is replayed);
    a batch of more tokens than ``recompute_above`` saves less for the backward pass, a batch of
    at most that many saves what it would without."""
    from bertbook.training import train_classifier

    encodings = [[2] + [5 + (i * 7 + j) % 100 for j in range(3 + i % 9)] + [3] for i in range(64)]
    labels = [i % 2 for i in range(64)]
    results = {}
    for above in (None, 0, 100):  # never; every batch; the batches of more than 100 tokens
        torch.manual_seed(0)
        model = SentimentClassifier(BertEncoder.from_hf(_bert()))
        model.encoder.recompute_above = above
        losses = train_classifier(model, encodings, labels, steps=4, lr=1e-3, batch_size=16)
        results[above] = (losses, model.state_dict(), torch.rand(1))
    for above in (0, 100):
        assert results[above][0] == results[None][0]
        for k, v in results[None][1].items():
            assert torch.equal(results[above][1][k], v), k
        assert torch.equal(results[above][2], results[None][2])

    def saved_bytes(above):
        model = SentimentClassifier(BertEncoder.from_hf(_bert())).train()
        model.encoder.recompute_above = above
        total = 0

        def pack(t):
            nonlocal total
            total += t.numel() * t.element_size()
            return t

        ids = torch.randint(5, 120, (8, 30))  # (B, T): 240 tokens
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            model(ids, torch.ones_like(ids))
        return total

    assert saved_bytes(239) < saved_bytes(None) / 2
    assert saved_bytes(240) == saved_bytes(None)
