"""The drawing primitives draw deterministically on a white card."""

import io

import matplotlib

matplotlib.use("Agg")

from bertbook import diagrams  # noqa: E402


def _draw() -> bytes:
    fig, ax = diagrams.canvas(6, 3)
    centres = diagrams.tokens(ax, 0.2, 2.2, ["the", "cat", "sat"])
    diagrams.box(ax, 0.2, 0.2, 2, 0.8, "encoder", color="blue")
    diagrams.arrow(ax, centres[0], (1.2, 1.0), "h")
    diagrams.matrix(ax, 3.5, 2.6, [[0.1, 0.9], [0.5, 0.5]], mask=[[True, False], [True, True]])
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    matplotlib.pyplot.close(fig)
    return buf.getvalue()


def test_the_same_drawing_gives_the_same_pixels():
    assert _draw() == _draw()


def test_tint_mixes_towards_white():
    assert diagrams.tint("#000000", 1.0) == "#ffffff"
    assert diagrams.tint("#000000", 0.0) == "#000000"
    assert diagrams.tint("blue", 0.5) == "#80b8d8"


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    matplotlib.pyplot.close(fig)
    return buf.getvalue()


def test_chapter_1_diagrams_draw_the_given_words():
    src, tgt = ["quatre", "vingt", "dix", "sept"], ["ninety", "seven"]
    fig = diagrams.seq2seq_bottleneck(src, tgt)
    texts = {t.get_text() for t in fig.axes[0].texts}
    assert set(src + tgt) <= texts and isinstance(fig, matplotlib.figure.Figure)
    _png(fig)
    symbolic = diagrams.attention_average(src)
    assert {"α1", "α4"} <= {t.get_text() for t in symbolic.axes[0].texts}
    _png(symbolic)
    weighted = diagrams.attention_average(src, [0.1, 0.7, 0.15, 0.05], output="ninety")
    assert "0.70" in {t.get_text() for t in weighted.axes[0].texts}
    _png(weighted)
    step = diagrams.decoder_step()
    assert {"context c(i)", "GRU cell", "cell input:\n[embedding ; c(i)]"} <= {
        t.get_text() for t in step.axes[0].texts
    }
    _png(step)


def test_chapter_3_diagrams_draw_the_given_segmentations():
    words, counts = ["low", "lowest"], [3, 1]
    merges = [("l", "o"), ("lo", "w")]
    segs = [[list("low"), list("lowest")], [["lo", "w"], ["lo", *"west"]],
            [["low"], ["low", *"est"]]]  # fmt: skip
    fig = diagrams.bpe_merges(words, counts, merges, segs)
    assert "2: lo + w" in {t.get_text() for t in fig.axes[0].texts}
    _png(fig)
    steps = [[("tokens", False), ("token", True)], [("##s", True)]]
    fig = diagrams.wordpiece_search("tokens", steps)
    assert "tokens  →  token  ##s" in {t.get_text() for t in fig.axes[0].texts}
    _png(fig)


def test_chapter6_diagrams_draw_from_real_inputs():
    import numpy as np
    import torch

    words = ["To", " be", ",", " or"]
    fig = diagrams.causal_mask_grid(words, torch.ones(4, 4, dtype=torch.bool).tril())
    assert isinstance(fig, matplotlib.figure.Figure)
    assert isinstance(diagrams.kv_cache(words, n_prompt=2), matplotlib.figure.Figure)
    probs = np.sort(np.random.default_rng(0).dirichlet(np.ones(50)))[::-1]
    fig = diagrams.sampling_filters(probs, [f"t{i}" for i in range(12)], k=5, p=0.9)
    assert len(fig.axes) == 4  # three panels and the cumulative-probability axis
    assert any(f"{np.searchsorted(np.cumsum(probs) - probs, 0.9)} tokens" in ax.get_title(loc="left")
               for ax in fig.axes)  # fmt: skip
    assert {"τ = 1 (the model)", "τ = 1.5"} <= {
        t.get_text() for t in fig.axes[0].get_legend().texts
    }
    fig = diagrams.pre_and_post_norm(n_layer=12)
    texts = {t.get_text() for t in fig.axes[0].texts}
    assert {"ln_1: LayerNorm", "ln_2: LayerNorm", "ln_f: final LayerNorm", "× 12"} <= texts
    assert {"add & LayerNorm", "add:  x + block"} <= texts  # post-norm's add, then pre-norm's
    matplotlib.pyplot.close("all")


def test_chapter2_diagrams_draw_figures_and_leave_them_open():
    import numpy as np

    rng = np.random.default_rng(0)
    x, q, k, v = rng.normal(size=(3, 4)), *rng.normal(size=(3, 3, 2))
    scores = q @ k.T / np.sqrt(2)
    weights = np.exp(scores) / np.exp(scores).sum(1, keepdims=True)
    mask = np.tril(np.ones((3, 3), dtype=bool))
    figures = [
        diagrams.attention_worked_example(
            ["a", "b", "c"], x, q, k, v, scores, weights, weights @ v
        ),
        diagrams.multi_head_split_merge(5, 64, 4),
        diagrams.transformer_layers(d_ff=128, n_enc=2, n_dec=2),
        diagrams.attention_masks([("causal", ["a", "b", "c"], ["a", "b", "c"], mask)]),
    ]
    for fig in figures:
        assert isinstance(fig, matplotlib.figure.Figure)
        assert matplotlib.pyplot.fignum_exists(fig.number)  # the chapter shows it, then closes
        matplotlib.pyplot.close(fig)


def _chapter_diagrams():
    """Every diagram, drawn with the inputs its chapter gives it (or inputs as long)."""
    import numpy as np
    import torch

    rng = np.random.default_rng(0)
    x, q, k, v = rng.normal(size=(3, 4)), *rng.normal(size=(3, 3, 2))
    scores = q @ k.T / np.sqrt(2)
    weights = np.exp(scores) / np.exp(scores).sum(1, keepdims=True)
    fr, en = "quatre vingt dix-sept mille trois".split(), "ninety seven thousand three".split()
    gpt_words = ["To", " be", ",", " or", " not", " to", " be"]
    pair = "[CLS] my dog is cute [SEP] he likes playing fetch [SEP]".split()
    sentence = "[CLS] my dog is cute and he likes playing in the park [SEP]".split()
    probs = np.sort(rng.dirichlet(np.ones(200)))[::-1]
    masks = [("padding", ["a", "b", "c", "<pad>"], ["a", "b", "c", "<pad>"], np.ones((4, 4)))] * 3
    yield from {
        "seq2seq_bottleneck": lambda: diagrams.seq2seq_bottleneck(fr, en),
        "attention_average": lambda: diagrams.attention_average(fr + ["</s>"]),
        "attention_average weighted": lambda: diagrams.attention_average(
            fr, [0.1, 0.6, 0.1, 0.1, 0.1], output="ninety"
        ),
        "decoder_step": diagrams.decoder_step,
        "attention_worked_example": lambda: diagrams.attention_worked_example(
            ["deux", "cent", "trente"], x, q, k, v, scores, weights, weights @ v
        ),
        "multi_head_split_merge": lambda: diagrams.multi_head_split_merge(5, 64, 4),
        "transformer_layers": lambda: diagrams.transformer_layers(d_ff=128, n_enc=2, n_dec=2),
        "attention_masks": lambda: diagrams.attention_masks(masks),
        "bpe_merges": lambda: diagrams.bpe_merges(
            ["low", "lowest", "newer"],
            [5, 2, 6],
            [("l", "o"), ("lo", "w"), ("e", "r")],
            [
                [list("low"), list("lowest"), list("newer")],
                [["lo", "w"], ["lo", *"west"], list("newer")],
                [["low"], ["low", *"est"], list("newer")],
                [["low"], ["low", *"est"], [*"new", "er"]],
            ],
        ),  # fmt: skip
        "wordpiece_search": lambda: diagrams.wordpiece_search(
            "tokenizers",
            [
                [("tokenizers", False), ("tokenizer", False), ("tokenize", False), ("token", True)],
                [("##izers", False), ("##izer", False), ("##ize", False), ("##iz", True)],
                [("##ers", True)],
            ],
        ),  # fmt: skip
        "bert_input_embeddings": lambda: diagrams.bert_input_embeddings(pair, [0] * 6 + [1] * 5),
        "mlm_masking": lambda: diagrams.mlm_masking(
            sentence, chosen={4, 7, 11}, replaced={4: "[MASK]", 7: "apple"}
        ),
        "classification_heads": diagrams.classification_heads,
        "task_heads": lambda: diagrams.task_heads(
            ["[CLS]", "who", "sat", "?", "[SEP]", "the", "old", "man", "sat", "down", "[SEP]"],
            [0.0] * 5 + [3.0] + [0.0] * 5,
            [0.0] * 7 + [3.0] + [0.0] * 3,
            ["[CLS]", "adele", "sang", "in", "london", "[SEP]"],
            ["–", "B-PER", "O", "O", "B-LOC", "–"],
        ),
        "distillation": lambda: diagrams.distillation(T=2.0, alpha=0.5),
        "causal_mask_grid": lambda: diagrams.causal_mask_grid(
            gpt_words, torch.ones(7, 7, dtype=torch.bool).tril()
        ),
        "kv_cache": lambda: diagrams.kv_cache(gpt_words, n_prompt=3),
        "pre_and_post_norm": lambda: diagrams.pre_and_post_norm(n_layer=12),
        "sampling_filters": lambda: diagrams.sampling_filters(
            probs, [f" word{i}" for i in range(30)], k=10, p=0.9
        ),
    }.items()


def test_every_diagram_is_readable_at_the_page_width():
    """Every text of every diagram is at least 8 pt where the book shows it (its content column
    is 720 px; bertbook.figure_text)."""
    from bertbook.figure_text import measure, report

    found = []
    for name, draw in _chapter_diagrams():
        fig = draw()
        found += [f"{name}: {line}" for line in report([measure(fig)])]
        matplotlib.pyplot.close(fig)
    assert not found, "\n".join(found)
